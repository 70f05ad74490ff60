//! Object-store faults through the S3 path: rounds of backup and restore against the in-process
//! S3 server, through the fault layer injecting errors, lost replies, stalls and cut-off bodies
//! on a random fraction of requests (seeded). Each backup completes through retries or fails
//! with a clear error; after a failure the next backup reuses what was uploaded; after every
//! round `verify --read-data` (through a clean store) finds every snapshot whole, so no
//! manifest ever points at a missing or short object; restores through faults either produce
//! exactly the snapshot's data or fail closed (no target, no staging left).
//!
//! `STRATA_FAULT_ROUNDS` (default 6) sets the number of rounds; `STRATA_FAULT_SEED` the seed.
//! The counts are printed (`--nocapture`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::TryStreamExt;
use strata_backup::backup::{BackupOptions, backup};
use strata_backup::crypto::KdfParams;
use strata_backup::restore::{RestoreOptions, plan_restore, restore};
use strata_backup::store::fault::{FaultStore, Faults, RandomFaults};
use strata_backup::store::{self, DynStore};
use strata_backup::{InitOptions, Progress, Repository};
use strata_engine::Engine;

const FAST_KDF: KdfParams = KdfParams {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};
const PASSWORD: &str = "pw";
/// Rounds share one data dir and repository for this many rounds, then start afresh (keeps
/// the per-round verify of every snapshot bounded in long runs).
const EPOCH: usize = 8;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[derive(Debug, Default)]
struct Tally {
    backups: u64,
    completed: u64,
    failed_cleanly: u64,
    /// A failed backup whose manifest was written anyway (its reply was lost).
    failed_after_commit: u64,
    resumed_with_reuse: u64,
    objects_reused_on_resume: u64,
    restores: u64,
    restores_ok: u64,
    restores_failed_closed: u64,
    verifies: u64,
    errors: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, e: &strata_backup::Error) {
        let text = e.to_string();
        assert!(
            !text.is_empty() && !text.contains('\n'),
            "errors are one clear line: {text:?}"
        );
        // Bucket by the message without object names, for the summary.
        let key: String = text
            .split_whitespace()
            .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
            .take(8)
            .collect::<Vec<_>>()
            .join(" ");
        *self.errors.entry(key).or_default() += 1;
    }
}

struct Epoch {
    _dir: tempfile::TempDir,
    engine: Engine,
    clean: Arc<Repository>,
    faulty: Arc<Repository>,
    faults: Arc<Faults>,
    next_ts: i64,
}

async fn new_epoch(s3: &common::S3Server, n: usize) -> Epoch {
    let prefix = format!("faults-{n}");
    let url = common::s3_url(&prefix);
    let clean_store = common::s3_store(s3, &prefix);
    let init = InitOptions {
        encryption: true,
        password: Some(PASSWORD.into()),
        kdf: FAST_KDF,
        ..Default::default()
    };
    let clean = Arc::new(Repository::init(clean_store, &url, init).await.unwrap());
    let mut opts = common::s3_options(s3);
    // Few retries, so high fault rates also produce failed backups and restores.
    opts.retries = 3;
    let base = store::base_store(&url, &opts, false).unwrap();
    let fault = FaultStore::new(base);
    let faults = fault.faults.clone();
    let layered: DynStore = store::layered(Arc::new(fault), &opts);
    let faulty = Arc::new(
        Repository::open(layered, &url, Some(PASSWORD))
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine::open(&dir.path().join("data"));
    Epoch {
        _dir: dir,
        engine,
        clean,
        faulty,
        faults,
        next_ts: common::engine::base_ts(),
    }
}

async fn object_count(repo: &Repository) -> usize {
    repo.store()
        .list(Some(&object_store::path::Path::from("data")))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len()
}

fn dir_is_empty_or_absent(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

fn fingerprint_dir(p: &Path) -> (String, usize) {
    let e = Engine::open_read_only(p).unwrap();
    common::engine::fingerprint(&e)
}

async fn backup_round(ep: &Epoch, faults: RandomFaults, t: &mut Tally) {
    let snap = ep.engine.snapshot().unwrap();
    let snapshots_before = ep.clean.snapshot_ids().await.unwrap().len();
    let objects_before = object_count(&ep.clean).await;
    ep.faults.set_random(Some(faults));
    let progress = Arc::new(Progress::default());
    let res = backup(
        ep.faulty.clone(),
        &snap,
        &BackupOptions::default(),
        progress,
    )
    .await;
    ep.faults.set_random(None);
    t.backups += 1;
    match res {
        Ok(m) => {
            t.completed += 1;
            assert!(m.files.len() >= snap.files.len());
        }
        Err(e) => {
            t.error(&e);
            if ep.clean.snapshot_ids().await.unwrap().len() > snapshots_before {
                t.failed_after_commit += 1;
            } else {
                t.failed_cleanly += 1;
            }
            // The next backup (no faults) resumes: whatever the failed run uploaded is reused.
            let left = object_count(&ep.clean).await - objects_before;
            let progress = Arc::new(Progress::default());
            let m = backup(ep.clean.clone(), &snap, &BackupOptions::default(), progress)
                .await
                .unwrap();
            assert!(
                m.stats.reused_objects as usize >= left,
                "resumed backup re-uploaded objects the failed one left: {:?}, {left} left",
                m.stats
            );
            if left > 0 {
                t.resumed_with_reuse += 1;
                t.objects_reused_on_resume += left as u64;
            }
        }
    }
    ep.engine.release_snapshot(&snap.id).unwrap();
}

/// Every snapshot of the repository reads back whole (through a store without faults).
async fn verify_all(ep: &Epoch, t: &mut Tally) {
    let progress = Progress::default();
    let report = strata_backup::verify::verify(&ep.clean, None, true, &progress)
        .await
        .unwrap();
    assert!(report.ok(), "damaged after faults: {:#?}", report.damage);
    t.verifies += 1;
}

async fn restore_round(ep: &Epoch, faults: RandomFaults, expect: &(String, usize), t: &mut Tally) {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("restored");
    let opts = RestoreOptions {
        parallelism: 4,
        ..Default::default()
    };
    ep.faults.set_random(Some(faults));
    let res = async {
        let plan = plan_restore(&ep.faulty, "latest", &target, &opts).await?;
        restore(
            ep.faulty.clone(),
            &plan,
            &opts,
            Arc::new(Progress::default()),
        )
        .await
    }
    .await;
    ep.faults.set_random(None);
    t.restores += 1;
    match res {
        Ok(_) => {
            t.restores_ok += 1;
            assert_eq!(&fingerprint_dir(&target), expect, "restored data differs");
        }
        Err(e) => {
            t.error(&e);
            t.restores_failed_closed += 1;
            assert!(dir_is_empty_or_absent(&target), "failed restore left data");
            let left: Vec<_> = std::fs::read_dir(work.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "failed restore left {left:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_and_restores_through_s3_faults() {
    let rounds = env_u64("STRATA_FAULT_ROUNDS", 6) as usize;
    let seed = env_u64("STRATA_FAULT_SEED", 0x5EED_FA17);
    let s3 = common::start_s3().await;
    let mut rng = Rng(seed | 1);
    let mut t = Tally::default();
    let mut injected = 0u64;
    let mut kinds = [0u64; 4];
    let mut ep: Option<Epoch> = None;
    for round in 0..rounds {
        if round % EPOCH == 0 {
            if let Some(old) = ep.take() {
                count(&old.faults, &mut injected, &mut kinds);
                old.engine.close().unwrap();
            }
            ep = Some(new_epoch(&s3, round).await);
        }
        let e = ep.as_mut().unwrap();
        // New data every round: new parts (flushed) and a WAL tail.
        common::engine::ingest(&e.engine, "g", e.next_ts, 1_200, 6);
        e.engine.flush().unwrap();
        common::engine::ingest(&e.engine, "g", e.next_ts + 200_000_000_000, 60, 6);
        e.next_ts += 400_000_000_000;
        let expect = common::engine::fingerprint(&e.engine);
        let rate = [0.05, 0.2, 0.4, 0.7][rng.below(4) as usize];
        let faults = |salt: u64| RandomFaults {
            seed: seed ^ (round as u64) << 8 ^ salt,
            rate,
            stall: Duration::from_millis(15),
        };
        backup_round(e, faults(1), &mut t).await;
        verify_all(e, &mut t).await;
        restore_round(e, faults(2), &expect, &mut t).await;
    }
    if let Some(old) = ep.take() {
        count(&old.faults, &mut injected, &mut kinds);
        old.engine.close().unwrap();
    }
    println!(
        "s3 fault rounds: {rounds}; faults injected {injected} (errors {}, lost replies {}, \
         stalls {}, cut bodies {}); backups {}: completed {}, failed cleanly {}, failed after \
         their manifest was written {}, resumed reusing uploads {} ({} objects reused); \
         verify --read-data passes {}; restores {}: ok {}, failed closed {}",
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        t.backups,
        t.completed,
        t.failed_cleanly,
        t.failed_after_commit,
        t.resumed_with_reuse,
        t.objects_reused_on_resume,
        t.verifies,
        t.restores,
        t.restores_ok,
        t.restores_failed_closed
    );
    for (msg, n) in &t.errors {
        println!("  {n:>4} x {msg}");
    }
    assert!(injected > 0, "no fault was injected");
    assert_eq!(
        t.completed + t.failed_cleanly + t.failed_after_commit,
        t.backups
    );
}

fn count(f: &Faults, total: &mut u64, kinds: &mut [u64; 4]) {
    let i = &f.injected;
    *total += i.total();
    for (k, c) in [&i.errors, &i.lost_replies, &i.stalls, &i.cut_bodies]
        .iter()
        .enumerate()
    {
        kinds[k] += c.load(Ordering::SeqCst);
    }
}

/// Regression for a defect found by the fault loop: when the reply to the manifest PUT was
/// lost, the retry got "already exists" and the backup failed although its snapshot was
/// complete. Every put's reply is lost here; each retry finds its own object, and the backup
/// must succeed, leave exactly one new snapshot, and verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_put_replies_do_not_fail_a_complete_backup() {
    let s3 = common::start_s3().await;
    let ep = new_epoch(&s3, 9_999).await;
    common::engine::ingest(&ep.engine, "g", ep.next_ts, 1_200, 6);
    ep.engine.flush().unwrap();
    common::engine::ingest(&ep.engine, "g", ep.next_ts + 200_000_000_000, 60, 6);
    let snap = ep.engine.snapshot().unwrap();
    ep.faults
        .lose_put_replies
        .store(usize::MAX / 2, Ordering::SeqCst);
    let progress = Arc::new(Progress::default());
    let res = backup(
        ep.faulty.clone(),
        &snap,
        &BackupOptions::default(),
        progress,
    )
    .await;
    ep.faults.lose_put_replies.store(0, Ordering::SeqCst);
    let m = res.expect("a backup whose replies were lost but whose writes landed succeeds");
    assert!(!m.files.is_empty());
    assert_eq!(ep.clean.snapshot_ids().await.unwrap().len(), 1);
    let progress = Progress::default();
    let report = strata_backup::verify::verify(&ep.clean, None, true, &progress)
        .await
        .unwrap();
    assert!(report.ok(), "{:#?}", report.damage);
    ep.engine.release_snapshot(&snap.id).unwrap();
}

/// Regression for a defect found by the fault loop: `RetryStore::list` was not retried, so one
/// failed LIST page failed a whole backup or restore. Listings broken after their first entry
/// are restarted, and nothing is listed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_broken_midway_are_retried_without_duplicates() {
    let s3 = common::start_s3().await;
    let ep = new_epoch(&s3, 9_998).await;
    common::engine::ingest(&ep.engine, "g", ep.next_ts, 1_200, 6);
    ep.engine.flush().unwrap();
    let snap = ep.engine.snapshot().unwrap();
    let progress = Arc::new(Progress::default());
    backup(ep.clean.clone(), &snap, &BackupOptions::default(), progress)
        .await
        .unwrap();
    ep.engine.release_snapshot(&snap.id).unwrap();
    let want = ep.clean.list_objects().await.unwrap();
    assert!(
        want.len() > 1,
        "need several objects to break a listing midway"
    );
    ep.faults.break_lists.store(2, Ordering::SeqCst);
    let got = ep.faulty.list_objects().await.unwrap();
    assert_eq!(
        ep.faults.break_lists.load(Ordering::SeqCst),
        0,
        "no listing was broken"
    );
    let mut want: Vec<_> = want.into_keys().collect();
    let mut got: Vec<_> = got.into_keys().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
}
