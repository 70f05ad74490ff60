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
struct Span {
    parts: u64,
    series: u64,
    rows: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    bytes: u64,
    /// Series and points are this measure's own: every part counted either holds only it or
    /// records its per-measure content (manifests since the drill's `content` field).
    exact_counts: bool,
    /// Bytes are its own: every part counted holds only it.
    exact_bytes: bool,
}

impl Default for Span {
    fn default() -> Span {
        Span {
            parts: 0,
            series: 0,
            rows: 0,
            min_ts: None,
            max_ts: None,
            bytes: 0,
            exact_counts: true,
            exact_bytes: true,
        }
    }
}

impl Span {
    fn add(&mut self, series: u64, rows: u64, min_ts: i64, max_ts: i64, bytes: u64) {
        self.parts += 1;
        self.series += series;
        self.rows += rows;
        self.bytes += bytes;
        self.min_ts = Some(self.min_ts.map_or(min_ts, |t| t.min(min_ts)));
        self.max_ts = Some(self.max_ts.map_or(max_ts, |t| t.max(max_ts)));
    }

    fn json(&self, name: &str) -> Value {
        json!({
            "name": name,
            "parts": self.parts,
            "series": self.exact_counts.then_some(self.series),
            "rows": self.exact_counts.then_some(self.rows),
            "min_time": self.min_ts.map(rfc3339),
            "max_time": self.max_ts.map(rfc3339),
            "bytes": self.exact_bytes.then_some(self.bytes),
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
/// several flushes counts once per part). A measure's series, points and time range are its
/// own where the manifest records each part's per-measure content or the part holds only
/// that measure; otherwise they are `null` rather than the shared part's totals (and so are
/// the bytes of a measure that shares parts).
fn groups(m: &Manifest) -> Vec<Value> {
    let summary = summarize(m);
    let mut spans: BTreeMap<&str, (Span, BTreeMap<&str, Span>)> = BTreeMap::new();
    for p in &m.parts {
        let bytes = part_bytes(m, &p.dir);
        let (g, measures) = spans.entry(p.group.as_str()).or_default();
        g.add(p.series, p.rows, p.min_ts, p.max_ts, bytes);
        let alone = p.measures.len() == 1;
        for name in &p.measures {
            let s = measures.entry(name.as_str()).or_default();
            s.exact_bytes &= alone;
            match p.content.iter().find(|c| &c.measure == name) {
                Some(c) => s.add(c.series, c.points, c.min_ts, c.max_ts, bytes),
                None => {
                    s.exact_counts &= alone;
                    s.add(p.series, p.rows, p.min_ts, p.max_ts, bytes);
                }
            }
        }
    }
    summary
        .keys()
        .map(|name| {
            let empty = (Span::default(), BTreeMap::new());
            let (g, measures) = spans.get(name.as_str()).unwrap_or(&empty);
            let mut v = g.json(name);
            let ms: Vec<Value> = summary[name]
                .measures
                .iter()
                .map(|mname| {
                    measures
                        .get(mname.as_str())
                        .unwrap_or(&Span::default())
                        .json(mname)
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
