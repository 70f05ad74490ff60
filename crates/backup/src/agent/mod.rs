//! `strata agent`: unlocked repository keys held in memory by a foreground process, in the
//! spirit of ssh-agent, so that repeated commands on an encrypted repository skip the
//! password's Argon2id derivation (64 MiB, ~200 ms by design) without a key ever touching disk.
//!
//! What the agent holds, per repository id and key file, is the key-encryption key the
//! password derives for that key file ([`crypto::password_kek`]). A client that asks for it
//! reads the key file from the repository as always and opens it with that key: AES-GCM's tag
//! checks the agent's key against the repository itself, so a wrong or stale key is an error
//! that says so ([`unlock_with_agent`]), never garbage, and replacing a key file (a new
//! password) retires what the agent holds for the old one.
//!
//! - [`proto`]: the versioned, length-prefixed wire format (capped; fuzzed in `fuzz/`).
//! - [`server`]: the agent: a Unix socket (0600, in a 0700 directory by default), peers of
//!   another uid refused by `SO_PEERCRED`, keys zeroized on removal, expiry and exit.
//! - [`client`]: one request per connection, with timeouts.
//!
//! Spec: `docs/format/agent.md`; operator's view: `docs/OPERATIONS.md`.

pub mod client;
pub mod proto;
pub mod server;

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use crate::config::{self, KeyFile, RepoConfig};
use crate::crypto::{self, Keys};
use crate::error::{Error, Result};
use crate::store::DynStore;

/// Environment variable naming the agent's socket; commands that unlock a repository ask the
/// agent there first.
pub const SOCKET_ENV: &str = "STRATA_AGENT_SOCK";

/// Default lifetime of a key added without `--lifetime`.
pub const DEFAULT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where the agent listens when no `--socket` is given: `$XDG_RUNTIME_DIR/strata-agent.sock`
/// (a per-user 0700 directory the system provides), else `strata-agent-<uid>/agent.sock` in
/// the temporary directory (created 0700 by the agent).
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("strata-agent.sock"),
        None => private_dir().join("agent.sock"),
    }
}

/// The agent's own directory in the temporary directory.
pub(crate) fn private_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "strata-agent-{}",
        rustix::process::getuid().as_raw()
    ))
}

/// The socket a command should ask: `explicit` (`--agent`, `--socket`), else
/// `$STRATA_AGENT_SOCK`; `None` when neither is set.
pub fn socket_from(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(SOCKET_ENV)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    })
}

/// The repository's keys from the agent at `socket`, opened from the key file the agent's key
/// belongs to (read by name, under `keys/`). `Ok(None)`: the agent holds no key for this
/// repository, or only for key files that are gone, or cannot be reached (a one-line
/// warning; the caller falls back to the password). An agent key that does not open its key
/// file is an error.
pub(crate) async fn unlock_with_agent(
    store: &DynStore,
    cfg: &RepoConfig,
    socket: &Path,
    have_password: bool,
) -> Result<Option<Keys>> {
    let (sock, id) = (socket.to_path_buf(), cfg.id.clone());
    let held = tokio::task::spawn_blocking(move || client::get(&sock, &id))
        .await
        .map_err(|e| Error::Task(format!("asking the agent: {e}")))?;
    let held = match held {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(
                "strata agent at {} cannot be used ({e}); unlocking with the password",
                socket.display()
            );
            return Ok(None);
        }
    };
    for k in &held {
        let Some(id) = k.key_file.strip_prefix("keys/") else {
            continue;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let name = ObjPath::from(k.key_file.as_str());
        let bytes = match store.get(&name).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let kf: KeyFile = config::open_doc(name.as_ref(), &bytes)?;
        return match crypto::unwrap_with_kek(&kf.wrapped, &k.kek, &cfg.id, name.as_ref()) {
            Ok(keys) => Ok(Some(keys)),
            Err(Error::WrongPassword) => Err(Error::Refused(format!(
                "the key strata agent at {} holds for repository {} does not open key file {}: \
                 it is not this repository's key; remove it (`strata agent remove --repo {}`) \
                 and add it again",
                socket.display(),
                cfg.id,
                k.key_file,
                cfg.id
            ))),
            Err(e) => Err(e),
        };
    }
    if !held.is_empty() {
        tracing::warn!(
            "strata agent at {} holds a key for repository {} whose key file is gone (a new \
             password?); unlocking with the password",
            socket.display(),
            cfg.id
        );
    } else if !have_password {
        tracing::warn!(
            "strata agent at {} holds no key for repository {} (add one: `strata agent add --repo URL`)",
            socket.display(),
            cfg.id
        );
    }
    Ok(None)
}
