//! Integer column encodings, shared by timestamps and `i64` fields (and the mantissas of the
//! decimal float encoding).
//!
//! The encoder sizes every candidate in one pass without writing it, then writes the smallest:
//! constant, constant delta (regular timestamps, steady counters), zigzag deltas (gauges),
//! zigzag delta-of-deltas (jittered timestamps, counters with a steady rate) or raw.
//!
//! `INT_DELTA` and `INT_DOD` payloads: zigzag first value, varint scale `g` ≥ 1, then the
//! stream of zigzag quotients (n − 1 of them); value = quotient × `g` (wrapping). The encoder
//! picks `g` = the greatest common divisor of the stream, so nanosecond timestamps with
//! millisecond precision cost as much as millisecond ones.

use super::compress::compress_if_pays;
use super::varint::{Reader, ivarint_len, put_ivarint, put_uvarint, uvarint_len};
use super::{DecodeError, id, open_chunk};

/// Largest plain payload any integer encoding produces for `n` values (`INT_DELTA` with
/// 10-byte varints), plus slack for the header fields.
pub(crate) fn max_plain_len(n: usize) -> usize {
    n.saturating_mul(10).saturating_add(20)
}

/// Writes a complete chunk: plain encoding, then zstd if it pays.
pub(crate) fn encode(v: &[i64], out: &mut Vec<u8>) {
    let start = out.len();
    encode_plain(v, out);
    compress_if_pays(out, start);
}

/// Writes the id byte and plain payload of the smallest integer encoding for `v`.
pub(crate) fn encode_plain(v: &[i64], out: &mut Vec<u8>) {
    let Some((&first, _)) = v.split_first() else {
        out.push(id::EMPTY);
        return;
    };
    // Deltas and delta-of-deltas wrap, so every i64 sequence has them.
    let deltas: Vec<i64> = v.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    if deltas.iter().all(|&d| d == 0) {
        out.push(id::INT_CONST);
        put_ivarint(out, first);
        return;
    }
    if deltas.iter().all(|&d| d == deltas[0]) {
        out.push(id::INT_DELTA_CONST);
        put_ivarint(out, first);
        put_ivarint(out, deltas[0]);
        return;
    }
    // The first delta is its own delta-of-delta (its "previous delta" is 0).
    let dods: Vec<i64> = std::iter::once(deltas[0])
        .chain(deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])))
        .collect();
    let delta = Scaled::measure(&deltas);
    let dod = Scaled::measure(&dods);
    let raw = v.len() * 8;
    let head = ivarint_len(first);
    if raw < head + delta.size && raw < head + dod.size {
        out.push(id::INT_RAW);
        out.reserve(raw);
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    } else if delta.size <= dod.size {
        out.push(id::INT_DELTA);
        put_ivarint(out, first);
        delta.write(&deltas, out);
    } else {
        out.push(id::INT_DOD);
        put_ivarint(out, first);
        dod.write(&dods, out);
    }
}

/// A stream of differences divided by their greatest common divisor: timestamps in ns with ms
/// precision, or values counted in steps of 100, store small quotients.
struct Scaled {
    scale: u64,
    /// Bytes of the scale varint plus the quotients.
    size: usize,
}

impl Scaled {
    fn measure(stream: &[i64]) -> Scaled {
        let mut g = 0u64;
        for &d in stream {
            g = gcd(g, d.unsigned_abs());
            if g == 1 {
                break; // the common case, found early
            }
        }
        // All zero, or 2^63 (not a positive i64): leave unscaled.
        let scale = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
        let quotients: usize = if scale == 1 {
            stream.iter().map(|&d| ivarint_len(d)).sum()
        } else {
            stream.iter().map(|&d| ivarint_len(d / scale as i64)).sum()
        };
        Scaled {
            scale,
            size: uvarint_len(scale) + quotients,
        }
    }

    fn write(&self, stream: &[i64], out: &mut Vec<u8>) {
        out.reserve(self.size);
        put_uvarint(out, self.scale);
        if self.scale == 1 {
            stream.iter().for_each(|&d| put_ivarint(out, d));
        } else {
            stream
                .iter()
                .for_each(|&d| put_ivarint(out, d / self.scale as i64));
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Decodes a complete chunk (zstd layer included).
pub(crate) fn decode(b: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    let (base, payload) = open_chunk(b, n, max_plain_len(n))?;
    decode_plain(base, &payload, n, out)
}

/// Decodes the plain payload of integer encoding `base`, appending exactly `n` values.
pub(crate) fn decode_plain(
    base: u8,
    payload: &[u8],
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(payload);
    match base {
        id::EMPTY => {}
        id::INT_CONST => {
            let x = r.ivarint()?;
            out.extend(std::iter::repeat_n(x, n));
        }
        id::INT_DELTA_CONST => {
            let first = r.ivarint()?;
            let delta = r.ivarint()?;
            out.reserve(n);
            let mut x = first;
            for _ in 0..n {
                out.push(x);
                x = x.wrapping_add(delta);
            }
        }
        id::INT_DELTA => {
            // Every value after the first needs at least one byte: refuse absurd counts
            // before reserving memory for them.
            check_min_bytes(&r, n)?;
            out.reserve(n);
            let mut x = r.ivarint()?;
            let scale = read_scale(&mut r)?;
            out.push(x);
            for _ in 1..n {
                x = x.wrapping_add(r.ivarint()?.wrapping_mul(scale));
                out.push(x);
            }
        }
        id::INT_DOD => {
            check_min_bytes(&r, n)?;
            out.reserve(n);
            let mut x = r.ivarint()?;
            let scale = read_scale(&mut r)?;
            out.push(x);
            let mut delta = 0i64;
            for _ in 1..n {
                delta = delta.wrapping_add(r.ivarint()?.wrapping_mul(scale));
                x = x.wrapping_add(delta);
                out.push(x);
            }
        }
        id::INT_RAW => {
            if Some(r.remaining()) != n.checked_mul(8) {
                return Err(DecodeError::CountMismatch {
                    expected: n,
                    found: r.remaining() / 8,
                });
            }
            let bytes = r.rest();
            out.extend(bytes.chunks_exact(8).map(|c| {
                let mut le = [0u8; 8];
                le.copy_from_slice(c);
                i64::from_le_bytes(le)
            }));
        }
        other => {
            return Err(DecodeError::UnknownEncoding {
                id: other,
                kind: "integer",
            });
        }
    }
    r.finish()
}

/// The divisor of a delta stream: a positive i64.
fn read_scale(r: &mut Reader<'_>) -> Result<i64, DecodeError> {
    match i64::try_from(r.uvarint()?) {
        Ok(scale) if scale > 0 => Ok(scale),
        _ => Err(DecodeError::Invalid("delta scale must be in 1..=i64::MAX")),
    }
}

fn check_min_bytes(r: &Reader<'_>, n: usize) -> Result<(), DecodeError> {
    if r.remaining() < n {
        return Err(DecodeError::CountMismatch {
            expected: n,
            found: r.remaining(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(v: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    fn round_trip(v: &[i64]) -> Vec<u8> {
        let b = chunk(v);
        let mut back = Vec::new();
        decode(&b, v.len(), &mut back).expect("decodes");
        assert_eq!(back, v);
        b
    }

    #[test]
    fn picks_the_encoding_that_suits_the_data() {
        assert_eq!(round_trip(&[]), [id::EMPTY]);
        assert_eq!(round_trip(&[5; 1000])[0], id::INT_CONST);
        let regular: Vec<i64> = (0..8192)
            .map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000)
            .collect();
        let b = round_trip(&regular);
        assert_eq!(b[0], id::INT_DELTA_CONST);
        assert!(b.len() <= 16, "regular timestamps take {} bytes", b.len());
        let gauge: Vec<i64> = (0..100)
            .map(|i| [3, -2, 1, 0][i % 4] * (i as i64 % 7))
            .collect();
        assert_eq!(
            round_trip(&gauge)[0] & !super::super::ZSTD_FLAG,
            id::INT_DELTA
        );
        // Jittered timestamps: deltas ~10 s, delta-of-deltas ~±1 ms.
        let mut t = 1_700_000_000_000_000_000i64;
        let jittered: Vec<i64> = (0..100)
            .map(|i| {
                t += 10_000_000_000 + ((i * 7919) % 2000 - 1000) * 1000;
                t
            })
            .collect();
        assert_eq!(
            round_trip(&jittered)[0] & !super::super::ZSTD_FLAG,
            id::INT_DOD
        );
        // Unpredictable full-width values: varints would be longer than 8 bytes.
        let wild: Vec<i64> = (1..20u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32) as i64)
            .collect();
        assert_eq!(round_trip(&wild)[0], id::INT_RAW);
    }

    #[test]
    fn delta_decoders_refuse_absurd_counts() {
        let b = chunk(&[1, 5, 2, 9]);
        let mut out = Vec::new();
        assert!(decode(&b, usize::MAX / 2, &mut out).is_err());
        assert!(out.capacity() < 1024);
    }
}
