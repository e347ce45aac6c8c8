//! Running agents: worktrees, agent adapters, supervision, scheduling.

pub mod claude;
pub mod console;
pub use crate::git;
pub mod integration;
pub mod pool;
pub mod proctree;
pub mod prompt;
pub mod scheduler;
pub mod signals;
pub mod supervisor;
pub mod template;
pub mod worktree;
pub mod worktree_pool;
