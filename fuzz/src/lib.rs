//! The fuzz target bodies; see `targets.rs`.
pub mod targets;
