//! Queries through the real binary, checked against a reference computed from the inserted
//! data: every aggregation, group-by, every kind of tag filter, ranges, order and limit; plus
//! groups, snapshots, health and metrics endpoints.
#![allow(clippy::unwrap_used)]

mod server_support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use server_support::{Server, base_secs, only_rows, rows};

const HOSTS: [(&str, &str); 4] = [("h1", "eu"), ("h2", "eu"), ("h3", "us"), ("h4", "ap")];
const POINTS: i64 = 30;
const STEP_S: i64 = 10;

/// (host index, point index) → (usage f64, n i64)
fn value(h: usize, i: i64) -> (f64, i64) {
    ((h as f64 * 100.0 + i as f64) * 0.5, i * (h as i64 + 1) - 20)
}

fn load(s: &Server, t: i64) {
    let mut body = String::new();
    for (h, (host, region)) in HOSTS.iter().enumerate() {
        for i in 0..POINTS {
            let (u, n) = value(h, i);
            body.push_str(&format!(
                "cpu,host={host},region={region} usage={u},n={n}i,up=true {}\n",
                t + i * STEP_S
            ));
        }
    }
    s.write_ok("q", "s", &body);
}

/// Reference aggregation of one host's field per 60 s bucket.
fn reference(func: &str, hosts: &[usize], t: i64, field: &str) -> Vec<(i64, Value)> {
    let mut buckets: BTreeMap<i64, Vec<(i64, f64, i64)>> = BTreeMap::new();
    for &h in hosts {
        for i in 0..POINTS {
            let ts = (t + i * STEP_S) * 1_000_000_000;
            let (u, n) = value(h, i);
            buckets
                .entry(ts - ts.rem_euclid(60_000_000_000))
                .or_default()
                .push((ts, u, n));
        }
    }
    buckets
        .into_iter()
        .map(|(b, mut pts)| {
            pts.sort_by_key(|p| p.0);
            let floats: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let ints: Vec<i64> = pts.iter().map(|p| p.2).collect();
            let v = match (func, field) {
                ("count", _) => json!(pts.len()),
                ("sum", "usage") => json!(floats.iter().sum::<f64>()),
                ("sum", _) => json!(ints.iter().sum::<i64>()),
                ("mean", "usage") => json!(floats.iter().sum::<f64>() / floats.len() as f64),
                ("mean", _) => json!(ints.iter().sum::<i64>() as f64 / ints.len() as f64),
                ("min", "usage") => json!(floats.iter().cloned().fold(f64::INFINITY, f64::min)),
                ("min", _) => json!(ints.iter().min().unwrap()),
                ("max", "usage") => json!(floats.iter().cloned().fold(f64::MIN, f64::max)),
                ("max", _) => json!(ints.iter().max().unwrap()),
                ("first", "usage") => json!(floats[0]),
                ("first", _) => json!(ints[0]),
                ("last", "usage") => json!(floats[floats.len() - 1]),
                ("last", _) => json!(ints[ints.len() - 1]),
                _ => unreachable!(),
            };
            (b, v)
        })
        .collect()
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

fn hosts_of(v: &Value) -> Vec<String> {
    v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tags"]["host"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn every_aggregation_grouped_by_host_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs() + 5; // not bucket-aligned, so buckets hold 5 or 6 points
    load(&s, t);
    for func in ["count", "sum", "min", "max", "mean", "first", "last"] {
        let v = s.query_ok(&json!({
            "group": "q", "measure": "cpu",
            "where": {"region": ["eu", "us"]},
            "fields": ["usage", "n"],
            "agg": {"fn": func, "every": "1m"},
            "group_by": ["host"],
        }));
        assert_eq!(hosts_of(&v), vec!["h1", "h2", "h3"], "{func}: {v}");
        for (si, series) in v["series"].as_array().unwrap().iter().enumerate() {
            assert_eq!(series["columns"], json!(["time", "usage", "n"]));
            let got = rows(series);
            for (ci, field) in [(1, "usage"), (2, "n")] {
                let want = reference(func, &[si], t, field);
                assert_eq!(got.len(), want.len(), "{func} {field}");
                for (row, (b, w)) in got.iter().zip(&want) {
                    assert_eq!(row[0], json!(b), "{func} {field} bucket");
                    assert!(
                        close(&row[ci], w),
                        "{func} {field}: got {} want {w}",
                        row[ci]
                    );
                }
            }
        }
    }
}

#[test]
fn group_by_region_and_whole_range_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs();
    load(&s, t);
    let v = s.query_ok(&json!({
        "group": "q", "measure": "cpu", "fields": ["usage"],
        "agg": {"fn": "sum", "every": "1m"}, "group_by": ["region"],
    }));
    let regions: Vec<&str> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tags"]["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, vec!["ap", "eu", "us"]);
    let eu = rows(&v["series"][1]);
    let want = reference("sum", &[0, 1], t, "usage");
    assert_eq!(eu.len(), want.len());
    for (row, (b, w)) in eu.iter().zip(&want) {
        assert_eq!(row[0], json!(b));
        assert!(close(&row[1], w));
    }
    // No every, no group_by: one row for everything, stamped with `from`.
    let from = (t - 60) * 1_000_000_000;
    let v = s.query_ok(&json!({
        "group": "q", "measure": "cpu", "from": from, "fields": ["n", "up"],
        "agg": {"fn": "count"},
    }));
    assert_eq!(
        only_rows(&v),
        vec![vec![json!(from), json!(120), json!(120)]]
    );
}

#[test]
fn tag_filters_ranges_order_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs();
    load(&s, t);
    let q = |filter: Value| {
        let v = s.query_ok(&json!({"group": "q", "measure": "cpu", "fields": ["n"],
                                   "where": filter}));
        hosts_of(&v)
    };
    assert_eq!(q(json!({"host": "h2"})), vec!["h2"]);
    assert_eq!(q(json!({"region": {"eq": "eu"}})), vec!["h1", "h2"]);
    assert_eq!(q(json!({"region": {"ne": "eu"}})), vec!["h3", "h4"]);
    assert_eq!(q(json!({"host": ["h1", "h4", "nope"]})), vec!["h1", "h4"]);
    assert_eq!(q(json!({"host": {"in": ["h3"]}})), vec!["h3"]);
    assert_eq!(
        q(json!({"host": {"not_in": ["h1", "h2"]}})),
        vec!["h3", "h4"]
    );
    assert_eq!(q(json!({"host": {"regex": "h[13]"}})), vec!["h1", "h3"]);
    assert_eq!(q(json!({"host": {"not_regex": "h[13]"}})), vec!["h2", "h4"]);
    assert_eq!(q(json!({"region": "eu", "host": {"ne": "h1"}})), vec!["h2"]);
    assert!(q(json!({"host": "h9"})).is_empty());

    // [from, to) in RFC 3339: points 3..=5 of h1.
    let rfc = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .to_rfc3339()
    };
    let v = s.query_ok(&json!({
        "group": "q", "measure": "cpu", "where": {"host": "h1"}, "fields": ["n"],
        "from": rfc(t + 3 * STEP_S), "to": rfc(t + 6 * STEP_S),
    }));
    let ns = |i: i64| json!((t + i * STEP_S) * 1_000_000_000);
    assert_eq!(
        only_rows(&v),
        vec![
            vec![ns(3), json!(value(0, 3).1)],
            vec![ns(4), json!(value(0, 4).1)],
            vec![ns(5), json!(value(0, 5).1)],
        ]
    );
    // Newest two, newest first.
    let v = s.query_ok(&json!({
        "group": "q", "measure": "cpu", "where": {"host": "h1"}, "fields": ["n"],
        "order": "desc", "limit": 2,
    }));
    let times: Vec<Value> = only_rows(&v).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(times, vec![ns(POINTS - 1), ns(POINTS - 2)]);
}

#[test]
fn bad_queries_are_clear_client_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    load(&s, base_secs());
    for (q, want_status, want) in [
        (json!({"group": "q"}), 400, "measure"),
        (
            json!({"group": "q", "measure": "cpu", "agg": {"fn": "median"}}),
            400,
            "median",
        ),
        (
            json!({"group": "q", "measure": "cpu", "from": "last tuesday"}),
            400,
            "from",
        ),
        (
            json!({"group": "q", "measure": "cpu", "where": {"host": {"regex": "("}}}),
            400,
            "regex",
        ),
        (
            json!({"group": "q", "measure": "cpu", "fields": ["up"], "agg": {"fn": "sum"}}),
            400,
            "boolean",
        ),
        (json!({"group": "nope", "measure": "cpu"}), 404, "nope"),
    ] {
        let (status, body) = s.query(&q);
        assert_eq!(status, want_status, "{q}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(want), "{q}: {msg}");
    }
}

#[test]
fn groups_snapshots_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let send = |m: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = s.request(m, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    use reqwest::Method as M;
    assert_eq!(
        send(M::GET, "/healthz", None),
        (200, json!({"status": "ok"}))
    );
    let (st, v) = send(
        M::PUT,
        "/api/v1/groups/metrics",
        Some(json!({"ttl": "90d", "shards": 1, "backup_tier": "hot"})),
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = send(M::GET, "/api/v1/groups/metrics", None);
    assert_eq!(st, 200);
    assert_eq!(
        v["settings"]["ttl_ns"],
        json!(90 * 86_400 * 1_000_000_000i64)
    );
    assert_eq!(v["settings"]["backup_tier"], "hot");
    assert_eq!(send(M::GET, "/api/v1/groups/absent", None).0, 404);
    assert_eq!(
        send(M::PUT, "/api/v1/groups/metrics", Some(json!({"tll": "1d"}))).0,
        400
    );
    s.write_ok("metrics", "s", &format!("m v=1 {}", base_secs()));
    let (_, v) = send(M::GET, "/api/v1/groups", None);
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["metrics"]);

    let (st, snap) = send(M::POST, "/api/v1/snapshots", None);
    assert_eq!(st, 201, "{snap}");
    let id = snap["id"].as_str().unwrap().to_string();
    assert!(snap["lsn"].as_u64().unwrap() >= 1);
    // The versioned snapshot document: pinned files are read where they are.
    assert_eq!(snap["version"], 1, "{snap}");
    assert!(snap.get("dir").is_none(), "{snap}");
    let files = snap["files"].as_array().unwrap();
    assert!(!files.is_empty());
    for f in files {
        match f["local_path"].as_str() {
            Some(p) => assert!(std::path::Path::new(p).is_file(), "{f}"),
            None => assert!(f["inline_hex"].is_string(), "{f}"),
        }
    }
    let r = s
        .request(M::DELETE, &format!("/api/v1/snapshots/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    let text = s
        .request(M::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    for want in [
        "strata_ingested_points_total{protocol=\"line\"} 1",
        "strata_write_duration_seconds_count 1",
        "strata_wal_fsyncs_total",
        "strata_series",
        "strata_parts",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }

    let r = s
        .request(M::DELETE, "/api/v1/groups/metrics")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(send(M::GET, "/api/v1/groups/metrics", None).0, 404);
}
