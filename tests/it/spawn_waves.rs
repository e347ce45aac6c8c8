//! Waves: integration branches, validation, merge conflicts, dependencies,
//! retries and batches.

use crate::support_spawn;

use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

/// agent-1 and agent-2 write their own files (or, with $CONFLICT, the same
/// one); agent-3 requires both in its worktree, then adds its own.
const WAVE_AGENT: &str = r#"set -e
case "$PO_AGENT_ID" in
  agent-3) test -f a.txt && test -f b.txt || { echo "wave 1 work missing" >&2; exit 7; }
           echo c > c.txt ;;
  agent-1) if [ -e "$SCRATCH/conflict" ]; then echo one > same.txt; else echo a > a.txt; fi ;;
  agent-2) if [ -e "$SCRATCH/conflict" ]; then echo two > same.txt; else echo b > b.txt; fi ;;
esac
git add -A
git commit --quiet -m "$PO_AGENT_ID"
"#;

fn two_waves(repo: &Repo, id: &str, validation: &str) -> Vec<std::path::PathBuf> {
    let mut third = task("Use both");
    third.wave = 2;
    let mut first = task("Write a");
    first.task_id = Some("task-001-a".into());
    orchestrate(
        repo,
        id,
        &[first, task("Write b"), third],
        &[(1, validation)],
    )
}

#[test]
fn passing_validation_lets_the_next_wave_build_on_the_merged_branches() {
    let repo = Repo::new();
    let paths = two_waves(
        &repo,
        "w1",
        "test -f a.txt && test -f b.txt && echo validated",
    );
    let agent = repo.script("agent.sh", WAVE_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "w1", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    let w1 = stderr.find("Wave 1:").unwrap();
    let w2 = stderr.find("Wave 2:").unwrap();
    let v = stderr.find("Wave 1 validation passed").unwrap();
    assert!(w1 < v && v < w2, "{stderr}");
    assert!(
        stderr.contains("  task-001-a: RUNNING"),
        "labels use task ids: {stderr}"
    );
    assert!(stderr.contains("✅ task-001-a completed"), "{stderr}");
    // The integration branch holds both wave-1 branches; wave 2 branched from it.
    let integration = "po/w1/wave-1";
    for b in ["feat/w1-agent-1", "feat/w1-agent-2"] {
        assert!(git(&repo.path, &["merge-base", "--is-ancestor", b, integration]).is_empty());
    }
    let s3 = status(&paths[2]);
    assert_eq!(
        s3.base_commit.as_deref(),
        Some(git(&repo.path, &["rev-parse", integration]).as_str())
    );
    assert_eq!(s3.metrics.commits, Some(1));
}

#[test]
fn failing_validation_stops_later_waves_with_exit_4() {
    let repo = Repo::new();
    let paths = two_waves(&repo, "w2", "echo checking; exit 3");
    let agent = repo.script("agent.sh", WAVE_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "w2", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(
        states(&paths),
        vec![State::Completed, State::Completed, State::Cancelled]
    );
    let err = status(&paths[2]).error.unwrap();
    assert!(
        err.contains("wave 1") && err.contains("exited with status 3"),
        "{err}"
    );
    assert!(stderr.contains("❌ Wave 1 failed"), "{stderr}");
    assert!(!stderr.contains("Wave 2:"), "{stderr}");
}

#[test]
fn conflicting_branches_stop_later_waves_naming_branches_and_files() {
    let repo = Repo::new();
    std::fs::write(repo.scratch().join("conflict"), "").unwrap();
    let paths = two_waves(&repo, "w3", "true");
    let agent = repo.script("agent.sh", WAVE_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "w3", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(
        states(&paths),
        vec![State::Completed, State::Completed, State::Cancelled]
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("Wave 1 failed"))
        .unwrap();
    for needle in [
        "feat/w3-agent-1",
        "feat/w3-agent-2",
        "same.txt",
        "conflicts",
    ] {
        assert!(line.contains(needle), "{needle} not in {line}");
    }
    // The merge was aborted: the integration worktree is clean.
    let integ = repo.runtime().join("worktrees/w3/integration");
    assert_eq!(git(&integ, &["status", "--porcelain"]), "");
}

#[test]
fn a_task_whose_dependency_failed_is_cancelled() {
    let repo = Repo::new();
    let mut second = task("Needs one");
    second.wave = 2;
    second.depends_on = vec!["agent-1".into()];
    let paths = orchestrate(&repo, "dep", &[task("One"), second], &[]);
    let agent = repo.script(
        "agent.sh",
        "[ \"$PO_AGENT_ID\" = agent-1 ] && exit 1\nexit 0\n",
    );
    let out = output_within(
        repo.spawn()
            .args(["--id", "dep", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(states(&paths), vec![State::Failed, State::Cancelled]);
    let err = status(&paths[1]).error.unwrap();
    assert!(err.contains("dependency agent-1 failed"), "{err}");
}

#[test]
fn retry_reruns_only_failed_tasks_in_their_worktree() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "re", &[task("Good"), task("Flaky")], &[]);
    std::fs::write(repo.scratch().join("fail-agent-2"), "").unwrap();
    let agent = repo.script(
        "agent.sh",
        r#"echo "$PO_AGENT_ID" >> "$SCRATCH/ledger"
echo "attempt" >> "work-$PO_AGENT_ID.txt"
git add . && git commit --quiet -m "$PO_AGENT_ID"
if [ -e "$SCRATCH/fail-$PO_AGENT_ID" ]; then echo "flaky failure" >&2; exit 1; fi
"#,
    );
    let run = |extra: &[&str]| {
        output_within(
            repo.spawn()
                .args(["--id", "re"])
                .args(extra)
                .arg("--agent-cmd")
                .arg(&agent),
            LIMIT,
        )
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(states(&paths), vec![State::Completed, State::Failed]);

    // Without --retry nothing runs again.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let ledger = || std::fs::read_to_string(repo.scratch().join("ledger")).unwrap();
    assert_eq!(ledger().lines().count(), 2);

    std::fs::remove_file(repo.scratch().join("fail-agent-2")).unwrap();
    let out = run(&["--retry"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(states(&paths), vec![State::Completed, State::Completed]);
    let runs = ledger();
    let runs: Vec<&str> = runs.lines().collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| **r == "agent-1").count(), 1);
    assert_eq!(runs[2], "agent-2", "only the failed task ran again");
    let s = status(&paths[1]);
    assert_eq!(s.attempt, 2);
    assert_eq!(s.error, None);
    // Same worktree and branch: the first attempt's commit is still there.
    assert_eq!(s.metrics.commits, Some(2));
    assert_eq!(
        std::fs::read_to_string(s.worktree.unwrap().join("work-agent-2.txt")).unwrap(),
        "attempt\nattempt\n"
    );
    assert_eq!(status(&paths[0]).attempt, 1);
}

#[test]
fn batches_finish_before_the_next_one_starts() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=5).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "bat", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        r#"flock "$SCRATCH/lock" sh -c 'echo "start $PO_AGENT_ID" >> "$SCRATCH/ledger"'
sleep 0.2
flock "$SCRATCH/lock" sh -c 'echo "end $PO_AGENT_ID" >> "$SCRATCH/ledger"'
"#,
    );
    let out = output_within(
        repo.spawn()
            .args([
                "--batch-size",
                "2",
                "--max-workers",
                "5",
                "--isolation",
                "none",
                "--agent-cmd",
            ])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for b in [
        "[Batch 1: Agents 1-2]",
        "[Batch 2: Agents 3-4]",
        "[Batch 3: Agent 5]",
    ] {
        assert!(stderr.contains(b), "{b} missing: {stderr}");
    }
    let ledger = std::fs::read_to_string(repo.scratch().join("ledger")).unwrap();
    let pos = |what: &str| {
        ledger
            .lines()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("{what} in {ledger}"))
    };
    let batches = [vec![1, 2], vec![3, 4], vec![5]];
    for w in batches.windows(2) {
        let last_end = w[0]
            .iter()
            .map(|n| pos(&format!("end agent-{n}")))
            .max()
            .unwrap();
        let first_start = w[1]
            .iter()
            .map(|n| pos(&format!("start agent-{n}")))
            .min()
            .unwrap();
        assert!(last_end < first_start, "{ledger}");
    }
}

#[test]
fn a_later_wave_task_named_alone_branches_from_the_earlier_waves() {
    let repo = Repo::new();
    let paths = two_waves(&repo, "w4", "true");
    let agent = repo.script("agent.sh", WAVE_AGENT);
    let out = output_within(
        repo.spawn()
            .arg("--agent-cmd")
            .arg(&agent)
            .args(&paths[..2]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(states(&paths[2..]), vec![State::Pending]);
    // Now only the wave-2 task: it must still see wave 1's work.
    let out = output_within(
        repo.spawn().arg("--agent-cmd").arg(&agent).arg(&paths[2]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[2]);
    assert_eq!(s.status, State::Completed);
    assert_eq!(
        s.base_commit.as_deref(),
        Some(git(&repo.path, &["rev-parse", "po/w4/wave-1"]).as_str())
    );
}
