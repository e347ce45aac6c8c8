//! po-spawn end to end: real binaries, real git repositories, real processes.

use crate::support_spawn;

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

#[test]
fn dry_run_starts_nothing() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "dry", &[task("One"), task("Two")], &[]);
    let out = output_within(
        repo.spawn()
            .args(["--dry-run", "--id", "dry", "--agent-cmd"])
            .arg("touch {worktree}/x {branch}"),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("DRY RUN"), "{stdout}");
    assert!(stdout.contains("Wave 1"), "{stdout}");
    assert!(stdout.contains("feat/dry-agent-2"), "{stdout}");
    let wt = repo.runtime().join("worktrees/dry/agent-1");
    assert!(
        stdout.contains(&format!("touch {}/x feat/dry-agent-1", wt.display())),
        "{stdout}"
    );
    assert_eq!(states(&paths), vec![State::Pending, State::Pending]);
    assert!(!wt.exists());
    assert_eq!(repo.branches(), vec!["main".to_string()]);
    assert!(!repo.runtime().join("logs").exists());
}

#[test]
fn isolation_none_runs_in_the_repository_with_the_agent_environment() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "none", &[task("Read"), task("Review")], &[]);
    let agent = repo.script(
        "env.sh",
        r#"echo "$(pwd) $PO_AGENT_ID $PO_ORCHESTRATION_ID $PO_WORKTREE $PO_PORT $PO_PORT_COUNT $PO_STATUS_FILE" > "$SCRATCH/env-$PO_AGENT_ID"
cat > "$SCRATCH/stdin-$PO_AGENT_ID"
echo "to stdout"; echo "to stderr" >&2
"#,
    );
    let out = output_within(
        repo.spawn()
            // The template from the environment, as front ends pass it.
            .env(
                "PO_AGENT_CMD",
                format!("{} {{prompt_file}}", agent.display()),
            )
            .args(["--isolation", "none"])
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(states(&paths), vec![State::Completed, State::Completed]);
    assert_eq!(repo.worktrees().len(), 1, "no worktree is made");
    assert_eq!(repo.branches(), vec!["main".to_string()]);
    let mut ports = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let id = format!("agent-{}", i + 1);
        let env = std::fs::read_to_string(repo.scratch().join(format!("env-{id}"))).unwrap();
        let f: Vec<&str> = env.split_whitespace().collect();
        assert_eq!(f[0], repo.path.to_str().unwrap());
        assert_eq!(f[1], id);
        assert_eq!(f[2], "none");
        assert_eq!(f[3], repo.path.to_str().unwrap());
        assert_eq!(f[5], "100");
        assert_eq!(f[6], p.to_str().unwrap());
        ports.push(f[4].to_string());
        let stdin = std::fs::read_to_string(repo.scratch().join(format!("stdin-{id}"))).unwrap();
        assert!(
            stdin.contains(&format!("Task**: {}", status(p).title)),
            "{stdin}"
        );
        let log = std::fs::read_to_string(status(p).log_file.unwrap()).unwrap();
        assert!(log.contains("to stdout\nto stderr\n"), "{log}");
    }
    assert_ne!(ports[0], ports[1], "each agent gets its own port block");
}

#[test]
fn a_failing_setup_fails_the_task_in_phase_setup() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "setup", &[task("One")], &[]);
    let agent = repo.script("agent.sh", "touch \"$SCRATCH/agent-ran\"\n");
    let out = output_within(
        repo.spawn()
            .args([
                "--setup",
                "echo preparing the worktree; exit 3",
                "--agent-cmd",
            ])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Failed);
    assert_eq!(s.phase.as_deref(), Some("setup"));
    let err = s.error.clone().unwrap();
    assert!(
        err.contains("setup command") && err.contains("status 3"),
        "{err}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("❌ agent-1 failed") && l.contains(": setup command")),
        "{stderr}"
    );
    let log = std::fs::read_to_string(s.log_file.unwrap()).unwrap();
    assert!(log.contains("preparing the worktree"), "{log}");
    assert!(!repo.scratch().join("agent-ran").exists());
}

#[test]
fn worktreeinclude_copies_selected_ignored_files() {
    let repo = Repo::new();
    std::fs::write(
        repo.path.join(".gitignore"),
        ".env\nbuild.log\nconf/local.toml\n",
    )
    .unwrap();
    std::fs::write(repo.path.join(".worktreeinclude"), ".env\nconf/\n").unwrap();
    git(&repo.path, &["add", "."]);
    git(&repo.path, &["commit", "--quiet", "-m", "ignore rules"]);
    std::fs::write(repo.path.join(".env"), "TOKEN=abc\n").unwrap();
    std::fs::write(repo.path.join("build.log"), "noise\n").unwrap();
    std::fs::create_dir_all(repo.path.join("conf")).unwrap();
    std::fs::write(repo.path.join("conf/local.toml"), "x = 1\n").unwrap();
    let paths = orchestrate(&repo, "inc", &[task("One")], &[]);
    let agent = repo.script(
        "agent.sh",
        "test \"$(cat .env)\" = TOKEN=abc || exit 5\ntest -f conf/local.toml || exit 6\ntest ! -e build.log || exit 7\n",
    );
    let out = output_within(
        repo.spawn().arg("--agent-cmd").arg(&agent).args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(status(&paths[0]).status, State::Completed);
}

#[test]
fn paths_from_two_orchestrations_are_refused() {
    let repo = Repo::new();
    let a = orchestrate(&repo, "a", &[task("One")], &[]);
    let b = orchestrate(&repo, "b", &[task("Two")], &[]);
    let out = output_within(
        repo.spawn()
            .args(["--agent-cmd", "true"])
            .arg(&a[0])
            .arg(&b[0]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("different orchestrations"), "{stderr}");
    assert_eq!(
        states(&[a[0].clone(), b[0].clone()]),
        vec![State::Pending, State::Pending]
    );
}

#[test]
fn status_paths_come_on_stdin_and_failures_set_the_exit_code() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=5).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "thr", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        "if [ \"$PO_AGENT_ID\" = agent-5 ]; then echo 'cannot import foo' >&2; exit 3; fi\n",
    );
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    let mut cmd = repo.spawn();
    cmd.arg("--agent-cmd").arg(&agent);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    // 4/5 = 80 % meets the default threshold: partial success.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s = status(&paths[4]);
    assert_eq!(s.status, State::Failed);
    assert_eq!(s.exit_code, Some(3));
    let err = s.error.unwrap();
    assert!(
        err.contains("exited with status 3") && err.contains("cannot import foo"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("❌ agent-5 failed")
                && l.contains(": agent exited with status 3")),
        "{stderr}"
    );
    assert!(stderr.contains("Completed: 4/5"), "{stderr}");
    // A stricter threshold from the environment makes it a majority failure.
    let again = output_within(
        repo.spawn()
            .env("AMPLIHACK_SUCCESS_THRESHOLD", "90")
            .args(["--id", "thr", "--agent-cmd"])
            .arg(&agent),
        LIMIT,
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
}

/// Without the agent's program every task would fail the same way: po-spawn
/// says so once, before it makes any worktree, and exits 9 (a system error:
/// the command line is right, the machine lacks a program).
#[test]
fn a_missing_claude_cli_is_refused_once_before_any_worktree() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "nocl", &[task("One"), task("Two")], &[]);
    let out = output_within(
        repo.spawn()
            .env("PO_CLAUDE", "claude-not-installed-here")
            .args(&paths),
        LIMIT,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert_eq!(err.matches("cannot be started").count(), 1, "{err}");
    assert!(
        err.contains("claude-not-installed-here is not on PATH")
            && err.contains("install Claude Code")
            && err.contains("--agent-cmd"),
        "{err}"
    );
    assert_eq!(repo.worktrees().len(), 1, "no worktree was made");
    for p in &paths {
        let s = status(p);
        assert_eq!(s.status, State::Pending, "nothing ran");
        assert_eq!(s.metrics.session_id, None);
    }
    // The dry run prints its plan and warns of the same.
    let dry = output_within(
        repo.spawn()
            .env("PO_CLAUDE", "claude-not-installed-here")
            .arg("--dry-run")
            .args(&paths),
        LIMIT,
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("claude-not-installed-here -p"));
    assert!(
        text(&dry.stderr).contains("⚠️  Pre-flight: the agent cannot be started"),
        "{}",
        text(&dry.stderr)
    );
}

/// `--agent-cmd ./myagent.sh` means the script where po-spawn was started,
/// not one inside each worktree; and a missing one is refused up front.
#[test]
fn a_relative_agent_program_is_found_where_po_spawn_started() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "rel", &[task("One")], &[]);
    // Not committed: no worktree has it.
    let body = "#!/bin/sh\nset -e\ntest -s \"$1\"\necho ran > \"$PO_WORKTREE/ran.txt\"\n";
    let script = repo.path.join("myagent.sh");
    std::fs::write(&script, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = output_within(
        repo.spawn()
            .args(["--agent-cmd", "./myagent.sh {prompt_file}"])
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Completed, "{:?}", s.error);
    let wt = s.worktree.clone().unwrap();
    assert!(wt.join("ran.txt").exists());

    let paths = orchestrate(&repo, "rel2", &[task("One")], &[]);
    let out = output_within(
        repo.spawn()
            .args(["--agent-cmd", "./nope.sh {prompt_file}"])
            .args(&paths),
        LIMIT,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(
        err.contains("/nope.sh does not exist") && err.contains("--agent-cmd"),
        "{err}"
    );
    assert_eq!(status(&paths[0]).status, State::Pending);
}

/// The status file names the prompt the agent got.
#[test]
fn the_prompt_file_the_agent_got_is_recorded() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "pf", &[task("One")], &[]);
    let out = output_within(
        repo.spawn().args(["--agent-cmd", "true"]).args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    let prompt = s.prompt_file.expect("prompt_file recorded");
    assert_eq!(
        prompt,
        repo.orch_dir("pf").join("prompts").join("agent-1.md")
    );
    assert!(std::fs::read_to_string(&prompt).unwrap().contains("One"));
}

#[test]
fn many_worktrees_registered_at_once_all_succeed() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=12).map(|i| task(&format!("T{i}"))).collect();
    let paths = orchestrate(&repo, "many", &tasks, &[]);
    let out = output_within(
        repo.spawn()
            .args(["--max-workers", "12", "--agent-cmd", "true"])
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(states(&paths).iter().all(|s| *s == State::Completed));
    assert_eq!(repo.worktrees().len(), 13);
}

#[test]
fn the_default_base_is_head_where_po_spawn_runs_even_in_a_linked_worktree() {
    let repo = Repo::new();
    let mine = repo.scratch().join("my-worktree");
    git(
        &repo.path,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "topic",
            mine.to_str().unwrap(),
        ],
    );
    std::fs::write(mine.join("topic.txt"), "topic\n").unwrap();
    git(&mine, &["add", "topic.txt"]);
    git(&mine, &["commit", "--quiet", "-m", "topic work"]);
    let paths = orchestrate(&repo, "lw", &[task("One")], &[]);
    let mut cmd = repo.spawn();
    cmd.current_dir(&mine)
        .args(["--agent-cmd", "test -f topic.txt"])
        .args(&paths);
    let out = output_within(&mut cmd, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.base_commit.unwrap(), git(&mine, &["rev-parse", "HEAD"]));
    // The task's worktree still lives under the main repository's runtime.
    assert!(s.worktree.unwrap().starts_with(repo.runtime()));
}

/// Process starts are the cost of a task: one supervisor per worker slot runs
/// task after task, each recording its own pid, and every supervisor is gone
/// once po-spawn has finished.
#[test]
fn two_worker_slots_run_eight_tasks_on_at_most_two_supervisors() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=8).map(|i| task(&format!("Pooled {i}"))).collect();
    let paths = orchestrate(&repo, "pool", &tasks, &[]);
    let agent = repo.script(
        "agent.sh",
        // One short append: atomic without a lock.
        r#"echo "$PO_AGENT_ID $PPID" >> "$SCRATCH/ledger"
"#,
    );
    let out = output_within(
        repo.spawn()
            .args(["--max-workers", "2", "--isolation", "none", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("Completed: 8/8"), "{stderr}");

    let mut supervisors = std::collections::BTreeSet::new();
    for p in &paths {
        let s = status(p);
        assert_eq!(s.status, State::Completed, "{s:?}");
        let pid = s
            .extra
            .get(po::run::supervisor::SUPERVISOR_PID_FIELD)
            .and_then(|v| v.as_i64())
            .expect("supervisor pid recorded");
        supervisors.insert(pid);
    }
    assert!(
        (1..=2).contains(&supervisors.len()),
        "8 tasks on 2 worker slots ran under {supervisors:?}"
    );
    // Each agent is the child of the supervisor its status names.
    let ledger = std::fs::read_to_string(repo.scratch().join("ledger")).unwrap();
    assert_eq!(ledger.lines().count(), 8, "{ledger}");
    for line in ledger.lines() {
        let ppid: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            supervisors.contains(&ppid),
            "{line} not under {supervisors:?}"
        );
    }
    // With its input closed, each supervisor exits.
    wait_until(LIMIT, "the supervisors to exit", || {
        supervisors.iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
                    matches!(state, Some("Z") | Some("X"))
                })
                .unwrap_or(true)
        })
    });
}

/// Many tasks that end at once: a supervisor can be done with a task before
/// the scheduler has finished handing it over, and the run must still end.
#[test]
fn a_thousand_instant_tasks_all_finish_and_po_spawn_ends() {
    let repo = Repo::new();
    let tasks: Vec<TaskDef> = (1..=1000).map(|i| task(&format!("Instant {i}"))).collect();
    orchestrate(&repo, "instant", &tasks, &[]);
    let out = output_within(
        repo.spawn().args([
            "--id",
            "instant",
            "-j",
            "8",
            "--isolation",
            "none",
            "--agent-cmd",
            "true",
        ]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Completed: 1000/1000"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 1000);
}

/// `--agent` (`PO_AGENT`) takes the agents po knows; anything else is a
/// usage error naming them.
#[test]
fn the_agent_is_chosen_by_name_and_an_unknown_one_is_a_usage_error() {
    let repo = Repo::new();
    let paths = orchestrate(&repo, "ag", &[task("One")], &[]);
    let out = output_within(
        repo.spawn().env("PO_AGENT", "frobnicator").args(&paths),
        LIMIT,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("frobnicator") && err.contains("claude"),
        "{err}"
    );
    let dry = output_within(
        repo.spawn()
            .env("PO_AGENT", "frobnicator")
            .args(["--agent", "claude", "--dry-run", "--model", "sonnet"])
            .args(&paths),
        LIMIT,
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(
        plan.contains("-p --output-format stream-json --verbose --dangerously-skip-permissions --session-id '<new session id>' --model sonnet"),
        "{plan}"
    );
}
