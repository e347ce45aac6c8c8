//! `po-status` as agents and shell scripts use it.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use po::protocol::{AgentStatus, State, layout, store};
use predicates::prelude::*;

fn orchestration(root: &Path, id: &str, states: &[State]) -> Vec<PathBuf> {
    let dir = root.join("parallel").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    states
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let agent = format!("agent-{}", i + 1);
            let mut s = AgentStatus::new(&agent, id);
            s.status = *st;
            let p = layout::status_path(&dir, &agent);
            store::write_status(&p, &s).unwrap();
            p
        })
        .collect()
}

#[test]
fn set_reports_progress_from_the_agent_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let files = orchestration(tmp.path(), "7", &[State::InProgress]);
    cargo_bin_cmd!("po-status")
        .args(["set", "--progress", "45", "--phase", "Running tests"])
        .env("PO_STATUS_FILE", &files[0])
        .assert()
        .success()
        .stdout("");
    let s = store::read_status(&files[0]).unwrap();
    assert_eq!(s.progress_percentage, Some(45));
    assert_eq!(s.phase.as_deref(), Some("Running tests"));
    assert!(s.last_update.is_some());
}

#[test]
fn set_refuses_bad_progress_and_finished_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let files = orchestration(tmp.path(), "7", &[State::InProgress, State::Completed]);
    cargo_bin_cmd!("po-status")
        .args(["set", "--progress", "101"])
        .arg(&files[0])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("101"));
    cargo_bin_cmd!("po-status")
        .arg("set")
        .arg(&files[0])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("--progress"));

    let before = std::fs::read(&files[1]).unwrap();
    cargo_bin_cmd!("po-status")
        .args(["set", "--phase", "again"])
        .arg(&files[1])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("agent-2 is completed"));
    assert_eq!(before, std::fs::read(&files[1]).unwrap());
}

#[test]
fn get_prints_json_or_one_field() {
    let tmp = tempfile::tempdir().unwrap();
    let files = orchestration(tmp.path(), "7", &[State::Failed]);
    store::update_status(&files[0], |s| {
        s.metrics.cost_usd = Some(0.25);
        Ok(())
    })
    .unwrap();
    let out = cargo_bin_cmd!("po-status")
        .arg("get")
        .arg(&files[0])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["agent_id"], "agent-1");
    for (field, want) in [
        ("status", "failed\n"),
        ("metrics.cost_usd", "0.25\n"),
        ("pr_number", "\n"),
        ("attempt", "1\n"),
    ] {
        cargo_bin_cmd!("po-status")
            .arg("get")
            .arg(&files[0])
            .arg(field)
            .assert()
            .success()
            .stdout(want);
    }
    cargo_bin_cmd!("po-status")
        .arg("get")
        .arg(&files[0])
        .arg("nope")
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no such field"));
}

#[test]
fn ls_filters_by_state_and_names_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let files = orchestration(
        tmp.path(),
        "1234",
        &[
            State::Completed,
            State::Failed,
            State::TimedOut,
            State::Failed,
        ],
    );
    std::fs::write(tmp.path().join("parallel/1234/agent-9.status.json"), "{").unwrap();
    let out = cargo_bin_cmd!("po-status")
        .args(["ls", "1234", "--state", "failed", "--state", "timed-out"])
        .env("PO_RUNTIME_DIR", tmp.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("agent-9.status.json"))
        .get_output()
        .stdout
        .clone();
    let got: Vec<PathBuf> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    let want: Vec<PathBuf> = files[1..]
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap())
        .collect();
    assert_eq!(got, want);

    // Without a filter every task is listed, bad files included.
    cargo_bin_cmd!("po-status")
        .args(["ls", "--runtime-dir"])
        .arg(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("agent-9.status.json"))
        .stdout(predicate::function(|s: &str| s.lines().count() == 5));
}

#[test]
fn ls_of_an_unknown_id_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("po-status")
        .args(["ls", "999"])
        .env("PO_RUNTIME_DIR", tmp.path())
        .assert()
        .code(64)
        .stderr(predicate::str::contains("po-parse"));
}

/// Agents other than Claude Code report their spend; each value replaces the
/// last, and the budget counts it.
#[test]
fn set_reports_an_agents_spend() {
    let tmp = tempfile::tempdir().unwrap();
    let files = orchestration(tmp.path(), "7", &[State::InProgress]);
    cargo_bin_cmd!("po-status")
        .args(["set", "--input-tokens", "6900", "--output-tokens", "100"])
        .args(["--model", "claude-sonnet-4-5"])
        .env("PO_STATUS_FILE", &files[0])
        .assert()
        .success();
    let m = store::read_status(&files[0]).unwrap().metrics;
    assert_eq!((m.input_tokens, m.output_tokens), (Some(6900), Some(100)));
    assert_eq!(m.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(m.cost_usd, None, "no cost reported: none made up");
    cargo_bin_cmd!("po-status")
        .args(["set", "--cost-usd", "0.42"])
        .env("PO_STATUS_FILE", &files[0])
        .assert()
        .success();
    let m = store::read_status(&files[0]).unwrap().metrics;
    assert_eq!(m.cost_usd, Some(0.42));
    assert_eq!(m.input_tokens, Some(6900), "what is not given stays");

    for bad in ["-1", "NaN", "lots"] {
        cargo_bin_cmd!("po-status")
            .args(["set", &format!("--cost-usd={bad}")])
            .arg(&files[0])
            .assert()
            .code(64)
            .stderr(predicate::str::contains("--cost-usd"));
    }
    assert_eq!(
        store::read_status(&files[0]).unwrap().metrics.cost_usd,
        Some(0.42)
    );
}
