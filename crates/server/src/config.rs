//! Server configuration, resolved from layers: command-line flags > `STRATA_*` environment
//! variables > TOML file (`--config`) > embedded defaults. Each layer is a [`ConfigLayer`] of
//! optional values, so the precedence is one `or` chain and can be tested without a process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `host:port`; port 0 picks a free port (the bound address is printed at start).
    pub listen: String,
    /// Backup repository URL (recorded for backup jobs).
    pub repo: String,
    /// How backup jobs reach the repository (`url` is `repo`): the `[repository]` table of
    /// the TOML file, with the same keys and meaning as the CLI's repository flags.
    pub repository: strata_backup::settings::RepoSettings,
    /// Bearer token required on every endpoint when set; mandatory off loopback.
    pub auth_token: Option<String>,
    /// Largest accepted request body, after decompression.
    pub max_body_bytes: usize,
    /// WAL fsync policy: `always`, `never`, `interval:<duration>`.
    pub fsync: String,
    /// Flush a memtable that got no write for this long (a duration, e.g. `5s`; `0s` = never),
    /// so data of a finished ingest leaves the WAL for parts.
    pub idle_flush: String,
    /// Most connections served at once; `None`: derived from the open-file limit (see
    /// [`crate::serve::fds`]). Further connections wait in the kernel's accept queue.
    pub max_connections: Option<usize>,
    /// A client must send a request's headers within this long (also how long an idle
    /// keep-alive connection is kept, and how long a new connection may stay silent).
    pub header_timeout: String,
    /// A client must send a request's whole body within this long.
    pub body_timeout: String,
    /// A connection with no request being handled and no byte moving either way for this long
    /// is closed (stalled responses, idle HTTP/2 connections).
    pub idle_timeout: String,
    /// Prometheus remote read: the most series, samples and (uncompressed) response bytes one
    /// request may return; more is refused with `exceeded ... limit`.
    pub remote_read_max_series: usize,
    pub remote_read_max_samples: usize,
    pub remote_read_max_bytes: usize,
    /// Most memory one query may hold (bytes); past it the query fails with 422.
    pub query_memory_bytes: usize,
    /// Memory shared by all running queries (bytes); past it a query fails with 503.
    pub query_memory_total_bytes: usize,
    /// Most fields one point may carry; a line with more is refused (400).
    pub max_fields_per_point: usize,
    /// Most distinct fields one measure may have; a write adding more is refused (400).
    pub max_fields_per_measure: usize,
    /// `[[attachment]]`: backup snapshots mounted read-only at start (`crate::attach`).
    pub attachment: Vec<crate::attach::AttachmentConfig>,
    /// Continuous WAL archiving to `repository` (`[archive]`, see [`crate::archive`]).
    pub archive: crate::archive::ArchiveSettings,
    /// The persisted job history (default `<data_dir>/jobs/history.log`).
    pub jobs_history: PathBuf,
    /// `[[schedule]]` tables: backups the server runs by itself ([`crate::scheduler`]).
    pub schedules: Vec<crate::scheduler::config::ScheduleConfig>,
}

/// One layer of configuration; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub repo: Option<String>,
    pub auth_token: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub fsync: Option<String>,
    pub idle_flush: Option<String>,
    pub max_connections: Option<usize>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub remote_read_max_series: Option<usize>,
    pub remote_read_max_samples: Option<usize>,
    pub remote_read_max_bytes: Option<usize>,
    pub query_memory_bytes: Option<usize>,
    pub query_memory_total_bytes: Option<usize>,
    pub max_fields_per_point: Option<usize>,
    pub max_fields_per_measure: Option<usize>,
    /// `[repository]`: endpoint, region, credentials, password_file, concurrency, limits.
    pub repository: Option<strata_backup::settings::RepoSettings>,
    /// `[[attachment]]` tables (`crate::attach::config`).
    pub attachment: Option<Vec<crate::attach::AttachmentConfig>>,
    /// `[archive]`: enabled, max_pending, interval.
    pub archive: Option<crate::archive::ArchiveLayer>,
    pub jobs_history: Option<PathBuf>,
    /// `[[schedule]]` (file only).
    pub schedule: Option<Vec<crate::scheduler::config::ScheduleConfig>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One line: where in the file and what is wrong (the TOML error's own text spans several
    /// lines with a snippet, and as a `source` it was printed twice).
    #[error("bad config file {}: {}", path.display(), toml_line(error))]
    Parse {
        path: PathBuf,
        error: Box<toml::de::Error>,
    },
    #[error("environment variable {var}: {reason}")]
    Env { var: &'static str, reason: String },
    #[error("listen address '{0}' is not host:port (e.g. 127.0.0.1:8480)")]
    Listen(String),
    #[error(
        "listening on non-loopback address {0} requires an auth token (--auth-token, STRATA_AUTH_TOKEN or auth_token in the config file)"
    )]
    TokenRequired(SocketAddr),
    #[error("bad fsync policy '{0}': expected always, never or interval:<duration>")]
    Fsync(String),
    #[error("max_body_bytes must be at least 1")]
    BodyLimit,
    #[error("bad idle_flush '{0}': expected a duration such as 5s, 500ms or 0s (off)")]
    IdleFlush(String),
    #[error(
        "the auth token is empty or starts or ends with whitespace; set a real token (at least one visible character, no surrounding spaces) or leave it unset"
    )]
    BlankToken,
    #[error("bad {key} '{value}': expected a duration of at least 1ms, such as 10s or 500ms")]
    Timeout { key: &'static str, value: String },
    #[error("max_connections must be at least 1")]
    MaxConnections,
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("{0}")]
    Archive(String),
    #[error(transparent)]
    Schedule(#[from] crate::scheduler::config::ScheduleError),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
pub const DEFAULT_IDLE_FLUSH: &str = "5s";
pub const DEFAULT_HEADER_TIMEOUT: &str = "10s";
pub const DEFAULT_BODY_TIMEOUT: &str = "60s";
pub const DEFAULT_IDLE_TIMEOUT: &str = "60s";
const READ_DEFAULTS: crate::remote_read::Limits = crate::remote_read::Limits {
    max_series: 100_000,
    max_samples: 5_000_000,
    max_bytes: 128 << 20,
};
pub const DEFAULT_QUERY_MEMORY_BYTES: usize = strata_query::DEFAULT_QUERY_BYTES;
pub const DEFAULT_QUERY_MEMORY_TOTAL_BYTES: usize = strata_query::DEFAULT_TOTAL_BYTES;
pub const DEFAULT_MAX_FIELDS_PER_POINT: usize = strata_engine::DEFAULT_MAX_FIELDS_PER_POINT;
pub const DEFAULT_MAX_FIELDS_PER_MEASURE: usize = strata_engine::DEFAULT_MAX_FIELDS_PER_MEASURE;

impl ConfigLayer {
    /// Read a TOML file: the same keys as [`ConfigLayer`], e.g. `listen = "0.0.0.0:8480"`.
    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// `STRATA_DATA_DIR`, `STRATA_LISTEN`, `STRATA_REPO`, `STRATA_AUTH_TOKEN`,
    /// `STRATA_MAX_BODY_BYTES`, `STRATA_FSYNC`, `STRATA_IDLE_FLUSH`, `STRATA_MAX_CONNECTIONS`,
    /// `STRATA_HEADER_TIMEOUT`, `STRATA_BODY_TIMEOUT`, `STRATA_IDLE_TIMEOUT`,
    /// `STRATA_REMOTE_READ_MAX_{SERIES,SAMPLES,BYTES}`; `get` is
    /// `STRATA_QUERY_MEMORY_BYTES`, `STRATA_QUERY_MEMORY_TOTAL_BYTES`,
    /// `STRATA_MAX_FIELDS_PER_POINT`, `STRATA_MAX_FIELDS_PER_MEASURE`; `get` is
    /// `std::env::var` outside tests. An empty `STRATA_AUTH_TOKEN` counts as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ConfigLayer, ConfigError> {
        let number = |var: &'static str, what: &str| -> Result<Option<usize>, ConfigError> {
            match get(var) {
                Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Env {
                    var,
                    reason: format!("'{v}' is not a number of {what}"),
                }),
                None => Ok(None),
            }
        };
        let max_body_bytes = number("STRATA_MAX_BODY_BYTES", "bytes")?;
        let max_connections = number("STRATA_MAX_CONNECTIONS", "connections")?;
        Ok(ConfigLayer {
            data_dir: get("STRATA_DATA_DIR").map(PathBuf::from),
            listen: get("STRATA_LISTEN"),
            repo: get("STRATA_REPO"),
            auth_token: get("STRATA_AUTH_TOKEN").filter(|t| !t.is_empty()),
            max_body_bytes,
            fsync: get("STRATA_FSYNC"),
            idle_flush: get("STRATA_IDLE_FLUSH"),
            max_connections,
            header_timeout: get("STRATA_HEADER_TIMEOUT"),
            body_timeout: get("STRATA_BODY_TIMEOUT"),
            idle_timeout: get("STRATA_IDLE_TIMEOUT"),
            remote_read_max_series: number("STRATA_REMOTE_READ_MAX_SERIES", "series")?,
            remote_read_max_samples: number("STRATA_REMOTE_READ_MAX_SAMPLES", "samples")?,
            remote_read_max_bytes: number("STRATA_REMOTE_READ_MAX_BYTES", "bytes")?,
            query_memory_bytes: number("STRATA_QUERY_MEMORY_BYTES", "bytes")?,
            query_memory_total_bytes: number("STRATA_QUERY_MEMORY_TOTAL_BYTES", "bytes")?,
            max_fields_per_point: number("STRATA_MAX_FIELDS_PER_POINT", "fields")?,
            max_fields_per_measure: number("STRATA_MAX_FIELDS_PER_MEASURE", "fields")?,
            repository: None,
            attachment: None,
            archive: crate::archive::ArchiveLayer::from_env(&get)?,
            jobs_history: get("STRATA_JOBS_HISTORY").map(PathBuf::from),
            schedule: None,
        })
    }

    /// Values set in `self` win; the rest come from `lower`.
    pub fn or(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            repo: self.repo.or(lower.repo),
            auth_token: self.auth_token.or(lower.auth_token),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            fsync: self.fsync.or(lower.fsync),
            idle_flush: self.idle_flush.or(lower.idle_flush),
            max_connections: self.max_connections.or(lower.max_connections),
            header_timeout: self.header_timeout.or(lower.header_timeout),
            body_timeout: self.body_timeout.or(lower.body_timeout),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            remote_read_max_series: self.remote_read_max_series.or(lower.remote_read_max_series),
            remote_read_max_samples: self
                .remote_read_max_samples
                .or(lower.remote_read_max_samples),
            remote_read_max_bytes: self.remote_read_max_bytes.or(lower.remote_read_max_bytes),
            query_memory_bytes: self.query_memory_bytes.or(lower.query_memory_bytes),
            query_memory_total_bytes: self
                .query_memory_total_bytes
                .or(lower.query_memory_total_bytes),
            max_fields_per_point: self.max_fields_per_point.or(lower.max_fields_per_point),
            max_fields_per_measure: self.max_fields_per_measure.or(lower.max_fields_per_measure),
            repository: self.repository.or(lower.repository),
            attachment: self.attachment.or(lower.attachment),
            archive: crate::archive::or_layers(self.archive, lower.archive),
            jobs_history: self.jobs_history.or(lower.jobs_history),
            schedule: self.schedule.or(lower.schedule),
        }
    }

    /// Fill what is still unset with the embedded defaults and validate.
    pub fn finish(self) -> Result<Config, ConfigError> {
        let mut repository = self.repository.unwrap_or_default();
        let repo = self
            .repo
            .or_else(|| Some(repository.url.clone()).filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "./strata-backups".to_string());
        repository.url = repo.clone();
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./strata-data"));
        let c = Config {
            jobs_history: self
                .jobs_history
                .unwrap_or_else(|| data_dir.join("jobs").join("history.log")),
            schedules: self.schedule.unwrap_or_default(),
            data_dir,
            listen: self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            repo,
            repository,
            auth_token: self.auth_token,
            max_body_bytes: self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            fsync: self.fsync.unwrap_or_else(|| "always".to_string()),
            idle_flush: self
                .idle_flush
                .unwrap_or_else(|| DEFAULT_IDLE_FLUSH.to_string()),
            max_connections: self.max_connections,
            header_timeout: self
                .header_timeout
                .unwrap_or_else(|| DEFAULT_HEADER_TIMEOUT.to_string()),
            body_timeout: self
                .body_timeout
                .unwrap_or_else(|| DEFAULT_BODY_TIMEOUT.to_string()),
            idle_timeout: self
                .idle_timeout
                .unwrap_or_else(|| DEFAULT_IDLE_TIMEOUT.to_string()),
            remote_read_max_series: self
                .remote_read_max_series
                .unwrap_or(READ_DEFAULTS.max_series),
            remote_read_max_samples: self
                .remote_read_max_samples
                .unwrap_or(READ_DEFAULTS.max_samples),
            remote_read_max_bytes: self
                .remote_read_max_bytes
                .unwrap_or(READ_DEFAULTS.max_bytes),
            query_memory_bytes: self
                .query_memory_bytes
                .unwrap_or(DEFAULT_QUERY_MEMORY_BYTES),
            query_memory_total_bytes: self
                .query_memory_total_bytes
                .unwrap_or(DEFAULT_QUERY_MEMORY_TOTAL_BYTES),
            max_fields_per_point: self
                .max_fields_per_point
                .unwrap_or(DEFAULT_MAX_FIELDS_PER_POINT),
            max_fields_per_measure: self
                .max_fields_per_measure
                .unwrap_or(DEFAULT_MAX_FIELDS_PER_MEASURE),
            attachment: self.attachment.unwrap_or_default(),
            archive: self.archive.unwrap_or_default().finish()?,
        };
        c.validate()?;
        Ok(c)
    }
}

/// `line L, column C: message` of a TOML error, on one line.
fn toml_line(e: &toml::de::Error) -> String {
    let first = e.to_string();
    let place = first
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("TOML parse error at "))
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{place}{message}")
}

fn timeout(key: &'static str, value: &str) -> Result<std::time::Duration, ConfigError> {
    strata_engine::duration::parse(value)
        .ok()
        .filter(|d| *d >= std::time::Duration::from_millis(1))
        .ok_or_else(|| ConfigError::Timeout {
            key,
            value: value.to_string(),
        })
}

impl Config {
    /// Resolve flags > env > file > defaults.
    pub fn resolve(
        flags: ConfigLayer,
        env: ConfigLayer,
        file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let file = match file {
            Some(p) => ConfigLayer::from_file(p)?,
            None => ConfigLayer::default(),
        };
        flags.or(env).or(file).finish()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError::Listen(self.listen.clone()))
    }

    pub fn fsync_policy(&self) -> Result<strata_engine::FsyncPolicy, ConfigError> {
        self.fsync
            .parse()
            .map_err(|_| ConfigError::Fsync(self.fsync.clone()))
    }

    pub fn remote_read_limits(&self) -> crate::remote_read::Limits {
        crate::remote_read::Limits {
            max_series: self.remote_read_max_series,
            max_samples: self.remote_read_max_samples,
            max_bytes: self.remote_read_max_bytes,
        }
    }

    /// The idle-flush delay; zero turns the trigger off.
    pub fn idle_flush(&self) -> Result<std::time::Duration, ConfigError> {
        strata_engine::duration::parse(&self.idle_flush)
            .map_err(|_| ConfigError::IdleFlush(self.idle_flush.clone()))
    }

    pub fn header_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        timeout("header_timeout", &self.header_timeout)
    }

    pub fn body_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        timeout("body_timeout", &self.body_timeout)
    }

    pub fn idle_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        timeout("idle_timeout", &self.idle_timeout)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // A blank token would "protect" a server bound off loopback with a secret anyone can
        // send (or, trimmed by clients, one nobody can).
        if let Some(t) = &self.auth_token
            && (t.trim().is_empty() || t.trim() != t)
        {
            return Err(ConfigError::BlankToken);
        }
        let addr = self.listen_addr()?;
        if !addr.ip().is_loopback() && self.auth_token.is_none() {
            return Err(ConfigError::TokenRequired(addr));
        }
        self.fsync_policy()?;
        self.idle_flush()?;
        if self.max_body_bytes == 0 {
            return Err(ConfigError::BodyLimit);
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::MaxConnections);
        }
        self.header_timeout()?;
        self.body_timeout()?;
        self.idle_timeout()?;
        for (name, v) in [
            ("query_memory_bytes", self.query_memory_bytes),
            ("query_memory_total_bytes", self.query_memory_total_bytes),
            ("max_fields_per_point", self.max_fields_per_point),
            ("max_fields_per_measure", self.max_fields_per_measure),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        crate::scheduler::config::check_all(&self.schedules)?;
        Ok(())
    }

    /// The configuration as logged at start: the token is never printed.
    pub fn redacted(&self) -> Config {
        Config {
            auth_token: self.auth_token.as_ref().map(|_| "<set>".to_string()),
            repository: self.repository.redacted(),
            schedules: self
                .schedules
                .iter()
                .map(|s| crate::scheduler::config::ScheduleConfig {
                    repository: s.repository.as_ref().map(|r| r.redacted()),
                    ..s.clone()
                })
                .collect(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ConfigLayer {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConfigLayer::from_env(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap()
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let c = Config::resolve(ConfigLayer::default(), env(&[]), None).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./strata-data"));
        assert_eq!(c.listen, "127.0.0.1:8480");
        assert_eq!(c.repo, "./strata-backups");
        assert_eq!(c.fsync, "always");
        assert_eq!(c.idle_flush().unwrap(), std::time::Duration::from_secs(5));
        assert_eq!(c.auth_token, None);
        assert_eq!(c.query_memory_bytes, 256 << 20);
        assert_eq!(c.query_memory_total_bytes, 1 << 30);
        assert_eq!(c.max_fields_per_point, DEFAULT_MAX_FIELDS_PER_POINT);
        assert_eq!(c.max_fields_per_measure, DEFAULT_MAX_FIELDS_PER_MEASURE);
    }

    #[test]
    fn query_budgets_and_field_caps_layer_and_refuse_zero() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("strata.toml");
        std::fs::write(
            &file,
            "query_memory_bytes = 1000\nquery_memory_total_bytes = 5000\nmax_fields_per_point = 7\n",
        )
        .unwrap();
        let flags = ConfigLayer {
            query_memory_bytes: Some(2000),
            ..Default::default()
        };
        let env = env(&[
            ("STRATA_QUERY_MEMORY_TOTAL_BYTES", "6000"),
            ("STRATA_MAX_FIELDS_PER_MEASURE", "9"),
        ]);
        let c = Config::resolve(flags, env, Some(&file)).unwrap();
        assert_eq!(c.query_memory_bytes, 2000); // flag
        assert_eq!(c.query_memory_total_bytes, 6000); // env
        assert_eq!(c.max_fields_per_point, 7); // file
        assert_eq!(c.max_fields_per_measure, 9); // env
        let zero = ConfigLayer {
            max_fields_per_point: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            zero.finish(),
            Err(ConfigError::Zero("max_fields_per_point"))
        ));
        let bad = ConfigLayer::from_env(|k| {
            (k == "STRATA_QUERY_MEMORY_BYTES").then(|| "much".to_string())
        });
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("STRATA_QUERY_MEMORY_BYTES")
        );
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("strata.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nrepo = \"/file/repo\"\ndata_dir = \"/file/data\"\n",
        )
        .unwrap();
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:3333".into()),
            ..Default::default()
        };
        let env = env(&[
            ("STRATA_LISTEN", "127.0.0.1:2222"),
            ("STRATA_REPO", "/env/repo"),
            ("STRATA_IDLE_FLUSH", "250ms"),
        ]);
        let c = Config::resolve(flags, env, Some(&file)).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3333"); // flag
        assert_eq!(c.repo, "/env/repo"); // env
        assert_eq!(c.data_dir, PathBuf::from("/file/data")); // file
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES); // default
        assert_eq!(
            c.idle_flush().unwrap(),
            std::time::Duration::from_millis(250)
        ); // env
    }

    #[test]
    fn non_loopback_requires_a_token() {
        let open = ConfigLayer {
            listen: Some("0.0.0.0:0".into()),
            ..Default::default()
        };
        assert!(matches!(
            open.clone().finish(),
            Err(ConfigError::TokenRequired(_))
        ));
        let with_token = ConfigLayer {
            auth_token: Some("s3cret".into()),
            ..open
        };
        let c = with_token.finish().unwrap();
        assert_eq!(c.redacted().auth_token.as_deref(), Some("<set>"));
    }

    #[test]
    fn a_blank_token_is_refused_not_taken_for_a_token() {
        for blank in ["", " ", "\t", "  \n", " s3cret", "s3cret "] {
            let layer = ConfigLayer {
                listen: Some("0.0.0.0:0".into()),
                auth_token: Some(blank.into()),
                ..Default::default()
            };
            assert!(
                matches!(layer.finish(), Err(ConfigError::BlankToken)),
                "token {blank:?} accepted"
            );
        }
        // An empty environment variable means "unset" (then off loopback: token required).
        let e = env(&[("STRATA_AUTH_TOKEN", ""), ("STRATA_LISTEN", "0.0.0.0:0")]);
        assert!(matches!(e.finish(), Err(ConfigError::TokenRequired(_))));
        let e = env(&[("STRATA_AUTH_TOKEN", "  ")]);
        assert!(matches!(e.finish(), Err(ConfigError::BlankToken)));
    }

    #[test]
    fn connection_limits_resolve_and_validate() {
        let c = Config::resolve(ConfigLayer::default(), env(&[]), None).unwrap();
        assert_eq!(c.max_connections, None);
        assert_eq!(
            c.header_timeout().unwrap(),
            std::time::Duration::from_secs(10)
        );
        assert_eq!(
            c.body_timeout().unwrap(),
            std::time::Duration::from_secs(60)
        );
        assert_eq!(
            c.idle_timeout().unwrap(),
            std::time::Duration::from_secs(60)
        );
        let flags = ConfigLayer {
            header_timeout: Some("2s".into()),
            ..Default::default()
        };
        let c = Config::resolve(
            flags,
            env(&[
                ("STRATA_MAX_CONNECTIONS", "64"),
                ("STRATA_HEADER_TIMEOUT", "9s"),
                ("STRATA_BODY_TIMEOUT", "750ms"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.max_connections, Some(64));
        assert_eq!(
            c.header_timeout().unwrap(),
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            c.body_timeout().unwrap(),
            std::time::Duration::from_millis(750)
        );
        for (key, bad) in [("header_timeout", "0s"), ("idle_timeout", "soon")] {
            let layer: ConfigLayer = toml::from_str(&format!("{key} = \"{bad}\"")).unwrap();
            let err = layer.finish().unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        let zero = ConfigLayer {
            max_connections: Some(0),
            ..Default::default()
        };
        assert!(matches!(zero.finish(), Err(ConfigError::MaxConnections)));
        assert!(
            ConfigLayer::from_env(|k| (k == "STRATA_MAX_CONNECTIONS").then(|| "many".into()))
                .is_err()
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let bad_env =
            ConfigLayer::from_env(|k| (k == "STRATA_MAX_BODY_BYTES").then(|| "lots".to_string()));
        assert!(
            bad_env
                .unwrap_err()
                .to_string()
                .contains("STRATA_MAX_BODY_BYTES")
        );
        let bad_fsync = ConfigLayer {
            fsync: Some("sometimes".into()),
            ..Default::default()
        };
        assert!(matches!(bad_fsync.finish(), Err(ConfigError::Fsync(_))));
        let bad_idle = ConfigLayer {
            idle_flush: Some("soon".into()),
            ..Default::default()
        };
        assert!(matches!(bad_idle.finish(), Err(ConfigError::IdleFlush(_))));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::resolve(ConfigLayer::default(), ConfigLayer::default(), Some(&file));
        assert!(matches!(err, Err(ConfigError::Parse { .. })));
    }
}
