//! Snapshot manifests (`snapshots/<id>`): what a backup holds and where each byte of it lives.
//! A manifest is written last; its presence is what makes a backup exist. Readers never trust
//! one: [`Manifest::validate`] rejects paths that could escape a directory and sizes that do
//! not add up before restore writes anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_engine::backup_api::CatalogExport;

use crate::error::{Error, Result};
use crate::format::{FRAME_SIZE, HEADER_LEN};

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Full,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Part,
    Wal,
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// BLAKE3 of the file, hex.
    pub digest: String,
    pub kind: FileKind,
    /// Object id (hex) under `data/`.
    pub object: String,
    /// Size of the stored object.
    pub stored_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    pub group: String,
    pub segment: i64,
    pub shard: u32,
    pub part_id: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub series: u64,
    pub measures: Vec<String>,
    /// Part directory, relative, `/`-separated.
    pub dir: String,
    /// What the part holds per measure (series, points, time range, digest of its series keys
    /// and block layout), read from its series table at backup time; what `strata drill`
    /// checks a restored part against. Optional field, added after v1: empty in older
    /// manifests (a drill then checks the part's totals above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<MeasureStats>,
}

/// One measure's share of a part ([`PartEntry::content`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureStats {
    pub measure: String,
    pub series: u64,
    pub points: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    /// BLAKE3 (hex) of the measure's series keys and block layout in the part.
    pub digest: String,
}

impl From<strata_engine::backup_api::MeasureContent> for MeasureStats {
    fn from(c: strata_engine::backup_api::MeasureContent) -> MeasureStats {
        MeasureStats {
            measure: c.measure,
            series: c.series,
            points: c.points,
            min_ts: c.min_ts,
            max_ts: c.max_ts,
            digest: c.digest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalEntry {
    pub path: String,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStats {
    pub files: u64,
    pub bytes: u64,
    /// Objects this backup uploaded (the rest were already in the repository).
    pub new_objects: u64,
    /// Plaintext bytes of those objects.
    pub new_bytes: u64,
    /// Stored (compressed, sealed) bytes uploaded.
    pub uploaded_bytes: u64,
    pub reused_objects: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub id: String,
    /// Recorded time of the cut, ns since the epoch (retention and ordering use this).
    pub time: i64,
    /// When the backup finished, ns since the epoch.
    pub finished: i64,
    pub node_id: String,
    pub engine_format: u32,
    pub kind: BackupKind,
    pub parent: Option<String>,
    pub lsn: u64,
    /// The repository's own, versioned form of the catalog (a v1 manifest's bare catalog
    /// reads as version 1).
    pub catalog: CatalogExport,
    pub parts: Vec<PartEntry>,
    pub wal: Vec<WalEntry>,
    pub files: Vec<FileEntry>,
    pub labels: BTreeMap<String, String>,
    pub stats: BackupStats,
    /// The groups this backup was restricted to (`backup --group`, a schedule's groups);
    /// absent: every group of the catalog. Optional field, added after v1 (old readers
    /// ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The schedule of `strata server` that made this backup; absent for manual backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// A relative path that stays inside its base: no root, no `..`, no `.`, nothing empty.
pub fn safe_rel_path(p: &str) -> Option<PathBuf> {
    is_safe_rel_path(p).then(|| PathBuf::from(p))
}

/// [`safe_rel_path`] without building the path (a manifest of 1,000 parts checks ~4,000).
/// Every `/`-separated segment is non-empty, not `.` or `..`, and free of NUL and `\\`, so
/// on Unix each is one `Component::Normal` and the path stays below its root.
pub fn is_safe_rel_path(p: &str) -> bool {
    !p.is_empty()
        && !p.bytes().any(|b| b == 0 || b == b'\\')
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Which bytes are hex digits: bit 0 lowercase digits (`0-9a-f`), bit 1 any case.
const HEX_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_digit() || matches!(b, b'a'..=b'f') {
            t[i] = 0b11;
        } else if matches!(b, b'A'..=b'F') {
            t[i] = 0b10;
        }
        i += 1;
    }
    t
};

/// Whether every byte of `s` has `class` in [`HEX_CLASS`]: one table load per byte, no branch
/// (a manifest of 1,000 parts checks ~8,000 strings of 64 digits on every backup, twice).
fn all_hex(s: &str, class: u8) -> bool {
    s.bytes().fold(class, |acc, b| acc & HEX_CLASS[b as usize]) == class
}

/// An object id: 64 lowercase hex digits.
fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && all_hex(s, 0b01)
}

/// A file digest: 64 hex digits of either case.
fn is_hex_digest(s: &str) -> bool {
    s.len() == 64 && all_hex(s, 0b10)
}

/// Lowercase hex of a 32-byte id or digest (what [`is_hex_id`] accepts).
pub fn hex32(b: &[u8; 32]) -> String {
    let mut out = vec![0u8; 64];
    // Neither can fail (the output is twice the input, and hex is ASCII); `hex::encode` is the
    // same string, built a char at a time.
    match hex::encode_to_slice(b, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| hex::encode(b)),
        Err(_) => hex::encode(b),
    }
}

/// The largest stored size an object of `size` plaintext bytes can have.
pub fn max_stored_size(size: u64) -> u64 {
    let frames = size.div_ceil(FRAME_SIZE as u64).max(1);
    HEADER_LEN as u64 + size + frames * (4 + 2 + 16)
}

impl Manifest {
    fn hostile(&self, detail: impl Into<String>) -> Error {
        Error::HostileManifest {
            snapshot: self.id.clone(),
            detail: detail.into(),
        }
    }

    /// Structural checks every reader runs before acting on a manifest.
    pub fn validate(&self, expected_id: &str) -> Result<()> {
        if self.version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion {
                name: format!("snapshots/{expected_id}"),
                found: self.version,
                supported: MANIFEST_VERSION,
            });
        }
        if !self.catalog.is_supported() {
            return Err(Error::UnsupportedVersion {
                name: format!("snapshots/{expected_id} (catalog)"),
                found: self.catalog.version,
                supported: strata_engine::backup_api::CATALOG_EXPORT_VERSION,
            });
        }
        if self.id != expected_id {
            return Err(self.hostile(format!("claims id {} under {expected_id}", self.id)));
        }
        // FxHash: a manifest of 1,000 parts checks ~20,000 paths here on every backup.
        let mut seen = rustc_hash::FxHashSet::default();
        seen.reserve(self.files.len());
        let mut total = 0u64;
        for f in &self.files {
            if !is_safe_rel_path(&f.path) {
                return Err(self.hostile(format!("unsafe file path {:?}", f.path)));
            }
            if !seen.insert(f.path.as_str()) {
                return Err(self.hostile(format!("file {:?} listed twice", f.path)));
            }
            if !is_hex_id(&f.object) || !is_hex_digest(&f.digest) {
                return Err(self.hostile(format!("file {:?} has a malformed id", f.path)));
            }
            // The smallest object is a header and one empty frame; a plaintext can only grow
            // so much over its stored form when frames are raw, and no frame decompresses to
            // more than FRAME_SIZE.
            let frames_stored = f.stored_size / 22 + 1;
            if f.stored_size < (HEADER_LEN + 4 + 2 + 16) as u64
                || f.stored_size > max_stored_size(f.size)
                || f.size > frames_stored.saturating_mul(FRAME_SIZE as u64)
            {
                return Err(self.hostile(format!(
                    "file {:?}: size {} does not fit its stored size {}",
                    f.path, f.size, f.stored_size
                )));
            }
            total = total.saturating_add(f.size);
        }
        for (dir, what) in self
            .parts
            .iter()
            .map(|p| (&p.dir, "part"))
            .chain(self.wal.iter().map(|w| (&w.path, "WAL")))
        {
            if !is_safe_rel_path(dir) {
                return Err(self.hostile(format!("unsafe {what} path {dir:?}")));
            }
        }
        // Directories and files must not collide (a file `a` and a file `a/b`).
        for f in &self.files {
            let mut p = f.path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if seen.contains(parent) {
                    return Err(self.hostile(format!("{parent:?} is both a file and a directory")));
                }
                p = parent;
            }
        }
        if let Some(groups) = &self.groups
            && let Some(p) = self.parts.iter().find(|p| !groups.contains(&p.group))
        {
            return Err(self.hostile(format!(
                "part of group {:?} in a backup of groups {groups:?}",
                p.group
            )));
        }
        if total != self.stats.bytes {
            return Err(self.hostile(format!(
                "file sizes add up to {total}, the manifest claims {}",
                self.stats.bytes
            )));
        }
        Ok(())
    }

    /// Groups and measures whose data lives in `path`, for damage reports.
    pub fn affected_by(&self, path: &str) -> String {
        for p in &self.parts {
            if path.starts_with(&format!("{}/", p.dir)) {
                return format!(
                    "group '{}' measures [{}] (part {} of segment {}, shard {})",
                    p.group,
                    p.measures.join(", "),
                    p.part_id,
                    p.segment,
                    p.shard
                );
            }
        }
        if self.wal.iter().any(|w| w.path == path) {
            let groups: Vec<&str> = self
                .catalog
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .collect();
            return format!(
                "the WAL (unflushed writes of groups [{}])",
                groups.join(", ")
            );
        }
        "metadata (the whole snapshot)".to_string()
    }

    pub fn recorded_time(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.time)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Component, Path};

    pub fn sample() -> Manifest {
        Manifest {
            version: 1,
            id: "s1".into(),
            time: 0,
            finished: 0,
            node_id: "n".into(),
            engine_format: 1,
            kind: BackupKind::Full,
            parent: None,
            lsn: 9,
            catalog: CatalogExport::default(),
            parts: vec![],
            wal: vec![],
            files: vec![FileEntry {
                path: "parts/a/data".into(),
                size: 10,
                digest: "0".repeat(64),
                kind: FileKind::Part,
                object: "a".repeat(64),
                stored_size: 70,
            }],
            labels: BTreeMap::new(),
            stats: BackupStats {
                bytes: 10,
                ..Default::default()
            },
            groups: None,
            schedule: None,
        }
    }

    /// A manifest exactly as Strata v1 wrote it: its `catalog` is the engine's bare
    /// `model::Catalog` (no `version`). It must keep reading, as catalog export version 1.
    #[test]
    fn reads_a_v1_manifest_with_its_bare_catalog() {
        let v1 = format!(
            r#"{{"version":1,"id":"s1","time":0,"finished":0,"node_id":"n","engine_format":1,"kind":"full","parent":null,"lsn":9,"catalog":{{"groups":[{{"name":"metrics","settings":{{"ttl_ns":2592000000000000,"segment_interval_ns":86400000000000,"shards":2,"backup_tier":"warm"}},"measures":[{{"name":"cpu","fields":[["v","f64"]]}}]}}]}},"parts":[],"wal":[],"files":[{{"path":"parts/a/data","size":10,"digest":"{}","kind":"part","object":"{}","stored_size":70}}],"labels":{{}},"stats":{{"files":1,"bytes":10,"new_objects":1,"new_bytes":10,"uploaded_bytes":70,"reused_objects":0}}}}"#,
            "0".repeat(64),
            "a".repeat(64)
        );
        let m: Manifest = serde_json::from_str(&v1).unwrap();
        m.validate("s1").unwrap();
        assert_eq!(m.catalog.version, 1);
        let c = m.catalog.to_catalog().unwrap();
        assert_eq!(c.groups[0].name, "metrics");
        assert_eq!(c.groups[0].measures[0].name, "cpu");
        // Written back, it carries the catalog's version.
        let again = serde_json::to_string(&m).unwrap();
        assert!(
            again.contains(r#""catalog":{"version":1,"groups""#),
            "{again}"
        );
        let mut newer = m.clone();
        newer.catalog.version = 2;
        assert!(matches!(
            newer.validate("s1"),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
    }

    /// The fast check agrees with the definition by path components on every string of up
    /// to six characters over an alphabet of the characters that matter.
    #[test]
    fn fast_path_check_matches_the_component_definition() {
        fn by_components(p: &str) -> bool {
            if p.is_empty() || p.contains('\0') || p.contains('\\') || p.ends_with('/') {
                return false;
            }
            p.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && matches!(Path::new(seg).components().next(),
                        Some(Component::Normal(s)) if s == seg)
            })
        }
        let alphabet = ['a', '.', '/', '\\', '\0'];
        let mut words = vec![String::new()];
        for _ in 0..6 {
            let next: Vec<String> = words
                .iter()
                .filter(|w| w.len() < 6)
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(next);
            words.sort();
            words.dedup();
        }
        assert!(words.len() > 19_000);
        for w in &words {
            assert_eq!(is_safe_rel_path(w), by_components(w), "{w:?}");
        }
    }

    /// The table-driven checks agree with the byte predicates on every byte, and `hex32`
    /// with `hex::encode`.
    #[test]
    fn hex_checks_match_the_byte_predicates() {
        for b in 0..=255u8 {
            let id = format!("{}{}", "0".repeat(63), b as char);
            let lower = b.is_ascii_hexdigit() && !b.is_ascii_uppercase();
            if b.is_ascii() {
                assert_eq!(is_hex_id(&id), lower, "{b}");
                assert_eq!(is_hex_digest(&id), b.is_ascii_hexdigit(), "{b}");
            }
        }
        assert!(!is_hex_id(&"a".repeat(63)));
        assert!(!is_hex_digest(&"a".repeat(65)));
        assert!(!is_hex_id("é".repeat(32).as_str()));
        let d: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        assert_eq!(hex32(&d), hex::encode(d));
        assert!(is_hex_id(&hex32(&d)));
    }

    #[test]
    fn accepts_a_sane_manifest() {
        sample().validate("s1").unwrap();
    }

    #[test]
    fn rejects_escapes_and_lies() {
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a/./b",
            "",
            "a\\..\\b",
            "a/",
        ] {
            let mut m = sample();
            m.files[0].path = bad.into();
            assert!(m.validate("s1").is_err(), "{bad:?} accepted");
        }
        let mut m = sample();
        m.files[0].size = 1 << 40;
        m.stats.bytes = 1 << 40;
        assert!(m.validate("s1").is_err(), "huge size accepted");
        let mut m = sample();
        m.stats.bytes = 11;
        assert!(m.validate("s1").is_err());
        let mut m = sample();
        m.files[0].stored_size = 1 << 30;
        assert!(m.validate("s1").is_err());
        assert!(sample().validate("s2").is_err());
        let mut m = sample();
        let mut dup = m.files[0].clone();
        dup.path = "parts/a".into();
        m.files.push(dup);
        m.stats.bytes = 20;
        assert!(m.validate("s1").is_err(), "file/dir collision accepted");
    }
}
