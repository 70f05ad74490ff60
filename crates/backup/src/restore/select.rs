//! Fine-grained and re-sharding restore: which files of a snapshot a filter needs, and the
//! rewrite of the fetched subset into the staging directory.
//!
//! Parts are chosen from the manifest alone (group, measures, time range), so only their
//! objects are downloaded; the metadata files and the WAL always come along (they are small,
//! and the WAL may hold matching points). The fetched subset is opened read-only by the
//! engine and the selection is copied out of it into a fresh engine in the staging directory
//! (`strata_engine::backup_api::copy_selection`): parts that straddle the filter are thereby
//! rewritten, tags and time are filtered exactly, and a new shard count re-partitions points.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_engine::backup_api::{self, CopyStats, Engine, GroupSelection, MAX_SHARDS, Selection};

use crate::error::{Error, Result};
use crate::manifest::{FileEntry, FileKind, Manifest};

/// What a restore brings back of a snapshot. Empty lists mean "all"; time is `[from, to)` in
/// ns since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreFilter {
    pub groups: Vec<String>,
    pub measures: Vec<String>,
    /// Tag equalities, ANDed.
    pub tags: Vec<(String, String)>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Shard count of every restored group.
    pub shards: Option<u32>,
}

impl RestoreFilter {
    /// Whether the filter restores the snapshot as it is (the plain copy path).
    pub fn is_whole(&self) -> bool {
        *self == RestoreFilter::default()
    }

    /// Checks what can be checked without a snapshot.
    pub fn validate(&self) -> Result<()> {
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f >= t
        {
            return Err(Error::InvalidArgument(format!(
                "--from ({}) must be before --to ({}): the range is [from, to)",
                fmt_ts(f),
                fmt_ts(t)
            )));
        }
        if let Some(n) = self.shards
            && (n == 0 || n > MAX_SHARDS)
        {
            return Err(Error::InvalidArgument(format!(
                "--shards {n}: a group has between 1 and {MAX_SHARDS} shards"
            )));
        }
        let mut keys = HashSet::new();
        for (k, _) in &self.tags {
            if !keys.insert(k) {
                return Err(Error::InvalidArgument(format!(
                    "--tag {k}=… given twice: tag filters are equalities ANDed across keys"
                )));
            }
        }
        Ok(())
    }

    fn start_ns(&self) -> i64 {
        self.from.unwrap_or(i64::MIN)
    }

    fn end_ns(&self) -> i64 {
        self.to.unwrap_or(i64::MAX)
    }
}

pub fn fmt_ts(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The part of a plan a selective restore adds.
#[derive(Debug, Clone, Serialize)]
pub struct SelectivePlan {
    pub filter: RestoreFilter,
    /// Groups restored, with the measures of each (as the snapshot's catalog lists them).
    pub groups: Vec<(String, Vec<String>)>,
    pub parts_selected: usize,
    pub parts_total: usize,
    #[serde(skip)]
    pub selection: Selection,
    /// Part directories fetched (relative, as the snapshot lists them).
    #[serde(skip)]
    pub keep: HashSet<PathBuf>,
}

/// Resolves `filter` against a snapshot: refuses unknown groups and measures (listing what
/// the snapshot holds), and a filter that can match nothing; returns the plan and the files
/// to fetch.
pub fn select(
    manifest: &Manifest,
    filter: &RestoreFilter,
) -> Result<(SelectivePlan, Vec<FileEntry>)> {
    filter.validate()?;
    let cat = &manifest.catalog;
    let held: Vec<&str> = cat.groups.iter().map(|g| g.name.as_str()).collect();
    for g in &filter.groups {
        if !held.contains(&g.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "group '{g}' is not in snapshot {} (it holds: {})",
                manifest.id,
                list_or_none(&held)
            )));
        }
    }
    let groups: Vec<_> = cat
        .groups
        .iter()
        .filter(|g| filter.groups.is_empty() || filter.groups.contains(&g.name))
        .collect();
    let measures_held: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.measures.iter().map(|m| m.name.as_str()))
        .collect();
    for m in &filter.measures {
        if !measures_held.contains(m.as_str()) {
            let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "measure '{m}' is not in group{} {} of snapshot {} (measures there: {})",
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                manifest.id,
                list_or_none(&measures_held.iter().copied().collect::<Vec<_>>())
            )));
        }
    }
    let wanted_measure =
        |m: &str| filter.measures.is_empty() || filter.measures.iter().any(|x| x == m);
    let mut plan_groups = Vec::new();
    let mut sel_groups = Vec::new();
    for g in &groups {
        let ms: Vec<String> = g
            .measures
            .iter()
            .map(|m| m.name.clone())
            .filter(|m| wanted_measure(m))
            .collect();
        if ms.is_empty() {
            continue;
        }
        plan_groups.push((g.name.clone(), ms.clone()));
        sel_groups.push(GroupSelection {
            name: g.name.clone(),
            target: g.name.clone(),
            measures: ms,
        });
    }
    let (from, to) = (filter.start_ns(), filter.end_ns());
    let mut keep = HashSet::new();
    for p in &manifest.parts {
        let in_group = sel_groups.iter().any(|g| g.name == p.group);
        let in_measures = p.measures.iter().any(|m| wanted_measure(m));
        let in_time = p.max_ts >= from && p.min_ts < to;
        if in_group && in_measures && in_time {
            keep.insert(p.dir.as_str());
        }
    }
    let has_wal = manifest.files.iter().any(|f| f.kind == FileKind::Wal);
    if (keep.is_empty() && !has_wal) || sel_groups.is_empty() {
        return Err(nothing_matches(manifest, filter));
    }
    // Every file of a part directory (its `meta.bin` is listed as metadata) comes only with
    // a selected part; the data directory's own metadata and the WAL always come.
    let part_dirs: HashSet<&str> = manifest.parts.iter().map(|p| p.dir.as_str()).collect();
    let files: Vec<FileEntry> = manifest
        .files
        .iter()
        .filter(|f| match f.path.rsplit_once('/') {
            Some((dir, _)) if part_dirs.contains(dir) => keep.contains(dir),
            _ => f.kind != FileKind::Part,
        })
        .cloned()
        .collect();
    let keep: HashSet<PathBuf> = keep.into_iter().map(PathBuf::from).collect();
    let plan = SelectivePlan {
        filter: filter.clone(),
        groups: plan_groups,
        parts_selected: keep.len(),
        parts_total: manifest.parts.len(),
        selection: Selection {
            groups: sel_groups,
            tags: filter.tags.clone(),
            from,
            to,
            shards: filter.shards,
        },
        keep,
    };
    Ok((plan, files))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The error for a filter that selects no point of the snapshot.
pub fn nothing_matches(manifest: &Manifest, filter: &RestoreFilter) -> Error {
    let mut what = Vec::new();
    if !filter.groups.is_empty() {
        what.push(format!("groups {}", filter.groups.join(",")));
    }
    if !filter.measures.is_empty() {
        what.push(format!("measures {}", filter.measures.join(",")));
    }
    for (k, v) in &filter.tags {
        what.push(format!("{k}={v}"));
    }
    if filter.from.is_some() || filter.to.is_some() {
        what.push(format!(
            "[{}, {})",
            filter.from.map(fmt_ts).unwrap_or_else(|| "-inf".into()),
            filter.to.map(fmt_ts).unwrap_or_else(|| "+inf".into())
        ));
    }
    Error::Refused(format!(
        "the filter ({}) matches no data in snapshot {}; nothing was restored",
        if what.is_empty() {
            "everything".to_string()
        } else {
            what.join(" ")
        },
        manifest.id
    ))
}

/// Builds the restored data directory in `staged` from the fetched subset in `fetched`
/// (blocking: run it off the async threads). An empty result is refused.
pub fn rewrite(
    fetched: &Path,
    staged: &Path,
    plan: &SelectivePlan,
    on_points: &mut dyn FnMut(u64),
) -> Result<CopyStats> {
    backup_api::keep_only_parts(fetched, &plan.keep)?;
    let src = Engine::open_read_only(fetched)?;
    let dst = backup_api::open_target(staged)?;
    let stats = backup_api::copy_selection(&src, &dst, &plan.selection, on_points)?;
    dst.close()?;
    Ok(stats)
}
