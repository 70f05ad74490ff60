//! The little of Strata's HTTP API the loops need: group settings, line-protocol writes, full
//! query dumps, and counters from `/metrics`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{ChaosError, Result};

/// One stored point, in a form that compares and sorts exactly (field values as JSON text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub group: String,
    pub measure: String,
    pub tags: Vec<(String, String)>,
    pub ts: i64,
    pub fields: Vec<(String, String)>,
}

impl Row {
    pub fn tag(&self, k: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn int_field(&self, k: &str) -> Option<i64> {
        self.fields
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// Outcome of one write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 204: durable.
    Acked,
    /// 4xx: the server says nothing of the batch was written.
    Rejected(u16),
    /// 5xx, connection refused or cut: unknown whether it was written.
    Unknown,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new() -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ChaosError::http("client", e))?;
        Ok(Client { http })
    }

    pub fn put_group(&self, url: &str, name: &str, settings: &Value) -> Result<()> {
        let r = self
            .http
            .put(format!("{url}/api/v1/groups/{name}"))
            .json(settings)
            .send()
            .map_err(|e| ChaosError::http(format!("PUT group {name}"), e))?;
        if !r.status().is_success() {
            let st = r.status();
            return Err(ChaosError::http(
                format!("PUT group {name}"),
                format!("{st}: {}", r.text().unwrap_or_default()),
            ));
        }
        Ok(())
    }

    pub fn write(&self, url: &str, group: &str, body: String) -> WriteOutcome {
        let r = self
            .http
            .post(format!("{url}/api/v1/write?group={group}&precision=ns"))
            .body(body)
            .send();
        match r {
            Ok(r) if r.status().as_u16() == 204 => WriteOutcome::Acked,
            Ok(r) if r.status().is_client_error() => WriteOutcome::Rejected(r.status().as_u16()),
            _ => WriteOutcome::Unknown,
        }
    }

    /// Every point of every measure of every group, sorted.
    pub fn dump(&self, url: &str) -> Result<Vec<Row>> {
        let groups: Value = self
            .http
            .get(format!("{url}/api/v1/groups"))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| ChaosError::http("GET groups", e))?;
        let mut rows = Vec::new();
        let empty = Vec::new();
        for g in groups["groups"].as_array().unwrap_or(&empty) {
            let group = g["name"].as_str().unwrap_or_default();
            for m in g["measures"].as_array().unwrap_or(&empty) {
                let measure = m["name"].as_str().unwrap_or_default();
                self.dump_measure(url, group, measure, &mut rows)?;
            }
        }
        rows.sort();
        Ok(rows)
    }

    fn dump_measure(
        &self,
        url: &str,
        group: &str,
        measure: &str,
        out: &mut Vec<Row>,
    ) -> Result<()> {
        let what = format!("query {group}/{measure}");
        let v: Value = self
            .http
            .post(format!("{url}/api/v1/query"))
            .json(&json!({"group": group, "measure": measure}))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| ChaosError::http(&what, e))?;
        let bad = |d: &str| ChaosError::http(&what, format!("{d} in answer"));
        for s in v["series"].as_array().ok_or_else(|| bad("no series"))? {
            let mut tags: Vec<(String, String)> = s["tags"]
                .as_object()
                .ok_or_else(|| bad("no tags"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            tags.sort();
            let cols: Vec<&str> = s["columns"]
                .as_array()
                .ok_or_else(|| bad("no columns"))?
                .iter()
                .map(|c| c.as_str().unwrap_or_default())
                .collect();
            for r in s["values"].as_array().ok_or_else(|| bad("no values"))? {
                let r = r
                    .as_array()
                    .ok_or_else(|| bad("a row that is not an array"))?;
                let ts = r
                    .first()
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("a row without time"))?;
                let fields = cols
                    .iter()
                    .zip(r.iter())
                    .skip(1)
                    .filter(|(_, v)| !v.is_null())
                    .map(|(c, v)| (c.to_string(), v.to_string()))
                    .collect();
                out.push(Row {
                    group: group.to_string(),
                    measure: measure.to_string(),
                    tags: tags.clone(),
                    ts,
                    fields,
                });
            }
        }
        Ok(())
    }

    /// The value of an unlabelled counter or gauge in `/metrics`, if the server answers.
    pub fn metric(&self, url: &str, name: &str) -> Option<u64> {
        let text = self
            .http
            .get(format!("{url}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }
}
