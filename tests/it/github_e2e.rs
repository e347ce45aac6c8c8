//! The issue-driven flow of the seed, end to end, on a fresh repository of the
//! GitHub double (no po labels yet; issues and pull requests share one number
//! sequence) with a real bare repository as `origin`:
//!
//! `po-parse 1234 --create-sub-issues` → `po-spawn` (PRs on: the source is an
//! issue; agent-2 fails) → `po-summarize --post-comment --follow-up-issues` →
//! fix agent-2 → `po-spawn --id 1234 --retry` → `po-summarize` again, whose
//! `--post-comment` edits the comment of the first run.

use crate::support_gh;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, State, store};
use serde_json::json;
use support_gh::{FakeGh, git, json_of, repo_with_origin};

/// A hang guard only: the flow takes seconds.
const HANG_GUARD: Duration = Duration::from_secs(180);

const MASTER_BODY: &str = "\
Say hello and goodbye.

- [ ] Add a greeting in `greet.txt`
- [ ] Add a farewell in `farewell.txt`
- [ ] Add a usage page in `usage.txt`
";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct Flow {
    tmp: tempfile::TempDir,
    repo: PathBuf,
    origin: PathBuf,
    gh: FakeGh,
    marker: PathBuf,
    agent_cmd: String,
}

impl Flow {
    fn new() -> Flow {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, origin) = repo_with_origin(tmp.path());
        let gh = FakeGh::new(tmp.path());
        gh.add_issue(1234, "Greetings", MASTER_BODY);
        let marker = tmp.path().join("fixture-ready");
        // The agent: agent-2 fails until the marker exists; every other run
        // reports progress and commits one file in its worktree.
        let script = tmp.path().join("agent.sh");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
set -e
id="$1"
po-status set --progress 10 --phase "Writing $id.txt"
if [ "$id" = agent-2 ] && [ ! -e '{marker}' ]; then
    echo "building the farewell: fixture missing" >&2
    exit 3
fi
echo "$id was here" > "$id.txt"
git add "$id.txt"
git commit -q -m "$id: add $id.txt"
po-status set --progress 100 --phase "Done"
"#,
                marker = marker.display()
            ),
        )
        .unwrap();
        let agent_cmd = format!("sh {} {{agent_id}}", script.display());
        Flow {
            tmp,
            repo,
            origin,
            gh,
            marker,
            agent_cmd,
        }
    }

    fn path_env(&self) -> OsString {
        // The fake gh first; po-status (beside the binaries) for the agents.
        let bins = Path::new(env!("CARGO_BIN_EXE_po-status")).parent().unwrap();
        let mut p = OsString::from(&self.gh.bin);
        p.push(":");
        p.push(bins);
        if let Some(old) = std::env::var_os("PATH") {
            p.push(":");
            p.push(old);
        }
        p
    }

    fn run(&self, exe: &str, args: &[&str]) -> Out {
        let out_path = self.tmp.path().join("out.txt");
        let err_path = self.tmp.path().join("err.txt");
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .current_dir(&self.repo)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        for var in [
            "PO_RUNTIME_DIR",
            "PO_AGENT_CMD",
            "PO_SUCCESS_THRESHOLD",
            "AMPLIHACK_SUCCESS_THRESHOLD",
            "AMPLIHACK_MAX_PARALLEL_AGENTS",
            "AMPLIHACK_AGENT_TIMEOUT",
        ] {
            cmd.env_remove(var);
        }
        self.gh.apply(&mut cmd);
        cmd.env("PATH", self.path_env())
            .env("GIT_AUTHOR_NAME", "Agent")
            .env("GIT_AUTHOR_EMAIL", "agent@example.com")
            .env("GIT_COMMITTER_NAME", "Agent")
            .env("GIT_COMMITTER_EMAIL", "agent@example.com");
        let mut child = cmd.spawn().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > HANG_GUARD {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{exe} {args:?} hung; stderr:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Out {
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).unwrap(),
            stderr: std::fs::read_to_string(&err_path).unwrap(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.repo.join(".claude/runtime/parallel/1234")
    }

    fn status(&self, n: u64) -> AgentStatus {
        store::read_status(&self.dir().join(format!("agent-{n}.status.json"))).unwrap()
    }

    fn spawn(&self, extra: &[&str]) -> Out {
        let mut args = vec![
            "--id",
            "1234",
            "--agent-cmd",
            &self.agent_cmd,
            "--max-workers",
            "3",
            "--timeout",
            "120",
        ];
        args.extend_from_slice(extra);
        self.run(env!("CARGO_BIN_EXE_po-spawn"), &args)
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
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

fn in_origin(origin: &Path, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(origin)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `pr create` call for `branch`, checked word by word but the body.
fn check_pr_call(call: &[String], branch: &str, title: &str, sub_issue: u64, commit: &str) {
    assert_eq!(
        &call[..9],
        &argv(&[
            "pr", "create", "--head", branch, "--base", "main", "--title", title, "--body"
        ])[..],
        "{call:#?}"
    );
    assert_eq!(call.len(), 10, "{call:#?}");
    let body = &call[9];
    assert!(
        body.starts_with(&format!("Closes #{sub_issue}\n\n**Master Issue**: #1234\n")),
        "{body}"
    );
    assert!(
        body.contains(commit),
        "the agent's commit {commit:?} in\n{body}"
    );
}

#[test]
fn issue_to_prs_summary_follow_up_and_retry() {
    let f = Flow::new();
    let titles = [
        "Add a greeting in `greet.txt`",
        "Add a farewell in `farewell.txt`",
        "Add a usage page in `usage.txt`",
    ];

    // 1. Parse the master issue and file the sub-issues.
    let parsed = f.run(
        env!("CARGO_BIN_EXE_po-parse"),
        &["1234", "--create-sub-issues"],
    );
    assert_eq!(parsed.code, Some(0), "{}", parsed.stderr);
    assert_eq!(parsed.stdout.lines().count(), 3, "{}", parsed.stdout);
    let mut want = vec![argv(&[
        "issue",
        "view",
        "1234",
        "--json",
        "number,title,body,url",
    ])];
    for l in [
        po::forge::labels::ORCHESTRATION,
        po::forge::labels::SUB_ISSUE,
    ] {
        want.push(label_create(l));
    }
    for (i, t) in titles.iter().enumerate() {
        let task = f.status(i as u64 + 1);
        assert_eq!(task.title, *t);
        assert_eq!(task.sub_issue, Some(1235 + i as u64));
        want.push(argv(&[
            "issue",
            "create",
            "--title",
            &format!("[Master #1234] {t}"),
            "--body",
            &po::cli::parse::sub_issue_body(1234, &task.title, &task.body),
            "--label",
            "parallel-orchestration",
            "--label",
            "sub-issue",
        ]));
    }
    assert_eq!(f.gh.calls(), want);
    let mut seen = want.len();

    // 2. Run the agents: PRs are on because the source is an issue.
    let spawned = f.spawn(&[]);
    assert_eq!(
        spawned.code,
        Some(2),
        "2/3 is below 80%:\n{}",
        spawned.stderr
    );
    let (a1, a2, a3) = (f.status(1), f.status(2), f.status(3));
    assert_eq!(a1.status, State::Completed, "{a1:#?}");
    assert_eq!(a3.status, State::Completed, "{a3:#?}");
    assert_eq!(a2.status, State::Failed, "{a2:#?}");
    let b1 = "feat/issue-1235-agent-1";
    let b2 = "feat/issue-1236-agent-2";
    let b3 = "feat/issue-1237-agent-3";
    assert_eq!(a1.branch.as_deref(), Some(b1));
    assert_eq!(a2.branch.as_deref(), Some(b2));
    assert_eq!(a3.branch.as_deref(), Some(b3));
    // The pushed branches hold the agents' commits; the failed one was not pushed.
    for b in [b1, b3] {
        let tip = git(&f.repo, &["rev-parse", b]).trim().to_string();
        assert_eq!(in_origin(&f.origin, b), Some(tip), "{b} in origin");
    }
    assert_eq!(in_origin(&f.origin, b2), None);
    // One PR each, in whatever order they finished.
    let mut prs = [a1.pr_number.unwrap(), a3.pr_number.unwrap()];
    prs.sort();
    assert_eq!(prs, [1238, 1239], "after the sub-issues, in one sequence");
    assert_eq!(f.gh.pull_numbers(), [1238, 1239]);
    for a in [&a1, &a3] {
        assert_eq!(
            a.pr_url.clone().unwrap(),
            format!(
                "https://github.com/owner/repo/pull/{}",
                a.pr_number.unwrap()
            )
        );
    }
    let calls = f.gh.calls();
    // po-spawn's pre-flight looks at the rate limit first, then one PR each.
    assert_eq!(calls[seen], ["api", "rate_limit"], "{:#?}", &calls[seen..]);
    let pr_calls: Vec<&Vec<String>> = calls[seen + 1..].iter().collect();
    assert_eq!(pr_calls.len(), 2, "{pr_calls:#?}");
    for (a, title, sub) in [(&a1, titles[0], 1235), (&a3, titles[2], 1237)] {
        let branch = a.branch.as_deref().unwrap();
        let call = pr_calls
            .iter()
            .find(|c| c[3] == branch)
            .unwrap_or_else(|| panic!("no PR for {branch}: {pr_calls:#?}"));
        let commit = git(&f.repo, &["log", "-1", "--format=%s", branch]);
        check_pr_call(
            call,
            branch,
            &format!("[Master #1234] {title}"),
            sub,
            commit.trim(),
        );
    }
    seen = calls.len();

    // 3. Summarize: a follow-up issue for agent-2, then the master-issue comment.
    let summary = f.run(
        env!("CARGO_BIN_EXE_po-summarize"),
        &["1234", "--post-comment", "--follow-up-issues"],
    );
    assert_eq!(summary.code, Some(2), "{}", summary.stderr);
    assert!(
        summary.stdout.contains("**Success Rate**: 2/3 (66.7%)"),
        "{}",
        summary.stdout
    );
    let calls = f.gh.calls();
    assert_eq!(calls.len(), seen + 4, "{:#?}", &calls[seen..]);
    // The label again (`--force` makes it idempotent), once per run.
    assert_eq!(calls[seen], label_create(po::forge::labels::ORCHESTRATION));
    seen += 1;
    let a2 = f.status(2);
    assert_eq!(a2.follow_up_issue, Some(1240));
    let error = a2.error.clone().expect("the failure is recorded");
    let create = &calls[seen];
    assert_eq!(
        &create[..3],
        &argv(&["issue", "create", "--title"])[..],
        "{create:#?}"
    );
    assert_eq!(
        create[3],
        format!(
            "Agent-2 failed: {}",
            po::text::ellipsize(&po::protocol::view::error_gist(&error), 72)
        )
    );
    assert_eq!(create[4], "--body");
    assert_eq!(
        &create[6..],
        &argv(&["--label", "parallel-orchestration"])[..]
    );
    let body = &create[5];
    for want in [
        "**Master Issue**: #1234\n",
        "**Sub-Issue**: #1236\n",
        &format!("**Task**: {}\n", titles[1]),
        "**Failed in phase**: Writing agent-2.txt\n",
        "building the farewell: fixture missing",
        "`po-spawn --id 1234 --retry`",
    ] {
        assert!(body.contains(want), "{want:?} not in\n{body}");
    }
    assert_eq!(
        calls[seen + 1],
        argv(&["issue", "view", "1234", "--json", "comments"])
    );
    let comment = &calls[seen + 2];
    assert_eq!(
        &comment[..4],
        &argv(&["issue", "comment", "1234", "--body"])[..]
    );
    let text = &comment[4];
    assert!(
        text.starts_with(
            "## Parallel Orchestration Complete\n\n\
             **Status**: 2/3 tasks completed successfully (66.7%)\n"
        ),
        "{text}"
    );
    for want in [
        "**PRs Created**: ",
        "- [ ] Review and merge PR #1238\n",
        "- [ ] Review and merge PR #1239\n",
        &format!(
            "- [ ] Investigate {} in issue #1240\n",
            po::report::markdown::cell(&po::protocol::view::error_gist(&error), 80)
        ),
        "Orchestration ID: 1234\n",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    seen = calls.len();

    // 4. Fix the cause and retry only what failed.
    std::fs::write(&f.marker, "ready\n").unwrap();
    let retried = f.spawn(&["--retry"]);
    assert_eq!(retried.code, Some(0), "{}", retried.stderr);
    let a2 = f.status(2);
    assert_eq!(a2.status, State::Completed, "{a2:#?}");
    assert_eq!(a2.attempt, 2);
    assert_eq!(a2.pr_number, Some(1241));
    let tip = git(&f.repo, &["rev-parse", b2]).trim().to_string();
    assert_eq!(in_origin(&f.origin, b2), Some(tip));
    let calls = f.gh.calls();
    assert_eq!(
        calls.len(),
        seen + 2,
        "the pre-flight's rate limit, then one new PR only: {:#?}",
        &calls[seen..]
    );
    assert_eq!(calls[seen], ["api", "rate_limit"]);
    check_pr_call(
        &calls[seen + 1],
        b2,
        &format!("[Master #1234] {}", titles[1]),
        1236,
        "agent-2: add agent-2.txt",
    );
    // The others were not run again.
    assert_eq!(f.status(1).attempt, 1);
    assert_eq!(f.status(3).attempt, 1);
    seen = calls.len();

    // 5. The summary again: everything completed.
    let last = f.run(
        env!("CARGO_BIN_EXE_po-summarize"),
        &["1234", "--format", "json"],
    );
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    let s = json_of(last.stdout.as_bytes());
    assert_eq!(s["master_issue"], 1234);
    assert_eq!(s["total_sub_tasks"], 3);
    assert_eq!(s["successful"], 3);
    assert_eq!(s["failed"], 0);
    let mut prs: Vec<u64> = serde_json::from_value(s["prs_created"].clone()).unwrap();
    prs.sort();
    assert_eq!(prs, vec![1238, 1239, 1241]);
    assert_eq!(s["follow_up_issues"], json!([1240]));
    assert_eq!(s["lines_of_code"], 3, "one line in each agent's file");
    let md = std::fs::read_to_string(f.dir().join("summary.md")).unwrap();
    assert!(
        md.contains("Close diagnostic issue #1240: Agent-2 has since completed"),
        "{md}"
    );
    assert!(
        md.contains("; the wall clock includes the time before retries)"),
        "{md}"
    );
    assert_eq!(
        f.gh.calls().len(),
        seen,
        "no GitHub calls without the flags"
    );

    // 6. The comment follows: the first run's comment is edited, not repeated.
    let posted = f.run(
        env!("CARGO_BIN_EXE_po-summarize"),
        &["1234", "--post-comment"],
    );
    assert_eq!(posted.code, Some(0), "{}", posted.stderr);
    assert!(
        posted
            .stderr
            .contains("💬 Updated the summary comment on master issue #1234"),
        "{}",
        posted.stderr
    );
    let comments = f.gh.comments(1234);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let body = comments[0]["body"].as_str().unwrap();
    assert!(
        body.contains("**Status**: 3/3 tasks completed successfully (100%)\n"),
        "{body}"
    );
    assert!(body.ends_with("<!-- po-summary:1234 -->\n"), "{body}");
    assert_eq!(f.gh.issue_numbers(), [1234, 1235, 1236, 1237, 1240]);
    assert_eq!(
        f.gh.issue(1240)["labels"],
        json!(["parallel-orchestration"])
    );
}
