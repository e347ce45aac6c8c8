//! po-spawn with the tools around it, and what a person sees while it runs:
//! `po-parse FILE | po-spawn`, verbose detail, progress lines, a forced stop.

use crate::support_spawn;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn po_parse_piped_into_po_spawn_runs_every_task() {
    let repo = Repo::new();
    let plan = repo.scratch().join("plan.md");
    std::fs::write(
        &plan,
        "# Plan\n\n- [ ] Write `docs/a.md`\n- [ ] Write `docs/b.md`\n- [ ] Write `docs/c.md`\n",
    )
    .unwrap();
    let mut parse = Command::new(env!("CARGO_BIN_EXE_po-parse"))
        .current_dir(&repo.path)
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent = repo.script(
        "agent.sh",
        "mkdir -p notes && echo \"$PO_AGENT_ID\" > \"notes/$PO_AGENT_ID.md\"\ngit add notes && git commit -qm \"$PO_AGENT_ID\"\n",
    );
    let mut spawn = repo.spawn();
    spawn
        .args(["--max-workers", "5", "--agent-cmd"])
        .arg(&agent);
    let out = output_with_stdin_within(spawn.stdin(parse.stdout.take().unwrap()), LIMIT);
    assert!(parse.wait().unwrap().success(), "po-parse failed");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let printed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(printed.len(), 3, "{printed:?}");
    for p in &printed {
        let s = status(std::path::Path::new(p));
        assert_eq!(s.status, State::Completed, "{s:?}");
        assert_eq!(s.metrics.commits, Some(1));
        let branch = s.branch.unwrap();
        assert!(branch.starts_with("feat/plan-agent-"), "{branch}");
        assert!(repo.branches().contains(&branch));
    }
    assert!(stderr.contains("Completed: 3/3"), "{stderr}");
}

#[test]
fn verbose_detail_and_progress_lines_reach_stderr() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "prog", &[task("Report")], &[]);
    let logs = repo.scratch().join("logs");
    // The agent reports a phase, then waits (hang guard 30 s) until po-spawn
    // has shown it in a progress line, which the session log records too.
    let agent = repo.script(
        "agent.sh",
        &format!(
            r#"po-status set --progress 45 --phase "Implementing feature"
i=0
until grep -q "Implementing feature (45%)" "{}/session.log" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done
"#,
            logs.display()
        ),
    );
    let out = output_within(
        repo.spawn()
            .env("AMPLIHACK_PARALLEL_VERBOSE", "1")
            .env("AMPLIHACK_STATUS_INTERVAL", "1")
            .arg("--log-dir")
            .arg(&logs)
            .arg("--agent-cmd")
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("supervisor pid"),
        "verbose detail: {stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("agent-1: Implementing feature (45%)"))
        .unwrap_or_else(|| panic!("no progress line in {stderr}"));
    assert!(
        line.starts_with('[') && line.as_bytes()[3] == b':',
        "{line}"
    );
    // --log-dir holds the session log and the agent log.
    assert!(logs.join("agent-1.log").exists());
    let session = std::fs::read_to_string(logs.join("session.log")).unwrap();
    assert!(session.contains("agent-1 finished: completed"), "{session}");
}

#[test]
fn a_second_ctrl_c_forces_agents_that_ignore_sigterm() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "force", &[task("Stubborn")], &[]);
    let agent = repo.script(
        "stubborn.sh",
        "trap '' TERM INT\necho up\nwhile :; do sleep 1; done\n",
    );
    let child = repo
        .spawn()
        .args(["--grace", "600", "--id", "force", "--agent-cmd"])
        .arg(&agent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    wait_until(LIMIT, "the agent running", || {
        status(&paths[0]).pid.is_some()
    });
    let started = Instant::now();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    // The first one asks nicely, and the agent ignores it; the second forces.
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(LIMIT).expect("po-spawn ends").unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Forcing"), "{stderr}");
    // Well before the 600 s grace period would have run out.
    assert!(started.elapsed() < Duration::from_secs(300));
    assert_eq!(status(&paths[0]).status, State::Cancelled);
    let marker = format!("PO_STATUS_FILE={}", paths[0].display());
    assert!(processes_with_env(&marker).is_empty());
}
