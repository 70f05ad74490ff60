//! The series tables a scan needs: each part's table (decompressed, keys and postings) and the
//! block lists of the series the scan selects in it. Parts are independent, so this can run on
//! up to `available_parallelism()` threads, but that is switched off ([`PARALLEL`]): with it
//! the query-budget RSS test peaked higher than allowed. Tables already loaded with the
//! selected series parsed cost nothing.

use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::part::{PartReader, SeriesTable};
use crate::scan::ScanRequest;

/// Whether cold tables load on several threads (see [`load_all`]).
const PARALLEL: bool = false;

/// A part's table and the positions of the series `req` selects in it.
pub(super) type Loaded = (Arc<SeriesTable>, RoaringBitmap);

fn load(p: &PartReader, req: &ScanRequest) -> Result<Loaded> {
    let t = p.index()?;
    let sel = t.postings.select(&req.measure, &req.matchers);
    t.load_blocks(sel.iter().map(|i| i as usize))?;
    Ok((t, sel))
}

/// Whether loading `p` for `req` would parse anything.
fn cold(p: &PartReader, req: &ScanRequest) -> bool {
    match p.loaded_index() {
        None => true,
        Some(t) => t
            .postings
            .select(&req.measure, &req.matchers)
            .iter()
            .any(|i| !t.is_parsed(i as usize)),
    }
}

/// [`load`] of every part, in order; spread over threads when two or more are cold.
pub(super) fn load_all(parts: &[Arc<PartReader>], req: &ScanRequest) -> Result<Vec<Loaded>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(parts.len());
    let n_cold = parts.iter().filter(|p| cold(p, req)).count();
    // Off for now: with threads the query-budget RSS test peaked at 208-240 MiB against
    // 133-169 before (allowed 218); to be understood (allocator arenas per thread?).
    if !PARALLEL || threads < 2 || n_cold < 2 {
        return parts.iter().map(|p| load(p, req)).collect();
    }
    let mut out: Vec<Option<Result<Loaded>>> = (0..parts.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    (k..parts.len())
                        .step_by(threads)
                        .map(|i| (i, load(&parts[i], req)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A panic in a loader is a bug: passed on as it is.
            for (i, r) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                out[i] = Some(r);
            }
        }
    });
    // Every index is some thread's: each slot is filled.
    out.into_iter().flatten().collect()
}
