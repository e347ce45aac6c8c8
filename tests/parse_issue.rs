//! `po-parse N`: the issue source and `--create-sub-issues`, against a
//! recording fake `gh`.

mod parse_support;

use parse_support::*;
use predicates::prelude::*;
use serde_json::json;

const VIEW: [&str; 2] = ["--json", "number,title,body,url"];

/// A fake gh that knows issues 1234 (the master) and 1235 (a referenced
/// one), and files new issues numbered from 2001.
const SCRIPT: &str = r#"
case "$1 $2" in
"issue view")
  case "$3" in
  1234) cat <<'J'
{"number":1234,"title":"Add authentication system","url":"https://github.com/o/r/issues/1234",
 "body":"Intro `$(touch pwned)`\r\n\r\n- [ ] #1235\r\n- [ ] Sub-task 2: Add authorization\r\n  Depends on #1235.\r\n- [x] Sub-task 3: Done already\r\n- [ ] Sub-task 4: Write docs in `docs/`\r\n"}
J
  ;;
  1235) cat <<'J'
{"number":1235,"title":"Add authentication module","url":"https://github.com/o/r/issues/1235","body":"Use `src/auth/`."}
J
  ;;
  *) echo "GraphQL: Could not resolve to an issue with the number of $3." >&2; exit 1 ;;
  esac ;;
"issue create")
  n=$(cat "$(dirname "$0")/counter" 2>/dev/null || echo 2000)
  n=$((n+1)); echo "$n" > "$(dirname "$0")/counter"
  echo "https://github.com/o/r/issues/$n" ;;
*) echo "unexpected gh call: $*" >&2; exit 1 ;;
esac
"#;

fn view(n: &str) -> Vec<String> {
    let mut v = vec!["issue".to_string(), "view".into(), n.into()];
    v.extend(VIEW.iter().map(|s| s.to_string()));
    v
}

#[test]
fn an_issue_and_the_issues_it_references_are_read_with_gh() {
    let repo = Repo::new();
    let gh = repo.fake_gh(SCRIPT);
    let out = with_gh(repo.cmd(), &gh).arg("1234").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
    assert_eq!(orch["url"], "https://github.com/o/r/issues/1234");
    assert_eq!(orch["source"], json!({"kind": "issue", "value": "1234"}));
    assert_eq!(orch["report"]["skipped"][0]["title"], "Done already");
    assert!(!orch["body"].as_str().unwrap().contains('\r'));
    assert!(!repo.path().join("pwned").exists());
}

#[test]
fn dry_run_of_an_issue_writes_nothing() {
    let repo = Repo::new();
    let gh = repo.fake_gh(SCRIPT);
    with_gh(repo.cmd(), &gh)
        .args(["1234", "--dry-run", "--create-sub-issues"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("🚀 Parsed 3 sub-tasks from issue #1234\n")
                .and(predicate::str::contains(
                    "1. Add authentication module [#1235] (estimated complexity: ",
                ))
                .and(predicate::str::contains("📝 Would create 2 sub-issues"))
                .and(predicate::str::contains(
                    "To run: po-parse 1234 | po-spawn\n",
                )),
        );
    assert!(!repo.path().join(".claude").exists());
    assert_eq!(gh.calls(), [view("1234"), view("1235")]);
}

fn create_call(title: &str, body: &str) -> Vec<String> {
    [
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn sub_issues_are_created_once_with_the_seeds_template() {
    let repo = Repo::new();
    let gh = repo.fake_gh(SCRIPT);
    let out = with_gh(repo.cmd(), &gh)
        .args(["1234", "--create-sub-issues"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("📝 Created sub-issues: #2001, #2002"));
    let body2 = "**Master Issue**: #1234\n**Task**: Add authorization\n\n## Context\nDepends on #1235.\n\n\
                 ## Acceptance Criteria\n- Add authorization: implemented\n- Tests passing\n- Documentation updated\n\n\
                 ## Notes\nThis is part of parallel orchestration. See master issue for context.\n";
    let calls = gh.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(
        calls[2],
        create_call("[Master #1234] Add authorization", body2)
    );
    let body3 = "**Master Issue**: #1234\n**Task**: Write docs in `docs/`\n\n## Context\nSee master issue #1234.\n\n\
                 ## Acceptance Criteria\n- Write docs in `docs/`: implemented\n- Tests passing\n- Documentation updated\n\n\
                 ## Notes\nThis is part of parallel orchestration. See master issue for context.\n";
    assert_eq!(
        calls[3],
        create_call("[Master #1234] Write docs in `docs/`", body3)
    );
    assert_eq!(repo.status("1234", 1)["sub_issue"], 1235);
    assert_eq!(repo.status("1234", 2)["sub_issue"], 2001);
    assert_eq!(repo.status("1234", 2)["branch"], "feat/issue-2001-agent-2");
    assert_eq!(repo.status("1234", 3)["sub_issue"], 2002);
    assert_eq!(repo.status("1234", 3)["branch"], "feat/issue-2002-agent-3");

    // A re-run keeps the numbers and files nothing new.
    std::fs::remove_file(&gh.log).unwrap();
    with_gh(repo.cmd(), &gh)
        .args(["1234", "--create-sub-issues"])
        .assert()
        .success()
        .stderr(predicate::str::contains("none created"));
    assert_eq!(gh.calls(), [view("1234"), view("1235")]);
    assert_eq!(repo.status("1234", 2)["sub_issue"], 2001);
    assert_eq!(repo.status("1234", 3)["sub_issue"], 2002);
    assert_eq!(repo.status("1234", 3)["branch"], "feat/issue-2002-agent-3");
    with_gh(repo.cmd(), &gh)
        .args(["1234", "--create-sub-issues", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("📝 Would create 0 sub-issues"));
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
    let gh = repo
        .fake_gh("echo 'HTTP 401: Bad credentials (https://api.github.com/graphql)' >&2; exit 1");
    with_gh(repo.cmd(), &gh).arg("77").assert().code(5).stderr(
        predicate::str::contains("Bad credentials").and(predicate::str::contains("gh auth status")),
    );
    let gh = repo.fake_gh(SCRIPT);
    with_gh(repo.cmd(), &gh)
        .arg("999")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("Could not resolve"));
}
