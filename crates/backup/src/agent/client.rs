//! Talking to a running agent: one request, one response, one connection, with timeouts (an
//! agent that hangs costs a command a few seconds at most, then it falls back to the password).

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::proto::{self, FrameError, KeyEntry, Listed, Request, Response};

/// How long a request may take before the agent counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot connect to {path}: {source}")]
    Unreachable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent stopped answering: {0}")]
    Io(std::io::Error),
    #[error("the agent's answer is malformed: {0}")]
    Protocol(proto::ProtoError),
    #[error("the agent refused: {0}")]
    Refused(String),
    #[error("unexpected answer from the agent")]
    Unexpected,
}

impl From<FrameError> for AgentError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Proto(p) => AgentError::Protocol(p),
            FrameError::Io(e) => AgentError::Io(e),
        }
    }
}

/// Sends `req` to the agent at `socket` and returns its answer (an error answer as
/// [`AgentError::Refused`]).
pub fn request(socket: &Path, req: &Request) -> Result<Response, AgentError> {
    let mut s = UnixStream::connect(socket).map_err(|source| AgentError::Unreachable {
        path: socket.display().to_string(),
        source,
    })?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(AgentError::Io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(AgentError::Io)?;
    let body = zeroize::Zeroizing::new(req.encode());
    let sent = proto::write_frame(&mut s, &body);
    // An agent that refuses a peer answers without reading the request and hangs up: the
    // write may fail while the answer waits to be read.
    let answer = match (proto::read_frame(&mut s), sent) {
        (Ok(a), _) => a,
        (Err(_), Err(e)) | (Err(e), Ok(())) => return Err(e.into()),
    };
    match Response::decode(&answer).map_err(AgentError::Protocol)? {
        Response::Error(m) => Err(AgentError::Refused(m)),
        r => Ok(r),
    }
}

/// The keys the agent holds for repository `repo_id`.
pub fn get(socket: &Path, repo_id: &str) -> Result<Vec<KeyEntry>, AgentError> {
    let req = Request::Get {
        repo_id: repo_id.to_string(),
    };
    match request(socket, &req)? {
        Response::Keys(k) => Ok(k),
        _ => Err(AgentError::Unexpected),
    }
}

/// Hands `key` to the agent for `lifetime` (`None`: the agent's default).
pub fn add(
    socket: &Path,
    key: KeyEntry,
    url: &str,
    lifetime: Option<Duration>,
) -> Result<(), AgentError> {
    let req = Request::Add {
        key,
        url: url.to_string(),
        lifetime_secs: lifetime.map_or(0, |d| d.as_secs().max(1)),
    };
    match request(socket, &req)? {
        Response::Ok => Ok(()),
        _ => Err(AgentError::Unexpected),
    }
}

pub fn list(socket: &Path) -> Result<Vec<Listed>, AgentError> {
    match request(socket, &Request::List)? {
        Response::Listed(l) => Ok(l),
        _ => Err(AgentError::Unexpected),
    }
}

/// Forgets the keys added with URL `selector` or of repository id `selector`; how many.
pub fn remove(socket: &Path, selector: &str) -> Result<u64, AgentError> {
    let req = Request::Remove {
        selector: selector.to_string(),
    };
    match request(socket, &req)? {
        Response::Removed(n) => Ok(n),
        _ => Err(AgentError::Unexpected),
    }
}

pub fn stop(socket: &Path) -> Result<(), AgentError> {
    match request(socket, &Request::Stop)? {
        Response::Ok => Ok(()),
        _ => Err(AgentError::Unexpected),
    }
}
