//! `GET|POST /query`: the InfluxDB 1.x query URL, for the statements clients send to set up.
//!
//! Telegraf's `outputs.influxdb` and other InfluxDB 1.x clients send `CREATE DATABASE "name"`
//! to `/query` before they write; a 404 there made Telegraf log an error at every start. Strata
//! understands `CREATE DATABASE` (creates the group with default settings; an existing group is
//! left as it is, as InfluxDB does) and `SHOW DATABASES` (the groups). Any other InfluxQL gets a
//! 400 that points at the JSON query API. `q` is read from the URL and, for a POST with a form
//! body, from the body; several statements may be separated by `;`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde_json::{Value, json};
use strata_engine::GroupSettings;

use super::AppState;
use super::error::ApiError;

/// One statement Strata understands.
#[derive(Debug, PartialEq, Eq)]
enum Statement {
    CreateDatabase(String),
    ShowDatabases,
}

pub async fn query(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut q = params.get("q").cloned();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        for (k, v) in form_urlencoded::parse(&body) {
            if k == "q" {
                q = Some(v.into_owned());
            }
        }
    }
    let q = q.ok_or_else(|| ApiError::bad_request("missing required parameter \"q\""))?;
    let statements = parse(&q).map_err(ApiError::bad_request)?;
    let mut results = Vec::new();
    for (i, st) in statements.into_iter().enumerate() {
        match st {
            Statement::CreateDatabase(name) => {
                let exists = state.engine.catalog().groups.iter().any(|g| g.name == name);
                if !exists {
                    let engine = state.engine.clone();
                    tokio::task::spawn_blocking(move || {
                        engine.put_group(&name, GroupSettings::default())
                    })
                    .await??;
                }
                results.push(json!({ "statement_id": i }));
            }
            Statement::ShowDatabases => {
                let names: Vec<Value> = state
                    .engine
                    .catalog()
                    .groups
                    .iter()
                    .map(|g| json!([g.name]))
                    .collect();
                results.push(json!({
                    "statement_id": i,
                    "series": [{ "name": "databases", "columns": ["name"], "values": names }],
                }));
            }
        }
    }
    Ok(Json(json!({ "results": results })))
}

/// The statements of `q`, or why one is not understood.
fn parse(q: &str) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    for raw in split_statements(q)? {
        let s = raw.trim();
        if s.is_empty() {
            continue;
        }
        let words: Vec<&str> = s.splitn(3, char::is_whitespace).collect();
        let kw = |i: usize, w: &str| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
        if kw(0, "SHOW") && words.len() == 2 && kw(1, "DATABASES") {
            out.push(Statement::ShowDatabases);
        } else if kw(0, "CREATE") && kw(1, "DATABASE") && words.len() == 3 {
            let (name, rest) = identifier(words[2].trim())?;
            if !rest.trim().is_empty() {
                return Err(format!(
                    "CREATE DATABASE options are not supported here ({}); create the group, then \
                     set its TTL and segment interval with PUT /api/v1/groups/{name}",
                    rest.trim()
                ));
            }
            out.push(Statement::CreateDatabase(name));
        } else {
            return Err(format!(
                "InfluxQL is not supported except CREATE DATABASE and SHOW DATABASES \
                 (got: {s}); query with POST /api/v1/query (docs/API.md)"
            ));
        }
    }
    if out.is_empty() {
        return Err("empty query".into());
    }
    Ok(out)
}

/// `q` split at the `;` that are outside quotes.
fn split_statements(q: &str) -> Result<Vec<&str>, String> {
    let (mut out, mut start, mut quote, mut escaped) = (Vec::new(), 0, None, false);
    for (i, c) in q.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote.is_some() {
            escaped = true;
        } else if Some(c) == quote {
            quote = None;
        } else if quote.is_none() && (c == '"' || c == '\'') {
            quote = Some(c);
        } else if quote.is_none() && c == ';' {
            out.push(&q[start..i]);
            start = i + 1;
        }
    }
    if quote.is_some() {
        return Err("unterminated quoted string".into());
    }
    out.push(&q[start..]);
    Ok(out)
}

/// A leading InfluxQL identifier (bare, or in double quotes with `\"` and `\\` escapes) and the
/// text after it.
fn identifier(s: &str) -> Result<(String, &str), String> {
    if let Some(body) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => name.push(e),
                    None => break,
                },
                '"' => {
                    if name.is_empty() {
                        return Err("empty database name".into());
                    }
                    return Ok((name, &body[i + 1..]));
                }
                _ => name.push(c),
            }
        }
        return Err("unterminated database name".into());
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end == 0 {
        return Err(format!("expected a database name, got: {s}"));
    }
    Ok((s[..end].to_string(), &s[end..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_send() {
        assert_eq!(
            parse("CREATE DATABASE \"telegraf\"").unwrap(),
            vec![Statement::CreateDatabase("telegraf".into())]
        );
        assert_eq!(
            parse("create database metrics_1; SHOW DATABASES;").unwrap(),
            vec![
                Statement::CreateDatabase("metrics_1".into()),
                Statement::ShowDatabases
            ]
        );
        assert_eq!(
            parse(r#"CREATE DATABASE "a;b \"c\"""#).unwrap(),
            vec![Statement::CreateDatabase(r#"a;b "c""#.into())]
        );
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        for (q, says) in [
            ("SELECT * FROM cpu", "InfluxQL is not supported"),
            (
                "CREATE DATABASE db WITH DURATION 7d",
                "options are not supported",
            ),
            ("CREATE DATABASE \"db", "unterminated"),
            ("CREATE DATABASE \"\"", "empty database name"),
            ("CREATE DATABASE ;", "InfluxQL is not supported"),
            ("  ;  ", "empty query"),
            ("DROP DATABASE db", "InfluxQL is not supported"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.contains(says), "{q}: {e}");
        }
    }
}
