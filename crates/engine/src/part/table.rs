//! A part's series table as scans use it: the series keys and postings are parsed when a scan
//! first needs the part, each series' block list only when a scan selects that series (then
//! kept). The first query after a part opens (one series of one host) used to parse every
//! block entry with its summaries: tens of thousands of entries for one.
//!
//! Part format v3 stores the keys apart from the block lists, which lie in independently
//! compressed chunks ([`super::chunked`]): loading the table decompresses the keys only, and a
//! selected series' block list is read by decompressing its chunk (kept for the other series
//! in it: never more than v2 kept, which was the whole decompressed table), then parsed and
//! checked. A malformed block list is refused at its series' first use; merges and checks
//! parse every list.
//!
//! Versions 1 and 2 interleave keys and block lists in one zstd frame: the first pass
//! decompresses it and steps over each block list with the same bounds checks the full parse
//! makes (row counts, field types, chunk references, summary shapes), so a malformed table is
//! refused at that first use; a block list is fully parsed, its summary timestamps checked
//! against its block, when its series is selected.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::format::{ByteReader, ReadError};
use crate::memtable::SeriesMeta;

use super::Postings;
use super::chunked::{self, ChunkLoc, Layout, ListLoc};
use super::read::{BlockRef, MAX_INDEX_BYTES, Names, parse_blocks, series_key, skip_blocks};

pub struct SeriesTable {
    /// Series keys in table order (sorted by measure, tags).
    pub metas: Vec<Arc<SeriesMeta>>,
    /// Tag → series postings over `metas`.
    pub postings: Postings,
    version: u32,
    lists: Lists,
    blocks: Vec<OnceLock<Vec<BlockRef>>>,
    names: std::sync::Mutex<Names>,
    /// `index.bin`, for errors.
    path: PathBuf,
}

/// Where the block lists come from.
enum Lists {
    /// v1, v2: the decompressed table and where each series' block list lies in it.
    Whole {
        body: Box<[u8]>,
        spans: Vec<(usize, usize)>,
    },
    /// v3: the table as stored (shared with the part), its chunks decompressed on demand.
    Chunked {
        payload: Arc<[u8]>,
        chunks: Vec<ChunkLoc>,
        lists: Vec<ListLoc>,
        raw: Vec<OnceLock<Box<[u8]>>>,
    },
}

impl std::fmt::Debug for SeriesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesTable")
            .field("series", &self.metas.len())
            .finish()
    }
}

impl SeriesTable {
    /// The first pass over `index.bin`'s checked payload of format `version`.
    pub(super) fn load(payload: &Arc<[u8]>, version: u32, path: PathBuf) -> Result<SeriesTable> {
        let bad = |e: ReadError| Error::corrupt(&path, format!("series table: {e}"));
        if version < 3 {
            let body = zstd::bulk::decompress(payload, MAX_INDEX_BYTES)
                .map_err(|e| Error::corrupt(&path, format!("series table: {e}")))?;
            return Self::parse(body, version, path);
        }
        let layout = Layout::parse(payload).map_err(bad)?;
        let metas: Vec<Arc<SeriesMeta>> = layout.metas.into_iter().map(Arc::new).collect();
        Ok(Self::new(
            metas,
            Lists::Chunked {
                payload: payload.clone(),
                raw: (0..layout.chunks.len()).map(|_| OnceLock::new()).collect(),
                chunks: layout.chunks,
                lists: layout.lists,
            },
            version,
            path,
        ))
    }

    /// The first pass over a decompressed v1 or v2 table.
    fn parse(body: Vec<u8>, version: u32, path: PathBuf) -> Result<SeriesTable> {
        let bad = |e: ReadError| Error::corrupt(&path, format!("series table: {e}"));
        let mut r = ByteReader::new(&body);
        let n = r.count().map_err(bad)?;
        let mut metas = Vec::with_capacity(n);
        let mut spans = Vec::with_capacity(n);
        for _ in 0..n {
            metas.push(Arc::new(series_key(&mut r).map_err(bad)?));
            let start = body.len() - r.remaining();
            skip_blocks(&mut r, version).map_err(bad)?;
            spans.push((start, body.len() - r.remaining()));
        }
        if !r.is_empty() {
            return Err(bad(ReadError("trailing bytes in series table")));
        }
        let lists = Lists::Whole {
            body: body.into_boxed_slice(),
            spans,
        };
        Ok(Self::new(metas, lists, version, path))
    }

    fn new(metas: Vec<Arc<SeriesMeta>>, lists: Lists, version: u32, path: PathBuf) -> Self {
        SeriesTable {
            postings: Postings::build_from(metas.iter().map(|m| &**m)),
            blocks: (0..metas.len()).map(|_| OnceLock::new()).collect(),
            metas,
            version,
            lists,
            names: Default::default(),
            path,
        }
    }

    /// Series `i`'s blocks, parsed on first use and kept.
    pub fn blocks(&self, i: usize) -> Result<&[BlockRef]> {
        if let Some(b) = self.blocks[i].get() {
            return Ok(b);
        }
        let parsed = match &self.lists {
            Lists::Whole { body, spans } => {
                let (a, e) = spans[i];
                self.parse_list(&body[a..e])?
            }
            Lists::Chunked {
                payload,
                chunks,
                lists,
                raw,
            } => {
                let l = lists[i];
                let c = l.chunk as usize;
                let bytes = match raw[c].get() {
                    Some(b) => b,
                    None => {
                        let b = chunked::chunk(payload, &chunks[c]).map_err(|e| self.corrupt(e))?;
                        // A concurrent scan may have decompressed it too: the same bytes.
                        raw[c].get_or_init(|| b.into_boxed_slice())
                    }
                };
                self.parse_list(&bytes[l.start..l.end])?
            }
        };
        // A concurrent scan may have parsed it too: either copy is the same list.
        Ok(self.blocks[i].get_or_init(|| parsed))
    }

    /// Parse the block lists of the series `selected` not parsed yet.
    pub fn load_blocks(&self, selected: impl IntoIterator<Item = usize>) -> Result<()> {
        for i in selected {
            self.blocks(i)?;
        }
        Ok(())
    }

    /// How many chunks of a v3 table are decompressed (tests).
    #[cfg(test)]
    pub fn chunks_decompressed(&self) -> usize {
        match &self.lists {
            Lists::Whole { .. } => 0,
            Lists::Chunked { raw, .. } => raw.iter().filter(|r| r.get().is_some()).count(),
        }
    }

    /// One series' encoded block list, which must be consumed exactly.
    fn parse_list(&self, bytes: &[u8]) -> Result<Vec<BlockRef>> {
        let mut r = ByteReader::new(bytes);
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parse_blocks(&mut r, self.version, &mut names)
            .and_then(|b| {
                if r.is_empty() {
                    Ok(b)
                } else {
                    Err(ReadError("trailing bytes after a block list"))
                }
            })
            .map_err(|e| self.corrupt(e))
    }

    fn corrupt(&self, e: ReadError) -> Error {
        Error::corrupt(&self.path, format!("series table: {e}"))
    }

    /// Whether series `i`'s block list is parsed.
    pub fn is_parsed(&self, i: usize) -> bool {
        self.blocks[i].get().is_some()
    }

    /// How many series have their block lists parsed (tests).
    #[cfg(test)]
    pub fn parsed_count(&self) -> usize {
        self.blocks.iter().filter(|b| b.get().is_some()).count()
    }
}

/// For the fuzz targets (`fuzz/src/targets.rs`): `payload` read as a v3 table both ways, lazily
/// (keys, then each series' blocks, one by one and in bulk) and whole (merges and checks).
/// Both must refuse it or give the same series and blocks; the number of series, or the
/// lazy table's error. Panics when they disagree.
#[doc(hidden)]
pub fn check_table_payload(payload: &[u8]) -> std::result::Result<usize, String> {
    let path = PathBuf::from(super::INDEX_FILE);
    let shared: Arc<[u8]> = payload.into();
    let each = |bulk: bool| {
        let t = SeriesTable::load(&shared, 3, path.clone())?;
        if bulk {
            t.load_blocks(0..t.metas.len())?;
        }
        (0..t.metas.len())
            .map(|i| Ok(format!("{:?} {:?}", t.metas[i], t.blocks(i)?)))
            .collect::<Result<Vec<String>>>()
    };
    let (one, bulk) = (each(false), each(true));
    let full = super::read::decode_entries(payload, 3, &path).map(|v| {
        v.iter()
            .map(|s| format!("{:?} {:?}", s.meta, s.blocks))
            .collect::<Vec<String>>()
    });
    match (one, bulk, full) {
        (Ok(a), Ok(b), Ok(c)) if a == b && b == c => Ok(a.len()),
        (Err(a), Err(_), Err(_)) => Err(a.to_string()),
        (a, b, c) => panic!("the lazy table and the full parse disagree: {a:?} / {b:?} / {c:?}"),
    }
}
