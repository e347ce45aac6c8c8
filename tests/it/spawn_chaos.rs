//! Chaos: po-spawn killed (SIGKILL and SIGTERM), supervisors and agents
//! killed at random, run after run with --retry until every task completed.
//! No task ever has two live agents, every task ends completed, and no
//! process of the run is left behind.

use crate::support_spawn;

use std::process::{Child, Stdio};
use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

/// Each agent holds a lock named after its task for as long as it lives: a
/// second live agent of the same task finds it taken and says so. A retry
/// finds the work of a killed attempt in its worktree, committed or not.
const CHAOS_AGENT: &str = r#"exec 9>"$SCRATCH/live-$PO_AGENT_ID"
if ! flock -n 9; then echo "DOUBLE $PO_AGENT_ID" >> "$SCRATCH/ledger"; fi
echo "start $PO_AGENT_ID" >> "$SCRATCH/ledger"
sleep "1.$(( ($$ % 7) + 2 ))"
echo "$PO_AGENT_ID" > "out-$PO_AGENT_ID.txt"
git add . && { git diff --cached --quiet || git commit --quiet -m "$PO_AGENT_ID"; }
"#;

/// A small deterministic sequence of "random" numbers.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Live processes that carry `var=…`-prefixed environment entries of this run.
fn pids_with_env_prefix(prefix: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if !zombie
            && env
                .split(|b| *b == 0)
                .any(|v| v.starts_with(prefix.as_bytes()))
        {
            out.push(pid);
        }
    }
    out
}

fn kill(pid: i32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

#[test]
fn killing_anything_at_random_never_runs_a_task_twice_at_once_and_everything_completes() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=12).map(|i| task(&format!("Chaos {i}"))).collect();
    let paths = orchestrate(&repo, "chaos", &tasks, &[]);
    let agent = repo.script("agent.sh", CHAOS_AGENT);
    let marker = format!("PO_STATUS_FILE={}", repo.orch_dir("chaos").display());
    let mut dice = Dice(7);
    let spawn = |repo: &Repo| -> Child {
        repo.spawn()
            .args([
                "-j",
                "4",
                "--retry",
                "--grace",
                "1",
                "--id",
                "chaos",
                "--agent-cmd",
            ])
            .arg(&agent)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    for round in 0..6 {
        let mut po = spawn(&repo);
        std::thread::sleep(Duration::from_millis(300 + dice.roll(700)));
        // Kill a supervisor or an agent of the run, sometimes.
        match dice.roll(3) {
            0 => {
                let sups = pids_with_env_prefix("PO_SPAWN_POOL=");
                let mine: Vec<i32> = sups
                    .into_iter()
                    .filter(|p| {
                        std::fs::read_link(format!("/proc/{p}/cwd"))
                            .is_ok_and(|c| c.starts_with(&repo.path))
                    })
                    .collect();
                if let Some(p) = mine.first() {
                    kill(*p, "-KILL");
                }
            }
            1 => {
                if let Some(p) = pids_with_env_prefix(&marker).first() {
                    kill(*p, "-KILL");
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(dice.roll(500)));
        let sig = if round % 2 == 0 { "-KILL" } else { "-TERM" };
        if sig == "-TERM" {
            // A cancel that meets running agents (while work is left).
            let start = std::time::Instant::now();
            while pids_with_env_prefix(&marker).is_empty()
                && start.elapsed() < Duration::from_secs(5)
                && !states(&paths).iter().all(|s| *s == State::Completed)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        kill(po.id() as i32, sig);
        let _ = po.wait();
    }
    // Then runs left alone, until everything completed.
    for _ in 0..4 {
        let out = output_within(
            repo.spawn()
                .args(["-j", "4", "--retry", "--id", "chaos", "--agent-cmd"])
                .arg(&agent),
            Duration::from_secs(120),
        );
        if states(&paths).iter().all(|s| *s == State::Completed) {
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            break;
        }
    }
    for p in &paths {
        let s = status(p);
        assert_eq!(s.status, State::Completed, "{s:#?}");
    }
    let ledger = std::fs::read_to_string(repo.scratch().join("ledger")).unwrap_or_default();
    assert!(
        !ledger.contains("DOUBLE"),
        "two live agents of one task:\n{ledger}"
    );
    assert!(ledger.lines().count() >= 12, "{ledger}");
    for n in 1..=12 {
        assert!(
            repo.path
                .join(format!(
                    ".claude/runtime/worktrees/chaos/agent-{n}/out-agent-{n}.txt"
                ))
                .is_file()
        );
    }
    // The chaos did interrupt work: some tasks had to start more than once.
    let starts = ledger.lines().filter(|l| l.starts_with("start ")).count();
    assert!(starts > 12, "nothing was interrupted:\n{ledger}");
    wait_until(
        Duration::from_secs(30),
        "no process of the run left",
        || pids_with_env_prefix(&marker).is_empty(),
    );
}

#[test]
fn a_retry_clears_the_git_lock_a_killed_attempt_left_in_its_worktree() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "lock", &[task("Commit")], &[]);
    let agent = repo.script(
        "agent.sh",
        "echo work > work.txt && git add . && git commit --quiet -m work\n",
    );
    let first = output_within(
        repo.spawn().args(["--id", "lock", "--agent-cmd", "false"]),
        Duration::from_secs(120),
    );
    assert_eq!(first.status.code(), Some(2), "{}", text(&first.stderr));
    // As if the attempt had been killed inside `git commit`.
    let wt = repo.runtime().join("worktrees/lock/agent-1");
    let gitdir = git(&wt, &["rev-parse", "--git-dir"]);
    let lock = std::path::Path::new(&gitdir).join("index.lock");
    std::fs::write(&lock, "").unwrap();
    let out = output_within(
        repo.spawn()
            .args(["--id", "lock", "--retry", "--agent-cmd"])
            .arg(&agent),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(status(&paths[0]).status, State::Completed);
    assert!(!lock.exists());
    let log = std::fs::read_to_string(status(&paths[0]).log_file.unwrap()).unwrap();
    assert!(
        log.contains("index.lock that a killed attempt left"),
        "{log}"
    );
}
