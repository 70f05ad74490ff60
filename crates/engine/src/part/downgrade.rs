//! Rewriting parts in format v1 for the previous release (`restore --format-version 1`, a
//! rollback after a failed upgrade): v1 can represent everything v2 and v3 hold but the block
//! summaries, which are derived data (v3 differs from v2 only in how the table is laid out). `data.bin` is unchanged; `index.bin` is re-encoded
//! without summaries (frame version 1); `meta.bin` gets `format_version` 1 and the new
//! index's size and BLAKE3. Meant for a restore's staging directory before its swap: a crash
//! between the two files leaves a part that open refuses (versions differ), and the staging
//! directory is discarded, never served.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{ByteWriter, frame, write_atomic};
use crate::vfs::Vfs;

use super::read::{ChunkRef, SeriesEntry};
use super::{INDEX_FILE, INDEX_MAGIC, META_FILE, META_FRAME_VERSION, META_MAGIC, PartMeta};

/// Rewrite the part in `dir` as format v1; `false` when it already is.
pub fn rewrite_part_v1(vfs: &dyn Vfs, dir: &Path) -> Result<bool> {
    let mut meta = PartMeta::read(vfs, dir)?;
    if meta.format_version == 1 {
        return Ok(false);
    }
    let series = super::read::read_series_entries(vfs, dir)?;
    let body = encode_index_v1(&series);
    let index_path = dir.join(INDEX_FILE);
    let compressed = zstd::bulk::compress(&body, 1).map_err(|e| Error::io(&index_path, e))?;
    let index_bytes = frame(INDEX_MAGIC, 1, &compressed);
    write_atomic(vfs, &index_path, &index_bytes)?;
    meta.format_version = 1;
    for f in meta.files.iter_mut().filter(|f| f.name == INDEX_FILE) {
        f.size = index_bytes.len() as u64;
        f.blake3 = blake3::hash(&index_bytes).to_hex().to_string();
    }
    let json = serde_json::to_vec(&meta)
        .map_err(|e| Error::InvalidInput(format!("part metadata: {e}")))?;
    write_atomic(
        vfs,
        &dir.join(META_FILE),
        &frame(META_MAGIC, META_FRAME_VERSION, &json),
    )?;
    Ok(true)
}

/// Rewrite every part under `data_dir/data/` as format v1; returns how many were rewritten.
pub fn rewrite_parts_v1(vfs: &dyn Vfs, data_dir: &Path) -> Result<usize> {
    let mut n = 0;
    let data = data_dir.join("data");
    let mut stack = vec![(data, 0usize)];
    // data/<group>/seg-<start>/shard-<n>/<part-id>/
    while let Some((dir, depth)) = stack.pop() {
        let entries = match vfs.read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && depth == 0 => return Ok(0),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for e in entries {
            if !e.is_dir {
                continue;
            }
            let path = dir.join(&e.name);
            if depth < 3 {
                stack.push((path, depth + 1));
            } else if super::parse_part_dir_name(&e.name).is_some()
                && vfs.exists(&path.join(META_FILE))
                && rewrite_part_v1(vfs, &path)?
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn chunk_ref(w: &mut ByteWriter, c: ChunkRef) {
    w.uvarint(c.offset);
    w.uvarint(u64::from(c.len));
}

/// The v1 series table of `series` (`docs/format/part.md`).
fn encode_index_v1(series: &[SeriesEntry]) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.uvarint(series.len() as u64);
    for s in series {
        w.str(&s.meta.measure);
        w.uvarint(s.meta.tags.len() as u64);
        for (k, v) in &s.meta.tags {
            w.str(k);
            w.str(v);
        }
        w.uvarint(s.blocks.len() as u64);
        for b in &s.blocks {
            w.uvarint(u64::from(b.rows));
            w.i64(b.min_ts);
            w.i64(b.max_ts);
            chunk_ref(&mut w, b.ts);
            w.uvarint(b.fields.len() as u64);
            for f in &b.fields {
                w.str(&f.name);
                w.u8(f.ty);
                w.uvarint(u64::from(f.present));
                if let Some(c) = f.presence {
                    chunk_ref(&mut w, c);
                }
                if let Some(c) = f.values {
                    chunk_ref(&mut w, c);
                }
            }
        }
    }
    w.buf
}
