//! po-spawn end to end: real binaries, real git repositories, real processes.

mod support_spawn;

use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

/// An agent that records how many agents are alive at once (under flock(1)),
/// waits until three are up (hang guard 30 s), commits and reports progress.
const COUNTING_AGENT: &str = r#"set -e
S="$SCRATCH"
flock "$S/lock" sh -c 'echo "$PO_AGENT_ID" >> "$SCRATCH/ledger"
  n=$(cat "$SCRATCH/alive" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$SCRATCH/alive"
  p=$(cat "$SCRATCH/peak" 2>/dev/null || echo 0); if [ $n -gt $p ]; then echo $n > "$SCRATCH/peak"; fi'
i=0
while [ "$(cat "$S/peak")" -lt 3 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "work of $PO_AGENT_ID" > "work-$PO_AGENT_ID.txt"
git add "work-$PO_AGENT_ID.txt"
git commit --quiet -m "work of $PO_AGENT_ID"
po-status set --progress 90 --phase "Committed"
flock "$S/lock" sh -c 'n=$(cat "$SCRATCH/alive"); echo $((n-1)) > "$SCRATCH/alive"'
"#;

#[test]
fn six_tasks_three_workers_six_branches_peak_three() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=6).map(|i| task(&format!("Task {i}"))).collect();
    let paths = orchestrate(&repo, "61", &tasks, &[]);
    let agent = repo.script("agent.sh", COUNTING_AGENT);
    let out = output_within(
        repo.spawn()
            .args(["--max-workers", "3", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("Wave 1:"), "{stderr}");
    assert!(stderr.contains("  agent-1: RUNNING"), "{stderr}");
    assert!(stderr.contains("✅ agent-6 completed ("), "{stderr}");
    assert!(stderr.contains("=== Execution Complete ==="), "{stderr}");
    assert!(stderr.contains("Completed: 6/6"), "{stderr}");

    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 6, "{stdout}");
    for p in &paths {
        assert!(
            printed.contains(&p.to_str().unwrap()),
            "{p:?} not in {stdout}"
        );
    }

    let peak: u32 = std::fs::read_to_string(repo.scratch().join("peak"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(peak, 3, "peak number of agents alive at once");

    let branches = repo.branches();
    for (i, p) in paths.iter().enumerate() {
        let n = i + 1;
        let s = status(p);
        assert_eq!(s.status, State::Completed, "{s:?}");
        let branch = format!("feat/issue-61-agent-{n}");
        assert_eq!(s.branch.as_deref(), Some(branch.as_str()));
        assert!(branches.contains(&branch), "{branches:?}");
        assert_eq!(
            git(&repo.path, &["log", "-1", "--format=%s", &branch]),
            format!("work of agent-{n}")
        );
        assert_eq!(s.exit_code, Some(0));
        assert_eq!(s.progress_percentage, Some(100));
        assert_eq!(s.phase.as_deref(), Some("Committed"));
        assert_eq!(s.metrics.commits, Some(1));
        assert_eq!(s.metrics.files_changed, Some(1));
        assert_eq!(s.metrics.lines_added, Some(1));
        assert!(s.completion_time.is_some() && s.start_time.is_some());
        let wt = s.worktree.clone().unwrap();
        assert_eq!(
            wt,
            repo.runtime()
                .join("worktrees/61")
                .join(format!("agent-{n}"))
        );
        assert!(wt.join(format!("work-agent-{n}.txt")).exists());
        let log = s.log_file.clone().unwrap();
        assert!(log.exists(), "{log:?}");
        let prompt =
            std::fs::read_to_string(repo.orch_dir("61").join(format!("prompts/agent-{n}.md")))
                .unwrap();
        assert!(prompt.contains(&format!("Task {n}")), "{prompt}");
        assert!(prompt.contains("po-status set --progress"), "{prompt}");
        assert!(prompt.contains("## Acceptance Criteria"), "{prompt}");
        assert!(prompt.contains(&branch), "{prompt}");
    }
    let ledger = std::fs::read_to_string(repo.scratch().join("ledger")).unwrap();
    assert_eq!(ledger.lines().count(), 6, "{ledger}");
    // The main checkout stays clean: the runtime directory is excluded.
    assert_eq!(git(&repo.path, &["status", "--porcelain"]), "");
}
