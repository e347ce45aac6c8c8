use super::*;

fn titles(ex: &Extracted) -> Vec<&str> {
    ex.tasks.iter().map(|t| t.title.as_str()).collect()
}

fn skipped(ex: &Extracted) -> Vec<(&str, &str)> {
    ex.skipped
        .iter()
        .map(|k| (k.title.as_str(), k.reason.as_str()))
        .collect()
}

#[test]
fn seed_checklist_drops_sub_task_prefixes() {
    let ex = extract(
        "<!-- GitHub issue checklist format -->\n- [ ] Sub-task 1: Add authentication\n\
         - [ ] Sub-task 2: Add authorization\n- [x] Sub-task 3: Add JWT support\n",
    );
    assert_eq!(titles(&ex), ["Add authentication", "Add authorization"]);
    assert_eq!(ex.tasks[1].label, Some(2));
    assert_eq!(ex.skipped.len(), 1);
    assert_eq!(ex.skipped[0].title, "Add JWT support");
    assert_eq!(ex.skipped[0].line, 4);
    assert_eq!(ex.format, "checklist");
}

#[test]
fn numbered_lists_with_dots_and_parens() {
    let ex = extract("Intro.\n\n1. Implement user model\n2) Create user API\n3. Add user tests\n");
    assert_eq!(
        titles(&ex),
        ["Implement user model", "Create user API", "Add user tests"]
    );
    assert_eq!(ex.tasks[2].label, Some(3));
}

#[test]
fn sections_with_headers_are_the_only_part_read() {
    let ex = extract(
        "# Epic\n- [ ] not a task\n## Sub-Tasks\n### Authentication Module\nImplement OAuth2 \
         authentication...\n\n```\n### not a header\n```\n### Authorization Middleware\nAdd \
         role-based access control...\n## Notes\n- [ ] also not\n",
    );
    assert_eq!(
        titles(&ex),
        ["Authentication Module", "Authorization Middleware"]
    );
    assert_eq!(
        ex.tasks[0].body,
        "Implement OAuth2 authentication...\n\n```\n### not a header\n```"
    );
    assert_eq!(ex.format, "sections");
}

#[test]
fn nested_lines_belong_to_their_parent() {
    let ex = extract(
        "- [ ] Parent\n  - [ ] child step\n  details `src/a.rs`\n\n    more\n- [ ] Next\nlazy line\n",
    );
    // A lazy continuation line goes on the item's paragraph: one title.
    assert_eq!(titles(&ex), ["Parent", "Next lazy line"]);
    assert_eq!(
        ex.tasks[0].body,
        "- [ ] child step\ndetails `src/a.rs`\n\n  more"
    );
    assert_eq!(ex.tasks[1].body, "");
}

#[test]
fn code_comments_and_quotes_are_never_tasks() {
    let ex = extract(
        "```md\n- [ ] in code\n```\n<!--\n- [ ] in comment\n-->\n> - [ ] quoted\n~~~\n1. x\n~~~\n- [ ] real <!-- note -->\n",
    );
    assert_eq!(titles(&ex), ["real"]);
}

#[test]
fn issue_references_are_kept_for_resolution() {
    let ex = extract("- [ ] #123\n- [ ] #124: Add tests\n* [ ] star\n+ [ ] plus\n");
    let r = ex.tasks[0].reference.as_ref().unwrap();
    assert_eq!((r.repo.as_deref(), r.number), (None, 123));
    assert_eq!(ex.tasks[0].title, "Issue #123");
    assert_eq!(ex.tasks[1].reference.as_ref().unwrap().number, 124);
    assert_eq!(ex.tasks[1].title, "Add tests");
    assert_eq!(titles(&ex)[2..], ["star", "plus"]);
    // Local or not is decided later, against the repository po runs in.
    assert!(ex.tasks.iter().all(|t| t.sub_issue.is_none()));
    let ex = extract("- [ ] https://github.com/org/other/issues/8128\n");
    assert_eq!(ex.tasks[0].title, "org/other#8128");
}

#[test]
fn checklists_win_over_numbered_lists() {
    let ex = extract("1. step one\n2. step two\n\n- [ ] the task\n");
    assert_eq!(titles(&ex), ["the task"]);
}

#[test]
fn no_prefix_of_a_tricky_text_panics() {
    let tricky = "# É\n## Sub-Tasks\n### Sub-task 3: ünï\n- [ ] #12 é\n\t- [x] ✓\n1) ß\n\
                  ```[tasklist]\n- [ ] ~~é~~\n```\n<!-- é -->\n```\n> ẞ\n- [ ] Task #4 — ü after task 1, once #12 is done\n\
                  * [ ] `src/é/` requires ü.py\n  <!--\n| a | b |\n|---|---|\n| ü | [x] |\n";
    for (i, _) in tricky.char_indices() {
        let ex = extract(&tricky[..i]);
        let _ = crate::plan::Plan::from_extracted(ex);
        let _ = extract_with(&tricky[..i], &["sub".into()]);
    }
}

#[test]
fn prefixes() {
    assert_eq!(strip_prefix("Sub-task 3: X"), ("X".into(), Some(3)));
    assert_eq!(strip_prefix("Task #4 - Y"), ("Y".into(), Some(4)));
    assert_eq!(
        strip_prefix("Tasks are fun"),
        ("Tasks are fun".into(), None)
    );
    assert_eq!(strip_prefix("Task 5"), ("Task 5".into(), None));
}

#[test]
fn wrapped_items_are_one_title() {
    // The rust-lang tracking-issue template.
    let ex = extract(
        "### Steps\n\n- [ ] Implement the RFC (cc @rust-lang/XXX -- can anyone write up mentoring\n      \
         instructions?)\n- [ ] Adjust documentation ([see instructions on rustc-dev-guide][doc-guide])\n\n\
         [doc-guide]: https://rustc-dev-guide.rust-lang.org/implementing_new_features.html#documentation-prs\n",
    );
    assert_eq!(
        titles(&ex),
        [
            "Implement the RFC (cc @rust-lang/XXX -- can anyone write up mentoring instructions?)",
            "Adjust documentation (see instructions on rustc-dev-guide)"
        ]
    );
    assert_eq!(ex.tasks[0].body, "");
    assert_eq!(
        ex.tasks[1].links,
        [(
            "see instructions on rustc-dev-guide".to_string(),
            "https://rustc-dev-guide.rust-lang.org/implementing_new_features.html#documentation-prs"
                .to_string()
        )]
    );
    // A new sentence on the next line is the body, as before.
    let ex = extract("- [ ] Cart data model\n  Lives in `models/cart.py`.\n");
    assert_eq!(titles(&ex), ["Cart data model"]);
    assert_eq!(ex.tasks[0].body, "Lives in `models/cart.py`.");
}

#[test]
fn open_children_of_a_checked_item_are_tasks_with_their_parent_named() {
    let ex = extract(
        "### Steps\n\n- [x] Style updates for any new syntax\n  - [x] Style team decision\n  \
         - [ ] (non-blocking) Formatting has been implemented in `rustfmt`\n- [ ] Stabilization PR\n",
    );
    assert_eq!(
        titles(&ex),
        [
            "(non-blocking) Formatting has been implemented in `rustfmt`",
            "Stabilization PR"
        ]
    );
    assert_eq!(
        ex.tasks[0].parent.as_deref(),
        Some("Style updates for any new syntax (checked)")
    );
    assert_eq!(ex.tasks[0].section.as_deref(), Some("Steps"));
    assert_eq!(
        skipped(&ex),
        [
            ("Style updates for any new syntax", "checked"),
            ("Style team decision", "checked")
        ]
    );
    // Under an open item, children (checked or not) are its body.
    let ex = extract("- [ ] Use it\n  - [x] a\n  - [ ] b\n");
    assert_eq!(titles(&ex), ["Use it"]);
    assert_eq!(ex.tasks[0].body, "- [x] a\n- [ ] b");
    assert!(ex.skipped.is_empty());
}

#[test]
fn task_items_inside_other_list_markers_and_plain_bullets() {
    let ex = extract(
        "# Implementation Ready Checklist\n1. - [ ] Acceptance criteria defined\n2. - [x] Team understands\n\
         3. - [ ] User workflows defined\n",
    );
    assert_eq!(
        titles(&ex),
        ["Acceptance criteria defined", "User workflows defined"]
    );
    assert_eq!(ex.tasks[1].line, 4);
    let ex =
        extract("* **test_nn.py**\n  - [ ] pytorch/pytorch#93586 (@yanboliang)\n  - [x] done\n");
    // The words after the reference only annotate it: the body keeps them.
    assert_eq!(titles(&ex), ["pytorch/pytorch#93586"]);
    assert_eq!(ex.tasks[0].body, "(@yanboliang)");
    assert_eq!(ex.tasks[0].parent.as_deref(), Some("test_nn.py"));
    assert_eq!(
        ex.tasks[0].reference.as_ref().unwrap().to_string(),
        "pytorch/pytorch#93586"
    );
}

#[test]
fn tasklist_blocks_hold_tasks_other_fences_hold_code() {
    let ex = extract(
        "This is an epic issue.\n```[tasklist]\n### Tasks\n- [ ] Data panel filtering\n- [ ] https://github.com/o/r/issues/4\n```\n\
         ```\n- [ ] an example, not a task\n```\n",
    );
    assert_eq!(titles(&ex), ["Data panel filtering", "o/r#4"]);
    assert_eq!(ex.tasks[0].line, 4);
    assert_eq!(ex.tasks[0].section.as_deref(), Some("Tasks"));
}

#[test]
fn struck_items_are_skipped_as_not_applicable() {
    let ex = extract(
        "* [x] The PEP has a CODEOWNERS entry\n\nSIG-specific:\n* [ ] ~*typing-sig* PEPs: link to Guido's confirmation~\n\
         * [ ] ~~Packaging PEPs: ask the delegate~~\n- [ ] Support ~~Windows~~ Linux\n",
    );
    assert_eq!(titles(&ex), ["Support Linux"]);
    assert_eq!(
        skipped(&ex),
        [
            ("The PEP has a CODEOWNERS entry", "checked"),
            (
                "typing-sig PEPs: link to Guido's confirmation",
                "struck through: not applicable"
            ),
            (
                "Packaging PEPs: ask the delegate",
                "struck through: not applicable"
            ),
        ]
    );
    assert!(ex.tasks.iter().all(|t| !t.title.contains('~')));
}

#[test]
fn plain_bullets_under_a_heading_that_names_the_work() {
    let ex = extract(
        "## Summary\n\n- not work\n\n## TODO\n\n- Write the parser\n  - with tests\n- Document it\n\n## Notes\n- nor this\n",
    );
    assert_eq!(titles(&ex), ["Write the parser", "Document it"]);
    assert_eq!(ex.tasks[0].body, "- with tests");
    assert_eq!(ex.format, "bullets");
    for h in [
        "### Tasks",
        "## Sub-tasks",
        "## Plan",
        "## Steps",
        "## To do",
    ] {
        let ex = extract(&format!("{h}\n- a\n- b\n"));
        assert_eq!(titles(&ex), ["a", "b"], "{h}");
    }
    // A checklist anywhere wins: bullets are text then.
    let ex = extract("## TODO\n- a\n\n- [ ] b\n");
    assert_eq!(titles(&ex), ["b"]);
    // A template's placeholders are not tasks.
    let ex = extract("### Tasks\n- [Task 1]\n- [Task 2]\n");
    assert!(ex.tasks.is_empty());
    assert_eq!(skipped(&ex)[0], ("[Task 1]", "a template's placeholder"));
}

#[test]
fn a_list_of_issue_links_is_the_work_when_nothing_else_is() {
    let ex = extract(
        "### Describe the Issue\n\nBelow is the list of items.\n\n- https://github.com/microsoft/vscode-dotnettools/issues/138\n\
         - https://github.com/microsoft/vscode-dotnettools/issues/49\n\nSee also [x](https://example.com).\n",
    );
    assert_eq!(ex.format, "links");
    assert_eq!(
        titles(&ex),
        [
            "microsoft/vscode-dotnettools#138",
            "microsoft/vscode-dotnettools#49"
        ]
    );
    // A list that mixes links with other text is not such a list.
    let ex = extract("- #1\n- something\n");
    assert!(ex.tasks.is_empty());
}

#[test]
fn sections_are_chosen_by_heading() {
    let text = "### Steps\n- [ ] Implement\n- [ ] Stabilize\n\n### Unresolved Questions That Block\n- [ ] Name?\n\n\
                ### Unresolved Questions That Do Not Block\n- [ ] Default?\n\n### Resolved Questions\n- [x] Old\n";
    let ex = extract(text);
    assert_eq!(ex.tasks.len(), 4);
    assert_eq!(ex.notes.len(), 1, "{:?}", ex.notes);
    assert!(
        ex.notes[0].starts_with(
            "The tasks come from 3 sections: Steps (2), Unresolved Questions That Block (1), \
             Unresolved Questions That Do Not Block (1)"
        ),
        "{}",
        ex.notes[0]
    );
    let ex = extract_with(text, &["steps".into()]).unwrap();
    assert_eq!(titles(&ex), ["Implement", "Stabilize"]);
    assert!(ex.notes.is_empty());
    // Not exactly a heading: every heading that contains the name.
    let ex = extract_with(text, &["unresolved".into()]).unwrap();
    assert_eq!(titles(&ex), ["Name?", "Default?"]);
    let ex = extract_with(text, &["Unresolved Questions That Block".into()]).unwrap();
    assert_eq!(titles(&ex), ["Name?"]);
    let e = extract_with(text, &["nowhere".into()]).unwrap_err();
    assert!(e.contains("`### Steps`"), "{e}");
    // A section asked for makes its plain bullets tasks.
    let ex = extract_with("## Goals\n- one\n- two\n", &["goals".into()]).unwrap();
    assert_eq!(titles(&ex), ["one", "two"]);
}

#[test]
fn deferred_items_are_skipped_unless_asked_for() {
    let text = "### Editor\n- [ ] Now\n\n----\n### Deferred\n- [ ] Later\n";
    let ex = extract(text);
    assert_eq!(titles(&ex), ["Now"]);
    assert_eq!(
        skipped(&ex),
        [("Later", "under `### Deferred`: not this work")]
    );
    let ex = extract_with(text, &["deferred".into()]).unwrap();
    assert_eq!(titles(&ex), ["Later"]);
}

#[test]
fn the_heading_that_opens_the_text_is_its_title_not_a_section() {
    let ex = extract("# Shop\n\n- [ ] Cart\n");
    assert_eq!(ex.tasks[0].section, None);
    let ex = extract("Intro.\n\n# Steps\n\n- [ ] Cart\n");
    assert_eq!(ex.tasks[0].section.as_deref(), Some("Steps"));
}

#[test]
fn what_was_found_is_counted_for_the_no_tasks_message() {
    let ex = extract("| a |\n|---|\n| b |\n\n- [x] one\n- [x] two\n\n```\ncode\n```\n");
    assert!(ex.tasks.is_empty());
    assert_eq!(
        ex.found.describe(),
        "2 checklist items, all checked; 1 table; 1 fenced code block (never read)"
    );
    let ex = extract("### Dependencies\n- [ ] #128\n\n### Tasks\n- [x] #131\n");
    assert!(ex.tasks.is_empty());
    assert_eq!(
        ex.found.describe(),
        "1 checklist item, all checked in `### Tasks` (the only part read); outside it, 1 open \
         checklist item (1 under `### Dependencies`): `--section Dependencies` reads those"
    );
}

#[test]
fn titles_read_as_rendered_markdown_bodies_keep_markdown() {
    let ex = extract(
        "- [ ] **Add** the [`Foo`](https://docs.rs/foo) _type_\n  Use `*bar*` and **baz**:\n  ```rust\n  let x = 1;\n  ```\n",
    );
    assert_eq!(titles(&ex), ["Add the `Foo` type"]);
    assert_eq!(
        ex.tasks[0].body,
        "Use `*bar*` and **baz**:\n```rust\nlet x = 1;\n```"
    );
}
