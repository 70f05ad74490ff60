//! `--skip-damaged` through the library: with one damaged part, everything else is restored
//! exactly and the report names the part's group, measures, series and time range; without
//! the flag the restore fails closed; damage to the snapshot's own metadata is never skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use strata_backup::crypto::KdfParams;
use strata_backup::manifest::FileKind;
use strata_backup::restore::{RestoreOptions, plan_restore, restore};
use strata_backup::store::DynStore;
use strata_backup::{Error, InitOptions, Progress, Repository};
use strata_engine::{Engine, EngineOptions, FieldValue, Point, ScanRequest, SeriesData};

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

fn all(e: &Engine, m: &str) -> Vec<SeriesData> {
    e.scan(&ScanRequest {
        group: "metrics".into(),
        measure: m.into(),
        from: i64::MIN,
        to: i64::MAX,
        matchers: vec![],
        fields: None,
    })
    .unwrap()
}

fn key(s: &SeriesData, m: &str) -> String {
    let mut k = m.to_string();
    for (t, v) in &s.tags {
        k.push_str(&format!(",{t}={v}"));
    }
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_damaged_part_is_skipped_and_named_everything_else_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = EngineOptions::new(dir.path());
    o.background = false;
    let src = Engine::open(o).unwrap();
    let base = common::engine::base_ts();
    // Three flushes: three parts per shard, each series in every part.
    for round in 0..3i64 {
        let pts: Vec<Point> = (0..600)
            .map(|i| Point {
                measure: if i % 2 == 0 { "cpu" } else { "mem" }.into(),
                tags: vec![("host".into(), format!("h{}", i % 12))],
                fields: vec![("v".into(), FieldValue::F64(i as f64))],
                timestamp: base + round * 3_600_000_000_000 + i * 1_000_000_000,
            })
            .collect();
        src.write("metrics", &pts).unwrap();
        src.flush().unwrap();
    }
    let store = common::memory_store();
    let repo = Arc::new(
        Repository::init(
            store.clone(),
            "memory://",
            InitOptions {
                encryption: true,
                password: Some("pw".into()),
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
    );
    let m = common::engine::back_up(&src, &repo).await;
    // Damage the data file of the middle part of one shard.
    let part = m
        .parts
        .iter()
        .filter(|p| p.shard == 0)
        .nth(1)
        .unwrap()
        .clone();
    let data = m
        .files
        .iter()
        .find(|f| f.kind == FileKind::Part && f.path == format!("{}/data.bin", part.dir))
        .unwrap()
        .clone();
    flip(&store, &strata_backup::repo::object_path(&data.object)).await;

    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("r");
    // Without the flag: fails closed, nothing left.
    let opts = RestoreOptions {
        parallelism: 4,
        ..Default::default()
    };
    let plan = plan_restore(&repo, &m.id, &target, &opts).await.unwrap();
    let r = restore(repo.clone(), &plan, &opts, Arc::new(Progress::default())).await;
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);

    let opts = RestoreOptions {
        parallelism: 4,
        skip_damaged: true,
        ..Default::default()
    };
    let plan = plan_restore(&repo, &m.id, &target, &opts).await.unwrap();
    let report = restore(repo.clone(), &plan, &opts, Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    let s = &report.skipped[0];
    assert_eq!(s.kind, "part");
    assert_eq!(s.path, data.path);
    assert_eq!(s.groups, vec!["metrics".to_string()]);
    assert_eq!(s.measures, part.measures);
    assert_eq!((s.min_ts, s.max_ts), (Some(part.min_ts), Some(part.max_ts)));
    let named: std::collections::HashSet<String> = s
        .series
        .clone()
        .expect("the part's series table is intact")
        .into_iter()
        .collect();
    assert!(!named.is_empty());

    let got = Engine::open_read_only(&target).unwrap();
    let mut lost = 0;
    for meas in ["cpu", "mem"] {
        let expect = all(&src, meas);
        let restored = all(&got, meas);
        for e in &expect {
            let k = key(e, meas);
            let r = restored.iter().find(|r| r.tags == e.tags);
            if !named.contains(&k) {
                assert_eq!(r, Some(e), "series {k} is not reported but differs");
                continue;
            }
            // A named series lost exactly its points inside the part's range.
            let r = r.cloned().unwrap_or(SeriesData {
                tags: e.tags.clone(),
                timestamps: vec![],
                columns: vec![],
            });
            for t in &e.timestamps {
                let inside = (part.min_ts..=part.max_ts).contains(t);
                let kept = r.timestamps.contains(t);
                assert!(
                    inside || kept,
                    "{k} lost a point at {t} outside the skipped part"
                );
                if !kept {
                    lost += 1;
                }
            }
        }
    }
    assert!(lost > 0, "nothing of the damaged part went missing?");
    assert_eq!(
        lost as u64, part.rows,
        "exactly the part's rows are missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_metadata_is_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::engine::open(dir.path());
    common::engine::ingest(&src, "metrics", common::engine::base_ts(), 2_000, 10);
    let store = common::memory_store();
    let repo = Arc::new(
        Repository::init(
            store.clone(),
            "memory://",
            InitOptions {
                encryption: false,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let m = common::engine::back_up(&src, &repo).await;
    let ckpt = m.files.iter().find(|f| f.path == "CHECKPOINT").unwrap();
    flip(&store, &strata_backup::repo::object_path(&ckpt.object)).await;
    let work = tempfile::tempdir().unwrap();
    let opts = RestoreOptions {
        parallelism: 2,
        skip_damaged: true,
        ..Default::default()
    };
    let plan = plan_restore(&repo, &m.id, &work.path().join("r"), &opts)
        .await
        .unwrap();
    let r = restore(repo.clone(), &plan, &opts, Arc::new(Progress::default())).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("cannot restore around"), "{e}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}
