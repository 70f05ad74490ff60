//! `strata server`: resolve the configuration (flags > `STRATA_*` env > `--config` TOML file >
//! defaults) and run the HTTP server until SIGINT/SIGTERM.

use std::path::PathBuf;

use strata_server::{Config, ConfigLayer};

#[derive(clap::Args)]
pub struct Args {
    /// TOML configuration file (keys: data_dir, listen, repo, auth_token, max_body_bytes, fsync, idle_flush)
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
    };
    let env = ConfigLayer::from_env(|k| std::env::var(k).ok())?;
    let config = Config::resolve(flags, env, args.config.as_deref())?;
    strata_server::run(config)?;
    Ok(())
}
