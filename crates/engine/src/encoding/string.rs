//! String column encodings: constant, dictionary (few distinct values, the common case for
//! status-like fields) or length-prefixed bytes; zstd on top when it pays.
//!
//! - `STR_CONST`: varint byte length, UTF-8 bytes.
//! - `STR_PLAIN`: n varint byte lengths, then all strings' bytes concatenated. Lengths first so
//!   that zstd sees the text as one run.
//! - `STR_DICT`: varint `d` (1 ≤ d ≤ n) entries; `d` varint lengths; the entries' bytes
//!   concatenated; then one mode byte for the n ids (each < d):
//!   - `0` bit-packed: one width byte `w` ≤ 32, then n × `w` bits, most significant bit first,
//!     zero-padded to a byte;
//!   - `1` run-length: (varint id, varint run ≥ 1) pairs whose runs sum to n.
//!
//! Every string must be valid UTF-8.

use std::collections::HashMap;

use super::bits::{BitReader, BitWriter};
use super::compress::compress_if_pays;
use super::varint::{Reader, put_uvarint, uvarint_len};
use super::{DecodeError, id, open_chunk};

/// The encoder compresses a string payload only up to this size, so a decoder never has to
/// allocate more than this for a zstd layer, whatever a hostile chunk declares.
pub const MAX_STR_ZSTD_PLAIN: usize = 16 << 20;

const IDS_BITPACKED: u8 = 0;
const IDS_RLE: u8 = 1;
/// Above this many distinct values a dictionary rarely pays and the map gets expensive.
const MAX_DICT: usize = 1 << 16;

pub(crate) fn encode<S: AsRef<str>>(v: &[S], out: &mut Vec<u8>) {
    let Some(first) = v.first().map(AsRef::as_ref) else {
        out.push(id::EMPTY);
        return;
    };
    if v.iter().all(|s| s.as_ref() == first) {
        out.push(id::STR_CONST);
        put_uvarint(out, first.len() as u64);
        out.extend_from_slice(first.as_bytes());
        return;
    }
    let mut best = plain(v);
    if let Some(dict) = dictionary(v)
        && dict.len() < best.len()
    {
        best = dict;
    }
    out.extend_from_slice(&best);
}

fn finish(mut chunk: Vec<u8>) -> Vec<u8> {
    if chunk.len() <= MAX_STR_ZSTD_PLAIN {
        compress_if_pays(&mut chunk, 0);
    }
    chunk
}

fn plain<S: AsRef<str>>(v: &[S]) -> Vec<u8> {
    let bytes: usize = v.iter().map(|s| s.as_ref().len()).sum();
    let mut c = Vec::with_capacity(1 + v.len() + bytes);
    c.push(id::STR_PLAIN);
    for s in v {
        put_uvarint(&mut c, s.as_ref().len() as u64);
    }
    for s in v {
        c.extend_from_slice(s.as_ref().as_bytes());
    }
    finish(c)
}

/// The dictionary form, or `None` when there are too many distinct values for it to pay.
fn dictionary<S: AsRef<str>>(v: &[S]) -> Option<Vec<u8>> {
    let limit = (v.len() / 2).min(MAX_DICT);
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut entries: Vec<&str> = Vec::new();
    let mut ids = Vec::with_capacity(v.len());
    for s in v {
        let s = s.as_ref();
        let next = entries.len() as u32;
        let id = *index.entry(s).or_insert(next);
        if id == next {
            if entries.len() == limit {
                return None;
            }
            entries.push(s);
        }
        ids.push(id);
    }
    let mut c = vec![id::STR_DICT];
    put_uvarint(&mut c, entries.len() as u64);
    for e in &entries {
        put_uvarint(&mut c, e.len() as u64);
    }
    for e in &entries {
        c.extend_from_slice(e.as_bytes());
    }
    write_ids(&ids, entries.len(), &mut c);
    Some(finish(c))
}

fn write_ids(ids: &[u32], dict_len: usize, out: &mut Vec<u8>) {
    let width = bit_width(dict_len as u64 - 1);
    let packed = (ids.len() * width as usize).div_ceil(8) + 1;
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((last, len)) if *last == id => *len += 1,
            _ => runs.push((id, 1)),
        }
    }
    let rle: usize = runs
        .iter()
        .map(|&(id, len)| uvarint_len(u64::from(id)) + uvarint_len(len as u64))
        .sum();
    if rle < packed {
        out.push(IDS_RLE);
        for (id, len) in runs {
            put_uvarint(out, u64::from(id));
            put_uvarint(out, len as u64);
        }
    } else {
        out.push(IDS_BITPACKED);
        out.push(width as u8);
        let mut w = BitWriter::new(out);
        for &id in ids {
            w.write(u64::from(id), width);
        }
        w.finish();
    }
}

fn bit_width(max: u64) -> u32 {
    64 - max.leading_zeros()
}

pub(crate) fn decode(b: &[u8], n: usize, out: &mut Vec<String>) -> Result<(), DecodeError> {
    let (base, payload) = open_chunk(b, n, MAX_STR_ZSTD_PLAIN)?;
    let mut r = Reader::new(&payload);
    match base {
        id::EMPTY => {}
        id::STR_CONST => {
            let len = r.len_varint("string length", r.remaining())?;
            let s = utf8(r.bytes(len, "string bytes")?, 0)?;
            out.extend(std::iter::repeat_n(s, n).map(str::to_owned));
        }
        id::STR_PLAIN => {
            let lens = read_lengths(&mut r, n)?;
            out.reserve(n);
            for (i, len) in lens.into_iter().enumerate() {
                out.push(utf8(r.bytes(len, "string bytes")?, i)?.to_owned());
            }
        }
        id::STR_DICT => {
            let d = r.len_varint("dictionary size", n.min(r.remaining()))?;
            if d == 0 {
                return Err(DecodeError::Invalid("empty dictionary"));
            }
            let lens = read_lengths(&mut r, d)?;
            let mut dict = Vec::with_capacity(d);
            for (i, len) in lens.into_iter().enumerate() {
                dict.push(utf8(r.bytes(len, "dictionary entry")?, i)?);
            }
            read_ids(&mut r, n, &dict, out)?;
        }
        other => {
            return Err(DecodeError::UnknownEncoding {
                id: other,
                kind: "string",
            });
        }
    }
    r.finish()
}

/// Reads `count` varint lengths whose sum must fit in the rest of the payload.
fn read_lengths(r: &mut Reader<'_>, count: usize) -> Result<Vec<usize>, DecodeError> {
    if r.remaining() < count {
        return Err(DecodeError::CountMismatch {
            expected: count,
            found: r.remaining(),
        });
    }
    let mut lens = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let len = r.len_varint("string length", r.remaining())?;
        total = total.saturating_add(len);
        lens.push(len);
    }
    if total > r.remaining() {
        return Err(DecodeError::Truncated {
            what: "string bytes",
        });
    }
    Ok(lens)
}

fn read_ids(
    r: &mut Reader<'_>,
    n: usize,
    dict: &[&str],
    out: &mut Vec<String>,
) -> Result<(), DecodeError> {
    let entry = |id: u64| -> Result<&str, DecodeError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| dict.get(i).copied())
            .ok_or(DecodeError::Invalid("dictionary id out of range"))
    };
    match r.u8("id mode")? {
        IDS_BITPACKED => {
            let width = u32::from(r.u8("id width")?);
            if width > 32 {
                return Err(DecodeError::Invalid("id width above 32 bits"));
            }
            let bits = r.rest();
            if Some(bits.len()) != n.checked_mul(width as usize).map(|b| b.div_ceil(8)) {
                return Err(DecodeError::CountMismatch {
                    expected: n,
                    found: bits.len(),
                });
            }
            let mut br = BitReader::new(bits);
            out.reserve(n);
            for _ in 0..n {
                out.push(entry(br.read(width)?)?.to_owned());
            }
            br.finish()
        }
        IDS_RLE => {
            let mut left = n;
            while left > 0 {
                let s = entry(r.uvarint()?)?;
                let run = r.len_varint("run length", left)?;
                if run == 0 {
                    return Err(DecodeError::Invalid("empty run"));
                }
                out.extend(std::iter::repeat_n(s, run).map(str::to_owned));
                left -= run;
            }
            Ok(())
        }
        _ => Err(DecodeError::Invalid("unknown dictionary id mode")),
    }
}

fn utf8(b: &[u8], index: usize) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::ZSTD_FLAG;

    fn round_trip(v: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        encode(v, &mut b);
        let mut back = Vec::new();
        decode(&b, v.len(), &mut back).expect("decodes");
        assert_eq!(back, v);
        b
    }

    #[test]
    fn picks_the_encoding_that_suits_the_data() {
        assert_eq!(round_trip(&["", ""]), [id::STR_CONST, 0]);
        let states = ["ok", "degraded", "down", "ok"];
        let few: Vec<&str> = (0..1000).map(|i| states[(i / 50) % 4]).collect();
        let b = round_trip(&few);
        assert_eq!(b[0] & !ZSTD_FLAG, id::STR_DICT);
        assert!(b.len() < 100, "20 runs of 3 values take {} bytes", b.len());
        // Ids that zstd cannot predict: bit-packed dictionary ids win.
        let noisy: Vec<&str> = (0..64u64)
            .map(|i| states[(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as usize % 3])
            .collect();
        let b = round_trip(&noisy);
        assert_eq!(b[0], id::STR_DICT);
        let unique: Vec<String> = (0..50).map(|i| format!("req-{i}-é")).collect();
        let unique: Vec<&str> = unique.iter().map(String::as_str).collect();
        assert_eq!(round_trip(&unique)[0] & !ZSTD_FLAG, id::STR_PLAIN);
    }

    #[test]
    fn rejects_bad_dictionaries() {
        let mut out = Vec::new();
        // d = 0; id out of range; invalid UTF-8 entry.
        assert!(decode(&[id::STR_DICT, 0, IDS_RLE], 1, &mut out).is_err());
        assert!(decode(&[id::STR_DICT, 1, 1, b'a', IDS_RLE, 1, 1], 1, &mut out).is_err());
        assert!(decode(&[id::STR_DICT, 1, 1, 0xff, IDS_RLE, 0, 1], 1, &mut out).is_err());
        assert!(decode(&[id::STR_DICT, 1, 1, b'a', IDS_RLE, 0, 1], 1, &mut out).is_ok());
        assert_eq!(out, ["a"]);
    }
}
