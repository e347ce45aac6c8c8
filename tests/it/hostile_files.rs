//! A FIFO (or a device, or a huge file) where po expects a file that someone
//! else can create: every reader finishes, names the file and says what it
//! is, with its documented exit code; the other tasks go on. Opening a FIFO
//! for reading blocks until a writer comes, so each run has a hang guard
//! (killed with SIGKILL and failed when it expires).

use crate::serve_support;
use crate::support_spawn::{self as support, Repo, output_within, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use po::protocol::{State, store};
use serve_support::Server;

/// Only a guard against hangs: a reader that blocks on the FIFO never ends.
const GUARD: Duration = Duration::from_secs(60);

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

/// Orchestration `fifo` of two tasks: agent-1 completed, agent-2's status
/// file replaced by a FIFO. Returns agent-1's path and the FIFO's.
fn board_with_a_fifo(repo: &Repo) -> (PathBuf, PathBuf) {
    let paths = support::orchestrate(
        repo,
        "fifo",
        &[support::task("One"), support::task("Two")],
        &[],
    );
    store::update_status(&paths[0], |s| {
        s.status = State::Completed;
        s.start_time = Some(po::timefmt::now());
        s.completion_time = Some(po::timefmt::now());
        Ok(())
    })
    .unwrap();
    mkfifo(&paths[1]);
    (paths[0].clone(), paths[1].clone())
}

fn po(repo: &Repo, bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(&repo.path);
    for (k, _) in std::env::vars() {
        if k.starts_with("PO_") || k.starts_with("AMPLIHACK_") {
            c.env_remove(k);
        }
    }
    c.envs(support::git_env()).env("COLUMNS", "200");
    c
}

/// Run with the hang guard.
fn run(cmd: &mut Command) -> Output {
    let start = Instant::now();
    let out = output_within(cmd, GUARD);
    eprintln!("finished in {:?}", start.elapsed());
    out
}

/// stdout and stderr with every run of white space made one space (tables
/// wrap long messages).
fn said(out: &Output) -> String {
    let all = text(&out.stdout) + " " + &text(&out.stderr);
    all.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The run named `file` and said it is a FIFO.
fn names_the_fifo(out: &Output, file: &Path) {
    let s = said(out);
    assert!(
        s.contains(&file.display().to_string()),
        "{} is not named:\n{s}",
        file.display()
    );
    assert!(
        s.contains("it is a FIFO (named pipe), not a regular file"),
        "not said to be a FIFO:\n{s}"
    );
}

#[test]
fn po_watch_shows_a_fifo_status_file_as_unreadable_and_the_rest() {
    let repo = Repo::new();
    let (_one, fifo) = board_with_a_fifo(&repo);
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-watch")).arg("fifo"));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    names_the_fifo(&out, &fifo);
    let table = text(&out.stdout);
    assert!(table.contains("agent-1  completed"), "{table}");
    assert!(table.contains("agent-2  unreadable"), "{table}");
}

#[test]
fn po_summarize_counts_a_fifo_status_file_as_not_successful() {
    let repo = Repo::new();
    let (_one, fifo) = board_with_a_fifo(&repo);
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-summarize")).arg("fifo"));
    // One of two succeeded: below the 80 % threshold.
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    names_the_fifo(&out, &fifo);
    assert!(
        said(&out).contains("**Success Rate**: 1/2 (50%)"),
        "{}",
        said(&out)
    );
}

#[test]
fn po_status_get_and_ls_name_a_fifo_status_file() {
    let repo = Repo::new();
    let (one, fifo) = board_with_a_fifo(&repo);
    let get = run(po(&repo, env!("CARGO_BIN_EXE_po-status"))
        .arg("get")
        .arg(&fifo));
    assert_eq!(get.status.code(), Some(9), "{}", said(&get));
    names_the_fifo(&get, &fifo);
    assert!(get.stdout.is_empty());
    let field = run(po(&repo, env!("CARGO_BIN_EXE_po-status"))
        .arg("get")
        .arg(&fifo)
        .arg("status"));
    assert_eq!(field.status.code(), Some(9), "{}", said(&field));

    let ls = run(po(&repo, env!("CARGO_BIN_EXE_po-status")).args([
        "ls",
        "fifo",
        "--state",
        "completed",
    ]));
    assert_eq!(ls.status.code(), Some(0), "{}", said(&ls));
    names_the_fifo(&ls, &fifo);
    assert_eq!(text(&ls.stdout).trim(), one.display().to_string());
}

#[test]
fn po_spawn_runs_the_other_tasks_and_names_a_fifo_status_file() {
    let repo = Repo::new();
    let paths = support::orchestrate(
        &repo,
        "fifo",
        &[support::task("One"), support::task("Two")],
        &[],
    );
    mkfifo(&paths[1]);
    let out =
        run(repo
            .spawn()
            .args(["--id", "fifo", "--agent-cmd", "true", "--isolation", "none"]));
    // One of two ran and completed: below the threshold.
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    names_the_fifo(&out, &paths[1]);
    assert_eq!(support::status(&paths[0]).status, State::Completed);
}

#[test]
fn po_clean_leaves_a_task_with_a_fifo_status_file_alone_and_names_it() {
    let repo = Repo::new();
    let (_one, fifo) = board_with_a_fifo(&repo);
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-clean")).arg("fifo"));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    names_the_fifo(&out, &fifo);
    assert!(said(&out).contains("left alone"), "{}", said(&out));
}

#[test]
fn po_merge_does_not_merge_a_task_with_a_fifo_status_file_and_names_it() {
    let repo = Repo::new();
    let (_one, fifo) = board_with_a_fifo(&repo);
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-merge")).arg("fifo"));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    names_the_fifo(&out, &fifo);
    assert!(
        said(&out).contains("that task is not merged"),
        "{}",
        said(&out)
    );
}

#[test]
fn a_status_file_larger_than_the_cap_is_refused_with_the_cap_named() {
    let repo = Repo::new();
    let (one, _) = board_with_a_fifo(&repo);
    // Sparse: 65 MiB of nothing, past the 64 MiB cap on state files.
    let f = std::fs::OpenOptions::new().write(true).open(&one).unwrap();
    f.set_len(65 << 20).unwrap();
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-status"))
        .arg("get")
        .arg(&one));
    assert_eq!(out.status.code(), Some(9), "{}", said(&out));
    let s = said(&out);
    assert!(s.contains(&one.display().to_string()), "{s}");
    assert!(s.contains("it holds more than 64 MiB"), "{s}");
}

#[test]
fn po_serve_shows_a_fifo_status_file_and_a_fifo_log_and_keeps_answering() {
    let repo = Repo::new();
    let (one, _) = board_with_a_fifo(&repo);
    let root = repo.runtime();
    let logs = root.join("logs/session");
    std::fs::create_dir_all(&logs).unwrap();
    // agent-1's log is a FIFO under the root (an agent can do this to its own
    // log); a third task's status file names a FIFO outside the root.
    let log = logs.join("agent-1.log");
    mkfifo(&log);
    store::update_status(&one, |s| {
        s.log_file = Some(log.clone());
        Ok(())
    })
    .unwrap();
    let outside = repo.scratch().join("elsewhere.fifo");
    mkfifo(&outside);
    let three = repo.orch_dir("fifo").join("agent-3.status.json");
    let mut s = po::protocol::AgentStatus::new("agent-3", "fifo");
    s.title = "Three".into();
    s.log_file = Some(outside.clone());
    store::write_status(&three, &s).unwrap();

    let srv = Server::start(&root, &[], &[]);
    let board = srv.get("/o/fifo");
    assert_eq!(board.status, 200);
    let b = board.body.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(b.contains("agent-2.status.json"), "{b}");
    assert!(b.contains("it is a FIFO (named pipe)"), "{b}");

    let page = srv.get("/o/fifo/log/agent-1");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&log.display().to_string()),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("The log cannot be read: it is a FIFO (named pipe)"),
        "{}",
        page.body
    );
    let ev = srv.events("/events/log/fifo/agent-1", &[]);
    assert_eq!(ev.status, 200);
    let note = ev.next("the note about the FIFO");
    assert_eq!(note.name, "note", "{note:?}");
    assert!(note.data.contains("FIFO"), "{note:?}");

    // Outside the root: refused as outside, not opened for what it is.
    let far = srv.get("/o/fifo/log/agent-3");
    assert_eq!(far.status, 200);
    assert!(
        far.body.contains("lies outside the runtime root"),
        "{}",
        far.body
    );

    // And everything else is still answered.
    assert_eq!(srv.get("/").status, 200);
    assert_eq!(srv.get("/o/fifo").status, 200);
}

/// po-parse, run from the repository with the hang guard.
fn parse(repo: &Repo, source: &Path) -> Output {
    run(po(repo, env!("CARGO_BIN_EXE_po-parse")).arg(source))
}

#[test]
fn po_parse_refuses_a_fifo_as_a_markdown_source() {
    let repo = Repo::new();
    let md = repo.scratch().join("tasks.md");
    mkfifo(&md);
    let out = parse(&repo, &md);
    assert_eq!(out.status.code(), Some(9), "{}", said(&out));
    names_the_fifo(&out, &md);
    assert!(out.stdout.is_empty());
}

/// A cpo directory whose manifest has one task with a prompt file.
fn manifest_dir(repo: &Repo) -> PathBuf {
    let dir = repo.scratch().join("TS-0007");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"tech_spec_id": "TS-0007", "waves": [{"number": 1, "tasks": [
            {"id": "task-001", "prompt_file": "prompts/a.txt"}]}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("prompts/a.txt"), "Do the thing.\n").unwrap();
    dir
}

#[test]
fn po_parse_refuses_a_fifo_as_a_manifest() {
    let repo = Repo::new();
    let dir = manifest_dir(&repo);
    let manifest = dir.join("manifest.json");
    mkfifo(&manifest);
    for source in [&dir, &manifest] {
        let out = parse(&repo, source);
        assert_eq!(out.status.code(), Some(3), "{}", said(&out));
        let s = said(&out);
        assert!(s.contains("manifest.json"), "{s}");
        assert!(s.contains("it is a FIFO (named pipe)"), "{s}");
    }
}

#[test]
fn po_parse_refuses_a_fifo_as_a_prompt_file() {
    let repo = Repo::new();
    let dir = manifest_dir(&repo);
    let prompt = dir.join("prompts/a.txt");
    mkfifo(&prompt);
    let out = parse(&repo, &dir);
    assert!(matches!(out.status.code(), Some(3 | 9)), "{}", said(&out));
    let s = said(&out);
    assert!(s.contains("prompts/a.txt"), "{s}");
    assert!(s.contains("not a regular file"), "{s}");
}

#[test]
fn po_spawn_refuses_a_fifo_as_worktreeinclude() {
    let repo = Repo::new();
    let paths = support::orchestrate(&repo, "wti", &[support::task("One")], &[]);
    let spec = repo.path.join(".worktreeinclude");
    mkfifo(&spec);
    let out = run(repo.spawn().args(["--id", "wti", "--agent-cmd", "true"]));
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    names_the_fifo(&out, &spec);
    assert_ne!(support::status(&paths[0]).status, State::Completed);
}

#[test]
fn po_watch_looks_at_a_fifo_or_a_device_log_only_for_its_time() {
    let repo = Repo::new();
    let paths = support::orchestrate(
        &repo,
        "logs",
        &[support::task("One"), support::task("Two")],
        &[],
    );
    let fifo = repo.scratch().join("agent-1.log");
    mkfifo(&fifo);
    let mut held = Vec::new();
    for (p, log) in paths.iter().zip([fifo.as_path(), Path::new("/dev/zero")]) {
        store::update_status(p, |s| {
            s.status = State::InProgress;
            s.start_time = Some(po::timefmt::now() - chrono::Duration::seconds(600));
            s.log_file = Some(log.to_path_buf());
            Ok(())
        })
        .unwrap();
        held.push(store::hold_liveness(p).unwrap().unwrap());
    }
    let out = run(po(&repo, env!("CARGO_BIN_EXE_po-watch")).args(["logs", "--stall-after", "60"]));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // The stall check reads the log's modification time, never the log.
    let table = text(&out.stdout);
    assert!(table.contains("agent-1  in_progress"), "{table}");
    assert!(table.contains("agent-2  in_progress"), "{table}");
    drop(held);
}
