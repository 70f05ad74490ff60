//! Aggregation functions and their per-bucket accumulators.

use serde_json::Value;
use strata_engine::summary::{ExactSum, FieldSummary};
use strata_engine::{Column, FieldAgg};

use crate::error::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Count,
    Sum,
    Min,
    Max,
    Mean,
    First,
    Last,
}

impl AggFn {
    pub fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Mean => "mean",
            AggFn::First => "first",
            AggFn::Last => "last",
        }
    }
}

impl std::str::FromStr for AggFn {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Ok(match s {
            "count" => AggFn::Count,
            "sum" => AggFn::Sum,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "mean" | "avg" => AggFn::Mean,
            "first" => AggFn::First,
            "last" => AggFn::Last,
            other => {
                return Err(QueryError::invalid(
                    "agg.fn",
                    format!("unknown function '{other}' (count, sum, min, max, mean, first, last)"),
                ));
            }
        })
    }
}

/// One value of a column, borrowed from the scan result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    F(f64),
    I(i64),
    B(bool),
    S(&'a str),
}

impl Cell<'_> {
    pub(crate) fn at(col: &Column, i: usize) -> Option<Cell<'_>> {
        match col {
            Column::F64(v) => v.get(i).copied().flatten().map(Cell::F),
            Column::I64(v) => v.get(i).copied().flatten().map(Cell::I),
            Column::Bool(v) => v.get(i).copied().flatten().map(Cell::B),
            Column::Str(v) => v.get(i).and_then(|s| s.as_deref()).map(Cell::S),
        }
    }

    pub(crate) fn to_json(self) -> Value {
        match self {
            // NaN and infinities have no JSON form: they become null.
            Cell::F(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Cell::I(i) => Value::from(i),
            Cell::B(b) => Value::Bool(b),
            Cell::S(s) => Value::String(s.to_string()),
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Cell::F(_) => "float",
            Cell::I(_) => "integer",
            Cell::B(_) => "boolean",
            Cell::S(_) => "string",
        }
    }

    fn as_f64(self) -> Option<f64> {
        match self {
            Cell::F(f) => Some(f),
            Cell::I(i) => Some(i as f64),
            _ => None,
        }
    }
}

/// A value an accumulator keeps (min / max / first / last), owned: the scanned series it
/// came from is dropped once folded.
#[derive(Debug, Clone, PartialEq)]
enum Kept {
    F(f64),
    I(i64),
    B(bool),
    S(Box<str>),
}

impl Kept {
    fn of(c: Cell<'_>) -> Kept {
        match c {
            Cell::F(f) => Kept::F(f),
            Cell::I(i) => Kept::I(i),
            Cell::B(b) => Kept::B(b),
            Cell::S(s) => Kept::S(s.into()),
        }
    }

    fn cell(&self) -> Cell<'_> {
        match self {
            Kept::F(f) => Cell::F(*f),
            Kept::I(i) => Cell::I(*i),
            Kept::B(b) => Cell::B(*b),
            Kept::S(s) => Cell::S(s),
        }
    }
}

/// The running state of one aggregation over one (group key, bucket, field).
#[derive(Debug, Clone)]
pub(crate) struct Acc {
    func: AggFn,
    count: u64,
    /// Float sums are exact (rounded once, when read): the answer does not depend on the order
    /// points come in, nor on whether a block came as points or as its summary.
    sum_f: Option<Box<ExactSum>>,
    sum_i: i128,
    saw_float: bool,
    /// min / max / first / last: the chosen value and its timestamp.
    best: Option<(i64, Kept)>,
}

impl Acc {
    pub(crate) fn new(func: AggFn) -> Self {
        Acc {
            func,
            count: 0,
            sum_f: None,
            sum_i: 0,
            saw_float: false,
            best: None,
        }
    }

    pub(crate) fn add(&mut self, field: &str, ts: i64, cell: Cell<'_>) -> Result<(), QueryError> {
        let type_err = || QueryError::AggType {
            func: self.func.name(),
            field: field.to_string(),
            ty: cell.type_name(),
        };
        match self.func {
            AggFn::Count => self.count += 1,
            AggFn::Sum | AggFn::Mean => {
                match cell {
                    Cell::F(f) => {
                        self.sum_f.get_or_insert_with(Box::default).add(f);
                        self.saw_float = true;
                    }
                    Cell::I(i) => self.sum_i += i128::from(i),
                    _ => return Err(type_err()),
                }
                self.count += 1;
            }
            AggFn::Min | AggFn::Max => {
                let v = cell.as_f64().ok_or_else(type_err)?;
                // NaN never wins a comparison, as with f64::min / f64::max.
                if v.is_nan() {
                    return Ok(());
                }
                let replace = match &self.best {
                    None => true,
                    Some((_, b)) => {
                        let b = b.cell().as_f64().unwrap_or(f64::NAN);
                        if self.func == AggFn::Min {
                            v < b
                        } else {
                            v > b
                        }
                    }
                };
                if replace {
                    self.best = Some((ts, Kept::of(cell)));
                }
            }
            AggFn::First => {
                if self.best.as_ref().is_none_or(|(t, _)| ts < *t) {
                    self.best = Some((ts, Kept::of(cell)));
                }
            }
            AggFn::Last => {
                if self.best.as_ref().is_none_or(|(t, _)| ts >= *t) {
                    self.best = Some((ts, Kept::of(cell)));
                }
            }
        }
        Ok(())
    }

    fn float_sum(&self) -> f64 {
        self.sum_f.as_ref().map_or(0.0, |s| s.value())
    }

    /// Fold a block's summary: the same as [`Acc::add`] of each of its values in time order.
    pub(crate) fn add_summary(&mut self, field: &str, fa: &FieldAgg) -> Result<(), QueryError> {
        match (self.func, &fa.summary) {
            (AggFn::Count, _) => self.count += fa.count,
            (AggFn::Sum | AggFn::Mean, FieldSummary::F64(s)) => {
                self.sum_f
                    .get_or_insert_with(Box::default)
                    .add_stored(&s.sum);
                self.saw_float = true;
                self.count += fa.count;
            }
            (AggFn::Sum | AggFn::Mean, FieldSummary::I64(s)) => {
                self.sum_i += s.sum;
                self.count += fa.count;
            }
            // min/max keep no meaningful timestamp: the block's first one stands in.
            (AggFn::Min, FieldSummary::F64(s)) => {
                if let Some(v) = s.min {
                    self.add(field, s.first.0, Cell::F(v))?;
                }
            }
            (AggFn::Max, FieldSummary::F64(s)) => {
                if let Some(v) = s.max {
                    self.add(field, s.first.0, Cell::F(v))?;
                }
            }
            (AggFn::Min, FieldSummary::I64(s)) => self.add(field, s.first.0, Cell::I(s.min))?,
            (AggFn::Max, FieldSummary::I64(s)) => self.add(field, s.first.0, Cell::I(s.max))?,
            (AggFn::First, FieldSummary::F64(s)) => {
                self.add(field, s.first.0, Cell::F(s.first.1))?
            }
            (AggFn::First, FieldSummary::I64(s)) => {
                self.add(field, s.first.0, Cell::I(s.first.1))?
            }
            (AggFn::Last, FieldSummary::F64(s)) => self.add(field, s.last.0, Cell::F(s.last.1))?,
            (AggFn::Last, FieldSummary::I64(s)) => self.add(field, s.last.0, Cell::I(s.last.1))?,
        }
        Ok(())
    }

    pub(crate) fn finish(&self) -> Value {
        match self.func {
            AggFn::Count => Value::from(self.count),
            AggFn::Sum if self.count == 0 => Value::Null,
            AggFn::Sum if !self.saw_float => {
                // Integer sums stay integers; beyond i64 they fall back to a float.
                i64::try_from(self.sum_i)
                    .map(Value::from)
                    .unwrap_or_else(|_| Cell::F(self.sum_i as f64).to_json())
            }
            AggFn::Sum => Cell::F(self.float_sum() + self.sum_i as f64).to_json(),
            AggFn::Mean if self.count == 0 => Value::Null,
            AggFn::Mean => {
                Cell::F((self.float_sum() + self.sum_i as f64) / self.count as f64).to_json()
            }
            AggFn::Min | AggFn::Max | AggFn::First | AggFn::Last => self
                .best
                .as_ref()
                .map_or(Value::Null, |(_, c)| c.cell().to_json()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(func: AggFn, cells: &[(i64, Cell<'static>)]) -> Value {
        let mut acc = Acc::new(func);
        for &(ts, c) in cells {
            acc.add("f", ts, c).unwrap();
        }
        acc.finish()
    }

    #[test]
    fn every_function_on_floats() {
        let cells = [(3, Cell::F(2.0)), (1, Cell::F(4.0)), (2, Cell::F(-1.0))];
        assert_eq!(run(AggFn::Count, &cells), Value::from(3));
        assert_eq!(run(AggFn::Sum, &cells), Value::from(5.0));
        assert_eq!(run(AggFn::Min, &cells), Value::from(-1.0));
        assert_eq!(run(AggFn::Max, &cells), Value::from(4.0));
        assert_eq!(run(AggFn::First, &cells), Value::from(4.0));
        assert_eq!(run(AggFn::Last, &cells), Value::from(2.0));
        let mean = run(AggFn::Mean, &cells).as_f64().unwrap();
        assert!((mean - 5.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn integer_sums_stay_integers_and_do_not_overflow() {
        let cells = [(1, Cell::I(i64::MAX)), (2, Cell::I(1))];
        assert!(run(AggFn::Sum, &cells).is_f64());
        assert_eq!(
            run(AggFn::Sum, &[(1, Cell::I(2)), (2, Cell::I(3))]),
            Value::from(5)
        );
        assert_eq!(
            run(AggFn::Max, &[(1, Cell::I(2)), (2, Cell::I(3))]),
            Value::from(3)
        );
    }

    #[test]
    fn nan_is_skipped_by_min_max_and_empty_sum_is_null() {
        let cells = [(1, Cell::F(f64::NAN)), (2, Cell::F(1.5))];
        assert_eq!(run(AggFn::Min, &cells), Value::from(1.5));
        assert_eq!(Acc::new(AggFn::Sum).finish(), Value::Null);
        assert_eq!(Acc::new(AggFn::Count).finish(), Value::from(0));
    }

    #[test]
    fn first_last_work_on_any_type_but_sum_rejects_strings() {
        let cells = [(5, Cell::S("b")), (4, Cell::S("a"))];
        assert_eq!(run(AggFn::First, &cells), Value::from("a"));
        assert_eq!(run(AggFn::Last, &cells), Value::from("b"));
        let mut acc = Acc::new(AggFn::Sum);
        let err = acc.add("f", 1, Cell::S("x")).unwrap_err();
        assert!(matches!(err, QueryError::AggType { ty: "string", .. }));
        let mut acc = Acc::new(AggFn::Max);
        assert!(acc.add("f", 1, Cell::B(true)).is_err());
    }
}
