//! The read path: parts overlapping the range plus every memtable, resolved per series with
//! last write wins (parts ordered by LSN range, memtable rows by their own LSN).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::memtable::SeriesMeta;
use crate::model::FieldType;
use crate::rows::{Rows, empty_column, is_null, push_from};
use crate::scan::{
    BlockSummary, Column, Only, ScanRequest, ScanSink, SeriesData, SummaryRequest, SummarySink,
    TagMatcher,
};

use super::route::{expired, point_expired};
use super::state::*;

pub fn matches(meta: &SeriesMeta, matchers: &[TagMatcher]) -> bool {
    matchers.iter().all(|m| match m {
        TagMatcher::Eq(k, v) => meta.tag(k) == v,
        TagMatcher::NotEq(k, v) => meta.tag(k) != v,
        TagMatcher::In(k, vs) => vs.iter().any(|v| v == meta.tag(k)),
        TagMatcher::NotIn(k, vs) => !vs.iter().any(|v| v == meta.tag(k)),
        TagMatcher::Regex(k, re) => re.is_match(meta.tag(k)),
        TagMatcher::NotRegex(k, re) => !re.is_match(meta.tag(k)),
    })
}

/// Where one series' rows come from: a part's series entry (read when the series' turn comes)
/// or rows already copied out of a memtable, each row with its priority (LSN).
pub(super) enum Source {
    /// A part, its series table and the series' position in it (its blocks parsed already).
    Part(
        Arc<crate::part::PartReader>,
        Arc<crate::part::SeriesTable>,
        usize,
    ),
    Rows(Rows, Vec<u64>),
}

/// [`scan_each`] collecting every series (tests, tools, small scans).
pub fn scan(inner: &Inner, req: &ScanRequest) -> Result<Vec<SeriesData>> {
    let mut out = Vec::new();
    scan_each(inner, req, &mut |s: SeriesData| {
        out.push(s);
        true
    })?;
    Ok(out)
}

/// Scan series by series, in series-key order: only one series' part data is in memory at a
/// time (plus the rows copied out of the memtables, which are bounded by the memtable size).
/// The sink can stop the scan between series and between the parts of a series.
pub fn scan_each(inner: &Inner, req: &ScanRequest, sink: &mut dyn ScanSink) -> Result<()> {
    scan_summarized(inner, req, None, &mut Plain(sink))
}

/// A [`ScanSink`] behind [`scan_summarized`] without summaries (never given a block).
struct Plain<'a>(&'a mut dyn ScanSink);

impl SummarySink for Plain<'_> {
    fn keep_going(&mut self) -> bool {
        self.0.keep_going()
    }
    fn series(&mut self, s: SeriesData, _: Vec<BlockSummary>) -> bool {
        self.0.series(s)
    }
}

/// [`scan_each`], answering from their summaries the blocks `summaries` allows
/// ([`super::summarize`]).
pub fn scan_summarized(
    inner: &Inner,
    req: &ScanRequest,
    summaries: Option<SummaryRequest>,
    sink: &mut dyn SummarySink,
) -> Result<()> {
    if req.from >= req.to {
        return Ok(());
    }
    let (settings, field_types) = {
        let c = lock(&inner.writes.commit);
        let Some(g) = c.catalog.groups.get(&req.group) else {
            return Err(Error::GroupNotFound(req.group.clone()));
        };
        let types: BTreeMap<String, FieldType> =
            g.measures.get(&req.measure).cloned().unwrap_or_default();
        (g.settings.clone(), types)
    };
    let names = projected_names(req, &field_types);
    // Memtable rows above the durable LSN belong to writes not acknowledged yet, or never:
    // a batch whose WAL write failed (ENOSPC) stays in the memtable of the poisoned engine
    // and must not be read back. Taken before the memtables, so every row at or below it is
    // in them.
    let visible = lock(&inner.writes.durable).done_lsn;
    let (version, mems) = {
        let st = read(&inner.published.state);
        let mut mems = st.frozen.clone();
        mems.push(st.active.clone());
        (st.version.clone(), mems)
    };
    let now = now_ns();
    let mut per_series: BTreeMap<Arc<SeriesMeta>, Vec<Source>> = BTreeMap::new();
    let wanted = req.fields.as_deref();
    let mut parts = Vec::new();
    for (k, s) in &version.shards {
        if k.group != req.group || expired(s.segment_end, settings.ttl_ns, now) {
            continue;
        }
        if s.segment_end <= req.from || k.segment >= req.to {
            continue;
        }
        for p in &s.parts {
            if p.meta.max_ts < req.from || p.meta.min_ts >= req.to {
                continue;
            }
            // The part's metadata lists its measures: a part without this one is not read.
            if !p.meta.measures.contains(&req.measure) {
                continue;
            }
            parts.push(p.clone());
        }
    }
    if !sink.keep_going() {
        return Ok(());
    }
    let tables = super::tables::load_all(&parts, req)?;
    for (p, (idx, selected)) in parts.iter().zip(tables) {
        for i in selected {
            let i = i as usize;
            if !idx
                .blocks(i)?
                .iter()
                .any(|b| b.max_ts >= req.from && b.min_ts < req.to)
            {
                continue;
            }
            per_series
                .entry(idx.metas[i].clone())
                .or_default()
                .push(Source::Part(p.clone(), idx.clone(), i));
        }
    }
    for m in &mems {
        let m = read(m);
        let Some(ms) = m.groups.get(&req.group).and_then(|g| g.get(&req.measure)) else {
            continue;
        };
        for s in ms.values() {
            if !matches(&s.meta, &req.matchers) {
                continue;
            }
            let keep: Vec<usize> = (0..s.rows.ts.len())
                .filter(|&i| {
                    let t = s.rows.ts[i];
                    t >= req.from
                        && t < req.to
                        && s.lsn[i] <= visible
                        && !point_expired(t, &settings, now)
                })
                .collect();
            if keep.is_empty() {
                continue;
            }
            let (rows, prio) = pick_rows(&s.rows, &s.lsn, &keep, wanted);
            per_series
                .entry(s.meta.clone())
                .or_default()
                .push(Source::Rows(rows, prio));
        }
    }
    let plan = summaries.map(|buckets| super::summarize::Plan {
        buckets,
        from: req.from,
        to: req.to,
        names: &names,
        types: &field_types,
    });
    // `last` over the whole range: blocks newest first, those that cannot hold a last value
    // left out (`newest.rs`). Not when the range has no start: the answer is then stamped with
    // the earliest point's time, which the left-out blocks hold.
    let newest_first = req.from != i64::MIN
        && plan
            .as_ref()
            .is_some_and(|p| p.buckets.only == Some(Only::Last) && p.buckets.every.is_none());
    let scope = super::series::Scope {
        req,
        plan,
        newest_first,
        names: &names,
        types: &field_types,
    };
    if let Some(threads) = super::fanout::threads(&scope, per_series.len()) {
        return super::fanout::run(&scope, per_series, threads, sink);
    }
    while let Some((meta, sources)) = per_series.pop_first() {
        if !sink.keep_going() {
            return Ok(());
        }
        let answer = scope.answer(&meta, sources, &mut || sink.keep_going())?;
        if let Some((sd, blocks)) = answer
            && !sink.series(sd, blocks)
        {
            return Ok(());
        }
    }
    Ok(())
}

/// The fields a scan gives, in order: the requested ones the measure has, or all by name.
fn projected_names(req: &ScanRequest, types: &BTreeMap<String, FieldType>) -> Vec<String> {
    match &req.fields {
        Some(f) => f
            .iter()
            .filter(|n| types.contains_key(*n))
            .cloned()
            .collect(),
        None => types.keys().cloned().collect(),
    }
}

fn pick_rows(
    rows: &Rows,
    lsn: &[u64],
    keep: &[usize],
    wanted: Option<&[String]>,
) -> (Rows, Vec<u64>) {
    let wanted: Option<HashSet<&str>> = wanted.map(|w| w.iter().map(String::as_str).collect());
    let cols = rows
        .cols
        .iter()
        .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w.contains(n.as_str())))
        .map(|(n, c)| {
            let mut d = empty_column(crate::rows::column_type(c));
            for &i in keep {
                push_from(&mut d, Some((c, i)));
            }
            (n.clone(), d)
        })
        .collect();
    (
        Rows {
            ts: keep.iter().map(|&i| rows.ts[i]).collect(),
            cols,
        },
        keep.iter().map(|&i| lsn[i]).collect(),
    )
}

/// Columns in the requested order (or by name); rows where every projected field is null are
/// dropped; a series left with no rows is omitted.
pub(super) fn project(
    meta: &SeriesMeta,
    rows: Rows,
    names: &[String],
    types: &BTreeMap<String, FieldType>,
) -> Option<SeriesData> {
    let by_name: HashMap<&str, usize> = rows
        .cols
        .iter()
        .enumerate()
        .map(|(k, (n, _))| (n.as_str(), k))
        .collect();
    let idx: Vec<Option<usize>> = names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect();
    drop(by_name);
    let src: Vec<Option<&Column>> = idx.iter().map(|k| k.map(|k| &rows.cols[k].1)).collect();
    let kept = |i: usize| src.iter().any(|c| c.is_some_and(|c| !is_null(c, i)));
    let n = rows.ts.len();
    let distinct = idx
        .iter()
        .enumerate()
        .all(|(a, k)| k.is_none() || !idx[..a].contains(k));
    if distinct && (0..n).all(kept) {
        // Every row stays: the columns move as they are (no copy of a value).
        drop(src);
        return Some(move_columns(meta, rows, names, &idx, types));
    }
    let keep: Vec<usize> = (0..n).filter(|&i| kept(i)).collect();
    if keep.is_empty() {
        return None;
    }
    let columns = names
        .iter()
        .zip(&src)
        .map(|(n, c)| {
            let mut d = empty_column(types[n]);
            for &i in &keep {
                push_from(&mut d, c.map(|c| (c, i)));
            }
            (n.clone(), d)
        })
        .collect();
    Some(SeriesData {
        tags: meta.tags.clone(),
        timestamps: keep.iter().map(|&i| rows.ts[i]).collect(),
        columns,
    })
}

/// [`project`] when every row stays and each source column is used once: columns of the
/// projected type move, absent (or, as `push_from` does, mistyped) ones become nulls.
fn move_columns(
    meta: &SeriesMeta,
    mut rows: Rows,
    names: &[String],
    idx: &[Option<usize>],
    types: &BTreeMap<String, FieldType>,
) -> SeriesData {
    let n = rows.ts.len();
    let columns = names
        .iter()
        .zip(idx)
        .map(|(name, k)| {
            let t = types[name];
            let col = match k {
                Some(k) if crate::rows::column_type(&rows.cols[*k].1) == t => {
                    std::mem::replace(&mut rows.cols[*k].1, empty_column(t))
                }
                _ => nulls(t, n),
            };
            (name.clone(), col)
        })
        .collect();
    SeriesData {
        tags: meta.tags.clone(),
        timestamps: rows.ts,
        columns,
    }
}

fn nulls(t: FieldType, n: usize) -> Column {
    match t {
        FieldType::F64 => Column::F64(vec![None; n]),
        FieldType::I64 => Column::I64(vec![None; n]),
        FieldType::Bool => Column::Bool(vec![None; n]),
        FieldType::Str => Column::Str(vec![None; n]),
    }
}

/// The series tables are derived from the parts' own `index.bin`; reloading them rebuilds
/// every in-memory lookup structure from the parts alone.
pub fn rebuild_index(inner: &Inner) -> Result<()> {
    let _l = lock(&inner.published.layout);
    let mut v = (*read(&inner.published.state).version).clone();
    for s in v.shards.values_mut() {
        for p in s.parts.iter_mut() {
            // Re-read and re-parse each part's series table one at a time, keeping none: a
            // scan loads what it needs (a restore used to hold every table at once here).
            let fresh = crate::part::PartReader::open(inner.vfs(), &p.dir)?;
            fresh.index_once()?;
            *p = Arc::new(fresh);
        }
    }
    write(&inner.published.state).version = Arc::new(v);
    Ok(())
}
