//! Garbage collection against concurrent backups: the known hole (a backup reusing its parent's
//! objects while prune deletes that parent) closed by the locks; the two phases and their grace;
//! pinned snapshots; and backups and prunes racing for a while, after which every kept
//! snapshot verifies with its data.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::engine::{base_ts, ingest, open};
use strata_backup::backup::{BackupOptions, backup};
use strata_backup::crypto::KdfParams;
use strata_backup::gc;
use strata_backup::prune::{RetentionPolicy, plan_prune, prune};
use strata_backup::verify::verify;
use strata_backup::{InitOptions, Manifest, Progress, Repository};
use strata_engine::Engine;

fn init_opts() -> InitOptions {
    InitOptions {
        encryption: true,
        password: Some("pw".into()),
        kdf: KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..Default::default()
    }
}

async fn repo_in(dir: &std::path::Path) -> Arc<Repository> {
    let store = common::local_store(dir);
    Arc::new(
        Repository::init(store, dir.to_str().unwrap(), init_opts())
            .await
            .unwrap(),
    )
}

async fn backup_engine(repo: &Arc<Repository>, e: &Engine) -> Manifest {
    let snap = e.snapshot().unwrap();
    let m = backup(
        repo.clone(),
        &snap,
        &BackupOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    e.release_snapshot(&snap.id).unwrap();
    Arc::unwrap_or_clone(m)
}

async fn verify_all(repo: &Repository) {
    let r = verify(repo, None, true, &Progress::default())
        .await
        .unwrap();
    assert!(r.ok(), "damage: {:?}", r.damage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_backup_defers_deletion_of_its_parents_objects() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_in(&t.path().join("repo")).await;
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 5_000, 5);
    let parent = backup_engine(&repo, &e).await;

    // A backup is running (it has read `parent` and will reuse its objects)...
    let running = gc::lock_backup(&repo).await.unwrap();
    // ...while a prune removes the parent and collects garbage with no grace.
    repo.delete_manifest(&parent.id).await.unwrap();
    let r = gc::collect(&repo, Duration::ZERO).await.unwrap();
    assert!(r.objects_marked > 0, "{r:?}");
    assert_eq!(
        r.objects_removed, 0,
        "deleted under a running backup: {r:?}"
    );
    assert!(r.deferred.is_some(), "{r:?}");
    // The backup commits: it names the parent's objects, which are all still there.
    let child = backup_engine(&repo, &e).await;
    running.release().await;
    assert_eq!(child.stats.new_objects, 0, "{:?}", child.stats);
    // The marks are processed now, and nothing named by the child goes.
    let r = gc::collect(&repo, Duration::ZERO).await.unwrap();
    assert_eq!(r.objects_removed, 0, "{r:?}");
    verify_all(&repo).await;

    // Without a running backup, what nothing names is deleted.
    repo.delete_manifest(&child.id).await.unwrap();
    let r = gc::collect(&repo, Duration::ZERO).await.unwrap();
    assert!(r.objects_removed > 0 && r.deferred.is_none(), "{r:?}");
    assert!(repo.list_objects().await.unwrap().is_empty());
    e.close().unwrap();
}

/// Locks are written without fsync, so a power cut can leave one empty. An unreadable lock
/// holds garbage collection off (it could be another prune's), until its file is older than
/// the lock timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_lock_holds_collection_off_until_it_is_stale() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("repo");
    let repo = repo_in(&root).await;
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 2_000, 3);
    let m = backup_engine(&repo, &e).await;
    repo.delete_manifest(&m.id).await.unwrap();
    std::fs::create_dir_all(root.join("locks")).unwrap();
    let torn = root.join("locks/backup-00000000deadbeef");
    std::fs::write(&torn, b"").unwrap();
    for _ in 0..2 {
        match gc::collect(&repo, Duration::ZERO).await {
            Err(strata_backup::Error::Refused(m)) => assert!(m.contains("deadbeef"), "{m}"),
            other => panic!("collected under an unreadable lock: {other:?}"),
        }
        assert!(!repo.list_objects().await.unwrap().is_empty());
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let r = gc::collect(&repo, Duration::ZERO).await.unwrap();
    assert!(r.objects_removed > 0 && r.deferred.is_none(), "{r:?}");
    assert!(repo.list_objects().await.unwrap().is_empty());
    e.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_wait_out_the_grace_and_pins_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_in(&t.path().join("repo")).await;
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 3_000, 3);
    let first = backup_engine(&repo, &e).await;
    e.flush().unwrap();
    ingest(&e, "g", base_ts() + 3_600_000_000_000, 3_000, 3);
    e.compact().unwrap();
    let second = backup_engine(&repo, &e).await;
    let third = backup_engine(&repo, &e).await;

    // Pinned: keep-last 1 keeps the pinned first snapshot too.
    gc::pin(&repo, &first.id, "audit").await.unwrap();
    let keep1 = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let plan = plan_prune(&repo, &keep1, Duration::from_secs(3600))
        .await
        .unwrap();
    let pinned = plan.decisions.iter().find(|d| d.id == first.id).unwrap();
    assert!(
        pinned.keep && pinned.reasons.contains(&"pinned".to_string()),
        "{pinned:?}"
    );
    let report = prune(&repo, &plan).await.unwrap();
    assert_eq!(report.snapshots_removed, 1, "{report:?}");
    let (ms, _) = repo.manifests().await.unwrap();
    let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), third.id.as_str()]);
    let _ = second;
    // A grace of an hour: marked, nothing deleted yet.
    assert_eq!(report.objects_removed, 0, "{report:?}");
    // Unpinned, the next prune removes it; the objects only it named are marked now, and go
    // only once their mark is past the grace (0 here).
    assert!(gc::unpin(&repo, &first.id).await.unwrap());
    let plan = plan_prune(&repo, &keep1, Duration::ZERO).await.unwrap();
    let report = prune(&repo, &plan).await.unwrap();
    assert_eq!(report.snapshots_removed, 1);
    assert!(report.objects_removed > 0, "{report:?}");
    verify_all(&repo).await;
    let (ms, _) = repo.manifests().await.unwrap();
    assert_eq!(ms.len(), 1);
    e.close().unwrap();
}

/// Backups (each a little more data) and prunes (keep-last 2, no grace) racing; afterwards
/// every kept snapshot verifies with `--read-data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backups_and_prunes_racing_never_break_a_kept_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_in(&t.path().join("repo")).await;
    let e = Arc::new(open(&t.path().join("data")));
    ingest(&e, "g", base_ts(), 2_000, 4);
    let rounds: usize = std::env::var("STRATA_GC_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let backups = {
        let (repo, e) = (repo.clone(), e.clone());
        tokio::spawn(async move {
            for i in 0..rounds {
                let e2 = e.clone();
                tokio::task::spawn_blocking(move || {
                    ingest(
                        &e2,
                        "g",
                        base_ts() + (i as i64 + 1) * 7_200_000_000_000,
                        500,
                        4,
                    );
                    if i % 3 == 0 {
                        e2.compact().unwrap();
                    }
                })
                .await
                .unwrap();
                backup_engine(&repo, &e).await;
            }
        })
    };
    let prunes = {
        let repo = repo.clone();
        tokio::spawn(async move {
            let keep2 = RetentionPolicy {
                keep_last: Some(2),
                ..Default::default()
            };
            let mut n = 0;
            while n < rounds * 3 {
                if let Ok(plan) = plan_prune(&repo, &keep2, Duration::ZERO).await {
                    // Two prunes never run here at once; a deferral is fine.
                    prune(&repo, &plan).await.unwrap();
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    backups.await.unwrap();
    prunes.await.unwrap();
    verify_all(&repo).await;
    // And once quiet, a last prune leaves the two newest, which verify too.
    let keep2 = RetentionPolicy {
        keep_last: Some(2),
        ..Default::default()
    };
    let plan = plan_prune(&repo, &keep2, Duration::ZERO).await.unwrap();
    let r = prune(&repo, &plan).await.unwrap();
    assert!(r.deferred.is_none(), "{r:?}");
    verify_all(&repo).await;
    assert_eq!(repo.manifests().await.unwrap().0.len(), 2);
}
