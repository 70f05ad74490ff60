//! Shared by the tests of querying a backup where it lies: a data set of several groups, an
//! in-process S3 server that counts requests by method, random queries.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use strata_engine::{Engine, EngineOptions, FieldValue, Point};

/// Hours of data per group, one point per series every 10 minutes.
pub const HOURS: i64 = 30;
pub const HOUR: i64 = 3_600_000_000_000;

pub fn base_ts() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 86_400 - 3) * 86_400 * 1_000_000_000
}

fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn points(group: usize, from: i64, hours: i64, salt: u64) -> Vec<Point> {
    let mut out = Vec::new();
    let steps = hours * 6;
    for step in 0..steps {
        let ts = from + step * 600_000_000_000;
        for host in 0..6u64 {
            let r = mix(salt ^ ((group as u64) << 40) ^ ((step as u64) << 8) ^ host);
            let mut fields = vec![(
                "usage".to_string(),
                FieldValue::F64((r % 10_000) as f64 / 100.0),
            )];
            if !r.is_multiple_of(3) {
                fields.push(("n".into(), FieldValue::I64((r >> 20) as i64 % 1000 - 500)));
            }
            if r.is_multiple_of(5) {
                fields.push(("up".into(), FieldValue::Bool(r.is_multiple_of(2))));
            }
            if r.is_multiple_of(7) {
                fields.push(("note".into(), FieldValue::Str(format!("n{}", r % 13))));
            }
            out.push(Point {
                measure: "cpu".into(),
                tags: vec![
                    ("dc".into(), format!("dc{}", host % 2)),
                    ("host".into(), format!("h{host}")),
                ],
                fields,
                timestamp: ts,
            });
            if host < 3 {
                out.push(Point {
                    measure: "mem".into(),
                    tags: vec![("host".into(), format!("h{host}"))],
                    fields: vec![("free".into(), FieldValue::F64((r >> 8) as f64 % 4096.0))],
                    timestamp: ts,
                });
            }
        }
    }
    out
}

/// A closed data directory with `groups` groups (`g0`, `g1`, …), each with several parts per
/// shard (a later flush overwrites some earlier points) and measures `cpu` and `mem`.
pub fn make_groups(dir: &Path, groups: usize) {
    let mut o = EngineOptions::new(dir);
    o.background = false;
    let e = Engine::open(o).unwrap();
    let base = base_ts();
    for g in 0..groups {
        let name = format!("g{g}");
        for c in points(g, base, HOURS, 1).chunks(5000) {
            e.write(&name, c).unwrap();
        }
    }
    e.flush().unwrap();
    for g in 0..groups {
        // Rewrites of hours 5..8 (newer part wins) and a later stretch.
        let name = format!("g{g}");
        e.write(&name, &points(g, base + 5 * HOUR, 3, 2)).unwrap();
        e.write(&name, &points(g, base + HOURS * HOUR, 2, 3))
            .unwrap();
    }
    e.flush().unwrap();
    e.close().unwrap();
}

/// A random query over the data of [`make_groups`].
pub fn random_query(seed: u64, groups: usize) -> serde_json::Value {
    let r = |k: u64| mix(seed.wrapping_mul(31).wrapping_add(k));
    let group = format!("g{}", r(1) % groups as u64);
    let measure = if r(2) % 4 == 0 { "mem" } else { "cpu" };
    let base = base_ts();
    let span = (HOURS + 3) * HOUR;
    let a = base - HOUR + (r(3) % span as u64) as i64;
    let b = a + 1 + (r(4) % (span as u64 / 2)) as i64;
    let mut q = serde_json::json!({"group": group, "measure": measure});
    if r(5) % 5 != 0 {
        q["from"] = a.into();
        q["to"] = b.into();
    }
    match r(6) % 4 {
        0 => q["where"] = serde_json::json!({"host": format!("h{}", r(7) % 4)}),
        1 if measure == "cpu" => q["where"] = serde_json::json!({"dc": {"ne": "dc0"}}),
        2 => q["where"] = serde_json::json!({"host": {"regex": "^h[12]$"}}),
        _ => {}
    }
    let numeric = if measure == "cpu" {
        ["usage", "n"]
    } else {
        ["free", "free"]
    };
    if r(8) % 2 == 0 {
        let fns = ["count", "sum", "min", "max", "mean", "last"];
        let f = fns[(r(9) % 6) as usize];
        q["fields"] = serde_json::json!([numeric[(r(10) % 2) as usize]]);
        let every = ["10m", "1h", "6h"][(r(11) % 3) as usize];
        q["agg"] = if r(12) % 4 == 0 {
            serde_json::json!({"fn": f})
        } else {
            serde_json::json!({"fn": f, "every": every})
        };
        if r(13) % 2 == 0 {
            q["group_by"] = serde_json::json!(["host"]);
        }
    } else if r(14) % 3 == 0 {
        q["fields"] = serde_json::json!([numeric[0]]);
    }
    if r(15) % 3 == 0 {
        q["limit"] = (1 + r(16) % 50).into();
        if r(17) % 2 == 0 {
            q["order"] = "desc".into();
        }
    }
    q
}

/// Every file under `dir` with its size, modification time and content digest.
pub fn tree_state(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let digest = blake3::hash(&std::fs::read(e.path()).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    (m.len(), m.modified().unwrap(), digest),
                );
            }
        }
    }
    out
}

pub mod s3 {
    use super::*;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;
    use s3s::auth::SimpleAuth;
    use s3s::service::S3ServiceBuilder;

    pub const ACCESS: &str = "test-access-key";
    pub const SECRET: &str = "test-secret-key";
    pub const BUCKET: &str = "backups";

    /// An in-process S3 server (s3s + s3s-fs) on its own runtime thread, counting requests by
    /// method.
    pub struct S3 {
        pub addr: std::net::SocketAddr,
        pub requests: Arc<Mutex<BTreeMap<String, u64>>>,
        pub dir: tempfile::TempDir,
        _rt: tokio::runtime::Runtime,
    }

    impl S3 {
        pub fn counts(&self) -> BTreeMap<String, u64> {
            self.requests.lock().unwrap().clone()
        }

        pub fn endpoint(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// `--endpoint … --region … --path-style --allow-http`.
        pub fn flags(&self) -> Vec<String> {
            vec![
                "--endpoint".into(),
                self.endpoint(),
                "--region".into(),
                "us-east-1".into(),
                "--path-style".into(),
                "--allow-http".into(),
            ]
        }

        /// Requests that change the bucket.
        pub fn writes(&self) -> u64 {
            self.counts()
                .iter()
                .filter(|(m, _)| !matches!(m.as_str(), "GET" | "HEAD"))
                .map(|(_, n)| n)
                .sum()
        }
    }

    pub fn start() -> S3 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut b = S3ServiceBuilder::new(s3s_fs::FileSystem::new(dir.path()).unwrap());
        b.set_auth(SimpleAuth::from_single(ACCESS, SECRET));
        let service = b.build();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let counts = requests.clone();
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (svc, counts) = (service.clone(), counts.clone());
                let counted = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        *counts
                            .lock()
                            .unwrap()
                            .entry(req.method().to_string())
                            .or_default() += 1;
                        let svc = svc.clone();
                        async move { hyper::service::Service::call(&svc, req).await }
                    },
                );
                let conn = http
                    .serve_connection(TokioIo::new(sock), counted)
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3 {
            addr,
            requests,
            dir,
            _rt: rt,
        }
    }
}
