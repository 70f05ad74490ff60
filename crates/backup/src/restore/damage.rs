//! `--skip-damaged`: a restore from a repository with damaged objects that restores everything
//! intact and says exactly what it left out.
//!
//! A damaged (missing, short, or failing its digest) object of a part drops that whole part:
//! the report names its group, measures, series (read from the part's own series table when
//! that file is intact) and time range. A damaged WAL segment drops the writes it held (its
//! LSN range, of the groups the snapshot's catalog lists). Damage to the data directory's own
//! metadata (`ENGINE`, `CHECKPOINT`, a shard manifest) cannot be restored around: the restore
//! fails closed as without the flag.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use strata_engine::backup_api;

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, FileKind, Manifest, safe_rel_path};

/// One thing a `--skip-damaged` restore left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The damaged file (relative to the data directory) and its repository object.
    pub path: String,
    pub object: String,
    pub reason: String,
    /// `part` or `wal`.
    pub kind: String,
    /// For a part: its group; for a WAL segment: every group of the snapshot.
    pub groups: Vec<String>,
    pub measures: Vec<String>,
    /// Series (`measure,tag=value,…`) of a part, when its series table was intact.
    pub series: Option<Vec<String>>,
    /// Time range of a part's points, `[min_ts, max_ts]` in ns.
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    /// LSN range of a WAL segment.
    pub lsns: Option<(u64, u64)>,
}

/// What the restore drops: part directories and WAL files, with the report.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    pub skipped: Vec<Skipped>,
    pub parts: HashSet<String>,
    pub files: HashSet<String>,
}

/// Classifies the damaged files; refuses damage that cannot be restored around.
pub fn classify(manifest: &Manifest, damaged: &[(FileEntry, String)]) -> Result<Damage> {
    let mut d = Damage::default();
    for (f, reason) in damaged {
        let part = f
            .path
            .rsplit_once('/')
            .and_then(|(dir, _)| manifest.parts.iter().find(|p| p.dir == dir));
        if let Some(p) = part {
            d.files.insert(f.path.clone());
            if !d.parts.insert(p.dir.clone()) {
                continue;
            }
            d.skipped.push(Skipped {
                path: f.path.clone(),
                object: f.object.clone(),
                reason: reason.clone(),
                kind: "part".into(),
                groups: vec![p.group.clone()],
                measures: p.measures.clone(),
                series: None,
                min_ts: Some(p.min_ts),
                max_ts: Some(p.max_ts),
                lsns: None,
            });
        } else if f.kind == FileKind::Wal {
            d.files.insert(f.path.clone());
            let w = manifest.wal.iter().find(|w| w.path == f.path);
            d.skipped.push(Skipped {
                path: f.path.clone(),
                object: f.object.clone(),
                reason: reason.clone(),
                kind: "wal".into(),
                groups: manifest
                    .catalog
                    .groups
                    .iter()
                    .map(|g| g.name.clone())
                    .collect(),
                measures: Vec::new(),
                series: None,
                min_ts: None,
                max_ts: None,
                lsns: w.map(|w| (w.first_lsn, w.last_lsn)),
            });
        } else {
            return Err(Error::Corrupt {
                name: crate::repo::object_path(&f.object).to_string(),
                detail: format!(
                    "{reason}; it holds {} of snapshot {}, which --skip-damaged cannot restore around",
                    f.path, manifest.id
                ),
            });
        }
    }
    Ok(d)
}

/// Reads the series of each skipped part from its series table, where that file came intact
/// (a part is restored whole or not at all: `keep_only_parts` leaves it out).
pub fn settle(fetched: &Path, d: &mut Damage) {
    for s in d.skipped.iter_mut().filter(|s| s.kind == "part") {
        let Some(rel) = s
            .path
            .rsplit_once('/')
            .and_then(|(dir, _)| safe_rel_path(dir))
        else {
            continue;
        };
        s.series = backup_api::part_series(&fetched.join(rel)).ok().map(|v| {
            v.into_iter()
                .map(|(m, tags)| {
                    let mut k = m;
                    for (t, v) in tags {
                        k.push_str(&format!(",{t}={v}"));
                    }
                    k
                })
                .collect()
        });
    }
}

/// One line per skipped thing, for people.
pub fn describe(s: &Skipped) -> String {
    let when = |ns: i64| super::select::fmt_ts(ns);
    match s.kind.as_str() {
        "part" => format!(
            "skipped part {} ({}): group {} measures [{}] from {} to {}; series: {}",
            s.path.rsplit_once('/').map_or(s.path.as_str(), |(d, _)| d),
            s.reason,
            s.groups.join(","),
            s.measures.join(", "),
            s.min_ts.map(when).unwrap_or_default(),
            s.max_ts.map(when).unwrap_or_default(),
            s.series.as_ref().map_or_else(
                || "unknown (the part's series table is damaged too)".to_string(),
                |v| v.join(" ")
            )
        ),
        _ => format!(
            "skipped WAL segment {} ({}): writes{} of groups [{}] not yet in parts at the backup",
            s.path,
            s.reason,
            s.lsns
                .map(|(a, b)| format!(" LSN {a}..={b}"))
                .unwrap_or_default(),
            s.groups.join(", ")
        ),
    }
}
