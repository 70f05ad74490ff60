//! `WHERE` clauses: the time bounds and the tag conditions. Conditions that are a plain AND of
//! comparisons are pushed down to the series index as [`TagMatcher`]s; a condition with `OR`
//! is kept whole and evaluated on each series' tags after the scan. Conditions on fields,
//! `time` under `OR`, and other forms outside the subset are refused, never ignored.

use regex::Regex;
use strata_engine::TagMatcher;

use super::ast::{BinOp, Cast, Expr};
use super::error::ExecError;

/// What a `WHERE` clause selects.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Inclusive.
    pub from: i64,
    /// Exclusive.
    pub to: i64,
    pub matchers: Vec<TagMatcher>,
    /// Conditions with `OR`, all of which must hold.
    pub residual: Vec<TagExpr>,
}

#[derive(Debug, Clone)]
pub enum TagExpr {
    Cmp(TagMatcher),
    And(Box<TagExpr>, Box<TagExpr>),
    Or(Box<TagExpr>, Box<TagExpr>),
}

impl TagExpr {
    pub fn eval(&self, tags: &[(String, String)]) -> bool {
        match self {
            TagExpr::Cmp(m) => matcher_holds(m, tags),
            TagExpr::And(a, b) => a.eval(tags) && b.eval(tags),
            TagExpr::Or(a, b) => a.eval(tags) || b.eval(tags),
        }
    }
}

impl Filter {
    pub fn all() -> Filter {
        Filter {
            from: i64::MIN,
            to: i64::MAX,
            matchers: Vec::new(),
            residual: Vec::new(),
        }
    }

    /// Whether a series with these tags passes the conditions that were not pushed down.
    pub fn keeps(&self, tags: &[(String, String)]) -> bool {
        self.residual.iter().all(|e| e.eval(tags))
    }

    /// `is_field(name)` says whether an identifier names a field of the measure.
    pub fn from_cond(
        cond: Option<&Expr>,
        now: i64,
        is_field: &dyn Fn(&str) -> bool,
    ) -> Result<Filter, ExecError> {
        let mut f = Filter::all();
        let Some(cond) = cond else {
            return Ok(f);
        };
        let mut conjuncts = Vec::new();
        flatten_and(cond, &mut conjuncts);
        for c in conjuncts {
            if mentions_time(c) {
                f.time_bound(c, now)?;
                continue;
            }
            match tag_expr(c, is_field)? {
                TagExpr::Cmp(m) => f.matchers.push(m),
                other => f.residual.push(other),
            }
        }
        Ok(f)
    }

    fn time_bound(&mut self, c: &Expr, now: i64) -> Result<(), ExecError> {
        let Expr::Binary { op, lhs, rhs } = c else {
            return Err(unsupported_cond(c));
        };
        let (op, value) = match (is_time(lhs), is_time(rhs)) {
            (true, false) => (*op, time_value(rhs, now)?),
            (false, true) => (flip(*op), time_value(lhs, now)?),
            _ => {
                return Err(ExecError::unsupported(
                    "time may only be compared with a time (time > now() - 1h); time under OR \
                     is not supported",
                ));
            }
        };
        match op {
            BinOp::Gt => self.from = self.from.max(value.saturating_add(1)),
            BinOp::Gte => self.from = self.from.max(value),
            BinOp::Lt => self.to = self.to.min(value),
            BinOp::Lte => self.to = self.to.min(value.saturating_add(1)),
            BinOp::Eq => {
                self.from = self.from.max(value);
                self.to = self.to.min(value.saturating_add(1));
            }
            other => {
                return Err(ExecError::unsupported(format!(
                    "time {} is not supported: use <, <=, =, >=, >",
                    other.symbol()
                )));
            }
        }
        Ok(())
    }
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Binary {
            op: BinOp::And,
            lhs,
            rhs,
        } => {
            flatten_and(lhs, out);
            flatten_and(rhs, out);
        }
        other => out.push(other),
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Ident { name, .. } if name.eq_ignore_ascii_case("time"))
}

fn mentions_time(e: &Expr) -> bool {
    match e {
        Expr::Binary { lhs, rhs, .. } => mentions_time(lhs) || mentions_time(rhs),
        other => is_time(other),
    }
}

fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Gt => BinOp::Lt,
        BinOp::Gte => BinOp::Lte,
        BinOp::Lt => BinOp::Gt,
        BinOp::Lte => BinOp::Gte,
        other => other,
    }
}

/// A time expression: `now()`, an RFC 3339 string, ns, a duration literal (`1700000000000ms`,
/// as Grafana sends), and sums and differences of them.
fn time_value(e: &Expr, now: i64) -> Result<i64, ExecError> {
    match e {
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now),
        Expr::Int(n) => Ok(*n),
        Expr::Duration(d) => Ok(*d),
        Expr::Str(s) => parse_time_str(s),
        Expr::Binary {
            op: op @ (BinOp::Add | BinOp::Sub),
            lhs,
            rhs,
        } => {
            let (a, b) = (time_value(lhs, now)?, time_value(rhs, now)?);
            let v = if *op == BinOp::Add {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            };
            v.ok_or_else(|| ExecError::Invalid("time out of range".into()))
        }
        other => Err(ExecError::unsupported(format!(
            "unsupported time expression {other:?}: use now() - 1h, '2026-01-01T00:00:00Z' or \
             an integer with a unit (1700000000000ms)"
        ))),
    }
}

fn parse_time_str(s: &str) -> Result<i64, ExecError> {
    let bad = || ExecError::Invalid(format!("invalid time '{s}': expected RFC 3339"));
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ())
                .and_then(|d| d.and_hms_opt(0, 0, 0).ok_or(()))
                .map(|t| t.and_utc())
        })
        .map_err(|_| bad())?;
    t.timestamp_nanos_opt().ok_or_else(bad)
}

fn unsupported_cond(e: &Expr) -> ExecError {
    ExecError::unsupported(format!(
        "unsupported condition {e:?}: WHERE takes tag comparisons (=, !=, =~, !~) joined by \
         AND/OR, and time bounds"
    ))
}

fn tag_expr(e: &Expr, is_field: &dyn Fn(&str) -> bool) -> Result<TagExpr, ExecError> {
    let Expr::Binary { op, lhs, rhs } = e else {
        return Err(unsupported_cond(e));
    };
    match op {
        BinOp::And | BinOp::Or => {
            let (a, b) = (tag_expr(lhs, is_field)?, tag_expr(rhs, is_field)?);
            return Ok(if *op == BinOp::And {
                TagExpr::And(Box::new(a), Box::new(b))
            } else {
                TagExpr::Or(Box::new(a), Box::new(b))
            });
        }
        _ => {}
    }
    let Expr::Ident { name, cast } = lhs.as_ref() else {
        return Err(unsupported_cond(e));
    };
    if *cast == Some(Cast::Field) || (*cast != Some(Cast::Tag) && is_field(name)) {
        return Err(ExecError::unsupported(format!(
            "conditions on fields are not supported ('{name}' is a field): filter on tags and time"
        )));
    }
    let key = name.clone();
    let m = match (op, rhs.as_ref()) {
        (BinOp::Eq, Expr::Str(v)) => TagMatcher::Eq(key, v.clone()),
        (BinOp::Neq, Expr::Str(v)) => TagMatcher::NotEq(key, v.clone()),
        (BinOp::Match, Expr::Regex(r)) => TagMatcher::Regex(key, regex(r)?),
        (BinOp::NotMatch, Expr::Regex(r)) => TagMatcher::NotRegex(key, regex(r)?),
        _ => {
            return Err(ExecError::unsupported(format!(
                "unsupported condition on tag '{name}': compare a tag with a 'string' (=, !=) \
                 or a /regex/ (=~, !~)"
            )));
        }
    };
    Ok(TagExpr::Cmp(m))
}

/// InfluxQL regexes match anywhere in the value unless anchored, as in InfluxDB.
pub fn regex(r: &str) -> Result<Regex, ExecError> {
    Regex::new(r).map_err(|e| ExecError::Invalid(format!("invalid regex /{r}/: {e}")))
}

/// The engine's matcher semantics, for the conditions kept after the scan: a missing tag has
/// the empty value.
pub fn matcher_holds(m: &TagMatcher, tags: &[(String, String)]) -> bool {
    let get = |k: &str| {
        tags.iter()
            .find(|(tk, _)| tk == k)
            .map_or("", |(_, v)| v.as_str())
    };
    match m {
        TagMatcher::Eq(k, v) => get(k) == v,
        TagMatcher::NotEq(k, v) => get(k) != v,
        TagMatcher::In(k, vs) => vs.iter().any(|v| v == get(k)),
        TagMatcher::NotIn(k, vs) => !vs.iter().any(|v| v == get(k)),
        TagMatcher::Regex(k, r) => r.is_match(get(k)),
        TagMatcher::NotRegex(k, r) => !r.is_match(get(k)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::ast::Statement;
    use super::super::parser::parse;
    use super::*;

    fn filter(w: &str) -> Result<Filter, ExecError> {
        let q = format!("SELECT v FROM m WHERE {w}");
        let Statement::Select(s) = parse(&q).unwrap().remove(0) else {
            panic!()
        };
        Filter::from_cond(s.cond.as_ref(), 1_000_000_000_000, &|n| n == "v")
    }

    fn tags(h: &str) -> Vec<(String, String)> {
        vec![("host".to_string(), h.to_string())]
    }

    #[test]
    fn time_bounds_from_grafana_and_now() {
        let f = filter("time >= 1000ms and time <= 2000ms").unwrap();
        assert_eq!((f.from, f.to), (1_000_000_000, 2_000_000_001));
        let f = filter("time > now() - 1s AND '1970-01-01T00:10:00Z' > time").unwrap();
        assert_eq!((f.from, f.to), (999_000_000_001, 600_000_000_000));
        assert!(f.matchers.is_empty() && f.residual.is_empty());
    }

    #[test]
    fn and_is_pushed_down_or_is_kept() {
        let f = filter("host = 'a' AND dc =~ /e/").unwrap();
        assert_eq!(f.matchers.len(), 2);
        let f = filter("(host = 'a' OR host =~ /^b/) AND time > 0").unwrap();
        assert_eq!((f.matchers.len(), f.residual.len()), (0, 1));
        assert!(f.keeps(&tags("a")) && f.keeps(&tags("bb")) && !f.keeps(&tags("c")));
        let f = filter("host != 'a'").unwrap();
        assert!(matcher_holds(&f.matchers[0], &[]));
    }

    #[test]
    fn outside_the_subset_is_refused() {
        assert!(filter("v > 5").unwrap_err().to_string().contains("fields"));
        assert!(filter("host = 'a' OR time > 5").is_err());
        assert!(filter("time != 5").is_err());
        assert!(filter("host = 5").is_err());
        assert!(filter("time > 'yesterday'").is_err());
    }
}
