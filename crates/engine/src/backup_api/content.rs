//! What a part holds, per measure: what a backup records in its manifest and what a restore
//! drill (`strata drill`) checks a restored part against.
//!
//! [`part_content`] reads only the part's series table (about 1 % of the part): series, points,
//! time range and a digest of the measure's series keys and block layout. A backup computes it
//! for the parts its parent did not have, so a backup with nothing new reads nothing.
//! [`check_part_content`] computes the same from a restored part and also decodes every block
//! of its data file (every chunk's checksum and encoding), checking that each block holds the
//! rows the table says: what proves a restored part is readable, not only byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::part::{PartIndex, PartReader};
use crate::scan::Column;
use crate::snapshot::{FileSource, PartInfo, Snapshot, SnapshotFileKind};
use crate::vfs::RealVfs;

/// One measure's share of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureContent {
    pub measure: String,
    /// Series of the measure in this part.
    pub series: u64,
    /// Rows (points) of the measure in this part.
    pub points: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    /// BLAKE3 (hex) of the measure's series keys and, per series, its blocks' row counts,
    /// time ranges and fields (name, type, present values), in table order.
    pub digest: String,
}

struct Acc {
    series: u64,
    points: u64,
    min_ts: i64,
    max_ts: i64,
    hasher: blake3::Hasher,
}

fn summarize(index: &PartIndex) -> Vec<MeasureContent> {
    let mut by_measure: BTreeMap<&str, Acc> = BTreeMap::new();
    for s in &index.series {
        let a = by_measure
            .entry(s.meta.measure.as_str())
            .or_insert_with(|| Acc {
                series: 0,
                points: 0,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                hasher: blake3::Hasher::new(),
            });
        a.series += 1;
        let h = &mut a.hasher;
        h.update(&(s.meta.tags.len() as u64).to_le_bytes());
        for (k, v) in &s.meta.tags {
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        h.update(&(s.blocks.len() as u64).to_le_bytes());
        for b in &s.blocks {
            a.points += u64::from(b.rows);
            a.min_ts = a.min_ts.min(b.min_ts);
            a.max_ts = a.max_ts.max(b.max_ts);
            h.update(&b.rows.to_le_bytes());
            h.update(&b.min_ts.to_le_bytes());
            h.update(&b.max_ts.to_le_bytes());
            h.update(&(b.fields.len() as u64).to_le_bytes());
            for f in &b.fields {
                h.update(&(f.name.len() as u64).to_le_bytes());
                h.update(f.name.as_bytes());
                h.update(&[f.ty]);
                h.update(&f.present.to_le_bytes());
            }
        }
    }
    by_measure
        .into_iter()
        .map(|(m, a)| MeasureContent {
            measure: m.to_string(),
            series: a.series,
            points: a.points,
            min_ts: a.min_ts,
            max_ts: a.max_ts,
            digest: a.hasher.finalize().to_hex().to_string(),
        })
        .collect()
}

/// The per-measure content of the part in `dir`, from its series table alone.
pub fn part_content(dir: &Path) -> Result<Vec<MeasureContent>> {
    let r = PartReader::open(&RealVfs, dir)?;
    let index = r.index_once()?;
    Ok(summarize(&index))
}

/// [`part_content`] of a restored part, after decoding every block of its data file and
/// checking each holds the rows and time range its table entry says.
pub fn check_part_content(dir: &Path) -> Result<Vec<MeasureContent>> {
    let r = PartReader::open(&RealVfs, dir)?;
    let index = r.index_once()?;
    for s in &index.series {
        for b in &s.blocks {
            let rows = r.read_block(b, None)?;
            let bad = |what: String| Error::corrupt(dir, what);
            if rows.ts.len() != b.rows as usize {
                return Err(bad(format!(
                    "a block of {} holds {} rows, its table entry says {}",
                    s.meta.measure,
                    rows.ts.len(),
                    b.rows
                )));
            }
            if rows.ts.iter().any(|&t| t < b.min_ts || t > b.max_ts) {
                return Err(bad(format!(
                    "a block of {} holds a timestamp outside [{}, {}]",
                    s.meta.measure, b.min_ts, b.max_ts
                )));
            }
            if let Some((name, c)) = rows
                .cols
                .iter()
                .find(|(_, c)| column_len(c) != b.rows as usize)
            {
                return Err(bad(format!(
                    "field {name} of a block of {} holds {} values for {} rows",
                    s.meta.measure,
                    column_len(c),
                    b.rows
                )));
            }
        }
    }
    Ok(summarize(&index))
}

/// Where the files of snapshot part `p` can be read: the part's directory in the data
/// directory (pinned until the snapshot is released), or `None` when the snapshot does not
/// read its part files from disk.
pub fn part_source_dir(snap: &Snapshot, p: &PartInfo) -> Option<PathBuf> {
    snap.files.iter().find_map(|f| {
        if f.kind != SnapshotFileKind::Part || f.rel_path.parent() != Some(p.rel_dir.as_path()) {
            return None;
        }
        match &f.source {
            FileSource::Path(abs) => abs.parent().map(Path::to_path_buf),
            FileSource::Inline(_) => None,
        }
    })
}

fn column_len(c: &Column) -> usize {
    match c {
        Column::F64(v) => v.len(),
        Column::I64(v) => v.len(),
        Column::Bool(v) => v.len(),
        Column::Str(v) => v.len(),
    }
}

/// What a query of one measure of an opened data directory returns, in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTotals {
    pub group: String,
    pub measure: String,
    pub series: u64,
    pub points: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
}

/// Opens the data directory `dir` read-only (WAL replayed in memory, nothing written) and
/// scans every measure of every group over all time, as a query would: what a restore drill
/// shows the restored directory answers.
pub fn scan_totals(dir: &Path) -> Result<Vec<ScanTotals>> {
    let engine = crate::Engine::open_read_only(dir)?;
    let mut out = Vec::new();
    for g in engine.catalog().groups {
        for m in &g.measures {
            let mut t = ScanTotals {
                group: g.name.clone(),
                measure: m.name.clone(),
                series: 0,
                points: 0,
                min_ts: None,
                max_ts: None,
            };
            let req = crate::scan::ScanRequest {
                group: g.name.clone(),
                measure: m.name.clone(),
                from: i64::MIN,
                to: i64::MAX,
                matchers: Vec::new(),
                fields: None,
            };
            let mut sink = |s: crate::scan::SeriesData| {
                if let (Some(a), Some(b)) = (s.timestamps.first(), s.timestamps.last()) {
                    t.series += 1;
                    t.points += s.timestamps.len() as u64;
                    t.min_ts = Some(t.min_ts.map_or(*a, |x| x.min(*a)));
                    t.max_ts = Some(t.max_ts.map_or(*b, |x| x.max(*b)));
                }
                true
            };
            engine.scan_each(&req, &mut sink)?;
            out.push(t);
        }
    }
    Ok(out)
}
