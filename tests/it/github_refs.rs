//! References to other repositories and @mentions, through the GitHub
//! double: an item that names another repository's issue is a link, never a
//! sub-issue (so no pull request closes it), and nothing po posts notifies
//! the people the copied text mentions.

use crate::parse_support;
use crate::support_gh;

use std::process::Command;

use parse_support::*;
use predicates::prelude::*;
use serde_json::json;
use support_gh::FakeGh;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
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

/// Master issue 1234 of owner/repo: items naming issues here and elsewhere.
const MASTER: &str = "## GitHub issues and other tickets\n\n\
- [ ] https://github.com/pyg-team/pytorch_geometric/issues/8128\n\
- [ ] #1235\n\
- [ ] owner/repo#1236\n\
- [ ] https://github.com/gone/away/issues/5\n\
- [ ] https://github.com/NVIDIA/cutlass/pull/1121#event-10532195900\n\
- [ ] https://github.com/owner/repo/pull/1237\n";

fn github(repo: &Repo) -> FakeGh {
    let gh = FakeGh::new(repo.path());
    gh.add_issue(1234, "Port to the new stack", MASTER);
    gh.add_issue(1235, "Local one", "Here.");
    gh.add_issue(1236, "Local two", "Also here.");
    gh.add_pr(
        1237,
        "feat/x",
        "0000000000000000000000000000000000000000",
        "OPEN",
    );
    gh.add_foreign_issue("pyg-team/pytorch_geometric", 8128, "Crash on load");
    gh.add_foreign_pr("NVIDIA/cutlass", 1121, "Fix the GEMM epilogue");
    gh
}

#[test]
fn references_elsewhere_are_links_with_their_titles_and_never_sub_issues() {
    let repo = Repo::new();
    let gh = github(&repo);
    let out = parse(&repo, &gh).arg("1234").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let view =
        |n: &str, r: &str, what: &str| argv(&[what, "view", n, "--repo", r, "--json", "title"]);
    assert_eq!(
        gh.calls(),
        [
            argv(&["issue", "view", "1234", "--json", "number,title,body,url"]),
            view("8128", "pyg-team/pytorch_geometric", "issue"),
            view("5", "gone/away", "issue"),
            view("1121", "NVIDIA/cutlass", "pr"),
            view("1237", "owner/repo", "pr"),
            argv(&["issue", "view", "1235", "--json", "number,title,body,url"]),
            argv(&["issue", "view", "1236", "--json", "number,title,body,url"]),
        ]
    );
    let s = |n| repo.status("1234", n);
    // Another repository's issue: a link, its title read, no sub-issue.
    assert_eq!(s(1)["sub_issue"], json!(null));
    assert_eq!(s(1)["title"], "Crash on load");
    assert_eq!(
        s(1)["reference"],
        json!({"repo": "pyg-team/pytorch_geometric", "number": 8128, "kind": "issue", "title": "Crash on load"})
    );
    assert_eq!(
        s(1)["body"],
        "**Refs**: pyg-team/pytorch_geometric#8128 \
         (https://github.com/pyg-team/pytorch_geometric/issues/8128)\n\
         **Section**: GitHub issues and other tickets"
    );
    assert_eq!(s(1)["branch"], "feat/issue-1234-agent-1");
    // This repository's issues, bare or in full: sub-issues.
    assert_eq!(s(2)["sub_issue"], 1235);
    assert_eq!(s(3)["sub_issue"], 1236);
    assert_eq!(s(3)["title"], "Local two");
    // A repository gh cannot read: the reference is the title; not fatal.
    assert_eq!(s(4)["title"], "gone/away#5");
    assert_eq!(s(4)["sub_issue"], json!(null));
    // A pull request, elsewhere or here, is never a sub-issue.
    assert_eq!(s(5)["title"], "Fix the GEMM epilogue");
    assert_eq!(s(5)["sub_issue"], json!(null));
    assert_eq!(s(6)["sub_issue"], json!(null));
    assert_eq!(s(6)["title"], "Work on feat/x");
    assert!(
        err.contains(
            "ℹ️  3 references to other repositories are kept as links (`Refs …`) and never \
             closed: pyg-team/pytorch_geometric#8128, gone/away#5, NVIDIA/cutlass#1121\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "Some referenced titles could not be read, so the reference is the title \
             (gone/away#5: GraphQL: Could not resolve to a Repository with the name 'gone/away'. \
             (repository))"
        ),
        "{err}"
    );
}

#[test]
fn the_dry_run_shows_references_and_sub_issues_apart() {
    let repo = Repo::new();
    let gh = github(&repo);
    parse(&repo, &gh)
        .args(["1234", "--dry-run"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(
                "1. Crash on load [refs pyg-team/pytorch_geometric#8128] (section: GitHub issues \
                 and other tickets; estimated complexity: ",
            )
            .and(predicate::str::contains("2. Local one [#1235] ("))
            .and(predicate::str::contains(
                "Pull requests: po-spawn opens one per completed task (up to 6), as it does for \
                 a GitHub issue; `po-spawn --no-pr` opens none",
            )),
        );
}

#[test]
fn sub_issues_are_filed_only_for_tasks_without_one_and_refer_to_the_other_repository() {
    let repo = Repo::new();
    let gh = github(&repo);
    gh.set_next_number(2000);
    parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .assert()
        .success();
    let filed = gh.issue(2000);
    assert_eq!(filed["title"], "[Master #1234] Crash on load");
    let body = filed["body"].as_str().unwrap();
    assert!(
        body.contains("**Refs**: pyg-team/pytorch_geometric#8128 ("),
        "{body}"
    );
    assert!(!body.contains("Closes"), "{body}");
    // The issue of the other repository was only read.
    assert_eq!(
        gh.snapshot()["foreign"]["pyg-team/pytorch_geometric"]["issues"]["8128"]["title"],
        "Crash on load"
    );
    assert_eq!(repo.status("1234", 1)["sub_issue"], 2000);
    assert_eq!(repo.status("1234", 2)["sub_issue"], 1235);
}

#[test]
fn a_markdown_file_asks_gh_which_repository_it_is_in() {
    let repo = Repo::new();
    let gh = FakeGh::new(repo.path());
    gh.add_foreign_issue("org/other", 8128, "Theirs");
    std::fs::write(
        repo.path().join("plan.md"),
        "- [ ] https://github.com/owner/repo/issues/7\n- [ ] https://github.com/org/other/issues/8128\n- [ ] #9\n",
    )
    .unwrap();
    parse(&repo, &gh).arg("plan.md").assert().success();
    assert_eq!(
        gh.calls()[0],
        argv(&["repo", "view", "--json", "nameWithOwner"])
    );
    assert_eq!(repo.status("plan", 1)["sub_issue"], 7);
    assert_eq!(repo.status("plan", 2)["sub_issue"], json!(null));
    assert_eq!(repo.status("plan", 2)["title"], "Theirs");
    assert_eq!(repo.status("plan", 3)["sub_issue"], 9);

    // Where gh cannot tell, only a bare `#N` is this repository's.
    gh.no_github_remote();
    parse(&repo, &gh)
        .args(["plan.md", "--id", "unknown"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "ℹ️  The repository po-parse runs in is unknown (none of the git remotes configured \
             for this repository point to a known GitHub host. To tell gh about a new GitHub \
             host, please use `gh auth login`): `owner/repo#N` and issue URLs are kept as links \
             and never closed; only a bare `#N` names an issue of this repository\n",
        ));
    assert_eq!(repo.status("unknown", 1)["sub_issue"], json!(null));
    assert_eq!(repo.status("unknown", 1)["title"], "owner/repo#7");
    assert_eq!(repo.status("unknown", 3)["sub_issue"], 9);

    // Without gh at all (Repo::cmd's default), the same, and no failure.
    repo.cmd()
        .args(["plan.md", "--id", "nogh"])
        .assert()
        .success();
    assert_eq!(repo.status("nogh", 1)["sub_issue"], json!(null));
    assert_eq!(repo.status("nogh", 2)["title"], "org/other#8128");
}

#[test]
fn sub_issues_quote_the_mentions_they_copy() {
    let repo = Repo::new();
    let gh = FakeGh::new(repo.path());
    gh.add_issue(
        1234,
        "Epic",
        "- [ ] Notebook accessibility @amunger\n  Ask @org/a11y-team; mail a@b.com; run `@keep`:\n\n  ```\n  @in-code\n  ```\n",
    );
    gh.set_next_number(100);
    parse(&repo, &gh)
        .args(["1234", "--create-sub-issues"])
        .assert()
        .success();
    let calls = gh.calls();
    let create = calls
        .iter()
        .find(|c| c[..2] == argv(&["issue", "create"])[..])
        .unwrap();
    assert_eq!(
        create[3],
        "[Master #1234] Notebook accessibility `@amunger`"
    );
    let body = &create[5];
    assert!(
        body.contains("**Task**: Notebook accessibility `@amunger`\n"),
        "{body}"
    );
    assert!(
        body.contains("Ask `@org/a11y-team`; mail a@b.com; run `@keep`:"),
        "{body}"
    );
    assert!(body.contains("```\n@in-code\n```"), "{body}");
    assert!(
        body.contains("- Notebook accessibility `@amunger`: implemented"),
        "{body}"
    );
    assert_eq!(gh.issue(100)["body"].as_str(), Some(body.as_str()));
    // The status file keeps the text as written.
    assert_eq!(
        repo.status("1234", 1)["title"],
        "Notebook accessibility @amunger"
    );
}

fn fake_gh(gh: &FakeGh, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(gh.program());
    c.args(args).current_dir(dir);
    gh.apply(&mut c);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_double_reads_other_repositories_as_strictly_as_github() {
    let tmp = tempfile::tempdir().unwrap();
    let gh = FakeGh::new(tmp.path());
    gh.add_foreign_issue("org/other", 8128, "Theirs");
    let (code, out, _) = fake_gh(
        &gh,
        tmp.path(),
        &[
            "issue",
            "view",
            "8128",
            "--repo",
            "org/other",
            "--json",
            "title,url",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json!({"title": "Theirs", "url": "https://github.com/org/other/issues/8128"})
    );
    let (code, _, err) = fake_gh(
        &gh,
        tmp.path(),
        &[
            "issue",
            "view",
            "1",
            "--repo",
            "org/other",
            "--json",
            "title",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Could not resolve to an issue or pull request with the number of 1."),
        "{err}"
    );
    let (code, _, err) = fake_gh(
        &gh,
        tmp.path(),
        &[
            "issue",
            "view",
            "1",
            "--repo",
            "nobody/nothing",
            "--json",
            "title",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "GraphQL: Could not resolve to a Repository with the name 'nobody/nothing'. (repository)"
    );
    // Another repository can be read, not written.
    let (code, _, err) = fake_gh(
        &gh,
        tmp.path(),
        &[
            "issue",
            "comment",
            "8128",
            "--repo",
            "org/other",
            "--body",
            "hi",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(gh.snapshot()["foreign"]["org/other"]["issues"]["8128"]["comments"].is_null());
    let (code, out, _) = fake_gh(
        &gh,
        tmp.path(),
        &["repo", "view", "--json", "nameWithOwner"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, r#"{"nameWithOwner": "owner/repo"}"#)
    );
    let (code, _, err) = fake_gh(&gh, tmp.path(), &["repo", "view", "--json", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("Unknown JSON field: \"nope\""), "{err}");
}
