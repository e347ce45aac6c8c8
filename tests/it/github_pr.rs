//! `forge::pr::open_pr`: a real push to a local bare `origin`, `gh pr create`
//! through the GitHub double (which checks the branch is on `origin`), the PR
//! recorded in the status file, idempotent retries, and failures that leave
//! the status file as it was.

use crate::support_gh;

use std::path::{Path, PathBuf};

use po::forge::{Gh, pr::open_pr};
use po::protocol::{AgentStatus, State, store};
use support_gh::{FakeGh, agent, craft, git, orchestration, repo_with_origin};

const BRANCH: &str = "feat/issue-1235-agent-1";

struct Setup {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    origin: PathBuf,
    status: PathBuf,
    base: String,
    fake: FakeGh,
}

impl Setup {
    fn gh(&self) -> Gh {
        Gh::new(None).with_program(self.fake.program())
    }

    fn open(&self, remote: &str) -> po::Result<(u64, String)> {
        open_pr(&self.status, &self.repo, remote, "main", &self.gh())
    }
}

/// A repo whose agent-1 branch holds two commits, and its status file.
fn setup(master: Option<u64>, sub_issue: Option<u64>) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, origin) = repo_with_origin(tmp.path());
    let base = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    git(&repo, &["checkout", "-q", "-b", BRANCH]);
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/login.rs"), "pub fn login() {}\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "Add the login form"]);
    std::fs::write(
        repo.join("README.md"),
        "# demo\n\nLogin: see src/login.rs\n",
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "Document login"]);
    git(&repo, &["checkout", "-q", "main"]);

    let mut a: AgentStatus = agent(1, State::Completed, 0, 765);
    a.branch = Some(BRANCH.into());
    a.sub_issue = sub_issue;
    a.title = "Add login".into();
    a.body = "Implement the login form in `src/login.rs`.".into();
    a.base_commit = Some(base.clone());
    a.metrics.lines_added = Some(3);
    a.metrics.lines_removed = Some(0);
    a.metrics.files_changed = Some(2);
    a.metrics.commits = Some(2);
    a.metrics.cost_usd = Some(0.5);
    a.metrics.turns = Some(12);
    let rt = tmp.path().join("rt");
    let orch = orchestration("1234", master.map(|m| (m, "Add authentication system")));
    let dir = craft(&rt, &orch, &[a]);
    let fake = FakeGh::new(tmp.path());
    fake.set_next_number(1240);
    Setup {
        status: dir.join("agent-1.status.json"),
        repo,
        origin,
        base,
        fake,
        _tmp: tmp,
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn ref_in(git_dir: &Path, branch: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(git_dir)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn pushes_the_branch_opens_the_pr_and_records_it() {
    let s = setup(Some(1234), Some(1235));
    let (n, url) = s.open("origin").unwrap();
    assert_eq!(
        (n, url.as_str()),
        (1240, "https://github.com/owner/repo/pull/1240")
    );

    // The branch is in the bare origin, at the agent's commit.
    let tip = git(&s.repo, &["rev-parse", BRANCH]).trim().to_string();
    assert_eq!(ref_in(&s.origin, BRANCH), Some(tip));

    let range = format!("{}..{BRANCH}", s.base);
    let log = git(&s.repo, &["log", "--oneline", "--no-decorate", &range]);
    let stat = git(&s.repo, &["diff", "--stat", &range]);
    assert_eq!(log.lines().count(), 2);
    let body = format!(
        "Closes #1235

**Master Issue**: #1234
**Task**: Add login

Implement the login form in `src/login.rs`.

## What the agent changed

Commits:

```
{log}```

Files:

```
{stat}```

## Metrics

- Agent: agent-1 (attempt 1)
- Duration: 12m 45s
- Lines: +3 −0 in 2 files, 2 commits
- Cost: $0.50
- Turns: 12

---
Orchestration ID: 1234
"
    );
    assert_eq!(
        s.fake.calls(),
        vec![argv(&[
            "pr",
            "create",
            "--head",
            BRANCH,
            "--base",
            "main",
            "--title",
            "[Master #1234] Add login",
            "--body",
            &body,
        ])]
    );

    let st = store::read_status(&s.status).unwrap();
    assert_eq!(st.pr_number, Some(1240));
    assert_eq!(
        st.pr_url.as_deref(),
        Some("https://github.com/owner/repo/pull/1240")
    );
    assert_eq!(st.status, State::Completed, "nothing else changes");
    let pr = s.fake.pull(1240);
    assert_eq!(
        (
            pr["head"].as_str(),
            pr["base"].as_str(),
            pr["state"].as_str()
        ),
        (Some(BRANCH), Some("main"), Some("OPEN"))
    );
    assert_eq!(pr["body"], body);
}

#[test]
fn a_pr_an_earlier_run_opened_but_did_not_record_is_adopted() {
    let s = setup(Some(1234), Some(1235));
    s.open("origin").unwrap();
    // The run stopped between `gh pr create` and recording the number.
    store::update_status(&s.status, |st| {
        st.pr_number = None;
        st.pr_url = None;
        Ok(())
    })
    .unwrap();
    let (n, url) = s.open("origin").unwrap();
    assert_eq!(
        (n, url.as_str()),
        (1240, "https://github.com/owner/repo/pull/1240")
    );
    assert_eq!(s.fake.pull_numbers(), [1240], "GitHub refused a second one");
    let calls = s.fake.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[1][..2], argv(&["pr", "create"])[..]);
    assert_eq!(
        calls[2],
        argv(&[
            "pr",
            "list",
            "--head",
            BRANCH,
            "--base",
            "main",
            "--state",
            "open",
            "--json",
            "number,url"
        ])
    );
    assert_eq!(store::read_status(&s.status).unwrap().pr_number, Some(1240));
}

#[test]
fn a_recorded_pr_is_returned_without_pushing_or_calling_gh() {
    let s = setup(Some(1234), Some(1235));
    let first = s.open("origin").unwrap();
    git(&s.repo, &["remote", "remove", "origin"]);
    let again = s.open("origin").unwrap();
    assert_eq!(first, again);
    assert_eq!(s.fake.calls().len(), 1, "one pr create in all");
}

#[test]
fn without_master_or_sub_issue_the_pr_has_no_prefix_and_closes_nothing() {
    let s = setup(None, None);
    s.open("origin").unwrap();
    let calls = s.fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0][7], "Add login");
    let body = &calls[0][9];
    assert!(body.starts_with("**Task**: Add login\n"), "{body}");
    assert!(!body.contains("Closes"), "{body}");
}

#[test]
fn a_failed_push_is_an_error_with_gits_reason_and_records_nothing() {
    let s = setup(Some(1234), Some(1235));
    let before = std::fs::read(&s.status).unwrap();
    let err = s.open("nowhere").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("push {BRANCH} to nowhere")),
        "{msg}"
    );
    assert!(
        msg.contains("'nowhere' does not appear to be a git repository"),
        "{msg}"
    );
    assert!(s.fake.calls().is_empty(), "no PR without a pushed branch");
    assert_eq!(std::fs::read(&s.status).unwrap(), before);
}

#[test]
fn a_failed_pr_create_is_a_gh_error_and_a_retry_picks_it_up() {
    let s = setup(Some(1234), Some(1235));
    s.fake.fail(
        "pr create",
        "HTTP 422: Validation Failed (https://api.github.com/graphql)",
    );
    let err = s.open("origin").unwrap_err();
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(err.to_string().contains("HTTP 422"), "{err}");
    assert_eq!(store::read_status(&s.status).unwrap().pr_number, None);
    assert!(ref_in(&s.origin, BRANCH).is_some(), "the push happened");

    s.fake.unfail("pr create");
    let (n, _) = s.open("origin").unwrap();
    assert_eq!(n, 1240);
    assert_eq!(s.fake.calls().len(), 2);
    assert_eq!(store::read_status(&s.status).unwrap().pr_number, Some(1240));
}

#[test]
fn a_status_without_a_branch_is_refused() {
    let s = setup(Some(1234), Some(1235));
    store::update_status(&s.status, |st| {
        st.branch = None;
        Ok(())
    })
    .unwrap();
    let err = s.open("origin").unwrap_err();
    assert!(err.to_string().contains("`branch`"), "{err}");
    assert!(s.fake.calls().is_empty());
}

#[test]
fn a_branch_without_commits_is_neither_pushed_nor_proposed() {
    let s = setup(Some(1234), Some(1235));
    git(&s.repo, &["branch", "-f", BRANCH, &s.base]);
    let err = s.open("origin").unwrap_err();
    assert!(err.to_string().contains("no commits beyond"), "{err}");
    assert!(ref_in(&s.origin, BRANCH).is_none());
    assert!(s.fake.calls().is_empty());
}

#[test]
fn a_branch_pushed_without_commits_beyond_the_base_is_refused_as_github_does() {
    // The branch is on origin, but at the base: GitHub's own refusal reaches
    // the caller as a gh error (exit 5).
    let s = setup(Some(1234), Some(1235));
    git(
        &s.repo,
        &[
            "push",
            "-q",
            "origin",
            &format!("{}:refs/heads/{BRANCH}", s.base),
        ],
    );
    let gh = s.gh().in_dir(&s.repo);
    let err = gh.pr_create(BRANCH, "main", "t", "b").unwrap_err();
    assert_eq!(err.exit_code(), 5);
    assert!(
        err.to_string().contains(&format!(
            "pull request create failed: GraphQL: No commits between main and {BRANCH} \
             (createPullRequest)"
        )),
        "{err}"
    );
    assert!(s.fake.pull_numbers().is_empty());
}

#[test]
fn a_task_naming_another_repositorys_issue_refers_to_it_and_closes_nothing() {
    let s = setup(Some(1234), None);
    store::update_status(&s.status, |st| {
        st.extra.insert(
            "reference".into(),
            serde_json::json!({"repo": "org/other", "number": 8128, "kind": "issue"}),
        );
        Ok(())
    })
    .unwrap();
    s.open("origin").unwrap();
    let body = &s.fake.calls()[0][9];
    assert!(
        body.starts_with("Refs org/other#8128\n\n**Master Issue**: #1234\n"),
        "{body}"
    );
    assert!(!body.contains("Closes"), "{body}");
}

#[test]
fn the_pr_quotes_the_mentions_of_the_task_it_copies() {
    let s = setup(Some(1234), Some(1235));
    store::update_status(&s.status, |st| {
        st.title = "Add login for @alice".into();
        st.body = "Ask @org/security first; mail sec@example.com.\n\n```\n@decorator\n```".into();
        Ok(())
    })
    .unwrap();
    s.open("origin").unwrap();
    let call = &s.fake.calls()[0];
    assert_eq!(call[7], "[Master #1234] Add login for `@alice`");
    let body = &call[9];
    assert!(
        body.contains("**Task**: Add login for `@alice`\n"),
        "{body}"
    );
    assert!(
        body.contains("Ask `@org/security` first; mail sec@example.com."),
        "{body}"
    );
    assert!(body.contains("```\n@decorator\n```"), "{body}");
    assert_eq!(s.fake.pull(1240)["body"].as_str(), Some(body.as_str()));
}
