//! The agent process: holds keys, answers requests on a Unix socket.
//!
//! Threads: the caller's (accepting), one per connection (bounded by timeouts: a peer that
//! sends nothing is dropped after a few seconds), and one sweeping expired keys every second.
//! A key leaves memory zeroized when it is removed, expires, or the agent stops.
//!
//! Access: the socket is 0600 (in a 0700 directory when the agent picks it), and every peer's
//! uid is read with `SO_PEERCRED`; another uid gets one error answer and nothing else, even
//! when file permissions were loosened. The process is marked not dumpable (no core file, no
//! `ptrace` by other processes of the same user), and its memory is locked (`mlockall`) when
//! the memory-lock limit allows it.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::proto::{self, FrameError, KeyEntry, Listed, Request, Response};
use crate::error::{Error, Result};

/// How long one connection may take to send its request and read the answer.
const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys held at most (a bound on what a confused or hostile client of the same user can make
/// the agent keep).
pub const MAX_KEYS: usize = 1024;

struct Held {
    key: KeyEntry,
    url: String,
    added: u64,
    expires_unix: u64,
    expires: Instant,
}

struct State {
    keys: Mutex<Vec<Held>>,
    stop: AtomicBool,
    lifetime: Duration,
    uid: u32,
}

impl State {
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops expired keys (their `KeyEntry` zeroizes on drop).
    fn sweep(&self) {
        let now = Instant::now();
        self.held().retain(|h| {
            let keep = h.expires > now;
            if !keep {
                tracing::info!(repo = %h.key.repo_id, url = %h.url, "key expired");
            }
            keep
        });
    }
}

/// A bound agent, not yet serving.
pub struct Agent {
    listener: UnixListener,
    socket: PathBuf,
    state: Arc<State>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Creates the agent's private directory (0700) or checks an existing one is ours and closed
/// to others.
fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    let m = std::fs::symlink_metadata(dir).map_err(io_err(dir))?;
    let uid = rustix::process::getuid().as_raw();
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "{} must be a directory of uid {uid} closed to others (mode 0700); \
             remove it or give --socket",
            dir.display()
        )));
    }
    Ok(())
}

impl Agent {
    /// Binds the socket at `socket` (an existing live agent there is an error; a stale socket
    /// file is replaced). `lifetime`: of keys added without one.
    pub fn bind(socket: &Path, lifetime: Duration) -> Result<Agent> {
        if socket == super::default_socket() && socket.parent() == Some(&super::private_dir()) {
            private_dir(&super::private_dir())?;
        }
        if let Ok(m) = std::fs::symlink_metadata(socket) {
            if !m.file_type().is_socket() {
                return Err(Error::Refused(format!(
                    "{} exists and is not a socket",
                    socket.display()
                )));
            }
            if UnixStream::connect(socket).is_ok() {
                return Err(Error::Refused(format!(
                    "an agent is already listening on {}",
                    socket.display()
                )));
            }
            std::fs::remove_file(socket).map_err(io_err(socket))?;
        }
        let listener = UnixListener::bind(socket).map_err(io_err(socket))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(socket))?;
        Ok(Agent {
            listener,
            socket: socket.to_path_buf(),
            state: Arc::new(State {
                keys: Mutex::new(Vec::new()),
                stop: AtomicBool::new(false),
                lifetime,
                uid: rustix::process::getuid().as_raw(),
            }),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What protects the keys in this process: no core dumps or same-user `ptrace`, and
    /// locked memory when allowed. Returns a note for the operator about what could not be
    /// done.
    pub fn harden() -> Vec<String> {
        use rustix::process::{DumpableBehavior, Resource, getrlimit, set_dumpable_behavior};
        let mut notes = Vec::new();
        if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            notes.push(format!("cannot mark the process not dumpable: {e}"));
        }
        // Locking future mappings under a finite limit could make a later allocation fail:
        // only lock when nothing limits it (root, or `ulimit -l unlimited`).
        let unlimited =
            rustix::process::getuid().is_root() || getrlimit(Resource::Memlock).current.is_none();
        if unlimited {
            use rustix::mm::{MlockAllFlags, mlockall};
            let flags = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT;
            if let Err(e) = mlockall(flags) {
                notes.push(format!("keys may be swapped out (mlockall: {e})"));
            }
        } else {
            notes.push(
                "keys may be swapped out (memory is locked only with `ulimit -l unlimited`)".into(),
            );
        }
        notes
    }

    /// Serves until a `stop` request or [`Agent::stop_handle`] is used; then removes the
    /// socket and forgets every key.
    pub fn serve(self) -> Result<()> {
        let sweeper = {
            let st = self.state.clone();
            std::thread::Builder::new()
                .name("strata-agent-expiry".into())
                .spawn(move || {
                    while !st.stop.load(Ordering::SeqCst) {
                        st.sweep();
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
                .map_err(|e| Error::Task(format!("cannot start the expiry thread: {e}")))?
        };
        for conn in self.listener.incoming() {
            if self.state.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (st, wake) = (self.state.clone(), self.socket.clone());
            let spawned = std::thread::Builder::new()
                .name("strata-agent-conn".into())
                .spawn(move || {
                    if handle(&st, conn) {
                        // Unblock the accepting thread so it sees the stop.
                        let _ = UnixStream::connect(&wake);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot serve a connection: {e}");
            }
        }
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = sweeper.join();
        self.state.held().clear();
        let _ = std::fs::remove_file(&self.socket);
        Ok(())
    }

    /// Stops a serving agent from elsewhere (a signal handler's thread): forgets the keys and
    /// removes the socket.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            state: self.state.clone(),
            socket: self.socket.clone(),
        }
    }
}

/// See [`Agent::stop_handle`].
pub struct StopHandle {
    state: Arc<State>,
    socket: PathBuf,
}

impl StopHandle {
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.held().clear();
        let _ = UnixStream::connect(&self.socket);
    }
}

/// One connection: peer check, one request, one answer. Returns whether the agent must stop.
fn handle(st: &State, mut conn: UnixStream) -> bool {
    let _ = conn.set_read_timeout(Some(CONN_TIMEOUT));
    let _ = conn.set_write_timeout(Some(CONN_TIMEOUT));
    let answer = |conn: &mut UnixStream, r: Response| {
        let _ = proto::write_frame(conn, &zeroize::Zeroizing::new(r.encode()));
    };
    match rustix::net::sockopt::socket_peercred(&conn) {
        Ok(c) if c.uid.as_raw() == st.uid => {}
        Ok(c) => {
            tracing::warn!(
                uid = c.uid.as_raw(),
                pid = c.pid.as_raw_nonzero().get(),
                "refused a peer of another uid"
            );
            answer(
                &mut conn,
                Response::Error(format!(
                    "refused: this agent serves uid {} only (you are uid {})",
                    st.uid,
                    c.uid.as_raw()
                )),
            );
            return false;
        }
        Err(e) => {
            tracing::warn!("refused a peer whose credentials cannot be read: {e}");
            return false;
        }
    }
    let req = match proto::read_frame(&mut conn) {
        Ok(body) => Request::decode(&body).map_err(FrameError::Proto),
        Err(e) => Err(e),
    };
    let req = match req {
        Ok(r) => r,
        Err(FrameError::Proto(e)) => {
            tracing::warn!("refused a malformed request: {e}");
            answer(&mut conn, Response::Error(format!("bad request: {e}")));
            return false;
        }
        // The peer went away or said nothing in time.
        Err(FrameError::Io(_)) => return false,
    };
    let stop = matches!(req, Request::Stop);
    let resp = respond(st, req);
    answer(&mut conn, resp);
    if stop {
        st.stop.store(true, Ordering::SeqCst);
    }
    stop
}

fn respond(st: &State, req: Request) -> Response {
    st.sweep();
    match req {
        Request::Add {
            key,
            url,
            lifetime_secs,
        } => {
            if key.repo_id.is_empty() || key.key_file.is_empty() {
                return Response::Error("bad request: empty repository id or key file".into());
            }
            let lifetime = match lifetime_secs {
                0 => st.lifetime,
                s => Duration::from_secs(s),
            };
            let Some(expires) = Instant::now().checked_add(lifetime) else {
                return Response::Error("bad request: lifetime out of range".into());
            };
            let mut held = st.held();
            held.retain(|h| !(h.key.repo_id == key.repo_id && h.key.key_file == key.key_file));
            if held.len() >= MAX_KEYS {
                return Response::Error(format!("the agent holds {MAX_KEYS} keys already"));
            }
            let added = unix_now();
            tracing::info!(repo = %key.repo_id, %url, lifetime_secs = lifetime.as_secs(), "key added");
            held.push(Held {
                key,
                url,
                added,
                expires_unix: added.saturating_add(lifetime.as_secs()),
                expires,
            });
            Response::Ok
        }
        Request::Get { repo_id } => Response::Keys(
            st.held()
                .iter()
                .filter(|h| h.key.repo_id == repo_id)
                .map(|h| h.key.clone())
                .collect(),
        ),
        Request::List => Response::Listed(
            st.held()
                .iter()
                .map(|h| Listed {
                    repo_id: h.key.repo_id.clone(),
                    key_file: h.key.key_file.clone(),
                    url: h.url.clone(),
                    added: h.added,
                    expires: h.expires_unix,
                })
                .collect(),
        ),
        Request::Remove { selector } => {
            let mut held = st.held();
            let before = held.len();
            held.retain(|h| h.url != selector && h.key.repo_id != selector);
            let n = (before - held.len()) as u64;
            tracing::info!(%selector, removed = n, "keys removed");
            Response::Removed(n)
        }
        Request::Stop => {
            st.held().clear();
            tracing::info!("stopping");
            Response::Ok
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use zeroize::Zeroizing;

    use super::super::client;
    use super::*;

    fn key(repo: &str) -> KeyEntry {
        KeyEntry {
            repo_id: repo.into(),
            key_file: "keys/k1".into(),
            kek: Zeroizing::new([9; 32]),
        }
    }

    fn start(lifetime: Duration) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<()>) {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("a.sock");
        let agent = Agent::bind(&sock, lifetime).unwrap();
        let t = std::thread::spawn(move || agent.serve().unwrap());
        (d, sock, t)
    }

    #[test]
    fn add_get_list_remove_expire_and_stop() {
        let (_d, sock, t) = start(Duration::from_secs(3600));
        let mode = std::fs::metadata(&sock).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        client::add(&sock, key("r1"), "/repo/one", None).unwrap();
        client::add(&sock, key("r2"), "s3://b/two", Some(Duration::from_secs(1))).unwrap();
        assert_eq!(client::get(&sock, "r1").unwrap(), vec![key("r1")]);
        assert!(client::get(&sock, "nope").unwrap().is_empty());
        let l = client::list(&sock).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[0].expires >= l[0].added + 3599, "{l:?}");
        // Expiry.
        std::thread::sleep(Duration::from_millis(1300));
        assert!(client::get(&sock, "r2").unwrap().is_empty());
        assert_eq!(client::list(&sock).unwrap().len(), 1);
        // By URL or by id.
        assert_eq!(client::remove(&sock, "/repo/one").unwrap(), 1);
        assert!(client::get(&sock, "r1").unwrap().is_empty());
        client::add(&sock, key("r3"), "/repo/three", None).unwrap();
        assert_eq!(client::remove(&sock, "r3").unwrap(), 1);
        // A second agent on the same socket is refused while the first lives.
        let err = Agent::bind(&sock, Duration::from_secs(1)).err().unwrap();
        assert!(err.to_string().contains("already listening"), "{err}");
        client::stop(&sock).unwrap();
        t.join().unwrap();
        assert!(!sock.exists());
        assert!(matches!(
            client::list(&sock),
            Err(client::AgentError::Unreachable { .. })
        ));
    }

    #[test]
    fn garbage_and_oversized_requests_get_one_error_and_the_agent_lives_on() {
        let (_d, sock, t) = start(Duration::from_secs(60));
        let send = |bytes: &[u8]| -> Option<Response> {
            let mut s = UnixStream::connect(&sock).unwrap();
            s.write_all(bytes).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let body = proto::read_frame(&mut s).ok()?;
            Response::decode(&body).ok()
        };
        let bad = |r: Option<Response>| match r {
            Some(Response::Error(m)) => m,
            other => panic!("{other:?}"),
        };
        // 4 GiB announced.
        let m = bad(send(&[0xff, 0xff, 0xff, 0xff, 0, 0]));
        assert!(m.contains("exceeds the limit"), "{m}");
        // Unknown version, unknown kind, trailing bytes.
        let m = bad(send(&[2, 0, 0, 0, 9, 3]));
        assert!(m.contains("version 9"), "{m}");
        let m = bad(send(&[2, 0, 0, 0, proto::VERSION, 200]));
        assert!(m.contains("unknown message kind"), "{m}");
        let m = bad(send(&[3, 0, 0, 0, proto::VERSION, 3, 0]));
        assert!(m.contains("after the end"), "{m}");
        // A peer that hangs up half way gets nothing, and harms nothing.
        assert!(send(&[10, 0, 0, 0, 1]).is_none());
        client::add(&sock, key("r1"), "/r", None).unwrap();
        assert_eq!(client::get(&sock, "r1").unwrap().len(), 1);
        client::stop(&sock).unwrap();
        t.join().unwrap();
    }
}
