//! Immutable columnar parts (normative: `docs/format/part.md`).
//!
//! A part is a directory `<part-id:016x>/` of three files:
//! - `data.bin`: 16-byte header, then column chunks, each `u32 crc32c(body) | body`;
//! - `index.bin`: framed table of series and their blocks (chunk offsets): since v3 the keys in
//!   one zstd frame, the block lists in independently compressed chunks;
//! - `meta.bin`: framed JSON with the part's identity, ranges and the file table (size and
//!   BLAKE3 of every other file). Written last: a part without a valid `meta.bin` is incomplete.

mod chunked;
mod downgrade;
mod exact_sum;
mod postings;
mod read;
pub mod summary;
mod table;
mod write;

pub use downgrade::{rewrite_part_v1, rewrite_parts_v1};
pub use postings::Postings;

pub use read::{BlockRef, PartIndex, PartReader, read_series_table, verify_part_files};
pub use table::{SeriesTable, check_table_payload};
pub use write::{PartIdentity, PartWriter, write_part};

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const DATA_MAGIC: &[u8; 8] = b"STRATPDT";
pub const INDEX_MAGIC: &[u8; 8] = b"STRATPIX";
pub const META_MAGIC: &[u8; 8] = b"STRATPMT";
/// Part format version written (`meta.bin` `format_version`, `index.bin` frame version):
/// 2 adds per-block field summaries to the series table; 3 stores the series keys apart from
/// the block lists, which lie in independently compressed chunks. Versions 1 and 2 are still
/// read.
pub const VERSION: u32 = 3;
/// `data.bin`'s header version: unchanged since part format v1.
pub const DATA_VERSION: u32 = 1;
/// `meta.bin`'s frame version (its JSON carries `format_version`).
pub const META_FRAME_VERSION: u32 = 1;
pub const DATA_HEADER_LEN: u64 = 16;
/// Rows per block: bounds decode work and memory per read.
pub const BLOCK_ROWS: usize = 8192;

pub const DATA_FILE: &str = "data.bin";
pub const INDEX_FILE: &str = "index.bin";
pub const META_FILE: &str = "meta.bin";

pub fn part_dir_name(id: u64) -> String {
    format!("{id:016x}")
}

pub fn parse_part_dir_name(name: &str) -> Option<u64> {
    (name.len() == 16)
        .then(|| u64::from_str_radix(name, 16).ok())
        .flatten()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub name: String,
    pub size: u64,
    /// BLAKE3 of the whole file, hex.
    pub blake3: String,
}

/// Contents of `meta.bin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub format_version: u32,
    pub part_id: u64,
    pub group: String,
    pub segment: i64,
    pub shard: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub series: u64,
    pub blocks: u64,
    /// LSN range of the writes this part holds (parts of one shard never overlap in LSN).
    pub min_lsn: u64,
    pub max_lsn: u64,
    pub measures: Vec<String>,
    pub files: Vec<MetaFile>,
}

impl PartMeta {
    pub fn read(vfs: &dyn crate::vfs::Vfs, dir: &Path) -> Result<PartMeta> {
        Self::read_with_digest(vfs, dir).map(|(m, _)| m)
    }

    /// [`PartMeta::read`], also returning the size and BLAKE3 of `meta.bin` itself (what a
    /// snapshot lists for it, so listing a pinned part never reads a file).
    pub fn read_with_digest(
        vfs: &dyn crate::vfs::Vfs,
        dir: &Path,
    ) -> Result<(PartMeta, MetaFileDigest)> {
        let path = dir.join(META_FILE);
        let bytes = vfs.read(&path).map_err(|e| Error::io(&path, e))?;
        let payload = crate::format::unframe(&path, META_MAGIC, META_FRAME_VERSION, &bytes)?;
        let meta: PartMeta = serde_json::from_slice(payload)
            .map_err(|e| Error::corrupt(&path, format!("bad part metadata: {e}")))?;
        if meta.format_version == 0 || meta.format_version > VERSION {
            return Err(Error::UnsupportedVersion {
                path,
                found: meta.format_version,
                supported: VERSION,
            });
        }
        let digest = MetaFileDigest {
            size: bytes.len() as u64,
            digest: *blake3::hash(&bytes).as_bytes(),
        };
        Ok((meta, digest))
    }

    pub fn data_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn to_info(&self, rel_dir: std::path::PathBuf) -> crate::snapshot::PartInfo {
        crate::snapshot::PartInfo {
            group: self.group.clone(),
            segment: self.segment,
            shard: self.shard,
            part_id: self.part_id,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            rows: self.rows,
            series: self.series,
            measures: self.measures.clone(),
            rel_dir,
            files: self
                .files
                .iter()
                .map(|f| crate::snapshot::FileInfo {
                    name: f.name.clone(),
                    size: f.size,
                    digest: parse_digest(&f.blake3).unwrap_or([0; 32]),
                })
                .collect(),
        }
    }
}

/// Size and BLAKE3 of a part's `meta.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFileDigest {
    pub size: u64,
    pub digest: [u8; 32],
}

pub fn parse_digest(hex_str: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
