//! The per-measure content a manifest records for each part ([`PartEntry::content`]):
//! computed from the part's series table for the parts the parent snapshot did not have, and
//! carried over from the parent for the others (parts are immutable and their ids never
//! reused), so a backup with nothing new reads nothing more.
//!
//! [`PartEntry::content`]: crate::manifest::PartEntry::content

use rustc_hash::FxHashMap;

use strata_engine::backup_api::{self, Snapshot};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, MeasureStats};

/// Per part id: the content of every part of `snap` (parts whose files are not readable where
/// the snapshot is are left out: their entries record no content).
pub async fn part_contents(
    snap: &Snapshot,
    parent: Option<&Manifest>,
) -> Result<FxHashMap<u64, Vec<MeasureStats>>> {
    let mut out: FxHashMap<u64, Vec<MeasureStats>> = FxHashMap::default();
    out.reserve(snap.parts.len());
    let known: FxHashMap<(&str, u64), &Vec<MeasureStats>> = parent
        .map(|m| {
            m.parts
                .iter()
                .filter(|p| !p.content.is_empty())
                .map(|p| ((p.group.as_str(), p.part_id), &p.content))
                .collect()
        })
        .unwrap_or_default();
    let mut todo = Vec::new();
    for p in &snap.parts {
        match known.get(&(p.group.as_str(), p.part_id)) {
            Some(c) => {
                out.insert(p.part_id, (*c).clone());
            }
            None => {
                if let Some(dir) = backup_api::part_source_dir(snap, p) {
                    todo.push((p.part_id, dir));
                }
            }
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let computed = tokio::task::spawn_blocking(move || {
        todo.into_iter()
            .map(|(id, dir)| {
                backup_api::part_content(&dir)
                    .map(|c| (id, c.into_iter().map(MeasureStats::from).collect()))
            })
            .collect::<std::result::Result<Vec<(u64, Vec<MeasureStats>)>, _>>()
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    out.extend(computed);
    Ok(out)
}
