//! `strata repo init`, and what every repository command shares: the `--repo` flags, opening the
//! repository, the password, the async runtime, progress bars and formatting.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use strata_backup::crypto::KdfParams;
use strata_backup::settings::RepoSettings;
use strata_backup::{InitOptions, Progress, Repository};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
}

/// Where the repository is and how to reach it.
#[derive(clap::Args, Clone, Debug)]
pub struct RepoArgs {
    /// Repository: a path, file:///path, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix
    #[arg(long, env = "STRATA_REPO")]
    pub repo: String,
    /// File whose first line is the repository password [default: $STRATA_REPO_PASSWORD]
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// S3 endpoint URL (S3 compatibles such as MinIO) [default: $AWS_ENDPOINT]
    #[arg(long)]
    pub endpoint: Option<String>,
    /// S3 region [default: $AWS_REGION]
    #[arg(long)]
    pub region: Option<String>,
    /// S3 path-style requests (http://host/bucket/key)
    #[arg(long)]
    pub path_style: bool,
    /// Allow plain http:// endpoints
    #[arg(long)]
    pub allow_http: bool,
    /// Upload bandwidth limit, e.g. 50MiB (per second)
    #[arg(long)]
    pub limit_upload: Option<String>,
    /// Download bandwidth limit, e.g. 50MiB (per second)
    #[arg(long)]
    pub limit_download: Option<String>,
    /// Concurrent requests to the repository at most
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Ask the `strata agent` on this socket for the key before using the password
    /// [default: $STRATA_AGENT_SOCK]
    #[arg(long)]
    pub agent: Option<PathBuf>,
}

impl RepoArgs {
    /// The one repository configuration type the server shares.
    pub fn settings(&self) -> RepoSettings {
        RepoSettings {
            url: self.repo.clone(),
            password_file: self.password_file.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            allow_http: self.allow_http,
            concurrency: self.concurrency,
            limit_upload: self.limit_upload.clone(),
            limit_download: self.limit_download.clone(),
            agent: self.agent.clone(),
            ..Default::default()
        }
    }

    pub fn password(&self) -> anyhow::Result<Option<String>> {
        Ok(self.settings().password()?)
    }

    pub async fn open(&self) -> anyhow::Result<Repository> {
        Ok(self.settings().open().await?)
    }
}

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// aes-256-gcm or none [default: aes-256-gcm when a password is given, else none]
    #[arg(long)]
    encryption: Option<String>,
    /// zstd:LEVEL or none
    #[arg(long, default_value = "zstd:3")]
    compression: String,
    /// Argon2id memory in KiB (lower only for tests)
    #[arg(long, default_value_t = 65536, hide = true)]
    kdf_memory_kib: u32,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init(a) => runtime()?.block_on(init(a)),
    }
}

async fn init(a: InitArgs) -> anyhow::Result<()> {
    let password = a.repo.password()?;
    let encryption = match a.encryption.as_deref() {
        Some("aes-256-gcm") => true,
        Some("none") => false,
        Some(other) => bail!("--encryption {other}: use aes-256-gcm or none"),
        None => password.is_some(),
    };
    let opts = InitOptions {
        encryption,
        compression: strata_backup::config::parse_compression(&a.compression)?,
        password,
        kdf: KdfParams {
            m_cost: a.kdf_memory_kib,
            ..Default::default()
        },
    };
    let repo = a.repo.settings().init(opts).await?;
    let c = repo.config();
    if a.json {
        println!("{}", serde_json::to_string_pretty(c)?);
    } else {
        println!(
            "created repository {} at {} (encryption {}, compression {})",
            c.id, a.repo.repo, c.encryption, c.compression
        );
        if !encryption {
            println!("note: this repository is NOT encrypted");
        }
    }
    Ok(())
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A progress bar on stderr fed from `Progress`, only when stderr is a terminal.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn progress_bar(progress: Arc<Progress>) -> Option<Bar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        while !s.load(Ordering::SeqCst) {
            let p = progress.snapshot();
            bar.set_message(p.phase);
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    Some(Bar {
        stop,
        thread: Some(thread),
    })
}

pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn fmt_time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}
