//! Write-ahead log: numbered segment files of CRC-framed records, each carrying its LSN.
//!
//! Layout (normative: `docs/format/wal.md`):
//! - segment header (28 bytes): `magic "STRATWAL" | u32 version | u32 flags=0 | u64 seq |
//!   u32 crc32c(previous 24 bytes)`;
//! - v2 frame (written): `u32 payload_len | u64 lsn | u8 kind | u8 flags | u16 reserved=0 |
//!   i64 commit_time_ns | u32 crc32c(payload) | u32 crc32c(previous 28 bytes) | payload`;
//! - v1 frame (read only): the same without `commit_time_ns` (24-byte header).
//!
//! The version is per segment: a data directory may hold v1 segments (written before the
//! upgrade) followed by v2 ones.
//!
//! Recovery reads frames in order. In the last segment a frame that runs past the end of the
//! file, or a damaged frame followed only by zeros or by nothing, is a torn tail: it is cut off.
//! Anything else that fails a check is corruption and is reported with the file name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::fsync_dir;
use crate::vfs::{Vfs, VfsFile};

pub const MAGIC: &[u8; 8] = b"STRATWAL";
/// The version written. Versions 1 and 2 are read.
pub const VERSION: u32 = 2;
pub const HEADER_LEN: usize = 28;
/// Frame header length of the version written (v2).
pub const FRAME_HEADER_LEN: usize = 32;
/// Frame header length of v1 segments (no commit time).
pub const FRAME_HEADER_LEN_V1: usize = 24;

/// Frame header length of a segment version (`None` for an unknown version).
pub fn frame_header_len(version: u32) -> Option<usize> {
    match version {
        1 => Some(FRAME_HEADER_LEN_V1),
        2 => Some(FRAME_HEADER_LEN),
        _ => None,
    }
}
/// Rotate to a new segment once the active one is this large.
pub const SEGMENT_TARGET: u64 = 64 << 20;
/// No single record may exceed this (guards allocations when reading hostile files).
pub const MAX_PAYLOAD: usize = 1 << 30;

pub fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

pub fn segment_header(seq: u64) -> [u8; HEADER_LEN] {
    segment_header_version(seq, VERSION)
}

/// A segment header of a given version (v1 only for tests and fixtures of older data).
pub fn segment_header_version(seq: u64, version: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Append one v2 frame to `out`; `commit_time_ns` is the wall-clock time (Unix ns) at which the
/// batch was committed.
pub fn encode_frame(lsn: u64, kind: u8, commit_time_ns: i64, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&commit_time_ns.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let hcrc = crc32c::crc32c(&out[start..start + 28]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Append one v1 frame (what the previous release wrote: `restore --format-version 1`).
pub fn encode_frame_v1(lsn: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let hcrc = crc32c::crc32c(&out[start..start + 20]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// One decoded frame.
pub struct Frame<'a> {
    /// Offset just past this frame in its segment.
    pub end: usize,
    pub lsn: u64,
    pub kind: u8,
    /// Commit wall-clock time (Unix ns); `None` in v1 segments, which did not record it.
    pub commit_time_ns: Option<i64>,
    pub payload: &'a [u8],
}

/// The version of a segment whose header passed [`scan_segment`]'s checks.
pub fn segment_version(bytes: &[u8]) -> Option<u32> {
    let v = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    frame_header_len(v).map(|_| v)
}

/// Sealed or active segment bookkeeping.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    pub seq: u64,
    pub path: PathBuf,
    /// LSN of the first and last frame; `None` while empty.
    pub lsns: Option<(u64, u64)>,
    pub size: u64,
    /// Format version of the segment's header.
    pub version: u32,
}

/// List `wal/` segments sorted by sequence number.
pub fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match vfs.read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for ent in entries {
        if let Some(seq) = parse_segment_name(&ent.name) {
            out.push((seq, dir.join(&ent.name)));
        }
    }
    out.sort();
    Ok(out)
}

/// Result of scanning one segment.
pub struct ScanOutcome {
    /// Byte length of the valid prefix (frames that passed every check).
    pub valid_len: u64,
    /// The file had a torn tail after `valid_len`.
    pub torn: bool,
    pub lsns: Option<(u64, u64)>,
}

/// Read every frame of a segment, calling `f` for each. `is_last` enables torn-tail handling.
/// `min_lsn` is the LSN every frame must exceed (monotonicity across segments).
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    is_last: bool,
    mut min_lsn: u64,
    f: &mut dyn FnMut(Frame<'_>) -> Result<()>,
) -> Result<ScanOutcome> {
    let corrupt = |off: usize, what: &str| Error::corrupt(path, format!("{what} at offset {off}"));
    let all_zero = |from: usize| bytes[from..].iter().all(|&b| b == 0);
    let version = segment_version(bytes);
    if bytes.len() < HEADER_LEN
        || version.is_none()
        || bytes[..HEADER_LEN] != segment_header_from(bytes)
    {
        // A crash between creating a segment and writing its header leaves a short or zeroed
        // file; only acceptable for the newest segment.
        if is_last && (bytes.len() < HEADER_LEN || all_zero(0)) {
            return Ok(ScanOutcome {
                valid_len: 0,
                torn: true,
                lsns: None,
            });
        }
        return Err(corrupt(0, "bad WAL segment header"));
    }
    let version = version.unwrap_or(VERSION);
    let fh = frame_header_len(version).unwrap_or(FRAME_HEADER_LEN);
    let mut off = HEADER_LEN;
    let mut lsns: Option<(u64, u64)> = None;
    while off < bytes.len() {
        let rest = bytes.len() - off;
        let torn_here = |reason: &str| -> Result<ScanOutcome> {
            if is_last {
                Ok(ScanOutcome {
                    valid_len: off as u64,
                    torn: true,
                    lsns,
                })
            } else {
                Err(corrupt(off, reason))
            }
        };
        if rest < fh {
            return torn_here("truncated frame header");
        }
        let h = &bytes[off..off + fh];
        let crc_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let hcrc = crc_at(fh - 4);
        if crc32c::crc32c(&h[..fh - 4]) != hcrc {
            // A torn append leaves a prefix of the frame and then zeros (sectors the power cut
            // never wrote, possibly inside the header itself). Nothing but zeros after the
            // header means no acknowledged frame can follow: a torn tail, not corruption.
            if all_zero(off) || all_zero(off + fh) {
                return torn_here("zeroed tail");
            }
            return Err(corrupt(off, "WAL frame header checksum mismatch"));
        }
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let lsn = u64::from_le_bytes(h[4..12].try_into().unwrap_or_default());
        let kind = h[12];
        let commit_time_ns =
            (version >= 2).then(|| i64::from_le_bytes(h[16..24].try_into().unwrap_or_default()));
        let pcrc = crc_at(fh - 8);
        if len > MAX_PAYLOAD {
            return Err(corrupt(off, "WAL frame length out of range"));
        }
        let end = off + fh + len;
        if end > bytes.len() {
            return torn_here("frame runs past end of file");
        }
        let payload = &bytes[off + fh..end];
        if crc32c::crc32c(payload) != pcrc {
            // A damaged last frame is indistinguishable from a torn write.
            if end == bytes.len() || all_zero(end) {
                return torn_here("payload checksum mismatch in last frame");
            }
            return Err(corrupt(off, "WAL payload checksum mismatch"));
        }
        if lsn <= min_lsn {
            return Err(corrupt(off, "WAL LSN not increasing"));
        }
        min_lsn = lsn;
        lsns = Some((lsns.map_or(lsn, |l| l.0), lsn));
        f(Frame {
            end,
            lsn,
            kind,
            commit_time_ns,
            payload,
        })?;
        off = end;
    }
    Ok(ScanOutcome {
        valid_len: off as u64,
        torn: false,
        lsns,
    })
}

/// The header a segment with this file's sequence number and version should have (compares
/// all 28 bytes).
fn segment_header_from(bytes: &[u8]) -> [u8; HEADER_LEN] {
    let seq = bytes
        .get(16..24)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    segment_header_version(seq, segment_version(bytes).unwrap_or(VERSION))
}

fn create_segment(vfs: &dyn Vfs, dir: &Path, seq: u64) -> Result<(Box<dyn VfsFile>, SegmentMeta)> {
    let path = dir.join(segment_name(seq));
    let mut file = vfs.create(&path).map_err(|e| Error::io(&path, e))?;
    let started = (|| {
        file.write_all(&segment_header(seq))
            .map_err(|e| Error::io(&path, e))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        fsync_dir(vfs, dir)
    })();
    if let Err(e) = started {
        // The writer goes on with its current segment (see `append`): a stray empty segment
        // after it would make that segment's torn tail look like corruption at open.
        let _ = vfs.remove_file(&path);
        return Err(e);
    }
    let meta = SegmentMeta {
        seq,
        path,
        lsns: None,
        size: HEADER_LEN as u64,
        version: VERSION,
    };
    Ok((file, meta))
}

/// Appends frames to the active segment and rotates segments. Owned by whoever holds the WAL
/// mutex (the group-commit leader).
pub struct WalWriter {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    file: Box<dyn VfsFile>,
    active: SegmentMeta,
    sealed: Vec<SegmentMeta>,
}

impl WalWriter {
    /// Continue after recovery: `segments` are the recovered ones (the last becomes active,
    /// already truncated to its valid length). Creates a first segment when there is none.
    pub fn resume(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        mut segments: Vec<SegmentMeta>,
    ) -> Result<WalWriter> {
        let active = match segments.pop() {
            Some(a) if a.size >= HEADER_LEN as u64 => a,
            // A newest segment whose header never made it to disk is started afresh.
            Some(a) => return Self::create(vfs, dir, a.seq, segments),
            None => return Self::create(vfs, dir, 1, Vec::new()),
        };
        if active.version != VERSION {
            // A segment of an older version (written before an upgrade) is sealed as it is:
            // frames of this version go to a new segment with this version's header.
            let seq = active.seq + 1;
            segments.push(active);
            return Self::create(vfs, dir, seq, segments);
        }
        let file = vfs
            .open_append(&active.path)
            .map_err(|e| Error::io(&active.path, e))?;
        Ok(WalWriter {
            vfs,
            dir: dir.to_path_buf(),
            file,
            active,
            sealed: segments,
        })
    }

    fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        seq: u64,
        sealed: Vec<SegmentMeta>,
    ) -> Result<WalWriter> {
        let (file, active) = create_segment(&*vfs, dir, seq)?;
        Ok(WalWriter {
            vfs,
            dir: dir.to_path_buf(),
            file,
            active,
            sealed,
        })
    }

    /// Write frames covering `[first_lsn, last_lsn]`.
    pub fn append(&mut self, bytes: &[u8], first_lsn: u64, last_lsn: u64) -> Result<()> {
        if self.active.size >= SEGMENT_TARGET {
            match self.rotate() {
                // No descriptor for the next segment: nothing was lost (the sealed one was
                // synced, the new one not started), so keep appending to the current segment
                // and rotate on a later append rather than refuse the write.
                Err(e) if e.is_descriptor_exhaustion() => {
                    tracing::warn!(error = %e, "cannot start a new WAL segment; appending to the current one");
                }
                r => r?,
            }
        }
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.active.path, e))?;
        self.active.size += bytes.len() as u64;
        self.active.lsns = Some((self.active.lsns.map_or(first_lsn, |l| l.0), last_lsn));
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.active.path, e))
    }

    /// Seal the active segment (fsynced) and start the next one. A no-op on an empty segment.
    pub fn rotate(&mut self) -> Result<()> {
        if self.active.lsns.is_none() {
            return Ok(());
        }
        self.sync()?;
        let (file, meta) = create_segment(&*self.vfs, &self.dir, self.active.seq + 1)?;
        self.file = file;
        let old = std::mem::replace(&mut self.active, meta);
        self.sealed.push(old);
        Ok(())
    }

    /// Delete sealed segments whose every record is at or below `lsn`.
    pub fn delete_through(&mut self, lsn: u64) -> Result<()> {
        let mut keep = Vec::new();
        for s in std::mem::take(&mut self.sealed) {
            match s.lsns {
                Some((_, last)) if last > lsn => keep.push(s),
                _ => {
                    crate::format::remove_all(&*self.vfs, &s.path)?;
                }
            }
        }
        self.sealed = keep;
        Ok(())
    }

    /// Sealed segments plus the active one (with its current size).
    pub fn segments(&self) -> Vec<SegmentMeta> {
        let mut v = self.sealed.clone();
        v.push(self.active.clone());
        v
    }

    pub fn active_path(&self) -> &Path {
        &self.active.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path, bytes: &[u8], last: bool) -> Result<(Vec<u64>, ScanOutcome)> {
        let mut v = Vec::new();
        let out = scan_segment(path, bytes, last, 0, &mut |f| {
            v.push(f.lsn);
            Ok(())
        })?;
        Ok((v, out))
    }

    fn segment_with(n: u64) -> Vec<u8> {
        let mut b = segment_header(1).to_vec();
        for lsn in 1..=n {
            encode_frame(
                lsn,
                1,
                1000 + lsn as i64,
                format!("payload {lsn}").as_bytes(),
                &mut b,
            );
        }
        b
    }

    fn segment_v1_with(n: u64) -> Vec<u8> {
        let mut b = segment_header_version(1, 1).to_vec();
        for lsn in 1..=n {
            encode_frame_v1(lsn, 1, format!("payload {lsn}").as_bytes(), &mut b);
        }
        b
    }

    #[test]
    fn v2_frames_carry_their_commit_time_and_v1_frames_still_read() {
        let mut times = Vec::new();
        scan_segment(Path::new("w"), &segment_with(3), false, 0, &mut |f| {
            times.push(f.commit_time_ns);
            Ok(())
        })
        .unwrap();
        assert_eq!(times, vec![Some(1001), Some(1002), Some(1003)]);
        let v1 = segment_v1_with(3);
        let mut seen = Vec::new();
        let out = scan_segment(Path::new("w"), &v1, false, 0, &mut |f| {
            seen.push((f.lsn, f.commit_time_ns, f.payload.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(out.valid_len, v1.len() as u64);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2], (3, None, b"payload 3".to_vec()));
        // A version this build does not know is corruption, not a torn tail.
        let mut v9 = segment_with(1);
        v9[8] = 9;
        let crc = crc32c::crc32c(&v9[..24]);
        v9[24..28].copy_from_slice(&crc.to_le_bytes());
        assert!(collect(Path::new("w"), &v9, true).is_err());
    }

    #[test]
    fn torn_tail_of_a_v1_segment_is_cut() {
        let b = segment_v1_with(3);
        for cut in (HEADER_LEN + 1)..b.len() {
            let (lsns, out) = collect(Path::new("w"), &b[..cut], true).unwrap();
            assert!(lsns.len() < 3);
            assert!(out.torn || out.valid_len == cut as u64);
        }
    }

    /// A [`crate::vfs::SimVfs`] on which creating a file fails with `EMFILE` while `full`.
    #[derive(Debug)]
    struct NoNewFiles {
        inner: crate::vfs::SimVfs,
        full: std::sync::atomic::AtomicBool,
    }

    impl NoNewFiles {
        fn emfile(&self) -> std::io::Result<()> {
            if self.full.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
            Ok(())
        }
    }

    impl Vfs for NoNewFiles {
        fn open(&self, p: &Path) -> std::io::Result<Box<dyn VfsFile>> {
            self.inner.open(p)
        }
        fn create(&self, p: &Path) -> std::io::Result<Box<dyn VfsFile>> {
            self.emfile()?;
            self.inner.create(p)
        }
        fn create_new(&self, p: &Path) -> std::io::Result<Box<dyn VfsFile>> {
            self.emfile()?;
            self.inner.create_new(p)
        }
        fn open_append(&self, p: &Path) -> std::io::Result<Box<dyn VfsFile>> {
            self.inner.open_append(p)
        }
        fn open_write(&self, p: &Path) -> std::io::Result<Box<dyn VfsFile>> {
            self.inner.open_write(p)
        }
        fn read(&self, p: &Path) -> std::io::Result<Vec<u8>> {
            self.inner.read(p)
        }
        fn exists(&self, p: &Path) -> bool {
            self.inner.exists(p)
        }
        fn is_dir(&self, p: &Path) -> std::io::Result<bool> {
            self.inner.is_dir(p)
        }
        fn create_dir(&self, p: &Path) -> std::io::Result<()> {
            self.inner.create_dir(p)
        }
        fn create_dir_all(&self, p: &Path) -> std::io::Result<()> {
            self.inner.create_dir_all(p)
        }
        fn read_dir(&self, p: &Path) -> std::io::Result<Vec<crate::vfs::DirEntry>> {
            self.inner.read_dir(p)
        }
        fn rename(&self, a: &Path, b: &Path) -> std::io::Result<()> {
            self.inner.rename(a, b)
        }
        fn remove_file(&self, p: &Path) -> std::io::Result<()> {
            self.inner.remove_file(p)
        }
        fn remove_dir_all(&self, p: &Path) -> std::io::Result<()> {
            self.inner.remove_dir_all(p)
        }
        fn hard_link(&self, a: &Path, b: &Path) -> std::io::Result<()> {
            self.inner.hard_link(a, b)
        }
        fn sync_dir(&self, p: &Path) -> std::io::Result<()> {
            self.inner.sync_dir(p)
        }
        fn try_lock(&self, p: &Path) -> std::io::Result<Option<crate::vfs::LockGuard>> {
            self.inner.try_lock(p)
        }
    }

    #[test]
    fn a_full_segment_that_cannot_rotate_for_want_of_descriptors_takes_more_frames() {
        let vfs = Arc::new(NoNewFiles {
            inner: crate::vfs::SimVfs::new(),
            full: std::sync::atomic::AtomicBool::new(false),
        });
        let dir = Path::new("/w");
        vfs.create_dir_all(dir).unwrap();
        let mut w = WalWriter::create(vfs.clone(), dir, 1, Vec::new()).unwrap();
        let frame = |lsn: u64| {
            let mut b = Vec::new();
            encode_frame(lsn, 1, 0, format!("payload {lsn}").as_bytes(), &mut b);
            b
        };
        w.append(&frame(1), 1, 1).unwrap();
        // As if the segment had reached its target size.
        w.active.size = SEGMENT_TARGET;
        vfs.full.store(true, std::sync::atomic::Ordering::SeqCst);
        w.append(&frame(2), 2, 2).unwrap();
        w.sync().unwrap();
        assert_eq!(w.segments().len(), 1, "rotated without a descriptor?");
        // No half-started next segment is left behind.
        assert!(!vfs.exists(&dir.join(segment_name(2))));
        vfs.full.store(false, std::sync::atomic::Ordering::SeqCst);
        w.append(&frame(3), 3, 3).unwrap();
        w.sync().unwrap();
        assert_eq!(w.segments().len(), 2, "rotates once it can");
        let first = vfs.read(&dir.join(segment_name(1))).unwrap();
        let (lsns, _) = collect(&dir.join(segment_name(1)), &first, false).unwrap();
        assert_eq!(lsns, vec![1, 2]);
    }

    #[test]
    fn frames_round_trip() {
        let b = segment_with(5);
        let (lsns, out) = collect(Path::new("w"), &b, false).unwrap();
        assert_eq!(lsns, vec![1, 2, 3, 4, 5]);
        assert!(!out.torn);
        assert_eq!(out.valid_len, b.len() as u64);
    }

    #[test]
    fn torn_tail_of_last_segment_is_cut() {
        let b = segment_with(3);
        for cut in (HEADER_LEN + 1)..b.len() {
            let (lsns, out) = collect(Path::new("w"), &b[..cut], true).unwrap();
            assert!(lsns.len() < 3);
            assert!(out.torn || out.valid_len == cut as u64);
            // The same cut in an older segment is corruption.
            if out.torn {
                assert!(collect(Path::new("w"), &b[..cut], false).is_err());
            }
        }
        let mut z = b.clone();
        z.extend_from_slice(&[0u8; 100]);
        let (lsns, out) = collect(Path::new("w"), &z, true).unwrap();
        assert_eq!(lsns.len(), 3);
        assert!(out.torn);
        assert_eq!(out.valid_len, b.len() as u64);
    }

    #[test]
    fn frame_header_torn_by_a_zeroed_sector_is_a_torn_tail() {
        // Power-loss seed 10118: the new frame's first bytes reached the disk, the rest of its
        // header fell in a sector that reads back as zeros.
        let b = segment_with(3);
        let mut next = Vec::new();
        encode_frame(4, 1, 1004, b"payload 4", &mut next);
        for kept in 1..FRAME_HEADER_LEN {
            let mut t = b.clone();
            t.extend_from_slice(&next[..kept]);
            t.extend_from_slice(&[0u8; 40]);
            let (lsns, out) = collect(Path::new("w"), &t, true).unwrap();
            assert_eq!(lsns, vec![1, 2, 3], "kept {kept}");
            assert!(out.torn && out.valid_len == b.len() as u64);
            assert!(collect(Path::new("w"), &t, false).is_err());
        }
    }

    #[test]
    fn flipped_byte_in_the_middle_is_corruption_naming_the_file() {
        let b = segment_with(5);
        // Flip every byte of every frame except the last one: always an error.
        let last_frame_start = b.len() - (FRAME_HEADER_LEN + "payload 5".len());
        for i in 0..last_frame_start {
            let mut c = b.clone();
            c[i] ^= 0x01;
            let err = match collect(Path::new("wal/0001.wal"), &c, true) {
                Err(e) => e,
                Ok((l, _)) => panic!("flip at {i} not detected: {l:?}"),
            };
            assert!(err.to_string().contains("wal/0001.wal"), "{err}");
        }
    }
}
