//! po-summarize and GitHub, through the GitHub double: the master-issue
//! comment (posted once, edited after), follow-up issues filed once with
//! labels created first (a comment when a task fails again), and `gh`
//! failures (exit 5).

use crate::support_gh;

use std::path::PathBuf;
use std::process::{Command, Output};

use po::protocol::{AgentStatus, State, store};
use serde_json::json;
use support_gh::{FakeGh, agent, craft, git, json_of, orchestration};

/// A repository whose default runtime holds a four-task run of master issue
/// #1234: agents 1 and 2 completed with PRs, agent 3 failed, agent 4 timed out.
struct Run {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    dir: PathBuf,
    gh: FakeGh,
}

fn run_with_failures() -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let rt = repo.join(".claude/runtime");
    let logs = rt.join("logs/orch-1234-20260101-1200");
    std::fs::create_dir_all(&logs).unwrap();

    let mut a1 = agent(1, State::Completed, 0, 600);
    a1.pr_number = Some(1240);
    let mut a2 = agent(2, State::Completed, 0, 900);
    a2.pr_number = Some(1241);
    let mut a3 = agent(3, State::Failed, 60, 1140);
    a3.title = "JWT tokens".into();
    a3.sub_issue = Some(1237);
    a3.error = Some("Import resolution error: no module named `auth`".into());
    a3.phase = Some("Running tests".into());
    a3.exit_code = Some(1);
    a3.worktree = Some(rt.join("worktrees/1234/agent-3"));
    let log = logs.join("agent-3.log");
    let text: String = (1..=40)
        .map(|i| {
            format!(
                "line {i}{}\n",
                if i == 40 {
                    " \u{1b}[31mFAILED\u{1b}[0m"
                } else {
                    ""
                }
            )
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    a3.log_file = Some(log);
    let mut a4 = agent(4, State::TimedOut, 0, 1800);
    a4.title = "User API".into();
    a4.phase = Some("Implementing".into());
    let dir = craft(
        &rt,
        &orchestration("1234", Some((1234, "Add authentication system"))),
        &[a1, a2, a3, a4],
    );
    let gh = FakeGh::new(tmp.path());
    gh.add_issue(
        1234,
        "Add authentication system",
        "- [ ] JWT tokens\n- [ ] User API\n",
    );
    Run {
        repo,
        dir,
        gh,
        _tmp: tmp,
    }
}

impl Run {
    fn summarize(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-summarize"));
        cmd.args(args)
            .current_dir(&self.repo)
            .env_remove("PO_RUNTIME_DIR")
            .env_remove("PO_SUCCESS_THRESHOLD")
            .env_remove("AMPLIHACK_SUCCESS_THRESHOLD");
        self.gh.apply(&mut cmd);
        cmd.output().unwrap()
    }

    fn status(&self, n: u64) -> AgentStatus {
        store::read_status(&self.dir.join(format!("agent-{n}.status.json"))).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

const COMMENT_WITHOUT_FOLLOW_UPS: &str = "\
## Parallel Orchestration Complete

**Status**: 2/4 tasks completed successfully (50%)
**Duration**: 30m 00s
**PRs Created**: #1240, #1241

Full summary: `.claude/runtime/parallel/1234/summary.md`

### Action Required
- [ ] Review and merge PR #1240
- [ ] Review and merge PR #1241
- [ ] Investigate Agent-3 failure (Import resolution error: no module named `auth`), then `po-spawn --id 1234 --retry`
- [ ] Investigate Agent-4 failure (timed out), then `po-spawn --id 1234 --retry`

### Timeline

```mermaid
gantt
    title Timeline (UTC)
    dateFormat YYYY-MM-DD HH:mm:ss
    axisFormat %H:%M
    section Wave 1
    agent-1 :done, a1, 2026-01-01 12:00:00, 2026-01-01 12:10:00
    agent-2 :done, a2, 2026-01-01 12:00:00, 2026-01-01 12:15:00
    agent-4 User API :crit, a3, 2026-01-01 12:00:00, 2026-01-01 12:30:00
    agent-3 JWT tokens :crit, a4, 2026-01-01 12:01:00, 2026-01-01 12:20:00
```

---
Orchestration ID: 1234

<!-- po-summary:1234 -->
";

fn view_comments() -> Vec<String> {
    argv(&["issue", "view", "1234", "--json", "comments"])
}

#[test]
fn post_comment_posts_the_seed_comment_on_the_master_issue() {
    let run = run_with_failures();
    let out = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("💬 Posted the summary on master issue #1234"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        run.gh.calls(),
        vec![
            view_comments(),
            argv(&[
                "issue",
                "comment",
                "1234",
                "--body",
                COMMENT_WITHOUT_FOLLOW_UPS
            ])
        ]
    );
    let comments = run.gh.comments(1234);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["body"], COMMENT_WITHOUT_FOLLOW_UPS);
    assert!(run.dir.join("summary.md").is_file());
}

#[test]
fn a_second_run_edits_its_own_comment_instead_of_adding_one() {
    let run = run_with_failures();
    // Someone else quotes the marker: that comment is not po's to edit.
    run.gh
        .add_foreign_comment(1234, "Why does it say <!-- po-summary:1234 --> here?");
    let first = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(first.status.code(), Some(2), "{}", stderr(&first));
    let mine = run.gh.comments(1234)[1].clone();
    let id = mine["id"].as_u64().unwrap();

    // A retry completed agent-3; the summary comment follows.
    store::update_status(&run.dir.join("agent-3.status.json"), |s| {
        s.status = State::Completed;
        s.error = None;
        s.attempt = 2;
        Ok(())
    })
    .unwrap();
    let calls_before = run.gh.calls().len();
    let second = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(
        second.status.code(),
        Some(2),
        "75% is below 80%: {}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains("💬 Updated the summary comment on master issue #1234"),
        "{}",
        stderr(&second)
    );
    let comments = run.gh.comments(1234);
    assert_eq!(comments.len(), 2, "no new comment: {comments:#?}");
    assert_eq!(comments[0]["author"], "someone");
    assert!(
        comments[0]["body"]
            .as_str()
            .unwrap()
            .starts_with("Why does it say")
    );
    assert_eq!(comments[1]["id"], id);
    let body = comments[1]["body"].as_str().unwrap();
    assert!(
        body.contains("**Status**: 3/4 tasks completed successfully (75%)\n"),
        "{body}"
    );
    assert!(
        body.ends_with("Orchestration ID: 1234\n\n<!-- po-summary:1234 -->\n"),
        "{body}"
    );
    let calls = run.gh.calls();
    assert_eq!(
        calls.len(),
        calls_before + 2,
        "{:#?}",
        &calls[calls_before..]
    );
    assert_eq!(calls[calls_before], view_comments());
    assert_eq!(
        calls[calls_before + 1],
        argv(&[
            "api",
            "--method",
            "PATCH",
            &format!("repos/{{owner}}/{{repo}}/issues/comments/{id}"),
            "-f",
            &format!("body={body}"),
        ])
    );
}

fn expected_follow_up_body(run: &Run) -> String {
    let tail: String = (11..=40)
        .map(|i| format!("line {i}{}\n", if i == 40 { " FAILED" } else { "" }))
        .collect();
    let _ = &run.repo;
    format!(
        "**Master Issue**: #1234
**Sub-Issue**: #1237
**Task**: JWT tokens
**Agent**: agent-3 (attempt 1), failed, exit status 1
**Failed in phase**: Running tests
**Branch**: `feat/issue-1237-agent-3`

## Error

```
Import resolution error: no module named `auth`
```

## Log excerpt

The last 30 lines of `.claude/runtime/logs/orch-1234-20260101-1200/agent-3.log`:

```
{tail}```

## Suggested next steps

1. Read the full log: `.claude/runtime/logs/orch-1234-20260101-1200/agent-3.log`
2. Inspect the agent's worktree `.claude/runtime/worktrees/1234/agent-3` (branch `feat/issue-1237-agent-3`)
3. Fix the cause, then retry: `po-spawn --id 1234 --retry`
4. Follow the retry: `po-watch 1234 --follow`

---
Orchestration ID: 1234
"
    )
}

fn label_create() -> Vec<String> {
    argv(&[
        "label",
        "create",
        "parallel-orchestration",
        "--force",
        "--color",
        po::forge::labels::ORCHESTRATION.color,
        "--description",
        po::forge::labels::ORCHESTRATION.description,
    ])
}

#[test]
fn follow_up_issues_are_filed_once_and_the_comment_links_them() {
    let run = run_with_failures();
    run.gh.set_next_number(500);
    assert!(
        !run.gh
            .labels()
            .contains(&"parallel-orchestration".to_string())
    );
    let out = run.summarize(&["1234", "--follow-up-issues", "--post-comment"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Created follow-up issue #500 for Agent-3 failure"));

    let all = run.gh.calls();
    // The label first, once: a fresh repository does not have it.
    assert_eq!(all[0], label_create());
    let calls = &all[1..];
    assert_eq!(calls.len(), 4, "{calls:#?}");
    assert!(
        run.gh
            .labels()
            .contains(&"parallel-orchestration".to_string())
    );
    assert_eq!(
        run.gh.issue(500)["labels"],
        json!(["parallel-orchestration"])
    );
    assert_eq!(
        calls[0],
        argv(&[
            "issue",
            "create",
            "--title",
            "Agent-3 failed: Import resolution error: no module named `auth`",
            "--body",
            &expected_follow_up_body(&run),
            "--label",
            "parallel-orchestration",
        ])
    );
    assert_eq!(
        &calls[1][..4],
        &argv(&["issue", "create", "--title", "Agent-4 timed out: timed out"])[..]
    );
    let body4 = &calls[1][5];
    assert!(
        body4.contains("**Failed in phase**: Implementing\n"),
        "{body4}"
    );
    assert!(
        body4.contains("No log file was recorded for this task."),
        "{body4}"
    );
    assert!(
        body4.contains("allow more time (`--timeout SECS`)"),
        "{body4}"
    );
    assert!(!body4.contains("**Sub-Issue**"), "{body4}");
    assert_eq!(
        &calls[1][6..],
        &argv(&["--label", "parallel-orchestration"])[..]
    );

    let comment = COMMENT_WITHOUT_FOLLOW_UPS
        .replace(
            "- [ ] Investigate Agent-3 failure (Import resolution error: no module named `auth`), then `po-spawn --id 1234 --retry`",
            "- [ ] Investigate Import resolution error: no module named `auth` in issue #500",
        )
        .replace(
            "- [ ] Investigate Agent-4 failure (timed out), then `po-spawn --id 1234 --retry`",
            "- [ ] Investigate timed out in issue #501",
        );
    assert_eq!(calls[2], view_comments());
    assert_eq!(
        calls[3],
        argv(&["issue", "comment", "1234", "--body", &comment])
    );

    // Recorded in the status files and the summary.
    assert_eq!(run.status(3).follow_up_issue, Some(500));
    assert_eq!(run.status(4).follow_up_issue, Some(501));
    assert_eq!(run.status(1).follow_up_issue, None);
    let s = json_of(&std::fs::read(run.dir.join("summary.json")).unwrap());
    assert_eq!(s["follow_up_issues"], json!([500, 501]));
    let md = std::fs::read_to_string(run.dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| Agent-3 | #1237 | Import resolution error: no module named `auth` | 19m 00s | Issue #500 |"),
        "{md}"
    );

    // A second run files nothing again.
    let again = run.summarize(&["1234", "--follow-up-issues"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert_eq!(run.gh.calls().len(), 5, "{:#?}", run.gh.calls());
    assert_eq!(run.status(3).follow_up_issue, Some(500));
    assert_eq!(run.gh.issue_numbers(), [500, 501, 1234]);
}

#[test]
fn a_task_that_fails_again_gets_a_comment_on_its_follow_up_issue() {
    let run = run_with_failures();
    run.gh.set_next_number(500);
    let out = run.summarize(&["1234", "--follow-up-issues"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(run.status(3).follow_up_attempt, Some(1));

    // Retried; agent-3 failed again, differently.
    store::update_status(&run.dir.join("agent-3.status.json"), |s| {
        s.attempt = 2;
        s.error = Some("assertion failed: token.expiry > now".into());
        s.phase = Some("Running the JWT tests".into());
        Ok(())
    })
    .unwrap();
    let seen = run.gh.calls().len();
    let out = run.summarize(&["1234", "--follow-up-issues"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("📋 Commented on follow-up issue #500: Agent-3 failed again (attempt 2)"),
        "{}",
        stderr(&out)
    );
    let calls = run.gh.calls();
    assert_eq!(
        calls.len(),
        seen + 1,
        "one comment, no issue: {:#?}",
        &calls[seen..]
    );
    assert_eq!(
        &calls[seen][..4],
        &argv(&["issue", "comment", "500", "--body"])[..]
    );
    assert_eq!(run.gh.issue_numbers(), [500, 501, 1234], "no second issue");
    let comments = run.gh.comments(500);
    assert_eq!(comments.len(), 1);
    let body = comments[0]["body"].as_str().unwrap();
    assert_eq!(body, calls[seen][4]);
    for want in [
        "**Agent-3 failed again** on attempt 2, exit status 1\n",
        "**Failed in phase**: Running the JWT tests\n",
        "assertion failed: token.expiry > now",
        "The last 30 lines of `.claude/runtime/logs/orch-1234-20260101-1200/agent-3.log`",
        "`po-spawn --id 1234 --retry`",
    ] {
        assert!(body.contains(want), "{want:?} not in\n{body}");
    }
    assert_eq!(run.status(3).follow_up_issue, Some(500));
    assert_eq!(run.status(3).follow_up_attempt, Some(2));

    // Nothing new: nothing more.
    let out = run.summarize(&["1234", "--follow-up-issues"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(run.gh.calls().len(), seen + 1);
}

#[test]
fn concurrent_runs_file_each_follow_up_once() {
    let run = run_with_failures();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-summarize"));
            cmd.args(["1234", "--follow-up-issues", "--format", "json"])
                .current_dir(&run.repo)
                .env_remove("PO_RUNTIME_DIR")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            run.gh.apply(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(2));
    }
    let creates = run
        .gh
        .calls()
        .into_iter()
        .filter(|c| c[..2] == argv(&["issue", "create"])[..])
        .count();
    assert_eq!(creates, 2, "{:#?}", run.gh.calls());
    assert_eq!(
        run.gh.issue_numbers().len(),
        3,
        "the master and two follow-ups"
    );
}

#[test]
fn post_comment_needs_a_master_issue() {
    let run = run_with_failures();
    let rt = run.repo.join(".claude/runtime");
    craft(
        &rt,
        &orchestration("notes", None),
        &[agent(1, State::Completed, 0, 5)],
    );
    let out = run.summarize(&["notes", "--post-comment"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("has no master issue"),
        "{}",
        stderr(&out)
    );
    assert!(run.gh.calls().is_empty());
}

#[test]
fn gh_missing_exits_5_with_install_advice() {
    let run = run_with_failures();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-summarize"));
    cmd.args(["1234", "--post-comment"])
        .current_dir(&run.repo)
        .env_remove("PO_RUNTIME_DIR")
        .env("PO_GH", run.repo.join("no-such-gh"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains("gh is not installed or not on PATH"), "{err}");
    assert!(err.contains("gh auth status"), "{err}");
    // The summary is still written and printed.
    assert!(run.dir.join("summary.json").is_file());
    assert!(String::from_utf8_lossy(&out.stdout).contains("## Parallel Orchestration Results"));
}

#[test]
fn gh_unauthenticated_exits_5_with_auth_advice() {
    let run = run_with_failures();
    run.gh.log_out();
    let out = run.summarize(&["1234", "--follow-up-issues", "--post-comment"]);
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains("gh auth login"), "{err}");
    assert!(err.contains("check `gh auth status`"), "{err}");
    // One attempt (the labels), then it stops: no issue, no comment.
    assert_eq!(run.gh.calls(), vec![label_create()]);
    assert_eq!(run.status(3).follow_up_issue, None, "nothing recorded");
    assert!(run.gh.comments(1234).is_empty());
}

#[test]
fn rate_limits_are_retried_with_backoff() {
    let run = run_with_failures();
    run.gh.rate_limit(2);
    let out = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let call = argv(&[
        "issue",
        "comment",
        "1234",
        "--body",
        COMMENT_WITHOUT_FOLLOW_UPS,
    ]);
    assert_eq!(
        run.gh.calls(),
        vec![view_comments(), view_comments(), view_comments(), call]
    );
    assert_eq!(run.gh.comments(1234).len(), 1);
}

#[test]
fn endless_rate_limits_exit_5_with_rate_advice() {
    let run = run_with_failures();
    run.gh.rate_limit(100);
    let out = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains("rate limit"), "{err}");
    assert!(err.contains("gh api rate_limit"), "{err}");
    assert_eq!(run.gh.calls().len(), 5, "the first try and 4 retries");
}

#[test]
fn where_labels_may_not_be_created_the_follow_ups_go_without_and_it_is_said_once() {
    let run = run_with_failures();
    run.gh.forbid_labels();
    run.gh.set_next_number(700);
    let out = run.summarize(&["1234", "--follow-up-issues"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let notice = "po-summarize: filing issues without the labels parallel-orchestration \
                  (`gh label create parallel-orchestration` was refused: HTTP 403: Resource not \
                  accessible by integration (https://api.github.com/repos/owner/repo/labels))\n";
    assert_eq!(err.matches(notice).count(), 1, "{err}");
    let calls = run.gh.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[0], label_create());
    for c in &calls[1..] {
        assert_eq!(c.len(), 6, "no --label: {c:#?}");
        assert_eq!(c[..2], argv(&["issue", "create"])[..]);
    }
    assert_eq!(run.status(3).follow_up_issue, Some(700));
    assert_eq!(run.status(4).follow_up_issue, Some(701));
    assert_eq!(run.gh.issue(700)["labels"], json!([]));
    assert!(
        !run.gh
            .labels()
            .contains(&"parallel-orchestration".to_string())
    );
}

#[test]
fn follow_ups_and_the_comment_quote_the_mentions_they_copy() {
    let run = run_with_failures();
    run.gh.set_next_number(500);
    let p = run.dir.join("agent-3.status.json");
    store::update_status(&p, |s| {
        s.title = "JWT tokens for @carol".into();
        s.error = Some("npm ERR! 404 @babel/core not found; ping @dave".into());
        Ok(())
    })
    .unwrap();
    let out = run.summarize(&["1234", "--follow-up-issues", "--post-comment"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let issue = run.gh.issue(500);
    let title = issue["title"].as_str().unwrap();
    assert_eq!(
        title,
        "Agent-3 failed: npm ERR! 404 `@babel/core` not found; ping `@dave`"
    );
    let body = issue["body"].as_str().unwrap();
    assert!(
        body.contains("**Task**: JWT tokens for `@carol`\n"),
        "{body}"
    );
    // In the fenced error block the text stays as it was: GitHub links nothing there.
    assert!(
        body.contains("```\nnpm ERR! 404 @babel/core not found; ping @dave\n```"),
        "{body}"
    );
    let comment = &run.gh.comments(1234)[0];
    let text = comment["body"].as_str().unwrap();
    assert!(
        text.contains(
            "- [ ] Investigate npm ERR! 404 `@babel/core` not found; ping `@dave` in issue #500"
        ),
        "{text}"
    );
    assert!(text.ends_with("<!-- po-summary:1234 -->\n"), "{text}");
    // A second run finds its own comment by the marker and edits it.
    let out = run.summarize(&["1234", "--post-comment"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(run.gh.comments(1234).len(), 1);
}
