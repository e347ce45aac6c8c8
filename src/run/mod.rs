//! Running agents: worktrees, agent adapters, supervision, scheduling.

pub mod claude;
