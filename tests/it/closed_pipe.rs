//! Every tool is a good Unix filter: a reader that went away (`| head -1`)
//! ends the output quietly — no panic, no message, the work done and the exit
//! status it would have had — and a stdout that cannot be written for another
//! reason (a full disk) is an error that names the OS error once.
//!
//! Each tool gets a pipe whose read end is already closed, so every write to
//! stdout meets EPIPE, whatever the timing.

use crate::support_spawn;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use po::protocol::State;
use support_spawn::*;

const LIMIT: Duration = Duration::from_secs(120);

/// A stdout whose reader has gone.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn tool(repo: &Repo, exe: &str) -> Command {
    let mut c = Command::new(exe);
    c.current_dir(&repo.path);
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
            c.env_remove(k);
        }
    }
    c.envs(git_env());
    c
}

/// Run with stdout closed; stderr captured; hang guard.
fn run_closed(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).stdout(closed_pipe());
    let child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {LIMIT:?} (hang guard)");
        }
    }
}

/// Ended quietly with `code`: no panic, nothing about the pipe on stderr.
fn assert_quiet(out: &Output, code: i32, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    for word in ["panicked", "Broken pipe", "os error 32", "failed to write"] {
        assert!(!err.contains(word), "{what} said {word:?}: {err}");
    }
}

/// A repository with `plan.md` parsed into orchestration `plan` by po-parse
/// (stdout closed) and run by po-spawn (stdout closed).
fn parsed_and_run() -> Repo {
    let repo = Repo::new();
    let plan = repo.scratch().join("plan.md");
    let items: String = (1..=40).map(|i| format!("- [ ] Task {i}\n")).collect();
    std::fs::write(&plan, format!("# Plan\n\n{items}")).unwrap();

    let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-parse")).arg(&plan));
    assert_quiet(&out, 0, "po-parse");
    assert!(repo.orch_dir("plan").join("agent-40.status.json").is_file());

    let out = run_closed(repo.spawn().args([
        "--id",
        "plan",
        "--isolation",
        "none",
        "--max-workers",
        "8",
        "--agent-cmd",
        "true",
    ]));
    assert_quiet(&out, 0, "po-spawn");
    for n in [1, 40] {
        let s = status(&repo.orch_dir("plan").join(format!("agent-{n}.status.json")));
        assert_eq!(s.status, State::Completed, "the run went on: {s:?}");
    }
    repo
}

#[test]
fn po_parse_and_po_spawn_end_quietly_and_do_their_work() {
    let repo = parsed_and_run();
    // The dry run and --json print more than one write's worth too.
    let plan = repo.scratch().join("plan.md");
    for extra in [&["--dry-run"][..], &["--dry-run", "--json"], &["--json"]] {
        let out = run_closed(
            tool(&repo, env!("CARGO_BIN_EXE_po-parse"))
                .arg(&plan)
                .args(["--id", "again"])
                .args(extra),
        );
        assert_quiet(&out, 0, &format!("po-parse {extra:?}"));
    }
}

#[test]
fn po_watch_po_summarize_and_po_status_end_quietly() {
    let repo = parsed_and_run();
    let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-watch")).arg("plan"));
    assert_quiet(&out, 0, "po-watch");

    for format in ["markdown", "json", "junit"] {
        let out = run_closed(
            tool(&repo, env!("CARGO_BIN_EXE_po-summarize")).args(["plan", "--format", format]),
        );
        assert_quiet(&out, 0, &format!("po-summarize --format {format}"));
    }
    assert!(repo.orch_dir("plan").join("summary.json").is_file());

    let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-status")).args(["ls", "plan"]));
    assert_quiet(&out, 0, "po-status ls");
    let file = repo.orch_dir("plan").join("agent-1.status.json");
    let out = run_closed(
        tool(&repo, env!("CARGO_BIN_EXE_po-status"))
            .arg("get")
            .arg(&file),
    );
    assert_quiet(&out, 0, "po-status get");
}

#[test]
fn cpo_ends_quietly() {
    let repo = Repo::new();
    let dir = repo.path.join("parallel/TS-1-demo");
    let cpo = env!("CARGO_BIN_EXE_cpo");
    let out = run_closed(
        tool(&repo, cpo)
            .args(["init", "-t", "TS-1", "-n", "demo"])
            .arg(&dir),
    );
    assert_quiet(&out, 0, "cpo init");
    assert!(
        dir.join("manifest.json").is_file(),
        "the directory was made"
    );
    // The skeleton's prompt is a placeholder: validation reports it (exit 3).
    let validate = run_closed(tool(&repo, cpo).arg("validate").arg(&dir));
    let code = validate.status.code().unwrap();
    assert_quiet(&validate, code, "cpo validate");
    assert!(code == 0 || code == 3, "{}", text(&validate.stderr));
    let out = run_closed(tool(&repo, cpo).arg("status").arg(&dir));
    assert_quiet(&out, 0, "cpo status");
}

#[test]
fn a_full_disk_on_stdout_is_one_clear_error() {
    assert!(
        Path::new("/dev/full").exists(),
        "this test needs /dev/full, which every Linux has"
    );
    let repo = parsed_and_run();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = tool(&repo, env!("CARGO_BIN_EXE_po-summarize"))
        .arg("plan")
        .stdin(Stdio::null())
        .stdout(full)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert_eq!(
        err.trim_end(),
        "po-summarize: failed to write stdout: No space left on device (os error 28)"
    );
}

#[test]
fn po_merge_and_po_clean_end_quietly_and_do_their_work() {
    let repo = Repo::new();
    let plan = repo.scratch().join("plan.md");
    std::fs::write(&plan, "# Plan\n\n- [ ] One\n- [ ] Two\n- [ ] Three\n").unwrap();
    let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-parse")).arg(&plan));
    assert_quiet(&out, 0, "po-parse");
    let agent = repo.script(
        "commit.sh",
        "echo \"$PO_AGENT_ID\" > \"$PO_AGENT_ID.txt\" && git add -A && git commit -qm \"$PO_AGENT_ID\"\n",
    );
    let out = run_closed(
        repo.spawn()
            .args(["--id", "plan", "--agent-cmd"])
            .arg(&agent),
    );
    assert_quiet(&out, 0, "po-spawn");

    for args in [&["plan", "--dry-run"][..], &["plan", "--json"], &["plan"]] {
        let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-merge")).args(args));
        assert_quiet(&out, 0, &format!("po-merge {args:?}"));
    }
    let files = git(
        &repo.path,
        &["ls-tree", "--name-only", "po/plan/integration"],
    );
    assert_eq!(
        files.lines().filter(|f| f.starts_with("agent-")).count(),
        3,
        "{files}"
    );

    let out = run_closed(tool(&repo, env!("CARGO_BIN_EXE_po-clean")).args(["plan", "--json"]));
    assert_quiet(&out, 0, "po-clean");
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
}
