//! The protocol every tool speaks: files on disk, written atomically under locks.
//!
//! * [`schema`]: the status file and `orchestration.json`.
//! * [`store`]: atomic writes, locks, liveness.
//! * [`layout`]: where everything lives under the runtime root.
//! * [`lifecycle`]: the only code that changes a task's state.
//! * [`reaction`]: the rounds po-react answers a pull request with.
//! * [`runner`]: what a status file says about its task's runner (launcher,
//!   job, node, why it waits).
//! * [`view`] and [`infer`]: the one reader of an orchestration directory,
//!   the one view of a task, and the states readers infer.
//! * [`sanitize`]: untrusted text made safe for paths and branch names.

pub mod infer;
pub mod layout;
pub mod lifecycle;
pub mod reaction;
pub mod runner;
pub mod sanitize;
pub mod schema;
pub mod store;
pub mod view;

pub use layout::Runtime;
pub use schema::{
    AgentStatus, Metrics, Orchestration, SCHEMA_VERSION, Source, State, Wave, WaveResult,
    WaveState, phase,
};
