//! The container every repository object (data objects and snapshot manifests) is stored in.
//! Byte layout in `docs/format/repository.md`, "Object container".
//!
//! An object is a 44-byte header and a sequence of frames of at most [`FRAME_SIZE`] plaintext
//! bytes each, so objects of any size are written and read with bounded memory. Each frame is
//! compressed on its own (or stored raw when zstd does not pay) and then either sealed with
//! AES-256-GCM (nonce = frame index, associated data = header + object name, so frames cannot be
//! reordered, dropped or moved to another object) or, in an unencrypted repository, followed by
//! a 16-byte BLAKE3 checksum. The last frame carries a FINAL flag, so truncation is detected.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, AeadInOut, Payload};

use crate::crypto::{Keys, gcm_nonce, random_bytes};
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"STRATAOB";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 44;
/// Plaintext bytes per frame.
pub const FRAME_SIZE: usize = 1 << 20;
/// Largest frame body a reader accepts: a frame plus codec bytes and tag, with zstd's worst case.
const MAX_BODY: usize = FRAME_SIZE + FRAME_SIZE / 64 + 1024;
const CHECKSUM_LEN: usize = 16;
const TAG_LEN: usize = 16;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
const FLAG_FINAL: u8 = 1;

/// Compression setting of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd(i32),
}

pub struct Encoder {
    header: [u8; HEADER_LEN],
    aad: Vec<u8>,
    cipher: Option<Aes256Gcm>,
    compression: Compression,
    index: u64,
    /// Set once a frame did not compress: the rest of the object is stored raw without trying
    /// (parts are compressed already; zstd on them only burns CPU).
    gave_up: bool,
}

impl Encoder {
    /// `name` is the object's key in the repository (e.g. `data/ab/ab12…`).
    pub fn new(keys: Option<&Keys>, name: &str, compression: Compression) -> Self {
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8] = VERSION;
        let cipher = keys.map(|k| {
            let salt: [u8; 32] = random_bytes();
            header[9] = 1;
            header[12..44].copy_from_slice(&salt);
            k.object_cipher(&salt)
        });
        let mut aad = header.to_vec();
        aad.extend_from_slice(name.as_bytes());
        Encoder {
            header,
            aad,
            cipher,
            compression,
            index: 0,
            gave_up: false,
        }
    }

    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Encodes one frame (length prefix included) and appends it to `out`, sealed in place: no
    /// allocation per frame once `out` has room (a backup writes thousands of frames), one
    /// copy of the payload. `data` must be at most [`FRAME_SIZE`] bytes.
    pub fn frame_into(&mut self, out: &mut Vec<u8>, data: &[u8], last: bool) -> Result<()> {
        let compressed = if self.gave_up {
            None
        } else {
            compress(self.compression, data)
        };
        self.seal_into(out, data, compressed, last)
    }

    /// [`Encoder::frame_into`] of a frame whose [`compress`] the caller did (e.g. on another
    /// thread).
    pub fn seal_into(
        &mut self,
        out: &mut Vec<u8>,
        data: &[u8],
        compressed: Option<Vec<u8>>,
        last: bool,
    ) -> Result<()> {
        debug_assert!(data.len() <= FRAME_SIZE);
        // The frame is built in place at the end of `out` (length, codec, flags, payload,
        // trailer) and sealed there: the payload is copied once, from `data` or the zstd output.
        let (codec, payload) = match &compressed {
            // Parts are compressed already: keep zstd only when it saves at least 1/32.
            Some(c) if c.len() + c.len() / 32 < data.len() => (CODEC_ZSTD, c.as_slice()),
            _ => {
                self.gave_up |= data.len() > 64;
                (CODEC_RAW, data)
            }
        };
        let start = out.len();
        let plain_len = 2 + payload.len();
        out.reserve(4 + plain_len + TAG_LEN);
        out.extend_from_slice(&[0u8; 4]);
        out.push(codec);
        out.push(if last { FLAG_FINAL } else { 0 });
        out.extend_from_slice(payload);
        let plain = &mut out[start + 4..];
        let trailer: [u8; TAG_LEN] = match &self.cipher {
            Some(cipher) => {
                let tag = cipher
                    .encrypt_inout_detached(&frame_nonce(self.index), &self.aad, plain.into())
                    .map_err(|_| Error::InvalidArgument("frame encryption failed".into()))?;
                let mut t = [0u8; TAG_LEN];
                t.copy_from_slice(&tag);
                t
            }
            None => frame_checksum(&self.aad, self.index, plain),
        };
        self.index += 1;
        let body = (plain_len + trailer.len()) as u32;
        out[start..start + 4].copy_from_slice(&body.to_le_bytes());
        out.extend_from_slice(&trailer);
        Ok(())
    }
}

/// `data` compressed as `compression` says, when that is worth trying (the encoder keeps it
/// only if it saves at least 1/32).
pub fn compress(compression: Compression, data: &[u8]) -> Option<Vec<u8>> {
    match compression {
        Compression::Zstd(level) if data.len() > 64 => zstd::bulk::compress(data, level).ok(),
        _ => None,
    }
}

fn frame_nonce(index: u64) -> aes_gcm::Nonce<aes_gcm::aes::cipher::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_le_bytes());
    gcm_nonce(n)
}

/// Covers the header and the object name too, so a damaged header or a moved object is caught.
fn frame_checksum(aad: &[u8], index: u64, plain: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(aad);
    h.update(&index.to_le_bytes());
    h.update(plain);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

/// Incremental decoder: feed it the object's bytes as they arrive, take plaintext frames out.
pub struct Decoder<'k> {
    name: String,
    keys: Option<&'k Keys>,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    aad: Option<Vec<u8>>,
    cipher: Option<Aes256Gcm>,
    index: u64,
    finished: bool,
}

impl<'k> Decoder<'k> {
    pub fn new(keys: Option<&'k Keys>, name: &str) -> Self {
        Decoder {
            name: name.to_string(),
            keys,
            buf: Vec::new(),
            pos: 0,
            aad: None,
            cipher: None,
            index: 0,
            finished: false,
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.name.clone(), detail)
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (4 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn read_header(&mut self) -> Result<bool> {
        if self.aad.is_some() {
            return Ok(true);
        }
        if self.buf.len() - self.pos < HEADER_LEN {
            return Ok(false);
        }
        let h = &self.buf[self.pos..self.pos + HEADER_LEN];
        if &h[..8] != MAGIC {
            return Err(self.corrupt("bad magic (not a Strata repository object)"));
        }
        if h[8] != VERSION {
            return Err(Error::UnsupportedVersion {
                name: self.name.clone(),
                found: u32::from(h[8]),
                supported: u32::from(VERSION),
            });
        }
        let encrypted = match h[9] {
            0 => false,
            1 => true,
            other => return Err(self.corrupt(format!("unknown encryption id {other}"))),
        };
        if h[10] != 0 || h[11] != 0 {
            return Err(self.corrupt("reserved header bytes are not zero"));
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&h[12..44]);
        let mut aad = h.to_vec();
        aad.extend_from_slice(self.name.as_bytes());
        match (encrypted, self.keys) {
            (true, Some(k)) => self.cipher = Some(k.object_cipher(&salt)),
            (true, None) => {
                return Err(self.corrupt("object is encrypted but the repository is not"));
            }
            (false, Some(_)) => {
                // An attacker must not be able to swap in an unauthenticated object.
                return Err(self.corrupt("object is not encrypted but the repository is"));
            }
            (false, None) => {}
        }
        self.aad = Some(aad);
        self.pos += HEADER_LEN;
        Ok(true)
    }

    /// The next plaintext frame, if a whole one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        if !self.read_header()? {
            return Ok(None);
        }
        let avail = self.buf.len() - self.pos;
        if self.finished {
            if avail > 0 {
                return Err(self.corrupt("trailing bytes after the final frame"));
            }
            return Ok(None);
        }
        if avail < 4 {
            return Ok(None);
        }
        let mut lenb = [0u8; 4];
        lenb.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        let len = u32::from_le_bytes(lenb) as usize;
        let min = 2 + if self.cipher.is_some() {
            TAG_LEN
        } else {
            CHECKSUM_LEN
        };
        if !(min..=MAX_BODY).contains(&len) {
            return Err(self.corrupt(format!("frame {} has impossible length {len}", self.index)));
        }
        if avail < 4 + len {
            return Ok(None);
        }
        let body = &self.buf[self.pos + 4..self.pos + 4 + len];
        let plain = match &self.cipher {
            Some(c) => {
                let aad = self.aad.as_deref().unwrap_or_default();
                c.decrypt(&frame_nonce(self.index), Payload { msg: body, aad })
                    .map_err(|_| {
                        self.corrupt(format!("frame {} fails authentication", self.index))
                    })?
            }
            None => {
                let (plain, sum) = body.split_at(len - CHECKSUM_LEN);
                let aad = self.aad.as_deref().unwrap_or_default();
                if frame_checksum(aad, self.index, plain) != sum {
                    return Err(self.corrupt(format!("frame {} fails its checksum", self.index)));
                }
                plain.to_vec()
            }
        };
        self.pos += 4 + len;
        self.index += 1;
        if plain.len() < 2 {
            return Err(self.corrupt("frame too short"));
        }
        self.finished = plain[1] & FLAG_FINAL != 0;
        let data = match plain[0] {
            CODEC_RAW => plain[2..].to_vec(),
            CODEC_ZSTD => zstd::bulk::decompress(&plain[2..], FRAME_SIZE)
                .map_err(|e| self.corrupt(format!("frame {}: zstd: {e}", self.index - 1)))?,
            other => return Err(self.corrupt(format!("unknown codec {other}"))),
        };
        Ok(Some(data))
    }

    /// Call at end of input: an object must end right after its final frame.
    pub fn finish(&mut self) -> Result<()> {
        if !self.read_header()? {
            return Err(self.corrupt("truncated header"));
        }
        if !self.finished || self.pos != self.buf.len() {
            return Err(self.corrupt("truncated object (no final frame)"));
        }
        Ok(())
    }
}

/// Encodes a small in-memory value (a manifest) as a whole object.
pub fn encode_all(
    keys: Option<&Keys>,
    name: &str,
    compression: Compression,
    data: &[u8],
) -> Result<Vec<u8>> {
    let mut enc = Encoder::new(keys, name, compression);
    let mut out = Vec::with_capacity(crate::manifest::max_stored_size(data.len() as u64) as usize);
    out.extend_from_slice(enc.header());
    if data.is_empty() {
        enc.frame_into(&mut out, &[], true)?;
        return Ok(out);
    }
    // Frames compress independently: a value of several frames (a manifest of 1,000 parts is
    // two) compresses them on as many threads, then seals them in order.
    let chunks: Vec<&[u8]> = data.chunks(FRAME_SIZE).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let compressed: Vec<Option<Vec<u8>>> = if chunks.len() > 1 && threads > 1 {
        chunks
            .chunks(threads)
            .flat_map(|group| {
                std::thread::scope(|s| {
                    let running: Vec<_> = group
                        .iter()
                        .map(|c| s.spawn(move || compress(compression, c)))
                        .collect();
                    // A thread that panicked leaves its frame raw (still a valid frame).
                    running
                        .into_iter()
                        .map(|h| h.join().ok().flatten())
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    } else {
        chunks.iter().map(|c| compress(compression, c)).collect()
    };
    let n = chunks.len();
    for (i, (c, z)) in chunks.into_iter().zip(compressed).enumerate() {
        enc.seal_into(&mut out, c, z, i + 1 == n)?;
    }
    Ok(out)
}

pub fn decode_all(keys: Option<&Keys>, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut d = Decoder::new(keys, name);
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = d.next_frame()? {
        out.extend_from_slice(&f);
    }
    d.finish()?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn roundtrip(keys: Option<&Keys>, data: &[u8], comp: Compression) {
        let enc = encode_all(keys, "data/ab/x", comp, data).unwrap();
        assert_eq!(decode_all(keys, "data/ab/x", &enc).unwrap(), data);
        // Fed byte by byte in odd pieces.
        let mut d = Decoder::new(keys, "data/ab/x");
        let mut out = Vec::new();
        for piece in enc.chunks(7919) {
            d.push(piece);
            while let Some(f) = d.next_frame().unwrap() {
                out.extend(f);
            }
        }
        d.finish().unwrap();
        assert_eq!(out, data);
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect()
    }

    #[test]
    fn roundtrips() {
        let k = Keys::generate();
        for n in [0, 1, 100, FRAME_SIZE, FRAME_SIZE + 1, 3 * FRAME_SIZE - 5] {
            let d = sample(n);
            roundtrip(None, &d, Compression::None);
            roundtrip(None, &d, Compression::Zstd(3));
            roundtrip(Some(&k), &d, Compression::Zstd(1));
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let k = Keys::generate();
        let data = sample(3000);
        for keys in [None, Some(&k)] {
            let enc = encode_all(keys, "n", Compression::Zstd(3), &data).unwrap();
            for i in 0..enc.len() {
                let mut bad = enc.clone();
                bad[i] ^= 0x40;
                assert!(
                    decode_all(keys, "n", &bad).is_err(),
                    "flip at {i} undetected"
                );
            }
            for cut in 0..enc.len() {
                assert!(decode_all(keys, "n", &enc[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn bound_to_name_and_key() {
        let k = Keys::generate();
        let enc = encode_all(Some(&k), "data/aa/1", Compression::None, b"hello").unwrap();
        assert!(decode_all(Some(&k), "data/aa/2", &enc).is_err());
        assert!(decode_all(Some(&Keys::generate()), "data/aa/1", &enc).is_err());
        assert!(decode_all(None, "data/aa/1", &enc).is_err());
        let plain = encode_all(None, "data/aa/1", Compression::None, b"hello").unwrap();
        assert!(decode_all(Some(&k), "data/aa/1", &plain).is_err());
    }

    #[test]
    fn incompressible_frames_stay_raw() {
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let enc = encode_all(None, "n", Compression::Zstd(3), &noise).unwrap();
        assert!(enc.len() <= noise.len() + HEADER_LEN + 4 + 2 + CHECKSUM_LEN);
    }
}
