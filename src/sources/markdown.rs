//! Sub-tasks in markdown, by the rules of the issue-driven orchestrator:
//!
//! * A `## Sub-Tasks` section (also `Tasks`, `Subtasks`, `Sub Tasks`, any
//!   heading level) is, when present, the only part read. Headings one level
//!   below it are tasks and their sections are the bodies; without such
//!   headings its lists are read.
//! * GitHub checklists (`- [ ]`, `* [ ]`, `+ [ ]`) are tasks; checked items
//!   (`[x]`) are done and are reported as skipped. When a text has checklist
//!   items, its numbered lists are ordinary text.
//! * Otherwise numbered lists (`1.` and `1)`) are tasks.
//! * Lines indented under an item (nested lists, details) are its body; so is
//!   a lazy continuation line right below it.
//! * Fenced code, HTML comments and quoted (`>`) text are never tasks.
//! * `Sub-task 3:` / `Task 3 -` prefixes are dropped from titles (the number
//!   is kept as the task's label); `- [ ] #123` names an existing issue.

use super::{Extracted, Skipped, Task};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Blank,
    /// Only an HTML comment was on the line.
    Comment,
    /// A fence line (```` ``` ```` / `~~~`).
    Fence,
    /// Inside fenced code.
    Code,
    Quote,
    Normal,
}

#[derive(Debug)]
struct Line {
    /// Tabs expanded, comments removed (except in code).
    text: String,
    indent: usize,
    kind: Kind,
    no: usize,
}

/// Split `text` (already `\n`-normalised) into classified lines.
fn classify(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for (i, raw) in text.split('\n').enumerate() {
        let expanded = expand_tabs(raw);
        let no = i + 1;
        if let Some((ch, len)) = fence {
            let t = expanded.trim();
            let run = t.chars().take_while(|&c| c == ch).count();
            let kind = if run >= len && t.chars().all(|c| c == ch) {
                fence = None;
                Kind::Fence
            } else {
                Kind::Code
            };
            out.push(line(expanded, kind, no));
            continue;
        }
        let (visible, still_open) = strip_comments(&expanded, in_comment);
        in_comment = still_open;
        if visible.trim().is_empty() {
            let kind = if expanded.trim().is_empty() {
                Kind::Blank
            } else {
                Kind::Comment
            };
            out.push(line(String::new(), kind, no));
            continue;
        }
        let t = visible.trim_start();
        let kind = if let Some(open) = fence_open(t) {
            fence = Some(open);
            Kind::Fence
        } else if t.starts_with('>') {
            Kind::Quote
        } else {
            Kind::Normal
        };
        out.push(line(visible, kind, no));
    }
    out
}

fn line(text: String, kind: Kind, no: usize) -> Line {
    let indent = text.len() - text.trim_start_matches(' ').len();
    Line {
        text,
        indent,
        kind,
        no,
    }
}

fn expand_tabs(s: &str) -> String {
    if !s.contains('\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\t' {
            let pad = 4 - (out.chars().count() % 4);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.push(c);
        }
    }
    out
}

fn fence_open(t: &str) -> Option<(char, usize)> {
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = t.chars().take_while(|&c| c == ch).count();
    (len >= 3).then_some((ch, len))
}

/// Remove `<!-- … -->` spans; returns the visible text and whether a comment
/// is still open at the end of the line.
fn strip_comments(s: &str, mut in_comment: bool) -> (String, bool) {
    let mut out = String::new();
    let mut rest = s;
    loop {
        if in_comment {
            match rest.find("-->") {
                Some(end) => {
                    rest = &rest[end + 3..];
                    in_comment = false;
                }
                None => return (out, true),
            }
        } else {
            match rest.find("<!--") {
                Some(start) => {
                    out.push_str(&rest[..start]);
                    rest = &rest[start + 4..];
                    in_comment = true;
                }
                None => {
                    out.push_str(rest);
                    return (out, false);
                }
            }
        }
    }
}

/// `## Title ##` → (2, "Title").
fn heading(l: &Line) -> Option<(usize, String)> {
    if l.kind != Kind::Normal || l.indent > 3 {
        return None;
    }
    let t = l.text.trim();
    let level = t.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let rest = rest.trim();
    let rest = match rest.trim_end_matches('#') {
        r if r.ends_with(' ') || r.is_empty() => r.trim_end(),
        _ => rest,
    };
    Some((level, rest.to_string()))
}

fn is_tasks_heading(title: &str) -> bool {
    let norm: String = title
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    matches!(norm.as_str(), "subtasks" | "tasks")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ItemKind {
    Checklist { checked: bool },
    Numbered(u64),
}

/// A list item: its kind, its text and the column its content starts at.
fn item(l: &Line) -> Option<(ItemKind, String)> {
    if l.kind != Kind::Normal {
        return None;
    }
    let t = l.text.trim_start();
    let mut chars = t.char_indices();
    let (_, first) = chars.next()?;
    if matches!(first, '-' | '*' | '+') {
        let after = &t[1..];
        let trimmed = after.trim_start_matches(' ');
        if trimmed.len() == after.len() {
            return None;
        }
        let b = trimmed.as_bytes();
        if b.len() >= 3 && b[0] == b'[' && b[2] == b']' && matches!(b[1], b' ' | b'x' | b'X') {
            let rest = &trimmed[3..];
            if !rest.is_empty() && !rest.starts_with(' ') {
                return None;
            }
            return Some((
                ItemKind::Checklist {
                    checked: b[1] != b' ',
                },
                rest.trim().to_string(),
            ));
        }
        return None;
    }
    if first.is_ascii_digit() {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 9 {
            return None;
        }
        let after = &t[digits..];
        let rest = after
            .strip_prefix('.')
            .or_else(|| after.strip_prefix(')'))?;
        if !rest.is_empty() && !rest.starts_with(' ') {
            return None;
        }
        let n = t[..digits].parse().ok()?;
        return Some((ItemKind::Numbered(n), rest.trim().to_string()));
    }
    None
}

/// Drop `Sub-task 3:`-style prefixes; returns the title and the number.
pub fn strip_prefix(title: &str) -> (String, Option<u64>) {
    let t = title.trim();
    let lower = t.to_ascii_lowercase();
    let mut pos = 0;
    for word in ["sub-task", "sub task", "subtask", "task"] {
        if lower.starts_with(word) {
            pos = word.len();
            break;
        }
    }
    if pos == 0 {
        return (t.to_string(), None);
    }
    let rest = &t[pos..];
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('#').unwrap_or(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return (t.to_string(), None);
    }
    let n = rest[..digits].parse().ok();
    let after = rest[digits..].trim_start();
    let mut cs = after.chars();
    match cs.next() {
        Some(':' | '.' | ')' | '-' | '–' | '—') => {
            let title = cs.as_str().trim();
            if title.is_empty() {
                (t.to_string(), None)
            } else {
                (title.to_string(), n)
            }
        }
        _ => (t.to_string(), None),
    }
}

/// `#123 rest` or `https://github.com/o/r/issues/123 rest` → (123, "rest").
pub fn issue_ref(title: &str) -> Option<(u64, String)> {
    let t = title.trim();
    let (num_part, rest) = match t.split_once(char::is_whitespace) {
        Some((a, b)) => (a, b),
        None => (t, ""),
    };
    let num_part = num_part.trim_end_matches([':', ',', '.']);
    let digits = if let Some(d) = num_part.strip_prefix('#') {
        d
    } else if num_part.starts_with("https://") && num_part.contains("/issues/") {
        num_part.rsplit('/').next()?
    } else {
        return None;
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest
        .trim()
        .trim_start_matches([':', '-', '–', '—'])
        .trim()
        .to_string();
    Some((digits.parse().ok()?, rest))
}

/// Find the sub-tasks of a markdown text.
pub fn extract(text: &str) -> Extracted {
    let lines = classify(text);
    // A Sub-Tasks section, if any, is the only part read.
    let mut region: &[Line] = &lines;
    let mut section_level = 0;
    if let Some(start) = lines
        .iter()
        .position(|l| heading(l).is_some_and(|(_, t)| is_tasks_heading(&t)))
    {
        let level = heading(&lines[start]).map(|h| h.0).unwrap_or(2);
        let end = lines[start + 1..]
            .iter()
            .position(|l| heading(l).is_some_and(|(lv, _)| lv <= level))
            .map(|p| start + 1 + p)
            .unwrap_or(lines.len());
        region = &lines[start + 1..end];
        section_level = level;
    }
    if section_level > 0 {
        let sub = region
            .iter()
            .filter_map(heading)
            .map(|(lv, _)| lv)
            .filter(|lv| *lv > section_level)
            .min();
        if let Some(task_level) = sub {
            return sections(region, task_level);
        }
    }
    lists(region)
}

fn sections(region: &[Line], level: usize) -> Extracted {
    let mut ex = Extracted {
        format: "sections".into(),
        ..Default::default()
    };
    let mut current: Option<(Task, Vec<&Line>)> = None;
    for l in region {
        if let Some((lv, title)) = heading(l)
            && lv <= level
        {
            finish(&mut ex, current.take());
            if lv == level {
                let (title, label) = strip_prefix(&title);
                current = Some((
                    Task {
                        title,
                        label,
                        line: l.no,
                        ..Default::default()
                    },
                    Vec::new(),
                ));
            }
            continue;
        }
        if let Some((_, body)) = current.as_mut() {
            body.push(l);
        }
    }
    finish(&mut ex, current);
    ex
}

fn finish(ex: &mut Extracted, current: Option<(Task, Vec<&Line>)>) {
    let Some((mut task, body)) = current else {
        return;
    };
    task.body = dedent(&body);
    if let Some((n, rest)) = issue_ref(&task.title) {
        task.sub_issue = Some(n);
        task.title = if rest.is_empty() {
            format!("Issue #{n}")
        } else {
            rest
        };
    }
    if task.title.is_empty() {
        ex.skipped.push(Skipped {
            line: task.line,
            title: String::new(),
            reason: "empty title".into(),
        });
        return;
    }
    ex.tasks.push(task);
}

fn dedent(body: &[&Line]) -> String {
    let min = body
        .iter()
        .filter(|l| !l.text.trim().is_empty())
        .map(|l| l.indent)
        .min()
        .unwrap_or(0);
    let mut lines: Vec<&str> = body
        .iter()
        .filter(|l| l.kind != Kind::Comment)
        .map(|l| {
            if l.indent >= min {
                l.text[min..].trim_end()
            } else {
                l.text.trim()
            }
        })
        .collect();
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

struct Open<'a> {
    task: Task,
    checked: bool,
    indent: usize,
    body: Vec<&'a Line>,
    /// Fenced code opened inside the body.
    in_fence: bool,
    /// The previous line was blank (no lazy continuation after it).
    after_blank: bool,
}

fn lists(region: &[Line]) -> Extracted {
    let checklist = region
        .iter()
        .any(|l| matches!(item(l), Some((ItemKind::Checklist { .. }, _))));
    let mut ex = Extracted {
        format: if checklist { "checklist" } else { "numbered" }.into(),
        ..Default::default()
    };
    let mut open: Option<Open> = None;
    for l in region {
        if l.kind == Kind::Comment {
            continue;
        }
        if let Some(o) = open.as_mut() {
            if o.in_fence {
                o.body.push(l);
                if l.kind == Kind::Fence {
                    o.in_fence = false;
                }
                continue;
            }
            if l.kind == Kind::Blank {
                o.body.push(l);
                o.after_blank = true;
                continue;
            }
        } else if l.kind == Kind::Blank {
            continue;
        }
        let found = item(l).filter(|(k, _)| {
            matches!(
                (checklist, k),
                (true, ItemKind::Checklist { .. }) | (false, ItemKind::Numbered(_))
            )
        });
        let starts = found.is_some() && open.as_ref().is_none_or(|o| l.indent <= o.indent);
        if starts {
            close(&mut ex, open.take());
            let (kind, text) = found.expect("checked above");
            let (title, mut label) = strip_prefix(&text);
            if let ItemKind::Numbered(n) = kind
                && label.is_none()
            {
                label = Some(n);
            }
            open = Some(Open {
                task: Task {
                    title,
                    label,
                    line: l.no,
                    ..Default::default()
                },
                checked: matches!(kind, ItemKind::Checklist { checked: true }),
                indent: l.indent,
                body: Vec::new(),
                in_fence: false,
                after_blank: false,
            });
            continue;
        }
        let Some(o) = open.as_mut() else {
            continue;
        };
        let lazy = !o.after_blank
            && l.kind == Kind::Normal
            && heading(l).is_none()
            && item(l).is_none()
            && !is_bullet(l);
        if l.indent > o.indent || lazy {
            if l.kind == Kind::Fence {
                o.in_fence = true;
            }
            o.body.push(l);
            o.after_blank = false;
        } else {
            close(&mut ex, open.take());
        }
    }
    close(&mut ex, open);
    ex
}

fn is_bullet(l: &Line) -> bool {
    let t = l.text.trim_start();
    t.len() > 1 && matches!(t.as_bytes()[0], b'-' | b'*' | b'+') && t.as_bytes()[1] == b' '
}

fn close(ex: &mut Extracted, open: Option<Open>) {
    let Some(o) = open else {
        return;
    };
    if o.checked {
        ex.skipped.push(Skipped {
            line: o.task.line,
            title: o.task.title,
            reason: "checked".into(),
        });
        return;
    }
    finish(ex, Some((o.task, o.body)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(ex: &Extracted) -> Vec<&str> {
        ex.tasks.iter().map(|t| t.title.as_str()).collect()
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
        assert_eq!(ex.format, "checklist");
    }

    #[test]
    fn numbered_lists_with_dots_and_parens() {
        let ex =
            extract("Intro.\n\n1. Implement user model\n2) Create user API\n3. Add user tests\n");
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
        assert_eq!(titles(&ex), ["Parent", "Next"]);
        assert_eq!(
            ex.tasks[0].body,
            "- [ ] child step\ndetails `src/a.rs`\n\n  more"
        );
        assert_eq!(ex.tasks[1].body, "lazy line");
    }

    #[test]
    fn code_comments_and_quotes_are_never_tasks() {
        let ex = extract(
            "```md\n- [ ] in code\n```\n<!--\n- [ ] in comment\n-->\n> - [ ] quoted\n~~~\n1. x\n~~~\n- [ ] real <!-- note -->\n",
        );
        assert_eq!(titles(&ex), ["real"]);
    }

    #[test]
    fn issue_references_become_sub_issues() {
        let ex = extract("- [ ] #123\n- [ ] #124: Add tests\n* [ ] star\n+ [ ] plus\n");
        assert_eq!(ex.tasks[0].sub_issue, Some(123));
        assert_eq!(ex.tasks[0].title, "Issue #123");
        assert_eq!(ex.tasks[1].sub_issue, Some(124));
        assert_eq!(ex.tasks[1].title, "Add tests");
        assert_eq!(titles(&ex)[2..], ["star", "plus"]);
    }

    #[test]
    fn checklists_win_over_numbered_lists() {
        let ex = extract("1. step one\n2. step two\n\n- [ ] the task\n");
        assert_eq!(titles(&ex), ["the task"]);
    }

    #[test]
    fn no_prefix_of_a_tricky_text_panics() {
        let tricky = "# É\n## Sub-Tasks\n### Sub-task 3: ünï\n- [ ] #12 é\n\t- [x] ✓\n1) ß\n\
                      ```\n<!-- é -->\n```\n> ẞ\n- [ ] Task #4 — ü after task 1, once #12 is done\n\
                      * [ ] `src/é/` requires ü.py\n  <!--\n";
        for (i, _) in tricky.char_indices() {
            let ex = extract(&tricky[..i]);
            let _ = crate::plan::Plan::from_extracted(ex);
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
}
