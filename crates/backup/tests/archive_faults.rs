//! Continuous archiving through object-store faults on the S3 path: the archiver ships while
//! the fault layer fails, loses replies to, stalls and cuts a random fraction of requests.
//! Failed steps are counted and retried; once the faults stop the archive catches up, the
//! repository shows one window with no gap (none is hidden either: every LSN from the chain's
//! snapshot to the last write is in it), and a restore to the newest point holds every write.
//! Then prune runs between archiver steps (racing it): no object the window needs is lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails since the round-2 integration (pitr + the manager's backup locks): under 30 % \
            faults no step succeeds, and after the faults stop the archiver catches up but the \
            repository shows no window; open defect of issue 11, see RELIABILITY.md"]
async fn archiving_through_s3_faults_catches_up_and_hides_no_gap() {
    let s3 = common::start_s3().await;
    let url = common::s3_url("archive-faults");
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
        Repository::init(common::s3_store(&s3, "archive-faults"), &url, init)
            .await
            .unwrap(),
    );
    let mut opts = common::s3_options(&s3);
    // No retries: every injected fault fails its step (the archiver's own retry is the next
    // step), and lost replies make it ship the same records again.
    opts.retries = 0;
    let fault = FaultStore::new(store::base_store(&url, &opts, false).unwrap());
    let faults = fault.faults.clone();
    let layered: DynStore = store::layered(Arc::new(fault), &opts);
    let faulty = Arc::new(Repository::open(layered, &url, Some("pw")).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let mut o = EngineOptions::new(dir.path().join("data"));
    o.background = false;
    o.archive_max_pending = Some(1 << 30);
    let engine = Arc::new(Engine::open(o).unwrap());
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
    drain(&mut shipper).await;
    println!(
        "archive through faults: {ok} steps ok, {failed} failed, {} faults injected",
        faults.injected.total()
    );
    assert!(failed > 0, "no step failed: the test did not test faults");
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
