//! What a po-spawn run tells people: progress on stderr in the seeds' shape,
//! every scheduler decision in the session log, and each finished task's
//! status path on stdout.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::protocol::AgentStatus;
use crate::run::integration::Merge;
use crate::run::launcher::Runner;
use crate::run::supervisor::Spec;
use crate::text::printable;
use crate::timefmt;

/// Where the lines go.
pub struct Console {
    verbose: bool,
    /// Progress lines stay in the session log (diagnostics still show).
    quiet: bool,
    session: Mutex<Option<File>>,
    /// Lines kept instead of printed (tests).
    captured: Option<Mutex<Vec<String>>>,
}

/// What the closing block counts: this run's tasks by their final state,
/// and what of the orchestration this run did not include is unfinished.
pub struct Totals<'a> {
    pub total: usize,
    pub completed: usize,
    /// Failed, and status files that could not be read.
    pub failed: usize,
    pub timed_out: usize,
    pub cancelled: usize,
    /// Never started (the run stopped before them).
    pub pending: usize,
    /// Left running to their supervisors (SIGHUP).
    pub running: usize,
    /// Tasks of the orchestration outside this run that have not completed:
    /// their ids and states.
    pub elsewhere: Vec<(String, crate::protocol::State)>,
    pub orchestration: &'a str,
    pub took: f64,
    pub logs: &'a Path,
}

fn tasks(n: usize) -> String {
    crate::text::count(n, "task")
}

impl Console {
    pub fn new(verbose: bool, quiet: bool) -> Console {
        Console {
            verbose,
            quiet,
            session: Mutex::new(None),
            captured: None,
        }
    }

    /// A console that keeps every line, stderr and stdout alike, for
    /// [`Console::lines`].
    pub fn capture() -> Console {
        Console {
            verbose: true,
            quiet: false,
            session: Mutex::new(None),
            captured: Some(Mutex::new(Vec::new())),
        }
    }

    /// The lines kept by a [`Console::capture`] console.
    pub fn lines(&self) -> Vec<String> {
        self.captured
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Start writing decisions to `path` (appending).
    pub fn open_session_log(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        let f = crate::fsx::append(path, true).map_err(Error::io("open", path))?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(())
    }

    fn emit(&self, line: &str) {
        match &self.captured {
            Some(c) => c
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.to_string()),
            None => eprintln!("{line}"),
        }
    }

    /// A line for people (stderr), also recorded in the session log.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            self.emit(line);
        }
        self.log(line.trim());
    }

    /// A line that shows even when quiet: a warning or an error.
    pub fn warn(&self, line: &str) {
        self.emit(line);
        self.log(line.trim());
    }

    /// Detail shown with `-v` / `AMPLIHACK_PARALLEL_VERBOSE`, always logged.
    pub fn detail(&self, line: &str) {
        if self.verbose && !self.quiet {
            self.emit(line);
        }
        self.log(line.trim());
    }

    /// A decision, for the session log only.
    pub fn log(&self, line: &str) {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{} {line}", timefmt::format(&timefmt::now()));
        }
    }

    /// A finished task's status file, on stdout for the next tool in a pipe.
    pub fn path(&self, path: &Path) {
        match &self.captured {
            Some(c) => c
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("path {}", path.display())),
            None => {
                let out = std::io::stdout();
                let mut out = out.lock();
                let _ = writeln!(out, "{}", path.display());
                let _ = out.flush();
            }
        }
    }

    pub fn started(&self) {
        self.say("=== Parallel Execution Started ===");
        self.say("");
    }

    /// The seed's retry block: what the earlier run left, and what runs again.
    pub fn retry_mode(
        &self,
        found: &str,
        completed: usize,
        total: usize,
        retried: &[(String, String)],
    ) {
        self.say("🔄 Retry mode: Loading previous orchestration state");
        self.say(&format!("📂 Found orchestration: {found}"));
        self.say(&format!(
            "📋 Previous results: {completed}/{total} succeeded, {} failed",
            total - completed
        ));
        self.say("");
        self.say("Retrying failed tasks:");
        for (label, error) in retried {
            self.say(&format!("- {label}: {}", printable(error)));
        }
        self.say("");
    }

    /// `🤖 Deployed 5 agents (max_workers=5)`, and how progress is shown.
    pub fn deployed(&self, n: usize, retry: bool, max_workers: usize, batch: Option<usize>) {
        let agents = if n == 1 { "agent" } else { "agents" };
        self.say(&match (retry, batch) {
            (true, _) => format!("🤖 Deployed {n} {agents} for retry"),
            (false, Some(size)) => {
                format!("🤖 Deployed {n} {agents} in batches (batch_size={size})")
            }
            (false, None) => format!("🤖 Deployed {n} {agents} (max_workers={max_workers})"),
        });
    }

    pub fn monitoring(&self, every: std::time::Duration) {
        self.say(&format!(
            "⏱️  Monitoring progress (updates every {})...",
            timefmt::human_duration(every.as_secs_f64())
        ));
    }

    /// Nothing left to run: every task has finished.
    pub fn nothing_to_run(&self, finished: usize) {
        self.say(&format!(
            "Nothing to run: {finished} task(s) already finished (--retry runs the failed ones \
             again)"
        ));
    }

    pub fn continuing(&self) {
        self.say("⏱️  Continuing with remaining agents...");
    }

    pub fn retry_successful(&self) {
        self.say("🎉 Retry successful! Original orchestration now complete.");
    }

    pub fn wave(&self, wave: u32, blank_before: bool) {
        if blank_before {
            self.say("");
        }
        self.say(&format!("Wave {wave}:"));
    }

    pub fn batch(&self, n: usize, members: &[&AgentStatus]) {
        self.say(&format!("[Batch {n}: {}]", agents_range(members)));
        self.say(&format!("⏱️  Monitoring batch {n}..."));
    }

    pub fn running(&self, label: &str, s: &AgentStatus, runner: &Runner, spec: &Spec) {
        self.say(&format!("  {label}: RUNNING"));
        self.detail(&format!(
            "    {} attempt {} · {} · {} · {} · log {}",
            s.agent_id,
            s.attempt,
            runner.shown,
            spec.worktree.as_deref().unwrap_or(&spec.repo).display(),
            if spec.worktree.is_some() {
                spec.branch.as_str()
            } else {
                "(no worktree)"
            },
            spec.log_file.display()
        ));
    }

    /// `✅ agent-1 completed → PR #12 (3m 05s)`, in the one finish vocabulary.
    pub fn finished(&self, label: &str, s: &AgentStatus) {
        let duration = crate::protocol::view::duration(s, timefmt::now());
        let (mark, phrase) = crate::protocol::view::told(s, duration)
            .unwrap_or(("❔", format!("ended {}", s.status)));
        self.say(&format!("{mark} {label} {}", printable(&phrase)));
        if s.status == crate::protocol::State::Completed
            && let Some(e) = &s.error
        {
            self.say(&format!("   ⚠️  {label}: {}", printable(e)));
        }
    }

    pub fn progress(&self, label: &str, s: &AgentStatus) {
        let clock = chrono::Local::now().format("%H:%M");
        self.say(&format!(
            "[{clock}] {label}: {} ({}%)",
            printable(s.phase.as_deref().unwrap_or("working")),
            s.progress_percentage.unwrap_or(0)
        ));
    }

    pub fn retrying(&self, label: &str, n: u32, max: u32, delay: f64) {
        self.say(&format!(
            "🔄 {label} failed with a retryable error; retry {n}/{max} in {}",
            timefmt::human_duration(delay)
        ));
    }

    pub fn validating(&self, wave: u32, cmd: &str) {
        self.say(&format!("🔎 Wave {wave} validation: {cmd}"));
    }

    pub fn validated(&self, wave: u32) {
        self.say(&format!("✅ Wave {wave} validation passed"));
    }

    pub fn merged(&self, wave: u32, merges: &[Merge]) {
        if !merges.is_empty() {
            self.detail(&format!(
                "🔀 Wave {wave}: merged {}",
                merges
                    .iter()
                    .map(|m| m.branch.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    pub fn wave_failed(&self, wave: u32, e: &Error) {
        self.say(&format!("❌ Wave {wave} failed: {e}"));
    }

    pub fn hangup(&self) {
        self.say(
            "⚠️  Hangup: leaving running agents to their supervisors; run po-spawn again to \
             adopt them and start the pending tasks",
        );
    }

    pub fn interrupted(&self, sig: Signal) {
        self.say(&format!(
            "\n⚠️  Interrupted ({sig}): cancelling running agents (Ctrl-C again to force)"
        ));
    }

    pub fn forcing(&self) {
        self.say("⚠️  Forcing: killing the agents' process trees");
    }

    pub fn leaving(&self) {
        self.say("⚠️  Leaving now; supervisors finish cancelling on their own");
    }

    /// The closing block.
    pub fn summary(&self, t: &Totals) {
        self.say("");
        self.say("=== Execution Complete ===");
        self.say("");
        self.say("Results:");
        self.say(&format!("  Completed: {}/{} tasks", t.completed, t.total));
        self.say(&format!("  Failed: {}", tasks(t.failed)));
        for (n, name) in [
            (t.timed_out, "Timed out"),
            (t.cancelled, "Cancelled"),
            (t.pending, "Not started"),
            (t.running, "Still running"),
        ] {
            if n > 0 {
                self.say(&format!("  {name}: {}", tasks(n)));
            }
        }
        let took = timefmt::human_duration(t.took);
        if t.completed < t.total || t.total == 0 {
            self.say(&format!(
                "{}/{} agents succeeded. Total duration: {took}",
                t.completed, t.total
            ));
        } else if t.elsewhere.is_empty() {
            self.say(&format!("🎉 All agents succeeded! Total duration: {took}"));
        } else {
            let rest: Vec<String> = t
                .elsewhere
                .iter()
                .map(|(id, state)| format!("{id} {state}"))
                .collect();
            self.say(&format!(
                "✅ All {} of this run succeeded, but orchestration {} is not finished: {} ({}). \
                 Total duration: {took}",
                tasks(t.total),
                t.orchestration,
                tasks(rest.len()),
                rest.join(", ")
            ));
            self.say(&format!(
                "   To finish it: po-spawn --id {} --retry",
                t.orchestration
            ));
        }
        self.say(&format!("Logs: {}", t.logs.display()));
    }
}

/// Spend guardrails ([`super::budget`]): their own lines, kept apart from the
/// run's progress lines.
impl Console {
    /// `💰 Budget: $5.00 for orchestration 42 (--budget-usd); spent …`.
    pub fn budget_set(&self, line: &str) {
        self.say(line);
    }

    /// What a budget cannot see; shown even when quiet.
    pub fn budget_blind(&self, line: &str) {
        self.warn(line);
    }

    /// The budget is reached; shown even when quiet.
    pub fn budget_reached(&self, line: &str) {
        self.warn(line);
    }

    /// A running agent ended by `--budget-hard`.
    pub fn budget_ends(&self, label: &str) {
        self.warn(&format!(
            "💰 {label}: ending it, the budget is spent (--budget-hard); its worktree is kept"
        ));
    }

    /// A retryable failure that is not retried, and why.
    pub fn retry_refused(&self, line: &str) {
        self.warn(line);
    }

    /// `[12:05] 💰 spent $0.03 + $0.01 running of $0.05 budget`.
    pub fn spend_progress(&self, line: &str) {
        let clock = chrono::Local::now().format("%H:%M");
        self.say(&format!("[{clock}] 💰 {line}"));
    }

    /// The closing block's spend line.
    pub fn spend_total(&self, line: &str) {
        self.say(&format!("💰 Spend: {line}"));
    }
}

/// `Agent 3`, `Agents 1-3`, or `Agents 1, 4, task-x`.
fn agents_range(members: &[&AgentStatus]) -> String {
    let short = |s: &AgentStatus| {
        let label = printable(&crate::protocol::view::label(s));
        label.strip_prefix("agent-").unwrap_or(&label).to_string()
    };
    let nums: Vec<u64> = members.iter().map(|s| s.number()).collect();
    let contiguous = nums.windows(2).all(|w| w[1] == w[0] + 1) && nums[0] != u64::MAX;
    match (members.len(), contiguous) {
        (1, _) => format!("Agent {}", short(members[0])),
        (_, true) => format!("Agents {}-{}", nums[0], nums[nums.len() - 1]),
        _ => format!(
            "Agents {}",
            members
                .iter()
                .map(|s| short(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Paths in captured lines (tests).
#[cfg(test)]
pub fn captured_paths(lines: &[String]) -> Vec<std::path::PathBuf> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("path ").map(std::path::PathBuf::from))
        .collect()
}
