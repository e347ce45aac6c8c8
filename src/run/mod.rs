//! Running agents: worktrees, agent adapters, supervision, launchers and
//! scheduling.

pub mod agent;
pub use crate::git;
pub mod integration;
pub mod launcher;
pub mod proctree;
pub mod prompt;
pub mod sandbox;
pub mod scheduler;
pub mod signals;
pub mod supervisor;
pub mod template;
pub mod worktree;
pub mod worktree_pool;
