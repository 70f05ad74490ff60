//! One module per subcommand.

pub mod agent;
pub mod backup;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod pin;
pub mod pitr;
pub mod prune;
pub mod query;
pub mod repo;
pub mod restore;
pub mod restore_online;
pub mod server;
pub mod show;
pub mod snapshots;
pub mod verify;
