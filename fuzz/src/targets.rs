//! Bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz, libFuzzer) and
//! by `crates/cli/tests/reliability_fuzz_smoke.rs` (the same bodies on mutated seeds in the
//! default suite). Each body feeds arbitrary bytes to one public parser or decoder; the only
//! acceptable outcomes are `Ok` or `Err`: a panic, an abort, a hang or an allocation blow-up
//! is a defect.
//!
//! Not fuzzed on purpose: `strata_backup::crypto::unwrap` runs Argon2id with the cost
//! parameters recorded in the key file, so a fuzzed key file can ask for any amount of
//! memory and time (see RELIABILITY.md, open defects).
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use strata_engine::{Engine, ScanRequest};

/// Line protocol, every precision.
pub fn line_protocol(data: &[u8]) {
    use strata_server::ingest::line_protocol::{Precision, parse};
    let precision = match data.first().map(|b| b % 6) {
        Some(0) | None => Precision::Nanos,
        Some(1) => Precision::Micros,
        Some(2) => Precision::Millis,
        Some(3) => Precision::Seconds,
        Some(4) => Precision::Minutes,
        _ => Precision::Hours,
    };
    let _ = parse(data, precision, 1_700_000_000_000_000_000);
}

/// Prometheus remote write: the protobuf decoder on raw bytes, and the snappy + protobuf path
/// the HTTP handler takes.
pub fn remote_write(data: &[u8]) {
    use strata_server::ingest::{body::unsnappy, remote_write::decode};
    let _ = decode(data);
    if let Ok(raw) = unsnappy(data, 1 << 20) {
        let _ = decode(&raw);
    }
}

/// Query JSON as `POST /api/v1/query` receives it.
pub fn query_json(data: &[u8]) {
    let _ = strata_query::Query::from_json(data);
}

/// The InfluxQL parser, and its error positions rendered against the text.
pub fn influxql(data: &[u8]) {
    let q = String::from_utf8_lossy(data);
    if let Err(e) = strata_query::influxql::parse(&q) {
        let _ = e.render(&q);
    }
}

/// A remote-read request body as the server decodes it.
pub fn remote_read(data: &[u8]) {
    use strata_prompb::{Message, ReadRequest};
    let _ = ReadRequest::decode(data);
}

/// The engine's column decoders: byte 0 picks the decoder, byte 1 the value count.
pub fn engine_decoders(data: &[u8]) {
    use strata_engine::encoding as enc;
    if data.len() < 2 {
        return;
    }
    let (which, n, b) = (data[0] % 7, data[1] as usize * 4, &data[2..]);
    match which {
        0 => {
            let mut out = Vec::new();
            let _ = enc::decode_timestamps(b, n, &mut out);
        }
        1 => {
            let mut out = Vec::new();
            let _ = enc::decode_i64(b, n, &mut out);
        }
        2 => {
            let mut out = Vec::new();
            let _ = enc::decode_f64(b, n, &mut out);
        }
        3 => {
            let mut out = Vec::new();
            let _ = enc::decode_bool(b, n, &mut out);
        }
        4 => {
            let mut out = Vec::new();
            let _ = enc::decode_str(b, n, &mut out);
        }
        6 => {
            // A part v3 series table: read lazily and whole, the two must agree.
            let _ = strata_engine::check_table_payload(b);
        }
        _ => {
            // A part v2 block summary: decoded, its sum rounded, and stored again the same.
            use strata_engine::FieldType;
            use strata_engine::summary::FieldSummary;
            let ty = if data[1].is_multiple_of(2) {
                FieldType::F64
            } else {
                FieldType::I64
            };
            let (lo, hi) = (0, 1i64 << 62);
            if let Ok(s) = FieldSummary::from_bytes(b, ty, lo, hi) {
                if let FieldSummary::F64(f) = &s {
                    let _ = f.sum.value();
                }
                let canonical = s.to_bytes(lo);
                let again = FieldSummary::from_bytes(&canonical, ty, lo, hi)
                    .unwrap_or_else(|e| panic!("a summary's own bytes do not decode: {e}"));
                assert_eq!(again.to_bytes(lo), canonical);
            }
        }
    }
}

/// Files of a small reference data dir (flushed parts, manifests, checkpoint, WAL), made once
/// per process, sorted by relative path.
pub fn seed_data_dir() -> &'static (tempfile::TempDir, Vec<std::path::PathBuf>) {
    static SEED: OnceLock<(tempfile::TempDir, Vec<std::path::PathBuf>)> = OnceLock::new();
    SEED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        write_reference_data(dir.path());
        let mut files = Vec::new();
        list_files(dir.path(), dir.path(), &mut files);
        files.sort();
        (dir, files)
    })
}

/// Writes a few hundred points over 4 series and 2 field types, flushes, then writes a few
/// more that stay in the WAL, and closes.
pub fn write_reference_data(dir: &Path) {
    use strata_engine::{EngineOptions, FieldValue, Point};
    let mut o = EngineOptions::new(dir);
    o.background = false;
    let e = Engine::open(o).unwrap_or_else(|e| panic!("open reference dir: {e}"));
    // Recent timestamps (yesterday, on a day boundary): data older than a group's default
    // retention would be dropped and leave nothing to read.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let base = (now_s / 86_400 - 1) * 86_400 * 1_000_000_000;
    let batch = |from: usize, to: usize| -> Vec<Point> {
        (from..to)
            .map(|i| Point {
                measure: "cpu".into(),
                tags: vec![("host".into(), format!("h{}", i % 4))],
                fields: vec![
                    ("v".into(), FieldValue::F64(i as f64 * 0.5)),
                    ("n".into(), FieldValue::I64(i as i64)),
                ],
                timestamp: base + i as i64 * 1_000_000_000,
            })
            .collect()
    };
    e.write("metrics", &batch(0, 400))
        .unwrap_or_else(|e| panic!("write: {e}"));
    e.flush().unwrap_or_else(|e| panic!("flush: {e}"));
    e.write("metrics", &batch(400, 450))
        .unwrap_or_else(|e| panic!("write: {e}"));
    e.close().unwrap_or_else(|e| panic!("close: {e}"));
}

pub fn list_files(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            list_files(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            // The lock file carries no data.
            if !rel.to_string_lossy().ends_with("LOCK") {
                out.push(rel.to_path_buf());
            }
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    let Ok(rd) = std::fs::read_dir(from) else {
        return;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        let dst = to.join(entry.file_name());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            let _ = std::fs::copy(&p, &dst);
        }
    }
}

/// Opens the data dir read-only and scans everything; returns the error text, if any.
pub fn open_and_scan(dir: &Path) -> Result<usize, String> {
    let e = Engine::open_read_only(dir).map_err(|e| e.to_string())?;
    let mut n = 0;
    for g in e.catalog().groups {
        for m in &g.measures {
            let series = e
                .scan(&ScanRequest {
                    group: g.name.clone(),
                    measure: m.name.clone(),
                    from: i64::MIN,
                    to: i64::MAX,
                    matchers: vec![],
                    fields: None,
                })
                .map_err(|e| e.to_string())?;
            n += series.iter().map(|s| s.timestamps.len()).sum::<usize>();
        }
    }
    Ok(n)
}

/// A whole engine file (WAL segment, part file, manifest, checkpoint, engine file) replaced by
/// the fuzzed bytes: byte 0 picks the file of the reference data dir. Open and scan must not
/// panic.
pub fn engine_data_dir(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (seed, files) = seed_data_dir();
    if files.is_empty() {
        return;
    }
    let Ok(work) = tempfile::tempdir() else {
        return;
    };
    copy_dir(seed.path(), work.path());
    // 255: the bytes are an online restore's adoption journal (`ADOPT`), which open reads
    // and may roll forward.
    let victim = match pick {
        255 => std::path::Path::new("ADOPT"),
        _ => &files[pick as usize % files.len()],
    };
    if std::fs::write(work.path().join(victim), rest).is_ok() {
        let _ = open_and_scan(work.path());
    }
}

/// Repository documents: `config`, `keys/*` and `snapshots/*` bodies (checked JSON), and an
/// unencrypted object container holding a manifest.
pub fn backup_docs(data: &[u8]) {
    use strata_backup::config::{KeyFile, RepoConfig, open_doc};
    use strata_backup::{Manifest, format};
    if let Ok(c) = open_doc::<RepoConfig>("config", data) {
        let _ = c.check();
        let _ = c.compression();
    }
    let _ = open_doc::<KeyFile>("keys/fuzz", data);
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        let _ = m.validate(&m.id.clone());
        for f in &m.files {
            let _ = m.affected_by(&f.path);
        }
    }
    if let Ok(json) = format::decode_all(None, "snapshots/fuzz", data)
        && let Ok(m) = serde_json::from_slice::<Manifest>(&json)
    {
        let _ = m.validate("fuzz");
    }
    // The server's snapshot answer, versions 1 and 2: a snapshot that checks out survives
    // the compact form unchanged (up to file order).
    if let Ok(doc) = strata_backup::snapshot_doc::AnyDoc::from_json(data)
        && let Ok(snap) = doc.into_snapshot()
        && let Some(compact) = strata_backup::snapshot_doc::CompactDoc::of(&snap)
    {
        let mut back = compact
            .into_snapshot()
            .expect("a compact form of a valid snapshot");
        let mut want = snap;
        back.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        want.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        assert_eq!(back, want);
    }
}

/// `strata agent`'s wire protocol: a frame, then the body as a request and as a response.
/// Whatever decodes encodes back to the very same bytes (the encoding is canonical).
pub fn agent_proto(data: &[u8]) {
    use strata_backup::agent::proto::{Request, Response, read_frame};
    let mut wire = data;
    if let Ok(body) = read_frame(&mut wire) {
        let _ = Request::decode(&body);
        let _ = Response::decode(&body);
    }
    if let Ok(r) = Request::decode(data) {
        assert_eq!(r.encode(), data, "request re-encodes differently");
    }
    if let Ok(r) = Response::decode(data) {
        assert_eq!(r.encode(), data, "response re-encodes differently");
    }
}

/// The server's TOML config file, then resolving it to a config.
pub fn server_config(data: &[u8]) {
    use strata_server::ConfigLayer;
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("strata.toml");
    if std::fs::write(&path, data).is_ok()
        && let Ok(layer) = ConfigLayer::from_file(&path)
        && let Ok(cfg) = layer.finish()
    {
        let _ = cfg.listen_addr();
        let _ = cfg.fsync_policy();
    }
}

/// Every target by name, for the smoke test and the seed writer.
/// A target body: arbitrary bytes in, nothing out (only panics matter).
pub type Body = fn(&[u8]);

pub const TARGETS: &[(&str, Body)] = &[
    ("line_protocol", line_protocol),
    ("remote_write", remote_write),
    ("query_json", query_json),
    ("influxql", influxql),
    ("remote_read", remote_read),
    ("query_plan", crate::query_plan::query_plan),
    ("engine_decoders", engine_decoders),
    ("engine_data_dir", engine_data_dir),
    ("backup_docs", backup_docs),
    ("server_config", server_config),
    ("archive", crate::archive_window::archive),
    ("agent_proto", agent_proto),
];

/// Valid inputs for `target`: the seed corpus (also written to `fuzz/corpus/<target>/`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "influxql" => vec![
            br#"SELECT mean("usage_user") FROM "autogen"."cpu" WHERE ("host" =~ /^(a|b)$/) AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(10s), "host" fill(null) ORDER BY time DESC LIMIT 5"#.to_vec(),
            b"SHOW TAG VALUES FROM \"cpu\" WITH KEY = \"host\" WHERE region = 'eu'; SHOW MEASUREMENTS LIMIT 100".to_vec(),
            b"SELECT * FROM cpu, /m.*/ WHERE time > now() - 1h AND (a = 'x' OR b !~ /y/) GROUP BY * SLIMIT 2".to_vec(),
        ],
        "remote_read" => {
            use strata_prompb::{LabelMatcher, Message, Query, ReadRequest};
            let req = ReadRequest {
                queries: vec![Query {
                    start_timestamp_ms: 1_700_000_000_000,
                    end_timestamp_ms: 1_700_000_060_000,
                    matchers: vec![LabelMatcher {
                        r#type: 2,
                        name: "__name__".into(),
                        value: "cpu_.*".into(),
                    }],
                    hints: None,
                }],
                accepted_response_types: vec![0],
            };
            vec![req.encode_to_vec()]
        }
        "line_protocol" => vec![
            b"cpu,host=a,region=eu usage=1.5,n=3i,ok=t,msg=\"hi \\\"x\\\"\" 1700000000000000000\n"
                .to_vec(),
            b"# comment\nmem free=10u\nnet\\ in,if=eth\\,0 rx=1e3 1700000000\n".to_vec(),
        ],
        "remote_write" => {
            use strata_prompb::{Label, Message, Sample, TimeSeries, WriteRequest};
            let req = WriteRequest {
                timeseries: vec![TimeSeries {
                    labels: vec![
                        Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        Label {
                            name: "job".into(),
                            value: "node".into(),
                        },
                    ],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1_700_000_000_000,
                    }],
                }],
            };
            let raw = req.encode_to_vec();
            let packed = snap::raw::Encoder::new()
                .compress_vec(&raw)
                .unwrap_or_default();
            vec![raw, packed]
        }
        "query_json" => vec![
            br#"{"group":"g","measure":"cpu","from":"2026-01-01T00:00:00Z","to":1767312000000000000,"where":{"host":"h1","region":["eu","us"],"dc":{"ne":"x"},"os":{"regex":"linux.*"}},"fields":["usage_user"],"agg":{"fn":"mean","every":"1m"},"group_by":["host"],"limit":1000,"order":"asc"}"#.to_vec(),
            br#"{"group":"demo","measure":"cpu"}"#.to_vec(),
        ],
        "query_plan" => vec![
            // Long repeated field list, whole-range count per host, limit 2.
            vec![3, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            // Huge "every" in days, extreme from/to, desc.
            vec![1, 0, 0, 0, 0, 0, 3, 1, 2, 0, 0, 0, 2, 0, 9, 9, 9, 9, 9, 9, 9, 9, 1, 0, 0],
            (0u8..64).collect(),
        ],
        "engine_decoders" => {
            use strata_engine::encoding as enc;
            let n = 64usize;
            let ts: Vec<i64> = (0..n as i64).map(|i| 1_700_000_000_000 + i * 1000).collect();
            let iv: Vec<i64> = (0..n as i64).map(|i| i * i - 7).collect();
            let fv: Vec<f64> = (0..n).map(|i| i as f64 * 0.25).collect();
            let bv: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
            let sv: Vec<String> = (0..n).map(|i| format!("s{}", i % 5)).collect();
            let mut out = Vec::new();
            let mut push = |which: u8, enc: &dyn Fn(&mut Vec<u8>)| {
                let mut b = vec![which, (n / 4) as u8];
                enc(&mut b);
                out.push(b);
            };
            push(0, &|b| enc::encode_timestamps(&ts, b));
            push(1, &|b| enc::encode_i64(&iv, b));
            push(2, &|b| enc::encode_f64(&fv, b));
            push(3, &|b| enc::encode_bool(&bv, b));
            push(4, &|b| enc::encode_str(&sv, b));
            {
                use strata_engine::summary::FieldSummary;
                let lo = 0;
                let fo: Vec<Option<f64>> = fv.iter().map(|&v| Some(v)).collect();
                let io: Vec<Option<i64>> = iv.iter().map(|&v| Some(v)).collect();
                if let Some(s) = FieldSummary::of_f64(&ts, &fo) {
                    let mut b = vec![5, 0];
                    b.extend(s.to_bytes(lo));
                    out.push(b);
                }
                if let Some(s) = FieldSummary::of_i64(&ts, &io) {
                    let mut b = vec![5, 1];
                    b.extend(s.to_bytes(lo));
                    out.push(b);
                }
            }
            // A part v3 series table: the payload of the reference data dir's first index.bin.
            let (seed, files) = seed_data_dir();
            if let Some(f) = files.iter().find(|f| f.ends_with("index.bin"))
                && let Ok(bytes) = std::fs::read(seed.path().join(f))
                && bytes.len() > 20
            {
                let mut b = vec![6, 0];
                b.extend_from_slice(&bytes[16..bytes.len() - 4]);
                out.push(b);
            }
            out
        }
        "engine_data_dir" => {
            let (seed, files) = seed_data_dir();
            files
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let mut b = vec![i as u8];
                    b.extend(std::fs::read(seed.path().join(f)).ok()?);
                    Some(b)
                })
                .collect()
        }
        "agent_proto" => {
            use strata_backup::agent::proto::{KeyEntry, Listed, Request, Response, write_frame};
            let key = KeyEntry {
                repo_id: "0123456789abcdef0123456789abcdef".into(),
                key_file: "keys/0123456789abcdef".into(),
                kek: [7u8; 32].into(),
            };
            let mut out = vec![
                Request::Add {
                    key: key.clone(),
                    url: "s3://bucket/prefix".into(),
                    lifetime_secs: 3600,
                }
                .encode(),
                Request::Get {
                    repo_id: key.repo_id.clone(),
                }
                .encode(),
                Request::List.encode(),
                Request::Remove {
                    selector: "/srv/repo".into(),
                }
                .encode(),
                Request::Stop.encode(),
                Response::Keys(vec![key.clone(), key]).encode(),
                Response::Listed(vec![Listed {
                    repo_id: "r".into(),
                    key_file: "keys/k".into(),
                    url: "/srv/repo".into(),
                    added: 1_700_000_000,
                    expires: 1_700_003_600,
                }])
                .encode(),
                Response::Removed(2).encode(),
                Response::Error("bad request".into()).encode(),
                Response::Ok.encode(),
            ];
            let mut framed = Vec::new();
            let _ = write_frame(&mut framed, &Request::List.encode());
            out.push(framed);
            out
        }
        "backup_docs" => {
            use strata_backup::config::{KeyFile, RepoConfig, seal_doc};
            use strata_backup::crypto::{KdfParams, Keys, wrap};
            let cfg = RepoConfig {
                magic: strata_backup::config::REPO_MAGIC.into(),
                version: 1,
                id: "0123456789abcdef0123456789abcdef".into(),
                created: "2026-01-01T00:00:00Z".into(),
                encryption: "aes-256-gcm".into(),
                compression: "zstd:3".into(),
            };
            let params = KdfParams {
                m_cost: 8,
                t_cost: 1,
                p_cost: 1,
            };
            let mut out: Vec<Vec<u8>> = seal_doc(&cfg).into_iter().collect();
            if let Ok(w) = wrap(&Keys::generate(), b"pw", &cfg.id, params) {
                let kf = KeyFile {
                    created: cfg.created.clone(),
                    wrapped: w,
                };
                out.extend(seal_doc(&kf));
            }
            out
        }
        "archive" => {
            use strata_backup::archive::object::ObjectName;
            use strata_engine::backup_api::archive::{WalRecord, encode_segment};
            let name = ObjectName {
                node: "n1".into(),
                chain: "0123456789abcdef".into(),
                first_lsn: 5,
                last_lsn: 9,
                first_time: 1_767_225_600_000_000_000,
                last_time: 1_767_225_600_500_000_000,
            };
            let mut a = vec![0u8];
            a.extend(name.path().as_ref().bytes());
            let recs: Vec<WalRecord> = (5..10)
                .map(|lsn| WalRecord {
                    lsn,
                    kind: 1,
                    commit_time_ns: 1_767_225_600_000_000_000 + lsn as i64,
                    payload: vec![lsn as u8; 12],
                })
                .collect();
            let mut b = vec![1u8];
            b.extend(encode_segment(0, &recs));
            // Six-byte records (kind, node, chain, LSN, length, time step): snapshots cut at
            // 0, 20 and 39; objects 1..=16, 17..=32 (chain 0) and 40..=45 (chain 1).
            let mut c = vec![2u8];
            for r in [
                [0u8, 0, 0, 0, 0, 0],
                [1, 0, 0, 0, 15, 0],
                [1, 0, 0, 16, 15, 0],
                [0, 0, 0, 20, 0, 0],
                [1, 0, 1, 39, 5, 0],
                [0, 0, 0, 39, 0, 0],
            ] {
                c.extend(r);
            }
            vec![a, b, c]
        }
        "server_config" => vec![
            b"listen = \"127.0.0.1:8480\"\ndata_dir = \"/tmp/x\"\nrepo = \"s3://b/p\"\nmax_body_bytes = 1024\nfsync = \"interval:100ms\"\nauth_token = \"t\"\n".to_vec(),
        ],
        _ => Vec::new(),
    }
}
