//! `strata query`: run a JSON query against a running server (`--server URL`) or offline on a
//! stopped server's data directory (`--data-dir DIR`). Both print the same pretty JSON.

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
    /// Backup repository to query directly (with --snapshot)
    #[arg(long, requires = "snapshot")]
    repo: Option<String>,
    /// Snapshot ID in --repo
    #[arg(long, requires = "repo")]
    snapshot: Option<String>,
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
        args.query
    };
    let result = if let Some(url) = args.server {
        remote(&url, args.token.as_deref(), query)?
    } else if let Some(dir) = args.data_dir {
        offline(&dir, &query)?
    } else if args.repo.is_some() {
        bail!("querying a backup snapshot directly is not available in this build yet");
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
