//! Integer column encodings, shared by timestamps and `i64` fields (and the mantissas of the
//! decimal float encoding).
//!
//! The encoder sizes every candidate without writing it, then writes the smallest: constant,
//! constant delta (regular timestamps, steady counters), deltas (gauges), delta-of-deltas
//! (jittered timestamps, counters with a steady rate) or raw.
//!
//! The difference encodings (`INT_DELTA`, `INT_DOD` and their `_PACKED` forms) store the first
//! value, a scale `g` and n − 1 quotients; difference = quotient × `g` (wrapping). The encoder
//! picks `g` = the greatest common divisor of the differences, so nanosecond timestamps with
//! millisecond precision cost as much as millisecond ones. Quotients are zigzag varints, or
//! bit-packed above a reference (the smallest): 3 bits a value for a TSBS random walk, which
//! zstd then squeezes further than it can squeeze one varint byte a value.

use super::bits::{BitReader, BitWriter};
use super::compress::compress_if_pays;
use super::varint::{Reader, ivarint_len, put_ivarint, put_uvarint, uvarint_len};
use super::{DecodeError, id, open_chunk};

/// Largest plain payload any integer encoding produces for `n` values (`INT_DELTA` with
/// 10-byte varints), plus slack for the header fields.
pub(crate) fn max_plain_len(n: usize) -> usize {
    n.saturating_mul(10).saturating_add(40)
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
    // The delta-of-delta stream starts after the first delta, which is stored as is: a large
    // first delta (10 s in ns) must not widen every packed delta-of-delta.
    let dods: Vec<i64> = deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let delta = Stream::analyze(&deltas);
    let dod = Stream::analyze(&dods);
    let raw = v.len() * 8;
    let delta_head = vec![first];
    let dod_head = vec![first, deltas[0]];
    let size =
        |head: &[i64], s: &Stream| head.iter().map(|&x| ivarint_len(x)).sum::<usize>() + s.best();
    let (head, stream, values, varint_id, packed_id) =
        if size(&delta_head, &delta) <= size(&dod_head, &dod) {
            (
                delta_head,
                delta,
                &deltas,
                id::INT_DELTA,
                id::INT_DELTA_PACKED,
            )
        } else {
            (dod_head, dod, &dods, id::INT_DOD, id::INT_DOD_PACKED)
        };
    if raw <= size(&head, &stream) {
        out.push(id::INT_RAW);
        out.reserve(raw);
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    } else if stream.packed_size < stream.varint_size {
        out.push(packed_id);
        head.iter().for_each(|&x| put_ivarint(out, x));
        stream.write_packed(values, out);
    } else {
        out.push(varint_id);
        head.iter().for_each(|&x| put_ivarint(out, x));
        stream.write_varints(values, out);
    }
}

/// A stream of differences, divided by their greatest common divisor (timestamps in ns with
/// ms precision, values counted in steps of 100 store small quotients), and the sizes of its
/// two layouts: zigzag varints, or frame-of-reference bit-packing (`width` bits a quotient
/// above `reference`, the smallest quotient).
struct Stream {
    scale: u64,
    reference: i64,
    width: u32,
    /// Payload bytes after the first value, for each layout.
    varint_size: usize,
    packed_size: usize,
}

impl Stream {
    fn analyze(stream: &[i64]) -> Stream {
        let mut g = 0u64;
        for &d in stream {
            g = gcd(g, d.unsigned_abs());
            if g == 1 {
                break; // the common case, found early
            }
        }
        // All zero, or 2^63 (not a positive i64): leave unscaled.
        let scale = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
        let (mut min, mut max, mut varints) = (i64::MAX, i64::MIN, 0usize);
        for q in quotients(stream, scale) {
            min = min.min(q);
            max = max.max(q);
            varints += ivarint_len(q);
        }
        // The span of quotients, exact in u64 even when it exceeds i64::MAX.
        let span = max.wrapping_sub(min) as u64;
        let width = 64 - span.leading_zeros();
        let bits = stream.len() * width as usize;
        Stream {
            scale,
            reference: min,
            width,
            varint_size: uvarint_len(scale) + varints,
            packed_size: uvarint_len(scale) + ivarint_len(min) + 1 + bits.div_ceil(8),
        }
    }

    fn best(&self) -> usize {
        self.varint_size.min(self.packed_size)
    }

    fn write_varints(&self, stream: &[i64], out: &mut Vec<u8>) {
        out.reserve(self.varint_size);
        put_uvarint(out, self.scale);
        quotients(stream, self.scale).for_each(|q| put_ivarint(out, q));
    }

    fn write_packed(&self, stream: &[i64], out: &mut Vec<u8>) {
        out.reserve(self.packed_size);
        put_uvarint(out, self.scale);
        put_ivarint(out, self.reference);
        out.push(self.width as u8);
        let mut w = BitWriter::new(out);
        for q in quotients(stream, self.scale) {
            w.write(q.wrapping_sub(self.reference) as u64, self.width);
        }
        w.finish();
    }
}

/// The stream divided by `scale`, without a division per value in the common unscaled case.
fn quotients(stream: &[i64], scale: u64) -> impl Iterator<Item = i64> + '_ {
    let scale = scale as i64;
    stream
        .iter()
        .map(move |&d| if scale == 1 { d } else { d / scale })
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
        id::INT_DELTA | id::INT_DELTA_PACKED | id::INT_DOD | id::INT_DOD_PACKED => {
            let packed = matches!(base, id::INT_DELTA_PACKED | id::INT_DOD_PACKED);
            let second_order = matches!(base, id::INT_DOD | id::INT_DOD_PACKED);
            read_differences(&mut r, n, packed, second_order, out)?;
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

/// Reads the head (first value; for delta-of-deltas also the first delta) and the difference
/// stream, and integrates it once (deltas) or twice (delta-of-deltas): `n` values.
fn read_differences(
    r: &mut Reader<'_>,
    n: usize,
    packed: bool,
    second_order: bool,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let first = r.ivarint()?;
    let mut x = first;
    let mut delta = 0i64;
    let mut head = vec![first];
    if second_order {
        if n < 2 {
            return Err(DecodeError::Invalid(
                "delta-of-delta chunk of fewer than 2 values",
            ));
        }
        delta = r.ivarint()?;
        x = first.wrapping_add(delta);
        head.push(x);
    }
    let count = n.saturating_sub(head.len());
    let scale = read_scale(r)?;
    let mut emit = |d: i64, out: &mut Vec<i64>| {
        let d = d.wrapping_mul(scale);
        if second_order {
            delta = delta.wrapping_add(d);
            x = x.wrapping_add(delta);
        } else {
            x = x.wrapping_add(d);
        }
        out.push(x);
    };
    if packed {
        let reference = r.ivarint()?;
        let width = u32::from(r.u8("bit width")?);
        if width > 64 {
            return Err(DecodeError::Invalid("bit width above 64"));
        }
        let bits = r.rest();
        if Some(bits.len()) != count.checked_mul(width as usize).map(|b| b.div_ceil(8)) {
            return Err(DecodeError::Invalid(
                "bit-packed stream length does not match the value count",
            ));
        }
        let mut br = BitReader::new(bits);
        out.reserve(n);
        out.extend_from_slice(&head);
        for _ in 0..count {
            emit(reference.wrapping_add(br.read(width)? as i64), out);
        }
        br.finish()
    } else {
        // Every quotient takes at least one byte: refuse absurd counts before reserving.
        check_min_bytes(r, count)?;
        out.reserve(n);
        out.extend_from_slice(&head);
        for _ in 0..count {
            emit(r.ivarint()?, out);
        }
        Ok(())
    }
}

/// The divisor of a delta stream: a positive i64.
fn read_scale(r: &mut Reader<'_>) -> Result<i64, DecodeError> {
    match i64::try_from(r.uvarint()?) {
        Ok(scale) if scale > 0 => Ok(scale),
        _ => Err(DecodeError::Invalid("delta scale must be in 1..=i64::MAX")),
    }
}

fn check_min_bytes(r: &Reader<'_>, count: usize) -> Result<(), DecodeError> {
    if r.remaining() < count {
        return Err(DecodeError::CountMismatch {
            expected: count + 1,
            found: r.remaining() + 1,
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
        let base = |b: &[u8]| b[0] & !super::super::ZSTD_FLAG;
        // A gauge wandering by small steps: 3-bit packed deltas.
        let mut x = 50i64;
        let gauge: Vec<i64> = (0..100u64)
            .map(|i| {
                x += (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as i64 - 3;
                x
            })
            .collect();
        let b = round_trip(&gauge);
        assert_eq!(base(&b), id::INT_DELTA_PACKED);
        assert!(b.len() < 50, "100 small steps take {} bytes", b.len());
        // Small steps with rare spikes: packing would need the spikes' width everywhere.
        let spiky: Vec<i64> = (0..100)
            .map(|i| if i % 40 == 7 { 1 << 40 } else { i % 3 })
            .collect();
        assert_eq!(base(&round_trip(&spiky)), id::INT_DELTA);
        // A steadily accelerating counter: constant delta-of-delta, packed in 0 bits.
        let accelerating: Vec<i64> = (0..1000).map(|i| 5 + i * i).collect();
        let b = round_trip(&accelerating);
        assert_eq!(base(&b), id::INT_DOD_PACKED);
        assert!(b.len() < 10, "quadratic sequence takes {} bytes", b.len());
        // Regular timestamps with a few irregular gaps: delta-of-deltas, mostly zero.
        let mut t = 1_700_000_000_000_000_000i64;
        let gappy: Vec<i64> = (0..200)
            .map(|i| {
                t += 10_000_000_000 + if i % 50 == 3 { 123_457 + i } else { 0 };
                t
            })
            .collect();
        assert_eq!(base(&round_trip(&gappy)), id::INT_DOD);
        // Timestamps in ns with ms jitter: quotients of the 1 ms scale.
        let mut t = 1_700_000_000_000_000_000i64;
        let jittered: Vec<i64> = (0..100)
            .map(|i| {
                t += 10_000_000_000 + ((i * 7919) % 200 - 100) * 1_000_000;
                t
            })
            .collect();
        let b = round_trip(&jittered);
        assert_eq!(base(&b), id::INT_DELTA_PACKED);
        assert!(
            b.len() < 120,
            "100 jittered timestamps take {} bytes",
            b.len()
        );
        // Unpredictable full-width values: varints would be longer than 8 bytes.
        let wild: Vec<i64> = (1..20u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32) as i64)
            .collect();
        assert_eq!(round_trip(&wild)[0], id::INT_RAW);
    }

    #[test]
    fn packed_streams_are_checked() {
        let mut out = Vec::new();
        // first 0, scale 1, reference 0, width 65.
        assert!(decode(&[id::INT_DELTA_PACKED, 0, 1, 0, 65], 1, &mut out).is_err());
        // Width 8 for 2 quotients needs exactly 2 bytes.
        assert!(decode(&[id::INT_DELTA_PACKED, 0, 1, 0, 8, 1], 3, &mut out).is_err());
        assert!(decode(&[id::INT_DELTA_PACKED, 0, 1, 0, 8, 1, 2, 3], 3, &mut out).is_err());
        assert!(decode(&[id::INT_DELTA_PACKED, 0, 1, 0, 8, 1, 2], 3, &mut out).is_ok());
        assert_eq!(out, [0, 1, 3]);
        // Scale 0 is invalid; a delta-of-delta chunk needs its first delta.
        assert!(decode(&[id::INT_DELTA, 0, 0, 2], 2, &mut Vec::new()).is_err());
        assert!(decode(&[id::INT_DOD, 0], 1, &mut Vec::new()).is_err());
    }

    #[test]
    fn delta_decoders_refuse_absurd_counts() {
        let b = chunk(&[1, 5, 2, 9]);
        let mut out = Vec::new();
        assert!(decode(&b, usize::MAX / 2, &mut out).is_err());
        assert!(out.capacity() < 1024);
    }
}
