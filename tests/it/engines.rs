//! Tests that need an engine this machine may lack, and how they say so.
//!
//! Such a test is `#[ignore = "needs …: how to get it"]`, so a plain
//! `cargo test` lists it as ignored, with that reason, in the test runner's
//! own summary: never as passed. `.ci/run` installs every engine and runs
//! `cargo test -- --include-ignored`. A test run without its engine fails at
//! once, naming what is missing and how to get it.

use std::process::{Command, Stdio};

/// The ignore reasons, one per engine, so every test that needs an engine
/// says the same thing about it.
pub const CLAUDE: &str = "needs the Claude Code CLI (npm install -g @anthropic-ai/claude-code)";
pub const CODEX: &str = "needs the Codex CLI (npm install -g @openai/codex@0.171.0)";
pub const GEMINI: &str = "needs Gemini CLI (npm install -g @google/gemini-cli@0.61.0)";
pub const SLURM: &str = "needs a Slurm cluster (sudo bash .ci/slurm-up.sh)";
pub const CHROMIUM: &str = "needs chromium (apt-get install chromium)";
pub const GROFF: &str = "needs groff (apt-get install groff-base)";
pub const BWRAP: &str = "needs bwrap: apt-get install bubblewrap";

/// Fail unless `program ARGS…` runs and succeeds; `why` says how to get it.
pub fn require(program: &str, args: &[&str], why: &str) {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`{program}` does not run here: this test {why}");
}

/// A directory for a test's files outside `/tmp`: a sandbox has a private
/// `/tmp` (an escape test must aim at paths the agent could otherwise
/// reach), and Codex makes no helper binaries under a home in `/tmp`. The
/// build's temporary directory, or `/var/tmp/po-tests` when the checkout
/// itself is under `/tmp`.
pub fn outside_tmp(name: &str) -> std::path::PathBuf {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if target.starts_with("/tmp") {
        std::path::Path::new("/var/tmp").join("po-tests")
    } else {
        target.to_path_buf()
    };
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
