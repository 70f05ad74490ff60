//! `f64` column encodings. All of them are bit-exact: NaN payloads, ±Inf, −0.0 and subnormals
//! come back with the same bits.
//!
//! Candidates, the smallest (after the zstd layer) wins:
//! - `F64_CONST`: every value has the same bits;
//! - `F64_DECIMAL` (VictoriaMetrics' trick): every value is exactly `m × 10^e` for one shared
//!   `e ∈ [−15, 15]` and `|m| < 2^53`; store `e` and the mantissas through the integer encodings.
//!   Metrics usually have few decimals, so mantissas are small and their deltas tiny. A value
//!   that is non-finite or −0.0 has no such form, which rules the encoding out for the chunk;
//! - `F64_GORILLA`: XOR with the previous value (slowly changing or repeated values);
//! - `F64_SHUFFLE`: byte planes, which zstd then compresses (sign/exponent bytes repeat).

use super::compress::compress_if_pays;
use super::varint::{Reader, put_ivarint};
use super::{DecodeError, ZSTD_FLAG, gorilla, id, int, open_chunk};

/// Powers of ten that are exact in `f64` (10^22 is the largest).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const MAX_EXP: i32 = 15;
/// Mantissas must be exactly representable as `f64`.
const MANTISSA_LIMIT: i64 = 1 << 53;

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
    if let Some((exp, mantissas)) = to_decimal(v) {
        let start = out.len();
        out.push(id::F64_DECIMAL);
        put_ivarint(out, i64::from(exp));
        int::encode_plain(&mantissas, out);
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

/// Finds one exponent `e` such that every value is exactly `m × 10^e` with `|m| < 2^53`, and
/// returns it with the mantissas; `None` when the chunk has no such form.
///
/// The shared exponent is the finest of the values' own coarsest exponents: a value is also
/// exact at a finer exponent (the same rational, so the same correctly-rounded f64) as long as
/// its mantissa stays below 2^53. One pass: values are tried at the current exponent first,
/// and when a value needs a finer one the mantissas so far are rescaled.
fn to_decimal(v: &[f64]) -> Option<(i32, Vec<i64>)> {
    let mut exp: Option<i32> = None;
    let mut mantissas = Vec::with_capacity(v.len());
    for &x in v {
        if x.to_bits() == 0 {
            mantissas.push(0);
            continue;
        }
        if let Some(m) = exp.and_then(|e| exact(x, e)) {
            mantissas.push(m);
            continue;
        }
        let (e, m) = value_exponent(x)?;
        if let Some(current) = exp {
            if e >= current {
                // Exact at a coarser exponent but not at the current one: its mantissa
                // would reach 2^53.
                return None;
            }
            let factor = 10i64.checked_pow((current - e) as u32)?;
            for prev in &mut mantissas {
                *prev = prev
                    .checked_mul(factor)
                    .filter(|p| p.unsigned_abs() < MANTISSA_LIMIT as u64)?;
            }
        }
        exp = Some(e);
        mantissas.push(m);
    }
    let mut exp = exp?;
    // Strip common trailing zeros (100, 200, 300 → 1, 2, 3 with e + 2): smaller varints.
    // Exact by the same argument: the rational is unchanged.
    while exp < MAX_EXP
        && mantissas.iter().all(|m| m % 10 == 0)
        && mantissas.iter().any(|&m| m != 0)
    {
        mantissas.iter_mut().for_each(|m| *m /= 10);
        exp += 1;
    }
    Some((exp, mantissas))
}

/// The mantissa of `x` at exponent `e`, if `x` is exactly `m × 10^e` with `|m| < 2^53`.
fn exact(x: f64, e: i32) -> Option<i64> {
    scale(x, e).filter(|&m| from_decimal(m, e).to_bits() == x.to_bits())
}

/// The coarsest (largest) exponent at which `x` has an exact decimal form, and the mantissa.
fn value_exponent(x: f64) -> Option<(i32, i64)> {
    if !x.is_finite() {
        return None;
    }
    if x.abs() < MANTISSA_LIMIT as f64 {
        (0..=MAX_EXP).find_map(|k| exact(x, -k).map(|m| (-k, m)))
    } else {
        (1..=MAX_EXP).find_map(|e| exact(x, e).map(|m| (e, m)))
    }
}

/// The mantissa candidate of `x` at exponent `e`, if it is below 2^53 in magnitude.
fn scale(x: f64, e: i32) -> Option<i64> {
    let m = if e >= 0 {
        x / POW10[e as usize]
    } else {
        x * POW10[(-e) as usize]
    }
    .round();
    if m.abs() < MANTISSA_LIMIT as f64 {
        Some(m as i64)
    } else {
        None
    }
}

/// `m × 10^e` with one correctly-rounded IEEE operation, so the result is the same everywhere.
fn from_decimal(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 * POW10[e as usize]
    } else {
        m as f64 / POW10[(-e) as usize]
    }
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
        id::F64_DECIMAL => {
            let exp = r.ivarint()?;
            if !(-i64::from(MAX_EXP)..=i64::from(MAX_EXP)).contains(&exp) {
                return Err(DecodeError::Invalid("decimal exponent outside [-15, 15]"));
            }
            let inner = r.u8("mantissa encoding id")?;
            if inner & ZSTD_FLAG != 0 || inner == id::EMPTY {
                return Err(DecodeError::Invalid(
                    "mantissa chunk must be plain and non-empty",
                ));
            }
            let mut mantissas = Vec::new();
            int::decode_plain(inner, r.rest(), n, &mut mantissas)?;
            out.reserve(n);
            for m in mantissas {
                if m.unsigned_abs() >= MANTISSA_LIMIT as u64 {
                    return Err(DecodeError::Invalid("decimal mantissa of 2^53 or more"));
                }
                out.push(from_decimal(m, exp as i32));
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
    fn decimal_forms() {
        assert_eq!(to_decimal(&[1.5, 2.25, 0.0]), Some((-2, vec![150, 225, 0])));
        assert_eq!(to_decimal(&[100.0, 2000.0]), Some((2, vec![1, 20])));
        assert_eq!(to_decimal(&[0.1, 0.7, 12.3]), Some((-1, vec![1, 7, 123])));
        assert_eq!(to_decimal(&[1e300]), None);
        assert_eq!(to_decimal(&[1.0, -0.0]), None);
        assert_eq!(to_decimal(&[1.0, f64::NAN]), None);
        assert_eq!(to_decimal(&[f64::INFINITY]), None);
        assert_eq!(to_decimal(&[f64::MIN_POSITIVE]), None);
        assert_eq!(to_decimal(&[1.0 / 3.0]), None);
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
        // One NaN rules out the decimal form but nothing is lost.
        let mut with_nan = prices.clone();
        with_nan[7] = f64::from_bits(0x7ff8_dead_beef_0001);
        round_trip(&with_nan);
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
}
