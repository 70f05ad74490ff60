//! Ingest through the real binary: line protocol edge cases, atomic batches, body limits,
//! gzip, the InfluxDB v1/v2 URLs and Prometheus remote write.
#![allow(clippy::unwrap_used)]

mod server_support;

use std::io::Write;

use serde_json::{Value, json};
use server_support::{Opts, Server, base_secs, only_rows};
// Remote write 1.0 messages: the one shared declaration (its own tests pin the bytes).
use strata_prompb as prom;

fn raw(server: &Server, group: &str, measure: &str) -> Value {
    server.query_ok(&json!({"group": group, "measure": measure}))
}

#[test]
fn line_protocol_edge_cases_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs();
    // Escapes everywhere, every field type, a string with a quote, backslash, comma and newline.
    let body = format!(
        "# a comment line\n\
         my\\ cpu,ho\\=st=a\\ b\\,c f=1.5,i=-7i,u=18446744073709551u,b=T,s=\"x\\\"y\\\\z, \nw\" {t}\n\
         \n\
         my\\ cpu,ho\\=st=a\\ b\\,c f=2e1,b=false,bb=FALSE,bt=True {}\r\n",
        t + 1
    );
    s.write_ok("lp", "s", &body);
    let v = raw(&s, "lp", "my cpu");
    let series = &v["series"][0];
    assert_eq!(series["tags"], json!({"ho=st": "a b,c"}), "{v}");
    assert_eq!(
        series["columns"],
        json!(["time", "b", "bb", "bt", "f", "i", "s", "u"])
    );
    let ns = t * 1_000_000_000;
    assert_eq!(
        only_rows(&v),
        vec![
            vec![
                json!(ns),
                json!(true),
                Value::Null,
                Value::Null,
                json!(1.5),
                json!(-7),
                json!("x\"y\\z, \nw"),
                json!(18_446_744_073_709_551i64)
            ],
            vec![
                json!(ns + 1_000_000_000),
                json!(false),
                json!(false),
                json!(true),
                json!(20.0),
                Value::Null,
                Value::Null,
                Value::Null
            ],
        ]
    );
}

#[test]
fn precisions_and_the_influx_v1_v2_urls() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs();
    s.write_ok("p", "s", &format!("m,p=s v=1 {t}"));
    s.write_ok("p", "ms", &format!("m,p=ms v=1 {}", t * 1_000 + 1));
    s.write_ok("p", "us", &format!("m,p=us v=1 {}", t * 1_000_000 + 2));
    s.write_ok("p", "ns", &format!("m,p=ns v=1 {}", t * 1_000_000_000 + 3));
    let post = |path: &str, body: String| {
        let r = s
            .request(reqwest::Method::POST, path)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{path}: {}", r.text().unwrap());
    };
    post(
        "/write?db=p&precision=u",
        format!("m,p=v1 v=1 {}", t * 1_000_000 + 4),
    );
    post(
        "/api/v2/write?bucket=p&org=ignored&precision=ms",
        format!("m,p=v2 v=1 {}", t * 1_000 + 5),
    );
    let v = raw(&s, "p", "m");
    let ns = t * 1_000_000_000;
    let mut got: Vec<(String, i64)> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|se| {
            (
                se["tags"]["p"].as_str().unwrap().to_string(),
                se["values"][0][0].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ms".to_string(), ns + 1_000_000),
            ("ns".to_string(), ns + 3),
            ("s".to_string(), ns),
            ("us".to_string(), ns + 2_000),
            ("v1".to_string(), ns + 4_000),
            ("v2".to_string(), ns + 5_000_000),
        ]
    );
    // No timestamp: server time, i.e. close to now.
    s.write_ok("now", "ns", "m v=1");
    let ts = only_rows(&raw(&s, "now", "m"))[0][0].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    assert!((now - ts).abs() < 60_000_000_000, "ts {ts} vs now {now}");
    // A missing group or a bad precision is a 400.
    assert_eq!(s.write("", "s", "m v=1").0, 400);
    assert_eq!(s.write("p", "fortnights", "m v=1").0, 400);
}

#[test]
fn batch_rejected_on_its_seventh_line_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = base_secs();
    s.write_ok("atomic", "s", &format!("m,h=seed v=0 {t}"));
    let mut lines: Vec<String> = (1..=10)
        .map(|i| format!("m,h=h{i} v={i} {}", t + i))
        .collect();
    lines[6] = format!("m,h=h7 v=oops {}", t + 7);
    let (status, body) = s.write("atomic", "s", &lines.join("\n"));
    assert_eq!(status, 400, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["line"], 7, "{err}");
    assert!(err["reason"].as_str().unwrap().contains("oops"), "{err}");
    // Only the seed point exists.
    let v = raw(&s, "atomic", "m");
    assert_eq!(v["series"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["series"][0]["tags"]["h"], "seed");
    // A field type conflict is caught by the engine: also atomic.
    let (status, body) = s.write(
        "atomic",
        "s",
        &format!("m,h=new v=1 {}\nm,h=new2 v=\"str\" {}", t + 20, t + 21),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        raw(&s, "atomic", "m")["series"].as_array().unwrap().len(),
        1
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_bodies_and_the_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(Opts {
        args: &["--max-body-bytes", "4096"],
        env: &[],
        data_dir: Some(dir.path()),
        token: None,
    });
    let t = base_secs();
    let body: String = (0..20)
        .map(|i| format!("gz,i=n{i} v={i} {}\n", t + i))
        .collect();
    let post = |body: Vec<u8>, gz: bool| {
        let mut r = s
            .request(reqwest::Method::POST, "/api/v1/write?group=gz&precision=s")
            .body(body);
        if gz {
            r = r.header("Content-Encoding", "gzip");
        }
        let r = r.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(post(gzip(body.as_bytes()), true).0, 204);
    assert_eq!(raw(&s, "gz", "gz")["series"].as_array().unwrap().len(), 20);
    // Over the limit as sent, and over it only once decompressed (a small gzip bomb).
    let big = "x".repeat(5000);
    assert_eq!(post(big.clone().into_bytes(), false).0, 413);
    let bomb = gzip(big.as_bytes());
    assert!(bomb.len() < 4096);
    assert_eq!(post(bomb, true).0, 413);
    // Not gzip at all.
    assert_eq!(post(b"plain".to_vec(), true).0, 400);
}

#[test]
fn prometheus_remote_write() {
    use prom::Message;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let ms = base_secs() * 1000;
    let label = |n: &str, v: &str| prom::Label {
        name: n.into(),
        value: v.into(),
    };
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let req = prom::WriteRequest {
        timeseries: vec![
            prom::TimeSeries {
                labels: vec![
                    label("__name__", "http_requests_total"),
                    label("job", "api"),
                    label("instance", "a:9090"),
                ],
                samples: (0..5)
                    .map(|i| prom::Sample {
                        value: f64::from(i) * 10.0,
                        timestamp: ms + i64::from(i) * 15_000,
                    })
                    .chain(std::iter::once(prom::Sample {
                        value: stale,
                        timestamp: ms + 90_000,
                    }))
                    .collect(),
            },
            prom::TimeSeries {
                labels: vec![label("__name__", "http_requests_total"), label("job", "db")],
                samples: vec![prom::Sample {
                    value: 7.0,
                    timestamp: ms,
                }],
            },
        ],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = s
        .request(reqwest::Method::POST, "/api/v1/prom/write?group=prom")
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().unwrap());
    let v = s.query_ok(&json!({
        "group": "prom", "measure": "http_requests_total",
        "where": {"job": "api"}, "fields": ["value"]
    }));
    let series = &v["series"][0];
    assert_eq!(series["tags"], json!({"instance": "a:9090", "job": "api"}));
    let rows = only_rows(&v);
    // Five samples; the stale marker is not stored.
    assert_eq!(rows.len(), 5, "{v}");
    assert_eq!(rows[4], vec![json!((ms + 60_000) * 1_000_000), json!(40.0)]);
    let sum = s.query_ok(&json!({
        "group": "prom", "measure": "http_requests_total",
        "agg": {"fn": "sum"}, "fields": ["value"]
    }));
    assert_eq!(only_rows(&sum)[0][1], json!(107.0));
    let metrics = s
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("strata_remote_write_stale_markers_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("strata_ingested_points_total{protocol=\"prometheus\"} 6"));
    // Garbage is a 400, not a crash.
    let r = s
        .request(reqwest::Method::POST, "/api/v1/prom/write?group=prom")
        .body(vec![1u8, 2, 3])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// InfluxDB 1.x clients (Telegraf's `outputs.influxdb`) send `CREATE DATABASE` to `/query`
/// before writing: it creates the group, twice is fine, other InfluxQL is a clear 400.
#[test]
fn influx_v1_query_url_creates_databases() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let send = |m: reqwest::Method, path: &str, form: Option<&str>| {
        let mut r = s.request(m, path);
        if let Some(f) = form {
            r = r
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(f.to_string());
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    };
    // As Telegraf sends it (q in the URL, POST), then as the influx CLI does (form body).
    let (st, v) = send(
        reqwest::Method::POST,
        "/query?q=CREATE%20DATABASE%20%22telegraf%22",
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"][0]["statement_id"], 0);
    let (st, _) = send(
        reqwest::Method::POST,
        "/query",
        Some("q=CREATE+DATABASE+telegraf%3B+CREATE+DATABASE+other"),
    );
    assert_eq!(st, 200);
    let (st, v) = send(reqwest::Method::GET, "/query?q=SHOW%20DATABASES", None);
    assert_eq!(st, 200);
    let names: Vec<&str> = v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"telegraf") && names.contains(&"other"),
        "{v}"
    );
    // Writes then go to the group as usual.
    let t = base_secs();
    let r = s
        .request(reqwest::Method::POST, "/write?db=telegraf&precision=s")
        .body(format!("cpu,host=a usage=1 {t}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    // Statements outside the InfluxQL subset change nothing and say so, with the position.
    let before = send(reqwest::Method::GET, "/query?q=SHOW%20DATABASES", None).1;
    for (q, says) in [
        (
            "DROP%20DATABASE%20telegraf",
            "found DROP, expected SELECT, SHOW, CREATE",
        ),
        (
            "CREATE%20DATABASE%20x%20WITH%20DURATION%207d",
            "CREATE DATABASE options are not supported",
        ),
    ] {
        let (st, v) = send(reqwest::Method::GET, &format!("/query?q={q}"), None);
        assert_eq!(st, 400, "{q}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(
            e.starts_with("error parsing query: ") && e.contains(says),
            "{q}: {v}"
        );
    }
    // A SELECT needs a database, as in InfluxDB: the statement's error, status 200.
    let (st, v) = send(
        reqwest::Method::GET,
        "/query?q=SELECT%20*%20FROM%20cpu",
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["results"][0]["error"], "database name required");
    let (st, v) = send(reqwest::Method::GET, "/query", None);
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("\"q\""), "{v}");
    assert_eq!(
        send(reqwest::Method::GET, "/query?q=SHOW%20DATABASES", None).1,
        before
    );
}
