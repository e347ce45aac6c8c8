//! The integration tests: one test binary, one module per area. The real
//! binaries run against real temporary git repositories and real processes.
//!
//! Run one area by its module's name: `cargo test --test it spawn_` (every
//! po-spawn test), `cargo test --test it watch_events::`.

mod agents_support;
mod cpo_support;
mod engines;
mod parse_support;
mod serve_support;
mod support_gh;
mod support_react;
mod support_spawn;
mod watch_support;

mod claude_e2e;
mod claude_stream;
mod clean_cli;
mod closed_pipe;
mod codex_e2e;
mod conflicts_shown;
mod cpo_cli;
mod cpo_integrate;
mod cpo_run;
mod cpo_slash_commands;
mod docs_fresh;
mod examples_demo;
mod fuzz_replay;
mod gemini_e2e;
mod gh_double;
mod github_e2e;
mod github_pr;
mod github_refs;
mod hostile_files;
mod layers;
mod merge_cli;
mod parse_input;
mod parse_issue;
mod parse_manifest;
mod parse_markdown;
mod parse_realworld;
mod parse_runtime;
mod protocol;
mod react_ci;
mod react_claude;
mod react_review;
mod sandbox;
mod serve_browser;
mod serve_http;
mod serve_limits;
mod spawn_budget;
mod spawn_chaos;
mod spawn_graph;
mod spawn_pipeline;
mod spawn_pr;
mod spawn_preflight;
mod spawn_run;
mod spawn_signals;
mod spawn_slurm;
mod spawn_waves;
mod status_cli;
mod summarize_github;
mod summarize_report;
mod watch_events;
mod watch_snapshot;
mod worktree_crash;
mod worktree_pool;
