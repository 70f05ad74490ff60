//! Offline integrity check of a data directory or snapshot (`strata check`).
//!
//! Opening a data directory only reads what recovery needs: the newest manifest of each shard,
//! the framing of the parts it lists, WAL records after the checkpoint. Damage elsewhere (the
//! previous manifest epoch kept for crash safety, a WAL segment wholly below the checkpoint, the
//! body of a part column) stays silent until the day it matters. [`check_dir`] reads every file
//! against every check the format has, never writes, never takes the lock, and names each
//! damaged file with what is wrong. Things that are not damage but that the next read-write open
//! would remove (unpublished parts, scratch files) are reported as notes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest;
use crate::meta_files::{self, Checkpoint};
use crate::part::{self, parse_part_dir_name};
use crate::record;
use crate::vfs::RealVfs;
use crate::wal;

/// One finding: a file (relative to the checked directory) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: PathBuf,
    pub detail: String,
}

/// The outcome of [`check_dir`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub files_checked: u64,
    pub bytes_checked: u64,
    /// Damaged files: any entry here means the directory is not intact.
    pub damaged: Vec<Finding>,
    /// Not damage: leftovers a read-write open removes, files the engine does not know.
    pub notes: Vec<Finding>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

struct Checker<'a> {
    root: &'a Path,
    report: CheckReport,
    /// Files (by path under the root) whose content was already checked against a digest as
    /// they were written (a restore verifies every file as it downloads it): a part file whose
    /// recorded digest equals it is not read and hashed again.
    verified: Option<&'a HashMap<PathBuf, [u8; 32]>>,
}

impl Checker<'_> {
    fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(self.root).unwrap_or(p).to_path_buf()
    }

    fn damaged(&mut self, p: &Path, detail: impl Into<String>) {
        let path = self.rel(p);
        self.report.damaged.push(Finding {
            path,
            detail: detail.into(),
        });
    }

    fn note(&mut self, p: &Path, detail: impl Into<String>) {
        let path = self.rel(p);
        self.report.notes.push(Finding {
            path,
            detail: detail.into(),
        });
    }

    /// Records an engine error against the file it names (or `fallback`).
    fn error(&mut self, fallback: &Path, e: Error) {
        let (path, detail) = match &e {
            Error::Corrupt { path, detail } => (path.clone(), detail.clone()),
            Error::Io { path, source } => (path.clone(), format!("cannot read: {source}")),
            Error::UnsupportedVersion { path, .. } => (path.clone(), e.to_string()),
            _ => (fallback.to_path_buf(), e.to_string()),
        };
        self.damaged(&path, detail);
    }

    fn counted(&mut self, p: &Path) {
        self.report.files_checked += 1;
        self.report.bytes_checked += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    }
}

/// Sorted entries of a directory; a missing directory is empty.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let is_dir = ent
            .file_type()
            .map_err(|e| Error::io(ent.path(), e))?
            .is_dir();
        out.push((
            ent.file_name().to_string_lossy().into_owned(),
            ent.path(),
            is_dir,
        ));
    }
    out.sort();
    Ok(out)
}

/// Checks every file of the data directory (or snapshot) `dir` without modifying anything.
/// Fails only when `dir` itself cannot be read; damage is reported in the [`CheckReport`].
pub fn check_dir(dir: &Path) -> Result<CheckReport> {
    check_dir_with(dir, None)
}

/// [`check_dir`] of a directory whose files were verified as they were written, each against
/// the digest in `verified` (paths relative to `dir`). A part file is hashed again only when
/// its digest in `meta.bin` differs from the verified one (or none was given); everything
/// else is checked as by [`check_dir`].
pub fn check_verified_dir(
    dir: &Path,
    verified: &HashMap<PathBuf, [u8; 32]>,
) -> Result<CheckReport> {
    check_dir_with(dir, Some(verified))
}

fn check_dir_with(
    dir: &Path,
    verified: Option<&HashMap<PathBuf, [u8; 32]>>,
) -> Result<CheckReport> {
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut c = Checker {
        root: dir,
        report: CheckReport {
            dir: dir.to_path_buf(),
            ..Default::default()
        },
        verified,
    };
    check_tree(&mut c, dir)?;
    Ok(c.report)
}

/// One data directory (the root, or a snapshot inside it).
fn check_tree(c: &mut Checker<'_>, dir: &Path) -> Result<()> {
    let engine = dir.join(meta_files::ENGINE_FILE);
    if engine.exists() {
        c.counted(&engine);
        if let Err(e) = meta_files::read_engine(&RealVfs, dir) {
            c.error(&engine, e);
        }
    } else {
        c.damaged(
            &engine,
            "missing: not a Strata data directory, or its identity is lost",
        );
    }
    let ckpt_path = dir.join(meta_files::CHECKPOINT_FILE);
    let ckpt = if ckpt_path.exists() {
        c.counted(&ckpt_path);
        match meta_files::read_checkpoint(&RealVfs, dir) {
            Ok(k) => k,
            Err(e) => {
                c.error(&ckpt_path, e);
                None
            }
        }
    } else {
        None
    };
    for (name, path, is_dir) in entries(dir)? {
        match (name.as_str(), is_dir) {
            ("ENGINE" | "CHECKPOINT" | "LOCK", false) => {}
            ("wal", true) => check_wal(c, &path, ckpt.as_ref())?,
            ("data", true) => check_data(c, &path)?,
            ("snapshots", true) => check_pins(c, &path)?,
            ("tmp", true) => {
                if !entries(&path)?.is_empty() {
                    c.note(
                        &path,
                        "scratch files of an interrupted flush or merge (removed at open)",
                    );
                }
            }
            _ => c.note(&path, "not a file of the data directory format"),
        }
    }
    Ok(())
}

fn check_data(c: &mut Checker<'_>, data: &Path) -> Result<()> {
    for (group, gpath, gdir) in entries(data)? {
        if !gdir {
            c.note(&gpath, "not a group directory");
            continue;
        }
        for (seg_name, spath, sdir) in entries(&gpath)? {
            let segment = seg_name
                .strip_prefix("seg-")
                .and_then(|s| s.parse::<i64>().ok());
            let Some(segment) = segment.filter(|_| sdir) else {
                c.note(&spath, "not a segment directory");
                continue;
            };
            for (shard_name, path, is_dir) in entries(&spath)? {
                let shard = shard_name
                    .strip_prefix("shard-")
                    .and_then(|s| s.parse::<u32>().ok());
                match shard.filter(|_| is_dir) {
                    Some(shard) => check_shard(c, &path, &group, segment, shard)?,
                    None => c.note(&path, "not a shard directory"),
                }
            }
        }
    }
    Ok(())
}

/// Every manifest epoch present, every part the newest one lists (all files against the
/// digests in `meta.bin`, then the structural checks of opening it), and what else is there.
fn check_shard(
    c: &mut Checker<'_>,
    dir: &Path,
    group: &str,
    segment: i64,
    shard: u32,
) -> Result<()> {
    let manifests = manifest::list(&RealVfs, dir)?;
    let mut newest: Option<manifest::Manifest> = None;
    let n = manifests.len();
    for (i, (_, path)) in manifests.iter().enumerate() {
        c.counted(path);
        match manifest::read(&RealVfs, path) {
            Ok(m) => {
                if m.group != group || m.segment_start != segment || m.shard != shard {
                    c.damaged(path, "group, segment or shard does not match its directory");
                } else if i + 1 == n {
                    newest = Some(m);
                }
            }
            Err(e) => c.error(path, e),
        }
    }
    if n == 0 {
        c.note(dir, "shard without a manifest (removed at open)");
    }
    let live: Vec<u64> = newest.as_ref().map(|m| m.parts.clone()).unwrap_or_default();
    for id in &live {
        let pdir = dir.join(part::part_dir_name(*id));
        if !pdir.is_dir() {
            c.damaged(&pdir, "part listed in the manifest is missing");
            continue;
        }
        check_part(c, &pdir, *id, group, segment, shard);
    }
    let epochs: Vec<String> = manifests
        .iter()
        .map(|(e, _)| manifest::file_name(*e))
        .collect();
    for (name, path, is_dir) in entries(dir)? {
        if epochs.contains(&name) {
            continue;
        }
        match parse_part_dir_name(&name).filter(|_| is_dir) {
            Some(id) if live.contains(&id) => {}
            Some(_) => c.note(&path, "part not in the newest manifest (removed at open)"),
            None => c.note(&path, "not a part or manifest (removed at open)"),
        }
    }
    Ok(())
}

fn check_part(c: &mut Checker<'_>, pdir: &Path, id: u64, group: &str, segment: i64, shard: u32) {
    for f in [part::META_FILE, part::INDEX_FILE, part::DATA_FILE] {
        c.counted(&pdir.join(f));
    }
    let checked = match verified_part(c, pdir) {
        Some(meta) => Ok(meta),
        None => part::verify_part_files(&RealVfs, pdir),
    };
    match checked {
        Ok(meta) => {
            if meta.part_id != id
                || meta.group != group
                || meta.segment != segment
                || meta.shard != shard
            {
                c.damaged(
                    &pdir.join(part::META_FILE),
                    "part identity does not match its manifest and directory",
                );
            }
            let listed: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
            for f in [part::INDEX_FILE, part::DATA_FILE] {
                if !listed.contains(&f) {
                    c.damaged(&pdir.join(part::META_FILE), format!("no digest for {f}"));
                }
            }
        }
        Err(e) => c.error(&pdir.join(part::META_FILE), e),
    }
}

/// Every frame of every segment: header and payload CRCs, record decoding, and LSN continuity
/// (LSNs are dense, so a gap means frames were lost, e.g. a sealed segment cut at a frame
/// boundary). The oldest segment must reach back to the checkpoint.
/// `snapshots/`: the pin file and the WAL copies of live snapshots.
fn check_pins(c: &mut Checker<'_>, dir: &Path) -> Result<()> {
    for (name, path, is_dir) in entries(dir)? {
        if name == "PINS" && !is_dir {
            c.counted(&path);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if let Err(e) = crate::engine::decode_pins(&path, &bytes) {
                c.note(&path, format!("damaged pin file (ignored at open): {e}"));
            }
        } else if is_dir {
            c.note(&path, "WAL copy of a snapshot (kept while its pin lives)");
        } else {
            c.note(&path, "not a file of the data directory format");
        }
    }
    Ok(())
}

fn check_wal(c: &mut Checker<'_>, dir: &Path, ckpt: Option<&Checkpoint>) -> Result<()> {
    let segs = wal::list_segments(&RealVfs, dir)?;
    let names: Vec<PathBuf> = segs.iter().map(|(_, p)| p.clone()).collect();
    for (name, path, _) in entries(dir)? {
        if !names.contains(&path) {
            c.note(&path, format!("{name} is not a WAL segment"));
        }
    }
    let ckpt_lsn = ckpt.map_or(0, |k| k.lsn);
    // Last LSN seen so far; `None` until the first frame.
    let mut last: Option<u64> = None;
    // After a damaged segment, continuity into the next one cannot be judged.
    let mut unknown = false;
    let n = segs.len();
    for (i, (_, path)) in segs.iter().enumerate() {
        c.counted(path);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                c.error(path, Error::io(path, e));
                unknown = true;
                continue;
            }
        };
        let is_last = i + 1 == n;
        let mut gaps: Vec<String> = Vec::new();
        let mut bad_record: Option<String> = None;
        let min = last.unwrap_or(0);
        let mut on_frame = |f: wal::Frame<'_>| -> Result<()> {
            match last {
                _ if unknown => unknown = false,
                Some(l) if f.lsn != l + 1 => {
                    gaps.push(format!("records {}..{} missing", l + 1, f.lsn - 1));
                }
                None if f.lsn > ckpt_lsn + 1 => gaps.push(format!(
                    "records {}..{} after the checkpoint are missing",
                    ckpt_lsn + 1,
                    f.lsn - 1
                )),
                _ => {}
            }
            last = Some(f.lsn);
            if bad_record.is_none()
                && let Err(e) = record::decode(f.kind, f.payload)
            {
                bad_record = Some(format!("WAL record {}: {e}", f.lsn));
            }
            Ok(())
        };
        match wal::scan_segment(path, &bytes, is_last, min, &mut on_frame) {
            Ok(out) if out.torn => c.damaged(
                path,
                format!(
                    "torn tail: {} bytes after offset {} are not whole frames (expected only \
                     after a crash; a read-write open cuts them off)",
                    bytes.len() as u64 - out.valid_len,
                    out.valid_len
                ),
            ),
            Ok(_) => {}
            Err(e) => {
                c.error(path, e);
                unknown = true;
                gaps.clear();
            }
        }
        for g in gaps {
            c.damaged(path, g);
        }
        if let Some(b) = bad_record {
            c.damaged(path, b);
        }
    }
    Ok(())
}

/// The part's metadata when every file it lists was verified as written against the very
/// digest `meta.bin` records and has the recorded size (then nothing is read again but
/// `meta.bin`; the series table is parsed when the engine opens the part). `None`: check it
/// by reading.
fn verified_part(c: &Checker<'_>, pdir: &Path) -> Option<part::PartMeta> {
    let verified = c.verified?;
    let meta = part::PartMeta::read(&RealVfs, pdir).ok()?;
    let rel = c.rel(pdir);
    let all = meta.files.iter().all(|f| {
        !f.name.contains('/')
            && matches!(
                (verified.get(&rel.join(&f.name)), part::parse_digest(&f.blake3)),
                (Some(v), Some(d)) if *v == d
            )
            && std::fs::metadata(pdir.join(&f.name)).is_ok_and(|m| m.len() == f.size)
    });
    all.then_some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineOptions, FieldValue, Point};

    fn make(dir: &Path) {
        let mut o = EngineOptions::new(dir);
        o.background = false;
        let e = Engine::open(o).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let base = (now / 86_400 - 1) * 86_400 * 1_000_000_000;
        let pts = |a: i64, b: i64| -> Vec<Point> {
            (a..b)
                .map(|i| Point {
                    measure: "m".into(),
                    tags: vec![("h".into(), format!("h{}", i % 3))],
                    fields: vec![("v".into(), FieldValue::I64(i))],
                    timestamp: base + i * 1_000_000_000,
                })
                .collect()
        };
        e.write("g", &pts(0, 100)).unwrap();
        e.flush().unwrap();
        e.write("g", &pts(100, 150)).unwrap();
        e.write("g", &pts(150, 160)).unwrap();
        e.close().unwrap();
    }

    fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for (_, p, is_dir) in entries(dir).unwrap() {
            if is_dir {
                files(root, &p, out);
            } else if !p.ends_with("LOCK") {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }

    #[test]
    fn clean_dir_passes() {
        let d = tempfile::tempdir().unwrap();
        make(d.path());
        let r = check_dir(d.path()).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert!(r.files_checked >= 6, "{r:#?}");
    }

    #[test]
    fn every_flip_and_truncation_is_named() {
        let seed = tempfile::tempdir().unwrap();
        make(seed.path());
        let mut all = Vec::new();
        files(seed.path(), seed.path(), &mut all);
        assert!(all.len() >= 6);
        for rel in &all {
            let len = std::fs::metadata(seed.path().join(rel)).unwrap().len() as usize;
            // A flip in the middle, and a cut one byte short of the end.
            for damage in 0..2 {
                let d = tempfile::tempdir().unwrap();
                let mut copied = Vec::new();
                files(seed.path(), seed.path(), &mut copied);
                for f in &copied {
                    let to = d.path().join(f);
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    std::fs::copy(seed.path().join(f), &to).unwrap();
                }
                let p = d.path().join(rel);
                let mut b = std::fs::read(&p).unwrap();
                if damage == 0 {
                    b[len / 2] ^= 0x40;
                } else {
                    b.truncate(len - 1);
                }
                std::fs::write(&p, b).unwrap();
                let r = check_dir(d.path()).unwrap();
                assert!(
                    r.damaged.iter().any(|f| &f.path == rel),
                    "{} damage {damage} not named: {r:#?}",
                    rel.display()
                );
            }
        }
    }
}
