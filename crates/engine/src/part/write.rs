//! Building a part: series in (measure, tags) order, split into blocks of at most
//! [`BLOCK_ROWS`] rows that end at an hour boundary once they hold [`ALIGNED_MIN_ROWS`] rows
//! (see [`block_ends`]), each column chunk CRC-framed in `data.bin`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::codec;
use crate::error::{Error, Result};
use crate::format::{ByteWriter, frame, fsync_dir};
use crate::memtable::SeriesMeta;
use crate::record::{TYPE_BOOL, TYPE_F64, TYPE_I64, TYPE_STR};
use crate::rows::Rows;
use crate::scan::Column;
use crate::vfs::{Vfs, VfsFile};

use super::chunked::TableWriter;
use super::summary::FieldSummary;
use super::{
    BLOCK_ROWS, DATA_FILE, DATA_MAGIC, DATA_VERSION, INDEX_FILE, INDEX_MAGIC, META_FILE,
    META_FRAME_VERSION, META_MAGIC, MetaFile, PartMeta, VERSION,
};

/// Identity of the part being written.
#[derive(Debug, Clone)]
pub struct PartIdentity {
    pub part_id: u64,
    pub group: String,
    pub segment: i64,
    pub shard: u32,
    pub min_lsn: u64,
    pub max_lsn: u64,
}

pub struct PartWriter<'v> {
    vfs: &'v dyn Vfs,
    dir: PathBuf,
    id: PartIdentity,
    data: BufWriter<Box<dyn VfsFile>>,
    hasher: blake3::Hasher,
    offset: u64,
    /// The block list of the series being added.
    index: ByteWriter,
    /// The series table (keys, chunks of block lists).
    table: TableWriter,
    series: u64,
    rows: u64,
    blocks: u64,
    min_ts: i64,
    max_ts: i64,
    measures: Vec<String>,
    last: Option<SeriesMeta>,
    chunk: Vec<u8>,
}

impl<'v> PartWriter<'v> {
    /// Start a part in `dir` (created; must not exist).
    pub fn create(vfs: &'v dyn Vfs, dir: &Path, id: PartIdentity) -> Result<PartWriter<'v>> {
        vfs.create_dir(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(DATA_FILE);
        let f = vfs.create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = PartWriter {
            vfs,
            dir: dir.to_path_buf(),
            id,
            data: BufWriter::with_capacity(1 << 20, f),
            hasher: blake3::Hasher::new(),
            offset: 0,
            index: ByteWriter::new(),
            table: TableWriter::default(),
            series: 0,
            rows: 0,
            blocks: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            measures: Vec::new(),
            last: None,
            chunk: Vec::new(),
        };
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(DATA_MAGIC);
        header.extend_from_slice(&DATA_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        w.put(&header)?;
        Ok(w)
    }

    /// Block lists in chunks of `n` bytes instead of [`super::chunked::CHUNK_BYTES`] (tests).
    #[cfg(test)]
    pub(super) fn with_chunk_bytes(mut self, n: usize) -> Self {
        self.table = TableWriter::new(n);
        self
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.data
            .write_all(b)
            .map_err(|e| Error::io(self.dir.join(DATA_FILE), e))?;
        self.hasher.update(b);
        self.offset += b.len() as u64;
        Ok(())
    }

    /// Write the chunk in `self.chunk` and record its reference in the index.
    fn flush_chunk(&mut self) -> Result<()> {
        let body = std::mem::take(&mut self.chunk);
        let off = self.offset;
        self.put(&crc32c::crc32c(&body).to_le_bytes())?;
        self.put(&body)?;
        self.index.uvarint(off);
        self.index.uvarint(body.len() as u64 + 4);
        self.chunk = body;
        self.chunk.clear();
        Ok(())
    }

    /// Add a series. Series must come in strictly increasing (measure, tags) order; `rows` must
    /// be resolved (sorted, one row per timestamp). Empty rows are skipped.
    pub fn add_series(&mut self, meta: &SeriesMeta, rows: &Rows) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.last.as_ref().is_some_and(|l| l >= meta) {
            return Err(Error::InvalidInput("part series out of order".into()));
        }
        if self.measures.last() != Some(&meta.measure) {
            self.measures.push(meta.measure.clone());
        }
        self.series += 1;
        self.index.buf.clear();
        let ends = block_ends(&rows.ts);
        self.index.uvarint(ends.len() as u64);
        let mut a = 0;
        for &e in &ends {
            let block = if ends.len() == 1 {
                std::borrow::Cow::Borrowed(rows)
            } else {
                std::borrow::Cow::Owned(rows.slice(a, e))
            };
            self.add_block(&block)?;
            a = e;
        }
        self.table
            .add(meta, &self.index.buf)
            .map_err(|e| Error::io(self.dir.join(INDEX_FILE), e))?;
        self.last = Some(meta.clone());
        Ok(())
    }

    fn add_block(&mut self, rows: &Rows) -> Result<()> {
        let n = rows.len();
        let (lo, hi) = (rows.ts[0], rows.ts[n - 1]);
        self.min_ts = self.min_ts.min(lo);
        self.max_ts = self.max_ts.max(hi);
        self.rows += n as u64;
        self.blocks += 1;
        self.index.uvarint(n as u64);
        self.index.i64(lo);
        self.index.i64(hi);
        codec::encode_timestamps(&rows.ts, &mut self.chunk);
        self.flush_chunk()?;
        self.index.uvarint(rows.cols.len() as u64);
        for (name, col) in &rows.cols {
            self.index.str(name);
            let (ty, present) = presence(col);
            self.index.u8(ty);
            let count = present.iter().filter(|&&p| p).count();
            self.index.uvarint(count as u64);
            if count < n {
                codec::encode_bool(&present, &mut self.chunk);
                self.flush_chunk()?;
            }
            if count > 0 {
                encode_values(col, &mut self.chunk);
                self.flush_chunk()?;
                let summary = match col {
                    Column::F64(v) => FieldSummary::of_f64(&rows.ts, v),
                    Column::I64(v) => FieldSummary::of_i64(&rows.ts, v),
                    _ => None,
                };
                if let Some(s) = summary {
                    s.encode(lo, &mut self.index);
                }
            }
        }
        Ok(())
    }

    /// Write `index.bin` and `meta.bin`, fsync everything. Returns the metadata.
    pub fn finish(mut self) -> Result<PartMeta> {
        let data_path = self.dir.join(DATA_FILE);
        self.data.flush().map_err(|e| Error::io(&data_path, e))?;
        self.data
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&data_path, e))?;
        let table = std::mem::take(&mut self.table)
            .finish()
            .map_err(|e| Error::io(self.dir.join(INDEX_FILE), e))?;
        let index_bytes = frame(INDEX_MAGIC, VERSION, &table);
        crate::format::write_new(self.vfs, &self.dir.join(INDEX_FILE), &index_bytes)?;
        let meta = PartMeta {
            format_version: VERSION,
            part_id: self.id.part_id,
            group: self.id.group.clone(),
            segment: self.id.segment,
            shard: self.id.shard,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            rows: self.rows,
            series: self.series,
            blocks: self.blocks,
            min_lsn: self.id.min_lsn,
            max_lsn: self.id.max_lsn,
            measures: self.measures.clone(),
            files: vec![
                MetaFile {
                    name: DATA_FILE.into(),
                    size: self.offset,
                    blake3: self.hasher.finalize().to_hex().to_string(),
                },
                MetaFile {
                    name: INDEX_FILE.into(),
                    size: index_bytes.len() as u64,
                    blake3: blake3::hash(&index_bytes).to_hex().to_string(),
                },
            ],
        };
        let json = serde_json::to_vec(&meta)
            .map_err(|e| Error::InvalidInput(format!("part metadata: {e}")))?;
        crate::format::write_new(
            self.vfs,
            &self.dir.join(META_FILE),
            &frame(META_MAGIC, META_FRAME_VERSION, &json),
        )?;
        fsync_dir(self.vfs, &self.dir)?;
        Ok(meta)
    }

    pub fn is_empty(&self) -> bool {
        self.series == 0
    }
}

/// Blocks are aligned to this (one hour, from the epoch, like the query layer's buckets).
pub const BLOCK_ALIGN_NS: i64 = 3_600_000_000_000;
/// A block ends at the first [`BLOCK_ALIGN_NS`] boundary after it holds this many rows.
pub const ALIGNED_MIN_ROWS: usize = 256;

/// Where the blocks of a series with timestamps `ts` (strictly increasing) end: a block ends
/// at [`BLOCK_ROWS`] rows, or before its first point past an hour boundary once it holds at
/// least [`ALIGNED_MIN_ROWS`] rows. So a series sampled every 10 s has one block per clock
/// hour, which an aggregation in buckets of a whole number of hours takes from the block's
/// summary, and a scan of a short range decodes only the hours it touches; sparse series keep
/// blocks of at least [`ALIGNED_MIN_ROWS`] rows (small per-block overhead) that still start
/// and end on hour boundaries.
pub fn block_ends(ts: &[i64]) -> Vec<usize> {
    let hour = |t: i64| t.div_euclid(BLOCK_ALIGN_NS);
    let mut ends = Vec::with_capacity(ts.len().div_ceil(BLOCK_ROWS).max(1));
    let mut a = 0;
    while a < ts.len() {
        let limit = (a + BLOCK_ROWS).min(ts.len());
        let m = a + ALIGNED_MIN_ROWS;
        let e = if m >= limit {
            limit
        } else {
            let h = hour(ts[m - 1]);
            m + ts[m..limit].partition_point(|&t| hour(t) == h)
        };
        ends.push(e);
        a = e;
    }
    ends
}

fn presence(col: &Column) -> (u8, Vec<bool>) {
    match col {
        Column::F64(v) => (TYPE_F64, v.iter().map(Option::is_some).collect()),
        Column::I64(v) => (TYPE_I64, v.iter().map(Option::is_some).collect()),
        Column::Bool(v) => (TYPE_BOOL, v.iter().map(Option::is_some).collect()),
        Column::Str(v) => (TYPE_STR, v.iter().map(Option::is_some).collect()),
    }
}

fn encode_values(col: &Column, out: &mut Vec<u8>) {
    match col {
        Column::F64(v) => codec::encode_f64(&v.iter().flatten().copied().collect::<Vec<_>>(), out),
        Column::I64(v) => codec::encode_i64(&v.iter().flatten().copied().collect::<Vec<_>>(), out),
        Column::Bool(v) => {
            codec::encode_bool(&v.iter().flatten().copied().collect::<Vec<_>>(), out)
        }
        Column::Str(v) => codec::encode_str(&v.iter().flatten().collect::<Vec<_>>(), out),
    }
}

/// Write a whole part from series already sorted by (measure, tags). Returns `None` when there
/// was nothing to write (the directory is removed).
pub fn write_part<'a>(
    vfs: &dyn Vfs,
    dir: &Path,
    id: PartIdentity,
    series: impl IntoIterator<Item = (&'a SeriesMeta, Rows)>,
) -> Result<Option<PartMeta>> {
    let mut w = PartWriter::create(vfs, dir, id)?;
    for (m, r) in series {
        w.add_series(m, &r)?;
    }
    if w.is_empty() {
        drop(w);
        crate::format::remove_all(vfs, dir)?;
        return Ok(None);
    }
    w.finish().map(Some)
}
