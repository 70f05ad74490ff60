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
    run_spread(ds, &[url.to_string()], pace)
}

/// [`run`], each connection sending its bodies to `urls` in turn (body *k* of a connection to
/// `urls[k mod n]`): one data set spread over several groups, a slice of time at a time.
pub fn run_spread(ds: &Dataset, urls: &[String], pace: Option<Duration>) -> LoadResult {
    if urls.is_empty() {
        return LoadResult {
            first_error: Some("no URL to send to".into()),
            ..LoadResult::default()
        };
    }
    let stop = AtomicBool::new(false);
    let merged = Mutex::new(LoadResult::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for file in &ds.files {
            let (stop, merged) = (&stop, &merged);
            s.spawn(move || {
                let r = connection(file, ds.compressed, urls, ds.protocol, pace, stop);
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
    compressed: bool,
    urls: &[String],
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
    let mut reader = match SpoolReader::open(file, compressed) {
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
        let url = &urls[sent as usize % urls.len()];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::{GenConfig, Variant};
    use crate::spool::{DatasetSpec, prepare};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A minimal HTTP/1.1 server: answers 204 to the first `ok` requests, then 400, and
    /// counts the body bytes it received.
    fn serve(ok: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}/write",
            l.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().flatten() {
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(stream);
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let resp: &[u8] = if n < ok {
                            b"HTTP/1.1 204 No Content\r\n\r\n"
                        } else {
                            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 8\r\n\r\nbad line"
                        };
                        if r.get_mut().write_all(resp).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, served)
    }

    fn dataset(dir: &std::path::Path) -> Dataset {
        let spec = DatasetSpec {
            name: "load".into(),
            generator: GenConfig {
                hosts: 4,
                seed: 1,
                start_ns: 0,
                interval_ns: 10,
                variant: Variant::Int,
                churn_every: None,
                jitter_ms: 0,
            },
            skip_intervals: 0,
            intervals: 10,
            protocol: Protocol::Lp,
            conns: 2,
            batch_rows: 5,
            compress: false,
        };
        prepare(dir, &spec).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn posts_every_body_and_counts_rows() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ds = dataset(tmp.path());
        let (url, served) = serve(usize::MAX);
        let r = run(&ds, &url, None);
        assert_eq!(r.first_error, None);
        assert_eq!(r.rows, 40);
        assert_eq!(r.requests, ds.bodies);
        assert_eq!(r.latencies_us.len() as u64, ds.bodies);
        assert_eq!(served.load(Ordering::SeqCst) as u64, ds.bodies);
    }

    #[test]
    fn spread_sends_bodies_to_each_url_in_turn() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ds = dataset(tmp.path());
        let (a, served_a) = serve(usize::MAX);
        let (b, served_b) = serve(usize::MAX);
        let r = run_spread(&ds, &[a, b], None);
        assert_eq!(r.first_error, None);
        assert_eq!(r.rows, 40);
        // 2 connections × 4 bodies of 5 rows: each URL gets 2 bodies of each connection.
        assert_eq!(served_a.load(Ordering::SeqCst), 4);
        assert_eq!(served_b.load(Ordering::SeqCst), 4);
        assert!(run_spread(&ds, &[], None).first_error.is_some());
    }

    #[test]
    fn first_rejection_stops_the_load_and_is_reported() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ds = dataset(tmp.path());
        let (url, _) = serve(1);
        let r = run(&ds, &url, None);
        let err = r.first_error.unwrap_or_default();
        assert!(err.contains("400") && err.contains("bad line"), "{err}");
        assert!(r.requests < ds.bodies);
    }
}
