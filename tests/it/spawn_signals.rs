//! Time limits, signals and crashes: whole process trees end, interrupted runs
//! are cancelled, and a killed po-spawn's agents are adopted by the next one.

use crate::support_spawn;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

fn marker(p: &std::path::Path) -> String {
    format!("PO_STATUS_FILE={}", p.display())
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s[s.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            state != "Z" && state != "X"
        })
        .unwrap_or(false)
}

#[test]
fn timeout_ends_a_tree_with_a_setsid_grandchild_that_ignores_sigterm() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "to", &[task("Hang")], &[]);
    let agent = repo.script(
        "hang.sh",
        r#"setsid sh -c 'trap "" TERM; echo $$ > "$SCRATCH/grandchild.pid"; while :; do sleep 1; done' &
trap '' TERM
echo started
while :; do sleep 1; done
"#,
    );
    let out = output_within(
        repo.spawn()
            .args(["--timeout", "2", "--grace", "1", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::TimedOut, "{s:?}");
    let err = s.error.clone().unwrap();
    assert!(
        err.contains("--timeout 2 reached") && err.contains("--retry"),
        "{err}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("⏱️ agent-1 timed out after ")
                && l.contains(": --timeout 2 reached")),
        "{stderr}"
    );
    // Nothing of the tree is left: not the agent, not the setsid grandchild.
    assert!(processes_with_env(&marker(&paths[0])).is_empty());
    let gc: i32 = std::fs::read_to_string(repo.scratch().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!pid_alive(gc), "grandchild {gc} survived");
    assert!(!pid_alive(s.pid.unwrap()), "agent survived");
    // Its worktree and branch are kept.
    assert!(s.worktree.unwrap().join("README.md").exists());
    assert!(repo.branches().contains(&"feat/to-agent-1".to_string()));
}

#[test]
fn stall_timeout_ends_a_silent_agent() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "st", &[task("Quiet")], &[]);
    let out = output_within(
        repo.spawn()
            .args([
                "--stall-timeout",
                "1",
                "--grace",
                "1",
                "--agent-cmd",
                "sleep 600",
            ])
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::TimedOut);
    assert!(s.error.unwrap().contains("stalled"));
    assert!(processes_with_env(&marker(&paths[0])).is_empty());
}

#[test]
fn ctrl_c_cancels_running_and_waiting_tasks_and_a_second_po_spawn_is_refused() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "int", &[task("A"), task("B"), task("C")], &[]);
    let agent = repo.script("sleep.sh", "echo up\nwhile :; do sleep 1; done\n");
    let child = repo
        .spawn()
        .args([
            "--max-workers",
            "2",
            "--grace",
            "1",
            "--id",
            "int",
            "--agent-cmd",
        ])
        .arg(&agent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until(LIMIT, "two agents running", || {
        paths[..2].iter().all(|p| status(p).pid.is_some())
    });

    // A second po-spawn on the same orchestration is refused.
    let second = output_within(
        repo.spawn()
            .args(["--id", "int", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    let err2 = text(&second.stderr);
    assert_eq!(second.status.code(), Some(64), "{err2}");
    assert!(
        err2.contains("another po-spawn") && err2.contains(&pid.to_string()),
        "{err2}"
    );

    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(LIMIT)
        .expect("po-spawn ends after SIGINT")
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert_eq!(
        states(&paths),
        vec![State::Cancelled, State::Cancelled, State::Cancelled]
    );
    for p in &paths {
        assert!(
            processes_with_env(&marker(p)).is_empty(),
            "{p:?} left processes"
        );
    }
    // --retry runs them again.
    let ok = repo.script("ok.sh", "exit 0\n");
    let out = output_within(
        repo.spawn()
            .args(["--id", "int", "--retry", "--agent-cmd"])
            .arg(&ok),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        states(&paths),
        vec![State::Completed, State::Completed, State::Completed]
    );
    assert_eq!(status(&paths[0]).attempt, 2);
}

#[test]
fn killed_po_spawn_is_adopted_and_every_agent_runs_exactly_once() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=4).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "crash", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        r#"flock "$SCRATCH/lock" sh -c 'echo "$PO_AGENT_ID" >> "$SCRATCH/ledger"'
i=0
while [ ! -e "$SCRATCH/go" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
echo "$PO_AGENT_ID" > "out-$PO_AGENT_ID.txt"
git add . && git commit --quiet -m "$PO_AGENT_ID"
"#,
    );
    let mut first = repo
        .spawn()
        .args(["--max-workers", "2", "--id", "crash", "--agent-cmd"])
        .arg(&agent)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger = repo.scratch().join("ledger");
    wait_for_lines(&ledger, 2); // two agents started
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let mut second = repo
        .spawn()
        .args(["--max-workers", "2", "--id", "crash", "--agent-cmd"])
        .arg(&agent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Collect its stderr as it comes; the adopted agents wait for "go"
    // until the new po-spawn has adopted both.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut err = second.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_until(LIMIT, "both running agents adopted", || {
        seen.lock().unwrap().matches("RUNNING (adopted)").count() == 2
    });
    std::fs::write(repo.scratch().join("go"), "").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(second.wait_with_output());
    });
    let out = rx
        .recv_timeout(LIMIT)
        .expect("second po-spawn finishes")
        .unwrap();
    reader.join().unwrap();
    let out = Output {
        stderr: seen.lock().unwrap().clone().into_bytes(),
        ..out
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("RUNNING (adopted)"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 4);
    assert!(
        states(&paths).iter().all(|s| *s == State::Completed),
        "{:?}",
        states(&paths)
    );

    let mut ran: Vec<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        vec!["agent-1", "agent-2", "agent-3", "agent-4"],
        "each agent ran once"
    );
    let feat: Vec<String> = repo
        .branches()
        .into_iter()
        .filter(|b| b.starts_with("feat/"))
        .collect();
    assert_eq!(feat.len(), 4, "{feat:?}");
    assert_eq!(repo.worktrees().len(), 5, "{:?}", repo.worktrees());
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(status(p).metrics.commits, Some(1));
        assert_eq!(status(p).attempt, 1);
        let n = i + 1;
        assert_eq!(
            git(
                &repo.path,
                &["log", "-1", "--format=%s", &format!("feat/crash-agent-{n}")]
            ),
            format!("agent-{n}")
        );
    }
}

#[test]
fn an_orphaned_task_is_recorded_failed_its_leftovers_ended_and_retry_runs_it() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "orph", &[task("Lost")], &[]);
    // As a supervisor that died by SIGKILL leaves it: in_progress, no lock
    // holder, and an agent process still running with the task's marker.
    po::protocol::store::update_status(&paths[0], |s| {
        s.status = State::InProgress;
        s.extra.insert("supervisor_pid".into(), 999_999.into());
        Ok(())
    })
    .unwrap();
    let mut leftover = Command::new("sleep")
        .arg("300")
        .env("PO_STATUS_FILE", &paths[0])
        .spawn()
        .unwrap();
    let ran = repo.scratch().join("ran");
    let agent = repo.script("agent.sh", "echo \"$PO_AGENT_ID\" >> \"$SCRATCH/ran\"\n");

    let out = output_within(
        repo.spawn()
            .args(["--id", "orph", "--grace", "1", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Failed);
    let err = s.error.unwrap();
    assert!(
        err.contains("interrupted") && err.contains("--retry"),
        "{err}"
    );
    assert!(!ran.exists(), "an orphan is not run again without --retry");
    // The leftover agent was ended before anything else could run the task.
    let _ = leftover.wait();
    assert!(processes_with_env(&marker(&paths[0])).is_empty());

    let out = output_within(
        repo.spawn()
            .args(["--id", "orph", "--retry", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!((s.status, s.attempt), (State::Completed, 2));
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "agent-1\n");
}

#[test]
fn a_task_whose_liveness_lock_is_held_elsewhere_is_waited_for_not_run_again() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "busy", &[task("Taken")], &[]);
    let live = po::protocol::store::liveness_path(&paths[0]);
    let go = repo.scratch().join("go");
    // Another runner holds the task's liveness lock (flock(1), same flock(2)).
    let mut holder = Command::new("flock")
        .arg(&live)
        .args([
            "sh",
            "-c",
            "i=0; while [ ! -e \"$1\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
            "sh",
        ])
        .arg(&go)
        .spawn()
        .unwrap();
    wait_until(LIMIT, "the lock held", || {
        po::protocol::store::is_live(&paths[0])
    });
    let logs = repo.scratch().join("logs");
    let agent = repo.script("agent.sh", "touch \"$SCRATCH/ran\"\n");
    let child = repo
        .spawn()
        .arg("--log-dir")
        .arg(&logs)
        .args(["--id", "busy", "--agent-cmd"])
        .arg(&agent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(LIMIT, "po-spawn to wait on the lock", || {
        std::fs::read_to_string(logs.join("session.log"))
            .is_ok_and(|l| l.contains("holds its liveness lock"))
    });
    // The other runner finishes the task and lets go.
    po::protocol::store::update_status(&paths[0], |s| {
        s.status = State::Completed;
        Ok(())
    })
    .unwrap();
    std::fs::write(&go, "").unwrap();
    holder.wait().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(LIMIT).expect("po-spawn ends").unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("✅ agent-1 completed"), "{stderr}");
    assert!(
        !repo.scratch().join("ran").exists(),
        "the agent ran a second time"
    );
}

/// A killed po-spawn's supervisors finish the agents they run and record them,
/// then exit: none starts another task without its scheduler.
#[test]
fn supervisors_of_a_killed_po_spawn_finish_their_tasks_and_start_no_other() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=4).map(|i| task(&format!("K{i}"))).collect();
    let paths = orchestrate(&repo, "lost", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        r#"flock "$SCRATCH/lock" sh -c 'echo "$PO_AGENT_ID" >> "$SCRATCH/ledger"'
i=0
while [ ! -e "$SCRATCH/go" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
"#,
    );
    let mut po = repo
        .spawn()
        .args(["--max-workers", "2", "--isolation", "none", "--agent-cmd"])
        .arg(&agent)
        .args(&paths)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger = repo.scratch().join("ledger");
    wait_for_lines(&ledger, 2); // two agents started
    po.kill().unwrap(); // SIGKILL
    po.wait().unwrap();
    let started: Vec<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let supervisors: Vec<i32> = paths
        .iter()
        .filter_map(|p| {
            let s = status(p);
            started.contains(&s.agent_id).then(|| {
                s.extra
                    .get(po::run::supervisor::SUPERVISOR_PID_FIELD)
                    .and_then(|v| v.as_i64())
                    .expect("supervisor pid recorded") as i32
            })
        })
        .collect();
    assert_eq!(supervisors.len(), 2, "{started:?}");

    std::fs::write(repo.scratch().join("go"), "").unwrap();
    wait_until(LIMIT, "the supervisors to record and exit", || {
        supervisors.iter().all(|p| !pid_alive(*p))
    });
    for p in &paths {
        let s = status(p);
        let expected = if started.contains(&s.agent_id) {
            State::Completed
        } else {
            State::Pending
        };
        assert_eq!(s.status, expected, "{s:?}");
    }
    assert_eq!(
        std::fs::read_to_string(&ledger).unwrap().lines().count(),
        2,
        "no agent started after po-spawn was killed"
    );
}

/// A plain program (no shell, no handler) ends on the timeout's SIGTERM: po
/// starts agents with no signal blocked, though its own threads block them.
#[test]
fn a_timeout_ends_a_plain_program_with_sigterm_not_after_the_grace() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "plain", &[task("Sleep")], &[]);
    let out = output_within(
        repo.spawn().args([
            "--id",
            "plain",
            "--isolation",
            "none",
            "--timeout",
            "1",
            "--grace",
            "60",
            "--agent-cmd",
            "sleep 300",
        ]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::TimedOut, "{s:?}");
    assert_eq!(s.exit_code, Some(128 + 15), "ended by SIGTERM: {s:?}");
}
