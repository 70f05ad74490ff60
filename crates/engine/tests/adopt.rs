//! Online restore, engine side (`backup_api::adopt`, `docs/format/adopt-journal.md`): groups
//! built in a staging directory are published in one step into a running engine: a new
//! group, a dropped group back under its name, an existing group replaced whole. Readers see
//! all of the adopted data or none while writers go on; refusals change nothing; a power cut
//! before any file-system operation of the adoption, and of the recovery after it, leaves the
//! data as it was or fully adopted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_engine::backup_api::adopt::{self, AdoptGroup};
use strata_engine::vfs::{SimVfs, Vfs};
use strata_engine::{Engine, EngineOptions, Error};

use common::{pt, recent, scan_all};

fn group(name: &str, replace: bool) -> AdoptGroup {
    AdoptGroup {
        name: name.into(),
        replace,
    }
}

fn points(host: &str, n: i64) -> Vec<strata_engine::Point> {
    (0..n)
        .map(|i| pt(host, recent() + i * 1_000_000_000, i as f64))
        .collect()
}

/// Stage `groups` (name, host tag, points) for `live` and close the staging engine.
fn stage(live: &Engine, id: &str, groups: &[(&str, &str, i64)]) -> std::path::PathBuf {
    let dir = live.create_staging(id).unwrap();
    let e = adopt::open_staging(&dir).unwrap();
    for (g, host, n) in groups {
        e.write(g, &points(host, *n)).unwrap();
    }
    e.close().unwrap();
    dir
}

#[test]
fn new_dropped_and_replaced_groups_are_adopted_and_survive_a_reopen() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(common::opts(d.path())).unwrap();
    e.write("live", &points("live", 20)).unwrap();
    e.write("g", &points("old", 40)).unwrap();
    e.flush().unwrap();
    // Unflushed rows of the replaced group belong to what is replaced.
    e.write("g", &[pt("old", recent() - 5, -1.0)]).unwrap();
    e.write("x", &points("x-old", 5)).unwrap();
    e.delete_group("x").unwrap();

    let s = stage(&e, "r1", &[("restored", "new", 30)]);
    let out = e.adopt(&s, &[group("restored", false)]).unwrap();
    assert_eq!(out.groups, ["restored"]);
    assert!(out.replaced.is_empty());
    assert!(!s.exists(), "the staging directory is removed once adopted");
    assert!(!d.path().join(adopt::STAGING_DIR).exists());
    assert_eq!(scan_all(&e, "restored").len(), 30);

    // Refused: a new group whose name exists. Nothing changes, the staging stays the
    // caller's to discard.
    let s = stage(&e, "r2", &[("restored", "other", 3)]);
    let err = e.adopt(&s, &[group("restored", false)]).unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert_eq!(scan_all(&e, "restored").len(), 30);
    e.discard_staging(&s).unwrap();
    assert!(!s.exists());
    assert!(!d.path().join(adopt::STAGING_DIR).exists());

    // Replace g and bring x back, in one step.
    let s = stage(&e, "r3", &[("g", "new", 25), ("x", "x-new", 7)]);
    let out = e.adopt(&s, &[group("g", true), group("x", false)]).unwrap();
    assert_eq!(out.replaced, ["g"]);
    let g = scan_all(&e, "g");
    assert_eq!(g.len(), 25);
    assert!(g.iter().all(|t| t.0 == "new"), "old rows of g survived");
    assert_eq!(scan_all(&e, "x").len(), 7);
    assert_eq!(scan_all(&e, "live").len(), 20);

    // Writes go on into the adopted groups; everything survives a reopen (part ids of the
    // adopted parts never collide with the engine's own).
    e.write("g", &[pt("after", recent() + 999, 1.0)]).unwrap();
    e.flush().unwrap();
    e.write("restored", &[pt("after", recent() + 999, 1.0)])
        .unwrap();
    drop(e);
    let e = Engine::open(common::opts(d.path())).unwrap();
    assert_eq!(scan_all(&e, "g").len(), 26);
    assert_eq!(scan_all(&e, "restored").len(), 31);
    assert_eq!(scan_all(&e, "x").len(), 7);
    assert_eq!(scan_all(&e, "live").len(), 20);
    let report = strata_engine::check::check_dir(d.path()).unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    e.compact().unwrap();
    assert_eq!(scan_all(&e, "g").len(), 26);
    assert!(!d.path().join(adopt::ADOPT_FILE).exists());
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(common::opts(d.path())).unwrap();
    e.write("g", &points("old", 4)).unwrap();
    let s = stage(&e, "r1", &[("h", "new", 3)]);
    for (groups, what) in [
        (vec![], "no group"),
        (vec![group("nope", false)], "holds no group"),
        (vec![group("h", false), group("h", false)], "twice"),
        (vec![group("../h", false)], "group name"),
    ] {
        let err = e.adopt(&s, &groups).unwrap_err().to_string();
        assert!(err.contains(what), "{what}: {err}");
    }
    let elsewhere = d.path().join("elsewhere");
    let err = e.adopt(&elsewhere, &[group("h", false)]).unwrap_err();
    assert!(err.to_string().contains("not a staging directory"), "{err}");
    // A staging engine still open is not finished.
    let open = e.create_staging("r2").unwrap();
    let se = adopt::open_staging(&open).unwrap();
    se.write("k", &points("k", 1)).unwrap();
    let err = e.adopt(&open, &[group("k", false)]).unwrap_err();
    assert!(err.to_string().contains("still open"), "{err}");
    drop(se);
    assert!(e.catalog().groups.iter().all(|g| g.name == "g"));
    assert_eq!(scan_all(&e, "g").len(), 4);
    // Leftover staging directories are removed at the next open.
    drop(e);
    drop(Engine::open(common::opts(d.path())).unwrap());
    assert!(!d.path().join(adopt::STAGING_DIR).exists());
}

#[test]
fn a_snapshot_reading_the_group_defers_a_replace() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::open(common::opts(d.path())).unwrap();
    e.write("g", &points("old", 4)).unwrap();
    let snap = e.snapshot().unwrap();
    let s = stage(&e, "r1", &[("g", "new", 3)]);
    let err = e.adopt(&s, &[group("g", true)]).unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert!(scan_all(&e, "g").iter().all(|t| t.0 == "old"));
    e.release_snapshot(&snap.id).unwrap();
    e.adopt(&s, &[group("g", true)]).unwrap();
    assert!(scan_all(&e, "g").iter().all(|t| t.0 == "new"));
}

#[test]
fn readers_see_all_or_nothing_while_writers_go_on() {
    let d = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::open(common::opts(d.path())).unwrap());
    let mut live_total = 0i64;
    for round in 0..5 {
        // g holds 300 flushed and 50 unflushed old points before every round.
        let back = stage(&e, "back", &[("g", "old", 300)]);
        e.adopt(&back, &[group("g", true)]).unwrap();
        e.write("g", &points("old-mem", 50)).unwrap();
        let s = stage(
            &e,
            &format!("r{round}"),
            &[("g", "new", 200), ("n", "n", 120)],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    e.write("live", &[pt("w", recent() + n + round * 1_000_000, 1.0)])
                        .unwrap();
                    n += 1;
                }
                n
            })
        };
        let reader = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    // Each scan must be wholly before or wholly after the adoption.
                    let g = scan_all(&e, "g");
                    let hosts: std::collections::BTreeSet<_> =
                        g.iter().map(|t| t.0.clone()).collect();
                    seen.insert((g.len(), hosts.into_iter().collect::<Vec<_>>()));
                    if e.catalog().groups.iter().any(|c| c.name == "n") {
                        let n = scan_all(&e, "n").len();
                        assert!(n == 0 || n == 120, "partial group n: {n}");
                    }
                }
                seen
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        // n is new in round 0 and replaced afterwards.
        e.adopt(&s, &[group("g", true), group("n", round > 0)])
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        live_total += writer.join().unwrap();
        let seen = reader.join().unwrap();
        for (len, hosts) in &seen {
            let old = *len == 350 && hosts == &["old", "old-mem"];
            let new = *len == 200 && hosts == &["new"];
            assert!(
                old || new,
                "round {round}: a reader saw {len} points of {hosts:?}"
            );
        }
        assert_eq!(scan_all(&e, "g").len(), 200);
        assert_eq!(scan_all(&e, "n").len(), 120);
        assert_eq!(scan_all(&e, "live").len() as i64, live_total);
    }
}

// ---- power loss ----

const DIR: &str = "/d/data";

fn sim_opts(vfs: &SimVfs, dir: &Path) -> EngineOptions {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.vfs = Arc::new(vfs.clone());
    o
}

/// The live engine's directory before the adoption, fully durable: `live` (20 points), `g`
/// (40 old points, some only in the WAL).
fn base() -> SimVfs {
    let vfs = SimVfs::new();
    vfs.keep_entry_prefixes(true);
    vfs.create_dir_all(Path::new("/d")).unwrap();
    let e = Engine::open(sim_opts(&vfs, Path::new(DIR))).unwrap();
    e.write("live", &points("live", 20)).unwrap();
    e.write("g", &points("old", 35)).unwrap();
    e.flush().unwrap();
    e.write("g", &points("old-wal", 5)).unwrap();
    drop(e);
    vfs.sync_everything();
    vfs
}

/// Open the live engine on `fs` and stage `g` (30 new points) and `n` (12) for it.
fn open_and_stage(fs: &SimVfs) -> (Engine, std::path::PathBuf) {
    let e = Engine::open(sim_opts(fs, Path::new(DIR))).unwrap();
    let staged = e.create_staging("r").unwrap();
    let se = Engine::open(sim_opts(fs, &staged)).unwrap();
    se.write("g", &points("new", 30)).unwrap();
    se.write("n", &points("n", 12)).unwrap();
    se.close().unwrap();
    (e, staged)
}

/// After recovery: g and n are both old (g: 40 old points, no n) or both new; live intact;
/// no journal or staging left. Returns whether the adoption is in.
fn check(image: &SimVfs, label: &str) -> bool {
    let e = Engine::open(sim_opts(image, Path::new(DIR)))
        .unwrap_or_else(|err| panic!("{label}: open failed: {err}"));
    let g = scan_all(&e, "g");
    let n_exists = e.catalog().groups.iter().any(|c| c.name == "n");
    let is_new = g.iter().all(|t| t.0 == "new") && g.len() == 30;
    if is_new {
        assert!(n_exists, "{label}: g adopted without n");
        assert_eq!(scan_all(&e, "n").len(), 12, "{label}");
    } else {
        assert_eq!(g.len(), 40, "{label}: g is neither old nor new: {g:?}");
        assert!(g.iter().all(|t| t.0.starts_with("old")), "{label}");
        assert!(!n_exists, "{label}: n exists without g adopted");
    }
    assert_eq!(scan_all(&e, "live").len(), 20, "{label}");
    assert!(
        !image.exists(&Path::new(DIR).join(adopt::ADOPT_FILE)),
        "{label}"
    );
    assert!(
        !image.exists(&Path::new(DIR).join(adopt::STAGING_DIR)),
        "{label}"
    );
    // Writes go on and survive another reopen.
    e.write("g", &[pt("after", recent() + 999_999, 1.0)])
        .unwrap();
    drop(e);
    let e = Engine::open(sim_opts(image, Path::new(DIR))).unwrap();
    assert_eq!(
        scan_all(&e, "g").len(),
        if is_new { 31 } else { 41 },
        "{label}"
    );
    is_new
}

#[test]
fn a_power_cut_at_every_step_of_an_adoption_and_of_its_recovery_leaves_old_or_new() {
    let b = base();
    let (mut saw_old, mut saw_new, mut nested) = (false, false, 0);
    for cut in 0u64.. {
        let fs = b.crash(0);
        let (e, staged) = open_and_stage(&fs);
        fs.cut_after(cut);
        let res = e.adopt(&staged, &[group("g", true), group("n", false)]);
        let completed = !fs.is_cut();
        if completed {
            res.unwrap();
        }
        fs.cut_now();
        drop(e);
        for seed in 0..4 {
            let image = fs.crash(cut * 1_000 + seed);
            let journal = Path::new(DIR).join(adopt::ADOPT_FILE);
            if image.exists(&journal) && seed == 0 {
                // Cut the recovery (the engine's open) at each of its steps too.
                for rcut in 0u64.. {
                    let copy = image.crash(0);
                    copy.cut_after(rcut);
                    let done =
                        Engine::open(sim_opts(&copy, Path::new(DIR))).is_ok() && !copy.is_cut();
                    copy.cut_now();
                    let again = copy.crash(rcut + 7);
                    let is_new = check(&again, &format!("cut {cut}, recovery cut {rcut}"));
                    assert!(
                        is_new,
                        "cut {cut}: a journal was written, the adoption must finish"
                    );
                    nested += 1;
                    if done {
                        break;
                    }
                    assert!(rcut < 400, "recovery never completes");
                }
            }
            let is_new = check(&image, &format!("cut {cut} seed {seed}"));
            saw_old |= !is_new;
            saw_new |= is_new;
            if completed {
                assert!(is_new, "a completed adoption must survive");
            }
        }
        if completed {
            break;
        }
        assert!(cut < 400, "the adoption never completes");
    }
    assert!(saw_old && saw_new && nested > 0);
}
