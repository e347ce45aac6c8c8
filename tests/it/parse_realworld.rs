//! `po-parse` on issue bodies people wrote (`tests/fixtures/parse/realworld/`,
//! sources in its SOURCES.tsv): what each becomes, as a reader of the issue
//! would have it.

use crate::parse_support;

use parse_support::*;
use serde_json::Value;

fn realworld(name: &str) -> std::path::PathBuf {
    fixture("realworld").join(name)
}

/// `po-parse --dry-run --json FILE [ARGS]`: the plan, or the failure's stderr.
fn plan(name: &str, args: &[&str]) -> Result<Value, (i32, String)> {
    let repo = Repo::new();
    let out = repo
        .cmd()
        .args(["--dry-run", "--json"])
        .args(args)
        .arg(realworld(name))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

fn titles(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

fn skipped(v: &Value) -> Vec<(String, String)> {
    v["report"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["title"].as_str().unwrap().to_string(),
                k["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn no_tasks(name: &str) -> String {
    match plan(name, &[]) {
        Ok(v) => panic!("{name}: tasks {:?}", titles(&v)),
        Err((code, err)) => {
            assert_eq!(code, 3, "{err}");
            err
        }
    }
}

#[test]
fn every_fixture_is_named_in_sources() {
    let sources = std::fs::read_to_string(realworld("SOURCES.tsv")).unwrap();
    let named: Vec<&str> = sources
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(fixture("realworld"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    files.sort();
    assert_eq!(files, named);
}

#[test]
fn a_rust_tracking_issue_wraps_titles_and_keeps_open_children_of_done_steps() {
    // rust-lang/rust#153554: the tracking-issue template.
    let v = plan("22-rust-153554.md", &[]).unwrap();
    assert_eq!(
        titles(&v),
        [
            "(non-blocking) Formatting has been implemented in `rustfmt`",
            "Stabilization PR (see instructions on rustc-dev-guide)"
        ]
    );
    assert_eq!(v["tasks"][0]["section"], "Steps");
    let sk = skipped(&v);
    assert_eq!(
        sk[0],
        (
            "Implement the RFC (cc @rust-lang/XXX -- can anyone write up mentoring instructions?)"
                .into(),
            "checked".into()
        ),
        "a wrapped item is one title"
    );
    assert_eq!(sk.len(), 5);
}

#[test]
fn an_rfc_tracker_has_several_checklists_and_section_picks_one() {
    // rust-lang/rust#97889.
    let v = plan("17-rust-97889-on-broken-pipe.md", &[]).unwrap();
    assert_eq!(titles(&v).len(), 10);
    let notes = v["report"]["notes"].as_array().unwrap();
    assert!(
        notes[0].as_str().unwrap().starts_with(
            "The tasks come from 3 sections: Steps (4), Unresolved Questions That Blocks \
             Stabilisation (5), Unresolved Questions That Does Not Block Stabilisation (1)"
        ),
        "{notes:?}"
    );
    let v = plan("17-rust-97889-on-broken-pipe.md", &["--section", "steps"]).unwrap();
    assert_eq!(
        titles(&v),
        [
            "Use the attribute in a broad set of non-test-case places to learn how it works in practice.",
            "Add a test for `#[unix_sigpipe = \"inherit\"]` that test that the disposition is \
             actually inherited, rather than assuming SIG_DFL shall always be inherited.",
            "Final comment period (FCP)",
            "Stabilization PR",
        ]
    );
    // An item that opens with a linked word is no reference.
    let v = plan(
        "17-rust-97889-on-broken-pipe.md",
        &["--section", "That Blocks"],
    )
    .unwrap();
    let t = &v["tasks"][2];
    assert!(
        t["title"]
            .as_str()
            .unwrap()
            .starts_with("currently child processes get `SIG_IGN`"),
        "{t}"
    );
    assert!(t.get("reference").is_none(), "{t}");
    let (code, err) = plan("17-rust-97889-on-broken-pipe.md", &["--section", "Nope"]).unwrap_err();
    assert_eq!(code, 3);
    assert!(
        err.contains("no heading matches `--section Nope`; the headings are `### Usage`"),
        "{err}"
    );
}

#[test]
fn struck_through_items_are_not_applicable() {
    // python/steering-council#167: two SIG-specific items struck with `~`.
    let v = plan("08-steering-council-167.md", &[]).unwrap();
    assert_eq!(
        titles(&v),
        ["The PEP includes endorsements from the projects/groups/people it helps"]
    );
    let struck: Vec<String> = skipped(&v)
        .into_iter()
        .filter(|(_, r)| r == "struck through: not applicable")
        .map(|(t, _)| t)
        .collect();
    assert_eq!(struck.len(), 2);
    assert!(struck[0].starts_with("typing-sig PEPs: link to Guido/Jelle's"));
    assert!(titles(&v).iter().all(|t| !t.contains('~')));
}

#[test]
fn task_items_inside_numbers_and_tasklist_blocks() {
    // mdn/sprints#3689: `1. - [ ] …`.
    let v = plan(
        "19-mdn-sprints-3689.md",
        &["--section", "Implementation Ready"],
    )
    .unwrap();
    assert_eq!(
        titles(&v),
        [
            "Acceptance criteria defined",
            "Team understands acceptance criteria",
            "User workflows defined / designed",
            "Acceptance criteria is verifiable",
            "External / 3rd Party dependencies identified",
        ]
    );
    // nion-software/nionswift#1146: a ```[tasklist] block.
    let v = plan("03-nionswift-1146.md", &[]).unwrap();
    assert_eq!(titles(&v), ["Data panel filtering"]);
    // teranex/vimwiki-tasks#29: a checklist in an ordinary code block is an example.
    let err = no_tasks("13-vimwiki-tasks-29.md");
    assert!(
        err.contains("no tasks found: 1 fenced code block (never read)"),
        "{err}"
    );
}

#[test]
fn references_to_other_repositories_are_links_not_sub_issues() {
    // An argonne-lcf TODO file: issues of six other projects.
    let v = plan("33-alcf-todo-excerpt.md", &[]).unwrap();
    assert_eq!(titles(&v).len(), 6);
    for t in v["tasks"].as_array().unwrap() {
        assert!(t["sub_issue"].is_null(), "{t}");
        assert!(t["reference"]["repo"].is_string(), "{t}");
    }
    assert_eq!(v["tasks"][1]["title"], "pyg-team/pytorch_geometric#8128");
    // pytorch/pytorch#93581: references under bold bullets, with assignees.
    let v = plan("27-pytorch-93581.md", &[]).unwrap();
    assert_eq!(titles(&v).len(), 10);
    assert_eq!(v["tasks"][2]["title"], "pytorch/pytorch#93586");
    assert!(
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["sub_issue"].is_null())
    );
    // microsoft/vscode-dotnettools#900: the only list is of issue links.
    let v = plan("14-vscode-dotnettools-900.md", &[]).unwrap();
    assert_eq!(v["report"]["format"], "links");
    assert_eq!(titles(&v).len(), 16);
    // multi-core-python#34: bare `#N` is this repository's.
    let v = plan("07-multi-core-python-34.md", &[]).unwrap();
    assert_eq!(v["tasks"][0]["sub_issue"], 33);
}

#[test]
fn an_iteration_plan_skips_what_it_defers() {
    // microsoft/vscode's May 2023 plan.
    let v = plan("16-vscode-iteration-plan-may-2023.md", &[]).unwrap();
    assert_eq!(titles(&v).len(), 61);
    let sk = skipped(&v);
    assert_eq!(sk.iter().filter(|(_, r)| r == "checked").count(), 1);
    assert_eq!(
        sk.iter()
            .filter(|(_, r)| r == "under `### Deferred`: not this work")
            .count(),
        12
    );
    assert_eq!(v["tasks"][0]["section"], "Accessibility");
    assert_eq!(
        v["tasks"][0]["title"],
        "Notebook output accessibility vscode#178630 @amunger"
    );
    let v = plan(
        "16-vscode-iteration-plan-may-2023.md",
        &["--section", "Deferred"],
    )
    .unwrap();
    assert_eq!(titles(&v).len(), 12);
}

#[test]
fn plain_bullets_count_only_under_a_heading_that_names_the_work() {
    // rubenmarcus/ralph-starter#237: `## Implementation` steps, not `## Architecture`.
    let v = plan("31-ralph-starter-237.md", &[]).unwrap();
    assert_eq!(titles(&v).len(), 5);
    assert_eq!(
        v["tasks"][0]["title"],
        "Swarm mode: `ralph-starter auto --swarm --agent amp`"
    );
    // limlabs/saleor-storefront-starter#117: an unfilled template.
    let err = no_tasks("20-limlabs-saleor-117.md");
    assert!(
        err.contains(
            "3 plain bullets (3 under `### Tasks`, all template placeholders such as \
             `[Task 1]`) in `### Tasks` (the only part read)"
        ),
        "{err}"
    );
}

#[test]
fn no_tasks_says_what_the_issue_holds() {
    for (name, found) in [
        (
            "09-steering-council-188.md",
            "5 checklist items, all checked",
        ),
        ("10-deno-23000.md", "3 checklist items, all checked"),
        ("21-cisagov-717.md", "only text (2 paragraphs)"),
        ("23-ruff-27051.md", "1 table"),
        (
            "29-omegarazer-bdfrx-1.md",
            "13 checklist items, all checked",
        ),
        (
            "18-limlabs-saleor-130.md",
            "1 checklist item, all checked in `### Tasks` (the only part read); outside \
             it, 1 open checklist item (1 under `### Dependencies`): `--section Dependencies` \
             reads those",
        ),
    ] {
        let err = no_tasks(name);
        assert!(
            err.contains(&format!("no tasks found: {found}")),
            "{name}: {err}"
        );
    }
    let v = plan("18-limlabs-saleor-130.md", &["--section", "Dependencies"]).unwrap();
    assert_eq!(v["tasks"][0]["sub_issue"], 128);
}

#[test]
fn tracking_issues_read_as_before() {
    for (name, n) in [
        ("01-bevy-website-1396.md", 1),
        ("02-bevy-website-2014.md", 16),
        ("04-py-setproctitle-147.md", 1),
        ("05-multidict-1014.md", 5),
        ("06-k8s-enhancements-3284.md", 1),
        ("11-stratum-55.md", 1),
        ("12-near-mpc-3839.md", 1),
        ("15-brainhack-global2020-71.md", 5),
        ("25-vscode-remote-release-1775.md", 1),
        ("26-pytorch-111220.md", 1),
        ("28-pytorch-92670.md", 1),
        ("32-hrcore-7.md", 10),
    ] {
        let v = plan(name, &[]).unwrap();
        assert_eq!(titles(&v).len(), n, "{name}: {:?}", titles(&v));
    }
    // The nested guidance of an open step is its body.
    let v = plan("05-multidict-1014.md", &[]).unwrap();
    assert_eq!(
        v["tasks"][2]["title"],
        "Audit the C extension module for thread-safety issues"
    );
    let v = plan("32-hrcore-7.md", &["--section", "Child issues"]).unwrap();
    let subs: Vec<&Value> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["sub_issue"])
        .collect();
    assert_eq!(subs, [44, 45, 46, 47]);
}
