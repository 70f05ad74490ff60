//! Public engine error: what went wrong, where, and whether retrying can help.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file failed a checksum or structural check. Never turned into wrong data.
    #[error("corrupt file {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("unsupported format version {found} in {path} (this build reads up to {supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "data directory {path} is locked by another process (is a strata server running on it?)"
    )]
    Locked { path: PathBuf },
    #[error(
        "field type conflict in measure '{measure}': field '{field}' is {existing}, write has {attempted}"
    )]
    FieldTypeConflict {
        measure: String,
        field: String,
        existing: crate::FieldType,
        attempted: crate::FieldType,
    },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("group '{0}' not found")]
    GroupNotFound(String),
    /// A previous write or fsync failed; the engine refuses writes until it is reopened.
    #[error("engine is read-only after an earlier write failure ({0}); reopen the data directory")]
    Poisoned(String),
    #[error("engine is closed")]
    Closed,
    #[error("snapshot {0} not found or already released")]
    SnapshotNotFound(String),
    /// A data-directory operation (restore target, swap recovery) that would be unsafe; the
    /// message says why and what the operator can do.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Whether the same call may succeed if retried without operator action.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Locked { .. })
    }

    /// Whether this is a failure to *open* a file because the process (`EMFILE`) or the system
    /// (`ENFILE`) ran out of file descriptors. Nothing was written or lost by such a failure:
    /// it passes once descriptors are free again, so the engine retries it instead of refusing
    /// writes until reopened (the rule for failed writes and fsyncs).
    pub fn is_descriptor_exhaustion(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_descriptor_exhaustion(source),
            _ => false,
        }
    }
}

/// `EMFILE` or `ENFILE`.
pub fn is_descriptor_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
