//! po-spawn's spend guardrails with `--agent-cmd` agents that report their
//! spend through `po-status set`: real binaries, real repositories, real
//! processes. (The same with the real Claude Code CLI is in `claude_e2e.rs`.)

use crate::support_spawn;

use std::time::Duration;

use po::protocol::{State, store};
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

/// An agent that says it ran, commits, and reports what it cost: $0.01.
const PAYING_AGENT: &str = r#"set -e
echo "$PO_AGENT_ID" >> "$SCRATCH/ran"
echo "work of $PO_AGENT_ID" > "work-$PO_AGENT_ID.txt"
git add "work-$PO_AGENT_ID.txt"
git commit --quiet -m "work of $PO_AGENT_ID"
po-status set --cost-usd 0.01 --input-tokens 3500 --output-tokens 85 --model claude-opus-5-5
"#;

fn ran(repo: &Repo) -> Vec<String> {
    std::fs::read_to_string(repo.scratch().join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// With one worker and a budget of 2.5 agents' cost, exactly three agents
/// run; the rest are cancelled for the budget. `--retry` after raising it
/// runs them.
#[test]
fn agents_reporting_through_po_status_obey_the_budget_and_a_raised_one_runs_the_rest() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=5).map(|i| task(&format!("Task {i}"))).collect();
    let paths = orchestrate(&repo, "81", &tasks, &[]);
    let agent = repo.script("agent.sh", PAYING_AGENT);
    let out = output_within(
        repo.spawn()
            .args(["--id", "81", "--max-workers", "1", "--budget-usd", "0.025"])
            .arg("--agent-cmd")
            .arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "3/5 completed:\n{stderr}");
    assert_eq!(ran(&repo), ["agent-1", "agent-2", "agent-3"], "{stderr}");
    assert_eq!(
        states(&paths),
        [
            State::Completed,
            State::Completed,
            State::Completed,
            State::Cancelled,
            State::Cancelled
        ]
    );
    for p in &paths[3..] {
        let s = status(p);
        let e = s.error.unwrap();
        assert!(
            e.starts_with(
                "cancelled: the budget was reached before it started ($0.0300 of $0.0250"
            ),
            "{e}"
        );
        assert!(s.worktree.is_none(), "it never started");
    }
    for line in [
        "💰 Budget: $0.0250 for orchestration 81 (--budget-usd); spent $0.00 of $0.0250 budget",
        "💰 Budget reached: spent $0.0300 of $0.0250 budget — reached; launching nothing more",
        "🚫 agent-4 cancelled: the budget was reached before it started ($0.0300 of $0.0250 spent, \
         --budget-usd); raise it and run `po-spawn --retry`",
        "💰 Spend: spent $0.0300 of $0.0250 budget — reached",
    ] {
        assert!(
            stderr.lines().any(|l| l == line),
            "missing {line:?} in:\n{stderr}"
        );
    }
    // Said once, at the start: the budget counts only what agents report.
    assert_eq!(
        stderr
            .matches("--agent-cmd agents must report their spend")
            .count(),
        1,
        "{stderr}"
    );
    let orch: serde_json::Value =
        store::read_json(&repo.orch_dir("81").join("orchestration.json")).unwrap();
    assert_eq!(orch["options"]["last_run"]["budget_usd"], 0.025);
    assert_eq!(orch["options"]["last_run"]["budget_hard"], false);

    // po-watch and po-summarize say the same.
    let watch = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_po-watch"))
            .arg("81")
            .current_dir(&repo.path),
        LIMIT,
    );
    assert!(
        text(&watch.stdout).contains("spent $0.0300 of $0.0250 budget — reached"),
        "{}",
        text(&watch.stdout)
    );

    // Raised: --retry runs the two cancelled tasks, and only them.
    let out = output_within(
        repo.spawn()
            .args(["--id", "81", "--max-workers", "1", "--retry"])
            .arg("--agent-cmd")
            .arg(&agent)
            .env("PO_BUDGET_USD", "0.06"),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(ran(&repo).len(), 5, "{stderr}");
    assert_eq!(states(&paths), [State::Completed; 5]);
    assert!(
        stderr.contains("💰 Spend: spent $0.0500 of $0.0600 budget"),
        "{stderr}"
    );
    let summary = output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_po-summarize"))
            .args(["81", "--format", "json"])
            .current_dir(&repo.path),
        LIMIT,
    );
    let s: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(s["spent_usd"], 0.05);
    assert_eq!(s["budget_usd"], 0.06);
    assert_eq!(s["cost_by_model"]["claude-opus-5-5"], 0.05);
    assert_eq!(s["cost_per_completed_task"], 0.01);
}

/// `--budget-hard` ends a running agent's whole tree once the budget is
/// spent; the task ends cancelled with that reason and keeps its worktree.
#[test]
fn a_hard_budget_ends_a_running_agent_and_keeps_its_worktree() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "82", &[task("Expensive"), task("Slow")], &[]);
    let agent = repo.script(
        "agent.sh",
        r#"set -e
if [ "$PO_AGENT_ID" = agent-1 ]; then
  # Wait until agent-2 works, then spend the whole budget and finish.
  while ! grep -q working "$SCRATCH/agent-2" 2>/dev/null; do sleep 0.05; done
  po-status set --cost-usd 0.02
  exit 0
fi
echo "unsaved work" > draft.txt
po-status set --cost-usd 0.001 --phase "Working slowly"
echo working > "$SCRATCH/agent-2"
sleep 600 &
wait
"#,
    );
    let out = output_within(
        repo.spawn()
            .args(["--id", "82", "--max-workers", "2", "--grace", "2"])
            .args(["--budget-usd", "0.015", "--budget-hard"])
            .arg("--agent-cmd")
            .arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "1/2 is below 80%:\n{stderr}");
    assert_eq!(status(&paths[0]).status, State::Completed);
    let s = status(&paths[1]);
    assert_eq!(s.status, State::Cancelled, "{s:?}\n{stderr}");
    let e = s.error.clone().unwrap();
    assert!(
        e.starts_with(
            "cancelled: the budget was spent while it ran ($0.0210 of $0.0150, --budget-hard)"
        ),
        "{e}"
    );
    let wt = s.worktree.clone().unwrap();
    assert!(wt.join("draft.txt").exists(), "the worktree is kept");
    assert!(
        processes_with_env(&format!("PO_STATUS_FILE={}", paths[1].display())).is_empty(),
        "its whole tree was ended"
    );
    assert!(
        stderr.contains("💰 agent-2: ending it, the budget is spent (--budget-hard)"),
        "{stderr}"
    );
}

/// Bad budgets are usage errors that say how to fix them.
#[test]
fn bad_budgets_are_refused_with_the_fix() {
    let repo = Repo::new();
    orchestrate(&repo, "83", &[task("One")], &[]);
    for (args, env, needle) in [
        (
            vec!["--budget-usd", "0"],
            None,
            "the budget must be more than 0",
        ),
        (vec!["--budget-hard"], None, "set one with --budget-usd"),
        (vec![], Some("lots"), "read $PO_BUDGET_USD=\"lots\""),
    ] {
        let mut cmd = repo.spawn();
        cmd.args(["--id", "83", "--agent-cmd", "true"]).args(&args);
        if let Some(v) = env {
            cmd.env("PO_BUDGET_USD", v);
        }
        let out = output_within(&mut cmd, LIMIT);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
    }
    assert_eq!(
        status(&repo.orch_dir("83").join("agent-1.status.json")).status,
        State::Pending
    );
}

/// `--max-turns` reaches Claude Code's argv; other agents are told it does
/// not limit them.
#[test]
fn max_turns_is_claude_codes_flag() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "84", &[task("One")], &[]);
    let out = output_within(
        repo.spawn().args([
            "--id",
            "84",
            "--dry-run",
            "--max-turns",
            "12",
            "--budget-usd",
            "5",
        ]),
        LIMIT,
    );
    let plan = text(&out.stdout);
    assert!(plan.contains("--max-turns 12"), "{plan}");
    assert!(
        plan.contains("Budget: $5.00 for the orchestration; spent $0.00 of $5.00 budget"),
        "{plan}"
    );
    let out = output_within(
        repo.spawn()
            .args(["--id", "84", "--max-turns", "12", "--agent-cmd", "true"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains(
            "--max-turns 12 applies to agents that take a turn cap; --agent-cmd agents are not \
             limited by it"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(status(&paths[0]).status, State::Completed);
}
