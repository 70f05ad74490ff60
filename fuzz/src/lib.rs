//! The fuzz target bodies; see `targets.rs`.
pub mod query_plan;
pub mod targets;
