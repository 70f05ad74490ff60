//! The data directory's whole life outside the engine's own files: its `LOCK`, its node
//! identity, what a restore
//! may replace, the staging directory a restore fills beside it, the preparation of a staged
//! directory (check, WAL replay, index rebuild, node id), the journaled swap that puts it in
//! place, and the recovery of a swap a crash interrupted, which [`crate::Engine::open`] runs
//! before it locks the directory. Every operation goes through the engine's [`crate::vfs::Vfs`].
//!
//! Normative: `docs/format/swap-journal.md` (the journal, each step of the swap, what a crash
//! at each leaves and how recovery decides); `docs/format/data-dir.md` (the `LOCK`).

mod identity;
mod journal;
mod lock;
pub(crate) mod names;
mod stage;
mod swap;
mod target;

pub use identity::set_node_id;
pub use journal::{JOURNAL_MAGIC, JOURNAL_VERSION};
pub use lock::{LOCK_FILE, is_locked, try_lock, try_lock_staging};
pub use stage::{StagedDir, staging_path, swap_in};
pub use swap::{SwapOutcome, recover};
pub use target::{TargetState, inspect_target};
