//! A `strata agent` for the `query_repo_*` scenarios: started on a socket in the scenario's
//! scratch directory, given the repository's key once (`strata agent add`, which pays the key
//! derivation), then asked by every `strata query --repo` run through `STRATA_AGENT_SOCK`
//! instead of a password. Stopped (killed) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::procs::run_measured;
use crate::query_repo::Target;
use crate::systems::strata::{PASSWORD, Strata};

pub const SOCKET_ENV: &str = "STRATA_AGENT_SOCK";

pub struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Agent {
    /// Starts an agent in `scratch` and adds `t`'s key to it.
    pub fn start(st: &Strata, scratch: &Path, t: &Target<'_>) -> Result<Agent, String> {
        std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let socket = scratch.join("agent.sock");
        let mut child = Command::new(&st.bin)
            .args(["agent", "--socket"])
            .arg(&socket)
            .env_remove("STRATA_REPO_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("strata agent: {e}"))?;
        // The first line says where it listens, once the socket is bound.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let agent = Agent { child, socket };
        if !line.contains("listening") {
            return Err(format!("strata agent did not start: {line:?}"));
        }
        let mut args: Vec<String> = vec!["agent".into(), "add".into(), "--repo".into()];
        args.push(t.url.clone());
        args.extend(t.flags.iter().cloned());
        args.extend([
            "--socket".into(),
            agent.socket.to_string_lossy().into_owned(),
        ]);
        let mut env = t.env.clone();
        env.push(("STRATA_REPO_PASSWORD", PASSWORD));
        let m = run_measured(&st.bin.to_string_lossy(), &args, &env).map_err(|e| e.to_string())?;
        if !m.status.success() {
            return Err(format!("strata agent add: {}", m.reason()));
        }
        Ok(agent)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
