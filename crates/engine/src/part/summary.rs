//! Per-block summaries of numeric fields (part format v2, `docs/format/part.md`): what an
//! aggregation over a whole block needs, so the block is never decoded.
//!
//! Each summary reproduces exactly what the query layer's aggregator computes from the block's
//! decoded points visited in time order: the count of present values; the sum (floats exact,
//! see [`ExactSum`]; integers as `i128`); min and max compared as doubles with NaN never
//! winning and the earliest of equal values kept (strict comparisons in time order); the first
//! and last present values with their timestamps.

use crate::format::{ByteReader, ByteWriter, ReadError};

pub use super::exact_sum::{ExactSum, StoredSum};

/// Summary of one numeric field of one block.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSummary {
    F64(F64Summary),
    I64(I64Summary),
}

#[derive(Debug, Clone, PartialEq)]
pub struct F64Summary {
    pub sum: StoredSum,
    /// `None` when every value is NaN.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub first: (i64, f64),
    pub last: (i64, f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct I64Summary {
    pub sum: i128,
    pub min: i64,
    pub max: i64,
    pub first: (i64, i64),
    pub last: (i64, i64),
}

/// The aggregator's min/max rule: `v` replaces `best` when strictly smaller (larger) as a
/// double; NaN never replaces and is never kept.
#[inline]
pub fn better(is_min: bool, v: f64, best: f64) -> bool {
    if is_min { v < best } else { v > best }
}

impl FieldSummary {
    /// Summary of float values in time order (`ts[i]`, `v`); `None` when no value is present.
    pub fn of_f64(ts: &[i64], vals: &[Option<f64>]) -> Option<FieldSummary> {
        let mut sum = ExactSum::new();
        let (mut min, mut max): (Option<f64>, Option<f64>) = (None, None);
        let (mut first, mut last) = (None, None);
        for (&t, v) in ts.iter().zip(vals) {
            let Some(v) = *v else { continue };
            sum.add(v);
            if !v.is_nan() {
                if min.is_none_or(|m| better(true, v, m)) {
                    min = Some(v);
                }
                if max.is_none_or(|m| better(false, v, m)) {
                    max = Some(v);
                }
            }
            first.get_or_insert((t, v));
            last = Some((t, v));
        }
        Some(FieldSummary::F64(F64Summary {
            sum: sum.to_stored(),
            min,
            max,
            first: first?,
            last: last?,
        }))
    }

    /// Summary of integer values in time order; `None` when no value is present.
    pub fn of_i64(ts: &[i64], vals: &[Option<i64>]) -> Option<FieldSummary> {
        let mut sum: i128 = 0;
        let (mut min, mut max): (Option<i64>, Option<i64>) = (None, None);
        let (mut first, mut last) = (None, None);
        for (&t, v) in ts.iter().zip(vals) {
            let Some(v) = *v else { continue };
            sum += i128::from(v);
            if min.is_none_or(|m| better(true, v as f64, m as f64)) {
                min = Some(v);
            }
            if max.is_none_or(|m| better(false, v as f64, m as f64)) {
                max = Some(v);
            }
            first.get_or_insert((t, v));
            last = Some((t, v));
        }
        Some(FieldSummary::I64(I64Summary {
            sum,
            min: min?,
            max: max?,
            first: first?,
            last: last?,
        }))
    }

    /// Stored form; timestamps as offsets from the block's `min_ts`.
    pub fn encode(&self, min_ts: i64, w: &mut ByteWriter) {
        let off = |t: i64| t.wrapping_sub(min_ts) as u64;
        match self {
            FieldSummary::F64(s) => {
                s.sum.encode(w);
                match (s.min, s.max) {
                    (Some(lo), Some(hi)) => {
                        w.u8(1);
                        w.f64(lo);
                        w.f64(hi);
                    }
                    _ => w.u8(0),
                }
                w.uvarint(off(s.first.0));
                w.f64(s.first.1);
                w.uvarint(off(s.last.0));
                w.f64(s.last.1);
            }
            FieldSummary::I64(s) => {
                w.i64(s.sum as i64);
                w.i64((s.sum >> 64) as i64);
                w.i64(s.min);
                w.i64(s.max);
                w.uvarint(off(s.first.0));
                w.i64(s.first.1);
                w.uvarint(off(s.last.0));
                w.i64(s.last.1);
            }
        }
    }

    /// Read a summary of a field of type `ty` (1 f64, 2 i64) in a block spanning
    /// `[min_ts, max_ts]`.
    pub fn decode(
        r: &mut ByteReader<'_>,
        ty: u8,
        min_ts: i64,
        max_ts: i64,
    ) -> Result<FieldSummary, ReadError> {
        let ts = |r: &mut ByteReader<'_>| -> Result<i64, ReadError> {
            let t = min_ts.wrapping_add(r.uvarint()? as i64);
            if t < min_ts || t > max_ts {
                return Err(ReadError("summary timestamp outside its block"));
            }
            Ok(t)
        };
        let s = match ty {
            crate::record::TYPE_F64 => {
                let sum = StoredSum::decode(r)?;
                let (min, max) = match r.u8()? {
                    0 => (None, None),
                    1 => (Some(r.f64()?), Some(r.f64()?)),
                    _ => return Err(ReadError("bad summary min/max flag")),
                };
                let first = (ts(r)?, r.f64()?);
                let last = (ts(r)?, r.f64()?);
                FieldSummary::F64(F64Summary {
                    sum,
                    min,
                    max,
                    first,
                    last,
                })
            }
            crate::record::TYPE_I64 => {
                let lo = r.i64()? as u64;
                let hi = r.i64()?;
                let sum = (i128::from(hi) << 64) | i128::from(lo);
                let min = r.i64()?;
                let max = r.i64()?;
                let first = (ts(r)?, r.i64()?);
                let last = (ts(r)?, r.i64()?);
                FieldSummary::I64(I64Summary {
                    sum,
                    min,
                    max,
                    first,
                    last,
                })
            }
            _ => return Err(ReadError("summary of a non-numeric field")),
        };
        let (f, l) = s.first_last_ts();
        if f > l {
            return Err(ReadError("summary first after last"));
        }
        Ok(s)
    }

    /// Step over a stored summary of a field of type `ty` (its timestamps unchecked: the
    /// series table's first pass; the block's own parse checks them).
    pub fn skip(r: &mut ByteReader<'_>, ty: u8) -> Result<(), ReadError> {
        Self::decode(r, ty, i64::MIN, i64::MAX).map(drop)
    }

    /// Timestamps of the first and last values.
    pub fn first_last_ts(&self) -> (i64, i64) {
        match self {
            FieldSummary::F64(s) => (s.first.0, s.last.0),
            FieldSummary::I64(s) => (s.first.0, s.last.0),
        }
    }
}

impl FieldSummary {
    /// The stored form of the summary of a block starting at `min_ts` (tools, fuzzing).
    pub fn to_bytes(&self, min_ts: i64) -> Vec<u8> {
        let mut w = ByteWriter::new();
        self.encode(min_ts, &mut w);
        w.buf
    }

    /// Decode a whole stored summary of a field of type `ty` (f64 or i64) in a block spanning
    /// `[min_ts, max_ts]` (tools, fuzzing).
    pub fn from_bytes(
        bytes: &[u8],
        ty: crate::model::FieldType,
        min_ts: i64,
        max_ts: i64,
    ) -> Result<FieldSummary, ReadError> {
        let code = match ty {
            crate::model::FieldType::F64 => crate::record::TYPE_F64,
            crate::model::FieldType::I64 => crate::record::TYPE_I64,
            _ => return Err(ReadError("summary of a non-numeric field")),
        };
        let mut r = ByteReader::new(bytes);
        let s = FieldSummary::decode(&mut r, code, min_ts, max_ts)?;
        if !r.is_empty() {
            return Err(ReadError("trailing bytes after summary"));
        }
        Ok(s)
    }
}

/// Whether a field of type `ty` carries a summary in part format v2.
pub fn summarized(ty: u8) -> bool {
    ty == crate::record::TYPE_F64 || ty == crate::record::TYPE_I64
}
