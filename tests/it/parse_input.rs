//! `po-parse` on bad and hostile input.

use crate::parse_support;

use parse_support::*;
use predicates::prelude::*;

fn write(repo: &Repo, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = repo.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn empty_input_exits_3_saying_what_the_text_holds() {
    let repo = Repo::new();
    for (name, text, found) in [
        ("empty.md", "", "the text is empty"),
        ("blank.md", "\n  \n\t\n", "the text is empty"),
        (
            "prose.md",
            "# Title\n\nJust words.\n- a plain bullet\n",
            "1 plain bullet (under no heading that names the work, such as `## Tasks`)",
        ),
        (
            "code.md",
            "Example:\n\n```\n- [ ] not a task\n```\n\n| a |\n|---|\n| b |\n",
            "1 table; 1 fenced code block (never read)",
        ),
    ] {
        let p = write(&repo, name, text.as_bytes());
        repo.cmd().arg(&p).assert().code(3).stderr(
            predicate::str::contains(format!("no tasks found: {found}"))
                .and(predicate::str::contains(
                    "`po-parse --help` says what becomes a task",
                ))
                .and(predicate::str::contains(name)),
        );
    }
    repo.cmd()
        .arg("-")
        .write_stdin("")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("stdin"));
    assert!(!repo.path().join(".claude").exists());
}

#[test]
fn only_checked_items_is_no_tasks() {
    let repo = Repo::new();
    let p = write(&repo, "done.md", b"- [x] a\n- [X] b\n");
    repo.cmd()
        .arg(&p)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no tasks found: 2 checklist items, all checked;",
        ));
}

#[test]
fn binary_input_exits_3() {
    let repo = Repo::new();
    let p = write(
        &repo,
        "image.png",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR- [ ] x\n",
    );
    repo.cmd()
        .arg(&p)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("binary").and(predicate::str::contains("image.png")));
}

#[test]
fn invalid_utf8_exits_3() {
    let repo = Repo::new();
    let p = write(&repo, "latin1.md", b"- [ ] caf\xe9\n");
    repo.cmd().arg(&p).assert().code(3).stderr(
        predicate::str::contains("not valid UTF-8")
            .and(predicate::str::contains("offset 9"))
            .and(predicate::str::contains("latin1.md")),
    );
}

#[test]
fn crlf_line_endings_parse_like_lf() {
    let repo = Repo::new();
    let p = write(
        &repo,
        "crlf.md",
        b"# T\r\n\r\n- [ ] First task\r\n  detail line\r\n- [x] done\r\n- [ ] Second task\r\n",
    );
    repo.cmd().arg(&p).assert().success();
    // The second line goes on the first one's sentence: one title, as
    // GitHub shows it.
    assert_eq!(
        titles(&repo, "crlf"),
        ["First task detail line", "Second task"]
    );
    assert_eq!(repo.status("crlf", 1)["body"], "");
    assert!(
        !std::fs::read_to_string(repo.orchestration_dir("crlf").join("orchestration.json"))
            .unwrap()
            .contains("\\r")
    );
}

#[test]
fn a_ten_thousand_item_checklist() {
    let repo = Repo::new();
    let mut text = String::from("# Big\n\n");
    for i in 1..=10_000 {
        text.push_str(&format!("- [ ] Task number {i} in `src/mod{i}.rs`\n"));
    }
    let p = write(&repo, "big.md", text.as_bytes());
    let out = repo.cmd().arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 10_000);
    assert!(lines[9_999].ends_with("/parallel/big/agent-10000.status.json"));
    assert_eq!(
        repo.status("big", 10_000)["title"],
        "Task number 10000 in `src/mod10000.rs`"
    );
    assert_eq!(
        repo.status("big", 10_000)["files"],
        serde_json::json!(["src/mod10000.rs"])
    );
}

#[test]
fn titles_are_stored_verbatim_and_never_executed() {
    let repo = Repo::new();
    let marker = repo.path().join("pwned");
    let marker2 = repo.path().join("pwned2");
    let title = format!(
        "$(touch {}) and `touch {}`; rm -rf / #",
        marker.display(),
        marker2.display()
    );
    let p = write(&repo, "evil.md", format!("- [ ] {title}\n").as_bytes());
    repo.cmd().arg(&p).assert().success();
    assert_eq!(repo.status("evil", 1)["title"], title.as_str());
    // The dry run prints it too.
    repo.cmd()
        .arg("--dry-run")
        .arg(&p)
        .assert()
        .success()
        .stdout(predicate::str::contains(title.as_str()));
    assert!(!marker.exists(), "a title was executed");
    assert!(!marker2.exists(), "a title was executed");
    let branch = repo.status("evil", 1)["branch"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(branch, "feat/evil-agent-1");
}

#[test]
fn a_hostile_id_stays_inside_the_runtime_directory() {
    let outer = tempfile::tempdir().unwrap();
    let repo_dir = outer.path().join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    assert!(
        std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo_dir)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(repo_dir.join("plan.md"), "- [ ] a\n").unwrap();
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("po-parse");
    c.current_dir(&repo_dir)
        .env_remove("PO_RUNTIME_DIR")
        .args(["plan.md", "--id", "../../x"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "/.claude/runtime/parallel/x/agent-1.status.json",
        ));
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(outer.path()), ["repo"]);
    assert_eq!(names(&repo_dir), [".claude", ".git", "plan.md"]);
    assert_eq!(names(&repo_dir.join(".claude/runtime/parallel")), ["x"]);

    // An id with nothing usable left is a usage error.
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("po-parse");
    c.current_dir(&repo_dir)
        .env_remove("PO_RUNTIME_DIR")
        .args(["plan.md", "--id", "../"])
        .assert()
        .code(64);
}

#[test]
fn usage_errors_exit_64() {
    let repo = Repo::new();
    repo.cmd().assert().code(64);
    repo.cmd()
        .arg("no-such-file.md")
        .assert()
        .code(64)
        .stderr(predicate::str::contains("no-such-file.md"));
    repo.cmd().args(["--bogus", "x"]).assert().code(64);
}
