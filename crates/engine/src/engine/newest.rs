//! "Last value" scans newest first with early stop: for an aggregation that needs only the
//! last value of each field over the whole range (`last` without buckets), a series' part
//! blocks are visited from the newest to the oldest, and a block is skipped, neither decoded
//! nor summarized, when every projected field it holds already has a value at a later time.
//! Only for a range with a start: over an unbounded one, the answer's time is the earliest
//! point's (`query/src/result.rs` `agg_rows`), which left-out blocks would hold.
//!
//! Why the answer cannot change: resolution is last write wins field by field, so a field with
//! a value at time `t` in any source keeps a value at `t` after resolution; the series' last
//! value of that field then lies at `t` or later. A block whose latest row (`max_ts`) is before
//! `t` for each of its fields only holds earlier values, which the last value never takes. The
//! blocks kept are handed on in their original order; skipping one can only make another block
//! cheaper (summarized instead of decoded), never change what it contributes. A field counts
//! only where its stored type is the catalog's (a mistyped column reads as nulls).

use std::collections::BTreeMap;

use crate::model::FieldType;
use crate::part::BlockRef;
use crate::rows::{Rows, column_type, is_null};

/// Per projected field, a time inside the range at which the series certainly has a value.
pub(super) struct Latest<'a> {
    from: i64,
    to: i64,
    names: &'a [String],
    types: &'a BTreeMap<String, FieldType>,
    at: Vec<Option<i64>>,
}

impl<'a> Latest<'a> {
    pub fn new(
        from: i64,
        to: i64,
        names: &'a [String],
        types: &'a BTreeMap<String, FieldType>,
    ) -> Self {
        Latest {
            from,
            to,
            names,
            types,
            at: vec![None; names.len()],
        }
    }

    fn raise(&mut self, k: usize, t: i64) {
        if self.at[k].is_none_or(|a| a < t) {
            self.at[k] = Some(t);
        }
    }

    /// Rows already restricted to the range (memtable rows).
    pub fn note_rows(&mut self, rows: &Rows) {
        for (k, name) in self.names.iter().enumerate() {
            let Some((_, c)) = rows.cols.iter().find(|(n, _)| n == name) else {
                continue;
            };
            if Some(&column_type(c)) != self.types.get(name) {
                continue;
            }
            if let Some(i) = (0..rows.ts.len()).rev().find(|&i| !is_null(c, i)) {
                self.raise(k, rows.ts[i]);
            }
        }
    }

    /// A block that is being read (decoded or summarized).
    pub fn note_block(&mut self, b: &BlockRef) {
        let inside = b.min_ts >= self.from && b.max_ts < self.to;
        for (k, name) in self.names.iter().enumerate() {
            let Some(f) = b.fields.iter().find(|f| *f.name == **name) else {
                continue;
            };
            if f.present == 0 || !self.typed(name, f.ty) {
                continue;
            }
            let in_range = |t: i64| t >= self.from && t < self.to;
            let t = match &f.summary {
                Some(s) => {
                    let (first, last) = s.first_last_ts();
                    [last, first].into_iter().find(|&t| in_range(t))
                }
                // Without a summary (part format v1), a block wholly inside the range has its
                // values somewhere in [min_ts, max_ts]: min_ts is a safe lower bound.
                None => inside.then_some(b.min_ts),
            };
            if let Some(t) = t {
                self.raise(k, t);
            }
        }
    }

    /// Whether block `b` can be left out: each projected field with values in it already has
    /// a value after the block's last row.
    pub fn covers(&self, b: &BlockRef) -> bool {
        self.names.iter().enumerate().all(|(k, name)| {
            let Some(f) = b.fields.iter().find(|f| *f.name == **name) else {
                return true;
            };
            if f.present == 0 {
                return true;
            }
            self.typed(name, f.ty) && self.at[k].is_some_and(|t| t > b.max_ts)
        })
    }

    fn typed(&self, name: &str, ty: u8) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| super::summarize::type_code(t) == ty)
    }
}
