//! The synchronous engine reads a mounted snapshot through its file-system seam, while the
//! repository is async (object_store, tokio). The bridge runs the repository's futures on a
//! small runtime of its own and hands results back over a channel, so a read works from any
//! thread (an engine scan, a server's blocking pool, even a tokio worker) without nesting
//! runtimes.

use std::future::Future;

use crate::error::{Error, Result};

pub(crate) struct Bridge {
    rt: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub(crate) fn new() -> Result<Bridge> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-mount")
            .enable_all()
            .build()
            .map_err(|e| Error::Task(format!("cannot start the repository runtime: {e}")))?;
        Ok(Bridge { rt: Some(rt) })
    }

    /// Run `fut` to completion on the bridge's runtime and wait for it here.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| Error::Task("the repository runtime has stopped".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| Error::Task("a repository read was abandoned".into()))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: the last owner of a
        // mount may well be a server's async task.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
