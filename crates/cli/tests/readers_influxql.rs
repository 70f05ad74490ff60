//! InfluxQL read by clients no one here wrote: the Debian `influx` 1.x CLI and the PyPI
//! `influxdb` library (installed by `scripts/install-test-deps.sh`), running the queries
//! Grafana's InfluxDB data source generates (`fixtures/grafana_influxql.jsonl`). Every answer
//! is checked against Strata's own JSON API on the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use server_support::{Server, base_secs};

const GROUP: &str = "metrics";
const INTERVAL: &str = "1m";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A client tool, or a failure that says how to install it.
fn tool(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        path.display()
    );
    path
}

struct Data {
    server: Server,
    _dir: tempfile::TempDir,
    from_ms: i64,
    to_ms: i64,
}

/// Three hosts of `cpu` (two in eu) every 10 s for 30 minutes, and one `mem` point.
fn start() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = base_secs();
    let mut lp = String::new();
    for i in 0..180i64 {
        for (h, region, k) in [("h1", "eu", 1.0), ("h2", "eu", 2.0), ("h3", "us", 3.0)] {
            let t = base + i * 10;
            lp.push_str(&format!(
                "cpu,host={h},region={region} usage_user={},usage_system={},requests={}i {t}\n",
                k * (i % 7) as f64 + 0.25,
                k * (i % 5) as f64 / 3.0,
                i * 3 + k as i64
            ));
        }
    }
    lp.push_str(&format!("mem,host=h1 free=7i {base}\n"));
    server.write_ok(GROUP, "s", &lp);
    Data {
        server,
        _dir: dir,
        // Grafana's $timeFilter: both ends inclusive, in ms; one bucket past the data.
        from_ms: base * 1000,
        to_ms: (base + 1860) * 1000,
    }
}

fn fixtures() -> Vec<Value> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana_influxql.jsonl"),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

impl Data {
    fn influxql(&self, f: &Value) -> String {
        f["influxql"]
            .as_str()
            .unwrap()
            .replace(
                "$timeFilter",
                &format!("time >= {}ms and time <= {}ms", self.from_ms, self.to_ms),
            )
            .replace("$__interval", INTERVAL)
    }

    /// The fixture's JSON-API query over the same range.
    fn json_query(&self, f: &Value) -> Value {
        let mut q = f["json"].clone();
        q["group"] = json!(GROUP);
        q["from"] = json!(self.from_ms * 1_000_000);
        q["to"] = json!(self.to_ms * 1_000_000 + 1);
        if q["agg"]["every"] == "$__interval" {
            q["agg"]["every"] = json!(INTERVAL);
        }
        q
    }
}

/// tags → rows, rows of all-null values dropped (InfluxQL's `fill(null)` buckets).
type Shape = BTreeMap<Vec<(String, String)>, Vec<Vec<Value>>>;

fn influx_shape(result: &Value) -> Shape {
    let mut out = Shape::new();
    assert!(result.get("error").is_none(), "statement error: {result}");
    for s in result["series"].as_array().cloned().unwrap_or_default() {
        let tags: Vec<(String, String)> = s["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let rows = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .filter(|r| r[1..].iter().any(|v| !v.is_null()))
            .collect();
        out.insert(tags, rows);
    }
    out
}

/// The JSON API's answer in the same shape. Without `group_by` InfluxQL merges all series into
/// one untagged series; the JSON API keeps them apart, so they are merged here.
fn json_shape(q: &Value, answer: &Value, single_bucket_time: Option<i64>) -> Shape {
    let grouped = q.get("group_by").is_some();
    let mut out = Shape::new();
    for s in answer["series"].as_array().unwrap() {
        let tags: Vec<(String, String)> = if grouped {
            s["tags"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        } else {
            Vec::new()
        };
        let rows = out.entry(tags).or_default();
        for r in s["values"].as_array().unwrap() {
            let mut r = r.as_array().unwrap().clone();
            if let Some(t) = single_bucket_time {
                r[0] = json!(t);
            }
            rows.push(r);
        }
    }
    let desc = q["order"] == "desc";
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r[0].as_i64().unwrap());
        if desc {
            rows.reverse();
        }
    }
    out
}

/// Numbers compared as f64 within rounding (mean of floats may differ in the last bit).
fn same(a: &Shape, b: &Shape) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, ra), (kb, rb))| {
            ka == kb
                && ra.len() == rb.len()
                && ra.iter().zip(rb).all(|(x, y)| {
                    x.len() == y.len()
                        && x.iter()
                            .zip(y)
                            .all(|(u, v)| match (u.as_f64(), v.as_f64()) {
                                (Some(u), Some(v)) => (u - v).abs() <= 1e-9 * u.abs().max(1.0),
                                _ => u == v,
                            })
                })
        })
}

fn check_against_json_api(d: &Data, f: &Value, result: &Value) {
    let name = f["name"].as_str().unwrap();
    if let Some(expect) = f.get("expect") {
        let s = &result["series"][0];
        assert_eq!(s["values"], expect["values"], "{name}: {result}");
        if let Some(n) = expect.get("name") {
            assert_eq!(&s["name"], n, "{name}");
        }
        return;
    }
    let q = d.json_query(f);
    let answer = d.server.query_ok(&q);
    // An aggregate without GROUP BY time() is stamped with the range start by InfluxQL.
    let whole = q.get("agg").is_some() && q["agg"].get("every").is_none();
    let want = json_shape(&q, &answer, whole.then_some(d.from_ms * 1_000_000));
    let got = influx_shape(result);
    assert!(!want.is_empty(), "{name}: the JSON API found nothing");
    assert!(
        same(&got, &want),
        "{name}:\n influxql {got:?}\n json api {want:?}"
    );
}

#[test]
fn python_influxdb_client_runs_grafanas_queries() {
    let d = start();
    let py = tool(repo_root().join(".venv-tests/bin/python"));
    let fx = fixtures();
    let queries = tempfile::NamedTempFile::new().unwrap();
    let text: Vec<String> = fx.iter().map(|f| d.influxql(f)).collect();
    std::fs::write(queries.path(), text.join("\n")).unwrap();
    let port = d.server.url.rsplit(':').next().unwrap().to_string();
    let out = Command::new(py)
        .arg(repo_root().join("crates/cli/tests/clients/influx_query.py"))
        .args(["127.0.0.1", &port, GROUP])
        .arg(queries.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), fx.len());
    for (f, result) in fx.iter().zip(&lines) {
        check_against_json_api(&d, f, result);
    }
}

#[test]
fn influx_cli_reads_strata() {
    let d = start();
    let influx = tool(PathBuf::from("/usr/bin/influx"));
    let port = d.server.url.rsplit(':').next().unwrap().to_string();
    let run = |q: &str| -> Value {
        let out = Command::new(&influx)
            .args(["-host", "127.0.0.1", "-port", &port, "-database", GROUP])
            .args(["-format", "json", "-precision", "ns", "-execute", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "influx {q}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "influx {q}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    };
    for f in fixtures() {
        let v = run(&d.influxql(&f));
        // The CLI asks for chunked responses and lists every chunk as a result of its own
        // (without statement ids); together they are the statement's answer.
        let mut series = Vec::new();
        for r in v["results"].as_array().unwrap() {
            assert!(r.get("error").is_none(), "{v}");
            series.extend(r["series"].as_array().cloned().unwrap_or_default());
        }
        check_against_json_api(&d, &f, &json!({ "statement_id": 0, "series": series }));
    }
    // A syntax error reaches the user with InfluxDB's position.
    let out = Command::new(&influx)
        .args(["-host", "127.0.0.1", "-port", &port, "-database", GROUP])
        .args(["-execute", "SELECT mean(usage_user) FORM cpu"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("found FORM, expected FROM at line 1, char 25"),
        "{text}"
    );
}
