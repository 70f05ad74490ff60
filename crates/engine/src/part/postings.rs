//! The series index of a part: tag → series postings, built from the part's own series table
//! when the part is opened (derived data: nothing to persist, restore or repair; reopening or
//! [`crate::Engine::rebuild_index`] rebuilds it from the parts alone).
//!
//! Matchers resolve to bitmaps of series positions: equality and set membership are a lookup
//! and a union; negations are the measure's series minus those; a regex runs once per distinct
//! value of the tag, not once per series. A series without a tag has the empty value.

use std::collections::HashMap;

use roaring::RoaringBitmap;

#[cfg(test)]
use super::read::SeriesEntry;
use crate::memtable::SeriesMeta;
use crate::scan::TagMatcher;

#[derive(Debug, Default)]
struct MeasurePostings {
    all: RoaringBitmap,
    /// tag key → tag value → series positions.
    tags: HashMap<String, HashMap<String, RoaringBitmap>>,
}

#[derive(Debug, Default)]
pub struct Postings {
    measures: HashMap<String, MeasurePostings>,
}

impl Postings {
    #[cfg(test)]
    pub fn build(series: &[SeriesEntry]) -> Postings {
        Self::build_from(series.iter().map(|s| &*s.meta))
    }

    /// Postings of a table's series keys, in table order.
    pub fn build_from<'a>(series: impl Iterator<Item = &'a SeriesMeta>) -> Postings {
        let mut p = Postings::default();
        for (i, s) in series.enumerate() {
            let m = p.measures.entry(s.measure.clone()).or_default();
            let i = i as u32;
            m.all.insert(i);
            for (k, v) in &s.tags {
                m.tags
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .insert(i);
            }
        }
        p
    }

    /// Positions of the series of `measure` matching every matcher.
    pub fn select(&self, measure: &str, matchers: &[TagMatcher]) -> RoaringBitmap {
        let Some(m) = self.measures.get(measure) else {
            return RoaringBitmap::new();
        };
        // Positive matchers narrow first (no copy of the whole measure); negations subtract.
        let mut acc: Option<RoaringBitmap> = None;
        let mut negated = Vec::new();
        for matcher in matchers {
            let (set, negate) = match matcher {
                TagMatcher::Eq(k, v) => (m.exact(k, std::slice::from_ref(v)), false),
                TagMatcher::NotEq(k, v) => (m.exact(k, std::slice::from_ref(v)), true),
                TagMatcher::In(k, vs) => (m.exact(k, vs), false),
                TagMatcher::NotIn(k, vs) => (m.exact(k, vs), true),
                TagMatcher::Regex(k, re) => (m.values(k, |x| re.is_match(x)), false),
                TagMatcher::NotRegex(k, re) => (m.values(k, |x| re.is_match(x)), true),
            };
            if negate {
                negated.push(set);
                continue;
            }
            let next = match acc {
                None => set,
                Some(a) => a & set,
            };
            if next.is_empty() {
                return next;
            }
            acc = Some(next);
        }
        let mut acc = acc.unwrap_or_else(|| m.all.clone());
        for n in negated {
            acc -= n;
        }
        acc
    }
}

impl MeasurePostings {
    /// Series whose value of tag `k` (empty when absent) is one of `vals`: direct lookups.
    fn exact(&self, k: &str, vals: &[String]) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let tag = self.tags.get(k);
        for v in vals {
            if v.is_empty() {
                let mut absent = self.all.clone();
                for set in tag.into_iter().flat_map(|t| t.values()) {
                    absent -= set;
                }
                out |= absent;
            } else if let Some(set) = tag.and_then(|t| t.get(v)) {
                out |= set;
            }
        }
        out
    }

    /// Series whose value of tag `k` (empty when absent) satisfies `pred`.
    fn values(&self, k: &str, pred: impl Fn(&str) -> bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some(vals) = self.tags.get(k) else {
            return if pred("") { self.all.clone() } else { out };
        };
        for (v, set) in vals {
            if pred(v) {
                out |= set;
            }
        }
        if pred("") {
            let mut absent = self.all.clone();
            for set in vals.values() {
                absent -= set;
            }
            out |= absent;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memtable::SeriesMeta;

    fn entry(measure: &str, tags: &[(&str, &str)]) -> SeriesEntry {
        SeriesEntry {
            meta: Arc::new(SeriesMeta {
                measure: measure.into(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            blocks: Vec::new(),
        }
    }

    fn sel(p: &Postings, m: Vec<TagMatcher>) -> Vec<u32> {
        p.select("cpu", &m).iter().collect()
    }

    #[test]
    fn matchers_resolve_through_postings() {
        let series = vec![
            entry("cpu", &[("dc", "eu"), ("host", "a")]),
            entry("cpu", &[("host", "b")]),
            entry("cpu", &[("dc", "us"), ("host", "c")]),
            entry("mem", &[("host", "a")]),
        ];
        let p = Postings::build(&series);
        let eq = |k: &str, v: &str| TagMatcher::Eq(k.into(), v.into());
        assert_eq!(sel(&p, vec![]), vec![0, 1, 2]);
        assert_eq!(sel(&p, vec![eq("host", "a")]), vec![0]);
        assert_eq!(sel(&p, vec![eq("dc", "")]), vec![1]);
        assert_eq!(
            sel(&p, vec![TagMatcher::NotEq("dc".into(), "eu".into())]),
            vec![1, 2]
        );
        assert_eq!(
            sel(
                &p,
                vec![TagMatcher::In("host".into(), vec!["a".into(), "c".into()])]
            ),
            vec![0, 2]
        );
        assert_eq!(
            sel(&p, vec![TagMatcher::NotIn("dc".into(), vec!["".into()])]),
            vec![0, 2]
        );
        let re = regex::Regex::new("^(eu|)$").unwrap();
        assert_eq!(
            sel(&p, vec![TagMatcher::Regex("dc".into(), re.clone())]),
            vec![0, 1]
        );
        assert_eq!(
            sel(&p, vec![TagMatcher::NotRegex("dc".into(), re)]),
            vec![2]
        );
        assert_eq!(
            sel(&p, vec![eq("host", "a"), eq("dc", "us")]),
            Vec::<u32>::new()
        );
        assert_eq!(sel(&p, vec![eq("nokey", "")]), vec![0, 1, 2]);
        assert!(p.select("disk", &[]).is_empty());
    }

    /// `cargo test -p strata-engine --release -- --ignored million_series`
    #[test]
    #[ignore = "large: one million series"]
    fn million_series() {
        let series: Vec<SeriesEntry> = (0..1_000_000)
            .map(|i| {
                let host = format!("host_{i}");
                let rack = format!("{}", i % 100);
                entry("cpu", &[("host", &host), ("rack", &rack)])
            })
            .collect();
        let t = std::time::Instant::now();
        let p = Postings::build(&series);
        let built = t.elapsed();
        let t = std::time::Instant::now();
        let one = sel(&p, vec![TagMatcher::Eq("host".into(), "host_777".into())]);
        let rack = p.select(
            "cpu",
            &[
                TagMatcher::Eq("rack".into(), "7".into()),
                TagMatcher::NotEq("host".into(), "host_7".into()),
            ],
        );
        println!("build {built:?}, two selects {:?}", t.elapsed());
        assert_eq!(one, vec![777]);
        assert_eq!(rack.len(), 9_999);
    }
}
