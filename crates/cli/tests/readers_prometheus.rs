//! Prometheus remote read, by a Prometheus no one here wrote: the Debian `prometheus` package
//! (installed by `scripts/install-test-deps.sh`) with `remote_read` at Strata answers PromQL
//! (`rate()`, `avg by (…)`) through its own HTTP API, and the answers match what Strata's JSON
//! API returns for the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_support::Server;
use strata_prompb::{Label, Message, Sample, TimeSeries, WriteRequest};

const GROUP: &str = "metrics";
const STEP: i64 = 15;

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(strata: &str) -> Prometheus {
    let bin = Path::new("/usr/bin/prometheus");
    assert!(
        bin.exists(),
        "prometheus is missing: run scripts/install-test-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1h\nremote_read:\n  - url: {strata}/api/v1/prom/read?group={GROUP}\n    read_recent: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = reqwest::blocking::get(format!("{}/-/ready", p.url))
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready: {}",
            std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn query_range(p: &Prometheus, q: &str, start: i64, end: i64, step: i64) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query_range", p.url),
        &[
            ("query", q.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ],
    )
    .unwrap();
    let r: Value = reqwest::blocking::Client::new()
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["status"], "success", "{q}: {r}");
    r["data"]["result"].as_array().unwrap().clone()
}

/// `{labels → [(t, v)]}` of a matrix, labels rendered `k=v,...`.
fn matrix(result: &[Value]) -> BTreeMap<String, Vec<(i64, f64)>> {
    result
        .iter()
        .map(|s| {
            let m = s["metric"].as_object().unwrap();
            let key = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect::<Vec<_>>()
                .join(",");
            let vals = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap() as i64,
                        p[1].as_str().unwrap().parse::<f64>().unwrap(),
                    )
                })
                .collect();
            (key, vals)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn prometheus_answers_promql_over_strata() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(dir.path());
    // 20 minutes of data every 15 s, ending a few minutes ago: a counter rising k/s per host
    // and a gauge; hosts h1, h2 in eu, h3 in us.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base = (now / 60 - 25) * 60;
    let hosts = [("h1", "eu", 1i64), ("h2", "eu", 2), ("h3", "us", 5)];
    let mut lp = String::new();
    for i in 0..80i64 {
        let t = base + i * STEP;
        for (h, r, k) in hosts {
            lp.push_str(&format!(
                "cpu,host={h},region={r} counter={}i,usage={} {t}\n",
                1000 + k * STEP * i,
                (k * (i % 4)) as f64 * 0.5
            ));
        }
    }
    strata.write_ok(GROUP, "s", &lp);
    // One series as Prometheus itself would remote-write it.
    let wr = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "up".into(),
                },
                Label {
                    name: "job".into(),
                    value: "api".into(),
                },
            ],
            samples: (0..80)
                .map(|i| Sample {
                    value: 1.0,
                    timestamp: (base + i * STEP) * 1000,
                })
                .collect(),
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&wr.encode_to_vec())
        .unwrap();
    let r = strata
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/prom/write?group={GROUP}"),
        )
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    let prom = start_prometheus(&strata.url);
    let (start, end) = (base + 300, base + 1140);

    // The same data through Strata's JSON API.
    let raw = strata.query_ok(&json!({
        "group": GROUP, "measure": "cpu", "fields": ["counter", "usage"],
        "from": base * 1_000_000_000, "to": (base + 1200) * 1_000_000_000
    }));
    let mut slope: BTreeMap<String, f64> = BTreeMap::new();
    let mut usage: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for s in raw["series"].as_array().unwrap() {
        let host = s["tags"]["host"].as_str().unwrap().to_string();
        let region = s["tags"]["region"].as_str().unwrap().to_string();
        let v = s["values"].as_array().unwrap();
        let (t0, c0) = (v[0][0].as_i64().unwrap(), v[0][1].as_f64().unwrap());
        let last = &v[v.len() - 1];
        let (t1, c1) = (last[0].as_i64().unwrap(), last[1].as_f64().unwrap());
        slope.insert(host.clone(), (c1 - c0) / ((t1 - t0) as f64 / 1e9));
        usage.insert(
            (region, host),
            v.iter()
                .map(|r| {
                    (
                        r[0].as_i64().unwrap() / 1_000_000_000,
                        r[2].as_f64().unwrap(),
                    )
                })
                .collect(),
        );
    }
    assert_eq!(slope.len(), 3);

    // rate(): a counter rising linearly has the same rate at every step.
    let got = matrix(&query_range(&prom, "rate(cpu_counter[1m])", start, end, 60));
    assert_eq!(got.len(), 3, "{got:?}");
    for (labels, points) in &got {
        let host = labels
            .split(',')
            .find_map(|kv| kv.strip_prefix("host="))
            .unwrap();
        assert!(labels.contains("region="), "labels come back: {labels}");
        assert_eq!(points.len(), 15);
        for (t, v) in points {
            assert!(
                close(*v, slope[host]),
                "{labels} at {t}: {v} vs {}",
                slope[host]
            );
        }
    }

    // avg by (region) (rate(...)).
    let got = matrix(&query_range(
        &prom,
        "avg by (region) (rate(cpu_counter[1m]))",
        start,
        end,
        60,
    ));
    let eu = (slope["h1"] + slope["h2"]) / 2.0;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        vec!["region=eu", "region=us"]
    );
    assert!(got["region=eu"].iter().all(|(_, v)| close(*v, eu)));
    assert!(got["region=us"].iter().all(|(_, v)| close(*v, slope["h3"])));

    // avg by (region) of a gauge: at each step, each series' newest sample at or before it.
    let got = matrix(&query_range(
        &prom,
        "avg by (region) (cpu_usage)",
        start,
        end,
        60,
    ));
    for region in ["eu", "us"] {
        let series = &got[&format!("region={region}")];
        assert_eq!(series.len(), 15);
        for (t, v) in series {
            let vals: Vec<f64> = usage
                .iter()
                .filter(|((r, _), _)| r == region)
                .map(|(_, pts)| pts.iter().rev().find(|(pt, _)| pt <= t).unwrap().1)
                .collect();
            let want = vals.iter().sum::<f64>() / vals.len() as f64;
            assert!(close(*v, want), "{region} at {t}: {v} vs {want}");
        }
    }

    // A remote-written series comes back with its own name and labels.
    let got = matrix(&query_range(&prom, "up{job=\"api\"}", start, end, 60));
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["__name__=up,job=api"]);
    assert!(got.values().next().unwrap().iter().all(|(_, v)| *v == 1.0));
}

#[test]
fn remote_read_over_the_limit_is_the_protocols_error() {
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start_with(server_support::Opts {
        args: &[],
        env: &[("STRATA_REMOTE_READ_MAX_SAMPLES", "10")],
        data_dir: Some(dir.path()),
        token: None,
    });
    let base = server_support::base_secs();
    let lp: String = (0..20)
        .map(|i| format!("cpu,host=a v={i} {}\n", base + i))
        .collect();
    strata.write_ok(GROUP, "s", &lp);
    let prom = start_prometheus(&strata.url);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", prom.url),
        &[
            ("query", "count_over_time(cpu_v[1h])".to_string()),
            ("time", (base + 60).to_string()),
        ],
    )
    .unwrap();
    let r: Value = reqwest::blocking::Client::new()
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap();
    // Prometheus 2.42 reports a failed remote read as a warning beside an empty answer: the
    // refusal reaches the user, and no partial data is passed off as the answer.
    assert_eq!(r["data"]["result"], serde_json::json!([]), "{r}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("400 Bad Request: exceeded sample limit (10)"),
        "{r}"
    );
}
