//! The bundled examples work as documented: `examples/demo.sh` (the README's
//! main command) runs the example issue to completion with the example agent,
//! the sample cpo directory runs both its waves, and `examples/Makefile`
//! drives parse, spawn, retry and summarize. The built test binaries stand in
//! for the release build (`PO_BIN_DIR`).

use crate::cpo_support;
use crate::engines;

use std::path::{Path, PathBuf};
use std::process::Command;

use cpo_support::*;
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn statuses(orch: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(orch)
        .unwrap_or_else(|e| panic!("{}: {e}", orch.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".status.json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

fn clean(c: &mut Command) -> &mut Command {
    c.env_remove("PO_RUNTIME_DIR")
        .env_remove("PO_AGENT_CMD")
        .env_remove("PO_LOG")
        .env_remove("PO_EXAMPLE_FAIL")
        .env("NO_COLOR", "1")
        .env("PO_AGENT_SLEEP", "0")
}

/// Every command of the demo's "Try" block runs in a shell where the po
/// tools are not on `PATH`: none is "not found". Commands that keep running
/// (`--follow`, the dashboard) are stopped after a moment.
fn the_commands_it_shows_run_as_printed(text: &str, home: &Path) {
    let block = text
        .split("== Try (each line runs as printed)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Try block in:\n{text}"));
    let commands: Vec<&str> = block
        .lines()
        .take_while(|l| l.starts_with("  ") && !l.starts_with("  ("))
        .map(str::trim)
        .collect();
    assert!(commands.len() >= 3, "{block}");
    let path = std::env::var("PATH").unwrap();
    let without_po: Vec<&str> = path
        .split(':')
        .filter(|d| !Path::new(d).join("po-watch").exists())
        .collect();
    for command in commands {
        let out = Command::new("timeout")
            .args(["3", "bash", "-c", command])
            .env("PATH", without_po.join(":"))
            .env("HOME", home)
            .env("PO_SERVE_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(
            out.status.code() != Some(127) && !err.contains("not found"),
            "{command}: {err}"
        );
        assert!(
            matches!(out.status.code(), Some(0) | Some(124)),
            "{command}: {:?}\n{err}",
            out.status
        );
    }
}

#[test]
fn demo_runs_every_task_of_the_example_issue_with_the_example_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("demo");
    let out = clean(&mut Command::new("bash"))
        .arg(examples().join("demo.sh"))
        .env("PO_BIN_DIR", bin_dir())
        .env("PO_DEMO_DIR", &work)
        // No credentials anywhere: `auto` must pick the example agent even
        // where `claude` is installed.
        .env_remove("PO_DEMO_AGENT")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(text.contains("== Agent: the example agent"), "{text}");
    assert!(text.contains("== Where to look"), "{text}");
    assert!(
        text.contains(&work.join("repo").display().to_string()),
        "{text}"
    );
    the_commands_it_shows_run_as_printed(&text, tmp.path());

    let repo = work.join("repo");
    let tasks = statuses(&repo.join(".claude/runtime/parallel/issue"));
    assert_eq!(tasks.len(), 5, "{tasks:?}");
    let mut written = Vec::new();
    for t in &tasks {
        assert_eq!(t["status"], "completed", "{t}");
        let branch = t["branch"].as_str().expect("branch");
        let log = git(&repo, &["log", "--format=%s", &format!("main..{branch}")]);
        assert!(
            log.lines()
                .any(|l| l.starts_with(t["agent_id"].as_str().unwrap())),
            "no commit by {} on {branch}: {log}",
            t["agent_id"]
        );
        written.extend(
            git(&repo, &["diff", "--name-only", &format!("main...{branch}")])
                .lines()
                .map(str::to_string),
        );
    }
    for file in [
        "docs/usage.md",
        "CHANGELOG.md",
        "bin/farewell.sh",
        "tests/smoke.sh",
        "docs/announcement.md",
    ] {
        assert!(
            written.iter().any(|w| w == file),
            "{file} not written: {written:?}"
        );
    }
    // "depends on task 1": the announcement runs in wave 2, on top of the usage guide.
    let announce = tasks
        .iter()
        .find(|t| t["title"].as_str().unwrap_or("").contains("announcement"))
        .expect("announcement task");
    assert_eq!(announce["wave"], 2, "{announce}");
    let branch = announce["branch"].as_str().unwrap();
    git(
        &repo,
        &["cat-file", "-e", &format!("{branch}:docs/usage.md")],
    );
}

#[test]
fn the_sample_cpo_directory_runs_both_waves_with_the_example_agent() {
    let repo = repo();
    let root = repo.path();
    let src = examples().join("cpo/TS-0042-inventory");
    let dst = root.join("parallel/TS-0042-inventory");
    for f in files_under(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        write(&dst.join(rel), &std::fs::read_to_string(&f).unwrap());
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "sample parallel dir"]);
    let agent = format!("{} {{prompt_file}}", examples().join("agent.sh").display());

    let out = cmd("cpo", root)
        .env("PO_AGENT_SLEEP", "0")
        .args(["validate", "parallel/TS-0042-inventory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = cmd("cpo", root)
        .env("PO_AGENT_SLEEP", "0")
        .args(["run", "parallel/TS-0042-inventory", "--agent-cmd", &agent])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(has_line(&text, "  Completed: 3/3 tasks"), "{text}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dst.join("report.json")).unwrap()).unwrap();
    let stock = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "task-003-stock")
        .unwrap()
        .clone();
    let branch = stock["branch"].as_str().unwrap();
    // Wave 2 saw both of wave 1's files and wrote its own.
    for f in [
        "inventory/items.md",
        "inventory/locations.md",
        "inventory/stock.md",
    ] {
        git(root, &["cat-file", "-e", &format!("{branch}:{f}")]);
    }
}

#[test]
fn the_makefile_drives_spawn_retry_and_summarize() {
    engines::require("make", &["--version"], "needs make (apt-get install make)");
    let repo = repo();
    let root = repo.path();
    let make = |target: &str, fail: Option<&str>| {
        let mut c = Command::new("make");
        clean(&mut c)
            .current_dir(root)
            .env("PATH", path_with_bins())
            .args(["-s", "-f"])
            .arg(examples().join("Makefile"))
            .arg(target);
        if let Some(f) = fail {
            c.env("PO_EXAMPLE_FAIL", f);
        }
        c.output().unwrap()
    };
    let out = make("spawn", Some("agent-3"));
    assert_ne!(out.status.code(), Some(0), "agent-3 was told to fail");
    let orch = root.join(".claude/runtime/parallel/issue");
    let failed: Vec<Value> = statuses(&orch)
        .into_iter()
        .filter(|t| t["status"] != "completed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["agent_id"], "agent-3");

    let out = make("retry", None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("agent-3.status.json"),
        "{}",
        stdout(&out)
    );
    for t in statuses(&orch) {
        assert_eq!(t["status"], "completed", "{t}");
        let want = if t["agent_id"] == "agent-3" { 2 } else { 1 };
        assert_eq!(t["attempt"], want, "{t}");
    }

    let out = make("retry", None);
    assert!(
        stdout(&out).contains("nothing to retry in issue"),
        "{}",
        stdout(&out)
    );
    let out = make("summarize", None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(orch.join("summary.json").is_file());

    let out = make("merge", None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    git(root, &["rev-parse", "--verify", "po/issue/integration"]);
    let out = make("clean", None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("pooled"), "{}", stdout(&out));
    let pool = root.join(".claude/runtime/worktrees/.pool");
    assert_eq!(
        std::fs::read_dir(pool).unwrap().count(),
        statuses(&orch).len()
    );
}
