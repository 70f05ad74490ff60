//! Rows of one series in columnar form, and the last-write-wins resolution shared by flush,
//! merge and scan: one row per timestamp, each field taken from the newest source that has it.

use std::collections::{BTreeMap, HashMap};

use crate::model::{FieldType, FieldValue};
use crate::scan::Column;

/// Rows of one series: timestamps and named, nullable columns aligned with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub ts: Vec<i64>,
    pub cols: Vec<(String, Column)>,
}

pub fn column_type(c: &Column) -> FieldType {
    match c {
        Column::F64(_) => FieldType::F64,
        Column::I64(_) => FieldType::I64,
        Column::Bool(_) => FieldType::Bool,
        Column::Str(_) => FieldType::Str,
    }
}

pub fn empty_column(t: FieldType) -> Column {
    match t {
        FieldType::F64 => Column::F64(Vec::new()),
        FieldType::I64 => Column::I64(Vec::new()),
        FieldType::Bool => Column::Bool(Vec::new()),
        FieldType::Str => Column::Str(Vec::new()),
    }
}

pub fn is_null(c: &Column, i: usize) -> bool {
    match c {
        Column::F64(v) => v[i].is_none(),
        Column::I64(v) => v[i].is_none(),
        Column::Bool(v) => v[i].is_none(),
        Column::Str(v) => v[i].is_none(),
    }
}

/// Append `src[i]` (or null when `src` is `None`) to `dst`. Types were checked by the catalog;
/// a mismatch pushes null rather than panicking.
pub fn push_from(dst: &mut Column, src: Option<(&Column, usize)>) {
    match dst {
        Column::F64(d) => d.push(match src {
            Some((Column::F64(s), i)) => s[i],
            _ => None,
        }),
        Column::I64(d) => d.push(match src {
            Some((Column::I64(s), i)) => s[i],
            _ => None,
        }),
        Column::Bool(d) => d.push(match src {
            Some((Column::Bool(s), i)) => s[i],
            _ => None,
        }),
        Column::Str(d) => d.push(match src {
            Some((Column::Str(s), i)) => s[i].clone(),
            _ => None,
        }),
    }
}

/// Append a value (or null) to a column of the matching type.
pub fn push_value(dst: &mut Column, v: Option<&FieldValue>) {
    match (dst, v) {
        (Column::F64(d), Some(FieldValue::F64(x))) => d.push(Some(*x)),
        (Column::I64(d), Some(FieldValue::I64(x))) => d.push(Some(*x)),
        (Column::Bool(d), Some(FieldValue::Bool(x))) => d.push(Some(*x)),
        (Column::Str(d), Some(FieldValue::Str(x))) => d.push(Some(x.clone())),
        (Column::F64(d), _) => d.push(None),
        (Column::I64(d), _) => d.push(None),
        (Column::Bool(d), _) => d.push(None),
        (Column::Str(d), _) => d.push(None),
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Rows with `from <= ts < to` (requires sorted timestamps), cut in place; columns left
    /// without a value are dropped (as [`Rows::slice`] drops them).
    pub fn into_time(mut self, from: i64, to: i64) -> Rows {
        let a = self.ts.partition_point(|&t| t < from);
        let b = self.ts.partition_point(|&t| t < to);
        if a == 0 && b == self.ts.len() {
            return self;
        }
        fn cut<T>(v: &mut Vec<T>, a: usize, b: usize) {
            v.truncate(b);
            v.drain(..a);
        }
        cut(&mut self.ts, a, b);
        for (_, c) in &mut self.cols {
            match c {
                Column::F64(v) => cut(v, a, b),
                Column::I64(v) => cut(v, a, b),
                Column::Bool(v) => cut(v, a, b),
                Column::Str(v) => cut(v, a, b),
            }
        }
        // As `slice`: a column left without a value is dropped.
        self.cols
            .retain(|(_, c)| (0..b - a).any(|i| !is_null(c, i)));
        self
    }

    pub fn slice(&self, a: usize, b: usize) -> Rows {
        Rows {
            ts: self.ts[a..b].to_vec(),
            cols: self
                .cols
                .iter()
                .map(|(n, c)| {
                    let c = match c {
                        Column::F64(v) => Column::F64(v[a..b].to_vec()),
                        Column::I64(v) => Column::I64(v[a..b].to_vec()),
                        Column::Bool(v) => Column::Bool(v[a..b].to_vec()),
                        Column::Str(v) => Column::Str(v[a..b].to_vec()),
                    };
                    (n.clone(), c)
                })
                .filter(|(_, c)| (0..b - a).any(|i| !is_null(c, i)))
                .collect(),
        }
    }
}

/// Merge sources into one row per timestamp. `prio[s][i]` orders row `i` of source `s`: on equal
/// timestamps, each field comes from the highest-priority row where it is not null.
pub fn resolve(sources: &[(&Rows, &[u64])]) -> Rows {
    // Union of the column names, through maps: searching lists made wide series quadratic.
    let mut union: BTreeMap<&str, FieldType> = BTreeMap::new();
    for (r, _) in sources {
        for (n, c) in &r.cols {
            union.entry(n.as_str()).or_insert_with(|| column_type(c));
        }
    }
    let names: Vec<(String, FieldType)> = union.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let pos: HashMap<&str, usize> = union.keys().enumerate().map(|(i, n)| (*n, i)).collect();
    // For each source: union column index -> source column index.
    let maps: Vec<Vec<Option<usize>>> = sources
        .iter()
        .map(|(r, _)| {
            let mut m = vec![None; names.len()];
            for (sc, (n, _)) in r.cols.iter().enumerate() {
                if let Some(&ui) = pos.get(n.as_str()) {
                    m[ui].get_or_insert(sc);
                }
            }
            m
        })
        .collect();
    let mut order: Vec<(i64, u64, u32, u32)> = Vec::new();
    for (s, (r, p)) in sources.iter().enumerate() {
        for i in 0..r.ts.len() {
            order.push((r.ts[i], p.get(i).copied().unwrap_or(0), s as u32, i as u32));
        }
    }
    order.sort_unstable();
    let mut out = Rows {
        ts: Vec::with_capacity(order.len()),
        cols: names
            .iter()
            .map(|(n, t)| (n.clone(), empty_column(*t)))
            .collect(),
    };
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && order[j].0 == order[i].0 {
            j += 1;
        }
        out.ts.push(order[i].0);
        for (ci, (_, col)) in out.cols.iter_mut().enumerate() {
            // Newest first: the last entry of the group with the field set wins.
            let src = order[i..j].iter().rev().find_map(|&(_, _, s, r)| {
                let sc = maps[s as usize][ci]?;
                let c = &sources[s as usize].0.cols[sc].1;
                (!is_null(c, r as usize)).then_some((c, r as usize))
            });
            push_from(col, src);
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_win_field_by_field() {
        let a = Rows {
            ts: vec![1, 2],
            cols: vec![
                ("x".into(), Column::F64(vec![Some(1.0), Some(2.0)])),
                ("y".into(), Column::I64(vec![Some(10), None])),
            ],
        };
        let b = Rows {
            ts: vec![2, 3],
            cols: vec![("x".into(), Column::F64(vec![Some(20.0), None]))],
        };
        let r = resolve(&[(&a, &[1, 1]), (&b, &[2, 2])]);
        assert_eq!(r.ts, vec![1, 2, 3]);
        assert_eq!(
            r.cols[0],
            ("x".into(), Column::F64(vec![Some(1.0), Some(20.0), None]))
        );
        assert_eq!(
            r.cols[1],
            ("y".into(), Column::I64(vec![Some(10), None, None]))
        );
    }

    #[test]
    fn duplicates_inside_one_source_resolve_by_priority() {
        let a = Rows {
            ts: vec![5, 5, 5],
            cols: vec![("x".into(), Column::I64(vec![Some(3), Some(1), None]))],
        };
        let r = resolve(&[(&a, &[9, 3, 10])]);
        assert_eq!(r.ts, vec![5]);
        assert_eq!(r.cols[0].1, Column::I64(vec![Some(3)]));
    }
}
