//! po-watch snapshots: the table, JSON, bad files, inferred states, colour.

use crate::engines;
use crate::watch_support as support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use po::protocol::State;
use support::*;

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// One task in every state, with a PR, costs and long text.
fn every_state(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.orch("1234");
    task(&dir, 1, |s| {
        s.status = State::Completed;
        s.start_time = Some(ago(900));
        s.completion_time = Some(ago(135));
        s.pr_number = Some(1241);
        s.branch = Some("feat/issue-1235-agent-1".into());
        s.phase = Some("Creating PR".into());
        s.progress_percentage = Some(100);
        s.metrics.cost_usd = Some(0.42);
        s.metrics.duration_seconds = Some(765.0);
    });
    task(&dir, 2, |s| {
        s.status = State::Failed;
        s.error = Some("Test timeout".into());
        s.metrics.cost_usd = Some(1.10);
    });
    task(&dir, 3, |s| s.status = State::Pending);
    task(&dir, 4, |s| {
        s.status = State::TimedOut;
        s.task_id = Some("task-004-users".into());
    });
    task(&dir, 5, |s| s.status = State::Cancelled);
    task(&dir, 6, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(60));
        s.phase = Some(
            "Implementing the feature with a phase description far too long for the column".into(),
        );
        s.branch = Some("feat/issue-1236-agent-6-with-a-branch-name-that-is-very-long".into());
        s.progress_percentage = Some(45);
    });
    dir
}

fn row<'a>(table: &'a str, label: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no row for {label} in:\n{table}"))
}

#[test]
fn table_shows_every_state_pr_and_cost_within_80_columns() {
    let fx = Fixture::new();
    every_state(&fx);
    let (code, out, err) = run(fx.watch().arg("1234"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Orchestration 1234: Orchestration 1234 title"));
    assert!(out.contains("AGENT") && out.contains("BRANCH") && out.contains("COST"));
    let r1 = row(&out, "agent-1");
    assert!(r1.contains("completed") && r1.contains("#1241") && r1.contains("$0.42"));
    assert!(r1.contains("12m 45s") && r1.contains("100%"));
    assert!(row(&out, "agent-2").contains("failed"));
    assert!(row(&out, "agent-2").contains("$1.10"));
    assert!(row(&out, "agent-3").contains("pending"));
    // A manifest task is labelled by its task id.
    assert!(row(&out, "task-004-users").contains("timed_out"));
    assert!(row(&out, "agent-5").contains("cancelled"));
    // Running with nobody holding its liveness lock: orphaned.
    let r6 = row(&out, "agent-6");
    assert!(r6.contains("orphaned") && r6.contains("45%"));
    assert!(r6.contains("…"), "long phase and branch are cut: {r6}");
    assert!(out.contains("6 tasks: 1 pending, 1 in_progress, 1 completed, 1 failed,"));
    assert!(out.contains("cost $1.52"), "{out}");
    for l in out.lines().filter(|l| !l.contains('/')) {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l:?}");
    }
    assert!(!out.contains('\x1b'), "no escapes when not on a terminal");
}

#[test]
fn task_text_cannot_send_escapes_to_the_terminal() {
    let fx = Fixture::new();
    let dir = fx.orch("7");
    task(&dir, 1, |s| {
        s.status = State::Pending;
        s.phase = Some("\x1b]0;pwned\x07\x1b[2J".into());
    });
    let (_, out, _) = run(fx.watch().arg("7"));
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
}

#[test]
fn garbage_and_half_written_files_are_named_and_the_others_still_show() {
    let fx = Fixture::new();
    let dir = fx.orch("9");
    task(&dir, 1, |s| s.status = State::Completed);
    std::fs::write(
        dir.join("agent-2.status.json"),
        "{\"agent_id\": \"agent-2\", \"sta",
    )
    .unwrap();
    std::fs::write(dir.join("agent-3.status.json"), [0xff, 0x00, 0x13]).unwrap();
    task(&dir, 4, |s| s.status = State::Failed);
    let (code, out, err) = run(fx.watch().arg("9"));
    assert_eq!(code, 0, "some files were readable: {err}");
    assert!(row(&out, "agent-1").contains("completed"));
    assert!(row(&out, "agent-4").contains("failed"));
    let r2 = row(&out, "agent-2");
    assert!(
        r2.contains("unreadable") && r2.contains("agent-2.status.json"),
        "{r2}"
    );
    assert!(row(&out, "agent-3").contains("unreadable"));
    let note = dir.join("agent-2.status.json").display().to_string();
    assert!(
        out.contains(&format!("! agent-2 unreadable: {note}")),
        "{out}"
    );
    assert!(out.contains("EOF while parsing"), "{out}");
    assert!(out.contains("2 unreadable"), "{out}");

    // JSON names them too, and parses.
    let (code, json, _) = run(fx.watch().args(["9", "--json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let o = &v["orchestrations"][0];
    assert_eq!(o["tasks"].as_array().unwrap().len(), 2);
    let bad = o["unreadable"].as_array().unwrap();
    assert_eq!(bad.len(), 2);
    assert!(
        bad[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("agent-2.status.json")
    );
    assert!(bad[0]["problem"].as_str().unwrap().contains("EOF"));
}

#[test]
fn nothing_readable_exits_9_after_showing_the_files() {
    let fx = Fixture::new();
    let dir = fx.orch("5");
    std::fs::write(dir.join("agent-1.status.json"), "not json").unwrap();
    let (code, out, err) = run(fx.watch().arg("5"));
    assert_eq!(code, 9, "{out}{err}");
    assert!(out.contains("agent-1.status.json"));
    assert!(err.contains("failed to read any status file"));
}

#[test]
fn until_done_without_follow_or_events_is_a_usage_error() {
    let fx = Fixture::new();
    fx.orch("1");
    let (code, _, err) = run(fx.watch().args(["1", "--until-done"]));
    assert_eq!(code, 64);
    assert!(err.contains("--follow or --events"), "{err}");
    let (code, _, _) = run(fx.watch().args(["1", "--threshold", "101"]));
    assert_eq!(code, 64);
}

#[test]
fn an_unknown_id_is_a_usage_error_for_a_snapshot() {
    let fx = Fixture::new();
    let (code, _, err) = run(fx.watch().arg("nope"));
    assert_eq!(code, 64);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn orphaned_unless_a_live_process_holds_the_liveness_lock() {
    let fx = Fixture::new();
    let dir = fx.orch("3");
    let held = task(&dir, 1, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(5));
    });
    task(&dir, 2, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(5));
        s.log_file = Some("/var/log/agent-2.log".into());
    });
    // flock(1) in another process holds agent-1's liveness lock.
    let lock = dir.join("agent-1.live.lock");
    let ready = dir.join("ready");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", "touch \"$0\"; sleep 60"])
        .arg(&ready)
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < HANG_GUARD, "flock(1) did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&ready).unwrap();
    assert!(po::protocol::store::is_live(&held));

    let (code, out, _) = run(fx.watch().arg("3"));
    // The whole group: sleep inherited the locked descriptor from flock(1).
    let pgid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = holder.wait();
    let start = std::time::Instant::now();
    while po::protocol::store::is_live(&held) {
        assert!(
            start.elapsed() < HANG_GUARD,
            "the killed holder kept its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(code, 0);
    assert!(row(&out, "agent-1").contains("in_progress"), "{out}");
    assert!(!row(&out, "agent-1").contains("orphaned"), "{out}");
    assert!(row(&out, "agent-2").contains("orphaned"), "{out}");
    assert!(out.contains("! agent-2 orphaned"), "{out}");
    assert!(
        out.contains("see /var/log/agent-2.log"),
        "the log to look at: {out}"
    );

    // Once the holder is gone, agent-1 is orphaned too.
    let (_, out, _) = run(fx.watch().arg("3"));
    assert!(row(&out, "agent-1").contains("orphaned"), "{out}");
}

#[test]
fn stalled_after_the_window_without_output_or_update() {
    let fx = Fixture::new();
    let dir = fx.orch("8");
    let logs = fx.logs();
    let quiet_log = logs.join("agent-1.log");
    std::fs::write(&quiet_log, "old output\n").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&quiet_log)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let busy_log = logs.join("agent-2.log");
    std::fs::write(&busy_log, "fresh output\n").unwrap();
    for (n, log) in [(1, &quiet_log), (2, &busy_log)] {
        let path = task(&dir, n, |s| {
            s.status = State::InProgress;
            s.start_time = Some(ago(900));
            s.last_update = Some(ago(600));
            s.log_file = Some(log.clone());
        });
        // Both are really running (their liveness locks are held).
        std::mem::forget(po::protocol::store::hold_liveness(&path).unwrap().unwrap());
    }
    // Locks held by this test process: a child process must see them as live,
    // and po-watch is one.
    let (_, out, _) = run(fx.watch().args(["8", "--stall-after", "60"]));
    assert!(row(&out, "agent-1").contains("stalled"), "{out}");
    assert!(row(&out, "agent-2").contains("in_progress"), "{out}");
    assert!(
        out.contains("! agent-1 stalled: no output or status update for 10m"),
        "{out}"
    );
    assert!(
        out.contains(&format!("see {}", quiet_log.display())),
        "{out}"
    );

    let (_, out, _) = run(fx.watch().args(["8", "--stall-after", "3600"]));
    assert!(row(&out, "agent-1").contains("in_progress"), "{out}");

    let (_, json, _) = run(fx.watch().args(["8", "--stall-after", "60", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let t = &v["orchestrations"][0]["tasks"];
    assert_eq!(t[0]["stalled"], true);
    assert_eq!(t[0]["orphaned"], false);
    assert_eq!(t[1]["stalled"], false);
    assert_eq!(v["orchestrations"][0]["totals"]["stalled"], 1);
}

#[test]
fn no_argument_lists_every_orchestration_newest_first() {
    let fx = Fixture::new();
    let now = std::time::SystemTime::now();
    for (id, age) in [("old", 300), ("newest", 0), ("middle", 100)] {
        let dir = fx.orch(id);
        task(&dir, 1, |s| s.status = State::Completed);
        std::fs::File::options()
            .write(true)
            .open(dir.join("orchestration.json"))
            .unwrap()
            .set_modified(now - Duration::from_secs(age))
            .unwrap();
    }
    let (code, out, _) = run(&mut fx.watch());
    assert_eq!(code, 0);
    let order: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Orchestration "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(order, ["newest", "middle", "old"], "{out}");

    let (_, json, _) = run(fx.watch().arg("--json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = v["orchestrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["newest", "middle", "old"]);
}

#[test]
fn an_empty_runtime_says_so_and_succeeds() {
    let fx = Fixture::new();
    let (code, out, _) = run(&mut fx.watch());
    assert_eq!(code, 0);
    assert_eq!(out, "No orchestrations yet.\n");
}

/// Run po-watch on a pseudo-terminal (`script(1)`), return what it printed.
fn on_a_tty(fx: &Fixture, no_color: Option<&str>) -> String {
    let cmd = format!("{} 1234", env!("CARGO_BIN_EXE_po-watch"));
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("PO_RUNTIME_DIR", &fx.root)
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    engines::require(
        "script",
        &["--version"],
        "needs script(1) (apt-get install bsdutils)",
    );
    let fx = Fixture::new();
    every_state(&fx);
    let coloured = on_a_tty(&fx, None);
    assert!(coloured.contains("\x1b[32mcompleted"), "{coloured:?}");
    let plain = on_a_tty(&fx, Some("1"));
    assert!(plain.contains("completed"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
}

#[test]
fn a_wide_terminal_gets_wider_columns() {
    let fx = Fixture::new();
    every_state(&fx);
    let cmd = format!("stty cols 132; {} 1234", env!("CARGO_BIN_EXE_po-watch"));
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("PO_RUNTIME_DIR", &fx.root)
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(
        widest > 80 && widest <= 132,
        "widest line {widest}:\n{text}"
    );
    // The room goes to the columns that were cut short.
    let shown = "feat/issue-1236-agent-6-with-a-branc";
    assert!(text.contains(shown), "{text}");

    // Off a terminal the table keeps to 80 columns.
    let (_, narrow, _) = run(fx.watch().arg("1234").env_remove("COLUMNS"));
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    assert!(!narrow.contains(shown), "{narrow}");
}

#[test]
fn a_completed_task_without_a_reported_phase_does_not_show_running() {
    let fx = Fixture::new();
    let dir = fx.orch("77");
    // What the runner leaves when the agent never called `po-status set`.
    for (n, state) in [(1, State::Completed), (2, State::Failed)] {
        task(&dir, n, |s| {
            s.status = state;
            s.phase = Some("running".into());
            s.start_time = Some(ago(120));
            s.completion_time = Some(ago(0));
        });
    }
    let (code, out, err) = run(fx.watch().arg("77"));
    assert_eq!(code, 0, "{err}");
    let r1 = row(&out, "agent-1");
    assert!(!r1.contains("running"), "{out}");
    assert_eq!(r1.split_whitespace().nth(2), Some("-"), "{out}");
    // A failure keeps where it happened: while the agent was running.
    assert_eq!(
        row(&out, "agent-2").split_whitespace().nth(2),
        Some("running")
    );

    let (code, json, err) = run(fx.watch().args(["77", "--json"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let tasks = v.to_string();
    assert!(tasks.contains("\"phase\":null"), "{tasks}");
    assert!(tasks.contains("\"phase\":\"running\""), "{tasks}");
}

/// With a budget, the totals say what is spent (finished attempts) and
/// running against it; a task with tokens but no cost shows `—`, never
/// `$0.00`, and is named as not counted.
#[test]
fn a_budget_shows_spent_and_running_against_it_and_unknown_costs_as_a_dash() {
    let fx = Fixture::new();
    let (dir, _) = spending(&fx, "21");
    let (code, out, err) = run(fx.watch().arg("21"));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("budget"), "no budget yet: {out}");
    assert!(out.contains("cost $0.0268"), "{out}");
    let r3 = row(&out, "agent-3");
    assert!(r3.contains("— 7.0k tok") && !r3.contains('$'), "{r3}");
    assert!(row(&out, "agent-1").contains("$0.0168"));

    set_budget(&dir, 0.05);
    let (_, out, _) = run(fx.watch().arg("21"));
    assert!(
        out.contains("spent $0.0168 + $0.0100 running of $0.0500 budget (1 task reported no cost)"),
        "{out}"
    );
    for l in out.lines() {
        assert!(l.chars().count() <= 80, "wider than 80 columns: {l:?}");
    }

    let (_, json, _) = run(fx.watch().args(["21", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let totals = &v["orchestrations"][0]["totals"];
    assert_eq!(totals["spent_usd"], 0.0168);
    assert_eq!(totals["committed_usd"], 0.01);
    assert_eq!(totals["budget_usd"], 0.05);
    assert_eq!(totals["budget_reached"], false);
    let tasks = v["orchestrations"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["model"], "claude-opus-5-5");
    assert_eq!(tasks[2]["cost_usd"], serde_json::Value::Null);
}

/// Tasks a Slurm launcher runs: one whose job waits in the queue, one
/// running on a node, one finished there.
fn on_a_cluster(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.orch("77");
    task(&dir, 1, |s| {
        s.extra.insert("launcher".into(), "slurm".into());
        s.extra.insert("job_id".into(), 56.into());
        s.extra.insert("queued".into(), "Resources".into());
    });
    let running = task(&dir, 2, |s| {
        s.status = State::InProgress;
        s.start_time = Some(ago(30));
        s.phase = Some("Implementing".into());
        s.extra.insert("launcher".into(), "slurm".into());
        s.extra.insert("job_id".into(), 57.into());
        s.extra.insert("node".into(), "n07".into());
        s.extra.insert("queued".into(), serde_json::Value::Null);
    });
    task(&dir, 3, |s| {
        s.status = State::Completed;
        s.extra.insert("job_id".into(), 58.into());
        s.extra.insert("node".into(), "n08".into());
        // A reason left from the queue does not make a finished task queued.
        s.extra.insert("queued".into(), "Priority".into());
    });
    std::mem::forget(
        po::protocol::store::hold_liveness(&running)
            .unwrap()
            .unwrap(),
    );
    dir
}

#[test]
fn a_queued_job_shows_as_queued_with_slurms_reason_and_nodes_show() {
    let fx = Fixture::new();
    on_a_cluster(&fx);
    let (code, out, err) = run(fx.watch().arg("77"));
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().ends_with("NODE"), "{out}");
    let r1 = row(&out, "agent-1");
    assert!(
        r1.contains("queued") && r1.contains("Resources (job 56)"),
        "{r1}"
    );
    let r2 = row(&out, "agent-2");
    assert!(r2.contains("in_progress") && r2.ends_with("n07"), "{r2}");
    let r3 = row(&out, "agent-3");
    assert!(r3.contains("completed") && r3.ends_with("n08"), "{r3}");
    assert!(out.contains("1 queued"), "{out}");

    let (_, json, _) = run(fx.watch().args(["77", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let tasks = &v["orchestrations"][0]["tasks"];
    assert_eq!(tasks[0]["queued"], "Resources");
    assert_eq!(tasks[0]["runner_id"], "56");
    assert_eq!(tasks[1]["node"], "n07");
    assert_eq!(tasks[2]["queued"], serde_json::Value::Null);

    // Without a node anywhere, there is no NODE column.
    every_state(&fx);
    let (_, plain, _) = run(fx.watch().arg("1234"));
    assert!(!plain.contains("NODE"), "{plain}");
}
