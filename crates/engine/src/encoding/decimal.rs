//! VictoriaMetrics' decimal trick, made lossless: a chunk of floats becomes one exponent `e`
//! and integer mantissas `m` with `x == m × 10^e` bit for bit, plus a short list of
//! *exceptions* (values with no such form, kept as raw bits: NaN such as Prometheus staleness
//! markers, ±Inf, −0.0, irrational-looking values). Metrics usually have few decimals, so the
//! mantissas are small and their deltas tiny.

/// Powers of ten that are exact in `f64` (10^22 is the largest).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
pub(crate) const MAX_EXP: i32 = 15;
/// Mantissas must be exactly representable as `f64`.
pub(crate) const MANTISSA_LIMIT: u64 = 1 << 53;

#[derive(Debug, PartialEq)]
pub(crate) struct Decimal {
    pub(crate) exp: i32,
    /// One per value; at an exception, a copy of the previous mantissa (keeps deltas small).
    pub(crate) mantissas: Vec<i64>,
    /// (position, raw bits), positions increasing.
    pub(crate) exceptions: Vec<(usize, u64)>,
}

/// The decimal form of `v` with at most `max_exceptions` exceptions, or `None`.
///
/// The shared exponent is the finest of the values' own coarsest exponents: a value is also
/// exact at a finer exponent (the same rational, so the same correctly-rounded f64) as long as
/// its mantissa stays below 2^53. One pass: values are tried at the current exponent first,
/// and when a value needs a finer one the mantissas so far are rescaled.
pub(crate) fn to_decimal(v: &[f64], max_exceptions: usize) -> Option<Decimal> {
    let mut exp: Option<i32> = None;
    let mut mantissas: Vec<i64> = Vec::with_capacity(v.len());
    let mut exceptions = Vec::new();
    // Largest |mantissa| so far: tells whether a rescale stays below 2^53 without trying it.
    let mut max_abs = 0u64;
    for (i, &x) in v.iter().enumerate() {
        if x.to_bits() == 0 {
            mantissas.push(0);
            continue;
        }
        if let Some(m) = exp.and_then(|e| exact(x, e)) {
            max_abs = max_abs.max(m.unsigned_abs());
            mantissas.push(m);
            continue;
        }
        // A finer exponent than the current one, and every earlier mantissa still below 2^53
        // once rescaled to it; otherwise the value becomes an exception.
        let finer = value_exponent(x).filter(|&(e, _)| match exp {
            None => true,
            Some(current) => {
                e < current
                    && 10u64
                        .checked_pow((current - e) as u32)
                        .and_then(|f| max_abs.checked_mul(f))
                        .is_some_and(|m| m < MANTISSA_LIMIT)
            }
        });
        match finer {
            Some((e, m)) => {
                if let Some(current) = exp {
                    mantissas = rescaled(&mantissas, current - e)?;
                    max_abs = mantissas
                        .iter()
                        .map(|m| m.unsigned_abs())
                        .max()
                        .unwrap_or(0);
                }
                exp = Some(e);
                max_abs = max_abs.max(m.unsigned_abs());
                mantissas.push(m);
            }
            None => {
                if exceptions.len() == max_exceptions {
                    return None;
                }
                exceptions.push((i, x.to_bits()));
                mantissas.push(mantissas.last().copied().unwrap_or(0));
            }
        }
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
    Some(Decimal {
        exp,
        mantissas,
        exceptions,
    })
}

/// `mantissas` × 10^`steps`, if all stay below 2^53.
fn rescaled(mantissas: &[i64], steps: i32) -> Option<Vec<i64>> {
    let factor = 10i64.checked_pow(u32::try_from(steps).ok()?)?;
    mantissas
        .iter()
        .map(|m| {
            m.checked_mul(factor)
                .filter(|p| p.unsigned_abs() < MANTISSA_LIMIT)
        })
        .collect()
}

/// The mantissa of `x` at exponent `e`, if `x` is exactly `m × 10^e` with `|m| < 2^53`.
fn exact(x: f64, e: i32) -> Option<i64> {
    mantissa_candidate(x, e).filter(|&m| from_decimal(m, e).to_bits() == x.to_bits())
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
fn mantissa_candidate(x: f64, e: i32) -> Option<i64> {
    let m = round(if e >= 0 {
        x / POW10[e as usize]
    } else {
        x * POW10[(-e) as usize]
    });
    (m.abs() < MANTISSA_LIMIT as f64).then_some(m as i64)
}

/// Rounds to the nearest integer (ties to even) without a libm call: adding and subtracting
/// 1.5 × 2^52 leaves no fraction bits. Values of 2^52 or more are already integers. Ties only
/// arise for values that are not exact at this exponent anyway, which `exact` then rejects.
#[inline]
fn round(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 × 2^52
    if x.abs() < 4_503_599_627_370_496.0 {
        (x + SHIFT) - SHIFT
    } else {
        x
    }
}

/// `m × 10^e` with one correctly-rounded IEEE operation, so the result is the same everywhere.
/// `e` must be within ±[`MAX_EXP`].
pub(crate) fn from_decimal(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 * POW10[e as usize]
    } else {
        m as f64 / POW10[(-e) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(v: &[f64]) -> Option<(i32, Vec<i64>)> {
        to_decimal(v, 0).map(|d| (d.exp, d.mantissas))
    }

    #[test]
    fn decimal_forms() {
        assert_eq!(form(&[1.5, 2.25, 0.0]), Some((-2, vec![150, 225, 0])));
        assert_eq!(form(&[100.0, 2000.0]), Some((2, vec![1, 20])));
        assert_eq!(form(&[0.1, 0.7, 12.3]), Some((-1, vec![1, 7, 123])));
        assert_eq!(form(&[1e300]), None);
        assert_eq!(form(&[1.0, -0.0]), None);
        assert_eq!(form(&[1.0, f64::NAN]), None);
        assert_eq!(form(&[f64::INFINITY]), None);
        assert_eq!(form(&[f64::MIN_POSITIVE]), None);
        assert_eq!(form(&[1.0 / 3.0]), None);
        // A mantissa that would pass 2^53 at the finer exponent.
        assert_eq!(form(&[9e15, 0.5]), None);
    }

    #[test]
    fn exceptions_hold_what_has_no_decimal_form() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002); // Prometheus staleness marker
        let d = to_decimal(&[1.5, stale, 2.5, -0.0, 3.0], 2).expect("two exceptions allowed");
        assert_eq!(d.exp, -1);
        assert_eq!(d.mantissas, [15, 15, 25, 25, 30]);
        assert_eq!(
            d.exceptions,
            [(1, stale.to_bits()), (3, (-0.0f64).to_bits())]
        );
        assert_eq!(to_decimal(&[1.5, stale, 2.5, -0.0, 3.0], 1), None);
        assert_eq!(to_decimal(&[f64::NAN, f64::INFINITY], 2), None);
        // 9e15 fixes e = 0; 0.5 would need e = −1 and push 9e16 past 2^53: exception.
        let d = to_decimal(&[9e15, 0.5, 7.0], 1).expect("one exception");
        assert_eq!((d.exp, d.exceptions.len()), (0, 1));
    }
}
