//! po-react answers a failed check: the task's agent gets the failed log
//! (fenced as data), commits a fix in its worktree, po pushes it and
//! comments; the next pass sees the check pass and does nothing; a head is
//! never answered twice; rounds, the budget and a failing agent end in a
//! person's hands. Real binaries, a real repository with a bare origin, the
//! GitHub double.

use crate::support_react::{BRANCH, World, count, text};

use po::protocol::reaction::{self, Outcome, Trigger};
use po::protocol::store;

#[test]
fn a_failed_check_gets_one_round_whose_fix_is_pushed_and_the_next_pass_does_nothing() {
    let w = World::new();
    let head = w.origin_tip();
    w.set_mode("fix");
    let before = w.gh.calls().len();
    let out = w.react(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("agent-1 PR #1: round 1 (ci_failed): pushed "),
        "{stdout}"
    );

    // The agent got the log's excerpt, fenced as data, in its worktree.
    let prompts = w.prompts();
    assert_eq!(prompts.len(), 2, "the first run and one round");
    let p = &prompts[1];
    assert!(p.contains("## CI failed on"), "{p}");
    assert!(p.contains("- CI / test (run "), "{p}");
    assert!(
        p.contains(
            "== test / Run tests\nrunning 3 tests\nassertion failed: lib.txt still has a BUG"
        ),
        "{p}"
    );
    assert!(p.contains("<<<BEGIN UNTRUSTED-DATA-"), "{p}");
    assert!(p.contains(&w.worktree().display().to_string()), "{p}");

    // po pushed the fix; GitHub has it as the new head.
    let tip = w.origin_tip();
    assert_ne!(tip, head);
    let local = crate::support_gh::git(&w.worktree(), &["rev-parse", "HEAD"]);
    assert_eq!(tip, local.trim());
    let mut view = std::process::Command::new(w.gh.program());
    w.gh.apply(&mut view);
    let view = view
        .args(["pr", "view", "1", "--json", "headRefOid"])
        .current_dir(&w.repo)
        .output()
        .unwrap();
    assert!(text(&view.stdout).contains(&tip), "{}", text(&view.stdout));

    // The round is recorded, and the pull request told.
    let rounds = w.rounds();
    assert_eq!(rounds.len(), 1);
    let r = &rounds[0];
    assert_eq!(r.round, 1);
    assert_eq!(r.triggers, [Trigger::CiFailed]);
    assert_eq!(r.head, head);
    assert_eq!(r.outcome, Outcome::Pushed);
    assert_eq!(r.pushed.as_deref(), Some(tip.as_str()));
    assert_eq!(
        r.cost_usd,
        Some(0.25),
        "the agent's own report is the round's cost"
    );
    assert_eq!(w.status().progress_percentage, Some(100));
    assert!(r.started.is_some() && r.finished.is_some());
    assert!(r.prompt_file.as_ref().unwrap().is_file());
    assert!(w.completed());
    let comments = w.gh.pr_comments(1);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].contains("round 1 of 3") && comments[0].contains("CI / test"),
        "{}",
        comments[0]
    );
    let calls = w.calls_since(before);
    assert_eq!(count(&calls, &["run", "view"]), 1, "{calls:?}");
    assert_eq!(count(&calls, &["pr", "comment"]), 1, "{calls:?}");

    // The next pass: the check passes on the new head; nothing is run.
    let before = w.gh.calls().len();
    let out = w.react(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("agent-1 PR #1: nothing to do"), "{stdout}");
    assert_eq!(w.prompts().len(), 2);
    assert_eq!(w.rounds().len(), 1);
    let calls = w.calls_since(before);
    assert_eq!(
        calls.len(),
        2,
        "a quiet pass is one pr view and one review-comment page: {calls:?}"
    );

    // po-watch and po-summarize show the round.
    let out = w.po("po-watch", &["500"]);
    assert!(
        text(&out.stdout).contains("#1 1 round"),
        "{}",
        text(&out.stdout)
    );
    let out = w.po("po-summarize", &["500"]);
    let md = std::fs::read_to_string(w.dir.join("summary.md")).unwrap();
    assert!(
        md.contains("PR #1") && md.contains("(1 round)"),
        "{md}{}",
        text(&out.stderr)
    );
}

#[test]
fn a_head_answered_without_a_commit_is_not_answered_again() {
    let w = World::new();
    w.set_mode("nothing");
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("round 1 (ci_failed): no change"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(w.rounds()[0].outcome, Outcome::NoChange);
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("nothing to do: its failed checks on this head were answered"),
        "{stdout}"
    );
    assert_eq!(w.rounds().len(), 1);
    assert_eq!(w.prompts().len(), 2);
}

#[test]
fn after_the_last_round_the_pull_request_goes_to_a_person_with_a_label_and_a_comment() {
    let w = World::new();
    w.set_mode("again");
    for round in 1..=2 {
        let out = w.react(&["--max-rounds", "2"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("round {round} (ci_failed): pushed")),
            "{}",
            text(&out.stdout)
        );
    }
    let out = w.react(&["--max-rounds", "2"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("needs a person: CI failed after 2 rounds (--max-rounds 2)"),
        "{stdout}"
    );
    assert_eq!(w.prompts().len(), 3, "no third round ran");
    assert_eq!(w.gh.pr_labels(1), ["po:needs-human"]);
    let comments = w.gh.pr_comments(1);
    let last = comments.last().unwrap();
    assert!(
        last.contains("stops here") && last.contains("Still open: CI failed"),
        "{last}"
    );
    let esc = reaction::escalation(&w.status()).unwrap();
    assert_eq!(esc.label.as_deref(), Some("po:needs-human"));
    assert_eq!(esc.triggers, [Trigger::CiFailed]);

    // Handed over: left alone, no more GitHub calls for it.
    let before = w.gh.calls().len();
    let out = w.react(&["--max-rounds", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("needs a person"));
    assert!(w.calls_since(before).is_empty());
    assert_eq!(w.gh.pr_comments(1).len(), comments.len());
    let out = w.po("po-watch", &["500"]);
    assert!(
        text(&out.stdout).contains("#1 needs a person"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_failing_agent_hands_the_pull_request_to_a_person_at_once() {
    let w = World::new();
    w.set_mode("fail");
    let head = w.origin_tip();
    let out = w.react(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("round 1 (ci_failed): agent failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("needs a person: the agent failed in round 1"),
        "{stdout}"
    );
    assert_eq!(w.rounds()[0].outcome, Outcome::AgentFailed);
    assert_eq!(w.origin_tip(), head, "nothing pushed");
    assert_eq!(w.gh.pr_labels(1), ["po:needs-human"]);
    assert!(w.completed(), "the task itself stays completed");
}

#[test]
fn a_dry_run_says_what_it_would_send_and_changes_nothing() {
    let w = World::new();
    let status = std::fs::read(w.status_file()).unwrap();
    let pulls = w.gh.snapshot()["pulls"].clone();
    let head = w.origin_tip();
    let out = w.react(&["--dry-run"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("agent-1 PR #1: would run round 1 (ci_failed) on "),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent command in a new session"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    assertion failed: lib.txt still has a BUG"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(w.status_file()).unwrap(), status);
    assert_eq!(w.gh.snapshot()["pulls"], pulls);
    assert_eq!(w.origin_tip(), head);
    assert_eq!(w.prompts().len(), 1, "no agent ran");
    assert!(!w.dir.join("prompts/agent-1.round-1.md").exists());
    for call in w.gh.calls() {
        assert!(
            !(call[0] == "pr" && ["comment", "edit"].contains(&call[1].as_str())),
            "{call:?}"
        );
    }
}

#[test]
fn a_spent_budget_starts_no_round_and_says_so() {
    let w = World::new();
    store::update_status(&w.status_file(), |s| {
        s.metrics.cost_usd = Some(3.0);
        Ok(())
    })
    .unwrap();
    let out = w.react(&["--budget-usd", "2.5"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("the orchestration's budget of $2.50 is spent ($3.00)"),
        "{stdout}"
    );
    assert_eq!(w.prompts().len(), 1, "no agent ran");
    assert!(w.rounds().is_empty());
    assert_eq!(w.gh.pr_labels(1), ["po:needs-human"]);

    // Under the budget, the round runs (and the first attempt's cost stays counted).
    let w = World::new();
    store::update_status(&w.status_file(), |s| {
        s.metrics.cost_usd = Some(1.0);
        Ok(())
    })
    .unwrap();
    w.set_mode("fix");
    let out = w.react(&["--budget-usd", "2.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(w.status().metrics.previous_cost_usd, Some(1.0));
}

#[test]
fn a_killed_pass_is_finished_by_the_next_one() {
    let w = World::new();
    w.set_mode("fix");
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // As if po-react died after the agent's commit, before its push: a
    // round left running, a commit left unpushed.
    let wt = w.worktree();
    std::fs::write(wt.join("more.txt"), "more\n").unwrap();
    crate::support_gh::git(&wt, &["add", "more.txt"]);
    crate::support_gh::git(&wt, &["commit", "-q", "-m", "more"]);
    store::update_status(&w.status_file(), |s| {
        let mut rounds = s.extra["reactions"].as_array().unwrap().clone();
        let mut r = rounds[0].clone();
        r["round"] = 2.into();
        r["outcome"] = "running".into();
        r["finished"] = serde_json::Value::Null;
        rounds.push(r);
        s.extra.insert("reactions".into(), rounds.into());
        Ok(())
    })
    .unwrap();
    let out = w.react(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("(commits an earlier round left unpushed)"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("recorded interrupted"));
    let local = crate::support_gh::git(&wt, &["rev-parse", "HEAD"]);
    assert_eq!(w.origin_tip(), local.trim());
    assert_eq!(w.rounds()[1].outcome, Outcome::Interrupted);
    let _ = BRANCH;
}

#[test]
fn follow_stops_once_every_pull_request_is_merged() {
    let w = World::new();
    w.set_mode("fix");
    w.gh.set_pr_state(1, "MERGED");
    let out = w.react(&["--follow", "--interval", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("agent-1 PR #1: merged"));
    assert_eq!(w.prompts().len(), 1);
}

#[test]
fn a_github_error_is_exit_5_and_a_busy_task_or_orchestration_is_left_alone() {
    let w = World::new();
    w.gh.fail(
        "pr view",
        "HTTP 502: Bad Gateway (https://api.github.com/graphql)",
    );
    let out = w.react(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
    assert!(
        stderr.contains("agent-1 PR #1: failed to run `gh pr view`: HTTP 502"),
        "{stderr}"
    );
    assert_eq!(w.prompts().len(), 1);
    w.gh.unfail("pr view");

    // Someone else runs the task (its liveness lock is taken): no round.
    let live = store::hold_liveness(&w.status_file()).unwrap().unwrap();
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("agent-1 PR #1: busy: another process runs this task"),
        "{}",
        text(&out.stdout)
    );
    drop(live);

    // Another po-react holds the orchestration: usage error, nothing done.
    let lock = store::lock_exclusive(&w.dir.join("react.lock")).unwrap();
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("another po-react is running on it"),
        "{}",
        text(&out.stderr)
    );
    drop(lock);
    assert_eq!(w.prompts().len(), 1);
    assert!(w.rounds().is_empty());
}

#[test]
fn a_po_react_killed_mid_round_leaves_no_agent_running_and_the_next_pass_redoes_the_round() {
    use std::time::{Duration, Instant};
    let w = World::new();
    w.set_mode("slow");
    let mut child = w.react_child(&[]);
    let pid_file = w.seen.with_extension("md.pid");
    let start = Instant::now();
    let agent: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // kill -9: no chance to record anything.
    child.kill().unwrap();
    child.wait().unwrap();
    let alive = |pid: i32| {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    assert!(alive(agent), "the agent outlives its po-react");
    assert_eq!(w.rounds()[0].outcome, Outcome::Running);

    w.set_mode("fix");
    let out = w.react(&["--grace", "1"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !alive(agent),
        "the leftover agent was ended before a new one started"
    );
    assert!(stderr.contains("recorded interrupted (ended "), "{stderr}");
    assert!(stdout.contains("round 2 (ci_failed): pushed"), "{stdout}");
    let rounds = w.rounds();
    assert_eq!(rounds[0].outcome, Outcome::Interrupted);
    assert_eq!(rounds[1].outcome, Outcome::Pushed);
}

#[test]
fn sigterm_mid_round_ends_the_agents_tree_records_the_round_interrupted_and_exits_130() {
    use std::time::{Duration, Instant};
    let w = World::new();
    w.set_mode("slow");
    let mut child = w.react_child(&[]);
    let pid_file = w.seen.with_extension("md.pid");
    let start = Instant::now();
    let agent: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !std::path::Path::new(&format!("/proc/{agent}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{agent}/stat"))
                .unwrap_or_default()
                .contains(") Z "),
        "the agent's tree was ended"
    );
    let r = &w.rounds()[0];
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(r.finished.is_some());
    assert!(
        w.gh.pr_comments(1).is_empty(),
        "nothing said about a round not done"
    );
    w.set_mode("fix");
    let out = w.react(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("round 2 (ci_failed): pushed"));
}
