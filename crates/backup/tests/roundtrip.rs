//! Backup and restore of a real engine data directory through the library: round trips on
//! local and S3 repositories, encrypted and not; incremental accounting; corruption of each
//! kind of object; hostile manifests; prune keeping shared objects.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::engine::{base_ts, fingerprint, ingest, open};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use strata_backup::backup::{BackupOptions, backup};
use strata_backup::crypto::KdfParams;
use strata_backup::manifest::FileKind;
use strata_backup::prune::{RetentionPolicy, plan_prune, prune};
use strata_backup::repo::object_path;
use strata_backup::restore::{RestoreOptions, plan_restore, restore};
use strata_backup::store::DynStore;
use strata_backup::store::fault::FaultStore;
use strata_backup::verify::verify;
use strata_backup::{Error, InitOptions, Manifest, Progress, Repository};
use strata_engine::Engine;

const FAST_KDF: KdfParams = KdfParams {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};

fn init_opts(enc: bool) -> InitOptions {
    InitOptions {
        encryption: enc,
        password: Some("pw".into()),
        kdf: FAST_KDF,
        ..Default::default()
    }
}

async fn backup_engine(repo: &Arc<Repository>, e: &Engine, opts: &BackupOptions) -> Manifest {
    let snap = e.snapshot().unwrap();
    let m = backup(repo.clone(), &snap, opts, Arc::new(Progress::default()))
        .await
        .unwrap();
    e.release_snapshot(&snap.id).unwrap();
    Arc::unwrap_or_clone(m)
}

async fn backup_dir(repo: &Arc<Repository>, dir: &Path, opts: &BackupOptions) -> Manifest {
    let e = open(dir);
    let m = backup_engine(repo, &e, opts).await;
    e.close().unwrap();
    m
}

async fn restore_to(
    repo: &Arc<Repository>,
    id: &str,
    target: &Path,
    node: Option<&str>,
) -> Result<(), Error> {
    let opts = RestoreOptions {
        node_id: node.map(str::to_string),
        parallelism: 4,
        ..Default::default()
    };
    let plan = plan_restore(repo, id, target, &opts).await?;
    restore(repo.clone(), &plan, &opts, Arc::new(Progress::default()))
        .await
        .map(|_| ())
}

/// A source data dir with flushed parts and unflushed WAL, left open; and its fingerprint.
fn make_source_open(dir: &Path) -> (Engine, (String, usize)) {
    // Snapshots would flush that WAL into parts first: keep it, so backups carry WAL.
    let mut o = strata_engine::EngineOptions::new(dir);
    o.background = false;
    o.snapshot_flush = false;
    let e = Engine::open(o).unwrap();
    ingest(&e, "metrics", base_ts(), 6000, 20);
    e.flush().unwrap();
    ingest(&e, "events", base_ts(), 1500, 5);
    e.flush().unwrap();
    // Left in the WAL: restore must replay it.
    ingest(&e, "metrics", base_ts() + 3_600_000_000_000, 500, 20);
    let fp = fingerprint(&e);
    (e, fp)
}

fn make_source(dir: &Path) -> (String, usize) {
    let (e, fp) = make_source_open(dir);
    e.close().unwrap();
    fp
}

async fn round_trip(store: DynStore, url: &str, enc: bool, src: &Engine, fp: &(String, usize)) {
    let repo = Arc::new(Repository::init(store, url, init_opts(enc)).await.unwrap());
    let m = backup_engine(&repo, src, &BackupOptions::default()).await;
    assert!(m.parts.len() >= 2, "parts backed up: {}", m.parts.len());
    assert!(m.files.iter().any(|f| f.kind == FileKind::Wal));
    let target = tempfile::tempdir().unwrap();
    let dest = target.path().join("restored");
    restore_to(&repo, "latest", &dest, Some("node-b"))
        .await
        .unwrap();
    let e = open(&dest);
    assert_eq!(
        &fingerprint(&e),
        fp,
        "restored data differs ({url}, encrypted {enc})"
    );
    assert_eq!(e.node_id(), "node-b");
    e.close().unwrap();
    let report = verify(&repo, None, true, &Progress::default())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.damage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_local_and_s3_encrypted_and_plain() {
    let src = tempfile::tempdir().unwrap();
    let (src_engine, fp) = make_source_open(src.path());
    assert!(fp.1 >= 8000, "points: {}", fp.1);
    for enc in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let url = d.path().to_str().unwrap().to_string();
        round_trip(common::local_store(d.path()), &url, enc, &src_engine, &fp).await;
    }
    let s3 = common::start_s3().await;
    for (enc, prefix) in [(false, "plain"), (true, "sealed")] {
        let url = common::s3_url(prefix);
        round_trip(common::s3_store(&s3, prefix), &url, enc, &src_engine, &fp).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_uploads_only_new_parts() {
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let fault = FaultStore::new(Arc::new(object_store::memory::InMemory::new()));
    let faults = fault.faults.clone();
    let store = strata_backup::store::layered(Arc::new(fault), &common::fast_options());
    let repo = Arc::new(
        Repository::init(store, "memory://", init_opts(true))
            .await
            .unwrap(),
    );
    let m1 = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    assert_eq!(m1.stats.reused_objects, 0);

    // Nothing new: only the manifest is uploaded (and the backup's lock, which keeps garbage
    // collection off while it runs; see crates/backup/src/gc.rs), and nothing is downloaded
    // (the parent manifest is the one this handle wrote).
    let puts = faults.puts.load(Ordering::SeqCst);
    let gets = faults.gets.load(Ordering::SeqCst);
    let m2 = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    assert_eq!(m2.stats.new_objects, 0, "{:?}", m2.stats);
    assert_eq!(
        faults.puts.load(Ordering::SeqCst) - puts,
        2,
        "only the manifest and the lock"
    );
    assert_eq!(faults.gets.load(Ordering::SeqCst) - gets, 0, "no download");
    assert_eq!(m2.parent.as_deref(), Some(m1.id.as_str()));

    // About 1 % more data in a new part.
    {
        let e = open(src.path());
        ingest(&e, "metrics", base_ts() + 2 * 3_600_000_000_000, 80, 20);
        e.flush().unwrap();
        e.close().unwrap();
    }
    let before = faults.bytes_put.load(Ordering::SeqCst);
    let m3 = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    let uploaded = faults.bytes_put.load(Ordering::SeqCst) - before;
    let new_parts = m3
        .parts
        .iter()
        .filter(|p| !m2.parts.iter().any(|q| q.part_id == p.part_id))
        .count();
    // The new points land in one segment, spread over its shards.
    assert!((1..=2).contains(&new_parts), "new parts: {new_parts}");
    assert!(m3.stats.reused_objects > 0);
    let part_files_new = m3
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Part && !m2.files.iter().any(|g| g.object == f.object))
        .count() as u64;
    let meta_new = m3.stats.new_objects - part_files_new;
    assert!(part_files_new >= 1);
    assert!(meta_new <= 12, "few metadata objects change: {meta_new}");
    // What went over the wire is exactly the new objects plus the manifest, and the backup's
    // small lock document (crates/backup/src/gc.rs).
    let manifest_size = repo
        .store()
        .head(&ObjPath::from(format!("snapshots/{}", m3.id)))
        .await
        .unwrap()
        .size;
    let lock_doc = uploaded - (m3.stats.uploaded_bytes + manifest_size);
    assert!(
        lock_doc > 0 && lock_doc < 512,
        "{lock_doc} bytes beyond objects and manifest"
    );
    assert!(
        m3.stats.new_bytes * 4 < m3.stats.bytes,
        "incremental read {} of {} bytes",
        m3.stats.new_bytes,
        m3.stats.bytes
    );
    // --full re-reads everything and, with nothing damaged, uploads nothing but the manifest.
    let puts = faults.puts.load(Ordering::SeqCst);
    let full = BackupOptions {
        full: true,
        ..Default::default()
    };
    let m4 = backup_dir(&repo, src.path(), &full).await;
    assert_eq!(m4.stats.new_objects, 0);
    assert_eq!(
        faults.puts.load(Ordering::SeqCst) - puts,
        2,
        "only the manifest and the lock"
    );
}

/// Flips one byte in the middle of a stored object.
async fn flip(store: &DynStore, key: &ObjPath) {
    let mut b = store
        .get(key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let i = b.len() / 2;
    b[i] ^= 0x10;
    store.put(key, PutPayload::from(b)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_named_and_restore_fails_closed() {
    let src = tempfile::tempdir().unwrap();
    let (src_engine, _) = make_source_open(src.path());
    let rd = tempfile::tempdir().unwrap();
    let url = rd.path().to_str().unwrap().to_string();
    let store = common::local_store(rd.path());
    let repo = Arc::new(
        Repository::init(store.clone(), &url, init_opts(true))
            .await
            .unwrap(),
    );
    let m = backup_engine(&repo, &src_engine, &BackupOptions::default()).await;

    // An existing data directory with a marker file: it must survive every failed restore.
    let tgt = tempfile::tempdir().unwrap();
    let dest = tgt.path().join("data");
    open(&dest).close().unwrap();
    std::fs::write(dest.join("marker"), b"old").unwrap();
    let untouched = |dest: &Path| {
        assert_eq!(std::fs::read(dest.join("marker")).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            1,
            "no leftovers"
        );
    };

    for kind in [FileKind::Part, FileKind::Wal] {
        let f = m
            .files
            .iter()
            .find(|f| f.kind == kind && f.size > 100)
            .unwrap();
        let key = object_path(&f.object);
        let original = store.get(&key).await.unwrap().bytes().await.unwrap();
        flip(&store, &key).await;
        let report = verify(&repo, None, true, &Progress::default())
            .await
            .unwrap();
        assert_eq!(report.damage.len(), 1);
        let d = &report.damage[0];
        assert_eq!(d.object, key.to_string());
        assert_eq!(d.affects[0].snapshot, m.id);
        assert_eq!(d.affects[0].file, f.path);
        if kind == FileKind::Part {
            assert!(
                d.affects[0].what.contains("group '"),
                "{}",
                d.affects[0].what
            );
        } else {
            assert!(d.affects[0].what.contains("WAL"), "{}", d.affects[0].what);
        }
        // Structure-only verify cannot see a flipped byte of the right size, restore can.
        let opts = RestoreOptions {
            force: true,
            parallelism: 2,
            ..Default::default()
        };
        let plan = plan_restore(&repo, &m.id, &dest, &opts).await.unwrap();
        let r = restore(repo.clone(), &plan, &opts, Arc::new(Progress::default())).await;
        assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
        untouched(&dest);
        store.put(&key, PutPayload::from(original)).await.unwrap();
    }

    // The manifest.
    let key = ObjPath::from(format!("snapshots/{}", m.id));
    let original = store.get(&key).await.unwrap().bytes().await.unwrap();
    flip(&store, &key).await;
    let report = verify(&repo, None, true, &Progress::default())
        .await
        .unwrap();
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.damage[0].object, key.to_string());
    assert!(restore_to(&repo, &m.id, &dest, None).await.is_err());
    untouched(&dest);
    store.put(&key, PutPayload::from(original)).await.unwrap();

    // The key file: opening names it instead of claiming a wrong password.
    let keys: Vec<_> = std::fs::read_dir(rd.path().join("keys")).unwrap().collect();
    let kp = keys[0].as_ref().unwrap().path();
    let mut kb = std::fs::read(&kp).unwrap();
    let i = kb.len() / 2;
    kb[i] = if kb[i] == b'0' { b'1' } else { b'0' };
    std::fs::write(&kp, kb).unwrap();
    match Repository::open(store.clone(), &url, Some("pw")).await {
        Err(Error::Corrupt { name, .. }) => assert!(name.starts_with("keys/"), "{name}"),
        other => panic!("damaged key file not named: {other:?}"),
    }
}

#[tokio::test]
async fn hostile_manifests_are_rejected_before_writing() {
    let store = common::memory_store();
    let repo = Arc::new(
        Repository::init(store, "memory://", init_opts(false))
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"payload").unwrap();
    let digest = *blake3::hash(b"payload").as_bytes();
    let id = repo.object_id(&digest);
    let stored = repo.upload_file(&id, &f, 7, &digest, false).await.unwrap();
    let base = serde_json::json!({
        "version": 1, "id": "evil", "time": 0, "finished": 0, "node_id": "n",
        "engine_format": 1, "kind": "full", "parent": null, "lsn": 1,
        "catalog": {"groups": []}, "parts": [], "wal": [], "labels": {},
        "files": [{"path": "../../escaped", "size": 7, "digest": hex::encode(digest),
                   "kind": "meta", "object": id, "stored_size": stored}],
        "stats": {"files": 1, "bytes": 7, "new_objects": 1, "new_bytes": 7,
                  "uploaded_bytes": stored, "reused_objects": 0}
    });
    let mut lying = base.clone();
    lying["id"] = "liar".into();
    lying["files"][0]["path"] = "ok".into();
    lying["files"][0]["size"] = (1u64 << 40).into();
    lying["stats"]["bytes"] = (1u64 << 40).into();
    for m in [base, lying] {
        let m: Manifest = serde_json::from_value(m).unwrap();
        repo.save_manifest(&m).await.unwrap();
        let target = dir.path().join(format!("t-{}", m.id));
        let r = restore_to(&repo, &m.id, &target, None).await;
        assert!(matches!(r, Err(Error::HostileManifest { .. })), "{r:?}");
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_snapshots_and_keeps_shared_objects() {
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let store = common::memory_store();
    let repo = Arc::new(
        Repository::init(store, "memory://", init_opts(false))
            .await
            .unwrap(),
    );
    let m1 = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    {
        let e = open(src.path());
        ingest(&e, "metrics", base_ts() + 3 * 3_600_000_000_000, 400, 20);
        e.flush().unwrap();
        e.close().unwrap();
    }
    let m2 = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let plan = plan_prune(&repo, &policy, Duration::ZERO).await.unwrap();
    let removed: Vec<_> = plan
        .decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(removed, vec![m1.id.clone()]);
    let only_m1: usize = {
        let o2: std::collections::HashSet<_> = m2.files.iter().map(|f| &f.object).collect();
        let o1: std::collections::HashSet<_> = m1.files.iter().map(|f| &f.object).collect();
        o1.difference(&o2).count()
    };
    assert_eq!(plan.objects_to_remove, only_m1);
    let report = prune(&repo, &plan).await.unwrap();
    assert_eq!(report.snapshots_removed, 1);
    assert_eq!(report.objects_removed, only_m1);
    // Everything m2 needs (including the objects it shared with m1) is intact.
    let v = verify(&repo, None, true, &Progress::default())
        .await
        .unwrap();
    assert!(v.ok(), "{:?}", v.damage);
    assert_eq!(v.snapshots, vec![m2.id.clone()]);
    let dest = tempfile::tempdir().unwrap();
    restore_to(&repo, &m2.id, &dest.path().join("d"), None)
        .await
        .unwrap();
}

/// The background merge policy must keep incremental backups small: twenty rounds of +1 %
/// data, each flushed and merged as a live server would, each backed up. The parts of the full
/// backup must survive every round (same part, same objects, nothing re-read): merging a small
/// new part into the big ones renamed and re-uploaded the big ones, and made +1 % cost 93 % of a
/// full backup in the headline benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incrementals_stay_small_while_merges_run() {
    let src = tempfile::tempdir().unwrap();
    {
        let e = open(src.path());
        ingest(&e, "metrics", base_ts(), 6000, 20);
        e.flush().unwrap();
        e.merge_pending().unwrap();
        e.close().unwrap();
    }
    let store = strata_backup::store::layered(
        Arc::new(object_store::memory::InMemory::new()),
        &common::fast_options(),
    );
    let repo = Arc::new(
        Repository::init(store, "memory://", init_opts(true))
            .await
            .unwrap(),
    );
    let full = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
    let big: Vec<u64> = full.parts.iter().map(|p| p.part_id).collect();
    assert!(!big.is_empty());
    let mut merges = 0;
    let mut most_parts = 0;
    for round in 0..20i64 {
        {
            let e = open(src.path());
            let start = base_ts() + 2 * 3_600_000_000_000 + round * 60_000_000_000;
            ingest(&e, "metrics", start, 60, 20);
            e.flush().unwrap();
            let before = e.stats().merges;
            e.merge_pending().unwrap();
            merges += e.stats().merges - before;
            e.close().unwrap();
        }
        let m = backup_dir(&repo, src.path(), &BackupOptions::default()).await;
        for id in &big {
            assert!(
                m.parts.iter().any(|p| p.part_id == *id),
                "round {round}: part {id} of the full backup was merged away; \
                 this backup read {} of {} bytes",
                m.stats.new_bytes,
                m.stats.bytes
            );
        }
        // Less than the whole data changed: the big parts' bytes were not read again.
        assert!(m.stats.new_bytes * 2 < m.stats.bytes, "round {round}");
        most_parts = most_parts.max(m.parts.len());
    }
    assert!(
        merges > 0,
        "the rounds never merged, the test proves nothing"
    );
    assert!(
        most_parts <= big.len() + 8,
        "small parts piled up: {most_parts} parts"
    );
}
