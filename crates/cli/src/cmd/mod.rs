//! One module per subcommand.

pub mod backup;
pub mod check;
pub mod diff;
pub mod pitr;
pub mod pin;
pub mod prune;
pub mod query;
pub mod repo;
pub mod restore;
pub mod server;
pub mod show;
pub mod snapshots;
pub mod verify;
