//! Reporting: what an orchestration achieved, for people, machines and CI.
//!
//! * [`summary`] aggregates the status files into the seed's result shape
//!   (`summary.json`) and applies the success threshold.
//! * [`markdown`] renders the seed's report (`summary.md`) and the comment for
//!   the master issue.
//! * [`junit`] renders JUnit XML, one testcase per agent.
//! * [`follow_up`] files one diagnostic issue per failed agent, once.

pub mod follow_up;
pub mod junit;
pub mod markdown;
pub mod summary;

pub use summary::{AgentSummary, Summary, load, summarize};
