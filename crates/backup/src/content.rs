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

/// Content per part id.
pub type Contents = FxHashMap<u64, Vec<MeasureStats>>;

/// The content of the parts of `snap` that work remains for.
pub type Computing = tokio::task::JoinHandle<Result<Vec<(u64, Vec<MeasureStats>)>>>;

/// The content of every part of `snap`, in two halves: what the parent already records
/// (returned at once) and the new parts' series tables, read on a blocking thread meanwhile (a
/// full backup of a gigabyte reads hundreds of tables: the backup uploads while they are
/// read). Parts whose files are not readable where the snapshot is are left out: their
/// entries record no content.
pub fn start(snap: &Snapshot, parent: Option<&Manifest>) -> (Contents, Computing) {
    let mut out = Contents::default();
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
    let computing = tokio::task::spawn_blocking(move || {
        todo.into_iter()
            .map(|(id, dir)| {
                backup_api::part_content(&dir)
                    .map(|c| (id, c.into_iter().map(MeasureStats::from).collect()))
                    .map_err(Error::from)
            })
            .collect::<Result<Vec<(u64, Vec<MeasureStats>)>>>()
    });
    (out, computing)
}
