//! The JSON query language (see `docs/API.md`):
//!
//! ```json
//! {"group":"g","measure":"cpu","from":"2026-01-01T00:00:00Z","to":1767312000000000000,
//!  "where":{"host":"h1","region":["eu","us"],"dc":{"ne":"x"},"os":{"regex":"^linux"}},
//!  "fields":["usage_user"],"agg":{"fn":"mean","every":"1m"},"group_by":["host"],
//!  "limit":1000,"order":"asc"}
//! ```
//!
//! Parsing is strict: unknown keys are rejected, so a typo never silently widens a query.

use serde::Deserialize;
use serde_json::Value;
use strata_engine::TagMatcher;
use strata_engine::model::Timestamp;

use crate::aggregate::AggFn;
use crate::error::QueryError;

/// A parsed, validated query.
#[derive(Debug, Clone)]
pub struct Query {
    pub group: String,
    pub measure: String,
    /// Inclusive start, ns since the epoch.
    pub from: Timestamp,
    /// Exclusive end, ns since the epoch.
    pub to: Timestamp,
    pub matchers: Vec<TagMatcher>,
    /// `None` = every field of the measure.
    pub fields: Option<Vec<String>>,
    pub agg: Option<Agg>,
    pub group_by: Vec<String>,
    /// Maximum rows per result series (after aggregation), taken in `order`.
    pub limit: Option<usize>,
    pub order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub func: AggFn,
    /// Bucket width in ns; buckets are aligned to the Unix epoch. `None` = one bucket for the
    /// whole range (reported at the first point's bucket start, i.e. `from`).
    pub every: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    group: String,
    measure: String,
    #[serde(default)]
    from: Option<Value>,
    #[serde(default)]
    to: Option<Value>,
    #[serde(default, rename = "where")]
    where_: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    agg: Option<RawAgg>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    order: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgg {
    #[serde(rename = "fn")]
    func: String,
    #[serde(default)]
    every: Option<Value>,
}

impl Query {
    pub fn from_json(json: &[u8]) -> Result<Query, QueryError> {
        let raw: RawQuery = serde_json::from_slice(json)?;
        raw.validate()
    }
}

impl RawQuery {
    fn validate(self) -> Result<Query, QueryError> {
        if self.group.is_empty() {
            return Err(QueryError::invalid("group", "must not be empty"));
        }
        if self.measure.is_empty() {
            return Err(QueryError::invalid("measure", "must not be empty"));
        }
        let from = match &self.from {
            Some(v) => parse_time("from", v)?,
            None => i64::MIN,
        };
        let to = match &self.to {
            Some(v) => parse_time("to", v)?,
            None => i64::MAX,
        };
        if from >= to {
            return Err(QueryError::invalid("to", "must be after 'from'"));
        }
        let matchers = match self.where_ {
            Some(map) => map
                .into_iter()
                .map(|(k, v)| parse_matcher(k, v))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let fields = self.fields.map(dedup_fields);
        if let Some(fields) = &fields {
            if fields.is_empty() {
                return Err(QueryError::invalid(
                    "fields",
                    "must name at least one field",
                ));
            }
            if fields.iter().any(String::is_empty) {
                return Err(QueryError::invalid(
                    "fields",
                    "field names must not be empty",
                ));
            }
        }
        let agg = self.agg.map(RawAgg::validate).transpose()?;
        let order = match self.order.as_deref() {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(o) => {
                return Err(QueryError::invalid(
                    "order",
                    format!("'{o}': expected asc or desc"),
                ));
            }
        };
        if self.limit == Some(0) {
            return Err(QueryError::invalid("limit", "must be at least 1"));
        }
        Ok(Query {
            group: self.group,
            measure: self.measure,
            from,
            to,
            matchers,
            fields,
            agg,
            group_by: self.group_by,
            limit: self.limit,
            order,
        })
    }
}

impl RawAgg {
    fn validate(self) -> Result<Agg, QueryError> {
        let func: AggFn = self.func.parse()?;
        let every = match self.every {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let ns = strata_engine::duration::parse_nanos(&s)
                    .map_err(|e| QueryError::invalid("agg.every", e.to_string()))?;
                Some(
                    Some(ns)
                        .filter(|&n| n <= MAX_EVERY_NS)
                        .ok_or_else(|| every_too_long(&s))?,
                )
            }
            Some(Value::Number(n)) => Some(
                n.as_i64()
                    .filter(|&e| e <= MAX_EVERY_NS)
                    .ok_or_else(|| every_too_long(&n.to_string()))?,
            ),
            Some(other) => {
                return Err(QueryError::invalid(
                    "agg.every",
                    format!("expected a duration like \"1m\" or ns, got {other}"),
                ));
            }
        };
        if let Some(e) = every
            && e <= 0
        {
            return Err(QueryError::invalid("agg.every", "must be positive"));
        }
        Ok(Agg { func, every })
    }
}

/// The longest bucket `every` accepts: 100 years. Longer ones cannot be told apart from the
/// whole range (use no `every`), and bucket starts stay far inside `i64`.
pub const MAX_EVERY_NS: i64 = 100 * 365 * 86_400 * 1_000_000_000;

fn every_too_long(s: &str) -> QueryError {
    QueryError::invalid(
        "agg.every",
        format!(
            "'{s}' is longer than the longest bucket (100 years, {MAX_EVERY_NS} ns); \
             omit 'every' to aggregate the whole range"
        ),
    )
}

/// Field names in first-mention order, each once: `["f","f",...]` asks for one column (a
/// repeated name used to be scanned and returned once per mention, so a short query could
/// multiply the work and memory of a scan a thousandfold).
fn dedup_fields(fields: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    fields
        .into_iter()
        .filter(|f| seen.insert(f.clone()))
        .collect()
}

/// RFC 3339 string or integer nanoseconds since the epoch.
fn parse_time(field: &str, v: &Value) -> Result<Timestamp, QueryError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            QueryError::invalid(field, format!("{n} is not an integer of nanoseconds"))
        }),
        Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
                QueryError::invalid(field, format!("'{s}' is not an RFC 3339 time: {e}"))
            })?;
            t.timestamp_nanos_opt()
                .ok_or_else(|| QueryError::invalid(field, format!("'{s}' is out of range")))
        }
        other => Err(QueryError::invalid(
            field,
            format!("expected an RFC 3339 string or ns integer, got {other}"),
        )),
    }
}

/// `"k": "v"` (equality), `"k": ["a","b"]` (membership), or an operator object
/// `{"eq"|"ne"|"regex"|"not_regex": "v"}` / `{"in"|"not_in": [..]}`.
fn parse_matcher(key: String, v: Value) -> Result<TagMatcher, QueryError> {
    let field = format!("where.{key}");
    match v {
        Value::String(s) => Ok(TagMatcher::Eq(key, s)),
        Value::Array(items) => Ok(TagMatcher::In(key, string_list(&field, items)?)),
        Value::Object(map) => {
            let mut it = map.into_iter();
            let (Some((op, arg)), None) = (it.next(), it.next()) else {
                return Err(QueryError::invalid(
                    field,
                    "an operator object must have exactly one key",
                ));
            };
            let op_field = format!("{field}.{op}");
            match (op.as_str(), arg) {
                ("eq", Value::String(s)) => Ok(TagMatcher::Eq(key, s)),
                ("ne", Value::String(s)) => Ok(TagMatcher::NotEq(key, s)),
                ("in", Value::Array(a)) => Ok(TagMatcher::In(key, string_list(&op_field, a)?)),
                ("not_in", Value::Array(a)) => {
                    Ok(TagMatcher::NotIn(key, string_list(&op_field, a)?))
                }
                ("regex", Value::String(s)) => Ok(TagMatcher::Regex(key, anchored(&op_field, &s)?)),
                ("not_regex", Value::String(s)) => {
                    Ok(TagMatcher::NotRegex(key, anchored(&op_field, &s)?))
                }
                ("eq" | "ne" | "regex" | "not_regex", _) => {
                    Err(QueryError::invalid(op_field, "expected a string"))
                }
                ("in" | "not_in", _) => {
                    Err(QueryError::invalid(op_field, "expected a list of strings"))
                }
                (other, _) => Err(QueryError::invalid(
                    field,
                    format!("unknown operator '{other}' (eq, ne, in, not_in, regex, not_regex)"),
                )),
            }
        }
        other => Err(QueryError::invalid(
            field,
            format!("expected a string, a list or an operator object, got {other}"),
        )),
    }
}

fn string_list(field: &str, items: Vec<Value>) -> Result<Vec<String>, QueryError> {
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(QueryError::invalid(
                field,
                format!("{other} is not a string"),
            )),
        })
        .collect()
}

/// Regexes match the whole tag value, as in PromQL, so `"h1"` does not also match `"h10"`.
fn anchored(field: &str, pattern: &str) -> Result<regex::Regex, QueryError> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| QueryError::invalid(field, format!("bad regex: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Query, QueryError> {
        Query::from_json(s.as_bytes())
    }

    #[test]
    fn full_query_parses() {
        let q = parse(
            r#"{"group":"g","measure":"cpu","from":"2026-01-01T00:00:00Z","to":1767312000000000000,
            "where":{"host":"h1","region":["eu","us"],"dc":{"ne":"x"},"os":{"regex":"lin.*"},
                     "az":{"not_in":["a"]},"rack":{"not_regex":"r1"}},
            "fields":["usage_user"],"agg":{"fn":"mean","every":"1m"},"group_by":["host"],
            "limit":10,"order":"desc"}"#,
        )
        .unwrap();
        assert_eq!(q.from, 1_767_225_600_000_000_000);
        assert_eq!(q.to, 1_767_312_000_000_000_000);
        assert_eq!(q.matchers.len(), 6);
        assert_eq!(
            q.agg,
            Some(Agg {
                func: AggFn::Mean,
                every: Some(60_000_000_000)
            })
        );
        assert_eq!(q.order, Order::Desc);
        assert_eq!(q.limit, Some(10));
        let re = q
            .matchers
            .iter()
            .find_map(|m| match m {
                TagMatcher::Regex(k, r) if k == "os" => Some(r.clone()),
                _ => None,
            })
            .unwrap();
        assert!(re.is_match("linux"));
        assert!(!re.is_match("xlinux"));
    }

    #[test]
    fn defaults_cover_all_time() {
        let q = parse(r#"{"group":"g","measure":"m"}"#).unwrap();
        assert_eq!((q.from, q.to), (i64::MIN, i64::MAX));
        assert!(q.agg.is_none() && q.fields.is_none() && q.matchers.is_empty());
    }

    #[test]
    fn bad_queries_name_the_field() {
        let cases = [
            (r#"{"group":"g","measure":"m","from":"yesterday"}"#, "from"),
            (r#"{"group":"g","measure":"m","from":5,"to":5}"#, "to"),
            (
                r#"{"group":"g","measure":"m","agg":{"fn":"median"}}"#,
                "agg.fn",
            ),
            (
                r#"{"group":"g","measure":"m","agg":{"fn":"sum","every":"soon"}}"#,
                "agg.every",
            ),
            (
                r#"{"group":"g","measure":"m","where":{"h":{"like":"x"}}}"#,
                "where.h",
            ),
            (
                r#"{"group":"g","measure":"m","where":{"h":{"regex":"("}}}"#,
                "where.h.regex",
            ),
            (r#"{"group":"g","measure":"m","where":{"h":3}}"#, "where.h"),
            (r#"{"group":"g","measure":"m","order":"up"}"#, "order"),
            (r#"{"group":"g","measure":"m","limit":0}"#, "limit"),
            (r#"{"group":"","measure":"m"}"#, "group"),
            (r#"{"group":"g","measure":"m","fields":[]}"#, "fields"),
        ];
        for (json, field) in cases {
            match parse(json) {
                Err(QueryError::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn repeated_fields_are_merged_in_first_mention_order() {
        let names: Vec<String> = (0..1000)
            .map(|i| format!("\"{}\"", ["f", "g"][i % 2]))
            .collect();
        let q = parse(&format!(
            r#"{{"group":"g","measure":"m","fields":[{},"a","f"]}}"#,
            names.join(",")
        ))
        .unwrap();
        assert_eq!(q.fields.unwrap(), vec!["f", "g", "a"]);
    }

    #[test]
    fn every_that_does_not_fit_is_refused() {
        for every in [
            r#""1000000000000d""#,
            r#""101years""#,
            "9223372036854775807",
            "18446744073709551615",
            "1e300",
        ] {
            let json =
                format!(r#"{{"group":"g","measure":"m","agg":{{"fn":"count","every":{every}}}}}"#);
            match parse(&json) {
                Err(QueryError::Invalid { field, reason }) => {
                    assert_eq!(field, "agg.every", "{every}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{every}: expected agg.every error, got {other:?}"),
            }
        }
        let q =
            parse(r#"{"group":"g","measure":"m","agg":{"fn":"count","every":"36500d"}}"#).unwrap();
        assert_eq!(q.agg.unwrap().every, Some(MAX_EVERY_NS));
    }

    #[test]
    fn unknown_keys_and_missing_group_are_rejected() {
        assert!(matches!(
            parse(r#"{"group":"g","measure":"m","limt":3}"#),
            Err(QueryError::Json(_))
        ));
        assert!(matches!(
            parse(r#"{"measure":"m"}"#),
            Err(QueryError::Json(_))
        ));
        assert!(parse("not json").unwrap_err().is_client_error());
    }
}
