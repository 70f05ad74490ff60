//! Continuous archiving through object-store faults on the S3 path: the archiver ships while
//! the fault layer fails, loses replies to, stalls and cuts a random fraction of requests.
//! Failed steps are counted and retried; once the faults stop the archive catches up, the
//! repository shows one window with no gap (none is hidden either: every LSN from the chain's
//! snapshot to the last write is in it), and a restore to the newest point holds every write.
//! Then prune runs between archiver steps (racing it): no object the window needs is lost.
//!
//! The chain start (a whole backup) resumes its snapshot after a failure instead of starting
//! over, and adopts a manifest whose reply was lost; a lock whose put reply was lost is taken
//! back. Before that, no step succeeded under 30 % faults (each start needed a dozen requests
//! in a row, and the lock documents of failed attempts piled up) and the faulty run showed no
//! window at all.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use strata_backup::archive::ship::{ArchiveStats, Shipper, Step};
use strata_backup::archive::window::Windows;
use strata_backup::crypto::KdfParams;
use strata_backup::prune::{RetentionPolicy, plan_prune, prune};
use strata_backup::restore::{RestoreOptions, restore};
use strata_backup::store::fault::{FaultStore, RandomFaults};
use strata_backup::store::{self, DynStore};
use strata_backup::{InitOptions, Progress, Repository};
use strata_engine::{Engine, EngineOptions};

async fn drain(shipper: &mut Shipper) {
    for _ in 0..1000 {
        match shipper.step().await {
            Ok(Step::Idle) => return,
            Ok(_) => {}
            Err(e) => panic!("a step without faults failed: {e}"),
        }
    }
    panic!("the archiver never caught up");
}

/// A clean handle and a handle through the fault layer (no store retries: every fault
/// reaches the caller) on one encrypted repository on the in-process S3 server.
async fn repos(
    s3: &common::S3Server,
    prefix: &str,
) -> (
    Arc<Repository>,
    Arc<Repository>,
    Arc<strata_backup::store::fault::Faults>,
) {
    let url = common::s3_url(prefix);
    let init = InitOptions {
        encryption: true,
        password: Some("pw".into()),
        kdf: KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..Default::default()
    };
    let clean = Arc::new(
        Repository::init(common::s3_store(s3, prefix), &url, init)
            .await
            .unwrap(),
    );
    let mut opts = common::s3_options(s3);
    // No retries: every injected fault fails its step (the archiver's own retry is the next
    // step), and lost replies make it ship the same records again.
    opts.retries = 0;
    let fault = FaultStore::new(store::base_store(&url, &opts, false).unwrap());
    let faults = fault.faults.clone();
    let layered: DynStore = store::layered(Arc::new(fault), &opts);
    let faulty = Arc::new(Repository::open(layered, &url, Some("pw")).await.unwrap());
    (clean, faulty, faults)
}

fn archiving_engine(dir: &std::path::Path) -> Arc<Engine> {
    let mut o = EngineOptions::new(dir.join("data"));
    o.background = false;
    o.archive_max_pending = Some(1 << 30);
    Arc::new(Engine::open(o).unwrap())
}

async fn listed(repo: &Repository, prefix: &str) -> Vec<String> {
    let p = object_store::path::Path::from(prefix);
    repo.store()
        .list(Some(&p))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_through_s3_faults_catches_up_and_hides_no_gap() {
    let s3 = common::start_s3().await;
    let (clean, faulty, faults) = repos(&s3, "archive-faults").await;
    let dir = tempfile::tempdir().unwrap();
    let engine = archiving_engine(dir.path());
    let stats = Arc::new(ArchiveStats::default());
    let mut shipper = Shipper::new(engine.clone(), faulty.clone(), stats.clone());
    let base = common::engine::base_ts();

    let (mut ok, mut failed) = (0, 0);
    faults.set_random(Some(RandomFaults {
        seed: 0xA7C4_1FE5,
        rate: 0.3,
        stall: std::time::Duration::from_millis(20),
    }));
    for round in 0..40i64 {
        common::engine::ingest(&engine, "g", base + round * 1_000_000_000_000, 50, 5);
        if round % 7 == 3 {
            engine.flush().unwrap(); // the hold must keep the unshipped WAL
        }
        match shipper.step().await {
            Ok(_) => ok += 1,
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains('\n'), "{text}");
                failed += 1;
            }
        }
    }
    faults.set_random(None);
    let shipped_under_faults = stats.objects_shipped.load(Ordering::Relaxed);
    drain(&mut shipper).await;
    println!(
        "archive through faults: {ok} steps ok, {failed} failed, {} faults injected, {shipped_under_faults} objects shipped under faults",
        faults.injected.total()
    );
    assert!(failed > 0, "no step failed: the test did not test faults");
    assert!(
        shipped_under_faults > 0,
        "nothing was archived while the faults lasted ({ok} steps ok)"
    );
    assert_eq!(
        stats.failures.load(std::sync::atomic::Ordering::Relaxed),
        failed
    );
    assert_eq!(stats.gaps.load(std::sync::atomic::Ordering::Relaxed), 0);

    let last = engine.stats().last_lsn;
    let (w, _) = Windows::load(&clean).await.unwrap();
    assert_eq!(w.gaps.len(), 0, "{w:?}");
    assert_eq!(w.windows.len(), 1, "{w:?}");
    assert_eq!(
        w.windows[0].last_lsn, last,
        "the window ends at the last write"
    );

    // Prune racing the archiver: steps between plan and execution, new writes meanwhile.
    common::engine::ingest(&engine, "g", base + 99 * 1_000_000_000_000, 50, 5);
    let plan = plan_prune(
        &clean,
        &RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        },
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    drain(&mut shipper).await;
    prune(&clean, &plan).await.unwrap();
    drain(&mut shipper).await;
    let last = engine.stats().last_lsn;
    let (w, _) = Windows::load(&clean).await.unwrap();
    assert_eq!(w.windows.len(), 1, "{w:?}");
    assert_eq!(w.windows[0].last_lsn, last);

    // The newest point restores every write.
    let want = common::engine::fingerprint(&engine);
    let target = dir.path().join("restored");
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let rp = strata_backup::archive::pitr::plan_restore_at(
        &clean,
        w.windows[0].end_ns,
        now,
        None,
        &target,
        &RestoreOptions::default(),
    )
    .await
    .unwrap();
    restore(
        clean.clone(),
        &rp,
        &RestoreOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    let got = common::engine::fingerprint(&Engine::open_read_only(&target).unwrap());
    assert_eq!(got, want);
}

/// The precise causes, one fault at a time: a chain start whose upload failed resumes the
/// same snapshot (its base is the first attempt's cut, not a later one); one whose manifest
/// landed with its reply lost adopts that manifest (no second backup); and a lock whose put
/// reply was lost is deleted again (it was left for every later lock check to read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chain_start_is_resumed_and_leaves_no_lock() {
    let s3 = common::start_s3().await;
    let (clean, faulty, faults) = repos(&s3, "archive-resume").await;
    let dir = tempfile::tempdir().unwrap();
    let engine = archiving_engine(dir.path());
    let mut shipper = Shipper::new(
        engine.clone(),
        faulty.clone(),
        Arc::new(ArchiveStats::default()),
    );
    let base = common::engine::base_ts();

    common::engine::ingest(&engine, "g", base, 50, 5);
    let first_cut = engine.stats().last_lsn;
    faults.set_scope(Some("data/"));
    faults.fail_puts.store(1, Ordering::SeqCst);
    let e = shipper.step().await.unwrap_err().to_string();
    assert!(e.contains("injected put"), "{e}");
    assert!(listed(&clean, "snapshots").await.is_empty());

    // More writes; the retry's manifest lands but its reply is lost.
    common::engine::ingest(&engine, "g", base + 1_000_000_000_000, 50, 5);
    let last = engine.stats().last_lsn;
    faults.set_scope(Some("snapshots/"));
    faults.lose_put_replies.store(1, Ordering::SeqCst);
    let e = shipper.step().await.unwrap_err().to_string();
    assert!(e.contains("injected put reply"), "{e}");
    let (ms, _) = clean.manifests().await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].lsn, first_cut, "the retry backed up a new snapshot");

    // The next step adopts that manifest, then ships what was written after its cut.
    faults.set_scope(None);
    let step = shipper.step().await.unwrap();
    assert_eq!(
        step,
        Step::NewChain {
            chain: ms[0].id.clone(),
            lsn: first_cut
        }
    );
    assert_eq!(
        clean.manifests().await.unwrap().0.len(),
        1,
        "a second backup"
    );
    assert_eq!(
        shipper.step().await.unwrap(),
        Step::Shipped {
            first: first_cut + 1,
            last
        }
    );
    let (w, _) = Windows::load(&clean).await.unwrap();
    assert_eq!(w.windows.len(), 1, "{w:?}");
    assert_eq!(
        (w.windows[0].first_lsn, w.windows[0].last_lsn),
        (first_cut + 1, last)
    );

    // A lock put whose reply is lost: the lock document is taken back.
    assert!(listed(&clean, "locks").await.is_empty());
    faults.set_scope(Some("locks/"));
    faults.lose_put_replies.store(1, Ordering::SeqCst);
    assert!(strata_backup::gc::lock_backup(&faulty).await.is_err());
    assert_eq!(listed(&clean, "locks").await, Vec::<String>::new());
}
