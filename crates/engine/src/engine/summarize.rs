//! Which blocks of a scan are answered from their summaries (part format v2) instead of being
//! decoded: a block that lies wholly inside the scanned range and inside one bucket, whose
//! time span no other source of its series (another part, memtable rows) reaches, and whose
//! every projected field with values carries a summary of the catalog's type. For `last`
//! (`first`) a block cut by the range's start (end) qualifies too: its last (first) value is
//! the last (first) one inside the range when it lies inside at all; a field whose value does
//! not is left out (so the newest block of a series answers "last value" with no decoding).
//!
//! Such a block's points are exactly what last-write-wins resolution would give for its span
//! (nothing else competes there), all in one bucket, so folding its summary gives the answer
//! folding its decoded points gives. TTL needs no check here: it drops whole segments (and
//! their parts) before any block is looked at, never points inside a part.

use std::collections::BTreeMap;

use crate::model::FieldType;
use crate::part::{BlockRef, PartReader};
use crate::scan::{BlockSummary, FieldAgg, Only, SummaryRequest};

use super::read::Source;

pub(super) struct Plan<'a> {
    pub buckets: SummaryRequest,
    pub from: i64,
    pub to: i64,
    /// Projected fields, in [`crate::scan::SeriesData::columns`] order.
    pub names: &'a [String],
    pub types: &'a BTreeMap<String, FieldType>,
}

impl Plan<'_> {
    /// `Some(answer)` when block `b` of source `si` can be answered from its summary (`answer`
    /// is `None` when it holds no value of a projected field); `None` when it must be decoded.
    pub fn block(
        &self,
        p: &PartReader,
        b: &BlockRef,
        si: usize,
        sources: &[Source],
    ) -> Option<Option<BlockSummary>> {
        let inside = b.min_ts >= self.from && b.max_ts < self.to;
        // A block cut by one edge of the range still gives the value on its other side.
        let edge_ok = match self.buckets.only {
            Some(Only::Last) => b.max_ts < self.to,
            Some(Only::First) => b.min_ts >= self.from,
            None => false,
        };
        if p.format_version() < 2
            || !(inside || edge_ok)
            || self.buckets.bucket(b.min_ts) != self.buckets.bucket(b.max_ts)
        {
            return None;
        }
        let mut fields = Vec::with_capacity(self.names.len());
        for n in self.names {
            let Some(f) = b.fields.iter().find(|f| *f.name == **n) else {
                fields.push(None);
                continue;
            };
            if f.present == 0 {
                fields.push(None);
                continue;
            }
            let summary = f.summary.as_ref()?;
            if type_code(self.types.get(n)?) != f.ty {
                return None;
            }
            let (first, last) = summary.first_last_ts();
            let in_range = |t: i64| t >= self.from && t < self.to;
            let wanted = inside
                || match self.buckets.only {
                    Some(Only::Last) => in_range(last),
                    Some(Only::First) => in_range(first),
                    None => false,
                };
            if !wanted {
                // Every value of the field in this block lies outside the range.
                fields.push(None);
                continue;
            }
            fields.push(Some(FieldAgg {
                count: u64::from(f.present),
                summary: summary.clone(),
            }));
        }
        if overlapped(b, si, sources) {
            return None;
        }
        Some(fields.iter().any(Option::is_some).then_some(BlockSummary {
            min_ts: b.min_ts,
            max_ts: b.max_ts,
            fields,
        }))
    }
}

/// Whether any source of the series other than `si` has a point in `[b.min_ts, b.max_ts]`.
fn overlapped(b: &BlockRef, si: usize, sources: &[Source]) -> bool {
    sources.iter().enumerate().any(|(j, src)| {
        j != si
            && match src {
                // Parsed when the series was gathered; an error counts as an overlap (decode).
                Source::Part(_, idx, i) => idx.blocks(*i).map_or(true, |blocks| {
                    blocks
                        .iter()
                        .any(|o| o.max_ts >= b.min_ts && o.min_ts <= b.max_ts)
                }),
                Source::Rows(rows, _) => rows.ts.iter().any(|&t| t >= b.min_ts && t <= b.max_ts),
            }
    })
}

pub(super) fn type_code(t: &FieldType) -> u8 {
    match t {
        FieldType::F64 => crate::record::TYPE_F64,
        FieldType::I64 => crate::record::TYPE_I64,
        FieldType::Bool => crate::record::TYPE_BOOL,
        FieldType::Str => crate::record::TYPE_STR,
    }
}
