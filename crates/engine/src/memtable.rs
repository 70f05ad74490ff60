//! The in-memory write buffer: per group, measure and series, append-only columnar rows tagged
//! with their LSN. Rows are resolved (sorted, deduplicated, last write wins) when read or flushed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::batch::{FieldRef, PointRef};
use crate::rows::{Rows, empty_column, push_value};
use crate::scan::Column;

/// Identity of a series: measure and tags sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesMeta {
    pub measure: String,
    pub tags: Vec<(String, String)>,
}

impl SeriesMeta {
    /// Canonical key: `tag_k 0x01 tag_v 0x00` for each tag in key order (the measure is implied
    /// by the map it lives in).
    pub fn tag_key(tags: &[(String, String)]) -> String {
        let mut k = String::new();
        Self::tag_key_into(tags, &mut k);
        k
    }

    /// [`SeriesMeta::tag_key`] into `k` (cleared first).
    pub fn tag_key_into<K: AsRef<str>, V: AsRef<str>>(tags: &[(K, V)], k: &mut String) {
        k.clear();
        for (a, b) in tags {
            k.push_str(a.as_ref());
            k.push('\u{1}');
            k.push_str(b.as_ref());
            k.push('\0');
        }
    }

    pub fn sid(&self) -> u64 {
        let mut k = self.measure.clone();
        k.push('\0');
        k.push_str(&Self::tag_key(&self.tags));
        xxhash_rust::xxh3::xxh3_64(k.as_bytes())
    }

    pub fn tag(&self, key: &str) -> &str {
        self.tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .map(|i| self.tags[i].1.as_str())
            .unwrap_or("")
    }
}

pub struct SeriesBuf {
    pub meta: Arc<SeriesMeta>,
    pub rows: Rows,
    pub lsn: Vec<u64>,
}

impl SeriesBuf {
    /// Sorted, one row per timestamp.
    pub fn resolved(&self) -> Rows {
        crate::rows::resolve(&[(&self.rows, &self.lsn)])
    }
}

/// Measure → canonical tag key → series.
pub type GroupMem = HashMap<String, HashMap<String, SeriesBuf>>;

#[derive(Default)]
pub struct Memtable {
    pub groups: HashMap<String, GroupMem>,
    /// Rough heap size, for the flush trigger.
    pub bytes: usize,
    /// When the first row went in (for the age trigger).
    pub first_insert: Option<Instant>,
    /// When the last batch went in (for the idle trigger); set once per batch by the writer.
    pub last_insert: Option<Instant>,
    pub points: u64,
    /// Reused buffer for the series key of each inserted point: an existing series (the
    /// common case) is then found without allocating.
    key_buf: String,
}

impl Memtable {
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Insert one point whose tags are already sorted by key and unique.
    pub fn insert(&mut self, group: &str, p: &PointRef<'_, '_>, lsn: u64) {
        if self.first_insert.is_none() {
            self.first_insert = Some(Instant::now());
        }
        self.points += 1;
        let g = match self.groups.get_mut(group) {
            Some(g) => g,
            None => self.groups.entry(group.to_string()).or_default(),
        };
        let m = match g.get_mut(p.measure) {
            Some(m) => m,
            None => g.entry(p.measure.to_string()).or_default(),
        };
        SeriesMeta::tag_key_into(p.tags, &mut self.key_buf);
        let s = match m.get_mut(self.key_buf.as_str()) {
            Some(s) => s,
            None => {
                let key = self.key_buf.clone();
                self.bytes += key.len() * 2 + 64;
                m.entry(key).or_insert_with(|| SeriesBuf {
                    meta: Arc::new(SeriesMeta {
                        measure: p.measure.to_string(),
                        tags: p.owned_tags(),
                    }),
                    rows: Rows::default(),
                    lsn: Vec::new(),
                })
            }
        };
        let n = s.rows.ts.len();
        s.rows.ts.push(p.timestamp);
        s.lsn.push(lsn);
        self.bytes += 16;
        for (_, v) in p.fields {
            self.bytes += 16 + value_heap(v);
        }
        // Points of one series usually list their fields in the same order as the columns.
        let in_order = s.rows.cols.len() == p.fields.len()
            && s.rows
                .cols
                .iter()
                .zip(p.fields)
                .all(|((c, _), (f, _))| c == f);
        if in_order {
            for ((_, col), (_, v)) in s.rows.cols.iter_mut().zip(p.fields) {
                push_ref(col, Some(v));
            }
            return;
        }
        // Otherwise match by name through a map (a search per column made a point of 20k
        // fields quadratic), then add the columns the series did not have yet.
        let by_name: HashMap<&str, usize> = p
            .fields
            .iter()
            .enumerate()
            .map(|(i, (f, _))| (f.as_ref(), i))
            .collect();
        let mut used = vec![false; p.fields.len()];
        for (name, col) in s.rows.cols.iter_mut() {
            let v = by_name.get(name.as_str()).map(|&i| {
                used[i] = true;
                &p.fields[i].1
            });
            push_ref(col, v);
        }
        for (i, ((name, v), used)) in p.fields.iter().zip(used).enumerate() {
            // A name repeated inside one point (owned points are not deduplicated) gets one
            // column, with its last value.
            if used || by_name.get(name.as_ref()) != Some(&i) {
                continue;
            }
            let mut col = empty_column(v.field_type());
            for _ in 0..n {
                push_value(&mut col, None);
            }
            push_ref(&mut col, Some(v));
            s.rows.cols.push((name.to_string(), col));
        }
    }

    pub fn remove_group(&mut self, group: &str) {
        self.groups.remove(group);
    }
}

fn value_heap(v: &FieldRef<'_>) -> usize {
    match v {
        FieldRef::Str(s) => s.len(),
        _ => 0,
    }
}

/// [`push_value`] for a borrowed value: a type mismatch (impossible after catalog
/// validation) pushes a null, as `push_value` does.
fn push_ref(dst: &mut Column, v: Option<&FieldRef<'_>>) {
    match (dst, v) {
        (Column::F64(d), Some(FieldRef::F64(x))) => d.push(Some(*x)),
        (Column::I64(d), Some(FieldRef::I64(x))) => d.push(Some(*x)),
        (Column::Bool(d), Some(FieldRef::Bool(x))) => d.push(Some(*x)),
        (Column::Str(d), Some(FieldRef::Str(x))) => d.push(Some(x.to_string())),
        (Column::F64(d), _) => d.push(None),
        (Column::I64(d), _) => d.push(None),
        (Column::Bool(d), _) => d.push(None),
        (Column::Str(d), _) => d.push(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::PointBatch;
    use crate::model::{FieldValue, Point};

    #[test]
    fn insert_pads_new_fields_and_resolves() {
        let mut m = Memtable::default();
        let p = |ts, fields: Vec<(&str, FieldValue)>| Point {
            measure: "cpu".into(),
            tags: vec![("host".into(), "a".into())],
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            timestamp: ts,
        };
        let pts = [
            p(2, vec![("x", FieldValue::F64(1.0))]),
            p(1, vec![("y", FieldValue::I64(7))]),
            p(2, vec![("y", FieldValue::I64(8))]),
        ];
        let batch = PointBatch::from_points(&pts);
        for (i, p) in batch.iter().enumerate() {
            m.insert("g", &p, i as u64 + 1);
        }
        let s = &m.groups["g"]["cpu"][&SeriesMeta::tag_key(&[("host".into(), "a".into())])];
        let r = s.resolved();
        assert_eq!(r.ts, vec![1, 2]);
        assert_eq!(r.cols[0].1, Column::F64(vec![None, Some(1.0)]));
        assert_eq!(r.cols[1].1, Column::I64(vec![Some(7), Some(8)]));
        assert_eq!(s.meta.tag("host"), "a");
        assert_eq!(s.meta.tag("nope"), "");
    }
}
