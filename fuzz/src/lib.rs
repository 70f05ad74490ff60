//! The fuzz target bodies; see `targets.rs`.
pub mod archive_window;
pub mod query_plan;
pub mod targets;
