//! One series of a scan answered from its sources (part blocks, memtable rows): blocks in the
//! range decoded or taken from their summaries, decoded rows resolved (last write wins) and
//! projected. Independent of every other series, so [`super::fanout`] may answer several at
//! once.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::memtable::SeriesMeta;
use crate::model::FieldType;
use crate::rows::{Rows, empty_column, resolve};
use crate::scan::{BlockSummary, ScanRequest, SeriesData};

use super::read::{Source, project};
use super::summarize::Plan;

/// What a series gives: its rows and the blocks answered from summaries.
pub(super) type Answer = (SeriesData, Vec<BlockSummary>);

/// What every series of one scan shares.
pub(super) struct Scope<'a> {
    pub req: &'a ScanRequest,
    pub plan: Option<Plan<'a>>,
    /// `last` over the whole range: blocks newest first, those that cannot hold a last value
    /// left out (`newest.rs`).
    pub newest_first: bool,
    pub names: &'a [String],
    pub types: &'a BTreeMap<String, FieldType>,
}

impl Scope<'_> {
    /// Series `meta`'s answer, `None` when it gives nothing, or when `go_on` says to stop
    /// (asked after each decoded block).
    pub fn answer(
        &self,
        meta: &SeriesMeta,
        sources: Vec<Source>,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Answer>> {
        let req = self.req;
        let wanted = req.fields.as_deref();
        // Decoded blocks with their (source, block) position, put back in that order below.
        let mut decoded: Vec<((usize, usize), Rows, Vec<u64>)> = Vec::new();
        let mut blocks: Vec<BlockSummary> = Vec::new();
        let mut order: Vec<(usize, usize)> = Vec::new();
        for (si, src) in sources.iter().enumerate() {
            if let Source::Part(_, idx, i) = src {
                for (bi, b) in idx.blocks(*i)?.iter().enumerate() {
                    if b.max_ts >= req.from && b.min_ts < req.to {
                        order.push((si, bi));
                    }
                }
            }
        }
        let mut latest = None;
        if self.newest_first {
            let mut l = super::newest::Latest::new(req.from, req.to, self.names, self.types);
            for src in &sources {
                if let Source::Rows(rows, _) = src {
                    l.note_rows(rows);
                }
            }
            let max_ts = |&(si, bi): &(usize, usize)| match &sources[si] {
                Source::Part(_, idx, i) => idx.blocks(*i).map_or(i64::MAX, |b| b[bi].max_ts),
                Source::Rows(..) => i64::MIN,
            };
            order.sort_by_key(|k| std::cmp::Reverse(max_ts(k)));
            latest = Some(l);
        }
        for &(si, bi) in &order {
            let Source::Part(p, idx, i) = &sources[si] else {
                continue;
            };
            let b = &idx.blocks(*i)?[bi];
            if let Some(l) = &mut latest {
                if l.covers(b) {
                    continue;
                }
                l.note_block(b);
            }
            if let Some(plan) = &self.plan
                && let Some(answer) = plan.block(p, b, si, &sources)
            {
                // `None`: no value of a projected field, nothing to give.
                blocks.extend(answer);
                continue;
            }
            let r = p.read_block(b, wanted)?;
            let rows = if b.min_ts >= req.from && b.max_ts < req.to {
                r
            } else {
                r.into_time(req.from, req.to)
            };
            let prio = vec![p.meta.max_lsn; rows.len()];
            decoded.push(((si, bi), rows, prio));
            if !go_on() {
                return Ok(None);
            }
        }
        decoded.sort_by_key(|(k, _, _)| *k);
        let mut loaded: Vec<(Rows, Vec<u64>)> =
            decoded.into_iter().map(|(_, r, p)| (r, p)).collect();
        for src in sources {
            if let Source::Rows(rows, prio) = src {
                loaded.push((rows, prio));
            }
        }
        let rows = match super::concat::disjoint(&loaded) {
            Some(rows) => rows,
            None => {
                let refs: Vec<(&Rows, &[u64])> =
                    loaded.iter().map(|(r, p)| (r, p.as_slice())).collect();
                resolve(&refs)
            }
        };
        drop(loaded);
        blocks.sort_by_key(|b| b.min_ts);
        let sd = match project(meta, rows, self.names, self.types) {
            Some(sd) => sd,
            None if blocks.is_empty() => return Ok(None),
            None => SeriesData {
                tags: meta.tags.clone(),
                timestamps: Vec::new(),
                columns: self
                    .names
                    .iter()
                    .map(|n| (n.clone(), empty_column(self.types[n])))
                    .collect(),
            },
        };
        Ok(Some((sd, blocks)))
    }
}
