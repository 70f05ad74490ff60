//! `f64` column encodings. All of them are bit-exact: NaN payloads, ±Inf, −0.0 and subnormals
//! come back with the same bits.
//!
//! Candidates, the smallest (after the zstd layer) wins:
//! - `F64_CONST`: every value has the same bits;
//! - `F64_DECIMAL` (VictoriaMetrics' trick, see [`decimal`]): every value is exactly `m × 10^e`
//!   for one shared `e ∈ [−15, 15]` and `|m| < 2^53`; store `e` and the mantissas through the
//!   integer encodings;
//! - `F64_DECIMAL_PATCHED`: the same with up to n/8 exceptions kept as raw bits (NaN staleness
//!   markers, ±Inf, −0.0, values without a short decimal form);
//! - `F64_GORILLA`: XOR with the previous value (slowly changing or repeated values);
//! - `F64_SHUFFLE`: byte planes, which zstd then compresses (sign/exponent bytes repeat).

use super::compress::compress_if_pays;
use super::decimal::{MANTISSA_LIMIT, MAX_EXP, from_decimal, to_decimal};
use super::varint::{Reader, put_ivarint, put_uvarint};
use super::{DecodeError, ZSTD_FLAG, gorilla, id, int, open_chunk};

/// Largest plain payload any float encoding produces for `n` values: Gorilla's worst case is
/// 77 bits a value; the decimal form is an exponent plus an integer chunk.
fn max_plain_len(n: usize) -> usize {
    n.saturating_mul(10)
        .saturating_add(int::max_plain_len(n))
        .saturating_add(32)
}

pub(crate) fn encode(v: &[f64], out: &mut Vec<u8>) {
    let Some((&first, _)) = v.split_first() else {
        out.push(id::EMPTY);
        return;
    };
    if v.iter().all(|x| x.to_bits() == first.to_bits()) {
        out.push(id::F64_CONST);
        out.extend_from_slice(&first.to_bits().to_le_bytes());
        return;
    }
    // The decimal form wins whenever it applies (mantissa deltas of a few bits against
    // Gorilla's tens of bits), so the other candidates are only tried without it.
    // A few exceptions cost 9 bytes or so each, against several bytes a value for Gorilla.
    if let Some(d) = to_decimal(v, v.len() / 8) {
        let start = out.len();
        if d.exceptions.is_empty() {
            out.push(id::F64_DECIMAL);
            put_ivarint(out, i64::from(d.exp));
        } else {
            out.push(id::F64_DECIMAL_PATCHED);
            put_ivarint(out, i64::from(d.exp));
            put_uvarint(out, d.exceptions.len() as u64);
            let mut next = 0;
            for &(pos, bits) in &d.exceptions {
                put_uvarint(out, (pos - next) as u64);
                out.extend_from_slice(&bits.to_le_bytes());
                next = pos + 1;
            }
        }
        int::encode_plain(&d.mantissas, out);
        compress_if_pays(out, start);
        return;
    }
    let bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
    let mut gorilla = vec![id::F64_GORILLA];
    gorilla::encode(&bits, &mut gorilla);
    compress_if_pays(&mut gorilla, 0);
    // Gorilla pays on slowly changing values; on noisy ones (over 4 bytes a value) byte planes
    // plus zstd usually do better, so only then is that second compression worth its time.
    if gorilla.len() > 4 * v.len() {
        let mut shuffled = vec![id::F64_SHUFFLE];
        shuffle(&bits, &mut shuffled);
        compress_if_pays(&mut shuffled, 0);
        if shuffled.len() < gorilla.len() {
            out.extend_from_slice(&shuffled);
            return;
        }
    }
    out.extend_from_slice(&gorilla);
}

fn shuffle(bits: &[u64], out: &mut Vec<u8>) {
    out.reserve(bits.len() * 8);
    for plane in 0..8 {
        out.extend(bits.iter().map(|b| (b >> (8 * plane)) as u8));
    }
}

pub(crate) fn decode(b: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
    let (base, payload) = open_chunk(b, n, max_plain_len(n))?;
    let mut r = Reader::new(&payload);
    match base {
        id::EMPTY => r.finish(),
        id::F64_CONST => {
            let bytes = r.bytes(8, "constant value")?;
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            r.finish()?;
            out.extend(std::iter::repeat_n(
                f64::from_bits(u64::from_le_bytes(le)),
                n,
            ));
            Ok(())
        }
        id::F64_DECIMAL | id::F64_DECIMAL_PATCHED => {
            let exp = r.ivarint()?;
            if !(-i64::from(MAX_EXP)..=i64::from(MAX_EXP)).contains(&exp) {
                return Err(DecodeError::Invalid("decimal exponent outside [-15, 15]"));
            }
            let exceptions = if base == id::F64_DECIMAL_PATCHED {
                read_exceptions(&mut r, n)?
            } else {
                Vec::new()
            };
            let inner = r.u8("mantissa encoding id")?;
            if inner & ZSTD_FLAG != 0 || inner == id::EMPTY {
                return Err(DecodeError::Invalid(
                    "mantissa chunk must be plain and non-empty",
                ));
            }
            let mut mantissas = Vec::new();
            int::decode_plain(inner, r.rest(), n, &mut mantissas)?;
            out.reserve(n);
            let mut exceptions = exceptions.into_iter().peekable();
            for (i, m) in mantissas.into_iter().enumerate() {
                if m.unsigned_abs() >= MANTISSA_LIMIT {
                    return Err(DecodeError::Invalid("decimal mantissa of 2^53 or more"));
                }
                match exceptions.next_if(|&(pos, _)| pos == i) {
                    Some((_, bits)) => out.push(f64::from_bits(bits)),
                    None => out.push(from_decimal(m, exp as i32)),
                }
            }
            Ok(())
        }
        id::F64_GORILLA => {
            let mut bits = Vec::new();
            gorilla::decode(r.rest(), n, &mut bits)?;
            out.extend(bits.into_iter().map(f64::from_bits));
            Ok(())
        }
        id::F64_SHUFFLE => {
            let planes = r.rest();
            if Some(planes.len()) != n.checked_mul(8) {
                return Err(DecodeError::CountMismatch {
                    expected: n,
                    found: planes.len() / 8,
                });
            }
            out.extend((0..n).map(|i| {
                let bits = (0..8).fold(0u64, |acc, plane| {
                    acc | u64::from(planes[plane * n + i]) << (8 * plane)
                });
                f64::from_bits(bits)
            }));
            Ok(())
        }
        other => Err(DecodeError::UnknownEncoding {
            id: other,
            kind: "f64",
        }),
    }
}

/// Reads the exception list of `F64_DECIMAL_PATCHED`: varint count k (1 ≤ k < n), then per
/// exception the varint gap since the previous one (positions strictly increase, below n) and
/// 8 bytes of raw bits.
fn read_exceptions(r: &mut Reader<'_>, n: usize) -> Result<Vec<(usize, u64)>, DecodeError> {
    let k = r.len_varint("exception count", n.saturating_sub(1))?;
    if k == 0 {
        return Err(DecodeError::Invalid(
            "patched decimal chunk without exceptions",
        ));
    }
    // Each exception takes at least 9 bytes: refuse absurd counts before allocating.
    if r.remaining() < k.saturating_mul(9) {
        return Err(DecodeError::Truncated { what: "exceptions" });
    }
    let mut exceptions = Vec::with_capacity(k);
    let mut next = 0usize;
    for _ in 0..k {
        let pos = r
            .len_varint("exception gap", n)?
            .checked_add(next)
            .filter(|&p| p < n)
            .ok_or(DecodeError::Invalid("exception position beyond the values"))?;
        let mut le = [0u8; 8];
        le.copy_from_slice(r.bytes(8, "exception bits")?);
        exceptions.push((pos, u64::from_le_bytes(le)));
        next = pos + 1;
    }
    Ok(exceptions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &[f64]) -> Vec<u8> {
        let mut b = Vec::new();
        encode(v, &mut b);
        let mut back = Vec::new();
        decode(&b, v.len(), &mut back).expect("decodes");
        let bits = |s: &[f64]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(v));
        b
    }

    #[test]
    fn picks_the_encoding_that_suits_the_data() {
        assert_eq!(round_trip(&[f64::NAN; 10])[0], id::F64_CONST);
        // A random walk in steps of 0.25 (quotes): the decimal form's small deltas win.
        let mut p = 10_000i64;
        let prices: Vec<f64> = (0..500u64)
            .map(|i| {
                p += (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as i64 - 3;
                p as f64 * 0.25
            })
            .collect();
        assert_eq!(round_trip(&prices)[0] & !ZSTD_FLAG, id::F64_DECIMAL);
        // Repeated irrational values: no decimal form, Gorilla's one-bit repeats win.
        let runs: Vec<f64> = (0..500).map(|i| f64::from(i / 100) / 3.0).collect();
        assert_eq!(round_trip(&runs)[0] & !ZSTD_FLAG, id::F64_GORILLA);
        // A few staleness markers and a −0.0 become exceptions; the rest stays decimal.
        let mut patched = prices.clone();
        for i in [0, 7, 8, 499] {
            patched[i] = f64::from_bits(0x7ff0_0000_0000_0002);
        }
        patched[100] = -0.0;
        let b = round_trip(&patched);
        assert_eq!(b[0] & !ZSTD_FLAG, id::F64_DECIMAL_PATCHED);
        assert!(b.len() < round_trip(&prices).len() + 60);
        // Too many exceptions (a third of the values): the decimal form is dropped.
        let mut noisy = prices.clone();
        noisy.iter_mut().step_by(3).for_each(|x| *x = f64::NAN);
        assert_ne!(round_trip(&noisy)[0] & !ZSTD_FLAG, id::F64_DECIMAL_PATCHED);
    }

    #[test]
    fn decoder_checks_mantissa_range_and_exponent() {
        let mut b = vec![id::F64_DECIMAL];
        put_ivarint(&mut b, 16);
        int::encode_plain(&[1, 2], &mut b);
        assert!(decode(&b, 2, &mut Vec::new()).is_err());
        let mut b = vec![id::F64_DECIMAL];
        put_ivarint(&mut b, 0);
        int::encode_plain(&[1 << 53, 2], &mut b);
        assert!(decode(&b, 2, &mut Vec::new()).is_err());
    }

    #[test]
    fn decoder_checks_exceptions() {
        let patched = |k: u64, gaps: &[u64]| {
            let mut b = vec![id::F64_DECIMAL_PATCHED, 0];
            put_uvarint(&mut b, k);
            for &g in gaps {
                put_uvarint(&mut b, g);
                b.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
            }
            int::encode_plain(&[1, 2, 3], &mut b);
            b
        };
        let mut out = Vec::new();
        assert!(decode(&patched(1, &[1]), 3, &mut out).is_ok());
        assert!(out[1].is_nan() && out[0] == 1.0 && out[2] == 3.0);
        assert!(decode(&patched(2, &[0, 0]), 3, &mut Vec::new()).is_ok());
        // No exceptions, all n values exceptions, position past the end, absurd count.
        assert!(decode(&patched(0, &[]), 3, &mut Vec::new()).is_err());
        assert!(decode(&patched(3, &[0, 0, 0]), 3, &mut Vec::new()).is_err());
        assert!(decode(&patched(1, &[3]), 3, &mut Vec::new()).is_err());
        assert!(decode(&patched(2, &[1, 1]), 3, &mut Vec::new()).is_err());
        assert!(decode(&patched(1 << 40, &[0]), 3, &mut Vec::new()).is_err());
    }
}
