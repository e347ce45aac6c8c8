//! po: parallel coding-agent orchestration as small Unix tools.
//!
//! The tools share nothing but files under `.claude/runtime/parallel/<id>/`,
//! written atomically under `flock(2)` locks (see [`protocol`]). Each binary in
//! `src/bin` is a thin shell around a module of [`cli`].

pub mod clean;
pub mod cli;
pub mod cost;
pub mod cpo;
pub mod error;
pub mod forge;
pub mod fsx;
pub mod git;
pub mod integration;
pub mod merge;
pub mod out;
pub mod plan;
pub mod prices;
pub mod proctree;
pub mod protocol;
pub mod react;
pub mod report;
pub mod run;
pub mod serve;
pub mod signals;
pub mod sources;
pub mod text;
pub mod timefmt;
pub mod watch;
pub mod worktree;

pub use error::{Error, Result, exit};
