//! The HTTP load driver: one thread and one keep-alive connection per spool file, POSTing
//! pre-built bodies as fast as acknowledgements come back (or at a fixed pace), recording the
//! latency of every request. The first failed request stops all connections: a system that
//! rejects the data is reported as such, not timed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::spool::{Dataset, Protocol, SpoolReader};

#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    pub rows: u64,
    pub requests: u64,
    pub wall: Duration,
    pub latencies_us: Vec<u64>,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn points_per_s(&self) -> f64 {
        self.rows as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// POSTs the whole data set to `url`. `pace`: when set, each connection sends one body per
/// `pace` (a fixed offered load, for latency-under-load measurements).
pub fn run(ds: &Dataset, url: &str, pace: Option<Duration>) -> LoadResult {
    let stop = AtomicBool::new(false);
    let merged = Mutex::new(LoadResult::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for file in &ds.files {
            let (stop, merged) = (&stop, &merged);
            s.spawn(move || {
                let r = connection(file, url, ds.protocol, pace, stop);
                if r.first_error.is_some() {
                    stop.store(true, Ordering::Relaxed);
                }
                if let Ok(mut m) = merged.lock() {
                    m.rows += r.rows;
                    m.requests += r.requests;
                    m.latencies_us.extend(r.latencies_us);
                    if m.first_error.is_none() {
                        m.first_error = r.first_error;
                    }
                }
            });
        }
    });
    let mut result = merged.into_inner().unwrap_or_default();
    result.wall = start.elapsed();
    result
}

fn connection(
    file: &std::path::Path,
    url: &str,
    protocol: Protocol,
    pace: Option<Duration>,
    stop: &AtomicBool,
) -> LoadResult {
    let mut out = LoadResult::default();
    let client = match reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(1)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            out.first_error = Some(format!("http client: {e}"));
            return out;
        }
    };
    let mut reader = match SpoolReader::open(file) {
        Ok(r) => r,
        Err(e) => {
            out.first_error = Some(e.to_string());
            return out;
        }
    };
    let start = Instant::now();
    let mut sent = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let (rows, body) = match reader.next_body() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                out.first_error = Some(e.to_string());
                break;
            }
        };
        if let Some(p) = pace {
            let due = start + p * sent;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        sent += 1;
        let req = client.post(url).body(body);
        let req = match protocol {
            Protocol::Lp => req.header("Content-Type", "text/plain; charset=utf-8"),
            Protocol::Prom => req
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0"),
        };
        let t0 = Instant::now();
        match req.send() {
            Ok(resp) if resp.status().is_success() => {
                // Drain so the connection is reused.
                let _ = resp.bytes();
                out.latencies_us.push(t0.elapsed().as_micros() as u64);
                out.rows += u64::from(rows);
                out.requests += 1;
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().unwrap_or_default();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                out.first_error = Some(format!("HTTP {status} from {url}: {first}"));
                break;
            }
            Err(e) => {
                out.first_error = Some(format!("POST {url}: {e}"));
                break;
            }
        }
    }
    out
}
