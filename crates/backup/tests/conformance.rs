//! One conformance suite, run against every back end: memory, local directory and S3 (an
//! in-process s3s server). Each back end goes through the same layers the CLI uses.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use strata_backup::crypto::KdfParams;
use strata_backup::format::Compression;
use strata_backup::repo::object_path;
use strata_backup::store::DynStore;
use strata_backup::store::fault::FaultStore;
use strata_backup::{Error, InitOptions, Repository};

const FAST_KDF: KdfParams = KdfParams {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn store_basics(store: DynStore) {
    let p = Path::from("t/a");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&p, PutPayload::from_static(b"one"), create())
        .await
        .unwrap();
    let again = store
        .put_opts(&p, PutPayload::from_static(b"two"), create())
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "create-if-absent must refuse: {again:?}"
    );
    assert_eq!(store.get(&p).await.unwrap().bytes().await.unwrap(), "one");
    assert_eq!(store.head(&p).await.unwrap().size, 3);
    store
        .put(&Path::from("t/b/c"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let mut listed: Vec<String> = store
        .list(Some(&Path::from("t")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    assert_eq!(listed, vec!["t/a", "t/b/c"]);
    let big = noise(11 << 20, 7);
    let upload = store.put_multipart(&Path::from("t/big")).await.unwrap();
    let mut w = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
    for c in big.chunks(3 << 20) {
        w.write(c);
    }
    w.finish().await.unwrap();
    let got = store
        .get(&Path::from("t/big"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == big.as_slice(), "multipart object differs");
    store.delete(&p).await.unwrap();
    assert!(matches!(
        store.get(&p).await,
        Err(object_store::Error::NotFound { .. })
    ));
}

async fn repo_roundtrip(store: DynStore, url: &str, encrypted: bool) {
    let opts = InitOptions {
        encryption: encrypted,
        compression: Compression::Zstd(3),
        password: Some("pw".into()),
        kdf: FAST_KDF,
    };
    let repo = Repository::init(store.clone(), url, opts.clone())
        .await
        .unwrap();
    assert!(matches!(
        Repository::init(store.clone(), url, opts).await,
        Err(Error::RepositoryExists(_))
    ));
    if encrypted {
        assert!(matches!(
            Repository::open(store.clone(), url, Some("wrong")).await,
            Err(Error::WrongPassword)
        ));
        assert!(matches!(
            Repository::open(store.clone(), url, None).await,
            Err(Error::PasswordRequired)
        ));
    }
    let repo2 = Repository::open(store.clone(), url, Some("pw"))
        .await
        .unwrap();
    assert_eq!(repo2.config(), repo.config());

    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    // Empty, small compressible, and large incompressible (multipart) files.
    for (i, data) in [Vec::new(), vec![b'a'; 300_000], noise(9 << 20, 3)]
        .into_iter()
        .enumerate()
    {
        let f = dir.path().join(format!("f{i}"));
        std::fs::write(&f, &data).unwrap();
        let digest = *blake3::hash(&data).as_bytes();
        let id = repo.object_id(&digest);
        assert_eq!(id, repo2.object_id(&digest), "ids are stable across opens");
        if encrypted {
            assert_ne!(id, hex::encode(digest), "encrypted ids must be keyed");
        }
        let stored = repo
            .upload_file(&id, &f, data.len() as u64, &digest, false)
            .await
            .unwrap();
        assert_eq!(repo.object_size(&id).await.unwrap(), Some(stored));
        // Uploading the same content again is harmless (write-once, same bytes).
        repo.upload_file(&id, &f, data.len() as u64, &digest, false)
            .await
            .unwrap();
        let out = dir.path().join(format!("out{i}"));
        let mut sink = tokio::fs::File::create(&out).await.unwrap();
        repo2
            .download(&id, data.len() as u64, &digest, Some(&mut sink), &out)
            .await
            .unwrap();
        drop(sink);
        assert!(std::fs::read(&out).unwrap() == data, "file {i} differs");
        ids.push((id, data.len() as u64, digest));
    }
    let listed = repo.list_objects().await.unwrap();
    assert_eq!(listed.len(), 3);
    if url.starts_with("s3") || url.starts_with("/") {
        // compressible data really got compressed
        assert!(listed[&ids[1].0].size < 10_000);
    }

    // A file that does not match its recorded digest is never published.
    let f = dir.path().join("liar");
    std::fs::write(&f, b"actual").unwrap();
    let claimed = *blake3::hash(b"claimed").as_bytes();
    let lid = repo.object_id(&claimed);
    assert!(matches!(
        repo.upload_file(&lid, &f, 6, &claimed, false).await,
        Err(Error::SourceChanged { .. })
    ));
    assert_eq!(repo.object_size(&lid).await.unwrap(), None);

    // One flipped byte in a stored object is caught on download.
    let (id, size, digest) = &ids[1];
    let mut bytes = store
        .get(&object_path(id))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    store
        .put(&object_path(id), PutPayload::from(bytes))
        .await
        .unwrap();
    let r = repo.download(id, *size, digest, None, dir.path()).await;
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
}

#[tokio::test]
async fn memory_store_conformance() {
    store_basics(common::memory_store()).await;
}

#[tokio::test]
async fn local_store_conformance() {
    let d = tempfile::tempdir().unwrap();
    store_basics(common::local_store(d.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_conformance() {
    let s = common::start_s3().await;
    store_basics(common::s3_store(&s, "conf")).await;
}

#[tokio::test]
async fn memory_repo_conformance() {
    repo_roundtrip(common::memory_store(), "memory://", false).await;
    repo_roundtrip(common::memory_store(), "memory://", true).await;
}

#[tokio::test]
async fn local_repo_conformance() {
    for enc in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let url = d.path().to_str().unwrap().to_string();
        repo_roundtrip(common::local_store(d.path()), &url, enc).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_repo_conformance() {
    let s = common::start_s3().await;
    repo_roundtrip(
        common::s3_store(&s, "plain"),
        &common::s3_url("plain"),
        false,
    )
    .await;
    repo_roundtrip(
        common::s3_store(&s, "sealed"),
        &common::s3_url("sealed"),
        true,
    )
    .await;
}

#[tokio::test]
async fn transient_failures_are_retried_and_broken_bodies_resumed() {
    let fault = FaultStore::new(Arc::new(object_store::memory::InMemory::new()));
    let faults = fault.faults.clone();
    let store = strata_backup::store::layered(Arc::new(fault), &common::fast_options());
    let repo = Repository::init(
        store.clone(),
        "memory://",
        InitOptions {
            encryption: true,
            password: Some("pw".into()),
            kdf: FAST_KDF,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = noise(3 << 20, 9);
    let f = dir.path().join("f");
    std::fs::write(&f, &data).unwrap();
    let digest = *blake3::hash(&data).as_bytes();
    let id = repo.object_id(&digest);
    faults.fail_puts.store(3, Ordering::SeqCst);
    repo.upload_file(&id, &f, data.len() as u64, &digest, false)
        .await
        .unwrap();
    assert_eq!(
        faults.fail_puts.load(Ordering::SeqCst),
        0,
        "faults were injected"
    );

    faults.fail_gets.store(2, Ordering::SeqCst);
    faults.cut_after.store(1 << 20, Ordering::SeqCst);
    faults.cut_bodies.store(2, Ordering::SeqCst);
    let out = dir.path().join("out");
    let mut sink = tokio::fs::File::create(&out).await.unwrap();
    repo.download(&id, data.len() as u64, &digest, Some(&mut sink), &out)
        .await
        .unwrap();
    drop(sink);
    assert_eq!(
        faults.cut_bodies.load(Ordering::SeqCst),
        0,
        "bodies were broken"
    );
    assert!(std::fs::read(&out).unwrap() == data);

    // More failures than retries: a clean error, nothing published.
    let data2 = noise(1000, 5);
    let f2 = dir.path().join("g");
    std::fs::write(&f2, &data2).unwrap();
    let d2 = *blake3::hash(&data2).as_bytes();
    let id2 = repo.object_id(&d2);
    faults.fail_puts.store(100, Ordering::SeqCst);
    assert!(repo.upload_file(&id2, &f2, 1000, &d2, false).await.is_err());
    faults.fail_puts.store(0, Ordering::SeqCst);
    assert_eq!(repo.object_size(&id2).await.unwrap(), None);
}

/// The bandwidth-limit layer is transparent to content (rates high enough not to slow the test).
#[tokio::test]
async fn throttled_store_conformance() {
    let mut o = common::fast_options();
    o.limit_upload = 1 << 30;
    o.limit_download = 1 << 30;
    o.concurrency = 2;
    let store =
        || strata_backup::store::layered(Arc::new(object_store::memory::InMemory::new()), &o);
    store_basics(store()).await;
    repo_roundtrip(store(), "memory://", true).await;
}
