//! `strata verify`: structure (every object a manifest names exists with its recorded size)
//! and, with `--read-data`, content (download, decrypt, decompress and check each digest).
//! Damage is reported per object with exactly the snapshots, files, groups and measures it
//! affects.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::{Repository, object_path};
use crate::restore::parse_digest;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Affected {
    pub snapshot: String,
    pub file: String,
    /// Groups and measures (or WAL / metadata) the file holds.
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Damage {
    /// Repository key of the damaged object (`data/..`, `snapshots/..`).
    pub object: String,
    pub problem: String,
    pub affects: Vec<Affected>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots: Vec<String>,
    pub objects_checked: u64,
    pub bytes_read: u64,
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.damage.is_empty()
    }

    /// Snapshots with at least one damaged object.
    pub fn damaged_snapshots(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .damage
            .iter()
            .flat_map(|d| d.affects.iter().map(|a| a.snapshot.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        s.sort();
        s
    }
}

/// Verifies `ids` (every snapshot when `None`).
pub async fn verify(
    repo: &Repository,
    ids: Option<Vec<String>>,
    read_data: bool,
    progress: &Progress,
) -> Result<VerifyReport> {
    progress.set_phase("reading manifests");
    let mut report = VerifyReport::default();
    let mut manifests = Vec::new();
    let ids = match ids {
        Some(ids) => ids,
        None => repo.snapshot_ids().await?,
    };
    for id in ids {
        match repo.load_manifest(&id).await {
            Ok(m) => manifests.push(m),
            Err(Error::SnapshotNotFound(s)) => return Err(Error::SnapshotNotFound(s)),
            Err(e) => report.damage.push(Damage {
                object: format!("snapshots/{id}"),
                problem: e.to_string(),
                affects: vec![Affected {
                    snapshot: id.clone(),
                    file: "(manifest)".into(),
                    what: "the whole snapshot".into(),
                }],
            }),
        }
        report.snapshots.push(id);
    }
    // object id -> (size, digest, stored size, who uses it)
    let mut objects: BTreeMap<String, (u64, String, u64, Vec<Affected>)> = BTreeMap::new();
    for m in &manifests {
        for f in &m.files {
            let e = objects
                .entry(f.object.clone())
                .or_insert_with(|| (f.size, f.digest.clone(), f.stored_size, Vec::new()));
            e.3.push(Affected {
                snapshot: m.id.clone(),
                file: f.path.clone(),
                what: m.affected_by(&f.path),
            });
        }
    }
    let listed = repo.list_objects().await?;
    let total: u64 = objects.values().map(|o| o.0).sum();
    progress.start(
        if read_data {
            "reading data"
        } else {
            "checking objects"
        },
        objects.len() as u64,
        total,
    );
    for (id, (size, digest, stored, affects)) in objects {
        let problem = match listed.get(&id) {
            None => Some("object is missing".to_string()),
            Some(o) if o.size != stored => Some(format!(
                "object has {} bytes, the manifest says {stored}",
                o.size
            )),
            Some(_) if read_data => {
                let d = parse_digest(&digest)?;
                match repo.download(&id, size, &d, None, Path::new(&id)).await {
                    Ok(()) => {
                        report.bytes_read += size;
                        None
                    }
                    Err(Error::Corrupt { detail, .. }) => Some(detail),
                    Err(Error::UnsupportedVersion { found, .. }) => {
                        Some(format!("unknown object version {found}"))
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(_) => None,
        };
        report.objects_checked += 1;
        progress.file_done(size);
        if let Some(problem) = problem {
            report.damage.push(Damage {
                object: object_path(&id).to_string(),
                problem,
                affects,
            });
        }
    }
    progress.set_phase("done");
    Ok(report)
}
