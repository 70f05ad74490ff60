//! What bounds a running query: a memory budget per query and one shared by all queries, and a
//! cancellation token (tripped when the client goes away or the server shuts down).
//!
//! Memory is accounted, not measured: the query charges an estimate of what it holds (the
//! series being folded, the result rows, the aggregation buckets) and fails with
//! [`QueryError::TooLarge`] past its own budget, or [`QueryError::Busy`] when the queries
//! running together would pass the shared one. The estimate counts the result as it will be
//! serialised too, so the whole answer stays near the budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::QueryError;

/// Default per-query budget: 256 MiB.
pub const DEFAULT_QUERY_BYTES: usize = 256 << 20;
/// Default budget shared by all running queries: 1 GiB.
pub const DEFAULT_TOTAL_BYTES: usize = 1 << 30;

/// Bytes held by all running queries together, against a ceiling.
#[derive(Debug)]
pub struct SharedBudget {
    limit: usize,
    used: AtomicUsize,
}

impl SharedBudget {
    pub fn new(limit: usize) -> Arc<SharedBudget> {
        Arc::new(SharedBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes currently charged by running queries.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, n: usize) -> bool {
        let prev = self.used.fetch_add(n, Ordering::AcqRel);
        if prev.saturating_add(n) > self.limit {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Cooperative cancellation: cheap to clone, checked by the scan between series.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A guard that cancels the token when dropped: held by a request handler's future, it
    /// trips when the future is dropped (the client disconnected) or finishes.
    pub fn drop_guard(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// See [`CancelToken::drop_guard`].
#[derive(Debug)]
pub struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Limits for one query run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes this query may hold.
    pub query_bytes: usize,
    /// Shared by every query of the server (`None`: no shared ceiling).
    pub shared: Option<Arc<SharedBudget>>,
    /// Any of these tripped stops the query with [`QueryError::Cancelled`].
    pub cancel: Vec<CancelToken>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_bytes: DEFAULT_QUERY_BYTES,
            shared: None,
            cancel: Vec::new(),
        }
    }
}

/// The running account of one query; gives its bytes back to the shared budget when dropped
/// (so a caller can hold it while it serialises the answer).
#[derive(Debug)]
pub struct Account {
    limit: usize,
    shared: Option<Arc<SharedBudget>>,
    cancel: Vec<CancelToken>,
    held: usize,
}

impl Account {
    pub(crate) fn new(limits: &Limits) -> Self {
        Account {
            limit: limits.query_bytes,
            shared: limits.shared.clone(),
            cancel: limits.cancel.clone(),
            held: 0,
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.iter().any(CancelToken::is_cancelled)
    }

    /// Bytes charged now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Charge `n` more bytes.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), QueryError> {
        let want = self.held.saturating_add(n);
        if want > self.limit {
            return Err(QueryError::TooLarge { limit: self.limit });
        }
        if let Some(s) = &self.shared
            && !s.try_take(n)
        {
            return Err(QueryError::Busy { limit: s.limit });
        }
        self.held = want;
        Ok(())
    }

    /// Give back `n` bytes charged earlier.
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        if let Some(s) = &self.shared {
            s.give_back(n);
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let n = self.held;
        self.release(n);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_query_and_shared_budgets_refuse_and_give_back() {
        let shared = SharedBudget::new(100);
        let limits = Limits {
            query_bytes: 80,
            shared: Some(shared.clone()),
            cancel: vec![],
        };
        let mut a = Account::new(&limits);
        a.charge(60).unwrap();
        assert!(matches!(
            a.charge(30),
            Err(QueryError::TooLarge { limit: 80 })
        ));
        let mut b = Account::new(&limits);
        assert!(matches!(b.charge(50), Err(QueryError::Busy { limit: 100 })));
        b.charge(40).unwrap();
        assert_eq!(shared.used(), 100);
        drop(a);
        assert_eq!(shared.used(), 40);
        b.release(10);
        drop(b);
        assert_eq!(shared.used(), 0);
    }

    #[test]
    fn drop_guard_cancels() {
        let t = CancelToken::new();
        let limits = Limits {
            cancel: vec![t.clone()],
            ..Limits::default()
        };
        let g = t.drop_guard();
        assert!(!Account::new(&limits).cancelled());
        drop(g);
        assert!(Account::new(&limits).cancelled());
    }
}
