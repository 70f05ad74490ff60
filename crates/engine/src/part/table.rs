//! A part's series table as scans use it: the series keys and postings are parsed when a scan
//! first needs the part, each series' block list only when a scan selects that series (then
//! kept). The first query after a part opens (one series of one host) used to parse every
//! block entry with its summaries: tens of thousands of entries for one.
//!
//! The first pass decompresses the table and steps over each block list with the same bounds
//! checks the full parse makes (row counts, field types, chunk references, summary shapes), so
//! a malformed table is still refused at that first use; a block list is fully parsed, its
//! summary timestamps checked against its block, when its series is selected.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::format::{ByteReader, ReadError};
use crate::memtable::SeriesMeta;

use super::Postings;
use super::read::{BlockRef, Names, parse_blocks, series_key, skip_blocks};

pub struct SeriesTable {
    /// Series keys in table order (sorted by measure, tags).
    pub metas: Vec<Arc<SeriesMeta>>,
    /// Tag → series postings over `metas`.
    pub postings: Postings,
    version: u32,
    /// The decompressed table.
    body: Box<[u8]>,
    /// Where each series' block list lies in `body`.
    spans: Vec<(usize, usize)>,
    blocks: Vec<OnceLock<Vec<BlockRef>>>,
    names: std::sync::Mutex<Names>,
    /// `index.bin`, for errors.
    path: PathBuf,
}

impl std::fmt::Debug for SeriesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesTable")
            .field("series", &self.metas.len())
            .finish()
    }
}

impl SeriesTable {
    /// The first pass over a decompressed table of format `version`.
    pub(super) fn parse(body: Vec<u8>, version: u32, path: PathBuf) -> Result<SeriesTable> {
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
        Ok(SeriesTable {
            postings: Postings::build_from(metas.iter().map(|m| &**m)),
            blocks: (0..n).map(|_| OnceLock::new()).collect(),
            metas,
            version,
            body: body.into_boxed_slice(),
            spans,
            names: Default::default(),
            path,
        })
    }

    /// Series `i`'s blocks, parsed on first use and kept.
    pub fn blocks(&self, i: usize) -> Result<&[BlockRef]> {
        if let Some(b) = self.blocks[i].get() {
            return Ok(b);
        }
        let (a, e) = self.spans[i];
        let mut r = ByteReader::new(&self.body[a..e]);
        let parsed = {
            let mut names = self
                .names
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            parse_blocks(&mut r, self.version, &mut names)
        }
        .and_then(|b| {
            if r.is_empty() {
                Ok(b)
            } else {
                Err(ReadError("trailing bytes after a block list"))
            }
        })
        .map_err(|e| Error::corrupt(&self.path, format!("series table: {e}")))?;
        // A concurrent scan may have parsed it too: either copy is the same list.
        Ok(self.blocks[i].get_or_init(|| parsed))
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
