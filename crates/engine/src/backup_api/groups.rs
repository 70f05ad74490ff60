//! Snapshots restricted to some groups (`strata backup --group G…`, scheduled backups of a
//! tier): the data directory the restricted snapshot describes holds exactly those groups.
//!
//! [`restrict_snapshot`] is pure: it reads the snapshot's files where they are and returns
//! the smaller snapshot, sharing its pins (releasing the original's id releases it):
//! - the catalog (in the snapshot and in its `CHECKPOINT`) keeps only the chosen groups;
//! - parts and shard manifests of other groups (everything under `data/<other>/`) are left out;
//! - each WAL segment of the cut is re-read and keeps the frames of the chosen groups (writes,
//!   group settings, group deletes); every other frame becomes an empty write to a chosen
//!   group at the same LSN, so the log stays gap-free (`strata check` and the restore's check
//!   call a gap damage) and carries nothing of the other groups. The result is held in memory
//!   ([`FileSource::Inline`]): a snapshot flushes first, so its WAL is the little written
//!   during the snapshot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::batch::PointBatch;
use crate::error::{Error, Result};
use crate::format::unframe;
use crate::meta_files::{self, CHECKPOINT_FILE, CHECKPOINT_MAGIC, Checkpoint};
use crate::record::{self, Record};
use crate::snapshot::{FileSource, Snapshot, SnapshotFile, SnapshotFileKind};
use crate::wal;

/// The group a file of the data directory belongs to (`data/<group>/…`), if any.
fn group_of(rel: &Path) -> Option<&str> {
    let mut c = rel.components();
    match c.next()?.as_os_str().to_str()? {
        "data" => c.next()?.as_os_str().to_str(),
        _ => None,
    }
}

fn read_source(f: &SnapshotFile) -> Result<Vec<u8>> {
    match &f.source {
        FileSource::Path(p) => std::fs::read(p).map_err(|e| Error::io(p, e)),
        FileSource::Inline(b) => Ok(b.clone()),
    }
}

fn inline(rel_path: PathBuf, kind: SnapshotFileKind, bytes: Vec<u8>) -> SnapshotFile {
    SnapshotFile {
        rel_path,
        size: bytes.len() as u64,
        digest: *blake3::hash(&bytes).as_bytes(),
        kind,
        source: FileSource::Inline(bytes),
    }
}

/// One WAL segment with the frames of other groups emptied (same header, same LSNs), and
/// its LSN range; `None` when it holds no frame.
fn restrict_wal(
    f: &SnapshotFile,
    groups: &BTreeSet<String>,
) -> Result<Option<(Vec<u8>, u64, u64)>> {
    let bytes = read_source(f)?;
    let label = f.rel_path.clone();
    if bytes.len() < wal::HEADER_LEN {
        return Err(Error::corrupt(&label, "WAL copy shorter than its header"));
    }
    let mut out = bytes[..wal::HEADER_LEN].to_vec();
    // The stand-in for another group's frame: a write of no point to a chosen group.
    let mut empty = Vec::new();
    if let Some(g) = groups.iter().next() {
        record::encode_write(g, &PointBatch::from_points(&[]), &mut empty);
    }
    let mut lsns: Option<(u64, u64)> = None;
    wal::scan_segment(&label, &bytes, false, 0, &mut |fr| {
        let rec = record::decode(fr.kind, fr.payload)
            .map_err(|e| Error::corrupt(&label, format!("WAL record {}: {e}", fr.lsn)))?;
        let group = match &rec {
            Record::Write { group, .. } => group,
            Record::PutGroup { name, .. } | Record::DeleteGroup { name } => name,
        };
        let (kind, payload) = if groups.contains(group) {
            (fr.kind, fr.payload)
        } else {
            (record::KIND_WRITE, empty.as_slice())
        };
        // The frame keeps its segment's version (the header is copied): v2 frames carry
        // their commit time, v1 frames have none.
        match fr.commit_time_ns {
            Some(t) => wal::encode_frame(fr.lsn, kind, t, payload, &mut out),
            None => wal::encode_frame_v1(fr.lsn, kind, payload, &mut out),
        }
        lsns = Some((lsns.map_or(fr.lsn, |l| l.0), fr.lsn));
        Ok(())
    })?;
    Ok(lsns.map(|(a, b)| (out, a, b)))
}

fn restrict_checkpoint(f: &SnapshotFile, groups: &BTreeSet<String>) -> Result<SnapshotFile> {
    let bytes = read_source(f)?;
    let payload = unframe(&f.rel_path, CHECKPOINT_MAGIC, meta_files::VERSION, &bytes)?;
    let mut c: Checkpoint = serde_json::from_slice(payload)
        .map_err(|e| Error::corrupt(&f.rel_path, format!("bad CHECKPOINT: {e}")))?;
    c.catalog.groups.retain(|g| groups.contains(&g.name));
    Ok(inline(
        f.rel_path.clone(),
        SnapshotFileKind::Meta,
        meta_files::encode_checkpoint(&c)?,
    ))
}

/// The snapshot restricted to `groups` (each must exist in it; at least one). The result
/// keeps the original's id: release that id once, when done with both.
pub fn restrict_snapshot(snap: &Snapshot, groups: &BTreeSet<String>) -> Result<Snapshot> {
    if groups.is_empty() {
        return Err(Error::InvalidInput("no group selected".into()));
    }
    let known: BTreeSet<&str> = snap
        .catalog
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    if let Some(g) = groups.iter().find(|g| !known.contains(g.as_str())) {
        let names: Vec<&str> = known.into_iter().collect();
        return Err(Error::InvalidInput(format!(
            "group '{g}' does not exist (groups: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let mut out = snap.clone();
    out.catalog.groups.retain(|g| groups.contains(&g.name));
    out.parts.retain(|p| groups.contains(&p.group));
    out.wal.clear();
    out.files.clear();
    for f in &snap.files {
        if let Some(g) = group_of(&f.rel_path) {
            if groups.contains(g) {
                out.files.push(f.clone());
            }
            continue;
        }
        match f.kind {
            SnapshotFileKind::Wal => {
                let Some(w) = snap.wal.iter().find(|w| w.rel_path == f.rel_path) else {
                    return Err(Error::InvalidInput(format!(
                        "snapshot lists WAL file {} without its LSN range",
                        f.rel_path.display()
                    )));
                };
                if let Some((bytes, first, last)) = restrict_wal(f, groups)? {
                    let mut w = w.clone();
                    w.first_lsn = first;
                    w.last_lsn = last;
                    w.size = bytes.len() as u64;
                    out.wal.push(w);
                    out.files
                        .push(inline(f.rel_path.clone(), SnapshotFileKind::Wal, bytes));
                }
            }
            _ if f.rel_path == Path::new(CHECKPOINT_FILE) => {
                out.files.push(restrict_checkpoint(f, groups)?);
            }
            _ => out.files.push(f.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_of_reads_the_data_tree_only() {
        assert_eq!(group_of(Path::new("data/hot/seg-0/shard-0/x")), Some("hot"));
        assert_eq!(group_of(Path::new("wal/0001.wal")), None);
        assert_eq!(group_of(Path::new("CHECKPOINT")), None);
    }
}
