//! `GET /api/v1/repository/snapshots/{id}`: one snapshot in detail (groups and measures with
//! parts, series, points, time range and size; sizes, pin, keep reasons) and its diff against
//! the previous snapshot of its node (or `?against=ID`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_backup::Manifest;
use strata_backup::archive::window::rfc3339;
use strata_backup::diff::{diff, summarize};

use super::snapshots::{reasons, row, sizes};
use super::{RepoApi, backup_error};
use crate::http::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetailQuery {
    /// Compare with this snapshot instead of the node's previous one.
    pub against: Option<String>,
}

/// Figures of one group or measure over the parts that hold it.
#[derive(Default)]
struct Span {
    parts: u64,
    series: u64,
    rows: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    bytes: u64,
    /// Whether every part counted holds only this measure (then series and points are its
    /// own; otherwise they are the parts' and shared with other measures).
    exact: bool,
}

impl Span {
    fn add(&mut self, p: &strata_backup::manifest::PartEntry, bytes: u64) {
        self.parts += 1;
        self.series += p.series;
        self.rows += p.rows;
        self.bytes += bytes;
        self.min_ts = Some(self.min_ts.map_or(p.min_ts, |t| t.min(p.min_ts)));
        self.max_ts = Some(self.max_ts.map_or(p.max_ts, |t| t.max(p.max_ts)));
    }

    fn json(&self, name: &str, exact: bool) -> Value {
        json!({
            "name": name,
            "parts": self.parts,
            "series": exact.then_some(self.series),
            "rows": exact.then_some(self.rows),
            "min_time": self.min_ts.map(rfc3339),
            "max_time": self.max_ts.map(rfc3339),
            "bytes": self.bytes,
        })
    }
}

fn part_bytes(m: &Manifest, dir: &str) -> u64 {
    let prefix = format!("{dir}/");
    m.files
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .map(|f| f.size)
        .sum()
}

/// Groups with their measures. Series are summed over parts (a series written across
/// several flushes counts once per part); a measure sharing parts with others gets no series
/// or point count of its own (null) rather than a wrong one.
fn groups(m: &Manifest) -> Vec<Value> {
    let summary = summarize(m);
    let mut spans: BTreeMap<&str, (Span, BTreeMap<&str, Span>)> = BTreeMap::new();
    for p in &m.parts {
        let bytes = part_bytes(m, &p.dir);
        let (g, measures) = spans.entry(p.group.as_str()).or_default();
        g.add(p, bytes);
        for name in &p.measures {
            let s = measures.entry(name.as_str()).or_insert_with(|| Span {
                exact: true,
                ..Default::default()
            });
            s.add(p, bytes);
            s.exact &= p.measures.len() == 1;
        }
    }
    summary
        .iter()
        .map(|(name, sum)| {
            let empty = (Span::default(), BTreeMap::new());
            let (g, measures) = spans.get(name.as_str()).unwrap_or(&empty);
            let mut v = g.json(name, true);
            let ms: Vec<Value> = sum
                .measures
                .iter()
                .map(|mname| match measures.get(mname.as_str()) {
                    Some(s) => s.json(mname, s.exact),
                    None => Span::default().json(mname, true),
                })
                .collect();
            v["measures"] = json!(ms);
            v
        })
        .collect()
}

pub async fn detail(
    State(api): State<RepoApi>,
    Path(spec): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<Value>, ApiError> {
    let repo = api.repo().await?;
    let id = repo.resolve(&spec).await.map_err(backup_error)?;
    let (ms, _) = repo.manifests().await.map_err(backup_error)?;
    let Some(pos) = ms.iter().position(|m| m.id == id) else {
        // Listed but not loadable: the manifest is damaged; say so.
        return Err(backup_error(
            repo.load_manifest(&id)
                .await
                .err()
                .unwrap_or(strata_backup::Error::SnapshotNotFound(id.clone())),
        ));
    };
    let m = &ms[pos];
    let pins = strata_backup::gc::pinned(&repo)
        .await
        .map_err(backup_error)?;
    let sizes = sizes(&ms);
    let reasons = reasons(&api, &ms);
    let mut snapshot =
        serde_json::to_value(row(m, &sizes, &reasons, &pins)).map_err(ApiError::internal)?;
    snapshot["lsn"] = json!(m.lsn);
    snapshot["finished"] = json!(rfc3339(m.finished));
    snapshot["uploaded_bytes"] = json!(m.stats.uploaded_bytes);
    snapshot["new_objects"] = json!(m.stats.new_objects);
    snapshot["reused_objects"] = json!(m.stats.reused_objects);
    snapshot["wal_segments"] = json!(m.wal.len());
    let previous = match &q.against {
        Some(a) => {
            let a = repo.resolve(a).await.map_err(backup_error)?;
            ms.iter().find(|x| x.id == a)
        }
        None => ms[..pos].iter().rev().find(|x| x.node_id == m.node_id),
    };
    let cfg = repo.config();
    Ok(Json(json!({
        "repository": repo.url(),
        "encryption": cfg.encryption,
        "compression": cfg.compression,
        "snapshot": snapshot,
        "groups": groups(m),
        "diff": previous.map(|p| diff(p, m)),
    })))
}
