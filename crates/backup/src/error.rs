//! The public error of the backup crate: what went wrong, where, and a hint for the operator.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("repository {url}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no repository at {0} (run `strata repo init` first)")]
    NoRepository(String),
    #[error("a repository already exists at {0}")]
    RepositoryExists(String),
    #[error("wrong repository password")]
    WrongPassword,
    #[error(
        "repository is encrypted: give its password in STRATA_REPO_PASSWORD or with --password-file"
    )]
    PasswordRequired,
    #[error(
        "an encrypted repository needs a password: set STRATA_REPO_PASSWORD or give --password-file (or use --encryption none)"
    )]
    InitPasswordRequired,
    /// A repository file (config, key, manifest or data object) failed a checksum, an AEAD tag or
    /// a structural check. Never turned into wrong data.
    #[error("damaged repository object {name}: {detail}")]
    Corrupt { name: String, detail: String },
    #[error(
        "unsupported repository format version {found} in {name} (this build reads up to {supported})"
    )]
    UnsupportedVersion {
        name: String,
        found: u32,
        supported: u32,
    },
    /// A manifest that would make restore write outside its directory or lies about sizes.
    #[error("rejected manifest of snapshot {snapshot}: {detail}")]
    HostileManifest { snapshot: String, detail: String },
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    #[error("snapshot prefix {0} is ambiguous")]
    AmbiguousSnapshot(String),
    #[error("source file {path} does not match the snapshot listing: {detail}")]
    SourceChanged { path: PathBuf, detail: String },
    #[error("engine: {0}")]
    Engine(strata_engine::backup_api::Error),
    #[error("{0}")]
    Refused(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<strata_engine::backup_api::Error> for Error {
    /// The engine's refusals (an unsafe restore target, a swap to resolve by hand) are the
    /// operator's business, said as they are; everything else is an engine error.
    fn from(e: strata_engine::backup_api::Error) -> Self {
        match e {
            strata_engine::backup_api::Error::Refused(m) => Error::Refused(m),
            e => Error::Engine(e),
        }
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corrupt(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            name: name.into(),
            detail: detail.into(),
        }
    }

    /// Whether running the same command again may succeed without operator action.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store(object_store::Error::Generic { .. }) | Error::Io { .. }
        )
    }
}
