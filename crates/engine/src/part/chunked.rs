//! Part format v3's series table (`docs/format/part.md`, "`index.bin` v3"): the series keys,
//! each with the length of its block list, in one small zstd frame, and the block lists in
//! independently compressed chunks of about [`CHUNK_BYTES`]. Opening the table decompresses
//! the keys only; one series' block list costs the decompression of its chunk.
//!
//! In v1 and v2 the keys and block lists were interleaved in one zstd frame: the first query
//! after a part opened decompressed the whole table and stepped over every block list to find
//! where each series' lies (tens of thousands of entries with hour blocks), which was the
//! single-series query's p99.

use crate::format::{ByteReader, ByteWriter, ReadError};
use crate::memtable::SeriesMeta;

use super::read::series_key;

/// A chunk of block lists is closed once its uncompressed size reaches this: large enough
/// that zstd compresses chunks about as well as one frame, small enough that reading one
/// series' blocks decompresses little.
pub const CHUNK_BYTES: usize = 16 << 10;

/// zstd level of the keys and chunks (as v1 and v2 tables).
const LEVEL: i32 = 1;

/// Largest decompressed keys frame or chunk accepted (guards hostile `index.bin`).
const MAX_RAW: u64 = 4 << 30;

/// The key as v1 and v2 tables store it (measure, tags).
pub(super) fn encode_key(w: &mut ByteWriter, meta: &SeriesMeta) {
    w.str(&meta.measure);
    w.uvarint(meta.tags.len() as u64);
    for (k, v) in &meta.tags {
        w.str(k);
        w.str(v);
    }
}

/// Builds a v3 table from series added in table order with their encoded block lists.
pub(super) struct TableWriter {
    chunk_bytes: usize,
    nseries: u64,
    keys: ByteWriter,
    /// The open chunk's block lists and how many series they are.
    raw: Vec<u8>,
    raw_series: u64,
    nchunks: u64,
    dir: ByteWriter,
    frames: Vec<u8>,
}

impl Default for TableWriter {
    fn default() -> Self {
        TableWriter::new(CHUNK_BYTES)
    }
}

impl TableWriter {
    /// Chunks closed at `chunk_bytes` (tests try other sizes than [`CHUNK_BYTES`]).
    pub fn new(chunk_bytes: usize) -> Self {
        TableWriter {
            chunk_bytes,
            nseries: 0,
            keys: ByteWriter::new(),
            raw: Vec::new(),
            raw_series: 0,
            nchunks: 0,
            dir: ByteWriter::new(),
            frames: Vec::new(),
        }
    }

    pub fn add(&mut self, meta: &SeriesMeta, list: &[u8]) -> std::io::Result<()> {
        encode_key(&mut self.keys, meta);
        self.keys.uvarint(list.len() as u64);
        self.raw.extend_from_slice(list);
        self.raw_series += 1;
        self.nseries += 1;
        if self.raw.len() >= self.chunk_bytes {
            self.cut()?;
        }
        Ok(())
    }

    fn cut(&mut self) -> std::io::Result<()> {
        if self.raw_series == 0 {
            return Ok(());
        }
        let z = zstd::bulk::compress(&self.raw, LEVEL)?;
        self.dir.uvarint(self.raw_series);
        self.dir.uvarint(z.len() as u64);
        self.frames.extend_from_slice(&z);
        self.nchunks += 1;
        self.raw.clear();
        self.raw_series = 0;
        Ok(())
    }

    /// The table's bytes (the payload of `index.bin`'s frame).
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.cut()?;
        let keys = zstd::bulk::compress(&self.keys.buf, LEVEL)?;
        let mut out = ByteWriter::new();
        out.uvarint(self.nseries);
        out.uvarint(self.keys.buf.len() as u64);
        out.uvarint(keys.len() as u64);
        out.buf.extend_from_slice(&keys);
        out.uvarint(self.nchunks);
        out.buf.extend_from_slice(&self.dir.buf);
        out.buf.extend_from_slice(&self.frames);
        Ok(out.buf)
    }
}

/// Where a chunk's compressed bytes lie in the table, and its decompressed size.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkLoc {
    at: usize,
    len: usize,
    raw: usize,
}

/// Where a series' block list lies: its chunk and its span in the decompressed chunk.
#[derive(Debug, Clone, Copy)]
pub(super) struct ListLoc {
    pub chunk: u32,
    pub start: usize,
    pub end: usize,
}

/// A v3 table's keys and directory, checked: every series has a non-empty block list, the
/// chunks cover the series in order and the compressed bytes exactly.
pub(super) struct Layout {
    pub metas: Vec<SeriesMeta>,
    pub lists: Vec<ListLoc>,
    pub chunks: Vec<ChunkLoc>,
}

impl Layout {
    pub fn parse(payload: &[u8]) -> Result<Layout, ReadError> {
        let mut r = ByteReader::new(payload);
        let n = r.uvarint()?;
        let keys_raw = r.uvarint()?;
        // Each key takes at least three bytes (measure, tag count, list length).
        if keys_raw > MAX_RAW || n > keys_raw / 3 {
            return Err(ReadError("bad series keys size"));
        }
        let keys = decompress(
            r.bytes()?,
            keys_raw as usize,
            "series keys do not decompress",
        )?;
        let mut k = ByteReader::new(&keys);
        let mut metas = Vec::with_capacity(n as usize);
        let mut lens = Vec::with_capacity(n as usize);
        for _ in 0..n {
            metas.push(series_key(&mut k)?);
            let len = k.uvarint()?;
            if len == 0 || len > MAX_RAW {
                return Err(ReadError("bad block list length"));
            }
            lens.push(len);
        }
        if !k.is_empty() {
            return Err(ReadError("trailing bytes in series keys"));
        }
        let nchunks = r.count()?;
        let mut chunks = Vec::with_capacity(nchunks);
        let mut lists = Vec::with_capacity(n as usize);
        let mut at = 0usize;
        for c in 0..nchunks {
            let series = r.uvarint()?;
            let len = r.uvarint()?;
            if series == 0 || series > n - lists.len() as u64 || len > payload.len() as u64 {
                return Err(ReadError("bad chunk directory"));
            }
            let mut raw = 0u64;
            for _ in 0..series {
                let l = lens[lists.len()];
                lists.push(ListLoc {
                    chunk: c as u32,
                    start: raw as usize,
                    end: (raw + l) as usize,
                });
                raw += l;
                if raw > MAX_RAW {
                    return Err(ReadError("bad chunk size"));
                }
            }
            chunks.push(ChunkLoc {
                at,
                len: len as usize,
                raw: raw as usize,
            });
            at += len as usize;
        }
        if lists.len() as u64 != n {
            return Err(ReadError("chunk directory does not cover the series"));
        }
        let base = payload.len() - r.remaining();
        if at != r.remaining() {
            return Err(ReadError("chunk sizes do not match the table"));
        }
        for c in &mut chunks {
            c.at += base;
        }
        Ok(Layout {
            metas,
            lists,
            chunks,
        })
    }
}

/// Chunk `c` of `payload`, decompressed (exactly its directory's size).
pub(super) fn chunk(payload: &[u8], c: &ChunkLoc) -> Result<Vec<u8>, ReadError> {
    decompress(
        &payload[c.at..c.at + c.len],
        c.raw,
        "block list chunk does not decompress",
    )
}

fn decompress(z: &[u8], raw: usize, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let out = zstd::bulk::decompress(z, raw).map_err(|_| ReadError(what))?;
    if out.len() != raw {
        return Err(ReadError("decompressed size does not match the table"));
    }
    Ok(out)
}
