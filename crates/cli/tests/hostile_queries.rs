//! Heavy and hostile queries and wide points through the real binary (issue 18, items 2, 4
//! and 8): repeated field names, a bucket width that overflows, the per-query memory budget,
//! a query whose client disconnects, the field caps, and `strata_series` across flush windows.
#![allow(clippy::unwrap_used)]

mod server_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::*;

fn metric(s: &Server, name: &str) -> f64 {
    let text = s
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `series` hosts × `per` points one second apart.
fn lines(series: usize, per: usize, t0: i64) -> String {
    let mut b = String::new();
    for h in 0..series {
        for i in 0..per {
            b.push_str(&format!("cpu,host=h{h} f={i},g={h}i {}\n", t0 + i as i64));
        }
    }
    b
}

#[test]
fn repeated_fields_are_merged_and_an_overflowing_every_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t0 = base_secs();
    s.write_ok("g", "s", &lines(3, 10, t0));
    let fields = vec!["f"; 1000];
    let v = s.query_ok(&json!({"group": "g", "measure": "cpu", "fields": fields, "limit": 1}));
    for series in v["series"].as_array().unwrap() {
        assert_eq!(series["columns"], json!(["time", "f"]), "{v}");
    }
    for every in [json!("1000000000000d"), json!(u64::MAX), json!("300years")] {
        let (status, v) = s.query(&json!({
            "group": "g", "measure": "cpu", "agg": {"fn": "count", "every": every}
        }));
        assert_eq!(status, 400, "{every}: {v}");
        assert!(v["error"].as_str().unwrap().contains("agg.every"), "{v}");
    }
}

#[test]
fn the_per_query_memory_budget_refuses_a_huge_answer_but_not_a_bounded_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &["--query-memory-bytes", "1000000"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    let t0 = base_secs();
    s.write_ok("g", "s", &lines(20, 1000, t0));
    // 20,000 raw rows do not fit in 1 MB: a clear 422 instead of unbounded memory.
    let (status, v) = s.query(&json!({"group": "g", "measure": "cpu"}));
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("memory budget"),
        "{v}"
    );
    // The same scan bounded by limit, or aggregated, is answered.
    let v = s.query_ok(&json!({"group": "g", "measure": "cpu", "limit": 2, "order": "desc"}));
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 20);
    assert_eq!(rows(&series[0]).len(), 2);
    assert_eq!(rows(&series[0])[0][0], json!((t0 + 999) * 1_000_000_000));
    let v = s.query_ok(&json!({
        "group": "g", "measure": "cpu", "fields": ["f"],
        "agg": {"fn": "count", "every": "1s"}, "limit": 3
    }));
    assert_eq!(only_rows(&v).len(), 3);
    assert_eq!(only_rows(&v)[0][1], 20);
    assert_eq!(metric(&s, "strata_queries_running"), 0.0);
    // InfluxQL runs under the same budget: the statement fails (InfluxDB's way: status 200,
    // the error in the result) instead of holding every row; a bounded one is answered.
    let influxql = |q: &str| -> serde_json::Value {
        let q = q.replace(' ', "%20");
        s.request(reqwest::Method::GET, &format!("/query?db=g&q={q}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let v = influxql("SELECT * FROM cpu");
    assert!(
        v["results"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("memory budget"),
        "{v}"
    );
    let v = influxql("SELECT count(f) FROM cpu");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 20_000, "{v}");
    assert_eq!(metric(&s, "strata_query_memory_bytes"), 0.0);
}

#[test]
fn wide_points_are_capped_per_point_and_accepted_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &[
            "--max-fields-per-point",
            "20000",
            "--max-fields-per-measure",
            "20000",
        ],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    let t = base_secs();
    let wide = |n: usize| {
        (0..n)
            .map(|i| format!("f{i}={i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (status, body) = s.write("g", "s", &format!("ok x=1 {t}\nw {} {t}\n", wide(20_001)));
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["line"], 2);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("max_fields_per_point")
    );
    s.write_ok("g", "s", &format!("w {} {t}\n", wide(20_000)));
    let v = s.query_ok(&json!({"group": "g", "measure": "w"}));
    let row = &only_rows(&v)[0];
    assert_eq!(row.len(), 20_001);
    // Default caps: a line of 1,025 fields is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Server::start(dir2.path());
    let (status, body) = s2.write("g", "s", &format!("w {} {t}\n", wide(1025)));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn strata_series_counts_series_of_every_flush_window_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &["--idle-flush", "100ms"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    let t0 = base_secs();
    // Three flush windows of 2,000 new series each, plus repeats of the first window's.
    for w in 0..3 {
        let mut b = String::new();
        for h in 0..2000 {
            b.push_str(&format!("cpu,host=w{w}h{h} f=1 {}\n", t0 + w));
            b.push_str(&format!("cpu,host=w0h{h} f=2 {}\n", t0 + w));
        }
        let parts = metric(&s, "strata_parts");
        s.write_ok("g", "s", &b);
        let deadline = Instant::now() + Duration::from_secs(30);
        while metric(&s, "strata_parts") <= parts {
            assert!(Instant::now() < deadline, "no flush");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let n = metric(&s, "strata_series");
    assert!(
        (n - 6000.0).abs() <= 6000.0 * 0.05,
        "strata_series {n}, want ~6000"
    );
}

/// CPU time (user + system) the process has used, from `/proc/PID/stat` in USER_HZ (100/s).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after it start past the last ')'.
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // f[0] is field 3 (state): utime is field 14, stime field 15.
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_query_stops_when_its_client_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &["--idle-flush", "100ms"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    // 2 M values in one write (one flush, one part per shard: no merge runs afterwards), so
    // the query below takes a while in a debug build.
    let t0 = base_secs();
    let mut body = String::new();
    for h in 0..200 {
        for i in 0..1000 {
            body.push_str(&format!("wide,host=h{h} "));
            let fields: Vec<String> = (0..10).map(|k| format!("f{k}={}", i + k)).collect();
            body.push_str(&fields.join(","));
            body.push_str(&format!(" {}\n", t0 + i as i64));
        }
    }
    s.write_ok("w", "s", &body);
    wait_for("flush", Duration::from_secs(120), || {
        metric(&s, "strata_memtable_bytes") == 0.0 && metric(&s, "strata_parts") > 0.0
    });
    // 1 s buckets: every block spans many, so the query decodes all 2 M values (in 1 h
    // buckets the server answers it from the blocks' summaries in milliseconds).
    let q = json!({"group": "w", "measure": "wide", "agg": {"fn": "count", "every": "1s"}});

    // The client sends the query, waits until it runs, and goes away.
    let text = q.to_string();
    let stopped = leave_while_running(
        &s,
        &format!(
            "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{text}",
            text.len()
        ),
    );
    // Stopped by its cancel token (not by running to its end), holding no memory.
    assert_eq!(metric(&s, "strata_queries_cancelled_total"), 1.0);
    assert_eq!(metric(&s, "strata_query_memory_bytes"), 0.0);
    // And no core stays busy for it.
    let before = cpu_secs(s.pid());
    std::thread::sleep(Duration::from_millis(500));
    let busy = cpu_secs(s.pid()) - before;
    assert!(
        busy < 0.2,
        "server used {busy} s of CPU in 0.5 s after the client left"
    );

    // The same query run to its end takes far longer than the cancelled one took to stop, and
    // is not counted as cancelled.
    let start = Instant::now();
    let v = s.query_ok(&q);
    let full = start.elapsed();
    let counted: i64 = only_rows(&v).iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(counted, 200_000, "{v}");
    assert!(
        stopped * 3 < full,
        "stopped {stopped:?} after the disconnect; the whole query takes {full:?}"
    );
    assert_eq!(metric(&s, "strata_queries_cancelled_total"), 1.0);
    assert_eq!(metric(&s, "strata_query_memory_bytes"), 0.0);

    // InfluxQL too (the same scan through GET /query).
    leave_while_running(
        &s,
        "GET /query?db=w&q=SELECT%20*%20FROM%20wide HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(metric(&s, "strata_queries_cancelled_total"), 2.0);
    assert_eq!(metric(&s, "strata_query_memory_bytes"), 0.0);
}

/// Sends `request` on a fresh connection, waits until the server runs it, closes the
/// connection; returns how long the query took to stop after that.
fn leave_while_running(s: &Server, request: &str) -> Duration {
    let mut sock = TcpStream::connect(s.url.trim_start_matches("http://")).unwrap();
    sock.write_all(request.as_bytes()).unwrap();
    wait_for("query start", Duration::from_secs(30), || {
        metric(s, "strata_queries_running") == 1.0
    });
    drop(sock);
    let left = Instant::now();
    wait_for("query stop", Duration::from_secs(30), || {
        metric(s, "strata_queries_running") == 0.0
    });
    left.elapsed()
}
