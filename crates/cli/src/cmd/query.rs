//! `strata query`: run a JSON query against a running server (`--server URL`), offline on a
//! stopped server's data directory (`--data-dir DIR`), or straight from a backup snapshot
//! (`--repo URL --snapshot ID`, mounted read-only: `strata_backup::mount`). All print the same
//! pretty JSON.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use strata_query::QueryResult;

#[derive(clap::Args)]
pub struct Args {
    /// Base URL of a running server, e.g. http://127.0.0.1:8480
    #[arg(long, conflicts_with_all = ["data_dir", "repo"])]
    server: Option<String>,
    /// Data directory to query offline (opened read-only)
    #[arg(long, conflicts_with = "repo")]
    data_dir: Option<PathBuf>,
    /// Backup repository to query directly (with --snapshot, or --at)
    #[arg(long)]
    repo: Option<String>,
    /// Snapshot in --repo: an id, a unique prefix, or `latest` (the default)
    #[arg(long, requires = "repo")]
    snapshot: Option<String>,
    /// Answer as of this time, RFC 3339 or a duration ago (15m): the newest snapshot at or
    /// before it plus the archived WAL up to it, replayed in memory (as `restore --at` would
    /// restore it)
    #[arg(long, requires = "repo")]
    at: Option<String>,
    /// With --at: only this node's archive (when several nodes share the repository)
    #[arg(long, requires = "at")]
    node: Option<String>,
    /// File whose first line is the repository password [default: $STRATA_REPO_PASSWORD]
    #[arg(long, requires = "repo")]
    password_file: Option<PathBuf>,
    /// Ask the `strata agent` on this socket for the repository's key first
    /// [default: $STRATA_AGENT_SOCK]
    #[arg(long, requires = "repo")]
    agent: Option<PathBuf>,
    /// S3 endpoint URL (S3 compatibles such as MinIO) [default: $AWS_ENDPOINT]
    #[arg(long, requires = "repo")]
    endpoint: Option<String>,
    /// S3 region [default: $AWS_REGION]
    #[arg(long, requires = "repo")]
    region: Option<String>,
    /// S3 path-style requests (http://host/bucket/key)
    #[arg(long, requires = "repo")]
    path_style: bool,
    /// Allow plain http:// endpoints
    #[arg(long, requires = "repo")]
    allow_http: bool,
    /// Local cache of what --repo queries fetch, kept between runs (default: a temporary
    /// directory, removed afterwards)
    #[arg(long, requires = "repo")]
    cache_dir: Option<PathBuf>,
    /// Bound of --cache-dir, e.g. 512MiB (least recently used objects are evicted)
    #[arg(long, requires = "repo", default_value = "1GiB")]
    cache_size: String,
    /// With --repo: print what was read from the repository to stderr (one JSON line)
    #[arg(long, requires = "repo")]
    stats: bool,
    /// Bearer token for --server
    #[arg(long, env = "STRATA_AUTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The query as JSON, or '-' to read it from stdin
    query: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let query = if args.query == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the query from stdin")?;
        s
    } else {
        args.query.clone()
    };
    let result = if let Some(url) = args.repo.clone() {
        from_repo(&url, &args, &query)?
    } else if let Some(url) = args.server {
        remote(&url, args.token.as_deref(), query)?
    } else if let Some(dir) = args.data_dir {
        offline(&dir, &query)?
    } else {
        bail!("give --server URL or --data-dir DIR");
    };
    let text = serde_json::to_string_pretty(&result)?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`strata query ... | head`) is not an error worth a panic.
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the result")
        }
        _ => Ok(()),
    }
}

fn offline(dir: &std::path::Path, query: &str) -> anyhow::Result<QueryResult> {
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    let engine = strata_engine::Engine::open_read_only(dir)
        .with_context(|| format!("cannot open {} read-only", dir.display()))?;
    Ok(strata_query::run_json(&engine, query.as_bytes())?)
}

fn from_repo(url: &str, a: &Args, query: &str) -> anyhow::Result<QueryResult> {
    use strata_backup::mount::{MountOptions, mount, mount_at};
    // A query that does not parse fails before the repository is touched.
    let q = strata_query::Query::from_json(query.as_bytes())?;
    let settings = strata_backup::settings::RepoSettings {
        url: url.to_string(),
        password_file: a.password_file.clone(),
        endpoint: a.endpoint.clone(),
        region: a.region.clone(),
        path_style: a.path_style,
        allow_http: a.allow_http,
        agent: a.agent.clone(),
        ..strata_backup::settings::RepoSettings::default()
    };
    let cache_bytes = strata_backup::store::parse_rate(&a.cache_size)
        .with_context(|| format!("--cache-size {}", a.cache_size))?;
    let opts = MountOptions {
        groups: Some(vec![q.group.clone()]),
        cache_dir: a.cache_dir.clone(),
        cache_bytes,
    };
    if a.at.is_some() && a.snapshot.is_some() {
        bail!("give --at or --snapshot, not both: --at TIME chooses the snapshot itself");
    }
    let (m, at) = match &a.at {
        Some(at) => {
            let at_ns = super::pitr::parse_at(at, super::pitr::now_ns())?;
            let (m, plan) = mount_at(&settings, at_ns, a.node.as_deref(), opts)?;
            (m, Some(plan))
        }
        None => (
            mount(&settings, a.snapshot.as_deref().unwrap_or("latest"), opts)?,
            None,
        ),
    };
    let started = std::time::Instant::now();
    let result = strata_query::execute(m.engine(), &q)?;
    if a.stats {
        let v = serde_json::json!({
            "snapshot": m.snapshot(),
            "point_in_time": at,
            "repository_bytes": m.stored_bytes(),
            "fetched": m.stats(),
            "timings": m.timings(),
            "query_ms": started.elapsed().as_secs_f64() * 1e3,
        });
        eprintln!("{v}");
    }
    Ok(result)
}

fn remote(url: &str, token: Option<&str>, query: String) -> anyhow::Result<QueryResult> {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let mut req = reqwest::blocking::Client::new()
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(query);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = resp.status();
    let body = resp.text().context("cannot read the server's answer")?;
    if !status.is_success() {
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        bail!("server answered {status}: {msg}");
    }
    serde_json::from_str(&body).context("the server's answer is not a query result")
}
