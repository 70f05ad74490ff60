//! File descriptors: the server raises its soft `RLIMIT_NOFILE` to the hard limit at start,
//! then caps connections below it, keeping descriptors for the engine.
//!
//! Without the cap, 20k half-open sockets took every descriptor, the engine's next flush failed
//! with `EMFILE`, and `/healthz` stopped answering (issue 18, item 3). Each connection holds
//! one descriptor; the engine holds one per open part plus its WAL, and opens a few more
//! while flushing, merging or serving a backup.

/// Default ceiling of the connection cap, whatever the descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How the process's descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft open-file limit in force (after raising); `u64::MAX` when unlimited.
    pub limit: u64,
    /// The soft limit found at start, when it was raised.
    pub raised_from: Option<u64>,
    /// Descriptors kept for the engine and the runtime, never used by connections.
    pub reserved: u64,
    pub max_connections: usize,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "max_connections {wanted} leaves too few file descriptors for the engine: the open-file limit is {limit} and {reserved} are kept for the engine, so at most {available} connections fit; lower max_connections or raise the limit (ulimit -n)"
)]
pub struct FdBudgetError {
    pub wanted: usize,
    pub limit: u64,
    pub reserved: u64,
    pub available: u64,
}

/// Descriptors kept out of the connections' reach for a soft limit of `limit`: a quarter of
/// it, but at least half of it up to 1024 (so a small limit still leaves the engine room).
pub fn reserve_for(limit: u64) -> u64 {
    (limit / 4).max((limit / 2).min(1024))
}

/// The connection cap for a limit and an optional configured value.
pub fn plan(limit: u64, configured: Option<usize>) -> Result<FdBudget, FdBudgetError> {
    let reserved = reserve_for(limit);
    let available = limit.saturating_sub(reserved);
    let max_connections = match configured {
        Some(n) if n as u64 > available => {
            return Err(FdBudgetError {
                wanted: n,
                limit,
                reserved,
                available,
            });
        }
        Some(n) => n,
        None => usize::try_from(available)
            .unwrap_or(usize::MAX)
            .clamp(1, DEFAULT_MAX_CONNECTIONS),
    };
    Ok(FdBudget {
        limit,
        raised_from: None,
        reserved,
        max_connections,
    })
}

/// Raise the soft open-file limit to the hard one (best effort) and plan the cap.
pub fn raise_and_plan(configured: Option<usize>) -> Result<FdBudget, FdBudgetError> {
    let (limit, raised_from) = raise_nofile();
    let mut b = plan(limit, configured)?;
    b.raised_from = raised_from;
    Ok(b)
}

#[cfg(unix)]
fn raise_nofile() -> (u64, Option<u64>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    let hard = cur.maximum.unwrap_or(u64::MAX);
    if soft >= hard {
        return (soft, None);
    }
    let raised = Rlimit {
        current: cur.maximum,
        maximum: cur.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => (hard, Some(soft)),
        Err(e) => {
            // macOS refuses "unlimited" (OPEN_MAX): keep what we have.
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
            (soft, None)
        }
    }
}

#[cfg(not(unix))]
fn raise_nofile() -> (u64, Option<u64>) {
    (u64::MAX, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_limit_with_room_for_the_engine() {
        for limit in [64u64, 256, 1024, 4096, 65_536, 1 << 20, u64::MAX] {
            let b = plan(limit, None).unwrap();
            assert!(b.max_connections as u64 + b.reserved <= limit, "{b:?}");
            assert!(b.reserved >= (limit / 4).min(1024), "{b:?}");
            assert!(b.max_connections >= 1 && b.max_connections <= DEFAULT_MAX_CONNECTIONS);
        }
        assert_eq!(plan(1024, None).unwrap().max_connections, 512);
        assert_eq!(plan(1 << 20, None).unwrap().max_connections, 4096);
    }

    #[test]
    fn a_configured_cap_above_the_budget_is_refused() {
        assert_eq!(
            plan(1 << 20, Some(100_000)).unwrap().max_connections,
            100_000
        );
        let err = plan(1024, Some(1000)).unwrap_err();
        assert_eq!(err.available, 512);
        assert!(err.to_string().contains("ulimit -n"), "{err}");
    }
}
