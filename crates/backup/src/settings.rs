//! One repository configuration, shared by every command of the CLI (its `--repo`,
//! `--password-file`, `--endpoint`… flags) and by the server (`--repo` and the `[repository]`
//! table of its TOML file): where the repository is, where its password comes from, and how
//! to reach the store (S3 endpoint, region, credentials, concurrency, bandwidth limits). A
//! server backup job therefore honours the same settings as `strata backup`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent::proto::KeyEntry;
use crate::error::{Error, Result};
use crate::repo::{InitOptions, Repository, Unlock};
use crate::store::{self, StoreOptions};

/// Environment variable holding the repository password when no password file is given.
pub const PASSWORD_ENV: &str = "STRATA_REPO_PASSWORD";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepoSettings {
    /// A path, `file:///path`, `s3://bucket/prefix`, `gs://…`, `az://…`.
    pub url: String,
    /// File whose first line is the password; unset: `STRATA_REPO_PASSWORD`.
    pub password_file: Option<PathBuf>,
    /// S3 endpoint (S3 compatibles such as MinIO); unset: `AWS_ENDPOINT`.
    pub endpoint: Option<String>,
    /// S3 region; unset: `AWS_REGION`.
    pub region: Option<String>,
    /// Unset: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// S3 path-style requests (`http://host/bucket/key`).
    pub path_style: bool,
    /// Allow plain `http://` endpoints.
    pub allow_http: bool,
    /// Concurrent requests at most.
    pub concurrency: usize,
    /// Upload bandwidth limit per second, e.g. `50MiB`.
    pub limit_upload: Option<String>,
    /// Download bandwidth limit per second.
    pub limit_download: Option<String>,
    /// A `strata agent` socket to ask for the key before using the password; unset:
    /// `STRATA_AGENT_SOCK`. Not part of the server's configuration file.
    #[serde(skip)]
    pub agent: Option<PathBuf>,
}

impl Default for RepoSettings {
    fn default() -> Self {
        RepoSettings {
            url: String::new(),
            password_file: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
            allow_http: false,
            concurrency: StoreOptions::default().concurrency,
            limit_upload: None,
            limit_download: None,
            agent: None,
        }
    }
}

impl RepoSettings {
    pub fn new(url: impl Into<String>) -> Self {
        RepoSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    pub fn store_options(&self) -> Result<StoreOptions> {
        let rate = |s: &Option<String>| -> Result<u64> {
            Ok(match s {
                Some(s) => store::parse_rate(s)?,
                None => 0,
            })
        };
        if self.concurrency == 0 {
            return Err(Error::InvalidArgument(
                "repository concurrency must be at least 1".into(),
            ));
        }
        Ok(StoreOptions {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            path_style: self.path_style,
            allow_http: self.allow_http,
            concurrency: self.concurrency,
            limit_upload: rate(&self.limit_upload)?,
            limit_download: rate(&self.limit_download)?,
            ..Default::default()
        })
    }

    /// The password: the first line of the password file, else `STRATA_REPO_PASSWORD`.
    pub fn password(&self) -> Result<Option<String>> {
        if let Some(p) = &self.password_file {
            let s = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let line = s.lines().next().unwrap_or("").to_string();
            if line.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "password file {} is empty",
                    p.display()
                )));
            }
            return Ok(Some(line));
        }
        Ok(std::env::var(PASSWORD_ENV).ok().filter(|s| !s.is_empty()))
    }

    /// Open (and unlock) the repository: with the key a `strata agent` holds when one is
    /// named ([`RepoSettings::agent`] or `STRATA_AGENT_SOCK`), else with the password.
    pub async fn open(&self) -> Result<Repository> {
        Ok(self.open_granting().await?.0)
    }

    /// [`RepoSettings::open`], also returning the key the password derived when the password
    /// unlocked the repository (`strata agent add` hands it over).
    pub async fn open_granting(&self) -> Result<(Repository, Option<KeyEntry>)> {
        let store = store::open(&self.url, &self.store_options()?, false)?;
        let password = self.password()?;
        let agent = crate::agent::socket_from(self.agent.as_deref());
        let how = Unlock {
            password: password.as_deref(),
            agent: agent.as_deref(),
        };
        Repository::open_with(store, &self.url, how).await
    }

    /// Create the repository. `opts.password` is filled from the settings when unset. Bad
    /// options fail before anything is created, and a local directory this call created is
    /// removed again when the init fails.
    pub async fn init(&self, mut opts: InitOptions) -> Result<Repository> {
        if opts.password.is_none() {
            opts.password = self.password()?;
        }
        opts.validate()?;
        let store_opts = self.store_options()?;
        let made = store::local_dir(&self.url).filter(|d| !d.exists());
        let res = async {
            let store = store::open(&self.url, &store_opts, true)?;
            Repository::init(store, &self.url, opts).await
        }
        .await;
        if let (Err(_), Some(d)) = (&res, made) {
            // Only what this call created, and only while it is still empty.
            let _ = std::fs::remove_dir(&d);
        }
        res
    }

    /// The settings as logged: credentials are never printed.
    pub fn redacted(&self) -> RepoSettings {
        RepoSettings {
            secret_access_key: self.secret_access_key.as_ref().map(|_| "<set>".into()),
            ..self.clone()
        }
    }
}
