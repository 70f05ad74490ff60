//! The common case of last-write-wins resolution without its cost: when a series' sources
//! (decoded blocks, memtable rows) each hold strictly increasing timestamps and their time
//! spans do not overlap, no two rows compete, and the resolved rows are the sources laid end
//! to end. Whole columns are appended instead of sorting every row and picking its fields
//! one by one (`rows::resolve`), which decoded blocks of one merged part always allow.

use std::collections::BTreeMap;

use crate::model::FieldType;
use crate::rows::{Rows, column_type, empty_column};
use crate::scan::Column;

/// The sources laid end to end, or `None` when two of them may compete (then resolve).
pub(super) fn disjoint(sources: &[(Rows, Vec<u64>)]) -> Option<Rows> {
    let mut order: Vec<&Rows> = sources
        .iter()
        .map(|(r, _)| r)
        .filter(|r| !r.ts.is_empty())
        .collect();
    if order.iter().any(|r| !r.ts.windows(2).all(|w| w[0] < w[1])) {
        return None;
    }
    order.sort_by_key(|r| r.ts[0]);
    if !order
        .windows(2)
        .all(|w| w[0].ts[w[0].ts.len() - 1] < w[1].ts[0])
    {
        return None;
    }
    let mut union: BTreeMap<&str, FieldType> = BTreeMap::new();
    // Columns of empty sources too, as resolve keeps them.
    for (r, _) in sources {
        for (n, c) in &r.cols {
            if *union.entry(n.as_str()).or_insert_with(|| column_type(c)) != column_type(c) {
                return None;
            }
        }
    }
    let n: usize = order.iter().map(|r| r.ts.len()).sum();
    let mut out = Rows {
        ts: Vec::with_capacity(n),
        cols: union
            .iter()
            .map(|(name, t)| (name.to_string(), with_capacity(*t, n)))
            .collect(),
    };
    for r in &order {
        out.ts.extend_from_slice(&r.ts);
        for (name, col) in out.cols.iter_mut() {
            // Like resolve: the first column of that name in the source.
            let src = r.cols.iter().find(|(n, _)| n == name).map(|(_, c)| c);
            append(col, src, r.ts.len());
        }
    }
    Some(out)
}

fn with_capacity(t: FieldType, n: usize) -> Column {
    match empty_column(t) {
        Column::F64(_) => Column::F64(Vec::with_capacity(n)),
        Column::I64(_) => Column::I64(Vec::with_capacity(n)),
        Column::Bool(_) => Column::Bool(Vec::with_capacity(n)),
        Column::Str(_) => Column::Str(Vec::with_capacity(n)),
    }
}

/// Append `src` (same type, checked by the caller) or `len` nulls.
fn append(dst: &mut Column, src: Option<&Column>, len: usize) {
    match (dst, src) {
        (Column::F64(d), Some(Column::F64(s))) => d.extend_from_slice(s),
        (Column::I64(d), Some(Column::I64(s))) => d.extend_from_slice(s),
        (Column::Bool(d), Some(Column::Bool(s))) => d.extend_from_slice(s),
        (Column::Str(d), Some(Column::Str(s))) => d.extend_from_slice(s),
        (Column::F64(d), _) => d.resize(d.len() + len, None),
        (Column::I64(d), _) => d.resize(d.len() + len, None),
        (Column::Bool(d), _) => d.resize(d.len() + len, None),
        (Column::Str(d), _) => d.resize(d.len() + len, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rows::resolve;

    fn rows(ts: Vec<i64>, with_f: bool, with_s: bool) -> Rows {
        let n = ts.len();
        let mut cols = Vec::new();
        if with_f {
            cols.push((
                "f".to_string(),
                Column::F64((0..n).map(|i| (i % 3 != 0).then_some(i as f64)).collect()),
            ));
        }
        if with_s {
            cols.push((
                "s".to_string(),
                Column::Str((0..n).map(|i| Some(format!("{i}"))).collect()),
            ));
        }
        Rows { ts, cols }
    }

    proptest! {
        /// Whenever the fast path answers, it answers what resolution gives.
        #[test]
        fn equals_resolve_whenever_it_applies(
            spans in prop::collection::vec((0i64..200, 0usize..6, 1i64..4, any::<bool>(), any::<bool>()), 1..5),
        ) {
            let sources: Vec<(Rows, Vec<u64>)> = spans
                .iter()
                .enumerate()
                .map(|(k, &(start, len, step, f, s))| {
                    let ts: Vec<i64> = (0..len as i64).map(|i| start + i * step).collect();
                    let n = ts.len();
                    (rows(ts, f, s), vec![k as u64 + 1; n])
                })
                .collect();
            let refs: Vec<(&Rows, &[u64])> =
                sources.iter().map(|(r, p)| (r, p.as_slice())).collect();
            let want = resolve(&refs);
            if let Some(got) = disjoint(&sources) {
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn overlapping_or_unsorted_sources_are_left_to_resolve() {
        let a = (rows(vec![1, 2, 3], true, false), vec![1; 3]);
        let b = (rows(vec![3, 4], true, false), vec![2; 2]);
        assert!(disjoint(&[a.clone(), b]).is_none());
        let c = (rows(vec![5, 4], true, false), vec![2; 2]);
        assert!(disjoint(&[a.clone(), c]).is_none());
        let d = (rows(vec![10, 11], false, true), vec![2; 2]);
        let got = disjoint(&[d, a]).unwrap();
        assert_eq!(got.ts, vec![1, 2, 3, 10, 11]);
    }
}
