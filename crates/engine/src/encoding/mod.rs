//! Column encodings for timestamps, integers, floats, booleans and strings.
//!
//! Owns the byte layout of one *column chunk*: the values of one column of one block. The part
//! format stores chunks opaquely next to their row count; this module turns a slice of values
//! into a chunk and back. The normative layout is `docs/format/column-encodings.md`.
//!
//! Every chunk is self-describing: one **encoding-id byte**, then the payload. The encoder tries
//! the encodings that suit the value type and keeps the smallest; then it applies zstd to the
//! payload when that pays ([`ZSTD_FLAG`] set in the id, see [`compress`]). The row count is
//! *not* stored: the caller passes it to the decoder, which appends exactly that many values or
//! fails.
//!
//! | id     | name             | types            | payload (before the optional zstd layer)          |
//! |--------|------------------|------------------|---------------------------------------------------|
//! | `0x00` | `EMPTY`          | all              | nothing; only for 0 values                        |
//! | `0x01` | `INT_CONST`      | timestamps, i64  | zigzag varint value                               |
//! | `0x02` | `INT_DELTA_CONST`| timestamps, i64  | zigzag first value, zigzag delta                  |
//! | `0x03` | `INT_DELTA`      | timestamps, i64  | zigzag first value, scale, n−1 zigzag deltas ÷ scale |
//! | `0x04` | `INT_DOD`        | timestamps, i64  | zigzag first value, zigzag first delta, scale, n−2 zigzag delta-of-deltas ÷ scale |
//! | `0x05` | `INT_RAW`        | timestamps, i64  | n × 8 bytes little-endian                         |
//! | `0x06` | `INT_DELTA_PACKED` | timestamps, i64 | as `INT_DELTA`, quotients bit-packed above a reference |
//! | `0x07` | `INT_DOD_PACKED` | timestamps, i64  | as `INT_DOD`, quotients bit-packed above a reference |
//! | `0x10` | `F64_CONST`      | f64              | 8 bytes: IEEE-754 bits, little-endian             |
//! | `0x11` | `F64_DECIMAL`    | f64              | zigzag exponent e ∈ [−15, 15], then a plain integer chunk of mantissas |
//! | `0x12` | `F64_GORILLA`    | f64              | Gorilla XOR bit stream                            |
//! | `0x13` | `F64_SHUFFLE`    | f64              | 8 byte planes of n bytes (byte 0 of every value first) |
//! | `0x14` | `F64_DECIMAL_PATCHED` | f64         | exponent, exceptions (position, raw bits), then the mantissa chunk |
//! | `0x20` | `BOOL_CONST`     | bool             | one byte, 0 or 1                                  |
//! | `0x21` | `BOOL_BITMAP`    | bool             | ⌈n/8⌉ bytes, value i at bit i % 8 of byte i / 8   |
//! | `0x22` | `BOOL_RLE`       | bool             | first value byte, then run lengths as varints     |
//! | `0x30` | `STR_CONST`      | string           | varint length, UTF-8 bytes                        |
//! | `0x31` | `STR_PLAIN`      | string           | n varint lengths, then the concatenated bytes     |
//! | `0x32` | `STR_DICT`       | string           | dictionary, then ids bit-packed or run-length     |
//!
//! Integer arithmetic on deltas wraps (two's complement), so every `i64` sequence, including
//! jumps between `i64::MIN` and `i64::MAX`, round-trips.
//!
//! Decoders never panic, reject unknown ids, truncation and trailing bytes, and allocate at most
//! in proportion to `n` (strings: to the chunk's own bytes, or [`MAX_STR_ZSTD_PLAIN`]).

mod bits;
mod boolean;
pub mod compress;
mod decimal;
mod float;
mod gorilla;
mod int;
mod string;
mod varint;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use compress::{MIN_ZSTD_INPUT, ZSTD_FLAG};
pub use string::MAX_STR_ZSTD_PLAIN;
pub use varint::{
    MAX_UVARINT_LEN, get_ivarint, get_uvarint, ivarint_len, put_ivarint, put_uvarint, uvarint_len,
    zigzag_decode, zigzag_encode,
};

/// Most values a decoder accepts in one chunk. A row count read from a damaged header must not
/// make a constant chunk expand into gigabytes; parts keep blocks far smaller (≤ 8192 rows).
/// Larger chunks still encode, but do not decode: keep blocks below this.
pub const MAX_CHUNK_VALUES: usize = 1 << 24;

/// Encoding ids: the first byte of every chunk (without [`ZSTD_FLAG`]).
pub mod id {
    pub const EMPTY: u8 = 0x00;
    pub const INT_CONST: u8 = 0x01;
    pub const INT_DELTA_CONST: u8 = 0x02;
    pub const INT_DELTA: u8 = 0x03;
    pub const INT_DOD: u8 = 0x04;
    pub const INT_RAW: u8 = 0x05;
    pub const INT_DELTA_PACKED: u8 = 0x06;
    pub const INT_DOD_PACKED: u8 = 0x07;
    pub const F64_CONST: u8 = 0x10;
    pub const F64_DECIMAL: u8 = 0x11;
    pub const F64_GORILLA: u8 = 0x12;
    pub const F64_SHUFFLE: u8 = 0x13;
    pub const F64_DECIMAL_PATCHED: u8 = 0x14;
    pub const BOOL_CONST: u8 = 0x20;
    pub const BOOL_BITMAP: u8 = 0x21;
    pub const BOOL_RLE: u8 = 0x22;
    pub const STR_CONST: u8 = 0x30;
    pub const STR_PLAIN: u8 = 0x31;
    pub const STR_DICT: u8 = 0x32;
}

/// Why a chunk could not be decoded. Never turned into wrong data.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty chunk: no encoding id byte")]
    Empty,
    #[error("unknown encoding id 0x{id:02x} for a {kind} column")]
    UnknownEncoding { id: u8, kind: &'static str },
    #[error("chunk truncated while reading {what}")]
    Truncated { what: &'static str },
    #[error("{count} unexpected trailing bytes after the chunk's values")]
    TrailingBytes { count: usize },
    #[error("varint longer than 10 bytes or above u64::MAX")]
    VarintOverflow,
    #[error("{what} is {size}, above the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("chunk holds {found} values where {expected} were expected")]
    CountMismatch { expected: usize, found: usize },
    #[error("invalid chunk: {0}")]
    Invalid(&'static str),
    #[error("string {index} is not valid UTF-8")]
    InvalidUtf8 { index: usize },
    #[error("zstd layer: {0}")]
    Decompress(String),
}

/// Encodes timestamps (ns): constant step, delta-of-delta or the other integer forms.
pub fn encode_timestamps(v: &[i64], out: &mut Vec<u8>) {
    int::encode(v, out);
}

/// Decodes a chunk written by [`encode_timestamps`], appending exactly `n` values to `out`.
pub fn decode_timestamps(b: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    appending(out, n, |out| int::decode(b, n, out))
}

/// Encodes `i64` values: constant, constant delta, delta, delta-of-delta or raw; zstd on top.
pub fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    int::encode(v, out);
}

/// Decodes a chunk written by [`encode_i64`], appending exactly `n` values to `out`.
pub fn decode_i64(b: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    appending(out, n, |out| int::decode(b, n, out))
}

/// Encodes `f64` values bit-exactly: constant, decimal, Gorilla XOR or byte-shuffled.
pub fn encode_f64(v: &[f64], out: &mut Vec<u8>) {
    float::encode(v, out);
}

/// Decodes a chunk written by [`encode_f64`], appending exactly `n` values to `out`.
pub fn decode_f64(b: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
    appending(out, n, |out| float::decode(b, n, out))
}

/// Encodes booleans: constant, bitmap or run lengths.
pub fn encode_bool(v: &[bool], out: &mut Vec<u8>) {
    boolean::encode(v, out);
}

/// Decodes a chunk written by [`encode_bool`], appending exactly `n` values to `out`.
pub fn decode_bool(b: &[u8], n: usize, out: &mut Vec<bool>) -> Result<(), DecodeError> {
    appending(out, n, |out| boolean::decode(b, n, out))
}

/// Encodes strings: constant, dictionary or length-prefixed bytes; zstd on top.
pub fn encode_str<S: AsRef<str>>(v: &[S], out: &mut Vec<u8>) {
    string::encode(v, out);
}

/// Decodes a chunk written by [`encode_str`], appending exactly `n` values to `out`.
pub fn decode_str(b: &[u8], n: usize, out: &mut Vec<String>) -> Result<(), DecodeError> {
    appending(out, n, |out| string::decode(b, n, out))
}

/// Runs a decoder that appends to `out`, and holds it to the contract: exactly `n` values
/// appended on success, `out` left as it was on failure (no half-decoded block survives).
fn appending<T>(
    out: &mut Vec<T>,
    n: usize,
    decode: impl FnOnce(&mut Vec<T>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let start = out.len();
    let result = decode(out).and_then(|()| match out.len() - start {
        found if found == n => Ok(()),
        found => Err(DecodeError::CountMismatch { expected: n, found }),
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Splits a chunk into its encoding id (zstd flag removed) and plain payload, decompressing it
/// when flagged. `max_plain` bounds the decompressed size. Also enforces the `EMPTY` rule: zero
/// values are encoded as `EMPTY` and nothing else.
fn open_chunk(b: &[u8], n: usize, max_plain: usize) -> Result<(u8, Cow<'_, [u8]>), DecodeError> {
    if n > MAX_CHUNK_VALUES {
        return Err(DecodeError::TooLarge {
            what: "value count",
            size: n as u64,
            limit: MAX_CHUNK_VALUES as u64,
        });
    }
    let (&first, body) = b.split_first().ok_or(DecodeError::Empty)?;
    let base = first & !ZSTD_FLAG;
    if (base == id::EMPTY) != (n == 0) || (base == id::EMPTY && first != base) {
        return Err(if n == 0 {
            DecodeError::CountMismatch {
                expected: 0,
                found: 1,
            }
        } else {
            DecodeError::CountMismatch {
                expected: n,
                found: 0,
            }
        });
    }
    if first & ZSTD_FLAG == 0 {
        return Ok((base, Cow::Borrowed(body)));
    }
    Ok((base, Cow::Owned(compress::decompress(body, max_plain)?)))
}
