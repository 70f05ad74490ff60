//! Opening a data directory: lock, identity, published parts, startup garbage collection and
//! WAL replay.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::batch::PointBatch;
use crate::catalog::CatalogState;
use crate::datadir::try_lock;
use crate::error::{Error, Result};
use crate::format::{create_dir_all, fsync_dir, remove_all};
use crate::manifest;
use crate::memtable::{Memtable, SeriesMeta};
use crate::meta_files::{self, EngineFile};
use crate::part::{PartReader, parse_part_dir_name};
use crate::record::{self, Record};
use crate::vfs::Vfs;
use crate::wal::{self, SegmentMeta, WalWriter};

use super::options::EngineOptions;
use super::route::{point_expired, route};
use super::state::*;

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

fn list_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    let entries = match vfs.read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for ent in entries {
        let path = dir.join(&ent.name);
        out.push((ent.name, path));
    }
    out.sort();
    Ok(out)
}

/// What open must not delete: the part directories live snapshot pins list (relative to the
/// data directory), and the ones it kept although unpublished (their delete is deferred).
struct Keep<'a> {
    pinned: &'a HashSet<PathBuf>,
    deferred: Vec<PathBuf>,
}

impl Keep<'_> {
    fn remove(&mut self, vfs: &dyn Vfs, dir: &Path, path: &Path) -> Result<()> {
        let kept = super::pins::remove_unpinned(vfs, dir, path, self.pinned)?;
        self.deferred.extend(kept);
        Ok(())
    }
}

/// Load every shard manifest and its parts; in read-write mode remove what is not published
/// (except what a live snapshot pins).
fn load_version(
    vfs: &dyn Vfs,
    dir: &Path,
    read_only: bool,
    max_part: &mut u64,
    keep: &mut Keep<'_>,
) -> Result<Version> {
    let mut v = Version::default();
    for (group, gpath) in list_dir(vfs, &data_root(dir))? {
        if !super::adopt::is_group_entry(&group) {
            // An online restore's parked group (removed below, or installed by recovery).
            continue;
        }
        for (seg_name, spath) in list_dir(vfs, &gpath)? {
            let Some(segment) = parse_seg(&seg_name) else {
                continue;
            };
            for (shard_name, path) in list_dir(vfs, &spath)? {
                let Some(shard) = parse_shard(&shard_name) else {
                    continue;
                };
                let Some(m) = manifest::load_latest(vfs, &path)? else {
                    if !read_only {
                        keep.remove(vfs, dir, &path)?;
                    }
                    continue;
                };
                *max_part = (*max_part).max(m.next_part_id.saturating_sub(1));
                let mut parts = Vec::new();
                for id in &m.parts {
                    let pdir = path.join(crate::part::part_dir_name(*id));
                    let p = PartReader::open(vfs, &pdir)?;
                    if p.meta.part_id != *id || p.meta.group != group || p.meta.shard != shard {
                        return Err(Error::corrupt(
                            pdir.join(crate::part::META_FILE),
                            "part identity does not match its manifest",
                        ));
                    }
                    *max_part = (*max_part).max(*id);
                    parts.push(Arc::new(p));
                }
                parts.sort_by_key(|p| p.meta.min_lsn);
                if !read_only {
                    // Unpublished parts (a crash between writing and publishing) and temp files.
                    let live = format!("MANIFEST-{:016x}", m.epoch);
                    let prev = format!("MANIFEST-{:016x}", m.epoch.saturating_sub(1));
                    for (name, p) in list_dir(vfs, &path)? {
                        let published = name == live
                            || name == prev
                            || parse_part_dir_name(&name).is_some_and(|id| m.parts.contains(&id));
                        if !published {
                            if let Some(id) = parse_part_dir_name(&name) {
                                *max_part = (*max_part).max(id);
                            }
                            keep.remove(vfs, dir, &p)?;
                        }
                    }
                }
                v.shards.insert(
                    ShardKey {
                        group: group.clone(),
                        segment,
                        shard,
                    },
                    ShardState {
                        epoch: m.epoch,
                        flushed_lsn: m.flushed_lsn,
                        segment_end: m.segment_end,
                        shards: m.shards,
                        parts,
                    },
                );
            }
        }
    }
    Ok(v)
}

struct Replay<'a> {
    /// An interrupted online restore rolled forward (`adopt.rs`).
    adoption: Option<super::adopt::Pending>,
    catalog: &'a mut CatalogState,
    version: &'a mut Version,
    mem: &'a mut Memtable,
    /// Parts removed by replayed group deletions (deleted from disk in read-write mode).
    dropped: Vec<Arc<PartReader>>,
    now: i64,
}

impl Replay<'_> {
    fn apply(&mut self, lsn: u64, rec: Record) {
        if let Some(a) = self.adoption.as_mut() {
            let group = match &rec {
                Record::Write { group, .. } => group,
                Record::PutGroup { name, .. } | Record::DeleteGroup { name } => name,
            };
            if a.filter(self.catalog, lsn, group) {
                return;
            }
        }
        match rec {
            Record::Write { group, points } => {
                self.catalog.apply_points(&group, &points);
                let settings = self.catalog.settings(&group);
                // WAL records hold tags sorted by key already, as the memtable wants them.
                let batch = PointBatch::from_points(&points);
                for (p, pref) in points.iter().zip(batch.iter()) {
                    if point_expired(p.timestamp, &settings, self.now) {
                        continue;
                    }
                    let sid = SeriesMeta {
                        measure: p.measure.clone(),
                        tags: p.tags.clone(),
                    }
                    .sid();
                    let r = route(self.version, &group, &settings, p.timestamp, sid);
                    let key = ShardKey {
                        group: group.clone(),
                        segment: r.segment,
                        shard: r.shard,
                    };
                    if self
                        .version
                        .shards
                        .get(&key)
                        .is_some_and(|s| s.flushed_lsn >= lsn)
                    {
                        continue;
                    }
                    self.mem.insert(&group, &pref, lsn);
                }
            }
            Record::PutGroup { name, settings } => {
                self.catalog.groups.entry(name).or_default().settings = settings;
            }
            Record::DeleteGroup { name } => {
                self.catalog.groups.remove(&name);
                self.mem.remove_group(&name);
                let keys: Vec<ShardKey> = self
                    .version
                    .shards
                    .keys()
                    .filter(|k| k.group == name)
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(s) = self.version.shards.get_mut(&k) {
                        let (old, keep): (Vec<_>, Vec<_>) =
                            s.parts.drain(..).partition(|p| p.meta.max_lsn < lsn);
                        s.parts = keep;
                        self.dropped.extend(old);
                        if s.parts.is_empty() {
                            self.version.shards.remove(&k);
                        }
                    }
                }
            }
        }
    }
}

/// Replay WAL segments after `from_lsn`. Returns the recovered segments, the last LSN seen and
/// the newest commit time recorded (0 when none: v1 segments or an empty WAL).
fn replay_wal(
    vfs: &dyn Vfs,
    dir: &Path,
    read_only: bool,
    from_lsn: u64,
    r: &mut Replay<'_>,
) -> Result<(Vec<SegmentMeta>, u64, i64)> {
    let wal_dir = dir.join("wal");
    let segs = wal::list_segments(vfs, &wal_dir)?;
    let mut out = Vec::new();
    let mut last = 0u64;
    let mut last_time = 0i64;
    let n = segs.len();
    for (i, (seq, path)) in segs.into_iter().enumerate() {
        let bytes = vfs.read(&path).map_err(|e| Error::io(&path, e))?;
        let is_last = i + 1 == n;
        let mut apply = |f: wal::Frame<'_>| -> Result<()> {
            last_time = last_time.max(f.commit_time_ns.unwrap_or(0));
            if f.lsn <= from_lsn {
                return Ok(());
            }
            let rec = record::decode(f.kind, f.payload)
                .map_err(|e| Error::corrupt(&path, format!("WAL record {}: {e}", f.lsn)))?;
            r.apply(f.lsn, rec);
            Ok(())
        };
        let outcome = wal::scan_segment(&path, &bytes, is_last, last, &mut apply)?;
        if outcome.torn && !read_only {
            tracing::warn!(
                path = %path.display(),
                valid_len = outcome.valid_len,
                "truncating torn WAL tail"
            );
            let f = vfs.open_write(&path).map_err(|e| Error::io(&path, e))?;
            f.set_len(outcome.valid_len)
                .map_err(|e| Error::io(&path, e))?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        if let Some((_, l)) = outcome.lsns {
            last = l;
        }
        out.push(SegmentMeta {
            seq,
            path,
            lsns: outcome.lsns,
            size: outcome.valid_len,
            version: wal::segment_version(&bytes).unwrap_or(wal::VERSION),
        });
    }
    Ok((out, last, last_time))
}

pub fn open(opts: EngineOptions, read_only: bool) -> Result<Inner> {
    let dir = opts.data_dir.clone();
    let vfs = &*opts.vfs;
    let lock_file = if read_only {
        if !vfs.exists(&dir.join(meta_files::ENGINE_FILE)) {
            return Err(Error::InvalidInput(format!(
                "{} is not a Strata data directory (no ENGINE file)",
                dir.display()
            )));
        }
        None
    } else {
        // A restore killed mid-swap leaves a journal beside the directory: finish (or
        // complete the rollback of) the swap before looking inside, so the engine never
        // opens a half-swapped directory (docs/format/swap-journal.md).
        crate::datadir::recover(vfs, &dir)?;
        let fresh = !vfs.exists(&dir);
        create_dir_all(vfs, &dir)?;
        if fresh {
            // A data directory whose own entry is lost at a power cut loses everything in it.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(vfs, parent)?;
            }
        }
        Some(try_lock(vfs, &dir)?)
    };
    let engine_file = match meta_files::read_engine(vfs, &dir)? {
        Some(e) => e,
        None => {
            let e = EngineFile {
                format_version: crate::FORMAT_VERSION,
                node_id: opts.node_id.clone().unwrap_or_else(|| random_hex(8)),
                created_at: now_ns(),
            };
            meta_files::write_engine(vfs, &dir, &e)?;
            e
        }
    };
    // Snapshots still pinned by a reader of the previous run (until they expire).
    let live_pins = if read_only {
        Vec::new()
    } else {
        super::pins::load_live(vfs, &dir, now_ns())
    };
    let pinned: HashSet<PathBuf> = live_pins
        .iter()
        .flat_map(|p| p.parts.iter().cloned())
        .collect();
    let mut keep = Keep {
        pinned: &pinned,
        deferred: Vec::new(),
    };
    if !read_only {
        // Scratch space and snapshots of an earlier run are never published state; the WAL
        // copies of live pins stay with them.
        remove_all(vfs, &dir.join("tmp"))?;
        clean_snapshots_dir(vfs, &dir, &live_pins)?;
        for d in ["tmp", "snapshots", "wal", "data"] {
            create_dir_all(vfs, &dir.join(d))?;
        }
        // The new `wal/` entry must be durable before any acknowledged write lands in it
        // (found by the power-loss simulation: a cut before the first flush lost `wal/`).
        fsync_dir(vfs, &dir)?;
    }
    let ckpt = meta_files::read_checkpoint(vfs, &dir)?.unwrap_or_default();
    let mut max_part = ckpt.next_part_id.saturating_sub(1);
    // An online restore a crash interrupted: its groups are moved into place before the
    // parts are loaded; replay rolls the rest forward.
    let adoption = super::adopt::recover_at_open(vfs, &dir, ckpt.lsn, read_only)?;
    let mut version = load_version(vfs, &dir, read_only, &mut max_part, &mut keep)?;
    let mut catalog = CatalogState::from_public(&ckpt.catalog);
    let mut mem = Memtable::default();
    let mut replay = Replay {
        adoption,
        catalog: &mut catalog,
        version: &mut version,
        mem: &mut mem,
        dropped: Vec::new(),
        now: now_ns(),
    };
    let (segments, wal_last, last_commit_ns) =
        replay_wal(vfs, &dir, read_only, ckpt.lsn, &mut replay)?;
    if let Some(a) = replay.adoption.as_mut() {
        a.apply(replay.catalog);
    }
    let dropped = std::mem::take(&mut replay.dropped);
    let mut last_lsn = ckpt.lsn.max(wal_last);
    for s in version.shards.values() {
        for p in &s.parts {
            last_lsn = last_lsn.max(p.meta.max_lsn);
        }
    }
    let wal_writer = if read_only {
        None
    } else {
        for p in &dropped {
            keep.remove(vfs, &dir, &p.dir)?;
        }
        // Directories of groups that no longer exist (deleted before a crash).
        for (group, path) in list_dir(vfs, &data_root(&dir))? {
            if !catalog.groups.contains_key(&group)
                && !version.shards.keys().any(|k| k.group == group)
            {
                keep.remove(vfs, &dir, &path)?;
            }
        }
        Some(WalWriter::resume(
            opts.vfs.clone(),
            &dir.join("wal"),
            segments,
        )?)
    };
    let mut pins = super::pins::Pins::from_pins(live_pins);
    for d in std::mem::take(&mut keep.deferred) {
        pins.unpublish(&d);
    }
    if !read_only {
        // Expired pins are gone from the file too.
        pins.save(vfs, &dir)?;
    }
    let active: MemRef = Arc::new(RwLock::new(mem));
    let max_pending = if read_only {
        None
    } else {
        opts.archive_max_pending
    };
    let archive = super::archive::Hold::load(vfs, &dir, max_pending, ckpt.lsn)?;
    Ok(Inner {
        env: Env {
            dir: dir.clone(),
            read_only,
            node_id: engine_file.node_id,
            _lock: lock_file,
            opts,
        },
        writes: WritePath::new(
            Commit {
                catalog,
                last_lsn,
                pending: Vec::new(),
                pending_first: 0,
                active: active.clone(),
                last_freeze: ckpt.lsn,
                last_commit_ns,
            },
            wal_writer,
            Durable {
                done_lsn: last_lsn,
                last_sync: Instant::now(),
                unsynced: false,
            },
        ),
        published: Published::new(
            ReadState {
                version: Arc::new(version),
                frozen: Vec::new(),
                active,
            },
            max_part + 1,
            ckpt.lsn,
        ),
        background: Background::new(),
        pins: Mutex::new(pins),
        archive,
        stats: Default::default(),
    })
}

/// Empty `snapshots/` but for the pin file and the WAL copies of live pins.
fn clean_snapshots_dir(vfs: &dyn Vfs, dir: &Path, live: &[super::pins::Pin]) -> Result<()> {
    let sdir = dir.join(super::pins::SNAPSHOTS_DIR);
    for (name, path) in list_dir(vfs, &sdir)? {
        let keep =
            name == super::pins::PINS_FILE || live.iter().any(|p| p.wal_copy && p.id == name);
        if !keep {
            remove_all(vfs, &path)?;
        }
    }
    Ok(())
}
