//! Engine helpers for the backup tests: deterministic ingest and a fingerprint of every point.

use std::path::Path;

use strata_engine::{Engine, EngineOptions, FieldValue, Point, ScanRequest};

/// A recent base time (inside the default 30-day TTL), aligned to a day.
pub fn base_ts() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 - 3) * 86_400 * 1_000_000_000
}

pub fn open(dir: &Path) -> Engine {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    Engine::open(o).unwrap()
}

/// Writes `n` points for `hosts` series of measure `cpu` (and a few `mem`) starting at `start`.
pub fn ingest(e: &Engine, group: &str, start: i64, n: usize, hosts: usize) {
    let mut batch = Vec::new();
    for i in 0..n {
        let h = i % hosts;
        batch.push(Point {
            measure: if i % 10 == 0 { "mem" } else { "cpu" }.into(),
            tags: vec![("host".into(), format!("h{h}")), ("dc".into(), "eu".into())],
            fields: vec![
                // Noisy values, so parts have realistic (incompressible) sizes.
                (
                    "v".into(),
                    FieldValue::F64(((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64),
                ),
                ("n".into(), FieldValue::I64(i as i64)),
            ],
            timestamp: start + (i / hosts) as i64 * 1_000_000_000,
        });
        if batch.len() == 1000 {
            e.write(group, &batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        e.write(group, &batch).unwrap();
    }
}

/// BLAKE3 over every point of every series of every measure of every group, in order.
pub fn fingerprint(e: &Engine) -> (String, usize) {
    let mut h = blake3::Hasher::new();
    let mut points = 0;
    for g in e.catalog().groups {
        for m in &g.measures {
            let series = e
                .scan(&ScanRequest {
                    group: g.name.clone(),
                    measure: m.name.clone(),
                    from: i64::MIN,
                    to: i64::MAX,
                    matchers: vec![],
                    fields: None,
                })
                .unwrap();
            for s in series {
                points += s.timestamps.len();
                h.update(
                    format!(
                        "{}/{}/{:?}/{:?}/{:?}",
                        g.name, m.name, s.tags, s.timestamps, s.columns
                    )
                    .as_bytes(),
                );
            }
        }
    }
    (h.finalize().to_hex().to_string(), points)
}

/// Back up the whole engine into `repo` (snapshot, backup with default options, release).
pub async fn back_up(
    e: &Engine,
    repo: &std::sync::Arc<strata_backup::repo::Repository>,
) -> strata_backup::manifest::Manifest {
    let snap = e.snapshot().unwrap();
    let m = strata_backup::backup::backup(
        repo.clone(),
        &snap,
        &Default::default(),
        std::sync::Arc::new(strata_backup::progress::Progress::default()),
    )
    .await
    .unwrap();
    e.release_snapshot(&snap.id).unwrap();
    std::sync::Arc::unwrap_or_clone(m)
}
