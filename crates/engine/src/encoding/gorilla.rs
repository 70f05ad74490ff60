//! Gorilla XOR float stream (Pelkonen et al., VLDB 2015), on the raw IEEE-754 bits, so it is
//! lossless for every value including NaN payloads.
//!
//! Layout, most significant bit first: the first value's 64 bits; then per value the XOR `x`
//! with the previous value:
//! - `0`: `x == 0` (value repeated);
//! - `10` + the meaningful bits of `x` inside the previous window (leading/trailing zero counts
//!   of the last `11` record); allowed only after a `11` record;
//! - `11` + 5 bits leading-zero count `lz` (≤ 31) + 6 bits meaningful length `m` (64 stored as 0)
//!   + `m` bits `x >> (64 − lz − m)`; requires `lz + m ≤ 64`.
//!
//! The stream ends zero-padded to a byte boundary.

use super::DecodeError;
use super::bits::{BitReader, BitWriter};

pub(crate) fn encode(v: &[u64], out: &mut Vec<u8>) {
    let Some((&first, rest)) = v.split_first() else {
        return;
    };
    let mut w = BitWriter::new(out);
    w.write(first, 64);
    let mut prev = first;
    // The window of the last `11` record: (leading zeros, trailing zeros).
    let mut window: Option<(u32, u32)> = None;
    for &bits in rest {
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        match window {
            Some((wlz, wtz)) if lz >= wlz && tz >= wtz => {
                w.write(0b10, 2);
                w.write(x >> wtz, 64 - wlz - wtz);
            }
            _ => {
                let meaningful = 64 - lz - tz;
                w.write(0b11, 2);
                w.write(u64::from(lz), 5);
                w.write(u64::from(meaningful & 63), 6);
                w.write(x >> tz, meaningful);
                window = Some((lz, tz));
            }
        }
    }
    w.finish();
}

/// Decodes exactly `n` values from `payload`, appending their bits to `out`.
pub(crate) fn decode(payload: &[u8], n: usize, out: &mut Vec<u64>) -> Result<(), DecodeError> {
    if n == 0 {
        return if payload.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: payload.len(),
            })
        };
    }
    let mut r = BitReader::new(payload);
    // 64 bits for the first value and at least one per later value: refuse absurd counts
    // before reserving memory for them.
    if r.remaining_bits() < 63 + n {
        return Err(DecodeError::Truncated {
            what: "Gorilla stream",
        });
    }
    out.reserve(n);
    let mut prev = r.read(64)?;
    out.push(prev);
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.read_bit()? {
            let x = if r.read_bit()? {
                let lz = r.read(5)? as u32;
                let meaningful = match r.read(6)? as u32 {
                    0 => 64,
                    m => m,
                };
                if lz + meaningful > 64 {
                    return Err(DecodeError::Invalid("Gorilla window wider than 64 bits"));
                }
                let tz = 64 - lz - meaningful;
                window = Some((lz, tz));
                r.read(meaningful)? << tz
            } else {
                let (lz, tz) = window.ok_or(DecodeError::Invalid(
                    "Gorilla window reused before it was defined",
                ))?;
                r.read(64 - lz - tz)? << tz
            };
            prev ^= x;
        }
        out.push(prev);
    }
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(v: &[u64]) -> usize {
        let mut out = Vec::new();
        encode(v, &mut out);
        let mut back = Vec::new();
        decode(&out, v.len(), &mut back).expect("decodes");
        assert_eq!(back, v);
        out.len()
    }

    #[test]
    fn repeated_values_cost_one_bit() {
        let v = vec![42.5f64.to_bits(); 801];
        assert_eq!(round_trip(&v), 8 + 100);
    }

    #[test]
    fn full_width_xor() {
        round_trip(&[0, u64::MAX, 1, 1 << 63, 0, u64::MAX]);
    }

    proptest! {
        #[test]
        fn round_trips(v in proptest::collection::vec(any::<u64>(), 0..200)) {
            round_trip(&v);
        }
    }
}
