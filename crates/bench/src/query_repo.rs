//! `query_repo_*`: the benchmark queries answered by a backup where it lies, without
//! restoring it — `strata query --repo R --snapshot latest --cache-dir C --stats QUERY` — next
//! to the same queries on the live server that was backed up. Two repositories of the same
//! data: the pipeline's encrypted local one, and one on the in-process S3 server
//! ([`crate::s3server`]), which counts the requests and bytes it serves.
//!
//! Per query kind (its first query of the seeded set): the first query with an empty cache
//! (latency, bytes fetched and their share of the repository, S3 requests), then the same query
//! `N` times with that cache (warm: median), and `N` times on the live server over HTTP (and
//! through `strata query --server`, which pays the same process start as the CLI); the ratio
//! warm / live. Every CLI run pays process start and the key derivation of the encrypted
//! repository: `fixed_ms` (a query whose range holds no data) shows that share. A local
//! repository is also attached to the live server (`POST /api/v1/attachments`), which keeps
//! the key and the mount between queries: the same figures through the server.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::pipeline::{Ctx, Pipeline};
use crate::procs::run_measured;
use crate::queries::{Kind, Query};
use crate::s3server::S3;
use crate::stats::median;
use crate::systems::strata::{GROUP, PASSWORD, Strata, post_query};
use crate::systems::{Running, http_client};

pub const LOCAL: &str = "query_repo_local";
/// The bound of every query cache: above any repository the harness makes, so a warm query
/// never re-fetches what its cache evicted (the CLI's default bound, 1 GiB, is less than the
/// `large` size's repository).
const CACHE_SIZE: &str = "64GiB";
pub const S3_REPO: &str = "query_repo_s3";

/// Warm and live repetitions per query kind: min(Q, 3). Each CLI run pays the key derivation,
/// and a last-point query at the `large` size takes seconds on every path.
pub fn runs(plan: &crate::pipeline::Plan) -> usize {
    plan.queries_per_kind.clamp(1, 3)
}

/// The rows the pipeline reports for this family.
pub fn expected() -> Vec<(String, &'static str)> {
    let mut v = Vec::new();
    for prefix in [LOCAL, S3_REPO] {
        v.push((prefix.to_string(), "strata"));
        for k in Kind::ALL {
            v.push((format!("{prefix}_{}", k.name()), "strata"));
        }
    }
    v
}

/// A repository the CLI can reach, and (for S3) the server to count on.
pub struct Target<'a> {
    pub url: String,
    pub flags: Vec<String>,
    pub env: Vec<(&'static str, &'static str)>,
    pub s3: Option<&'a S3>,
}

/// One `strata query --repo` run.
struct RepoRun {
    ms: f64,
    answer: Value,
    stats: Value,
}

/// With `agent`: the key from that `strata agent`, no password in the environment.
fn cli_query_repo(
    st: &Strata,
    t: &Target<'_>,
    cache: &Path,
    q: &Value,
    agent: Option<&Path>,
) -> Result<RepoRun, String> {
    let mut args: Vec<String> = vec!["query".into(), "--repo".into(), t.url.clone()];
    args.extend(t.flags.iter().cloned());
    args.extend([
        "--snapshot".into(),
        "latest".into(),
        "--cache-dir".into(),
        cache.to_string_lossy().into_owned(),
        "--cache-size".into(),
        CACHE_SIZE.into(),
        "--stats".into(),
        q.to_string(),
    ]);
    let sock = agent.map(|a| a.to_string_lossy().into_owned());
    let mut env = t.env.clone();
    match &sock {
        Some(a) => env.push((crate::query_repo_agent::SOCKET_ENV, a)),
        None => env.push(("STRATA_REPO_PASSWORD", PASSWORD)),
    }
    let m = run_measured(&st.bin.to_string_lossy(), &args, &env).map_err(|e| e.to_string())?;
    if !m.status.success() {
        return Err(format!("strata query --repo: {}", m.reason()));
    }
    let stats = m
        .stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .ok_or_else(|| format!("strata query --stats printed no JSON: {}", m.reason()))?;
    let answer = serde_json::from_str(&m.stdout)
        .map_err(|e| format!("strata query --repo: answer not JSON ({e})"))?;
    Ok(RepoRun {
        ms: m.wall.as_secs_f64() * 1e3,
        answer,
        stats,
    })
}

/// `strata query --server URL`: the live answer through a process, as the CLI pays it.
fn live_cli_ms(st: &Strata, base_url: &str, q: &Value) -> Result<f64, String> {
    let args = ["query", "--server", base_url, &q.to_string()].map(String::from);
    let m = run_measured(&st.bin.to_string_lossy(), &args, &[]).map_err(|e| e.to_string())?;
    if !m.status.success() {
        return Err(format!("strata query --server: {}", m.reason()));
    }
    Ok(m.wall.as_secs_f64() * 1e3)
}

/// Same structure, same strings, numbers equal to 1e-9 relative (a mean summed in another
/// order may differ in its last bits).
pub fn same_answer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_answer(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_answer(v, w)))
        }
        _ => a == b,
    }
}

fn stat(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// Figures from a cache directory.
pub type Classify<'a> = dyn Fn(&Path) -> Vec<(&'static str, f64)> + 'a;

/// What the queries of one repository are measured with.
pub struct Setup<'a> {
    pub st: &'a Strata,
    pub live_url: &'a str,
    pub group: &'a str,
    /// Warm and live repetitions per query kind.
    pub runs: usize,
    /// Whether to time `strata query --server` too.
    pub live_cli: bool,
    /// Where the per-kind caches go.
    pub scratch: PathBuf,
    /// Figures drawn from the cache directory after a first query (what it fetched).
    pub classify: Option<&'a Classify<'a>>,
}

/// Measures every query kind on `t`; records `<prefix>` (repository figures) and
/// `<prefix>_<kind>` rows. `extra`: more figures for the `<prefix>` row.
pub fn measure(
    s: &Setup<'_>,
    t: &Target<'_>,
    queries: &[Query],
    prefix: &str,
    extra: &[(&'static str, f64)],
    ctx: &mut Ctx<'_>,
) {
    let http = match http_client() {
        Ok(h) => h,
        Err(e) => return skip_all(prefix, &e, ctx),
    };
    // Fixed cost per run: a query over a range without data, warm.
    let empty = serde_json::json!({
        "group": s.group,
        "measure": crate::datagen::MEASURE,
        "from": "2000-01-01T00:00:00Z",
        "to": "2000-01-01T00:01:00Z",
    });
    let cache = s.scratch.join(format!("{prefix}-cache-fixed"));
    let mut fixed = Vec::new();
    let mut repo_bytes = f64::NAN;
    for _ in 0..s.runs + 1 {
        match cli_query_repo(s.st, t, &cache, &empty, None) {
            Ok(r) => {
                fixed.push(r.ms);
                repo_bytes = stat(&r.stats, &["repository_bytes"]);
            }
            Err(e) => return skip_all(prefix, &e, ctx),
        }
    }
    fixed.remove(0);
    // The same with the key from a `strata agent` (no key derivation per run).
    let agent = crate::query_repo_agent::Agent::start(s.st, &s.scratch, t);
    let mut agent_fixed = Vec::new();
    if let Ok(a) = &agent {
        for _ in 0..s.runs {
            match cli_query_repo(s.st, t, &cache, &empty, Some(a.socket())) {
                Ok(r) => agent_fixed.push(r.ms),
                Err(e) => return skip_all(prefix, &e, ctx),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    if let Some(s3) = t.s3 {
        s3.take();
    }
    let mut summary = vec![
        ("repository_bytes", repo_bytes),
        ("fixed_ms", median(&fixed)),
    ];
    match &agent {
        Ok(_) => summary.push(("agent_fixed_ms", median(&agent_fixed))),
        Err(e) => eprintln!("{prefix}: no agent figures: {e}"),
    }
    summary.extend_from_slice(extra);
    ctx.record(prefix, "strata", &summary);
    let agent = agent.ok();
    let agent_sock = agent.as_ref().map(|a| a.socket());

    for kind in Kind::ALL {
        let sc = format!("{prefix}_{}", kind.name());
        let Some(q) = queries.iter().find(|q| q.kind == kind) else {
            ctx.skip(&sc, "strata", "no query of this kind");
            continue;
        };
        match measure_kind(s, t, &http, &q.strata_json(s.group), repo_bytes, agent_sock) {
            Ok(m) => ctx.record(&sc, "strata", &m),
            Err(e) => ctx.skip(&sc, "strata", &e),
        }
    }
}

fn skip_all(prefix: &str, why: &str, ctx: &mut Ctx<'_>) {
    ctx.skip(prefix, "strata", why);
    for k in Kind::ALL {
        ctx.skip(&format!("{prefix}_{}", k.name()), "strata", why);
    }
}

fn measure_kind(
    s: &Setup<'_>,
    t: &Target<'_>,
    http: &reqwest::blocking::Client,
    q: &Value,
    repo_bytes: f64,
    agent: Option<&Path>,
) -> Result<Vec<(&'static str, f64)>, String> {
    let cache = s.scratch.join("cache-kind");
    let _ = std::fs::remove_dir_all(&cache);
    let s3_take = || t.s3.map(|s3| s3.take()).unwrap_or_default();
    s3_take();
    let first = cli_query_repo(s.st, t, &cache, q, None)?;
    let s3_first = s3_take();
    let classified = s.classify.map(|f| f(&cache)).unwrap_or_default();
    let mut warm = Vec::new();
    let mut warm_fetched = 0.0;
    for _ in 0..s.runs {
        let r = cli_query_repo(s.st, t, &cache, q, None)?;
        warm.push(r.ms);
        warm_fetched += stat(&r.stats, &["fetched", "bytes_fetched"]);
    }
    let s3_warm = s3_take();
    // Warm again, the key from the agent: what an operator with `strata agent` pays.
    let mut agent_warm = Vec::new();
    let mut agent_same = true;
    let mut agent_stats = Value::Null;
    if let Some(a) = agent {
        for _ in 0..s.runs {
            let r = cli_query_repo(s.st, t, &cache, q, Some(a))?;
            agent_warm.push(r.ms);
            agent_same &= same_answer(&r.answer, &first.answer);
            agent_stats = r.stats;
        }
    }
    s3_take();
    let _ = std::fs::remove_dir_all(&cache);
    let (mut live, mut live_answer) = (Vec::new(), Value::Null);
    // One unmeasured run first: the live server's caches are as warm as the repository's.
    for i in 0..=s.runs {
        let (ms, v) = post_query(http, s.live_url, q)?;
        if i > 0 {
            live.push(ms);
        }
        live_answer = v;
    }
    let fetched = stat(&first.stats, &["fetched", "bytes_fetched"]);
    let (warm_ms, live_ms) = (median(&warm), median(&live));
    let mut m = vec![
        ("first_ms", first.ms),
        ("warm_ms", warm_ms),
        ("live_ms", live_ms),
        ("warm_to_live", warm_ms / live_ms),
        ("first_bytes_fetched", fetched),
        ("first_fetched_fraction", fetched / repo_bytes),
        (
            "first_objects_fetched",
            stat(&first.stats, &["fetched", "objects_fetched"]),
        ),
        (
            "first_ranged_reads",
            stat(&first.stats, &["fetched", "ranged_reads"]),
        ),
        ("warm_bytes_fetched", warm_fetched / s.runs.max(1) as f64),
        (
            "answers_match_live",
            f64::from(u8::from(same_answer(&first.answer, &live_answer))),
        ),
    ];
    let agent_ms = median(&agent_warm);
    if agent.is_some() {
        m.push(("agent_warm_ms", agent_ms));
        m.push(("agent_warm_to_live", agent_ms / live_ms));
        m.push(("agent_answers_match", f64::from(u8::from(agent_same))));
        // Where a warm run's time goes inside the process (its last repetition).
        for (k, path) in [
            ("agent_warm_open_ms", ["timings", "open_ms"]),
            ("agent_warm_manifest_ms", ["timings", "manifest_ms"]),
            ("agent_warm_engine_ms", ["timings", "engine_ms"]),
        ] {
            m.push((k, stat(&agent_stats, &path)));
        }
        m.push(("agent_warm_query_ms", stat(&agent_stats, &["query_ms"])));
    }
    if !classified.is_empty() {
        // What the named whole objects do not account for was read by range (first frames
        // read when a part is opened; counted again if the object is then fetched whole).
        let whole: f64 = classified
            .iter()
            .filter(|(k, _)| k.starts_with("first_fetched_") && k.ends_with("_bytes"))
            .map(|(_, v)| v)
            .sum();
        m.push(("first_fetched_by_range_bytes", fetched - whole));
    }
    m.extend(classified);
    // The live server reaches the in-process S3 server through its environment.
    m.extend(attached(s, t, http, q, &live_answer, live_ms, repo_bytes)?);
    if s.live_cli {
        let mut cli = Vec::new();
        for _ in 0..s.runs {
            cli.push(live_cli_ms(s.st, s.live_url, q)?);
        }
        let cli_ms = median(&cli);
        m.push(("live_cli_ms", cli_ms));
        m.push(("warm_to_live_cli", warm_ms / cli_ms));
        if agent.is_some() {
            m.push(("agent_warm_to_live_cli", agent_ms / cli_ms));
        }
    }
    if t.s3.is_some() {
        let n = s.runs.max(1) as f64;
        m.push(("s3_requests_first", s3_first.requests() as f64));
        m.push(("s3_gets_first", s3_first.of("GET") as f64));
        m.push(("s3_bytes_served_first", s3_first.bytes_served as f64));
        m.push(("s3_requests_warm", s3_warm.requests() as f64 / n));
        m.push(("s3_bytes_served_warm", s3_warm.bytes_served as f64 / n));
    }
    Ok(m)
}

/// The attachment's name; its groups answer as `att_<group>`.
const ATTACH_AS: &str = "att_";

/// The query attached to the live server with a fresh cache: the attach, the first query,
/// `runs` warm ones, what the attachment fetched in all, then detached.
fn attached(
    s: &Setup<'_>,
    t: &Target<'_>,
    http: &reqwest::blocking::Client,
    q: &Value,
    live_answer: &Value,
    live_ms: f64,
    repo_bytes: f64,
) -> Result<Vec<(&'static str, f64)>, String> {
    let cache = s.scratch.join("cache-attached");
    let _ = std::fs::remove_dir_all(&cache);
    let url = format!("{}/api/v1/attachments", s.live_url);
    let body = serde_json::json!({
        "repo": t.url,
        "snapshot": "latest",
        "groups": [s.group],
        "as": ATTACH_AS,
        "cache_dir": cache,
        "cache_size": CACHE_SIZE,
    });
    let t0 = Instant::now();
    let resp = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| format!("POST {url}: {e}"))?;
    let attach_ms = t0.elapsed().as_secs_f64() * 1e3;
    let status = resp.status();
    let v: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("POST {url}: HTTP {status}: {v}"));
    }
    let attach_fetched = stat(&v, &["fetched", "bytes_fetched"]);
    let s3_attach = t.s3.map(|s3| s3.take());
    let detach = || {
        let _ = http.delete(format!("{url}/{ATTACH_AS}")).send();
        let _ = std::fs::remove_dir_all(&cache);
    };
    let mut aq = q.clone();
    aq["group"] = Value::String(format!("{ATTACH_AS}{}", s.group));
    let measured = (|| {
        let (first_ms, answer) = post_query(http, s.live_url, &aq)?;
        let mut warm = Vec::new();
        for _ in 0..s.runs {
            warm.push(post_query(http, s.live_url, &aq)?.0);
        }
        let listed: Value = http
            .get(&url)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| format!("GET {url}: {e}"))?;
        let total = listed["attachments"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == ATTACH_AS))
            .map_or(f64::NAN, |x| stat(x, &["fetched", "bytes_fetched"]));
        Ok::<_, String>((
            first_ms,
            median(&warm),
            total,
            same_answer(&answer, live_answer),
        ))
    })();
    let s3_queries = t.s3.map(|s3| s3.take());
    detach();
    let (first_ms, warm_ms, total, same) = measured?;
    let mut m = Vec::new();
    if let (Some(a), Some(q)) = (s3_attach, s3_queries) {
        m.push(("attach_s3_requests", a.requests() as f64));
        m.push(("attached_queries_s3_requests", q.requests() as f64));
    }
    m.extend([
        ("attach_ms", attach_ms),
        ("attach_bytes_fetched", attach_fetched),
        ("attached_first_ms", first_ms),
        ("attached_warm_ms", warm_ms),
        ("attached_warm_to_live", warm_ms / live_ms),
        ("attached_bytes_fetched", total),
        ("attached_fetched_fraction", total / repo_bytes),
        ("attached_answers_match_live", f64::from(u8::from(same))),
    ]);
    Ok(m)
}

/// The pipeline's part: the full backup (`repo`, local) queried where it lies, then the same
/// data backed up to the in-process S3 server and queried there.
pub fn run(p: &Pipeline<'_>, st: &Strata, r: &Running, repo: &Path, dir: &Path, ctx: &mut Ctx<'_>) {
    let setup = Setup {
        st,
        live_url: &r.base_url,
        group: GROUP,
        runs: runs(p.plan),
        live_cli: true,
        scratch: dir.join("query-repo"),
        classify: None,
    };
    let local = Target {
        url: repo.to_string_lossy().into_owned(),
        flags: Vec::new(),
        env: Vec::new(),
        s3: None,
    };
    measure(&setup, &local, p.queries, LOCAL, &[], ctx);

    let Some(s3) = p.s3 else {
        let _ = std::fs::remove_dir_all(&setup.scratch);
        return skip_all(S3_REPO, "the in-process S3 server did not start", ctx);
    };
    // One repository per repetition in the shared bucket, removed afterwards.
    let prefix = format!("rep-{}", ctx.rep);
    let target = Target {
        url: s3.url(&prefix),
        flags: s3.flags(),
        env: s3.env().to_vec(),
        s3: Some(s3),
    };
    match backup_to(st, r, &target) {
        Ok(extra) => measure(&setup, &target, p.queries, S3_REPO, &extra, ctx),
        Err(e) => skip_all(S3_REPO, &e, ctx),
    }
    let _ = std::fs::remove_dir_all(s3.bucket_dir().join(&prefix));
    let _ = std::fs::remove_dir_all(&setup.scratch);
}

/// `repo init` (encrypted, zstd:3) and a full `backup --server` into `t`; figures of the
/// backup for the summary row.
pub fn backup_to(
    st: &Strata,
    r: &Running,
    t: &Target<'_>,
) -> Result<Vec<(&'static str, f64)>, String> {
    let mut env = t.env.clone();
    env.push(("STRATA_REPO_PASSWORD", PASSWORD));
    let run = |what: &str, mut args: Vec<String>| {
        args.extend(t.flags.iter().cloned());
        let m = run_measured(&st.bin.to_string_lossy(), &args, &env).map_err(|e| e.to_string())?;
        if m.status.success() {
            Ok(m)
        } else {
            Err(format!("strata {what}: {}", m.reason()))
        }
    };
    let init = [
        "repo",
        "init",
        "--repo",
        &t.url,
        "--encryption",
        "aes-256-gcm",
        "--compression",
        "zstd:3",
    ];
    run("repo init", init.map(String::from).to_vec())?;
    if let Some(s3) = t.s3 {
        s3.take();
    }
    let backup = ["backup", "--repo", &t.url, "--server", &r.base_url];
    let m = run("backup", backup.map(String::from).to_vec())?;
    let mut out = vec![("backup_wall_s", m.wall.as_secs_f64())];
    if let Some(s3) = t.s3 {
        let c = s3.take();
        out.push(("backup_s3_requests", c.requests() as f64));
        out.push(("backup_s3_puts", c.of("PUT") as f64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_compare_with_tolerance_for_numbers_only() {
        let a = serde_json::json!({"series":[{"tags":{"h":"a"},"values":[[1, 0.1], [2, 3.0]]}]});
        let mut b = a.clone();
        assert!(same_answer(&a, &b));
        b["series"][0]["values"][0][1] = serde_json::json!(0.1 + 1e-12);
        assert!(same_answer(&a, &b));
        b["series"][0]["values"][0][1] = serde_json::json!(0.11);
        assert!(!same_answer(&a, &b));
        let mut c = a.clone();
        c["series"][0]["tags"]["h"] = "b".into();
        assert!(!same_answer(&a, &c));
        let mut d = a.clone();
        d["series"][0]["values"] = serde_json::json!([[1, 0.1]]);
        assert!(!same_answer(&a, &d));
        assert_eq!(expected().len(), 10);
    }
}
