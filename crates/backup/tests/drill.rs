//! `strata drill` through the library: a good repository passes (every part reads back as
//! recorded, every measure answers queries); a damaged object, an object replaced by another
//! valid one, and a manifest whose recorded content disagrees with the data each fail, naming
//! what differs; the scratch directory is gone afterwards either way.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::engine::{back_up, base_ts, ingest, open};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use strata_backup::crypto::KdfParams;
use strata_backup::drill::{DrillOptions, drill};
use strata_backup::repo::object_path;
use strata_backup::{InitOptions, Progress, Repository};

async fn repo(dir: &std::path::Path) -> Arc<Repository> {
    Arc::new(
        Repository::init(
            common::local_store(dir),
            dir.to_str().unwrap(),
            InitOptions {
                encryption: false,
                password: None,
                kdf: KdfParams {
                    m_cost: 256,
                    t_cost: 1,
                    p_cost: 1,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    )
}

fn options(scratch: &std::path::Path) -> DrillOptions {
    DrillOptions {
        scratch: Some(scratch.to_path_buf()),
        keep: false,
        parallelism: 2,
    }
}

fn scratch_is_empty(scratch: &std::path::Path) -> bool {
    std::fs::read_dir(scratch).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_snapshot_passes_and_records_content_per_measure() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(&t.path().join("repo")).await;
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 3_000, 6);
    e.flush().unwrap();
    let s1 = back_up(&e, &r).await;
    // New data after the first backup: only the new parts' content is read (the rest comes
    // from the parent); unflushed points stay in the WAL.
    ingest(&e, "g", base_ts() + 3_600_000_000_000, 500, 6);
    e.flush().unwrap();
    ingest(&e, "g", base_ts() + 7_200_000_000_000, 100, 6);
    let s2 = back_up(&e, &r).await;
    e.close().unwrap();
    assert!(s1.parts.iter().all(|p| !p.content.is_empty()));
    for p in &s2.parts {
        assert!(!p.content.is_empty(), "{p:?}");
        let points: u64 = p.content.iter().map(|c| c.points).sum();
        assert_eq!(points, p.rows, "{p:?}");
        if let Some(old) = s1.parts.iter().find(|o| o.part_id == p.part_id) {
            assert_eq!(old.content, p.content);
        }
    }
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let rep = drill(
        r.clone(),
        "latest",
        &options(&scratch),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert!(rep.passed, "{:?}", rep.differences);
    assert_eq!(rep.snapshot, s2.id);
    assert!(!rep.measures.is_empty());
    let recorded: u64 = rep.measures.iter().map(|m| m.points).sum();
    let stored: u64 = s2.parts.iter().map(|p| p.rows).sum();
    assert_eq!(recorded, stored);
    // Queries see the flushed parts and the WAL's points.
    let queried: u64 = rep.measures.iter().map(|m| m.query_points.unwrap()).sum();
    assert!(queried >= stored, "{queried} < {stored}");
    assert!(rep.measures.iter().all(|m| m.matched && m.digest.is_some()));
    assert!(scratch_is_empty(&scratch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_replaced_objects_and_wrong_records_fail_naming_what_differs() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(&t.path().join("repo")).await;
    let e = open(&t.path().join("data"));
    ingest(&e, "g", base_ts(), 2_000, 4);
    e.flush().unwrap();
    let a = back_up(&e, &r).await;
    ingest(&e, "h", base_ts(), 2_000, 4);
    e.flush().unwrap();
    let b = back_up(&e, &r).await;
    e.close().unwrap();
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let run = |id: String| {
        let (r, scratch) = (r.clone(), scratch.clone());
        async move {
            drill(r, &id, &options(&scratch), Arc::new(Progress::default()))
                .await
                .unwrap()
        }
    };

    // A manifest whose recorded content disagrees with its data (a writer bug, or a manifest
    // edited by hand): the part is named with what differs.
    let mut wrong = a.clone();
    wrong.id = "00000000000000aa".into();
    wrong.parts[0].content[0].points += 1;
    r.save_manifest(&wrong).await.unwrap();
    let rep = run(wrong.id.clone()).await;
    assert!(!rep.passed);
    let d = rep.differences.join("\n");
    assert!(d.contains(&wrong.parts[0].dir), "{d}");
    assert!(d.contains("points"), "{d}");
    assert!(rep.measures.iter().any(|m| !m.matched));
    assert!(scratch_is_empty(&scratch));
    r.delete_manifest(&wrong.id).await.unwrap();

    // The largest data object of `b` replaced by another valid object of the repository.
    let files: Vec<_> = b
        .files
        .iter()
        .filter(|f| f.path.ends_with("data.bin"))
        .collect();
    let (victim, other) = (files[0], files[1]);
    let stored = r
        .store()
        .get(&object_path(&other.object))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    r.store()
        .put(&object_path(&victim.object), PutPayload::from(stored))
        .await
        .unwrap();
    let rep = run(b.id.clone()).await;
    assert!(!rep.passed);
    let d = rep.differences.join("\n");
    assert!(d.contains("restore failed"), "{d}");
    assert!(d.contains(&victim.object), "{d}");
    assert!(scratch_is_empty(&scratch));

    // A flipped byte in an object of `a`.
    let victim = a.files.iter().max_by_key(|f| f.size).unwrap();
    let p: ObjPath = object_path(&victim.object);
    let mut bytes = r
        .store()
        .get(&p)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    r.store().put(&p, PutPayload::from(bytes)).await.unwrap();
    let rep = run(a.id.clone()).await;
    assert!(!rep.passed);
    assert!(rep.differences.join("\n").contains(&victim.object));
}
