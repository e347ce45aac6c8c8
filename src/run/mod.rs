//! Running agents: worktrees, agent adapters, supervision, launchers and
//! scheduling.

pub mod agent;
pub mod integration;
pub mod launcher;
pub mod prompt;
pub mod sandbox;
pub mod scheduler;
pub mod supervisor;
pub mod template;
