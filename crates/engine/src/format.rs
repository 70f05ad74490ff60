//! Byte-level helpers shared by every persisted file: the common framing of small metadata files
//! (ENGINE, CHECKPOINT, MANIFEST, part `meta.bin`), atomic publication and a little-endian /
//! LEB128 writer and reader that never panic on hostile input.
//!
//! A framed file is `magic[8] | u32 version | u32 payload_len | payload | u32 crc32c` where the
//! CRC covers every byte before it (see `docs/format/README.md`).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::vfs::Vfs;

/// Bytes of the framing around a payload: magic, version, length, trailing CRC.
pub const FRAME_OVERHEAD: usize = 8 + 4 + 4 + 4;

/// Wrap `payload` in the common framing.
pub fn frame(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + FRAME_OVERHEAD);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Check the framing of `bytes` (read from `path`) and return the payload.
pub fn unframe<'a>(
    path: &Path,
    magic: &[u8; 8],
    max_version: u32,
    bytes: &'a [u8],
) -> Result<&'a [u8]> {
    if bytes.len() < FRAME_OVERHEAD {
        return Err(Error::corrupt(path, "file too short for its header"));
    }
    if &bytes[..8] != magic {
        return Err(Error::corrupt(path, "bad magic"));
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().unwrap_or_default());
    if crc32c::crc32c(&bytes[..body_end]) != stored {
        return Err(Error::corrupt(path, "checksum mismatch"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version == 0 || version > max_version {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: max_version,
        });
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default()) as usize;
    if 16 + len != body_end {
        return Err(Error::corrupt(
            path,
            "payload length does not match file size",
        ));
    }
    Ok(&bytes[16..body_end])
}

/// Read and unframe a whole file.
pub fn read_framed(
    vfs: &dyn Vfs,
    path: &Path,
    magic: &[u8; 8],
    max_version: u32,
) -> Result<Vec<u8>> {
    let bytes = vfs.read(path).map_err(|e| Error::io(path, e))?;
    unframe(path, magic, max_version, &bytes).map(<[u8]>::to_vec)
}

/// Write `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync the directory.
pub fn write_atomic(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = vfs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    vfs.rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        fsync_dir(vfs, dir)?;
    }
    Ok(())
}

pub fn fsync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

pub fn create_dir_all(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Write a new file (not atomically: callers publish the containing directory by rename).
pub fn write_new(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = vfs.create_new(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Remove a file or directory tree, ignoring "not found".
pub fn remove_all(vfs: &dyn Vfs, path: &Path) -> Result<()> {
    let res = match vfs.is_dir(path) {
        Ok(true) => vfs.remove_dir_all(path),
        Ok(false) => vfs.remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Little-endian / LEB128 encoder.
#[derive(Default)]
pub struct ByteWriter {
    pub buf: Vec<u8>,
}

impl ByteWriter {
    pub fn new() -> Self {
        ByteWriter { buf: Vec::new() }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn ivarint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Decoding failure of a [`ByteReader`]; callers turn it into `Error::Corrupt` with the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub &'static str);

/// Bounds-checked reader over a byte slice.
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ReadError("unexpected end of data"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, ReadError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, ReadError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }
    pub fn uvarint(&mut self) -> Result<u64, ReadError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ReadError("varint too long"))
    }
    pub fn ivarint(&mut self) -> Result<i64, ReadError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A length that must fit in the remaining bytes (guards allocations on hostile input).
    pub fn len_prefix(&mut self) -> Result<usize, ReadError> {
        let n = self.uvarint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(ReadError("length runs past the end of data"));
        }
        Ok(n as usize)
    }
    /// A count of items each at least one byte long.
    pub fn count(&mut self) -> Result<usize, ReadError> {
        self.len_prefix()
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let n = self.len_prefix()?;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String, ReadError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| ReadError("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_detects_flips() {
        let p = Path::new("x");
        let f = frame(b"TESTMAGC", 1, b"hello");
        assert_eq!(unframe(p, b"TESTMAGC", 1, &f).unwrap(), b"hello");
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x10;
            assert!(unframe(p, b"TESTMAGC", 1, &g).is_err(), "flip at {i}");
        }
        assert!(unframe(p, b"TESTMAGC", 1, &f[..f.len() - 1]).is_err());
    }

    #[test]
    fn varints_round_trip() {
        let mut w = ByteWriter::new();
        for v in [0i64, 1, -1, i64::MIN, i64::MAX, 300, -300] {
            w.ivarint(v);
        }
        w.str("héllo");
        let mut r = ByteReader::new(&w.buf);
        for v in [0i64, 1, -1, i64::MIN, i64::MAX, 300, -300] {
            assert_eq!(r.ivarint().unwrap(), v);
        }
        assert_eq!(r.string().unwrap(), "héllo");
        assert!(r.is_empty());
        assert!(r.u8().is_err());
    }

    #[test]
    fn hostile_lengths_fail_cleanly() {
        let mut w = ByteWriter::new();
        w.uvarint(u64::MAX);
        assert!(ByteReader::new(&w.buf).bytes().is_err());
        assert!(ByteReader::new(&[0xff; 12]).uvarint().is_err());
    }
}
