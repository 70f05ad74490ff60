//! `strata server`: resolve the configuration (flags > `STRATA_*` env > `--config` TOML file >
//! defaults) and run the HTTP server until SIGINT/SIGTERM.

use std::path::PathBuf;

use strata_server::{Config, ConfigLayer};

#[derive(clap::Args)]
pub struct Args {
    /// TOML configuration file (keys: data_dir, listen, repo, auth_token, max_body_bytes, fsync,
    /// idle_flush, max_connections, header_timeout, body_timeout, idle_timeout,
    /// query_memory_bytes, query_memory_total_bytes, max_fields_per_point,
    /// max_fields_per_measure; [repository] table)
    #[arg(long, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./strata-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address host:port; port 0 picks a free one [default: 127.0.0.1:8480]
    #[arg(long)]
    listen: Option<String>,
    /// Backup repository URL used by backup jobs [default: ./strata-backups]
    #[arg(long)]
    repo: Option<String>,
    /// Ship the WAL continuously to the repository for point-in-time recovery (the
    /// `[archive]` table sets max_pending and interval)
    #[arg(long)]
    archive: bool,
    /// Bearer token required on every request (mandatory off loopback)
    #[arg(long)]
    auth_token: Option<String>,
    /// Largest accepted request body in bytes, after decompression [default: 67108864]
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// WAL fsync policy: always, never, interval:<duration> [default: always]
    #[arg(long)]
    fsync: Option<String>,
    /// Flush a memtable idle this long to parts, e.g. 5s; 0s turns it off [default: 5s]
    #[arg(long)]
    idle_flush: Option<String>,
    /// Most connections served at once; more wait in the accept queue [default: from the
    /// open-file limit, which is raised to its hard maximum at start, minus descriptors kept
    /// for the engine; at most 4096]
    #[arg(long)]
    max_connections: Option<usize>,
    /// Request headers must arrive within this long; also the keep-alive idle time [default: 10s]
    #[arg(long)]
    header_timeout: Option<String>,
    /// A request's whole body must arrive within this long [default: 60s]
    #[arg(long)]
    body_timeout: Option<String>,
    /// Close a connection with no request running and no byte moving for this long [default: 60s]
    #[arg(long)]
    idle_timeout: Option<String>,
    /// Most memory one query may hold, in bytes [default: 268435456]
    #[arg(long)]
    query_memory_bytes: Option<usize>,
    /// Memory shared by all running queries, in bytes [default: 1073741824]
    #[arg(long)]
    query_memory_total_bytes: Option<usize>,
    /// Most fields one point may carry [default: 1024]
    #[arg(long)]
    max_fields_per_point: Option<usize>,
    /// Most distinct fields one measure may have [default: 4096]
    #[arg(long)]
    max_fields_per_measure: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let flags = ConfigLayer {
        data_dir: args.data_dir,
        listen: args.listen,
        repo: args.repo,
        auth_token: args.auth_token,
        max_body_bytes: args.max_body_bytes,
        fsync: args.fsync,
        idle_flush: args.idle_flush,
        max_connections: args.max_connections,
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
        query_memory_bytes: args.query_memory_bytes,
        query_memory_total_bytes: args.query_memory_total_bytes,
        max_fields_per_point: args.max_fields_per_point,
        max_fields_per_measure: args.max_fields_per_measure,
        archive: args.archive.then(|| strata_server::archive::ArchiveLayer {
            enabled: Some(true),
            ..Default::default()
        }),
        // Remote-read limits come from the config file or the environment only.
        ..ConfigLayer::default()
    };
    let env = ConfigLayer::from_env(|k| std::env::var(k).ok())?;
    let config = Config::resolve(flags, env, args.config.as_deref())?;
    strata_server::run(config)?;
    Ok(())
}
