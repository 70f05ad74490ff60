//! A batch of points laid out flat: three vectors for the whole batch instead of two vectors
//! and a string per tag and field for every point. Names and values are `Cow`s, so a parser can
//! borrow them from the request body (owning only what had to be unescaped), and the write path
//! costs a handful of allocations per batch rather than ~30 per point.
//!
//! [`PointBatch::from_points`] borrows owned [`Point`]s, which is how [`crate::Engine::write`]
//! keeps taking `&[Point]` for tests and tools.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::model::{FieldType, FieldValue, Point, Timestamp};

/// A field value whose string, if any, may borrow from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef<'a> {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(Cow<'a, str>),
}

impl FieldRef<'_> {
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldRef::F64(_) => FieldType::F64,
            FieldRef::I64(_) => FieldType::I64,
            FieldRef::Bool(_) => FieldType::Bool,
            FieldRef::Str(_) => FieldType::Str,
        }
    }

    pub fn to_value(&self) -> FieldValue {
        match self {
            FieldRef::F64(x) => FieldValue::F64(*x),
            FieldRef::I64(x) => FieldValue::I64(*x),
            FieldRef::Bool(x) => FieldValue::Bool(*x),
            FieldRef::Str(s) => FieldValue::Str(s.to_string()),
        }
    }
}

impl<'a> From<&'a FieldValue> for FieldRef<'a> {
    fn from(v: &'a FieldValue) -> Self {
        match v {
            FieldValue::F64(x) => FieldRef::F64(*x),
            FieldValue::I64(x) => FieldRef::I64(*x),
            FieldValue::Bool(x) => FieldRef::Bool(*x),
            FieldValue::Str(s) => FieldRef::Str(Cow::Borrowed(s)),
        }
    }
}

pub type TagRef<'a> = (Cow<'a, str>, Cow<'a, str>);
pub type FieldEntry<'a> = (Cow<'a, str>, FieldRef<'a>);

#[derive(Debug, Clone)]
struct Head<'a> {
    measure: Cow<'a, str>,
    timestamp: Timestamp,
    /// End (exclusive) of this point's tags in `tags`; it starts where the previous one ended.
    tags_end: usize,
    fields_end: usize,
}

/// Points of one batch. Build it with [`push_tag`](Self::push_tag) /
/// [`push_field`](Self::push_field) for the point being assembled, then
/// [`finish_point`](Self::finish_point).
#[derive(Debug, Clone, Default)]
pub struct PointBatch<'a> {
    heads: Vec<Head<'a>>,
    tags: Vec<TagRef<'a>>,
    fields: Vec<FieldEntry<'a>>,
    /// One bit per field key of the point being assembled (a hash of its length and last
    /// byte): a key whose bit is clear is new, which spares the search for a repeated key.
    pending_keys: u64,
    /// Field keys of the point being assembled → their index in `fields`, built once the
    /// point has [`WIDE`] fields: past that, searching for a repeated key made wide points
    /// quadratic (100k fields took a minute).
    wide: HashMap<Cow<'a, str>, usize>,
}

/// Fields of one point past which repeated keys are found through a hash map.
const WIDE: usize = 32;

/// One point of a batch, as slices of the batch's vectors.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'b, 'a> {
    pub measure: &'b str,
    pub tags: &'b [TagRef<'a>],
    pub fields: &'b [FieldEntry<'a>],
    pub timestamp: Timestamp,
}

impl PointRef<'_, '_> {
    /// The tags as owned strings (a new series' metadata, owned copies of points).
    pub fn owned_tags(&self) -> Vec<(String, String)> {
        self.tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl<'a> PointBatch<'a> {
    /// Room for `points` points of `tags` tags and `fields` fields each.
    pub fn with_capacity(points: usize, tags: usize, fields: usize) -> Self {
        PointBatch {
            heads: Vec::with_capacity(points),
            tags: Vec::with_capacity(points.saturating_mul(tags)),
            fields: Vec::with_capacity(points.saturating_mul(fields)),
            pending_keys: 0,
            wide: HashMap::new(),
        }
    }

    /// Borrow owned points (tags in the order given; the engine sorts them).
    pub fn from_points(points: &'a [Point]) -> Self {
        let mut b = PointBatch::with_capacity(points.len(), 0, 0);
        for p in points {
            for (k, v) in &p.tags {
                b.tags.push((Cow::Borrowed(k), Cow::Borrowed(v)));
            }
            for (k, v) in &p.fields {
                b.fields.push((Cow::Borrowed(k), FieldRef::from(v)));
            }
            b.finish_point(Cow::Borrowed(&p.measure), p.timestamp);
        }
        b
    }

    /// Owned copies of every point (tests, tools).
    pub fn to_points(&self) -> Vec<Point> {
        self.iter()
            .map(|p| Point {
                measure: p.measure.to_string(),
                tags: p.owned_tags(),
                fields: p
                    .fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
                timestamp: p.timestamp,
            })
            .collect()
    }

    /// A tag of the point being assembled.
    pub fn push_tag(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        self.tags.push((key, value));
    }

    /// Tags of the point being assembled so far.
    pub fn pending_tags(&self) -> usize {
        self.tags.len() - self.heads.last().map_or(0, |h| h.tags_end)
    }

    /// Fields of the point being assembled so far (repeated keys counted once).
    pub fn pending_fields(&self) -> usize {
        self.fields.len() - self.heads.last().map_or(0, |h| h.fields_end)
    }

    /// A field of the point being assembled; a repeated key replaces the earlier value (the
    /// last value wins, as in InfluxDB).
    pub fn push_field(&mut self, key: Cow<'a, str>, value: FieldRef<'a>) {
        let start = self.heads.last().map_or(0, |h| h.fields_end);
        if self.fields.len() - start >= WIDE {
            if self.wide.is_empty() {
                for (i, (k, _)) in self.fields.iter().enumerate().skip(start) {
                    self.wide.insert(k.clone(), i);
                }
            }
            match self.wide.get(&key) {
                Some(&i) => self.fields[i].1 = value,
                None => {
                    self.wide.insert(key.clone(), self.fields.len());
                    self.fields.push((key, value));
                }
            }
            return;
        }
        let bit = key_bit(&key);
        if self.pending_keys & bit == 0 {
            self.pending_keys |= bit;
            self.fields.push((key, value));
            return;
        }
        match self.fields[start..].iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// Close the point being assembled.
    pub fn finish_point(&mut self, measure: Cow<'a, str>, timestamp: Timestamp) {
        self.pending_keys = 0;
        if !self.wide.is_empty() {
            self.wide.clear();
        }
        self.heads.push(Head {
            measure,
            timestamp,
            tags_end: self.tags.len(),
            fields_end: self.fields.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The `i`-th point. Panics if `i >= len()`, like slice indexing.
    pub fn get(&self, i: usize) -> PointRef<'_, 'a> {
        let h = &self.heads[i];
        let (t0, f0) = match i.checked_sub(1) {
            Some(j) => (self.heads[j].tags_end, self.heads[j].fields_end),
            None => (0, 0),
        };
        PointRef {
            measure: &h.measure,
            tags: &self.tags[t0..h.tags_end],
            fields: &self.fields[f0..h.fields_end],
            timestamp: h.timestamp,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = PointRef<'_, 'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Sort every point's tags by key in place, as series keys and the WAL want them.
    /// Returns the measure and key of the first duplicate tag key found, if any.
    pub fn sort_tags(&mut self) -> Option<(String, String)> {
        let mut start = 0;
        for h in &self.heads {
            let tags = &mut self.tags[start..h.tags_end];
            start = h.tags_end;
            // Clients mostly send a fixed order: check before sorting.
            if !tags.windows(2).all(|w| w[0].0 < w[1].0) {
                tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Some((h.measure.to_string(), w[0].0.to_string()));
                }
            }
        }
        None
    }
}

/// [`PointBatch::pending_keys`]'s bit for a field key.
fn key_bit(key: &str) -> u64 {
    let last = key.as_bytes().last().copied().unwrap_or(0) as usize;
    1 << ((key.len().wrapping_mul(7) ^ last) % 64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pt(m: &str, tags: &[(&str, &str)], fields: &[(&str, FieldValue)], ts: i64) -> Point {
        Point {
            measure: m.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            timestamp: ts,
        }
    }

    #[test]
    fn round_trips_points_and_slices_them_apart() {
        let pts = vec![
            pt("a", &[("x", "1")], &[("f", FieldValue::F64(1.0))], 1),
            pt("b", &[], &[("s", FieldValue::Str("hi".into()))], 2),
            pt(
                "c",
                &[("y", "2"), ("z", "3")],
                &[("i", FieldValue::I64(3)), ("b", FieldValue::Bool(true))],
                3,
            ),
        ];
        let b = PointBatch::from_points(&pts);
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(1).tags.len(), 0);
        assert_eq!(b.get(2).fields.len(), 2);
        assert_eq!(b.to_points(), pts);
    }

    #[test]
    fn sorts_tags_and_reports_duplicates() {
        let pts = vec![
            pt(
                "a",
                &[("z", "1"), ("a", "2"), ("m", "3")],
                &[("f", FieldValue::F64(1.0))],
                1,
            ),
            pt(
                "b",
                &[("k", "1"), ("j", "2")],
                &[("f", FieldValue::F64(1.0))],
                2,
            ),
        ];
        let mut b = PointBatch::from_points(&pts);
        assert_eq!(b.sort_tags(), None);
        let keys: Vec<&str> = b.get(0).tags.iter().map(|(k, _)| &**k).collect();
        assert_eq!(keys, ["a", "m", "z"]);
        assert_eq!(b.get(0).tags[0].1, "2");
        assert_eq!(b.get(1).tags[0].0, "j");
        let dup = vec![pt("d", &[("k", "1"), ("a", "0"), ("k", "2")], &[], 1)];
        assert_eq!(
            PointBatch::from_points(&dup).sort_tags(),
            Some(("d".to_string(), "k".to_string()))
        );
    }

    #[test]
    fn repeated_field_keeps_the_last_value_within_one_point_only() {
        let mut b = PointBatch::default();
        b.push_field("x".into(), FieldRef::F64(1.0));
        b.finish_point("m".into(), 1);
        b.push_field("x".into(), FieldRef::F64(2.0));
        b.push_field("x".into(), FieldRef::F64(3.0));
        b.finish_point("m".into(), 2);
        assert_eq!(b.get(0).fields, &[("x".into(), FieldRef::F64(1.0))]);
        assert_eq!(b.get(1).fields, &[("x".into(), FieldRef::F64(3.0))]);
    }

    #[test]
    fn wide_points_find_repeats_through_the_map_and_the_next_point_starts_clean() {
        let mut b = PointBatch::default();
        let n = 3 * WIDE as i64;
        for i in 0..n {
            b.push_field(format!("f{i}").into(), FieldRef::I64(i));
        }
        // Repeats of early and late keys replace in place.
        b.push_field("f0".into(), FieldRef::I64(-1));
        b.push_field(format!("f{}", n - 1).into(), FieldRef::I64(-2));
        b.finish_point("m".into(), 1);
        for i in 0..WIDE as i64 + 1 {
            b.push_field(format!("f{i}").into(), FieldRef::I64(100 + i));
        }
        b.push_field("f0".into(), FieldRef::I64(7));
        b.finish_point("m".into(), 2);
        let p = b.get(0);
        assert_eq!(p.fields.len(), n as usize);
        assert_eq!(p.fields[0].1, FieldRef::I64(-1));
        assert_eq!(p.fields[n as usize - 1].1, FieldRef::I64(-2));
        let q = b.get(1);
        assert_eq!(q.fields.len(), WIDE + 1);
        assert_eq!(q.fields[0].1, FieldRef::I64(7));
        assert_eq!(q.fields[WIDE].1, FieldRef::I64(100 + WIDE as i64));
    }

    #[test]
    fn keys_sharing_a_filter_bit_stay_distinct_and_repeats_still_replace() {
        // Same length and last byte: the same bit, so the slow path decides.
        assert_eq!(key_bit("ab"), key_bit("cb"));
        let mut b = PointBatch::default();
        for (k, v) in [("ab", 1), ("cb", 2), ("ab", 3), ("xyz", 4), ("cb", 5)] {
            b.push_field(k.into(), FieldRef::I64(v));
        }
        b.finish_point("m".into(), 1);
        b.push_field("ab".into(), FieldRef::I64(6));
        b.finish_point("m".into(), 2);
        let got: Vec<(&str, FieldRef<'_>)> = b
            .get(0)
            .fields
            .iter()
            .map(|(k, v)| (&**k, v.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("ab", FieldRef::I64(3)),
                ("cb", FieldRef::I64(5)),
                ("xyz", FieldRef::I64(4))
            ]
        );
        assert_eq!(b.get(1).fields, &[("ab".into(), FieldRef::I64(6))]);
    }
}
