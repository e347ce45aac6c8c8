//! Pre-flight before deploying: free memory against the agents at once, and
//! GitHub's rate limit against the pull requests the run will open. Shown
//! with --dry-run too, so nothing needs to start to see them.

use crate::support_gh;
use crate::support_spawn;

use std::time::Duration;

use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

fn mem_available() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = text
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn more_claude_agents_at_once_than_memory_holds_is_a_warning_not_a_refusal() {
    let repo = Repo::new();
    // One agent more than this machine's free memory holds at 512 MiB each.
    let n = (mem_available() / (512 << 20)) as usize + 1;
    let tasks: Vec<TaskDef> = (1..=n).map(|i| task(&format!("Task {i}"))).collect();
    orchestrate(&repo, "mem", &tasks, &[]);
    let out = output_within(
        repo.spawn()
            .args(["--id", "mem", "--dry-run", "-j", &n.to_string()]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("⚠️  Pre-flight:") && stderr.contains("of memory available"),
        "{stderr}"
    );
    assert!(stderr.contains("lower --max-workers to"), "{stderr}");

    // Within memory: nothing to say.
    let out = output_within(
        repo.spawn().args(["--id", "mem", "--dry-run", "-j", "1"]),
        LIMIT,
    );
    assert!(
        !text(&out.stderr).contains("Pre-flight"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pull_requests_past_githubs_rate_limit_are_a_warning() {
    let repo = Repo::new();
    orchestrate(&repo, "gh", &[task("One"), task("Two")], &[]);
    let gh = support_gh::FakeGh::new(&repo.scratch());
    gh.set_remaining(3, 5000);
    let mut cmd = repo.spawn();
    gh.apply(&mut cmd);
    let out = output_within(
        cmd.args([
            "--id",
            "gh",
            "--dry-run",
            "--create-pr",
            "--agent-cmd",
            "true",
        ]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("GitHub allows 3 more API calls this hour and this run makes about 4"),
        "{stderr}"
    );
    assert!(
        gh.calls().iter().any(|c| c == &["api", "rate_limit"]),
        "{:?}",
        gh.calls()
    );

    // Without pull requests GitHub is not asked.
    let gh = support_gh::FakeGh::new(&repo.scratch().join("quiet"));
    let mut cmd = repo.spawn();
    gh.apply(&mut cmd);
    let out = output_within(
        cmd.args(["--id", "gh", "--dry-run", "--agent-cmd", "true"]),
        LIMIT,
    );
    assert!(
        !text(&out.stderr).contains("GitHub"),
        "{}",
        text(&out.stderr)
    );
    assert!(gh.calls().is_empty(), "{:?}", gh.calls());
}
