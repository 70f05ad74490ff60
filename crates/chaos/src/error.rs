//! Errors of the chaos harness. A [`ChaosError::Violation`] is a broken promise of Strata (the
//! reason the tool exists); every other variant means the harness itself could not do its job.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("strata {args} failed ({status}): {stderr}")]
    Command {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("strata server on {data_dir} did not start; end of its log ({log}):\n{tail}")]
    ServerStart {
        data_dir: PathBuf,
        log: PathBuf,
        tail: String,
    },
    #[error("HTTP {what}: {detail}")]
    Http { what: String, detail: String },
    #[error("unexpected output of strata {args}: {detail}")]
    Output { args: String, detail: String },
    #[error(
        "VIOLATION in loop {loop_name} at iteration {iteration} (seed {seed}): {detail}\n\
         replay: strata-chaos --loop {loop_name} --seed {seed} --iterations {replay_iterations}"
    )]
    Violation {
        loop_name: &'static str,
        seed: u64,
        iteration: usize,
        replay_iterations: usize,
        detail: String,
    },
}

impl ChaosError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ChaosError {
        let what = what.into();
        move |source| ChaosError::Io { what, source }
    }

    pub fn http(what: impl Into<String>, detail: impl ToString) -> ChaosError {
        ChaosError::Http {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, ChaosError::Violation { .. })
    }
}

pub type Result<T, E = ChaosError> = std::result::Result<T, E>;
