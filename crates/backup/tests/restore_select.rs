//! Fine-grained and re-sharding restore through the library, against a reference: for random
//! filters over a snapshot with several groups, measures, tag values, segments, overwrites and
//! a WAL tail, the restored directory holds exactly what the source returns for the same
//! filter, point for point, and nothing else; a narrow filter fetches a fraction of the
//! repository; re-sharding 2 → 5 and 5 → 1 gives identical answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use strata_backup::crypto::KdfParams;
use strata_backup::restore::{RestoreFilter, RestoreOptions, RestoreReport, plan_restore, restore};
use strata_backup::{Error, InitOptions, Manifest, Progress, Repository};
use strata_engine::{
    Engine, EngineOptions, FieldValue, GroupSettings, Point, ScanRequest, SeriesData, TagMatcher,
};

const HOUR: i64 = 3_600_000_000_000;

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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const GROUPS: [&str; 3] = ["g1", "g2", "g3"];
const MEASURES: [&str; 3] = ["cpu", "mem", "disk"];

/// Three groups (2, 3 and 5 shards, segments of 6 h), three measures, ten hosts in two dcs,
/// 30 hours of points in several flushes (several parts per shard), overwrites of some
/// points with another field, and (with `wal_tail`) a WAL tail that the snapshot carries
/// unflushed.
fn make_source(dir: &Path, wal_tail: bool) -> Engine {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.snapshot_flush = !wal_tail;
    let e = Engine::open(o).unwrap();
    for (i, g) in GROUPS.iter().enumerate() {
        e.put_group(
            g,
            GroupSettings {
                shards: [2, 3, 5][i],
                segment_interval_ns: 6 * HOUR,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let base = common::engine::base_ts();
    let mut rng = Rng(0x5EED_0001);
    for round in 0..4 {
        for g in GROUPS {
            let mut batch = Vec::new();
            for k in 0..600 {
                let m = MEASURES[rng.below(3) as usize];
                let host = rng.below(10);
                let ts = base + (rng.below(30 * 60) as i64) * 60_000_000_000 + round;
                let mut fields = vec![("v".to_string(), FieldValue::F64(k as f64 + 0.5))];
                if k % 3 == 0 {
                    fields.push(("n".into(), FieldValue::I64(k)));
                }
                batch.push(Point {
                    measure: m.into(),
                    tags: vec![
                        ("host".into(), format!("h{host}")),
                        ("dc".into(), if host < 5 { "eu" } else { "us" }.into()),
                    ],
                    fields,
                    timestamp: ts,
                });
            }
            // Overwrites: the same series and time again, one field changed.
            let again: Vec<Point> = batch
                .iter()
                .step_by(7)
                .map(|p| Point {
                    fields: vec![("v".into(), FieldValue::F64(-1.0))],
                    ..p.clone()
                })
                .collect();
            e.write(g, &batch).unwrap();
            e.write(g, &again).unwrap();
        }
        if round < 3 {
            e.flush().unwrap();
        }
    }
    e
}

/// The points of a scan: columns holding no value at all are left out (a field of the
/// measure that none of the restored points carries is not in the restored catalog).
fn scan(e: &Engine, g: &str, m: &str, f: &RestoreFilter) -> Vec<SeriesData> {
    let mut out = raw_scan(e, g, m, f);
    for s in &mut out {
        s.columns.retain(|(_, c)| !all_null(c));
    }
    out
}

fn all_null(c: &strata_engine::Column) -> bool {
    use strata_engine::Column;
    match c {
        Column::F64(v) => v.iter().all(Option::is_none),
        Column::I64(v) => v.iter().all(Option::is_none),
        Column::Bool(v) => v.iter().all(Option::is_none),
        Column::Str(v) => v.iter().all(Option::is_none),
    }
}

fn raw_scan(e: &Engine, g: &str, m: &str, f: &RestoreFilter) -> Vec<SeriesData> {
    match e.scan(&ScanRequest {
        group: g.into(),
        measure: m.into(),
        from: f.from.unwrap_or(i64::MIN),
        to: f.to.unwrap_or(i64::MAX),
        matchers: f
            .tags
            .iter()
            .map(|(k, v)| TagMatcher::Eq(k.clone(), v.clone()))
            .collect(),
        fields: None,
    }) {
        Ok(s) => s,
        Err(strata_engine::Error::GroupNotFound(_)) => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

async fn run(
    repo: &Arc<Repository>,
    id: &str,
    target: &Path,
    filter: RestoreFilter,
) -> Result<RestoreReport, Error> {
    let opts = RestoreOptions {
        parallelism: 4,
        filter,
        ..Default::default()
    };
    let plan = plan_restore(repo, id, target, &opts).await?;
    restore(repo.clone(), &plan, &opts, Arc::new(Progress::default())).await
}

/// The restored directory holds exactly the source's answer to the filter.
fn assert_same(src: &Engine, restored: &Engine, f: &RestoreFilter) -> usize {
    let mut points = 0;
    let wanted = |list: &[String], x: &str| list.is_empty() || list.iter().any(|y| y == x);
    for g in GROUPS {
        for m in MEASURES {
            let expect = if wanted(&f.groups, g) && wanted(&f.measures, m) {
                scan(src, g, m, f)
            } else {
                Vec::new()
            };
            let got = scan(restored, g, m, &RestoreFilter::default());
            assert_eq!(got, expect, "{g}/{m} differs for {f:?}");
            points += got.iter().map(|s| s.timestamps.len()).sum::<usize>();
        }
    }
    // The catalog holds what was restored, nothing else.
    for gc in restored.catalog().groups {
        assert!(
            wanted(&f.groups, &gc.name),
            "group {} restored for {f:?}",
            gc.name
        );
        for mc in gc.measures {
            assert!(
                wanted(&f.measures, &mc.name),
                "measure {} restored",
                mc.name
            );
        }
    }
    points
}

async fn backed_up(src: &Engine, wal_tail: bool) -> (Arc<Repository>, Manifest) {
    let repo = Arc::new(
        Repository::init(common::memory_store(), "memory://", init_opts())
            .await
            .unwrap(),
    );
    let m = common::engine::back_up(src, &repo).await;
    let has_wal = m
        .files
        .iter()
        .any(|f| f.kind == strata_backup::manifest::FileKind::Wal && f.size > 100);
    assert_eq!(has_wal, wal_tail, "WAL tail in the snapshot");
    (repo, m)
}

fn random_filter(rng: &mut Rng, base: i64) -> RestoreFilter {
    let pick = |rng: &mut Rng, all: &[&str]| -> Vec<String> {
        all.iter()
            .filter(|_| rng.below(2) == 0)
            .map(|s| s.to_string())
            .collect()
    };
    let mut f = RestoreFilter::default();
    if rng.below(3) > 0 {
        f.groups = pick(rng, &GROUPS);
    }
    if rng.below(2) == 0 {
        f.measures = pick(rng, &MEASURES);
    }
    match rng.below(4) {
        0 => f.tags.push(("host".into(), format!("h{}", rng.below(10)))),
        1 => f.tags.push(("dc".into(), "us".into())),
        2 => {
            f.tags.push(("dc".into(), "eu".into()));
            f.tags.push(("host".into(), format!("h{}", rng.below(10))));
        }
        _ => {}
    }
    if rng.below(3) > 0 {
        let from = base + rng.below(30) as i64 * HOUR + rng.below(60) as i64 * 60_000_000_000;
        f.from = Some(from);
        f.to = Some(from + 1 + rng.below(12 * HOUR as u64) as i64);
    }
    if rng.below(4) == 0 {
        f.shards = Some(1 + rng.below(6) as u32);
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_restore_exactly_what_the_source_answers() {
    let rounds: usize = std::env::var("STRATA_SELECT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let src = make_source(dir.path(), true);
    let (repo, m) = backed_up(&src, true).await;
    let base = common::engine::base_ts();
    let mut rng = Rng(0xF11_7E25);
    let (mut restored_some, mut refused) = (0, 0);
    for round in 0..rounds {
        let f = random_filter(&mut rng, base);
        let work = tempfile::tempdir().unwrap();
        let target = work.path().join("r");
        match run(&repo, &m.id, &target, f.clone()).await {
            Ok(report) => {
                let e = Engine::open_read_only(&target).unwrap();
                let n = assert_same(&src, &e, &f);
                assert!(n > 0, "round {round}: an empty restore succeeded for {f:?}");
                assert_eq!(report.restored.as_ref().unwrap().points as usize, n);
                restored_some += 1;
            }
            Err(Error::Refused(msg)) if msg.contains("matches no data") => {
                // Only when the source really holds nothing for the filter.
                let e = Engine::open_read_only(dir.path()).unwrap_or_else(|_| {
                    panic!("round {round}: {msg}");
                });
                drop(e);
                let wanted =
                    |list: &[String], x: &str| list.is_empty() || list.iter().any(|y| y == x);
                for g in GROUPS.iter().filter(|g| wanted(&f.groups, g)) {
                    for mm in MEASURES.iter().filter(|mm| wanted(&f.measures, mm)) {
                        assert!(
                            scan(&src, g, mm, &f).is_empty(),
                            "refused but {g}/{mm} has data: {f:?}"
                        );
                    }
                }
                assert!(!target.exists(), "a refused restore created the target");
                refused += 1;
            }
            Err(e) => panic!("round {round}: {f:?}: {e}"),
        }
        let left: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "r")
            .collect();
        assert!(left.is_empty(), "restore left {left:?}");
    }
    assert!(
        restored_some >= rounds / 2,
        "{restored_some} of {rounds} filters restored data ({refused} refused)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_filter_fetches_a_fraction_of_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let src = make_source(dir.path(), false);
    let (repo, m) = backed_up(&src, false).await;
    let base = common::engine::base_ts();
    let f = RestoreFilter {
        groups: vec!["g2".into()],
        measures: vec!["cpu".into()],
        tags: vec![("host".into(), "h3".into())],
        from: Some(base + 7 * HOUR),
        to: Some(base + 8 * HOUR),
        shards: None,
    };
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("r");
    let report = run(&repo, &m.id, &target, f.clone()).await.unwrap();
    let e = Engine::open_read_only(&target).unwrap();
    assert!(assert_same(&src, &e, &f) > 0);
    let total: u64 = m.files.iter().map(|f| f.stored_size).sum();
    let fetched = report.fetch.downloaded_stored_bytes;
    assert!(
        fetched * 4 < total,
        "fetched {fetched} of {total} stored bytes for one group, measure, host and hour"
    );
}

/// Data dirs of the restored group's shards, for the re-sharding tests.
fn shard_indexes(target: &Path, group: &str) -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for seg in std::fs::read_dir(target.join("data").join(group)).unwrap() {
        for sh in std::fs::read_dir(seg.unwrap().path()).unwrap() {
            let name = sh.unwrap().file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix("shard-") {
                out.insert(n.parse().unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_2_to_5_and_5_to_1_gives_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let src = make_source(dir.path(), true);
    let (repo, m) = backed_up(&src, true).await;
    for (group, shards) in [("g1", 5), ("g3", 1)] {
        let f = RestoreFilter {
            groups: vec![group.into()],
            shards: Some(shards),
            ..Default::default()
        };
        let work = tempfile::tempdir().unwrap();
        let target = work.path().join("r");
        run(&repo, &m.id, &target, f.clone()).await.unwrap();
        let e = Engine::open_read_only(&target).unwrap();
        assert!(assert_same(&src, &e, &f) > 0);
        let c = e.catalog();
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].settings.shards, shards);
        let idx = shard_indexes(&target, group);
        assert!(idx.iter().all(|&i| i < shards), "{idx:?}");
        if shards > 2 {
            assert!(idx.len() > 2, "points of 2 shards spread over {idx:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = make_source(dir.path(), true);
    let (repo, m) = backed_up(&src, true).await;
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("r");
    let cases: Vec<(RestoreFilter, &str)> = vec![
        (
            RestoreFilter {
                groups: vec!["nope".into()],
                ..Default::default()
            },
            "group 'nope' is not in snapshot",
        ),
        (
            RestoreFilter {
                measures: vec!["nope".into()],
                ..Default::default()
            },
            "measure 'nope' is not in groups g1, g2, g3",
        ),
        (
            RestoreFilter {
                from: Some(10),
                to: Some(10),
                ..Default::default()
            },
            "must be before --to",
        ),
        (
            RestoreFilter {
                shards: Some(0),
                ..Default::default()
            },
            "between 1 and 64",
        ),
        (
            RestoreFilter {
                shards: Some(65),
                ..Default::default()
            },
            "between 1 and 64",
        ),
        (
            RestoreFilter {
                tags: vec![("host".into(), "nobody".into())],
                ..Default::default()
            },
            "matches no data",
        ),
        (
            RestoreFilter {
                from: Some(0),
                to: Some(1_000),
                ..Default::default()
            },
            "matches no data",
        ),
    ];
    for (f, want) in cases {
        let e = run(&repo, &m.id, &target, f.clone()).await.unwrap_err();
        assert!(e.to_string().contains(want), "{f:?}: {e}");
        assert!(!e.to_string().contains('\n'), "{e}");
        assert_eq!(
            std::fs::read_dir(work.path()).unwrap().count(),
            0,
            "{f:?} left files"
        );
    }
    drop(src);
}
