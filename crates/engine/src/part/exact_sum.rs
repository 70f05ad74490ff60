//! Exact, order-independent summation of `f64` values (a "superaccumulator").
//!
//! Every finite double is an integer multiple of 2^-1074, so the exact sum of any number of
//! them is an integer in those units: it is kept in 32-bit chunks of an `i64` array (carries
//! are propagated lazily, every 2^30 additions) and rounded to the nearest double, ties to
//! even, only when read. The result does not depend on the order of the additions nor on how
//! they are grouped: a block summary's sum added to a bucket gives exactly what adding the
//! block's points one by one gives, which is what lets the query layer answer `sum` and
//! `mean` from part summaries without changing a single bit of the answer.
//!
//! Non-finite values are kept aside: any NaN, or both infinities, make the sum NaN; one
//! infinity makes it that infinity (as IEEE addition does in any order). A finite sum too
//! large for a double rounds to ±infinity.

use crate::format::{ByteReader, ByteWriter, ReadError};

/// Chunks of 32 bits from 2^-1074 upward: 2098 bits cover every finite double, the last
/// chunk is signed and holds everything above (carries of up to 2^64 additions).
const NCHUNKS: usize = 67;
const TOP: usize = NCHUNKS - 1;
const LOW_MASK: i64 = 0xffff_ffff;
/// Each addition changes a chunk by less than 2^32: propagating carries every 2^30
/// additions keeps every chunk far from `i64` overflow.
const RENORM_EVERY: u32 = 1 << 30;
/// Largest top chunk accepted from a stored sum (a stored sum covers at most one block:
/// legitimately 0 or -1; the bound keeps hostile input from overflowing the accumulator).
const MAX_STORED_TOP: i64 = 1 << 20;

#[derive(Clone)]
pub struct ExactSum {
    chunks: [i64; NCHUNKS],
    pending: u32,
    nan: bool,
    pos_inf: bool,
    neg_inf: bool,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum {
            chunks: [0; NCHUNKS],
            pending: 0,
            nan: false,
            pos_inf: false,
            neg_inf: false,
        }
    }
}

/// Equal when they hold the same exact sum (however it was reached).
impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.normalize();
        b.normalize();
        a.chunks == b.chunks && (a.nan, a.pos_inf, a.neg_inf) == (b.nan, b.pos_inf, b.neg_inf)
    }
}

impl Eq for ExactSum {}

impl std::fmt::Debug for ExactSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExactSum({})", self.value())
    }
}

impl ExactSum {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn add(&mut self, x: f64) {
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as u32;
        let man = bits & ((1 << 52) - 1);
        let neg = bits >> 63 == 1;
        if exp == 0x7ff {
            if man != 0 {
                self.nan = true;
            } else if neg {
                self.neg_inf = true;
            } else {
                self.pos_inf = true;
            }
            return;
        }
        // value = m * 2^shift in units of 2^-1074.
        let (m, shift) = if exp == 0 {
            (man, 0)
        } else {
            (man | (1 << 52), exp - 1)
        };
        if m == 0 {
            return;
        }
        let v = u128::from(m) << (shift % 32);
        let i = (shift / 32) as usize;
        let parts = [
            (v as u64 & 0xffff_ffff) as i64,
            ((v >> 32) as u64 & 0xffff_ffff) as i64,
            (v >> 64) as i64,
        ];
        for (k, p) in parts.into_iter().enumerate() {
            if neg {
                self.chunks[i + k] -= p;
            } else {
                self.chunks[i + k] += p;
            }
        }
        self.bump();
    }

    /// Add another sum (exactly).
    pub fn add_sum(&mut self, other: &ExactSum) {
        let mut o = other.clone();
        o.normalize();
        for (a, b) in self.chunks.iter_mut().zip(o.chunks) {
            *a += b;
        }
        self.nan |= o.nan;
        self.pos_inf |= o.pos_inf;
        self.neg_inf |= o.neg_inf;
        self.bump();
    }

    fn bump(&mut self) {
        self.pending += 1;
        if self.pending >= RENORM_EVERY {
            self.normalize();
        }
    }

    /// Propagate carries: chunks below the top in `[0, 2^32)`, the top one signed.
    fn normalize(&mut self) {
        for k in 0..TOP {
            let carry = self.chunks[k] >> 32;
            self.chunks[k] &= LOW_MASK;
            self.chunks[k + 1] += carry;
        }
        self.pending = 0;
    }

    /// The sum rounded to the nearest double (ties to even).
    pub fn value(&self) -> f64 {
        if self.nan || (self.pos_inf && self.neg_inf) {
            return f64::NAN;
        }
        if self.pos_inf {
            return f64::INFINITY;
        }
        if self.neg_inf {
            return f64::NEG_INFINITY;
        }
        let mut c = self.clone();
        c.normalize();
        let negative = c.chunks[TOP] < 0;
        if negative {
            for x in c.chunks.iter_mut() {
                *x = -*x;
            }
            c.normalize();
        }
        // Magnitude as 32-bit words (the top chunk is below 2^62 here).
        let mut words = [0u32; NCHUNKS + 1];
        for (w, &x) in words.iter_mut().zip(&c.chunks[..TOP]) {
            *w = x as u32;
        }
        words[TOP] = c.chunks[TOP] as u32;
        words[TOP + 1] = (c.chunks[TOP] >> 32) as u32;
        let Some(hi) = words.iter().rposition(|&w| w != 0) else {
            return if negative { -0.0 } else { 0.0 };
        };
        let p = hi * 32 + 31 - words[hi].leading_zeros() as usize;
        let magnitude = if p < 53 {
            // Exact: n * 2^-1074 with n < 2^53 is a double.
            bits(&words, 0, p + 1) as f64 * f64::from_bits(1)
        } else {
            let mut mant = bits(&words, p - 52, 53);
            let guard = bits(&words, p - 53, 1) == 1;
            let sticky = any_below(&words, p - 53);
            let mut p = p;
            if guard && (sticky || mant & 1 == 1) {
                mant += 1;
                if mant == 1 << 53 {
                    mant >>= 1;
                    p += 1;
                }
            }
            let e = (p - 51) as u64;
            if e >= 0x7ff {
                f64::INFINITY
            } else {
                f64::from_bits((e << 52) | (mant & ((1 << 52) - 1)))
            }
        };
        if negative { -magnitude } else { magnitude }
    }

    /// Whether nothing but zeros was added.
    pub fn is_zero(&self) -> bool {
        !self.nan && !self.pos_inf && !self.neg_inf && {
            let mut c = self.clone();
            c.normalize();
            c.chunks.iter().all(|&x| x == 0)
        }
    }

    /// The compact form kept in part summaries.
    pub fn to_stored(&self) -> StoredSum {
        let mut c = self.clone();
        c.normalize();
        let flags = u8::from(c.nan) | (u8::from(c.pos_inf) << 1) | (u8::from(c.neg_inf) << 2);
        let Some(lo) = c.chunks.iter().position(|&x| x != 0) else {
            return StoredSum::new(flags, 0, &[]);
        };
        let hi = c.chunks.iter().rposition(|&x| x != 0).unwrap_or(lo);
        StoredSum::new(flags, lo, &c.chunks[lo..=hi])
    }

    /// Add a stored sum (exactly).
    pub fn add_stored(&mut self, s: &StoredSum) {
        let lo = usize::from(s.lo);
        for (k, &x) in s.chunks().iter().enumerate() {
            self.chunks[lo + k] += x;
        }
        self.nan |= s.flags & 1 != 0;
        self.pos_inf |= s.flags & 2 != 0;
        self.neg_inf |= s.flags & 4 != 0;
        self.bump();
    }
}

/// Chunks kept inline in a [`StoredSum`]: sums of values of similar magnitude span a few.
const INLINE: usize = 4;

/// An exact sum as part summaries keep it: its non-finite flags and its normalized non-zero
/// chunks `lo..lo+n`, inline when there are few (an [`ExactSum`] is 560 bytes; a part's
/// series table holds one per float field and block).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSum {
    flags: u8,
    lo: u8,
    n: u8,
    inline: [i64; INLINE],
    heap: Option<Box<[i64]>>,
}

impl std::fmt::Debug for StoredSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredSum({})", self.value())
    }
}

impl StoredSum {
    fn new(flags: u8, lo: usize, chunks: &[i64]) -> StoredSum {
        let mut inline = [0; INLINE];
        let heap = if chunks.len() <= INLINE {
            inline[..chunks.len()].copy_from_slice(chunks);
            None
        } else {
            Some(chunks.into())
        };
        StoredSum {
            flags,
            lo: lo as u8,
            n: chunks.len() as u8,
            inline,
            heap,
        }
    }

    fn chunks(&self) -> &[i64] {
        match &self.heap {
            Some(h) => h,
            None => &self.inline[..usize::from(self.n)],
        }
    }

    /// The sum rounded to the nearest double.
    pub fn value(&self) -> f64 {
        let mut e = ExactSum::new();
        e.add_stored(self);
        e.value()
    }

    /// Stored form (part format v2, `docs/format/part.md`): `u8 flags` (1 NaN, 2 +inf,
    /// 4 -inf), `uvarint n`, and when `n > 0`: `uvarint lo`, then `n` zigzag varints, the
    /// normalized chunks `lo..lo+n` (all but the top chunk in `[0, 2^32)`).
    pub fn encode(&self, w: &mut ByteWriter) {
        w.u8(self.flags);
        w.uvarint(u64::from(self.n));
        if self.n == 0 {
            return;
        }
        w.uvarint(u64::from(self.lo));
        for &x in self.chunks() {
            w.ivarint(x);
        }
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Result<StoredSum, ReadError> {
        let flags = r.u8()?;
        if flags & !7 != 0 {
            return Err(ReadError("bad sum flags"));
        }
        let n = r.uvarint()? as usize;
        if n == 0 {
            return Ok(StoredSum::new(flags, 0, &[]));
        }
        let lo = r.uvarint()? as usize;
        if n > NCHUNKS || lo > NCHUNKS - n {
            return Err(ReadError("bad sum chunk range"));
        }
        let mut chunks = [0i64; NCHUNKS];
        for (k, c) in chunks[..n].iter_mut().enumerate() {
            let x = r.ivarint()?;
            let ok = if lo + k == TOP {
                x.abs() <= MAX_STORED_TOP
            } else {
                (0..=LOW_MASK).contains(&x)
            };
            if !ok {
                return Err(ReadError("bad sum chunk"));
            }
            *c = x;
        }
        Ok(StoredSum::new(flags, lo, &chunks[..n]))
    }
}

/// `n <= 64` bits of `words` from bit `lo` up.
fn bits(words: &[u32], lo: usize, n: usize) -> u64 {
    let mut out: u64 = 0;
    for i in 0..n {
        let b = lo + i;
        let bit = (words[b / 32] >> (b % 32)) & 1;
        out |= u64::from(bit) << i;
    }
    out
}

/// Whether any bit strictly below `pos` is set.
fn any_below(words: &[u32], pos: usize) -> bool {
    let (w, b) = (pos / 32, pos % 32);
    words[..w].iter().any(|&x| x != 0) || (b > 0 && words[w] & ((1u32 << b) - 1) != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        for &x in xs {
            s.add(x);
        }
        s.value()
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn exact_where_naive_summation_is_not() {
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum(&[0.1, 0.2, 0.3]), 0.6);
        assert_eq!(sum(&[f64::MAX, f64::MAX, -f64::MAX]), f64::MAX);
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[-f64::MAX, -f64::MAX]), f64::NEG_INFINITY);
        assert_eq!(
            sum(&[f64::from_bits(1), f64::from_bits(1)]),
            f64::from_bits(2)
        );
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[1.5, -1.5]), 0.0);
        assert_eq!(sum(&[-2.5]), -2.5);
        // Ties to even: 2^53 + 1 is halfway between 2^53 and 2^53 + 2.
        assert_eq!(sum(&[9007199254740992.0, 1.0]), 9007199254740992.0);
        assert_eq!(sum(&[9007199254740992.0, 1.0, 2.0]), 9007199254740996.0);
    }

    #[test]
    fn non_finite_values() {
        assert!(sum(&[1.0, f64::NAN]).is_nan());
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(sum(&[f64::INFINITY, 1.0, -f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[f64::NEG_INFINITY, 1.0]), f64::NEG_INFINITY);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e6f64..1e6,
            2 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::MAX),
            1 => Just(-0.0),
            1 => (0u64..1 << 52).prop_map(f64::from_bits),
        ]
    }

    proptest! {
        #[test]
        fn order_and_grouping_do_not_matter(
            xs in prop::collection::vec(any_f64(), 0..200),
            cut in 0usize..200,
            seed in any::<u64>(),
        ) {
            let whole = sum(&xs);
            let cut = cut.min(xs.len());
            let mut a = ExactSum::new();
            xs[..cut].iter().for_each(|&x| a.add(x));
            let mut b = ExactSum::new();
            xs[cut..].iter().for_each(|&x| b.add(x));
            // Through the stored form, as a part summary travels.
            let mut w = ByteWriter::new();
            b.to_stored().encode(&mut w);
            let b = StoredSum::decode(&mut ByteReader::new(&w.buf)).unwrap();
            prop_assert!(same(b.value(), sum(&xs[cut..])));
            a.add_stored(&b);
            prop_assert!(same(a.value(), whole), "{} vs {}", a.value(), whole);
            let mut shuffled = xs.clone();
            let n = shuffled.len();
            for i in 0..n {
                let j = (seed.wrapping_mul(i as u64 + 1) >> 7) as usize % n;
                shuffled.swap(i, j);
            }
            prop_assert!(same(sum(&shuffled), whole));
        }

        #[test]
        fn a_single_value_and_small_sums_are_what_doubles_give(
            x in any::<f64>(),
            ys in prop::collection::vec(-1e9f64..1e9, 0..4),
        ) {
            // The aggregators start from +0.0: -0.0 alone sums to +0.0.
            prop_assert!(same(sum(&[x]), 0.0 + x));
            // Integers below 2^53 add exactly in doubles too.
            let ints: Vec<f64> = ys.iter().map(|y| y.trunc()).collect();
            prop_assert_eq!(sum(&ints), ints.iter().sum::<f64>());
        }
    }
}
