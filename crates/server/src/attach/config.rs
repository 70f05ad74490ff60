//! What an attachment is made of: the body of `POST /api/v1/attachments` and, with the same
//! keys, each `[[attachment]]` table of the server's TOML file (mounted at every start).
//!
//! ```toml
//! [[attachment]]
//! as = "before_deploy_"           # attached groups are named <as><group>
//! repo = "s3://backups/strata"    # default: the server's repository
//! snapshot = "latest"             # an id, a unique prefix or `latest`
//! groups = ["metrics"]
//! cache_dir = "/var/cache/strata" # default: a temporary directory, removed on detach
//! cache_size = "2GiB"
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_backup::mount::{DEFAULT_CACHE_BYTES, MountOptions};
use strata_backup::settings::RepoSettings;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentConfig {
    /// The attachment's name, and the prefix of its groups' names.
    #[serde(rename = "as")]
    pub name: String,
    /// Repository URL; unset: the server's (`repo` / `[repository]`).
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default = "latest")]
    pub snapshot: String,
    pub groups: Vec<String>,
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Bound of the cache, e.g. `512MiB`; default 1 GiB.
    #[serde(default)]
    pub cache_size: Option<String>,
}

fn latest() -> String {
    "latest".into()
}

impl AttachmentConfig {
    /// The prefix of attached group names.
    pub fn prefix(&self) -> &str {
        &self.name
    }

    /// The repository settings: the server's when the URL is the server's (or unset), so its
    /// endpoint, credentials and password file apply; otherwise only the URL (password from
    /// `STRATA_REPO_PASSWORD`, S3 settings from the environment).
    pub fn settings(&self, server: &RepoSettings) -> RepoSettings {
        match &self.repo {
            Some(url) if *url != server.url => RepoSettings::new(url.clone()),
            _ => server.clone(),
        }
    }

    pub fn mount_options(&self) -> MountOptions {
        MountOptions {
            groups: Some(self.groups.clone()),
            cache_dir: self.cache_dir.clone(),
            cache_bytes: self
                .cache_size
                .as_deref()
                .and_then(|s| strata_backup::store::parse_rate(s).ok())
                .unwrap_or(DEFAULT_CACHE_BYTES),
        }
    }

    /// Checks that need no repository.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.cache_size {
            strata_backup::store::parse_rate(s).map_err(|e| format!("cache_size: {e}"))?;
        }
        Ok(())
    }
}
