//! Fine-grained and re-sharding restore, engine side.
//!
//! A selective restore downloads only the parts it needs (plus the small metadata and the WAL)
//! into a *source* directory: a data directory missing every part outside the selection.
//! [`keep_only_parts`] publishes, in each shard of it, a manifest listing only the parts that
//! were fetched, so the engine opens it read-only ([`Engine::open_read_only`]: WAL replay and
//! last-write-wins resolution exactly as on the node that wrote it). [`copy_selection`] then
//! scans the selection out of it (group, measures, tag equalities, `[from, to)`) and writes
//! it into a fresh engine in the staging directory, whose groups may have another shard count:
//! points are routed (re-partitioned) by the writing engine and its index is built as it
//! writes. What a query of the source with the same filter returns is, point for point, what
//! the restored directory holds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::Engine;
use crate::engine::EngineOptions;
use crate::engine::state::{data_root, now_ns};
use crate::error::{Error, Result};
use crate::manifest;
use crate::model::{FieldValue, GroupSettings, Point};
use crate::part::{parse_part_dir_name, part_dir_name};
use crate::scan::{Column, ScanRequest, ScanSink, SeriesData, TagMatcher};
use crate::vfs::{RealVfs, Vfs};

/// Most shards a group may have (what `PUT /api/v1/groups` accepts).
pub const MAX_SHARDS: u32 = 64;

/// Points written to the target engine per batch.
const BATCH_POINTS: usize = 20_000;

/// What to restore of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSelection {
    /// The group in the source.
    pub name: String,
    /// The group it becomes in the target (its own name unless renamed).
    pub target: String,
    /// Measures to restore; empty means every measure of the group.
    pub measures: Vec<String>,
}

/// A selective restore: which groups and measures, which series (tag equalities, ANDed),
/// which time range (half-open), and the shard count of the restored groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub groups: Vec<GroupSelection>,
    pub tags: Vec<(String, String)>,
    pub from: i64,
    pub to: i64,
    /// Shard count of every restored group (`None`: the source group's own).
    pub shards: Option<u32>,
}

/// What [`copy_selection`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyStats {
    pub groups: u64,
    pub measures: u64,
    pub series: u64,
    pub points: u64,
}

/// In every shard of the data directory `dir`, publish a manifest that lists only the parts
/// whose directory (relative to `dir`, as a snapshot lists it) is in `keep` and present.
/// Returns how many listed parts were left out. The WAL's flushed-LSN bookkeeping is kept, so
/// replay still skips what the left-out parts held.
pub fn keep_only_parts(dir: &Path, keep: &HashSet<PathBuf>) -> Result<usize> {
    let vfs = RealVfs;
    let mut dropped = 0;
    let root = data_root(dir);
    for group in subdirs(&vfs, &root)? {
        for seg in subdirs(&vfs, &group)? {
            for shard in subdirs(&vfs, &seg)? {
                let Some(mut m) = manifest::load_latest(&vfs, &shard)? else {
                    continue;
                };
                let before = m.parts.len();
                m.parts.retain(|id| {
                    let pdir = shard.join(part_dir_name(*id));
                    let rel = pdir.strip_prefix(dir).unwrap_or(&pdir).to_path_buf();
                    keep.contains(&rel) && vfs.exists(&pdir)
                });
                if m.parts.len() == before {
                    continue;
                }
                dropped += before - m.parts.len();
                m.epoch += 1;
                manifest::publish(&vfs, &shard, &m)?;
            }
        }
    }
    Ok(dropped)
}

/// A series: its measure and its tags, sorted by key.
pub type SeriesKey = (String, Vec<(String, String)>);

/// The series a part directory's series table lists, without its data file.
pub fn part_series(part_dir: &Path) -> Result<Vec<SeriesKey>> {
    Ok(crate::part::read_series_table(&RealVfs, part_dir)?
        .into_iter()
        .map(|m| (m.measure.clone(), m.tags.clone()))
        .collect())
}

fn subdirs(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match vfs.read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    Ok(entries
        .into_iter()
        .filter(|e| e.is_dir && parse_part_dir_name(&e.name).is_none())
        .map(|e| dir.join(e.name))
        .collect())
}

/// Open (creating it) the engine a selective restore writes into: no background work, no
/// field caps (the source's server accepted what it holds), fsync on every batch.
pub fn open_target(dir: &Path) -> Result<Engine> {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    o.idle_flush = std::time::Duration::ZERO;
    o.max_fields_per_point = usize::MAX;
    o.max_fields_per_measure = usize::MAX;
    Engine::open(o)
}

/// Copy the selection out of `src` into `dst` (see the module docs). Groups and measures the
/// source does not hold are skipped (the caller refuses them first, naming what exists).
/// `on_points` is told how many points were written so far (progress).
pub fn copy_selection(
    src: &Engine,
    dst: &Engine,
    sel: &Selection,
    on_points: &mut dyn FnMut(u64),
) -> Result<CopyStats> {
    if let Some(n) = sel.shards
        && (n == 0 || n > MAX_SHARDS)
    {
        return Err(Error::InvalidInput(format!(
            "shard count {n}: must be between 1 and {MAX_SHARDS}"
        )));
    }
    let catalog = src.catalog();
    let mut stats = CopyStats::default();
    let matchers: Vec<TagMatcher> = sel
        .tags
        .iter()
        .map(|(k, v)| TagMatcher::Eq(k.clone(), v.clone()))
        .collect();
    for g in &sel.groups {
        let Some(gc) = catalog.groups.iter().find(|c| c.name == g.name) else {
            continue;
        };
        let mut settings: GroupSettings = gc.settings.clone();
        if let Some(n) = sel.shards {
            settings.shards = n;
        }
        dst.put_group(&g.target, settings.clone())?;
        stats.groups += 1;
        for m in &gc.measures {
            if !g.measures.is_empty() && !g.measures.contains(&m.name) {
                continue;
            }
            stats.measures += 1;
            let req = ScanRequest {
                group: g.name.clone(),
                measure: m.name.clone(),
                from: sel.from,
                to: sel.to,
                matchers: matchers.clone(),
                fields: None,
            };
            let mut w = Writer {
                dst,
                group: &g.target,
                settings: &settings,
                measure: &m.name,
                batch: Vec::new(),
                stats: &mut stats,
                err: None,
                on_points,
            };
            src.scan_each(&req, &mut w)?;
            if let Some(e) = w.err.take() {
                return Err(e);
            }
            w.write_out()?;
        }
    }
    Ok(stats)
}

struct Writer<'a> {
    dst: &'a Engine,
    group: &'a str,
    settings: &'a GroupSettings,
    measure: &'a str,
    batch: Vec<Point>,
    stats: &'a mut CopyStats,
    err: Option<Error>,
    on_points: &'a mut dyn FnMut(u64),
}

impl Writer<'_> {
    fn write_out(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // A point whose segment passed the TTL since the scan would be refused; it is also
        // one no query of the source returns any more.
        let now = now_ns();
        let settings = self.settings;
        self.batch
            .retain(|p| !crate::engine::route_point_expired(p.timestamp, settings, now));
        self.dst.write(self.group, &self.batch)?;
        self.stats.points += self.batch.len() as u64;
        self.batch.clear();
        (self.on_points)(self.stats.points);
        Ok(())
    }
}

impl ScanSink for Writer<'_> {
    fn keep_going(&mut self) -> bool {
        self.err.is_none()
    }

    fn series(&mut self, s: SeriesData) -> bool {
        self.stats.series += 1;
        for (i, &ts) in s.timestamps.iter().enumerate() {
            let fields: Vec<(String, FieldValue)> = s
                .columns
                .iter()
                .filter_map(|(n, c)| value_at(c, i).map(|v| (n.clone(), v)))
                .collect();
            if fields.is_empty() {
                continue;
            }
            self.batch.push(Point {
                measure: self.measure.to_string(),
                tags: s.tags.clone(),
                fields,
                timestamp: ts,
            });
        }
        if self.batch.len() >= BATCH_POINTS
            && let Err(e) = self.write_out()
        {
            self.err = Some(e);
            return false;
        }
        true
    }
}

fn value_at(c: &Column, i: usize) -> Option<FieldValue> {
    match c {
        Column::F64(v) => v[i].map(FieldValue::F64),
        Column::I64(v) => v[i].map(FieldValue::I64),
        Column::Bool(v) => v[i].map(FieldValue::Bool),
        Column::Str(v) => v[i].clone().map(FieldValue::Str),
    }
}
