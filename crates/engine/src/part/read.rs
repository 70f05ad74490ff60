//! Reading a part: metadata is loaded at open, and so is the series table's frame (magic,
//! version, CRC checked; the payload kept compressed, ~1 % of the part); the table itself is
//! decompressed and parsed on first use (a scan) and kept, or parsed without being kept
//! (merges, checks). Column chunks are read on demand with
//! `pread`, their CRC checked before decoding.
//!
//! Loading every table at open made the engine's memory grow with the data: opening a data dir
//! of 10x the headline benchmark took 64 MB where 1x took 21 MB, and a restore (which opens
//! the staged copy) 73 -> 132 MiB. Now a restore or `strata check` holds one table at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::codec;
use crate::error::{Error, Result};
use crate::format::{ByteReader, ReadError, unframe};
use crate::memtable::SeriesMeta;
use crate::record::{TYPE_BOOL, TYPE_F64, TYPE_I64, TYPE_STR};
use crate::rows::Rows;
use crate::scan::Column;
use crate::vfs::{Vfs, VfsFile};

use super::summary::{FieldSummary, summarized};
use super::{
    DATA_FILE, DATA_HEADER_LEN, DATA_MAGIC, DATA_VERSION, INDEX_FILE, INDEX_MAGIC, PartMeta,
    VERSION,
};

/// Largest decompressed series table accepted (guards hostile `index.bin`).
pub(super) const MAX_INDEX_BYTES: usize = 4 << 30;

#[derive(Debug, Clone, Copy)]
pub struct ChunkRef {
    pub offset: u64,
    pub len: u32,
}

#[derive(Debug, Clone)]
pub struct FieldRef {
    pub name: Arc<str>,
    pub ty: u8,
    pub present: u32,
    pub presence: Option<ChunkRef>,
    pub values: Option<ChunkRef>,
    /// Part format v2, numeric fields with values: what aggregations over the whole block
    /// need without decoding it.
    pub summary: Option<FieldSummary>,
}

#[derive(Debug, Clone)]
pub struct BlockRef {
    pub rows: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub ts: ChunkRef,
    pub fields: Vec<FieldRef>,
}

#[derive(Debug, Clone)]
pub struct SeriesEntry {
    pub meta: Arc<SeriesMeta>,
    pub blocks: Vec<BlockRef>,
}

/// A part's whole series table, parsed at once (merges, checks, backups).
pub struct PartIndex {
    /// Sorted by (measure, tags).
    pub series: Vec<SeriesEntry>,
}

impl PartIndex {
    /// Indices of the series of `measure` (contiguous, since the table is sorted).
    #[cfg(test)]
    pub fn measure_range(&self, measure: &str) -> std::ops::Range<usize> {
        let a = self
            .series
            .partition_point(|s| s.meta.measure.as_str() < measure);
        let b = self
            .series
            .partition_point(|s| s.meta.measure.as_str() <= measure);
        a..b
    }
}

/// An open part.
pub struct PartReader {
    pub dir: PathBuf,
    pub meta: PartMeta,
    /// Size and digest of `meta.bin` (listed by snapshots without reading the file).
    pub meta_file: super::MetaFileDigest,
    /// The series table once a scan needed it (block lists parsed per series on demand).
    index: OnceLock<Arc<super::table::SeriesTable>>,
    /// `index.bin`'s checked, still compressed payload (about 1 % of the part's size): the
    /// table is parsed from it, never from the file, because a merge may delete the file while
    /// a reader of an older version still needs the table (a 500 on a query found by
    /// strata-chaos when the table was read from the file on first use).
    /// Shared with the table of a v3 part, which decompresses its chunks from it.
    index_compressed: Arc<[u8]>,
    /// The part format version (1: no block summaries).
    version: u32,
    data: Box<dyn VfsFile>,
    /// Distinct-series sketch of this part, made on the first `/metrics` scrape that needs it.
    sketch: OnceLock<Arc<crate::sketch::Sketch>>,
}

impl std::fmt::Debug for PartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartReader")
            .field("dir", &self.dir)
            .finish()
    }
}

fn chunk_ref(r: &mut ByteReader<'_>) -> Result<ChunkRef, ReadError> {
    let offset = r.uvarint()?;
    let len = r.uvarint()?;
    if len < 4 || len > u32::MAX as u64 || offset < DATA_HEADER_LEN {
        return Err(ReadError("bad chunk reference"));
    }
    Ok(ChunkRef {
        offset,
        len: len as u32,
    })
}

/// Every series of a table with its blocks, from `index.bin`'s checked payload.
pub(super) fn decode_entries(
    payload: &[u8],
    version: u32,
    path: &Path,
) -> Result<Vec<SeriesEntry>> {
    let bad = |e: ReadError| Error::corrupt(path, format!("series table: {e}"));
    if version < 3 {
        let body = zstd::bulk::decompress(payload, MAX_INDEX_BYTES)
            .map_err(|e| Error::corrupt(path, format!("series table: {e}")))?;
        return parse_index(&body, version).map_err(bad);
    }
    let layout = super::chunked::Layout::parse(payload).map_err(bad)?;
    let mut names = Names::default();
    let mut out = Vec::with_capacity(layout.metas.len());
    let mut open: Option<(u32, Vec<u8>)> = None;
    for (meta, l) in layout.metas.into_iter().zip(&layout.lists) {
        if open.as_ref().is_none_or(|(c, _)| *c != l.chunk) {
            let raw =
                super::chunked::chunk(payload, &layout.chunks[l.chunk as usize]).map_err(bad)?;
            open = Some((l.chunk, raw));
        }
        let Some((_, raw)) = &open else {
            continue;
        };
        let mut r = ByteReader::new(&raw[l.start..l.end]);
        let blocks = parse_blocks(&mut r, version, &mut names).map_err(bad)?;
        if !r.is_empty() {
            return Err(bad(ReadError("trailing bytes after a block list")));
        }
        out.push(SeriesEntry {
            meta: Arc::new(meta),
            blocks,
        });
    }
    Ok(out)
}

fn parse_index(body: &[u8], version: u32) -> Result<Vec<SeriesEntry>, ReadError> {
    let mut r = ByteReader::new(body);
    let n = r.count()?;
    let mut names = Names::default();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let meta = series_key(&mut r)?;
        let blocks = parse_blocks(&mut r, version, &mut names)?;
        out.push(SeriesEntry {
            meta: Arc::new(meta),
            blocks,
        });
    }
    if !r.is_empty() {
        return Err(ReadError("trailing bytes in series table"));
    }
    Ok(out)
}

/// A series' measure and tags, as the table stores them before its blocks.
pub(super) fn series_key(r: &mut ByteReader<'_>) -> Result<SeriesMeta, ReadError> {
    let measure = r.string()?;
    let nt = r.count()?;
    let mut tags = Vec::with_capacity(nt);
    for _ in 0..nt {
        tags.push((r.string()?, r.string()?));
    }
    Ok(SeriesMeta { measure, tags })
}

/// Field names of a table, each allocated once (blocks repeat them).
#[derive(Default)]
pub(super) struct Names {
    map: HashMap<Box<str>, Arc<str>>,
}

impl Names {
    /// `name`'s shared copy; `prev` (the previous block's fields, same order as a rule) is
    /// tried first, so the common case neither hashes nor allocates.
    fn get(&mut self, prev: Option<&Arc<str>>, name: &[u8]) -> Result<Arc<str>, ReadError> {
        if let Some(p) = prev
            && p.as_bytes() == name
        {
            return Ok(p.clone());
        }
        let name = std::str::from_utf8(name).map_err(|_| ReadError("invalid UTF-8"))?;
        if let Some(a) = self.map.get(name) {
            return Ok(a.clone());
        }
        let a: Arc<str> = Arc::from(name);
        self.map.insert(Box::from(name), a.clone());
        Ok(a)
    }
}

/// A series' block list (after its key).
pub(super) fn parse_blocks(
    r: &mut ByteReader<'_>,
    version: u32,
    names: &mut Names,
) -> Result<Vec<BlockRef>, ReadError> {
    let nb = r.count()?;
    let mut blocks: Vec<BlockRef> = Vec::with_capacity(nb);
    for _ in 0..nb {
        let rows = r.uvarint()?;
        if rows == 0 || rows > super::BLOCK_ROWS as u64 {
            return Err(ReadError("bad block row count"));
        }
        let min_ts = r.i64()?;
        let max_ts = r.i64()?;
        let ts = chunk_ref(r)?;
        let nf = r.count()?;
        let mut fields = Vec::with_capacity(nf);
        for k in 0..nf {
            let prev = blocks.last().and_then(|b| b.fields.get(k)).map(|f| &f.name);
            let name = names.get(prev, r.bytes()?)?;
            let ty = r.u8()?;
            if !(TYPE_F64..=TYPE_STR).contains(&ty) {
                return Err(ReadError("bad field type"));
            }
            let present = r.uvarint()?;
            if present > rows {
                return Err(ReadError("bad present count"));
            }
            let presence = (present < rows).then(|| chunk_ref(r)).transpose()?;
            let values = (present > 0).then(|| chunk_ref(r)).transpose()?;
            let summary = (version >= 2 && present > 0 && summarized(ty))
                .then(|| FieldSummary::decode(r, ty, min_ts, max_ts))
                .transpose()?;
            fields.push(FieldRef {
                name,
                ty,
                present: present as u32,
                presence,
                values,
                summary,
            });
        }
        blocks.push(BlockRef {
            rows: rows as u32,
            min_ts,
            max_ts,
            ts,
            fields,
        });
    }
    Ok(blocks)
}

/// Step over a series' block list without building it: the bounds and field types are
/// checked as [`parse_blocks`] checks them, the summaries fully parsed when the table is.
pub(super) fn skip_blocks(r: &mut ByteReader<'_>, version: u32) -> Result<(), ReadError> {
    let nb = r.count()?;
    for _ in 0..nb {
        let rows = r.uvarint()?;
        if rows == 0 || rows > super::BLOCK_ROWS as u64 {
            return Err(ReadError("bad block row count"));
        }
        r.take(16)?;
        chunk_ref(r)?;
        let nf = r.count()?;
        for _ in 0..nf {
            r.bytes()?;
            let ty = r.u8()?;
            if !(TYPE_F64..=TYPE_STR).contains(&ty) {
                return Err(ReadError("bad field type"));
            }
            let present = r.uvarint()?;
            if present > rows {
                return Err(ReadError("bad present count"));
            }
            if present < rows {
                chunk_ref(r)?;
            }
            if present > 0 {
                chunk_ref(r)?;
                if version >= 2 && summarized(ty) {
                    FieldSummary::skip(r, ty)?;
                }
            }
        }
    }
    Ok(())
}

impl PartReader {
    pub fn open(vfs: &dyn Vfs, dir: &Path) -> Result<PartReader> {
        let (meta, meta_file) = PartMeta::read_with_digest(vfs, dir)?;
        // The frame is checked here (a flipped or cut index is refused at open, as before).
        let (index_version, index_compressed) = read_index_frame(vfs, dir)?;
        if index_version != meta.format_version {
            return Err(Error::corrupt(
                dir.join(INDEX_FILE),
                format!(
                    "series table version {index_version} does not match the part's format \
                     version {}",
                    meta.format_version
                ),
            ));
        }
        let index_compressed: Arc<[u8]> = index_compressed.into();
        let data_path = dir.join(DATA_FILE);
        let data = vfs.open(&data_path).map_err(|e| Error::io(&data_path, e))?;
        let len = data.size().map_err(|e| Error::io(&data_path, e))?;
        let expected = meta
            .files
            .iter()
            .find(|f| f.name == DATA_FILE)
            .map(|f| f.size);
        if expected != Some(len) {
            return Err(Error::corrupt(
                &data_path,
                format!("size {len} does not match part metadata ({expected:?})"),
            ));
        }
        let mut header = [0u8; DATA_HEADER_LEN as usize];
        data.read_exact_at(&mut header, 0)
            .map_err(|e| Error::io(&data_path, e))?;
        if &header[..8] != DATA_MAGIC
            || header[8..12] != DATA_VERSION.to_le_bytes()
            || header[12..16] != [0; 4]
        {
            return Err(Error::corrupt(&data_path, "bad header"));
        }
        Ok(PartReader {
            dir: dir.to_path_buf(),
            meta,
            meta_file,
            index: OnceLock::new(),
            index_compressed,
            version: index_version,
            data,
            sketch: OnceLock::new(),
        })
    }

    /// The series table, loaded on first use and kept (scans): keys and postings at once,
    /// each series' blocks when first asked for ([`super::table::SeriesTable`]).
    pub fn index(&self) -> Result<Arc<super::table::SeriesTable>> {
        if let Some(i) = self.index.get() {
            return Ok(i.clone());
        }
        let index_path = self.dir.join(INDEX_FILE);
        let table =
            super::table::SeriesTable::load(&self.index_compressed, self.version, index_path)?;
        self.check_keys(table.metas.iter().map(|m| &**m), table.metas.len())?;
        // A concurrent scan may have loaded it too: either copy is the same table.
        Ok(self.index.get_or_init(|| Arc::new(table)).clone())
    }

    /// The whole series table, parsed and not kept (merges and checks read each part once).
    pub fn index_once(&self) -> Result<Arc<PartIndex>> {
        self.load_index().map(Arc::new)
    }

    /// The part's series as a distinct-count sketch (`group` is the part's group), parsed from
    /// the series table once.
    pub fn series_sketch(&self, group: &str) -> Result<Arc<crate::sketch::Sketch>> {
        if let Some(s) = self.sketch.get() {
            return Ok(s.clone());
        }
        let mut s = crate::sketch::Sketch::default();
        match self.index.get() {
            Some(t) => {
                for m in &t.metas {
                    s.add(crate::sketch::series_hash(group, m.sid()));
                }
            }
            // v3: the keys alone, no block list decompressed.
            None if self.version >= 3 => {
                let layout =
                    super::chunked::Layout::parse(&self.index_compressed).map_err(|e| {
                        Error::corrupt(self.dir.join(INDEX_FILE), format!("series table: {e}"))
                    })?;
                for m in &layout.metas {
                    s.add(crate::sketch::series_hash(group, m.sid()));
                }
            }
            None => {
                for e in &self.index_once()?.series {
                    s.add(crate::sketch::series_hash(group, e.meta.sid()));
                }
            }
        }
        Ok(self.sketch.get_or_init(|| Arc::new(s)).clone())
    }

    /// The part format version (1: no block summaries).
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// Whether the series table is in memory (tests).
    pub fn index_loaded(&self) -> bool {
        self.index.get().is_some()
    }

    /// The series table if a scan loaded it already.
    pub fn loaded_index(&self) -> Option<&Arc<super::table::SeriesTable>> {
        self.index.get()
    }

    fn load_index(&self) -> Result<PartIndex> {
        let index_path = self.dir.join(INDEX_FILE);
        let series = decode_entries(&self.index_compressed, self.version, &index_path)?;
        self.check_keys(series.iter().map(|e| &*e.meta), series.len())?;
        Ok(PartIndex { series })
    }

    /// The table's series must agree with the part's metadata: their count, and the measures
    /// (scans skip a part whose metadata does not list the measure).
    fn check_keys<'a>(&self, keys: impl Iterator<Item = &'a SeriesMeta>, n: usize) -> Result<()> {
        let index_path = self.dir.join(INDEX_FILE);
        if n as u64 != self.meta.series {
            return Err(Error::corrupt(
                &index_path,
                "series table does not match the part metadata's series count",
            ));
        }
        let mut measures: Vec<&str> = keys.map(|m| m.measure.as_str()).collect();
        measures.dedup();
        if !measures.iter().eq(self.meta.measures.iter()) {
            return Err(Error::corrupt(
                &index_path,
                "series table does not match the part metadata's measures",
            ));
        }
        Ok(())
    }

    fn chunk(&self, c: ChunkRef, what: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(DATA_FILE);
        let mut buf = vec![0u8; c.len as usize];
        self.data.read_exact_at(&mut buf, c.offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(
                    &path,
                    format!("{what} chunk at {} past end of file", c.offset),
                )
            } else {
                Error::io(&path, e)
            }
        })?;
        let stored = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if crc32c::crc32c(&buf[4..]) != stored {
            return Err(Error::corrupt(
                &path,
                format!("checksum mismatch in {what} chunk at offset {}", c.offset),
            ));
        }
        buf.drain(..4);
        Ok(buf)
    }

    /// Decode one block; `fields` = projection (`None` = all).
    pub fn read_block(&self, b: &BlockRef, fields: Option<&[String]>) -> Result<Rows> {
        let path = self.dir.join(DATA_FILE);
        let bad = |what: &str, e: codec::DecodeError| {
            Error::corrupt(&path, format!("{what} at offset {}: {e}", b.ts.offset))
        };
        let n = b.rows as usize;
        let mut ts = Vec::with_capacity(n);
        codec::decode_timestamps(&self.chunk(b.ts, "timestamp")?, n, &mut ts)
            .map_err(|e| bad("timestamp chunk", e))?;
        let mut cols = Vec::new();
        for f in &b.fields {
            if fields.is_some_and(|p| !p.iter().any(|x| **x == *f.name)) {
                continue;
            }
            // `None`: every row has a value.
            let present: Option<Vec<bool>> = match f.presence {
                Some(c) => {
                    let mut v = Vec::with_capacity(n);
                    codec::decode_bool(&self.chunk(c, "presence")?, n, &mut v)
                        .map_err(|e| bad("presence chunk", e))?;
                    if v.iter().filter(|&&p| p).count() != f.present as usize {
                        return Err(Error::corrupt(&path, "presence count mismatch"));
                    }
                    Some(v)
                }
                None => None,
            };
            let present = present.as_deref();
            let k = f.present as usize;
            let raw = match f.values {
                Some(c) => self.chunk(c, "value")?,
                None => Vec::new(),
            };
            let col = match f.ty {
                TYPE_F64 => {
                    let mut v = Vec::with_capacity(k);
                    if k > 0 {
                        codec::decode_f64(&raw, k, &mut v).map_err(|e| bad("f64 chunk", e))?;
                    }
                    Column::F64(spread(present, v))
                }
                TYPE_I64 => {
                    let mut v = Vec::with_capacity(k);
                    if k > 0 {
                        codec::decode_i64(&raw, k, &mut v).map_err(|e| bad("i64 chunk", e))?;
                    }
                    Column::I64(spread(present, v))
                }
                TYPE_BOOL => {
                    let mut v = Vec::with_capacity(k);
                    if k > 0 {
                        codec::decode_bool(&raw, k, &mut v).map_err(|e| bad("bool chunk", e))?;
                    }
                    Column::Bool(spread(present, v))
                }
                TYPE_STR => {
                    let mut v = Vec::with_capacity(k);
                    if k > 0 {
                        codec::decode_str(&raw, k, &mut v).map_err(|e| bad("str chunk", e))?;
                    }
                    Column::Str(spread(present, v))
                }
                _ => return Err(Error::corrupt(&path, "bad field type")),
            };
            cols.push((f.name.to_string(), col));
        }
        Ok(Rows { ts, cols })
    }

    /// All rows of a series with `from <= ts < to`, projected.
    pub fn read_series(
        &self,
        s: &SeriesEntry,
        from: i64,
        to: i64,
        fields: Option<&[String]>,
    ) -> Result<Vec<Rows>> {
        let mut out = Vec::new();
        for b in &s.blocks {
            if b.max_ts < from || b.min_ts >= to {
                continue;
            }
            let r = self.read_block(b, fields)?;
            out.push(if b.min_ts >= from && b.max_ts < to {
                r
            } else {
                r.into_time(from, to)
            });
        }
        Ok(out)
    }
}

/// `index.bin`'s frame version (1, 2 or 3) and its checked, still compressed payload.
fn read_index_frame(vfs: &dyn Vfs, dir: &Path) -> Result<(u32, Vec<u8>)> {
    let path = dir.join(INDEX_FILE);
    let bytes = vfs.read(&path).map_err(|e| Error::io(&path, e))?;
    let payload = unframe(&path, INDEX_MAGIC, VERSION, &bytes)?.to_vec();
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    Ok((version, payload))
}

/// The series a part directory lists in its series table, read from `index.bin` alone (the
/// data file may be missing or damaged): what a restore that skipped the part reports.
pub fn read_series_table(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<Arc<SeriesMeta>>> {
    let (version, frame) = read_index_frame(vfs, dir)?;
    if version >= 3 {
        // The keys alone (the block lists' chunks are not decompressed).
        let layout = super::chunked::Layout::parse(&frame)
            .map_err(|e| Error::corrupt(dir.join(INDEX_FILE), format!("series table: {e}")))?;
        return Ok(layout.metas.into_iter().map(Arc::new).collect());
    }
    Ok(decode_entries(&frame, version, &dir.join(INDEX_FILE))?
        .into_iter()
        .map(|e| e.meta)
        .collect())
}

/// The series table of a part directory, read from `index.bin` alone.
pub(super) fn read_series_entries(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<SeriesEntry>> {
    let (version, frame) = read_index_frame(vfs, dir)?;
    decode_entries(&frame, version, &dir.join(INDEX_FILE))
}

/// `values` at the rows `present` marks (`None`: every row).
fn spread<T>(present: Option<&[bool]>, values: Vec<T>) -> Vec<Option<T>> {
    let mut it = values.into_iter();
    match present {
        Some(present) => present
            .iter()
            .map(|&p| if p { it.next() } else { None })
            .collect(),
        None => it.map(Some).collect(),
    }
}

/// Re-read every file of a part and check sizes and BLAKE3 digests against `meta.bin`.
pub fn verify_part_files(vfs: &dyn Vfs, dir: &Path) -> Result<PartMeta> {
    let meta = PartMeta::read(vfs, dir)?;
    for f in &meta.files {
        if f.name.contains('/') || f.name.contains("..") {
            return Err(Error::corrupt(dir.join(super::META_FILE), "bad file name"));
        }
        let path = dir.join(&f.name);
        // Streamed in 1 MiB pieces: reading whole data files made a restore's memory grow with
        // the largest part (73 -> 132 MiB peak at 10x the data in the headline benchmark).
        let file = vfs.open(&path).map_err(|e| Error::io(&path, e))?;
        let size = file.size().map_err(|e| Error::io(&path, e))?;
        if size != f.size {
            return Err(Error::corrupt(&path, "size does not match part metadata"));
        }
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; (1usize << 20).min(size as usize)];
        let mut at = 0u64;
        while at < size {
            let n = buf.len().min((size - at) as usize);
            file.read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io(&path, e))?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        if hasher.finalize().to_hex().as_str() != f.blake3 {
            return Err(Error::corrupt(
                &path,
                "BLAKE3 digest does not match part metadata",
            ));
        }
    }
    PartReader::open(vfs, dir)?.index_once()?;
    Ok(meta)
}
