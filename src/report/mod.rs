//! Reporting: what an orchestration achieved, for people, machines and CI.
//!
//! * [`summary`] aggregates the status files into the seed's result shape
//!   (`summary.json`) and applies the success threshold.
//! * [`markdown`] renders the seed's report (`summary.md`) and the comment for
//!   the master issue.
//! * [`junit`] renders JUnit XML, one testcase per agent.
//! * [`follow_up`] files one diagnostic issue per failed agent, once.
//! * [`timeline`] draws the run: an SVG, and a Mermaid gantt block.
//! * [`html`] renders one self-contained HTML report with the timeline.

pub mod follow_up;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod summary;
pub mod timeline;

pub use summary::{AgentSummary, Summary, load, summarize};
