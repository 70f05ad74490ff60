//! `strata diff A B` and `strata show`: what changed between two snapshots, per group and
//! measure, and a summary of one. A part with several measures counts under each of them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::manifest::{Manifest, PartEntry};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Change {
    pub parts_added: u64,
    pub bytes_added: u64,
    pub parts_removed: u64,
    pub bytes_removed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub from: String,
    pub to: String,
    /// Keyed by "group/measure".
    pub by_measure: BTreeMap<String, Change>,
    pub total: Change,
    /// Bytes the second snapshot holds that the first does not (objects not shared).
    pub new_object_bytes: u64,
}

/// Bytes of each part: the files under its directory.
fn part_bytes(m: &Manifest) -> HashMap<(String, u64), u64> {
    let mut out = HashMap::new();
    for p in &m.parts {
        let prefix = format!("{}/", p.dir);
        let bytes = m
            .files
            .iter()
            .filter(|f| f.path.starts_with(&prefix))
            .map(|f| f.size)
            .sum();
        out.insert((p.group.clone(), p.part_id), bytes);
    }
    out
}

fn keys(p: &PartEntry) -> Vec<String> {
    if p.measures.is_empty() {
        return vec![format!("{}/(none)", p.group)];
    }
    p.measures
        .iter()
        .map(|m| format!("{}/{}", p.group, m))
        .collect()
}

pub fn diff(a: &Manifest, b: &Manifest) -> Diff {
    let (ba, bb) = (part_bytes(a), part_bytes(b));
    let ids_a: HashSet<(String, u64)> = ba.keys().cloned().collect();
    let ids_b: HashSet<(String, u64)> = bb.keys().cloned().collect();
    let mut by_measure: BTreeMap<String, Change> = BTreeMap::new();
    let mut total = Change::default();
    for p in &b.parts {
        let k = (p.group.clone(), p.part_id);
        if ids_a.contains(&k) {
            continue;
        }
        let bytes = bb.get(&k).copied().unwrap_or(0);
        total.parts_added += 1;
        total.bytes_added += bytes;
        for key in keys(p) {
            let c = by_measure.entry(key).or_default();
            c.parts_added += 1;
            c.bytes_added += bytes;
        }
    }
    for p in &a.parts {
        let k = (p.group.clone(), p.part_id);
        if ids_b.contains(&k) {
            continue;
        }
        let bytes = ba.get(&k).copied().unwrap_or(0);
        total.parts_removed += 1;
        total.bytes_removed += bytes;
        for key in keys(p) {
            let c = by_measure.entry(key).or_default();
            c.parts_removed += 1;
            c.bytes_removed += bytes;
        }
    }
    let objs_a: HashSet<&str> = a.files.iter().map(|f| f.object.as_str()).collect();
    let mut seen = HashSet::new();
    let new_object_bytes = b
        .files
        .iter()
        .filter(|f| !objs_a.contains(f.object.as_str()) && seen.insert(f.object.as_str()))
        .map(|f| f.size)
        .sum();
    Diff {
        from: a.id.clone(),
        to: b.id.clone(),
        by_measure,
        total,
        new_object_bytes,
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupSummary {
    pub parts: u64,
    pub rows: u64,
    pub bytes: u64,
    pub measures: Vec<String>,
}

/// Per-group parts, rows and bytes of a snapshot.
pub fn summarize(m: &Manifest) -> BTreeMap<String, GroupSummary> {
    let bytes = part_bytes(m);
    let mut out: BTreeMap<String, GroupSummary> = BTreeMap::new();
    for g in &m.catalog.groups {
        let e = out.entry(g.name.clone()).or_default();
        e.measures = g.measures.iter().map(|x| x.name.clone()).collect();
    }
    for p in &m.parts {
        let e = out.entry(p.group.clone()).or_default();
        e.parts += 1;
        e.rows += p.rows;
        e.bytes += bytes
            .get(&(p.group.clone(), p.part_id))
            .copied()
            .unwrap_or(0);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;
    use crate::manifest::{FileEntry, FileKind};

    fn with_parts(parts: &[(u64, &[&str], u64)]) -> Manifest {
        let mut m = sample();
        m.files.clear();
        m.parts.clear();
        for (id, measures, size) in parts {
            let dir = format!("g/p{id}");
            m.parts.push(PartEntry {
                group: "g".into(),
                segment: 0,
                shard: 0,
                part_id: *id,
                min_ts: 0,
                max_ts: 1,
                rows: 10,
                series: 1,
                measures: measures.iter().map(|s| s.to_string()).collect(),
                dir: dir.clone(),
                content: Vec::new(),
            });
            m.files.push(FileEntry {
                path: format!("{dir}/data"),
                size: *size,
                digest: "0".repeat(64),
                kind: FileKind::Part,
                object: format!("{id:064}"),
                stored_size: 70,
            });
        }
        m
    }

    #[test]
    fn added_and_removed_per_measure() {
        let a = with_parts(&[(1, &["cpu"], 100), (2, &["mem"], 50)]);
        let b = with_parts(&[(2, &["mem"], 50), (3, &["cpu", "mem"], 30)]);
        let d = diff(&a, &b);
        assert_eq!(d.total.parts_added, 1);
        assert_eq!(d.total.bytes_added, 30);
        assert_eq!(d.total.parts_removed, 1);
        assert_eq!(d.total.bytes_removed, 100);
        assert_eq!(d.by_measure["g/cpu"].bytes_removed, 100);
        assert_eq!(d.by_measure["g/cpu"].bytes_added, 30);
        assert_eq!(d.by_measure["g/mem"].parts_added, 1);
        assert_eq!(d.new_object_bytes, 30);
        assert_eq!(summarize(&b)["g"].bytes, 80);
    }
}
