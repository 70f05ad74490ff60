//! The versioned JSON form of a pinned snapshot: the body of `POST /api/v1/snapshots` (the
//! server writes it) and what `strata backup --server` reads back (normative:
//! `docs/API.md`). It is a wire type of its own, not the engine's struct, so that either side
//! can change without the other noticing only at run time: the `version` field says which
//! fields exist, and a reader refuses versions it does not know.
//!
//! Each file names the path it takes in the data directory the snapshot describes (`path`)
//! and where to read it: `local_path`, a path on the server's host (pinned part files, the
//! copied WAL cut), or `inline_hex`, the bytes themselves (small metadata).
//!
//! Version 2 ([`compact`]) lists each part file once; a server writes it when asked
//! (`?version=2`), version 1 otherwise, so that older readers keep working. [`AnyDoc`] reads
//! both.

pub mod compact;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_engine::backup_api::{
    Catalog, FileSource, PartInfo, Snapshot, SnapshotFile, SnapshotFileKind, WalSegmentInfo,
    is_safe_rel,
};

use crate::error::{Error, Result};

pub const SNAPSHOT_DOC_VERSION: u32 = 1;

pub use compact::{COMPACT_VERSION, CompactDoc};

/// A snapshot document of a version this build reads.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyDoc {
    V1(SnapshotDoc),
    V2(CompactDoc),
}

impl AnyDoc {
    /// Parses a document of version 1 or 2 (the version is read first).
    pub fn from_json(body: &[u8]) -> Result<AnyDoc> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
        match v.version {
            SNAPSHOT_DOC_VERSION => serde_json::from_slice(body).map(AnyDoc::V1),
            COMPACT_VERSION => serde_json::from_slice(body).map(AnyDoc::V2),
            n => {
                return Err(bad(format!(
                    "version {n} (this build reads {SNAPSHOT_DOC_VERSION} and {COMPACT_VERSION}); use the server's own strata binary"
                )));
            }
        }
        .map_err(|e| bad(e.to_string()))
    }

    /// The snapshot's id (to release it when the document does not check out).
    pub fn id(&self) -> &str {
        match self {
            AnyDoc::V1(d) => &d.id,
            AnyDoc::V2(d) => &d.id,
        }
    }

    pub fn into_snapshot(self) -> Result<Snapshot> {
        match self {
            AnyDoc::V1(d) => d.into_snapshot(),
            AnyDoc::V2(d) => d.into_snapshot(),
        }
    }
}

/// A 64-digit hex BLAKE3 digest.
fn parse_hex_digest(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDoc {
    pub version: u32,
    pub id: String,
    pub lsn: u64,
    /// ns since the epoch.
    pub taken_at: i64,
    /// ns since the epoch: the server drops the pin then if nobody released it.
    pub expires_at: i64,
    pub node_id: String,
    pub format_version: u32,
    pub catalog: Catalog,
    pub parts: Vec<PartInfo>,
    pub wal: Vec<WalSegmentInfo>,
    pub files: Vec<FileDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKindDoc {
    Part,
    Wal,
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDoc {
    /// Relative path in the described data directory, `/`-separated.
    pub path: PathBuf,
    pub size: u64,
    /// BLAKE3, hex.
    pub digest: String,
    pub kind: FileKindDoc,
    /// Where the file is on the server's host, while the snapshot is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<PathBuf>,
    /// The file's bytes, hex (small metadata files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_hex: Option<String>,
}

impl From<&Snapshot> for SnapshotDoc {
    fn from(s: &Snapshot) -> Self {
        SnapshotDoc {
            version: SNAPSHOT_DOC_VERSION,
            id: s.id.clone(),
            lsn: s.lsn,
            taken_at: s.taken_at,
            expires_at: s.expires_at,
            node_id: s.node_id.clone(),
            format_version: s.format_version,
            catalog: s.catalog.clone(),
            parts: s.parts.clone(),
            wal: s.wal.clone(),
            files: s.files.iter().map(FileDoc::from).collect(),
        }
    }
}

impl From<&SnapshotFile> for FileDoc {
    fn from(f: &SnapshotFile) -> Self {
        let (local_path, inline_hex) = match &f.source {
            FileSource::Path(p) => (Some(p.clone()), None),
            FileSource::Inline(b) => (None, Some(hex::encode(b))),
        };
        FileDoc {
            path: f.rel_path.clone(),
            size: f.size,
            digest: hex::encode(f.digest),
            kind: match f.kind {
                SnapshotFileKind::Part => FileKindDoc::Part,
                SnapshotFileKind::Wal => FileKindDoc::Wal,
                SnapshotFileKind::Meta => FileKindDoc::Meta,
            },
            local_path,
            inline_hex,
        }
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("the server's snapshot answer: {}", detail.into()))
}

impl SnapshotDoc {
    /// The snapshot this document describes, checked: known version, safe relative paths,
    /// well-formed digests, each file with exactly one source (inline bytes of the stated
    /// size and digest).
    pub fn into_snapshot(self) -> Result<Snapshot> {
        if self.version != SNAPSHOT_DOC_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {SNAPSHOT_DOC_VERSION}); use the server's own strata binary",
                self.version
            )));
        }
        let files = self
            .files
            .into_iter()
            .map(FileDoc::into_file)
            .collect::<Result<Vec<_>>>()?;
        Ok(Snapshot {
            id: self.id,
            lsn: self.lsn,
            taken_at: self.taken_at,
            node_id: self.node_id,
            format_version: self.format_version,
            expires_at: self.expires_at,
            catalog: self.catalog,
            parts: self.parts,
            wal: self.wal,
            files,
        })
    }
}

impl FileDoc {
    fn into_file(self) -> Result<SnapshotFile> {
        if !is_safe_rel(&self.path) {
            return Err(bad(format!("unsafe path {}", self.path.display())));
        }
        let digest = parse_hex_digest(&self.digest)
            .ok_or_else(|| bad(format!("bad digest for {}", self.path.display())))?;
        let source = match (self.local_path, self.inline_hex) {
            (Some(p), None) if p.is_absolute() => FileSource::Path(p),
            (None, Some(h)) => {
                let b = hex::decode(&h)
                    .map_err(|_| bad(format!("bad inline bytes for {}", self.path.display())))?;
                if b.len() as u64 != self.size || *blake3::hash(&b).as_bytes() != digest {
                    return Err(bad(format!(
                        "inline bytes of {} do not match their digest",
                        self.path.display()
                    )));
                }
                FileSource::Inline(b)
            }
            _ => {
                return Err(bad(format!(
                    "{} needs exactly one of an absolute local_path or inline_hex",
                    self.path.display()
                )));
            }
        };
        Ok(SnapshotFile {
            rel_path: self.path,
            size: self.size,
            digest,
            kind: match self.kind {
                FileKindDoc::Part => SnapshotFileKind::Part,
                FileKindDoc::Wal => SnapshotFileKind::Wal,
                FileKindDoc::Meta => SnapshotFileKind::Meta,
            },
            source,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let meta = b"manifest bytes".to_vec();
        Snapshot {
            id: "s1".into(),
            lsn: 9,
            taken_at: 1,
            node_id: "n".into(),
            format_version: 1,
            expires_at: 2,
            catalog: Catalog::default(),
            parts: vec![],
            wal: vec![],
            files: vec![
                SnapshotFile {
                    rel_path: "data/g/seg-0/shard-0/MANIFEST-1".into(),
                    size: meta.len() as u64,
                    digest: *blake3::hash(&meta).as_bytes(),
                    kind: SnapshotFileKind::Meta,
                    source: FileSource::Inline(meta),
                },
                SnapshotFile {
                    rel_path: "data/g/seg-0/shard-0/part-1/data.bin".into(),
                    size: 3,
                    digest: [7; 32],
                    kind: SnapshotFileKind::Part,
                    source: FileSource::Path(
                        "/srv/strata/data/g/seg-0/shard-0/part-1/data.bin".into(),
                    ),
                },
            ],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let s = snap();
        let json = serde_json::to_string(&SnapshotDoc::from(&s)).unwrap();
        let back: SnapshotDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_snapshot().unwrap(), s);
    }

    #[test]
    fn refuses_unknown_versions_unsafe_paths_and_lying_inline_bytes() {
        let mut d = SnapshotDoc::from(&snap());
        d.version = 2;
        assert!(d.into_snapshot().is_err());
        let mut d = SnapshotDoc::from(&snap());
        d.files[1].path = "../../etc/passwd".into();
        assert!(d.into_snapshot().is_err());
        let mut d = SnapshotDoc::from(&snap());
        d.files[0].inline_hex = Some(hex::encode(b"other bytes"));
        assert!(d.into_snapshot().is_err());
        let mut d = SnapshotDoc::from(&snap());
        d.files[1].local_path = Some("relative/data.bin".into());
        assert!(d.into_snapshot().is_err());
    }
}
