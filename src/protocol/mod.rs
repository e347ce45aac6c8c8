//! The protocol every tool speaks: files on disk, written atomically under locks.

pub mod layout;
pub mod sanitize;
pub mod schema;
pub mod store;

pub use layout::Runtime;
pub use schema::{AgentStatus, Metrics, Orchestration, SCHEMA_VERSION, Source, State, Wave};
