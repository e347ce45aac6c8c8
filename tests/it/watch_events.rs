//! po-watch --events and --follow against files that other processes change:
//! the real `po-status set` binary and the library's locked writes.

use crate::engines;
use crate::watch_support as support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use po::protocol::{State, store};
use support::*;

/// `[12:05] agent-1: text` → `agent-1: text`, checking the time's shape.
fn untimed(line: &str) -> String {
    let b = line.as_bytes();
    assert!(
        b.len() > 8 && b[0] == b'[' && b[3] == b':' && b[6] == b']' && b[7] == b' ',
        "not `[HH:MM] …`: {line:?}"
    );
    assert!(
        line[1..3]
            .chars()
            .chain(line[4..6].chars())
            .all(|c| c.is_ascii_digit())
    );
    line[8..].to_string()
}

/// A finish line without its run time (` (3s)`, ` after 2s`), which depends
/// on how fast the machine is.
fn without_duration(line: &str) -> String {
    let is_duration = |d: &str| {
        !d.is_empty()
            && d.ends_with('s')
            && d.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
    };
    let line = match line.rfind(" (") {
        Some(i) if line.ends_with(')') && is_duration(&line[i + 2..line.len() - 1]) => &line[..i],
        _ => line,
    };
    match line.find(" after ") {
        Some(i) => {
            let rest = &line[i + 7..];
            let end = rest.find(':').unwrap_or(rest.len());
            if is_duration(&rest[..end]) {
                format!("{}{}", &line[..i], &rest[end..])
            } else {
                line.to_string()
            }
        }
        None => line.to_string(),
    }
}

/// Two tasks run, report progress, one completes with a PR, one fails.
/// Each change waits for its line before the next, so every change is seen.
fn two_tasks_scenario(fx: &Fixture, configure: impl FnOnce(&mut Command)) -> (Vec<String>, i32) {
    let dir = fx.orch("42");
    let a1 = task(&dir, 1, |_| {});
    let a2 = task(&dir, 2, |_| {});
    let mut cmd = fx.watch();
    cmd.args(["42", "--events", "--until-done", "--utc"]);
    configure(&mut cmd);
    let mut live = Live::spawn(cmd);
    live.expect("agent-1: pending");
    live.expect("agent-2: pending");

    // Whoever runs a task holds its liveness lock (else it shows orphaned).
    let _l1 = store::hold_liveness(&a1).unwrap().unwrap();
    let _l2 = store::hold_liveness(&a2).unwrap().unwrap();
    set_state(&a1, State::InProgress, |s| s.start_time = Some(ago(0)));
    live.expect("agent-1: started");
    po_status_set(&a1, &["--phase", "Analyzing codebase", "--progress", "10"]);
    live.expect("agent-1: Analyzing codebase (10%)");
    set_state(&a2, State::InProgress, |s| s.start_time = Some(ago(0)));
    live.expect("agent-2: started");
    po_status_set(
        &a1,
        &["--phase", "Implementing feature", "--progress", "45"],
    );
    live.expect("agent-1: Implementing feature (45%)");
    po_status_set(&a2, &["--progress", "20"]);
    live.expect("agent-2: 20%");
    set_state(&a1, State::Completed, |s| s.pr_number = Some(1241));
    live.expect("agent-1: ✅ completed → PR #1241");
    set_state(&a2, State::Failed, |s| {
        s.error = Some("Test timeout\nmore".into())
    });
    live.expect("Test timeout");
    let code = live.wait();
    live.rest();
    let lines = live
        .seen
        .iter()
        .map(|l| without_duration(&untimed(l)))
        .collect();
    (lines, code)
}

const EXPECTED: [&str; 9] = [
    "agent-1: pending",
    "agent-2: pending",
    "agent-1: started",
    "agent-1: Analyzing codebase (10%)",
    "agent-2: started",
    "agent-1: Implementing feature (45%)",
    "agent-2: 20%",
    "agent-1: ✅ completed → PR #1241",
    "agent-2: ❌ failed: Test timeout",
];

#[test]
fn events_arrive_in_order_and_until_done_exits_below_the_threshold() {
    let fx = Fixture::new();
    let (lines, code) = two_tasks_scenario(&fx, |_| {});
    assert_eq!(lines, EXPECTED);
    assert_eq!(code, 2, "1 of 2 completed is below 80%");
}

#[test]
fn forced_polling_gives_the_same_events_and_the_threshold_comes_from_the_environment() {
    let fx = Fixture::new();
    let (lines, code) = two_tasks_scenario(&fx, |c| {
        c.env("PO_WATCH_POLL", "1")
            .env("AMPLIHACK_SUCCESS_THRESHOLD", "50")
            .args(["--poll-interval", "20"]);
    });
    assert_eq!(lines, EXPECTED);
    assert_eq!(code, 1, "1 of 2 completed is at the 50% threshold");

    let fx = Fixture::new();
    let (lines, code) = two_tasks_scenario(&fx, |c| {
        c.args(["--poll", "--threshold", "60"])
            .env("PO_SUCCESS_THRESHOLD", "10");
    });
    assert_eq!(lines, EXPECTED);
    assert_eq!(code, 2, "the flag beats the environment");
}

#[test]
fn an_update_to_a_pending_task_shows_its_phase_and_progress() {
    let fx = Fixture::new();
    let dir = fx.orch("43");
    let a1 = task(&dir, 1, |_| {});
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["43", "--events", "--utc"]);
        c
    });
    assert_eq!(untimed(&live.next("the first reading")), "agent-1: pending");
    po_status_set(&a1, &["--phase", "Waiting for wave 1", "--progress", "5"]);
    assert_eq!(
        untimed(&live.next("the update")),
        "agent-1: pending: Waiting for wave 1 (5%)"
    );
    set_state(&a1, State::Pending, |s| {
        s.attempt = 2;
        s.phase = Some("Retrying".into());
        s.progress_percentage = None;
    });
    assert_eq!(
        untimed(&live.next("the retry")),
        "agent-1: pending (attempt 2): Retrying"
    );
    live.kill();
}

#[test]
fn a_job_waiting_in_slurms_queue_is_queued_with_its_reason_then_starts_on_its_node() {
    let fx = Fixture::new();
    let dir = fx.orch("44");
    let a1 = task(&dir, 1, |_| {});
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["44", "--events", "--utc", "--json"]);
        c
    });
    live.next("the first reading");
    // What the Slurm launcher writes while the job waits, then what the
    // supervisor writes when it starts on its node.
    set_state(&a1, State::Pending, |s| {
        s.extra.insert("launcher".into(), "slurm".into());
        s.extra.insert("job_id".into(), 56.into());
        s.extra.insert("queued".into(), "Priority".into());
    });
    let queued: serde_json::Value = serde_json::from_str(&live.next("queued")).unwrap();
    assert_eq!(queued["event"], "queued");
    assert_eq!(queued["text"], "queued: Priority (job 56)");
    assert_eq!(queued["queued"], "Priority");
    let _held = store::hold_liveness(&a1).unwrap().unwrap();
    set_state(&a1, State::InProgress, |s| {
        s.start_time = Some(ago(0));
        s.extra.insert("queued".into(), serde_json::Value::Null);
        s.extra.insert("node".into(), "n07".into());
    });
    let started: serde_json::Value = serde_json::from_str(&live.next("started")).unwrap();
    assert_eq!(started["event"], "started");
    assert_eq!(started["text"], "started on n07");
    assert_eq!(started["node"], "n07");
    assert_eq!(started["queued"], serde_json::Value::Null);
    live.kill();
}

#[test]
fn until_done_on_a_finished_orchestration_prints_each_task_once_and_exits_0() {
    let fx = Fixture::new();
    let dir = fx.orch("11");
    for n in 1..=3 {
        task(&dir, n, |s| {
            s.status = State::Completed;
            s.start_time = Some(ago(765));
            s.completion_time = Some(ago(0));
        });
    }
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["11", "--events", "--until-done"]);
        c
    });
    assert_eq!(live.wait(), 0);
    let lines: Vec<String> = live.rest().iter().map(|l| untimed(l)).collect();
    assert_eq!(
        lines,
        [
            "agent-1: ✅ completed (12m 45s)",
            "agent-2: ✅ completed (12m 45s)",
            "agent-3: ✅ completed (12m 45s)"
        ]
    );
}

#[test]
fn json_events_are_json_lines_with_stable_fields() {
    let fx = Fixture::new();
    let dir = fx.orch("12");
    let a1 = task(&dir, 1, |_| {});
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["12", "--events", "--json", "--until-done"]);
        c
    });
    let first: serde_json::Value = serde_json::from_str(&live.next("initial event")).unwrap();
    assert_eq!(first["event"], "pending");
    let _lock = store::hold_liveness(&a1).unwrap().unwrap();
    set_state(&a1, State::InProgress, |s| s.start_time = Some(ago(0)));
    po_status_set(&a1, &["--phase", "Running tests", "--progress", "75"]);
    live.expect("Running tests");
    set_state(&a1, State::Completed, |s| s.pr_number = Some(7));
    assert_eq!(live.wait(), 0);
    live.rest();
    let events: Vec<serde_json::Value> = live
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for e in &events {
        for key in [
            "time",
            "orchestration",
            "agent_id",
            "label",
            "event",
            "text",
            "state",
            "stalled",
            "orphaned",
            "phase",
            "progress",
            "pr_number",
            "file",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert_eq!(e["agent_id"], "agent-1");
        assert_eq!(e["orchestration"], "12");
    }
    let progress = events.iter().find(|e| e["event"] == "progress").unwrap();
    assert_eq!(progress["phase"], "Running tests");
    assert_eq!(progress["progress"], 75);
    assert_eq!(progress["state"], "in_progress");
    let done = events.last().unwrap();
    assert_eq!(done["event"], "completed");
    assert_eq!(done["pr_number"], 7);
    assert_eq!(done["stalled"], false);
    assert!(done["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_quiet_task_becomes_stalled_without_any_file_event_and_recovers() {
    let fx = Fixture::new();
    let dir = fx.orch("13");
    let a1 = task(&dir, 1, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(0));
        s.log_file = Some(dir.join("no-such.log"));
    });
    let _lock = store::hold_liveness(&a1).unwrap().unwrap();
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["13", "--events", "--until-done", "--stall-after", "1"]);
        c
    });
    // Usually first seen running, then stalled by the timer alone; on a very
    // slow start it may already be stalled when first read.
    let first = untimed(&live.next("the initial state"));
    let stalled = if first == "agent-1: in progress" {
        untimed(&live.expect("agent-1: ⚠️ stalled"))
    } else {
        first
    };
    assert!(stalled.starts_with("agent-1: ⚠️ stalled"), "{stalled}");
    assert!(stalled.contains("no-such.log"), "{stalled}");
    po_status_set(&a1, &["--phase", "Running tests", "--progress", "50"]);
    live.expect("agent-1: Running tests (50%)");
    set_state(&a1, State::Completed, |_| {});
    assert_eq!(live.wait(), 0);
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < HANG_GUARD, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_task_whose_runner_dies_is_reported_orphaned() {
    let fx = Fixture::new();
    let dir = fx.orch("14");
    let a1 = task(&dir, 1, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(0));
        s.phase = Some("Working".into());
    });
    let lock = dir.join("agent-1.live.lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_until("flock(1) to hold the lock", || store::is_live(&a1));
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["14", "--events"]);
        c
    });
    assert_eq!(
        untimed(&live.next("initial state")),
        "agent-1: Working (0%)"
    );
    let pgid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = holder.wait();
    let line = live.next("the orphaned event");
    assert!(untimed(&line).starts_with("agent-1: ⚠️ orphaned"), "{line}");
    live.kill();
}

#[test]
fn follow_prints_a_new_snapshot_per_change_off_a_terminal() {
    let fx = Fixture::new();
    let dir = fx.orch("15");
    let a1 = task(&dir, 1, |_| {});
    let _lock = store::hold_liveness(&a1).unwrap().unwrap();
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["15", "--follow", "--until-done"]);
        c
    });
    live.expect("Orchestration 15");
    live.expect("agent-1");
    set_state(&a1, State::InProgress, |s| s.start_time = Some(ago(0)));
    po_status_set(&a1, &["--phase", "Compiling", "--progress", "30"]);
    let row = live.expect("Compiling");
    assert!(row.contains("in_progress") && row.contains("30%"), "{row}");
    set_state(&a1, State::Completed, |s| s.pr_number = Some(99));
    let row = live.expect("#99");
    assert!(row.contains("completed"), "{row}");
    assert_eq!(live.wait(), 0);
    let all = live.seen.join("\n");
    assert!(!all.contains('\x1b'), "no screen control off a terminal");
    assert!(all.matches("Orchestration 15").count() >= 3, "{all}");
}

#[test]
fn events_wait_for_an_orchestration_that_does_not_exist_yet() {
    let fx = Fixture::new();
    let mut cmd = fx.watch();
    cmd.args(["later", "--events", "--until-done"]);
    let mut live = Live::spawn(cmd);
    std::thread::sleep(Duration::from_millis(100));
    let dir = fx.orch("later");
    task(&dir, 1, |s| {
        s.status = State::Completed;
        s.pr_number = Some(5);
    });
    assert_eq!(live.wait(), 0);
    live.rest();
    let lines: Vec<String> = live.seen.iter().map(|l| untimed(l)).collect();
    assert_eq!(lines, ["agent-1: ✅ completed → PR #5"]);
}

#[test]
fn several_orchestrations_are_watched_at_once_with_their_ids() {
    let fx = Fixture::new();
    let a = fx.orch("a");
    let a1 = task(&a, 1, |_| {});
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["--events", "--until-done"]);
        c
    });
    live.expect("a/agent-1: pending");
    let b = fx.orch("b");
    let b1 = task(&b, 1, |_| {});
    live.expect("b/agent-1: pending");
    set_state(&a1, State::Completed, |_| {});
    live.expect("a/agent-1: ✅ completed");
    set_state(&b1, State::Completed, |_| {});
    live.expect("b/agent-1: ✅ completed");
    assert_eq!(live.wait(), 0);
}

#[test]
fn po_watch_never_modifies_a_file() {
    let fx = Fixture::new();
    let done = fx.orch("done");
    task(&done, 1, |s| s.status = State::Completed);
    task(&done, 2, |s| s.status = State::Failed);
    let mixed = fx.orch("mixed");
    task(&mixed, 1, |s| {
        s.status = State::InProgress;
        s.last_update = Some(ago(3600));
    });
    let with_lock = task(&mixed, 2, |s| s.status = State::InProgress);
    // An orphan's liveness lock file exists (its runner died); agent-1 has none.
    std::fs::write(store::liveness_path(&with_lock), "").unwrap();
    std::fs::write(mixed.join("agent-3.status.json"), "{ half").unwrap();
    let before = fingerprint(&fx.root);

    for args in [
        vec![],
        vec!["--json"],
        vec!["mixed", "--stall-after", "1"],
        vec!["done", "--events", "--until-done"],
        vec!["done", "--follow", "--until-done", "--json"],
    ] {
        let out = fx.watch().args(&args).output().unwrap();
        assert!(out.status.code().is_some(), "{args:?}");
    }
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["--events", "--stall-after", "1"]);
        c
    });
    live.expect("mixed/agent-3: ⚠️ unreadable");
    live.kill();

    assert_eq!(
        before,
        fingerprint(&fx.root),
        "po-watch changed the runtime dir"
    );
    assert!(!store::liveness_path(&mixed.join("agent-1.status.json")).exists());
}

#[test]
fn follow_redraws_in_place_on_a_terminal() {
    engines::require(
        "script",
        &["--version"],
        "needs script(1) (apt-get install bsdutils)",
    );
    let fx = Fixture::new();
    let dir = fx.orch("16");
    task(&dir, 1, |s| s.status = State::Completed);
    let cmd = format!(
        "{} 16 --follow --until-done",
        env!("CARGO_BIN_EXE_po-watch")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("PO_RUNTIME_DIR", &fx.root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("\x1b[H\x1b[2J"),
        "home and clear first: {text:?}"
    );
    assert!(
        text.contains("agent-1") && text.contains("completed"),
        "{text:?}"
    );
}

#[test]
fn follows_a_real_po_spawn_run_to_the_same_exit_code() {
    let fx = Fixture::new();
    let repo = fx.tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::write(
        repo.join("tasks.md"),
        "- [ ] First task\n- [ ] Second task\n- [ ] Third task\n",
    )
    .unwrap();
    let agent = repo.join("agent.sh");
    std::fs::write(
        &agent,
        "#!/bin/sh\n\
         po-status set --phase Analyzing --progress 10\n\
         sleep 0.3\n\
         po-status set --phase Implementing --progress 60\n\
         sleep 0.3\n\
         [ \"$PO_AGENT_ID\" = agent-3 ] && { echo boom >&2; exit 3; }\n\
         exit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_po-status")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let tool = |name: &str| {
        let mut c = Command::new(bin_dir.join(name));
        c.current_dir(&repo)
            .env("PATH", &path)
            .env("PO_RUNTIME_DIR", &fx.root)
            .env_remove("PO_SUCCESS_THRESHOLD")
            .env_remove("AMPLIHACK_SUCCESS_THRESHOLD");
        c
    };
    let parsed = tool("po-parse")
        .args(["tasks.md", "--id", "demo"])
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{parsed:?}");

    let mut watch = fx.watch();
    watch.args(["demo", "--events", "--until-done"]);
    let mut live = Live::spawn(watch);
    for n in 1..=3 {
        live.expect(&format!("agent-{n}: pending"));
    }
    let spawn = tool("po-spawn")
        .args([
            "--id",
            "demo",
            "--isolation",
            "none",
            "--no-pr",
            "--agent-cmd",
        ])
        .arg(&agent)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(spawn.code(), Some(2), "2 of 3 is below 80%");
    assert_eq!(live.wait(), 2, "po-watch ends with po-spawn's code");
    live.rest();
    let lines: Vec<String> = live.seen.iter().map(|l| untimed(l)).collect();
    for n in 1..=3 {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("agent-{n}: ")))
            .collect();
        let at = |needle: &str| mine.iter().position(|l| l.contains(needle));
        // Progress lines come before the end (a very slow reader may see two
        // quick updates as one: events are changes between readings).
        let implementing = at("Implementing (60%)").unwrap_or(0);
        let last = mine.last().unwrap();
        if n == 3 {
            assert!(last.starts_with("agent-3: ❌ failed"), "{last}");
            assert!(last.contains("boom") || last.contains("status 3"), "{last}");
        } else {
            assert!(
                last.starts_with(&format!("agent-{n}: ✅ completed")),
                "{last}"
            );
        }
        assert!(implementing < mine.len() - 1, "{mine:#?}");
        assert!(mine.iter().all(|l| !l.contains("orphaned")), "{mine:#?}");
    }
}

/// With a budget, `--events` says when the spend moves, as a line and as JSON.
#[test]
fn events_tell_the_spend_against_the_budget() {
    let fx = Fixture::new();
    let (dir, files) = spending(&fx, "22");
    set_budget(&dir, 0.05);
    let mut live = Live::spawn({
        let mut c = fx.watch();
        c.args(["22", "--events", "--until-done", "--utc"]);
        c
    });
    let first = live.expect("💰");
    assert!(
        first.ends_with(
            "] 22: 💰 spent $0.0168 + $0.0100 running of $0.0500 budget (1 task reported no cost)"
        ),
        "{first}"
    );
    // The running agent reports more: no line of its own for that.
    po_status_set(&files[1], &["--cost-usd", "0.02", "--phase", "Testing"]);
    live.expect("Testing");
    set_state(&files[1], State::Completed, |s| {
        s.metrics.cost_usd = Some(0.04)
    });
    let reached = live.expect("💰");
    assert!(
        reached.contains("spent $0.0568 of $0.0500 budget — reached"),
        "{reached}"
    );
    assert_eq!(live.wait(), 0);
    let spend_lines = live.seen.iter().filter(|l| l.contains("💰")).count();
    assert_eq!(spend_lines, 2, "{:#?}", live.seen);

    let (json, _) = {
        let out = fx
            .watch()
            .args(["22", "--events", "--json", "--until-done"])
            .output()
            .unwrap();
        (String::from_utf8(out.stdout).unwrap(), out.status)
    };
    let spend: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "spend")
        .collect();
    assert_eq!(spend.len(), 1, "{json}");
    assert_eq!(spend[0]["agent_id"], serde_json::Value::Null);
    assert_eq!(spend[0]["spent_usd"], 0.0568);
    assert_eq!(spend[0]["budget_usd"], 0.05);
}
