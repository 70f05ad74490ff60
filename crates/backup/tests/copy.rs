//! `strata copy` through the library: an encrypted local repository to an unencrypted one on
//! S3 (the in-process S3 server), incremental (a second copy uploads nothing, a new snapshot
//! only its new objects), a restore from the copy, and a damaged source object failing the copy
//! with nothing written to the target.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::engine::{back_up, base_ts, fingerprint, ingest, open};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use strata_backup::copy::copy;
use strata_backup::crypto::KdfParams;
use strata_backup::repo::object_path;
use strata_backup::restore::{RestoreOptions, plan_restore, restore};
use strata_backup::verify::verify;
use strata_backup::{InitOptions, Progress, Repository};
use strata_engine::Engine;

fn opts(encryption: bool) -> InitOptions {
    InitOptions {
        encryption,
        password: Some("pw".into()),
        kdf: KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..Default::default()
    }
}

async fn restore_to(repo: &Arc<Repository>, id: &str, target: &Path) {
    let o = RestoreOptions::default();
    let plan = plan_restore(repo, id, target, &o).await.unwrap();
    restore(repo.clone(), &plan, &o, Arc::new(Progress::default()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_local_to_plain_s3_incrementally_then_restore_from_the_copy() {
    let t = tempfile::tempdir().unwrap();
    let local_dir = t.path().join("repo");
    let local = Arc::new(
        Repository::init(
            common::local_store(&local_dir),
            local_dir.to_str().unwrap(),
            opts(true),
        )
        .await
        .unwrap(),
    );
    let s3 = common::start_s3().await;
    let url = common::s3_url("copy");
    let remote = Arc::new(
        Repository::init(common::s3_store(&s3, "copy"), &url, opts(false))
            .await
            .unwrap(),
    );
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 4_000, 8);
    let s1 = back_up(&e, &local).await;
    e.flush().unwrap();
    ingest(&e, "g", base_ts() + 3_600_000_000_000, 1_000, 8);
    let s2 = back_up(&e, &local).await;
    let fp = fingerprint(&e);
    e.close().unwrap();

    let ids = vec![s1.id.clone(), s2.id.clone()];
    let r = copy(&local, &remote, &ids, &Progress::default())
        .await
        .unwrap();
    assert_eq!(r.copied, ids);
    assert!(r.objects_copied > 0 && r.bytes_uploaded > 0, "{r:?}");
    // s2 reuses s1's parts: fewer objects than files in both.
    assert!(r.objects_reused > 0, "{r:?}");
    let v = verify(&remote, None, true, &Progress::default())
        .await
        .unwrap();
    assert!(v.ok(), "{:?}", v.damage);
    // Object ids in the copy are the target's own (plain digests), not the source's keyed ones.
    let copied = remote.load_manifest(&s2.id).await.unwrap();
    assert!(copied.files.iter().all(|f| f.object == f.digest));

    // A second copy uploads nothing.
    let again = copy(&local, &remote, &ids, &Progress::default())
        .await
        .unwrap();
    assert_eq!(again.present, ids);
    assert_eq!((again.objects_copied, again.bytes_uploaded), (0, 0));

    // Restore from the copy: the data exactly.
    let out = t.path().join("restored");
    restore_to(&remote, &s2.id, &out).await;
    let r = Engine::open_read_only(&out).unwrap();
    assert_eq!(fingerprint(&r), fp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_source_object_fails_the_copy_and_writes_no_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (t.path().join("a"), t.path().join("b"));
    let a = Arc::new(
        Repository::init(
            common::local_store(&a_dir),
            a_dir.to_str().unwrap(),
            opts(true),
        )
        .await
        .unwrap(),
    );
    let b = Arc::new(
        Repository::init(
            common::local_store(&b_dir),
            b_dir.to_str().unwrap(),
            opts(true),
        )
        .await
        .unwrap(),
    );
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 2_000, 4);
    let s = back_up(&e, &a).await;
    e.close().unwrap();
    let victim = &s.files.iter().max_by_key(|f| f.size).unwrap().object;
    let p: ObjPath = object_path(victim);
    let mut bytes = a
        .store()
        .get(&p)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    a.store().put(&p, PutPayload::from(bytes)).await.unwrap();
    let err = copy(&a, &b, std::slice::from_ref(&s.id), &Progress::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(victim.as_str()), "{err}");
    assert!(b.snapshot_ids().await.unwrap().is_empty());
}
