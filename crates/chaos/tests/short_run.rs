//! A short run of every kill loop against the `strata` binary of this workspace, in the default
//! suite. The long runs are by hand (`strata-chaos --iterations 200`, see RELIABILITY.md).
//!
//! The binary is `$STRATA_BIN`, else `strata` beside this test's target directory: `cargo test
//! --workspace` (scripts/test.sh) builds it first; alone, run `cargo build -p strata-cli` before
//! `cargo test -p strata-chaos` so it is not stale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use strata_chaos::{Config, LoopKind, Summary};

fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/short_run-<hash> -> target/<profile>/strata
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("strata");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p strata-cli` first (or set STRATA_BIN)",
        bin.display()
    );
    bin
}

fn seed() -> u64 {
    std::env::var("STRATA_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_C4A0)
}

fn short(kind: LoopKind, iterations: usize) -> Summary {
    let t = tempfile::Builder::new()
        .prefix("strata-chaos")
        .tempdir()
        .unwrap();
    let mut cfg = Config::new(strata_bin(), t.path().join("work"), seed(), iterations);
    cfg.writers = 3;
    cfg.batch_points = 20;
    let mut s = match strata_chaos::run(&cfg, kind) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.len(), 1);
    let s = s.remove(0);
    println!("{}", s.text());
    assert_eq!(s.iterations, iterations);
    assert_eq!((s.lost, s.phantom, s.torn), (0, 0, 0));
    s
}

#[test]
fn ingest_kills_lose_no_acknowledged_write() {
    let s = short(LoopKind::Ingest, 6);
    assert_eq!(s.kills, 6);
    assert!(s.acked_batches > 0, "the writers never got an ack");
    assert!(s.points_checked > 0);
}

#[test]
fn backup_kills_leave_a_verifiable_repository() {
    let s = short(LoopKind::Backup, 4);
    assert!(s.kills > 0, "no kill landed during a backup");
    assert_eq!(s.checks["verifies_passed"], 4);
    assert_eq!(s.checks["backups_completed"], 5);
    assert!(s.checks["snapshots_restored_and_checked"] >= 1);
    assert!(
        s.checks["backup_reused_objects"] > 0,
        "no backup reused anything"
    );
}

#[test]
fn prune_kills_keep_every_kept_snapshot_restorable() {
    let s = short(LoopKind::Prune, 3);
    assert_eq!(s.checks["prunes_completed"], 3);
    assert!(s.checks["snapshots_restored_and_checked"] >= 3);
}

#[test]
fn restore_kills_leave_the_old_or_the_new_data() {
    let s = short(LoopKind::Restore, 5);
    let old = s.checks.get("target_is_old").copied().unwrap_or(0);
    let new = s.checks.get("target_is_new").copied().unwrap_or(0);
    assert_eq!(old + new, 5);
}

#[test]
fn archive_kills_keep_the_window_exact() {
    let s = short(LoopKind::Archive, 2);
    assert_eq!(s.checks["server_kills"], 2);
    assert_eq!(s.checks["restores_at_checked"], 2);
    let old = s.checks.get("target_is_old").copied().unwrap_or(0);
    let new = s.checks.get("target_is_new").copied().unwrap_or(0);
    assert_eq!(old + new, 2);
    assert!(s.points_checked > 0);
}

/// Regression for a defect found by the restore loop: a restore killed before its swap left its
/// staging copy `.DIR.restore-<snapshot>` beside the data directory, a full-size copy that
/// neither `restore::recover` nor `strata server` removed. Recovery now removes staging copies
/// no journal names (unless a running restore holds the copy locked).
#[test]
fn killed_restores_leave_no_staging_directory() {
    let s = short(LoopKind::Restore, 5);
    assert!(s.kills > 0);
    assert_eq!(
        s.checks
            .get("stale_staging_dirs_seen")
            .copied()
            .unwrap_or(0),
        0
    );
}

/// Regression for a defect found by the ingest loop (seed 20261124, iteration 140): `strata
/// server` printed its listening line before its SIGTERM handler was installed (the signal
/// stream was created on the first poll of the shutdown future inside `axum::serve`), so a
/// SIGTERM sent right after start-up killed it by the default action: no flush, no clean
/// close. The handlers are now armed before the line is printed.
#[test]
fn sigterm_right_after_start_is_handled() {
    use strata_chaos::proc::{Server, Strata};
    let t = tempfile::Builder::new()
        .prefix("strata-chaos")
        .tempdir()
        .unwrap();
    let strata = Strata::new(strata_bin());
    for i in 0..20 {
        let server = Server::start(&strata, &t.path().join("data"), &t.path().join("log")).unwrap();
        if let Err(e) = server.stop() {
            panic!("start {i}: {e}");
        }
    }
}

#[test]
fn a_server_killed_during_an_online_restore_holds_its_data_or_the_whole_group() {
    let s = short(LoopKind::Online, 4);
    assert_eq!(s.kills + s.finished_before_kill, 4);
}
