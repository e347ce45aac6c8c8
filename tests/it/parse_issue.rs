//! `po-parse N`: the issue source and `--create-sub-issues`, against the
//! GitHub double (which refuses labels the repository does not have).

use crate::parse_support;
use crate::support_gh;

use parse_support::*;
use predicates::prelude::*;
use serde_json::json;
use support_gh::FakeGh;

const VIEW: [&str; 2] = ["--json", "number,title,body,url"];

/// The master issue 1234: a referenced issue, a dependency, a checked item,
/// and a title that must never reach a shell.
const MASTER_BODY: &str = "Intro `$(touch pwned)`\r\n\r\n- [ ] #1235\r\n- [ ] Sub-task 2: Add \
                           authorization\r\n  Depends on #1235.\r\n- [x] Sub-task 3: Done \
                           already\r\n- [ ] Sub-task 4: Write docs in `docs/`\r\n";

/// A repository holding issues 1234 (the master) and 1235 (a referenced one);
/// the next issue gets 1236.
fn github(repo: &Repo) -> FakeGh {
    let gh = FakeGh::new(repo.path());
    gh.add_issue(1234, "Add authentication system", MASTER_BODY);
    gh.add_issue(1235, "Add authentication module", "Use `src/auth/`.");
    gh
}

/// `po-parse` with the double first on PATH.
fn parse(repo: &Repo, gh: &FakeGh) -> assert_cmd::Command {
    let mut c = repo.cmd();
    c.env_remove("PO_GH")
        .env("PATH", gh.path_env())
        .env("FAKE_GH_STATE", &gh.state)
        .env("FAKE_GH_LOG", &gh.log);
    c
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn view(n: &str) -> Vec<String> {
    let mut v = argv(&["issue", "view", n]);
    v.extend(argv(&VIEW));
    v
}

fn label_create(l: po::forge::labels::Label) -> Vec<String> {
    argv(&[
        "label",
        "create",
        l.name,
        "--force",
        "--color",
        l.color,
        "--description",
        l.description,
    ])
}

fn create_call(title: &str, body: &str) -> Vec<String> {
    argv(&[
        "issue",
        "create",
        "--title",
        title,
        "--body",
        body,
        "--label",
        "parallel-orchestration",
        "--label",
        "sub-issue",
    ])
}

#[test]
fn an_issue_and_the_issues_it_references_are_read_with_gh() {
    let repo = Repo::new();
    let gh = github(&repo);
    let out = parse(&repo, &gh).arg("1234").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.starts_with("🚀 Parsed 3 sub-tasks from issue #1234\n"),
        "{err}"
    );
    assert_eq!(gh.calls(), [view("1234"), view("1235")]);
    assert_eq!(stdout_lines(&out).len(), 3);
    assert_eq!(
        titles(&repo, "1234"),
        [
            "Add authentication module",
            "Add authorization",
            "Write docs in `docs/`"
        ]
    );
    let s1 = repo.status("1234", 1);
    assert_eq!(s1["sub_issue"], 1235);
    assert_eq!(s1["branch"], "feat/issue-1235-agent-1");
    assert_eq!(s1["body"], "Use `src/auth/`.");
    assert_eq!(s1["files"], json!(["src/auth/"]));
    let s2 = repo.status("1234", 2);
    assert_eq!(s2["depends_on"], json!(["agent-1"]));
    assert_eq!(s2["wave"], 2);
    assert_eq!(s2["branch"], "feat/issue-1234-agent-2");
    let orch = repo.orchestration("1234");
    assert_eq!(orch["master_issue"], 1234);
    assert_eq!(orch["title"], "Add authentication system");
    assert_eq!(orch["url"], "https://github.com/owner/repo/issues/1234");
    assert_eq!(orch["source"], json!({"kind": "issue", "value": "1234"}));
    assert_eq!(orch["report"]["skipped"][0]["title"], "Done already");
    assert!(!orch["body"].as_str().unwrap().contains('\r'));
    assert!(!repo.path().join("pwned").exists());
}

#[test]
fn dry_run_of_an_issue_writes_nothing() {
    let repo = Repo::new();
    let gh = github(&repo);
    parse(&repo, &gh)
        .args(["1234", "--dry-run", "--create-sub-issues"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("🚀 Parsed 3 sub-tasks from issue #1234\n")
                .and(predicate::str::contains(
                    "1. Add authentication module [#1235] (estimated complexity: ",
                ))
                .and(predicate::str::contains(
                    "📝 Would create 2 sub-issues (labels: parallel-orchestration, sub-issue)",
                ))
                .and(predicate::str::contains(
                    "To run: po-parse 1234 | po-spawn\n",
                )),
        );
    assert!(!repo.path().join(".claude").exists());
    assert_eq!(gh.calls(), [view("1234"), view("1235")]);
    assert_eq!(gh.issue_numbers(), [1234, 1235], "nothing filed");
}

#[test]
fn sub_issues_are_created_once_with_the_seeds_template_and_labels_made_first() {
    let repo = Repo::new();
    let gh = github(&repo);
    assert!(
        !gh.labels().contains(&"sub-issue".to_string()),
        "a fresh repository"
    );
    let out = parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("📝 Created sub-issues: #1236, #1237\n"),
        "{err}"
    );
    let body2 = "**Master Issue**: #1234\n**Task**: Add authorization\n\n## Context\nDepends on #1235.\n\n\
                 ## Acceptance Criteria\n- Add authorization: implemented\n- Tests passing\n- Documentation updated\n\n\
                 ## Notes\nThis is part of parallel orchestration. See master issue for context.\n";
    let body3 = "**Master Issue**: #1234\n**Task**: Write docs in `docs/`\n\n## Context\nSee master issue #1234.\n\n\
                 ## Acceptance Criteria\n- Write docs in `docs/`: implemented\n- Tests passing\n- Documentation updated\n\n\
                 ## Notes\nThis is part of parallel orchestration. See master issue for context.\n";
    use po::forge::labels::{ORCHESTRATION, SUB_ISSUE};
    assert_eq!(
        gh.calls(),
        [
            view("1234"),
            view("1235"),
            label_create(ORCHESTRATION),
            label_create(SUB_ISSUE),
            create_call("[Master #1234] Add authorization", body2),
            create_call("[Master #1234] Write docs in `docs/`", body3),
        ]
    );
    let issue = gh.issue(1236);
    assert_eq!(issue["title"], "[Master #1234] Add authorization");
    assert_eq!(issue["body"], body2);
    assert_eq!(
        issue["labels"],
        json!(["parallel-orchestration", "sub-issue"])
    );
    assert_eq!(repo.status("1234", 1)["sub_issue"], 1235);
    assert_eq!(repo.status("1234", 2)["sub_issue"], 1236);
    assert_eq!(repo.status("1234", 2)["branch"], "feat/issue-1236-agent-2");
    assert_eq!(repo.status("1234", 3)["sub_issue"], 1237);
    assert_eq!(repo.status("1234", 3)["branch"], "feat/issue-1237-agent-3");

    // A re-run keeps the numbers and files nothing new, labels included.
    std::fs::remove_file(&gh.log).unwrap();
    parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .assert()
        .success()
        .stderr(predicate::str::contains("none created"));
    assert_eq!(gh.calls(), [view("1234"), view("1235")]);
    assert_eq!(gh.issue_numbers(), [1234, 1235, 1236, 1237]);
    assert_eq!(repo.status("1234", 3)["branch"], "feat/issue-1237-agent-3");
    parse(&repo, &gh)
        .args(["1234", "--create-sub-issues", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("📝 Would create 0 sub-issues"));
}

#[test]
fn where_labels_may_not_be_created_sub_issues_are_filed_without_them() {
    let repo = Repo::new();
    let gh = github(&repo);
    gh.forbid_labels();
    let out = parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let notice = "po-parse: filing issues without the labels parallel-orchestration, sub-issue \
                  (`gh label create parallel-orchestration` was refused: HTTP 403: Resource not \
                  accessible by integration (https://api.github.com/repos/owner/repo/labels))\n";
    assert_eq!(err.matches(notice).count(), 1, "said once: {err}");
    assert!(
        err.contains("📝 Created sub-issues: #1236, #1237\n"),
        "{err}"
    );
    let calls = gh.calls();
    assert_eq!(calls.len(), 5, "{calls:#?}");
    for c in &calls[3..] {
        assert_eq!(c[..2], argv(&["issue", "create"])[..]);
        assert!(!c.contains(&"--label".to_string()), "{c:?}");
    }
    assert_eq!(gh.issue(1237)["labels"], json!([]));
    assert_eq!(repo.status("1234", 3)["sub_issue"], 1237);
}

#[test]
fn a_run_of_sub_issues_prints_as_a_range() {
    let repo = Repo::new();
    let gh = FakeGh::new(repo.path());
    let items: String = (1..=10).map(|i| format!("- [ ] Sub-task {i}\n")).collect();
    gh.add_issue(1234, "Ten things", &items);
    let out = parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "🚀 Parsed 10 sub-tasks from issue #1234\n📝 Created sub-issues: #1235-#1244\n"
        ),
        "{err}"
    );
    assert_eq!(gh.issue_numbers(), (1234..=1244).collect::<Vec<u64>>());
}

#[test]
fn sub_issues_need_an_issue_source() {
    let repo = Repo::new();
    std::fs::write(repo.path().join("p.md"), "- [ ] a\n").unwrap();
    repo.cmd()
        .args(["p.md", "--create-sub-issues"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains(
            "--create-sub-issues needs a GitHub issue",
        ));
}

#[test]
fn gh_missing_exits_5() {
    let repo = Repo::new();
    // Repo::cmd points PO_GH at a program that does not exist.
    repo.cmd().arg("1234").assert().code(5).stderr(
        predicate::str::contains("gh is not installed")
            .and(predicate::str::contains("gh auth status")),
    );
}

#[test]
fn gh_failing_exits_5_with_advice() {
    let repo = Repo::new();
    let gh = github(&repo);
    parse(&repo, &gh)
        .arg("999")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "GraphQL: Could not resolve to an issue or pull request with the number of 999. \
             (repository.issue)",
        ));
    gh.bad_token();
    parse(&repo, &gh).arg("1234").assert().code(5).stderr(
        predicate::str::contains("HTTP 401: Bad credentials")
            .and(predicate::str::contains("gh auth status")),
    );
    assert!(!repo.path().join(".claude/runtime/parallel/1234").exists());
}
