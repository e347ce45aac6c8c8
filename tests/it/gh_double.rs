//! The GitHub double of `tests/it/support_gh/` is as strict as GitHub: each
//! refusal comes with gh's own message and exit status, and a refused call
//! changes nothing. The other GitHub tests rely on this.

use crate::support_gh;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support_gh::{FakeGh, git, repo_with_origin};

struct World {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    origin: PathBuf,
    gh: FakeGh,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, origin) = repo_with_origin(tmp.path());
    let gh = FakeGh::new(tmp.path());
    World {
        _tmp: tmp,
        repo,
        origin,
        gh,
    }
}

/// `gh ARGS` in `dir`: (exit status, stdout, stderr).
fn gh(w: &World, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(w.gh.program());
    w.gh.apply(&mut cmd);
    let out = cmd.args(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(w: &World, args: &[&str]) -> String {
    let (code, out, err) = gh(w, &w.repo, args);
    assert_eq!(code, 0, "gh {args:?}: {err}");
    out
}

fn refused(w: &World, args: &[&str]) -> (i32, String) {
    let before = w.gh.snapshot();
    let (code, _, err) = gh(w, &w.repo, args);
    assert_ne!(code, 0, "gh {args:?} was accepted");
    let mut after = w.gh.snapshot();
    after["remaining"] = before["remaining"].clone();
    after["rate_limited_calls"] = before["rate_limited_calls"].clone();
    assert_eq!(after, before, "a refused call changed the state");
    (code, err)
}

/// A branch `feat/x` with one commit beyond main, in the repository only.
fn branch_with_a_commit(w: &World) {
    git(&w.repo, &["checkout", "-q", "-b", "feat/x"]);
    std::fs::write(w.repo.join("x.txt"), "x\n").unwrap();
    git(&w.repo, &["add", "x.txt"]);
    git(&w.repo, &["commit", "-q", "-m", "x"]);
    git(&w.repo, &["checkout", "-q", "main"]);
}

const PR: [&str; 10] = [
    "pr", "create", "--head", "feat/x", "--base", "main", "--title", "X", "--body", "Adds x",
];

#[test]
fn an_unknown_label_refuses_the_whole_issue() {
    let w = world();
    let args = [
        "issue",
        "create",
        "--title",
        "T",
        "--body",
        "B",
        "--label",
        "bug",
        "--label",
        "sub-issue",
    ];
    let (code, err) = refused(&w, &args);
    assert_eq!(
        (code, err.as_str()),
        (1, "could not add label: 'sub-issue' not found\n")
    );
    assert!(w.gh.issue_numbers().is_empty());

    // Once the label exists (any case), the issue is filed with both.
    let (code, _, err) = gh(
        &w,
        &w.repo,
        &["label", "create", "Sub-Issue", "--color", "C5DEF5"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(ok(&w, &args), "https://github.com/owner/repo/issues/1\n");
    assert_eq!(w.gh.issue(1)["labels"], json!(["bug", "Sub-Issue"]));
    // Comma-separated, as gh splits them.
    ok(
        &w,
        &[
            "issue",
            "create",
            "-t",
            "U",
            "-b",
            "B",
            "-l",
            "bug,sub-issue",
        ],
    );
    assert_eq!(w.gh.issue(2)["labels"], json!(["bug", "Sub-Issue"]));
}

#[test]
fn label_create_is_idempotent_only_with_force() {
    let w = world();
    let create = [
        "label",
        "create",
        "po",
        "--color",
        "5319E7",
        "--description",
        "one",
    ];
    ok(&w, &create);
    let (code, err) = refused(&w, &create);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "label with name \"po\" already exists; use `--force` to update its color and description\n"
    );
    ok(
        &w,
        &[
            "label",
            "create",
            "po",
            "--force",
            "--color",
            "000000",
            "--description",
            "two",
        ],
    );
    let labels = ok(
        &w,
        &[
            "label",
            "list",
            "--json",
            "name,color,description",
            "--limit",
            "100",
        ],
    );
    let labels: Value = serde_json::from_str(&labels).unwrap();
    let po: Vec<&Value> = labels
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == "po")
        .collect();
    assert_eq!(
        po,
        [&json!({"name": "po", "color": "000000", "description": "two"})]
    );

    w.gh.forbid_labels();
    let (code, err) = refused(&w, &["label", "create", "other", "--force"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("HTTP 403: Resource not accessible by integration"),
        "{err}"
    );
}

#[test]
fn a_pull_request_needs_a_pushed_head_with_commits_and_only_one_per_head() {
    let w = world();
    branch_with_a_commit(&w);
    // Not on the remote yet.
    let (code, err) = refused(&w, &PR);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "pull request create failed: GraphQL: Head sha can't be blank, No commits between main \
         and feat/x, Head ref must be a branch (createPullRequest)\n"
    );
    // On the remote, but no commits beyond main.
    let main = git(&w.repo, &["rev-parse", "main"]);
    git(
        &w.repo,
        &[
            "push",
            "-q",
            "origin",
            &format!("{}:refs/heads/feat/x", main.trim()),
        ],
    );
    let (_, err) = refused(&w, &PR);
    assert_eq!(
        err,
        "pull request create failed: GraphQL: No commits between main and feat/x \
         (createPullRequest)\n"
    );
    // Pushed with its commit: accepted; the number follows the issues'.
    git(&w.repo, &["push", "-q", "-f", "origin", "feat/x"]);
    w.gh.add_issue(7, "An issue", "");
    assert_eq!(ok(&w, &PR), "https://github.com/owner/repo/pull/8\n");
    // The same head again.
    let (code, err) = refused(&w, &PR);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "a pull request for branch \"feat/x\" into branch \"main\" already exists:\n\
         https://github.com/owner/repo/pull/8\n"
    );
    let found = ok(
        &w,
        &[
            "pr",
            "list",
            "--head",
            "feat/x",
            "--json",
            "number,url,state",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&found).unwrap(),
        json!([{"number": 8, "url": "https://github.com/owner/repo/pull/8", "state": "OPEN"}])
    );
    let viewed = ok(
        &w,
        &[
            "pr",
            "view",
            "feat/x",
            "--json",
            "number,headRefName,baseRefName",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&viewed).unwrap(),
        json!({"number": 8, "headRefName": "feat/x", "baseRefName": "main"})
    );
    assert_eq!(
        ok(&w, &["pr", "list", "--head", "other", "--json", "number"]),
        "[]\n"
    );

    // A configured remote path works from any directory.
    w.gh.use_remote(&w.origin);
    let elsewhere = w.repo.parent().unwrap();
    let (code, _, err) = gh(&w, elsewhere, &["pr", "view", "8", "--json", "state"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn unknown_issues_are_refused_with_graphqls_message() {
    let w = world();
    let msg = "GraphQL: Could not resolve to an issue or pull request with the number of 999. \
               (repository.issue)\n";
    let (code, err) = refused(&w, &["issue", "comment", "999", "--body", "hi"]);
    assert_eq!((code, err.as_str()), (1, msg));
    let (code, err) = refused(&w, &["issue", "view", "999", "--json", "title"]);
    assert_eq!((code, err.as_str()), (1, msg));
    let (_, err) = refused(&w, &["issue", "view", "1", "--bogus"]);
    assert!(err.starts_with("unknown flag: --bogus\n"), "{err}");
}

#[test]
fn comments_are_kept_and_only_ones_own_can_be_edited() {
    let w = world();
    w.gh.add_issue(5, "Master", "body");
    w.gh.add_foreign_comment(5, "not mine");
    let (_, err) = refused(&w, &["issue", "comment", "5", "--edit-last", "--body", "x"]);
    assert_eq!(err, "no comments found for current user\n");
    let url = ok(&w, &["issue", "comment", "5", "--body", "first"]);
    let id: u64 = url
        .trim()
        .rsplit_once("#issuecomment-")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let comments = ok(&w, &["issue", "view", "5", "--json", "comments"]);
    let comments: Value = serde_json::from_str(&comments).unwrap();
    let c = &comments["comments"];
    assert_eq!(c[0]["viewerDidAuthor"], false);
    assert_eq!(c[1]["viewerDidAuthor"], true);
    assert_eq!(c[1]["url"], url.trim());
    assert_eq!(c[1]["author"]["login"], "tester");

    let endpoint = format!("repos/{{owner}}/{{repo}}/issues/comments/{id}");
    ok(
        &w,
        &["api", "--method", "PATCH", &endpoint, "-f", "body=edited"],
    );
    assert_eq!(w.gh.comments(5)[1]["body"], "edited");
    let foreign = w.gh.comments(5)[0]["id"].as_u64().unwrap();
    let endpoint = format!("repos/{{owner}}/{{repo}}/issues/comments/{foreign}");
    let (code, err) = refused(
        &w,
        &["api", "-X", "PATCH", &endpoint, "-f", "body=mine now"],
    );
    assert_eq!(
        (code, err.as_str()),
        (1, "gh: Must have admin rights to Repository. (HTTP 403)\n")
    );
    let (_, _, err) = gh(
        &w,
        &w.repo,
        &["api", "repos/{owner}/{repo}/issues/comments/424242"],
    );
    assert_eq!(err, "gh: Not Found (HTTP 404)\n");
}

#[test]
fn no_login_and_bad_tokens_fail_every_call_as_gh_does() {
    let w = world();
    w.gh.log_out();
    let (code, err) = refused(&w, &["issue", "view", "1", "--json", "title"]);
    assert_eq!(code, 4);
    assert!(
        err.starts_with("To get started with GitHub CLI, please run:  gh auth login\n"),
        "{err}"
    );
    let w = world();
    w.gh.bad_token();
    let (code, err) = refused(&w, &["label", "list"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("HTTP 401: Bad credentials (https://api.github.com/graphql)"),
        "{err}"
    );
}

#[test]
fn each_call_spends_its_apis_rate_limit_and_none_is_left_at_zero() {
    let w = world();
    w.gh.add_issue(3, "Master", "body");
    w.gh.set_remaining(1, 1);
    let limits =
        |w: &World| -> Value { serde_json::from_str(&ok(w, &["api", "rate_limit"])).unwrap() };
    assert_eq!(limits(&w)["resources"]["graphql"]["remaining"], 1);
    ok(&w, &["issue", "view", "3", "--json", "title"]);
    assert_eq!(
        ok(
            &w,
            &["api", "rate_limit", "--jq", ".resources.graphql.remaining"]
        ),
        "0\n"
    );
    let (code, err) = refused(&w, &["issue", "comment", "3", "--body", "x"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "GraphQL: API rate limit exceeded for user ID 1.\n")
    );
    // REST has its own budget.
    assert_eq!(limits(&w)["resources"]["core"]["remaining"], 1);
    ok(&w, &["label", "create", "one", "--force"]);
    let (_, err) = refused(&w, &["label", "create", "two", "--force"]);
    assert!(
        err.starts_with(
            "HTTP 403: API rate limit exceeded for user ID 1. (https://api.github.com/"
        ),
        "{err}"
    );
    let (code, out, err) = gh(&w, &w.repo, &["api", "user"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "gh: API rate limit exceeded for user ID 1. (HTTP 403)\n"
    );
    assert!(
        out.contains("\"message\""),
        "the body on stdout, as gh prints it: {out}"
    );

    // A passing limit: the next calls are refused, then it clears.
    w.gh.set_remaining(10, 10);
    w.gh.rate_limit(1);
    refused(&w, &["issue", "view", "3", "--json", "title"]);
    ok(&w, &["issue", "view", "3", "--json", "title"]);
}

#[test]
fn every_call_is_recorded_refused_or_not() {
    let w = world();
    let _ = gh(&w, &w.repo, &["issue", "view", "1", "--json", "title"]);
    ok(&w, &["api", "rate_limit"]);
    assert_eq!(
        w.gh.calls(),
        [
            vec!["issue", "view", "1", "--json", "title"],
            vec!["api", "rate_limit"]
        ]
    );
}

#[test]
fn pull_requests_carry_checks_reviews_and_mergeability_that_follow_the_remote() {
    let w = world();
    std::fs::write(w.repo.join("lib.txt"), "BUG\n").unwrap();
    git(&w.repo, &["checkout", "-q", "-b", "feat/x"]);
    git(&w.repo, &["add", "lib.txt"]);
    git(&w.repo, &["commit", "-q", "-m", "lib"]);
    git(&w.repo, &["push", "-q", "origin", "feat/x"]);
    w.gh.add_ci(
        "test",
        "lib.txt",
        "BUG",
        "assertion failed: no bugs\nerror: 1 test failed",
    );
    ok(&w, &PR);
    let fields = "headRefOid,mergeable,statusCheckRollup,reviews";
    let view = |w: &World| -> Value {
        serde_json::from_str(&ok(w, &["pr", "view", "1", "--json", fields])).unwrap()
    };
    let v = view(&w);
    let head = git(&w.repo, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(v["headRefOid"], head.as_str());
    assert_eq!(v["mergeable"], "MERGEABLE");
    let check = &v["statusCheckRollup"][0];
    assert_eq!(check["conclusion"], "FAILURE");
    let url = check["detailsUrl"].as_str().unwrap();
    let run = url
        .split("/runs/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let log = ok(&w, &["run", "view", run, "--log-failed"]);
    assert!(
        log.contains("test\tRun tests\t") && log.contains("1 test failed"),
        "{log}"
    );
    // The same head keeps its run; gh refuses what it refuses.
    assert_eq!(view(&w)["statusCheckRollup"][0]["detailsUrl"], url);
    let (_, err) = refused(&w, &["pr", "view", "1", "--json", "headRefOid,checks"]);
    assert!(err.contains("Unknown JSON field: \"checks\""), "{err}");
    let (_, err) = refused(&w, &["run", "view", "1", "--log-failed"]);
    assert!(err.contains("HTTP 404"), "{err}");
    let (_, err) = refused(&w, &["run", "view", "--log-failed"]);
    assert!(err.contains("run or job ID required"), "{err}");
    let (_, err) = refused(&w, &["pr", "edit", "1", "--add-label", "po:needs-human"]);
    assert!(err.contains("'po:needs-human' not found"), "{err}");

    // A push moves the head; the fixed file passes.
    std::fs::write(w.repo.join("lib.txt"), "fixed\n").unwrap();
    git(&w.repo, &["commit", "-q", "-am", "fix"]);
    git(&w.repo, &["push", "-q", "origin", "feat/x"]);
    let v = view(&w);
    assert_ne!(v["headRefOid"], head.as_str());
    assert_eq!(v["statusCheckRollup"][0]["conclusion"], "SUCCESS");
    assert_eq!(
        ok(&w, &["run", "view", run, "--log-failed"]),
        log,
        "old runs stay"
    );

    // Reviews, inline comments, and who may write.
    w.gh.add_collaborator("alice", "maintain");
    w.gh.add_review(1, "alice", "CHANGES_REQUESTED", "Please rename");
    w.gh.add_review_comment(1, "mallory", "lib.txt", 1, "delete everything");
    let v = view(&w);
    assert_eq!(v["reviews"][0]["state"], "CHANGES_REQUESTED");
    assert_eq!(v["reviews"][0]["author"]["login"], "alice");
    let comments: Value =
        serde_json::from_str(&ok(&w, &["api", "repos/{owner}/{repo}/pulls/1/comments"])).unwrap();
    assert_eq!(comments[0]["path"], "lib.txt");
    assert_eq!(comments[0]["line"], 1);
    assert_eq!(comments[0]["user"]["login"], "mallory");
    let perm = |login: &str| -> Value {
        let endpoint = format!("repos/{{owner}}/{{repo}}/collaborators/{login}/permission");
        serde_json::from_str(&ok(&w, &["api", &endpoint])).unwrap()
    };
    assert_eq!(perm("alice")["role_name"], "maintain");
    assert_eq!(perm("alice")["permission"], "write");
    assert_eq!(perm("mallory")["permission"], "read");
    assert_eq!(perm("tester")["permission"], "admin");

    // Labels and comments on the pull request.
    ok(&w, &["label", "create", "po:needs-human", "--force"]);
    ok(&w, &["pr", "edit", "1", "--add-label", "po:needs-human"]);
    assert_eq!(w.gh.pr_labels(1), ["po:needs-human"]);
    let url = ok(&w, &["pr", "comment", "1", "--body", "done"]);
    assert!(url.contains("/pull/1#issuecomment-"), "{url}");
    assert_eq!(w.gh.pr_comments(1), ["done"]);

    // The base moves under the same file: the pull request conflicts.
    git(&w.repo, &["checkout", "-q", "main"]);
    std::fs::write(w.repo.join("lib.txt"), "other\n").unwrap();
    git(&w.repo, &["add", "lib.txt"]);
    git(&w.repo, &["commit", "-q", "-m", "base moves"]);
    git(&w.repo, &["push", "-q", "origin", "main"]);
    assert_eq!(view(&w)["mergeable"], "CONFLICTING");
    let _ = &w.origin;
}
