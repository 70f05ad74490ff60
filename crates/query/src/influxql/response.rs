//! InfluxDB 1.x response JSON, written by hand so it is byte-compatible with InfluxDB's Go
//! encoder: fields in struct order, empty fields omitted, floats without a trailing `.0`,
//! `<`, `>`, `&` escaped, times as RFC 3339 with trailing zeros trimmed or as epoch integers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// ns since the epoch, rendered according to the `epoch` parameter.
    Time(i64),
}

impl Val {
    pub fn from_json(v: &serde_json::Value) -> Val {
        use serde_json::Value;
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Val::Int(i),
                (None, Some(f)) if n.is_f64() => Val::Float(f),
                (None, Some(f)) => Val::Float(f),
                _ => Val::Null,
            },
            Value::String(s) => Val::Str(s.clone()),
            other => Val::Str(other.to_string()),
        }
    }
}

/// A series of a statement's result (InfluxDB's `models.Row`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Val>>,
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatementResult {
    pub statement_id: usize,
    pub series: Vec<Row>,
    pub error: Option<String>,
}

/// The `epoch` parameter: the unit of integer times, or RFC 3339 strings when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    Rfc3339,
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
}

impl Epoch {
    pub fn parse(s: Option<&str>) -> Result<Epoch, String> {
        Ok(match s {
            None | Some("") => Epoch::Rfc3339,
            Some("ns" | "n") => Epoch::Ns,
            Some("u" | "µ" | "us") => Epoch::Us,
            Some("ms") => Epoch::Ms,
            Some("s") => Epoch::S,
            Some("m") => Epoch::M,
            Some("h") => Epoch::H,
            Some(other) => {
                return Err(format!(
                    "invalid epoch '{other}': expected h, m, s, ms, u or ns"
                ));
            }
        })
    }

    fn divisor(self) -> i64 {
        match self {
            Epoch::Rfc3339 | Epoch::Ns => 1,
            Epoch::Us => 1_000,
            Epoch::Ms => 1_000_000,
            Epoch::S => 1_000_000_000,
            Epoch::M => 60_000_000_000,
            Epoch::H => 3_600_000_000_000,
        }
    }
}

/// `{"results":[...]}` followed by a newline, as InfluxDB writes it.
pub fn render(results: &[StatementResult], epoch: Epoch) -> String {
    let mut out = String::from("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        result(&mut out, r, &r.series, false, epoch);
    }
    out.push_str("]}\n");
    out
}

/// The chunked form: one `{"results":[...]}` line per piece of at most `chunk_size` rows of
/// one series, every piece but a statement's last marked `"partial":true`.
pub fn render_chunked(results: &[StatementResult], epoch: Epoch, chunk_size: usize) -> String {
    let chunk_size = chunk_size.max(1);
    let mut out = String::new();
    for r in results {
        if r.series.is_empty() {
            out.push_str("{\"results\":[");
            result(&mut out, r, &[], false, epoch);
            out.push_str("]}\n");
            continue;
        }
        let mut pieces: Vec<(Row, bool)> = Vec::new();
        for s in &r.series {
            let chunks: Vec<&[Vec<Val>]> = if s.values.is_empty() {
                vec![&[]]
            } else {
                s.values.chunks(chunk_size).collect()
            };
            let n = chunks.len();
            for (i, c) in chunks.into_iter().enumerate() {
                let row = Row {
                    values: c.to_vec(),
                    ..Row {
                        name: s.name.clone(),
                        tags: s.tags.clone(),
                        columns: s.columns.clone(),
                        values: Vec::new(),
                    }
                };
                pieces.push((row, i + 1 < n));
            }
        }
        let n = pieces.len();
        for (i, (row, partial_series)) in pieces.into_iter().enumerate() {
            out.push_str("{\"results\":[");
            let one = StatementResult {
                statement_id: r.statement_id,
                series: Vec::new(),
                error: None,
            };
            let mut buf = String::new();
            series_row(&mut buf, &row, partial_series, epoch);
            result_raw(&mut out, &one, Some(&buf), i + 1 < n, epoch);
            out.push_str("]}\n");
        }
    }
    out
}

fn result(out: &mut String, r: &StatementResult, series: &[Row], partial: bool, epoch: Epoch) {
    let mut buf = String::new();
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        series_row(&mut buf, s, false, epoch);
    }
    let body = (!series.is_empty()).then_some(buf.as_str());
    result_raw(out, r, body, partial, epoch);
}

fn result_raw(
    out: &mut String,
    r: &StatementResult,
    series: Option<&str>,
    partial: bool,
    _epoch: Epoch,
) {
    let _ = write!(out, "{{\"statement_id\":{}", r.statement_id);
    if let Some(s) = series {
        out.push_str(",\"series\":[");
        out.push_str(s);
        out.push(']');
    }
    if partial {
        out.push_str(",\"partial\":true");
    }
    if let Some(e) = &r.error {
        out.push_str(",\"error\":");
        string(out, e);
    }
    out.push('}');
}

fn series_row(out: &mut String, s: &Row, partial: bool, epoch: Epoch) {
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    if !s.name.is_empty() {
        sep(out);
        out.push_str("\"name\":");
        string(out, &s.name);
    }
    if !s.tags.is_empty() {
        sep(out);
        out.push_str("\"tags\":{");
        for (i, (k, v)) in s.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(out, k);
            out.push(':');
            string(out, v);
        }
        out.push('}');
    }
    if !s.columns.is_empty() {
        sep(out);
        out.push_str("\"columns\":[");
        for (i, c) in s.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(out, c);
        }
        out.push(']');
    }
    if !s.values.is_empty() {
        sep(out);
        out.push_str("\"values\":[");
        for (i, row) in s.values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                value(out, v, epoch);
            }
            out.push(']');
        }
        out.push(']');
    }
    if partial {
        sep(out);
        out.push_str("\"partial\":true");
    }
    out.push('}');
}

fn value(out: &mut String, v: &Val, epoch: Epoch) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Float(f) => float(out, *f),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Str(s) => string(out, s),
        Val::Time(t) => match epoch {
            Epoch::Rfc3339 => string(out, &rfc3339_nano(*t)),
            e => {
                let _ = write!(out, "{}", t / e.divisor());
            }
        },
    }
}

/// Go's `encoding/json` float form: shortest round-trip digits, exponent form below 1e-6 and
/// from 1e21 on (`1e-07` → `1e-7`, `1e+21`); NaN and infinities (not JSON) become null.
pub fn float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07` → cleaned to `1.5e-7`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                let _ = write!(out, "{m}e+{e}");
            }
            _ => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A JSON string escaped as Go's encoder does (HTML-safe).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `time.RFC3339Nano` in UTC: fraction digits with trailing zeros removed.
pub fn rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let Some(t) = chrono::DateTime::from_timestamp(secs, 0) else {
        return ns.to_string();
    };
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut s = String::new();
        float(&mut s, x);
        s
    }

    #[test]
    fn floats_and_times_as_go_writes_them() {
        assert_eq!(f(2.0), "2");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(-0.000_000_1), "-1e-7");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(123456789.125), "123456789.125");
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn renders_results_like_influxdb() {
        let r = StatementResult {
            statement_id: 0,
            series: vec![Row {
                name: "cpu".into(),
                tags: BTreeMap::from([("host".into(), "a<b".into())]),
                columns: vec!["time".into(), "mean".into()],
                values: vec![vec![Val::Time(60_000_000_000), Val::Float(1.0)]],
            }],
            error: None,
        };
        assert_eq!(
            render(std::slice::from_ref(&r), Epoch::Rfc3339),
            "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"a\\u003cb\"},\"columns\":[\"time\",\"mean\"],\"values\":[[\"1970-01-01T00:01:00Z\",1]]}]}]}\n"
        );
        assert!(render(std::slice::from_ref(&r), Epoch::S).contains("[[60,1]]"));
        let empty = StatementResult {
            statement_id: 1,
            series: vec![],
            error: Some("database not found: x".into()),
        };
        assert_eq!(
            render(&[empty], Epoch::Ms),
            "{\"results\":[{\"statement_id\":1,\"error\":\"database not found: x\"}]}\n"
        );
    }

    #[test]
    fn chunks_split_series_and_mark_partial() {
        let r = StatementResult {
            statement_id: 0,
            series: vec![Row {
                name: "m".into(),
                tags: BTreeMap::new(),
                columns: vec!["time".into(), "v".into()],
                values: (0..3).map(|i| vec![Val::Time(i), Val::Int(i)]).collect(),
            }],
            error: None,
        };
        let out = render_chunked(&[r], Epoch::Ns, 2);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("[[0,0],[1,1]],\"partial\":true}],\"partial\":true}"));
        assert!(!lines[1].contains("partial"));
    }
}
