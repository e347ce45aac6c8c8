//! Dependencies from issue text run as a graph: a task starts as soon as its
//! own dependencies completed, from their branches, with no wave barrier.

use crate::support_spawn;

use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

/// agent-1 commits one.txt at once. agent-2 runs long: it waits (up to 60 s)
/// for agent-3 to start, and records whether it did. agent-3 records whether
/// agent-1's commit is in its worktree.
const GRAPH_AGENT: &str = r#"set -e
case "$PO_AGENT_ID" in
  agent-1) echo one > one.txt ;;
  agent-2) i=0
           while [ ! -e "$SCRATCH/agent-3-started" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
           if [ -e "$SCRATCH/agent-3-started" ]; then echo "agent-3 started while agent-2 ran" >> "$SCRATCH/ledger"; fi
           echo two > two.txt ;;
  agent-3) touch "$SCRATCH/agent-3-started"
           if [ -f one.txt ]; then echo "agent-3 saw one.txt" >> "$SCRATCH/ledger"; fi
           echo three > three.txt ;;
esac
git add -A
git commit --quiet -m "$PO_AGENT_ID"
"#;

fn graph(repo: &Repo, id: &str, defs: &[(&str, u32, &[&str])]) -> Vec<std::path::PathBuf> {
    let tasks: Vec<TaskDef> = defs
        .iter()
        .map(|(title, wave, deps)| TaskDef {
            title: title.to_string(),
            wave: *wave,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            task_id: None,
        })
        .collect();
    orchestrate(repo, id, &tasks, &[])
}

#[test]
fn a_dependent_starts_before_an_unrelated_long_task_ends_and_sees_its_dependency() {
    let repo = Repo::new();
    let paths = graph(
        &repo,
        "g1",
        &[
            ("Write one", 1, &[]),
            ("Run long", 1, &[]),
            ("Build on one", 2, &["agent-1"]),
        ],
    );
    let agent = repo.script("agent.sh", GRAPH_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "g1", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    let ledger = std::fs::read_to_string(repo.scratch().join("ledger")).unwrap_or_default();
    assert!(
        ledger.contains("agent-3 started while agent-2 ran"),
        "agent-3 waited for the wave: {ledger}\n{stderr}"
    );
    assert!(ledger.contains("agent-3 saw one.txt"), "{ledger}");
    // agent-3 branched from agent-1's branch head, not from an integration branch.
    let s3 = status(&paths[2]);
    let head1 = git(&repo.path, &["rev-parse", "feat/g1-agent-1"]);
    assert_eq!(s3.base_commit.as_deref(), Some(head1.as_str()));
    assert!(!repo.branches().iter().any(|b| b.starts_with("po/g1/wave")));
}

const MERGE_AGENT: &str = r#"set -e
case "$PO_AGENT_ID" in
  agent-1) if [ -e "$SCRATCH/conflict" ]; then echo one > same.txt; else echo a > a.txt; fi ;;
  agent-2) if [ -e "$SCRATCH/conflict" ]; then echo two > same.txt; else echo b > b.txt; fi ;;
  agent-3) test -f a.txt && test -f b.txt || { echo "dependencies missing" >&2; exit 7; } ;;
esac
git add -A
git commit --quiet --allow-empty -m "$PO_AGENT_ID"
"#;

#[test]
fn two_dependencies_start_from_their_merge_and_a_conflict_names_the_files() {
    let defs: &[(&str, u32, &[&str])] = &[
        ("Write a", 1, &[]),
        ("Write b", 1, &[]),
        ("Use both", 2, &["agent-1", "agent-2"]),
    ];
    let repo = Repo::new();
    let paths = graph(&repo, "g2", defs);
    let agent = repo.script("agent.sh", MERGE_AGENT);
    let head_before = git(&repo.path, &["rev-parse", "HEAD"]);
    let out = output_within(
        repo.spawn().args(["--id", "g2", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    // The merge was made without the user's checkout.
    assert_eq!(git(&repo.path, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git(&repo.path, &["status", "--porcelain"]), "");
    let base3 = status(&paths[2]).base_commit.unwrap();
    for b in ["feat/g2-agent-1", "feat/g2-agent-2"] {
        assert!(git(&repo.path, &["merge-base", "--is-ancestor", b, &base3]).is_empty());
    }

    let repo = Repo::new();
    let paths = graph(&repo, "g3", defs);
    std::fs::write(repo.scratch().join("conflict"), "").unwrap();
    let agent = repo.script("agent.sh", MERGE_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "g3", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s3 = status(&paths[2]);
    assert_eq!(s3.status, State::Failed, "{s3:?}");
    let err = s3.error.unwrap();
    assert!(
        err.contains("feat/g3-agent-1") && err.contains("same.txt"),
        "{err}"
    );
    assert!(stderr.contains("❌ agent-3 failed"), "{stderr}");
}

#[test]
fn dry_run_says_which_scheduling_applies() {
    let repo = Repo::new();
    graph(&repo, "g4", &[("One", 1, &[]), ("Two", 2, &["agent-1"])]);
    let out = output_within(
        repo.spawn()
            .args(["--id", "g4", "--dry-run", "--agent-cmd", "true"]),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Scheduling: dependency graph"), "{stdout}");
    assert!(
        stdout.contains("depends on: agent-1 (starts from its branch)"),
        "{stdout}"
    );

    let repo = Repo::new();
    let mut later = task("Two");
    later.wave = 2;
    orchestrate(&repo, "g5", &[task("One"), later], &[(1, "true")]);
    let out = output_within(
        repo.spawn()
            .args(["--id", "g5", "--dry-run", "--agent-cmd", "true"]),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Scheduling: waves"), "{stdout}");
}

/// agent-1 fails until `$SCRATCH/fixed` exists; agent-2 depends on it.
const FLAKY_AGENT: &str = r#"set -e
if [ "$PO_AGENT_ID" = agent-1 ] && [ ! -e "$SCRATCH/fixed" ]; then echo "broken" >&2; exit 3; fi
echo "$PO_AGENT_ID" > "$PO_AGENT_ID.txt"
git add -A
git commit --quiet -m "$PO_AGENT_ID"
"#;

/// The retry idiom of `--state failed` leaves out a task cancelled because
/// its dependency failed: po-spawn must say the orchestration is unfinished
/// instead of "All agents succeeded", and `--unfinished` finishes it.
#[test]
fn retrying_only_the_failed_never_claims_the_orchestration_succeeded() {
    let repo = Repo::new();
    let paths = graph(
        &repo,
        "g9",
        &[("Base", 1, &[]), ("On top", 2, &["agent-1"])],
    );
    let agent = repo.script("agent.sh", FLAKY_AGENT);
    let out = output_within(
        repo.spawn().args(["--id", "g9", "--agent-cmd"]).arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        states(&paths),
        [State::Failed, State::Cancelled],
        "{stderr}"
    );
    assert!(stderr.contains("  Failed: 1 task\n"), "{stderr}");
    assert!(stderr.contains("  Cancelled: 1 task\n"), "{stderr}");
    assert!(!stderr.contains("Failed: 2"), "{stderr}");

    std::fs::write(repo.scratch().join("fixed"), "").unwrap();
    let ls = |filter: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_po-status"));
        cmd.current_dir(&repo.path).args(["ls", "g9"]).args(filter);
        text(&output_within(&mut cmd, LIMIT).stdout)
    };
    let failed = ls(&["--state", "failed"]);
    assert_eq!(failed.lines().count(), 1, "{failed}");
    let piped = |input: &str| {
        let file = repo.scratch().join("stdin");
        std::fs::write(&file, input).unwrap();
        let mut cmd = repo.spawn();
        cmd.arg("--agent-cmd").arg(&agent);
        cmd.stdin(std::fs::File::open(&file).unwrap());
        output_with_stdin_within(&mut cmd, LIMIT)
    };
    let out = piped(&failed);
    let stderr = text(&out.stderr);
    assert_eq!(
        states(&paths),
        [State::Completed, State::Cancelled],
        "{stderr}"
    );
    assert!(!stderr.contains("All agents succeeded"), "{stderr}");
    assert!(
        stderr.contains("orchestration g9 is not finished: 1 task (agent-2 cancelled)"),
        "{stderr}"
    );
    assert!(stderr.contains("po-spawn --id g9 --retry"), "{stderr}");

    let unfinished = ls(&["--unfinished"]);
    assert_eq!(unfinished.lines().count(), 1, "{unfinished}");
    assert!(unfinished.contains("agent-2.status.json"), "{unfinished}");
    let out = piped(&unfinished);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        states(&paths),
        [State::Completed, State::Completed],
        "{stderr}"
    );
    assert!(stderr.contains("🎉 All agents succeeded!"), "{stderr}");
}
