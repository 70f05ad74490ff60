//! Version 2 of the snapshot document, the compact form `strata backup --server` asks for
//! (`POST /api/v1/snapshots?version=2`; normative: `docs/API.md`).
//!
//! Version 1 lists every file of every part twice (once in its part, once in `files` with an
//! absolute `local_path`) and writes each part file's digest as an array of 32 numbers: about
//! 2 MB of JSON for 1,000 parts, written by the server and parsed by the CLI on every backup,
//! even when nothing is new. Version 2 lists a part's files once, in the part, with hex
//! digests, and reads them under one `root`: a part file is at `root/rel_dir/name`. `files`
//! keeps only what no part describes (metadata inline, the WAL cut). The order of the files
//! in the snapshot is not significant.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_engine::backup_api::{
    Catalog, FileInfo, FileSource, PartInfo, Snapshot, SnapshotFile, SnapshotFileKind,
    WalSegmentInfo, is_safe_rel,
};

use super::{FileDoc, bad, parse_hex_digest};
use crate::error::Result;

pub const COMPACT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactDoc {
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
    /// Absolute directory the parts' files are read under (`root/rel_dir/name`); absent when
    /// the snapshot has no parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    pub parts: Vec<PartDoc>,
    pub wal: Vec<WalSegmentInfo>,
    /// The files no part describes, as in version 1.
    pub files: Vec<FileDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDoc {
    pub group: String,
    pub segment: i64,
    pub shard: u32,
    pub part_id: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub series: u64,
    pub measures: Vec<String>,
    /// Part directory relative to the described data directory, `/`-separated.
    pub rel_dir: PathBuf,
    /// The part's data files (kind `part`).
    pub files: Vec<NamedFile>,
    /// Its metadata files (kind `meta`, e.g. `meta.bin`), read from the same directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<NamedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFile {
    pub name: String,
    pub size: u64,
    /// BLAKE3, hex.
    pub digest: String,
}

impl NamedFile {
    fn of(name: &str, size: u64, digest: &[u8; 32]) -> Self {
        NamedFile {
            name: name.to_string(),
            size,
            digest: crate::manifest::hex32(digest),
        }
    }
}

/// Where `f` is read from when it is `root/rel_path` on the server's host.
fn under_root(f: &SnapshotFile) -> Option<&Path> {
    match &f.source {
        FileSource::Path(p) => {
            let mut root = p.as_path();
            for _ in f.rel_path.components() {
                root = root.parent()?;
            }
            (root.join(&f.rel_path) == *p).then_some(root)
        }
        FileSource::Inline(_) => None,
    }
}

impl CompactDoc {
    /// The compact form of `s`, or `None` when some part file is not read from
    /// `root/rel_dir/name` under one root (the server then answers with version 1).
    pub fn of(s: &Snapshot) -> Option<CompactDoc> {
        let root = s
            .files
            .iter()
            .find(|f| f.kind == SnapshotFileKind::Part)
            .map(|f| under_root(f).map(Path::to_path_buf))
            .unwrap_or(None);
        if root.is_none() && !s.parts.is_empty() {
            return None;
        }
        let by_path: HashMap<&Path, usize> = s
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.rel_path.as_path(), i))
            .collect();
        let mut by_dir: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (i, f) in s.files.iter().enumerate() {
            if f.kind == SnapshotFileKind::Meta
                && let Some(d) = f.rel_path.parent()
            {
                by_dir.entry(d).or_default().push(i);
            }
        }
        let mut covered = vec![false; s.files.len()];
        let mut parts = Vec::with_capacity(s.parts.len());
        for p in &s.parts {
            let root = root.as_deref()?;
            let src = root.join(&p.rel_dir);
            for fi in &p.files {
                let i = *by_path.get(p.rel_dir.join(&fi.name).as_path())?;
                let f = &s.files[i];
                let fits = f.kind == SnapshotFileKind::Part
                    && f.size == fi.size
                    && f.digest == fi.digest
                    && f.source == FileSource::Path(src.join(&fi.name));
                if !fits || covered[i] {
                    return None;
                }
                covered[i] = true;
            }
            let mut meta = Vec::new();
            for &i in by_dir.get(p.rel_dir.as_path()).into_iter().flatten() {
                let f = &s.files[i];
                let name = f.rel_path.file_name()?.to_str()?;
                if !covered[i] && f.source == FileSource::Path(src.join(name)) {
                    covered[i] = true;
                    meta.push(NamedFile::of(name, f.size, &f.digest));
                }
            }
            parts.push(PartDoc {
                group: p.group.clone(),
                segment: p.segment,
                shard: p.shard,
                part_id: p.part_id,
                min_ts: p.min_ts,
                max_ts: p.max_ts,
                rows: p.rows,
                series: p.series,
                measures: p.measures.clone(),
                rel_dir: p.rel_dir.clone(),
                files: p
                    .files
                    .iter()
                    .map(|f| NamedFile::of(&f.name, f.size, &f.digest))
                    .collect(),
                meta,
            });
        }
        let mut files = Vec::new();
        for (f, done) in s.files.iter().zip(&covered) {
            if !done {
                if f.kind == SnapshotFileKind::Part {
                    return None;
                }
                files.push(FileDoc::from(f));
            }
        }
        Some(CompactDoc {
            version: COMPACT_VERSION,
            id: s.id.clone(),
            lsn: s.lsn,
            taken_at: s.taken_at,
            expires_at: s.expires_at,
            node_id: s.node_id.clone(),
            format_version: s.format_version,
            catalog: s.catalog.clone(),
            root,
            parts,
            wal: s.wal.clone(),
            files,
        })
    }

    /// The snapshot this document describes, checked as version 1 is (known version, safe
    /// paths, well-formed digests, inline bytes that match), plus: an absolute `root`, file
    /// names of one plain component.
    pub fn into_snapshot(self) -> Result<Snapshot> {
        if self.version != COMPACT_VERSION {
            return Err(bad(format!(
                "version {} read as version {COMPACT_VERSION}",
                self.version
            )));
        }
        let root = match self.root {
            Some(r) if r.is_absolute() => Some(r),
            Some(r) => return Err(bad(format!("root {} is not absolute", r.display()))),
            None if self.parts.is_empty() => None,
            None => return Err(bad("parts without a root")),
        };
        let mut files = self
            .files
            .into_iter()
            .map(FileDoc::into_file)
            .collect::<Result<Vec<_>>>()?;
        let mut parts = Vec::with_capacity(self.parts.len());
        for p in self.parts {
            if !is_safe_rel(&p.rel_dir) {
                return Err(bad(format!(
                    "unsafe part directory {}",
                    p.rel_dir.display()
                )));
            }
            let src = root
                .as_deref()
                .map(|r| r.join(&p.rel_dir))
                .unwrap_or_default();
            let mut infos = Vec::with_capacity(p.files.len());
            for (nf, kind) in p
                .files
                .into_iter()
                .map(|f| (f, SnapshotFileKind::Part))
                .chain(p.meta.into_iter().map(|f| (f, SnapshotFileKind::Meta)))
            {
                let rel_path = p.rel_dir.join(plain_name(&nf.name)?);
                let digest = parse_hex_digest(&nf.digest)
                    .ok_or_else(|| bad(format!("bad digest for {}", rel_path.display())))?;
                if kind == SnapshotFileKind::Part {
                    infos.push(FileInfo {
                        name: nf.name.clone(),
                        size: nf.size,
                        digest,
                    });
                }
                files.push(SnapshotFile {
                    source: FileSource::Path(src.join(&nf.name)),
                    rel_path,
                    size: nf.size,
                    digest,
                    kind,
                });
            }
            parts.push(PartInfo {
                group: p.group,
                segment: p.segment,
                shard: p.shard,
                part_id: p.part_id,
                min_ts: p.min_ts,
                max_ts: p.max_ts,
                rows: p.rows,
                series: p.series,
                measures: p.measures,
                rel_dir: p.rel_dir,
                files: infos,
            });
        }
        Ok(Snapshot {
            id: self.id,
            lsn: self.lsn,
            taken_at: self.taken_at,
            node_id: self.node_id,
            format_version: self.format_version,
            expires_at: self.expires_at,
            catalog: self.catalog,
            parts,
            wal: self.wal,
            files,
        })
    }
}

/// A file name of exactly one normal component (no `/`, `.` or `..`).
fn plain_name(name: &str) -> Result<&str> {
    let mut c = Path::new(name).components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(name),
        _ => Err(bad(format!("bad file name {name:?} in a part"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let root = PathBuf::from("/srv/strata/data");
        let meta = b"manifest bytes".to_vec();
        let rel_dir = PathBuf::from("data/g/seg-0/shard-0/0000000000000001");
        let part_file = |name: &str, size: u64, d: u8, kind| SnapshotFile {
            rel_path: rel_dir.join(name),
            size,
            digest: [d; 32],
            kind,
            source: FileSource::Path(root.join(&rel_dir).join(name)),
        };
        Snapshot {
            id: "s1".into(),
            lsn: 9,
            taken_at: 1,
            node_id: "n".into(),
            format_version: 1,
            expires_at: 2,
            catalog: Catalog::default(),
            parts: vec![PartInfo {
                group: "g".into(),
                segment: 0,
                shard: 0,
                part_id: 1,
                min_ts: 5,
                max_ts: 6,
                rows: 2,
                series: 1,
                measures: vec!["m".into()],
                rel_dir: rel_dir.clone(),
                files: vec![
                    FileInfo {
                        name: "data.bin".into(),
                        size: 3,
                        digest: [7; 32],
                    },
                    FileInfo {
                        name: "index.bin".into(),
                        size: 4,
                        digest: [8; 32],
                    },
                ],
            }],
            wal: vec![],
            files: vec![
                SnapshotFile {
                    rel_path: "data/g/seg-0/shard-0/MANIFEST-1".into(),
                    size: meta.len() as u64,
                    digest: *blake3::hash(&meta).as_bytes(),
                    kind: SnapshotFileKind::Meta,
                    source: FileSource::Inline(meta),
                },
                part_file("data.bin", 3, 7, SnapshotFileKind::Part),
                part_file("index.bin", 4, 8, SnapshotFileKind::Part),
                part_file("meta.bin", 5, 9, SnapshotFileKind::Meta),
            ],
        }
    }

    fn sorted(mut s: Snapshot) -> Snapshot {
        s.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        s
    }

    #[test]
    fn round_trips_through_json_with_each_part_file_once() {
        let s = snap();
        let doc = CompactDoc::of(&s).unwrap();
        assert_eq!(
            doc.files.len(),
            1,
            "only the inline manifest stays in files"
        );
        assert_eq!(doc.parts[0].meta.len(), 1);
        let json = serde_json::to_string(&doc).unwrap();
        assert!(!json.contains("local_path"), "{json}");
        let back: CompactDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(sorted(back.into_snapshot().unwrap()), sorted(s));
    }

    #[test]
    fn a_part_file_read_from_elsewhere_keeps_version_1() {
        let mut s = snap();
        s.files[1].source = FileSource::Path("/elsewhere/data.bin".into());
        assert!(CompactDoc::of(&s).is_none());
        let mut s = snap();
        s.files[2].digest = [0; 32];
        assert!(CompactDoc::of(&s).is_none());
    }

    #[test]
    fn refuses_relative_roots_unsafe_names_and_bad_digests() {
        let doc = CompactDoc::of(&snap()).unwrap();
        let mut d = doc.clone();
        d.root = Some("relative".into());
        assert!(d.into_snapshot().is_err());
        let mut d = doc.clone();
        d.root = None;
        assert!(d.into_snapshot().is_err());
        for name in ["../x", "a/b", "", ".", ".."] {
            let mut d = doc.clone();
            d.parts[0].files[0].name = name.into();
            assert!(d.into_snapshot().is_err(), "{name:?}");
        }
        let mut d = doc.clone();
        d.parts[0].rel_dir = "../../etc".into();
        assert!(d.into_snapshot().is_err());
        let mut d = doc.clone();
        d.parts[0].meta[0].digest = "zz".into();
        assert!(d.into_snapshot().is_err());
        let mut d = doc;
        d.version = 3;
        assert!(d.into_snapshot().is_err());
    }
}
