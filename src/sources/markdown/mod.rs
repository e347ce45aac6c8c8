//! Sub-tasks in Markdown, read with a CommonMark parser and GitHub's
//! extensions (task lists, strikethrough, tables), so that structure comes
//! from the document as GitHub renders it:
//!
//! * **Which part is read.** With `--section NAME`, only the sections whose
//!   heading is NAME (case-insensitive, ignoring punctuation and emoji around
//!   it), or, when no heading is exactly NAME, whose heading contains it; a
//!   section runs to the next heading of its level or higher. Without it, a
//!   `## Sub-Tasks` section (also `Tasks`, `Subtasks`, `Sub Tasks`, any
//!   level) is the only part read, when there is one; else the whole text.
//!   Headings one level below a `Sub-Tasks` section are its tasks, their
//!   sections the bodies.
//! * **Checklists** (`- [ ]`, `* [ ]`, `+ [ ]`, also inside other list
//!   markers: `1. - [ ] x`) are the tasks when the part read has any. Checked
//!   items are done, struck-through ones (`- [ ] ~~x~~`, the whole text
//!   struck) are not applicable, `[Task 1]` is a template's placeholder, and
//!   items under a heading that defers them (`Deferred`, `Out of scope`,
//!   `Non-goals`, …) are not this work: each is reported as skipped with that
//!   reason.
//! * **Nesting.** An item's nested content is its body (as Markdown), nested
//!   checklist items included. A checked item's unchecked children are open
//!   work: they are tasks, with the parent named in their context. Checklist
//!   items inside plain bullets are tasks too.
//! * **Wrapped items.** A paragraph that wraps (lazy continuation lines
//!   included) is one title; a hard line break, or a line that starts a new
//!   sentence (a capital letter after a finished clause), ends the title and
//!   the rest is body.
//! * Without checklists: plain bullets and numbered items directly under a
//!   heading that names the work (`Tasks`, `Sub-tasks`, `TODO`, `Plan`,
//!   `Steps`, `Implementation`, `Child issues`, …; see [`WORK_HEADINGS`]);
//!   else numbered lists anywhere; else lists whose every item is an issue
//!   or pull-request reference.
//! * Fenced code, HTML (comments), quotes and tables are never tasks; a
//!   fenced block with the info string `[tasklist]` is GitHub's tracked list,
//!   and its items are read in place.
//! * **Titles** read as rendered text: emphasis and link syntax gone, code
//!   spans kept, struck-through words dropped; addresses of links in a title
//!   go to the task's context. `Sub-task 3:` / `Task 3 -` prefixes are dropped
//!   (the number is kept as the task's label). An item that opens with a
//!   reference (`#123`, `owner/repo#123`, an issue URL) names that issue.
//! * **Sections.** Each task carries the heading it is under (not the
//!   heading that opens the text, its title).

pub mod doc;
mod found;
mod inline;

use std::ops::Range;

pub use found::Found;

use self::doc::{Block, Doc, Item, Kind};
use super::refs::Reference;
use super::{Extracted, Skipped, Task};

/// Headings that name the work: plain bullets and numbered items right under
/// them are tasks when the text has no checklist (compared lowercase, words
/// only).
pub const WORK_HEADINGS: &[&str] = &[
    "tasks",
    "task",
    "task list",
    "tasklist",
    "sub tasks",
    "subtasks",
    "sub task",
    "subtask",
    "todo",
    "todos",
    "to do",
    "to dos",
    "plan",
    "the plan",
    "work plan",
    "work items",
    "action items",
    "steps",
    "next steps",
    "implementation",
    "implementation plan",
    "implementation steps",
    "child issues",
    "sub issues",
    "subissues",
    "checklist",
    "deliverables",
    "remaining work",
];

/// Headings whose items are not this work (their first words).
pub const DEFERRING_HEADINGS: &[&str] = &[
    "deferred",
    "out of scope",
    "not in scope",
    "non goals",
    "nongoals",
    "not planned",
    "won t do",
    "wont do",
    "won t fix",
    "wontfix",
    "postponed",
    "future work",
    "later",
];

/// Lowercase words, separated by one space: `## 🚀 Sub-Tasks:` → `sub tasks`.
fn words(title: &str) -> String {
    title
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_tasks_heading(title: &str) -> bool {
    let norm: String = title
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    matches!(norm.as_str(), "subtasks" | "tasks")
}

/// Whether a heading names the work (`Tasks`, `TODO`, `Steps`, …; see
/// [`WORK_HEADINGS`]).
pub fn is_work_heading(title: &str) -> bool {
    WORK_HEADINGS.contains(&words(title).as_str())
}

fn is_deferring_heading(title: &str) -> bool {
    let w = words(title);
    DEFERRING_HEADINGS
        .iter()
        .any(|d| w == *d || w.starts_with(&format!("{d} ")))
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

/// Find the sub-tasks of a Markdown text.
pub fn extract(text: &str) -> Extracted {
    extract_with(text, &[]).unwrap_or_default()
}

/// Find the sub-tasks of a Markdown text, reading only the sections named
/// (none: the rules above). A name no heading matches is an error that lists
/// the headings there are.
pub fn extract_with(text: &str, sections: &[String]) -> Result<Extracted, String> {
    let doc = Doc::parse(text);
    Reader::new(&doc, sections)?.read()
}

/// The heading a text opens with (comments before it aside), at level 1:
/// the text's title.
pub fn title(text: &str) -> Option<String> {
    let doc = Doc::parse(text);
    match &doc.blocks.get(first_block(&doc))?.kind {
        Kind::Heading { level: 1, text } => {
            Some(inline::render(&text.0).text).filter(|t| !t.is_empty())
        }
        _ => None,
    }
}

/// The first block that is not a comment.
fn first_block(doc: &Doc) -> usize {
    doc.blocks
        .iter()
        .position(|b| !matches!(b.kind, Kind::Html { comment: true }))
        .unwrap_or(0)
}

struct Heading {
    level: usize,
    title: String,
    /// Index of its block.
    block: usize,
    /// Where its section ends (the next heading of its level or higher).
    end_block: usize,
}

impl Heading {
    /// `### Tasks`.
    fn label(&self) -> String {
        format!("{} {}", "#".repeat(self.level), self.title)
    }
}

/// A list item met on the way, with where it is.
struct Cand<'d> {
    item: &'d Item,
    ordered: bool,
    /// Inside another list item.
    nested: bool,
    /// Inside a numbered item.
    in_numbered: bool,
    list: usize,
    region: bool,
    /// Under a heading that names the work (or a section asked for).
    headed: bool,
    /// The heading that defers it, if any.
    deferred: Option<usize>,
    section: Option<usize>,
    parent: Option<String>,
}

#[derive(Clone)]
struct Ctx {
    nested: bool,
    in_numbered: bool,
    region: bool,
    headed: bool,
    deferred: Option<usize>,
    section: Option<usize>,
    parent: Option<String>,
}

struct Reader<'d> {
    doc: &'d Doc,
    heads: Vec<Heading>,
    /// The heading that opens the text: its title, not a section.
    title_heading: Option<usize>,
    /// Headings the part read is limited to.
    selected: Vec<usize>,
    /// `--section` was given.
    asked: bool,
    cands: Vec<Cand<'d>>,
    /// Whether each list holds only references.
    ref_lists: Vec<bool>,
    found: Found,
}

impl<'d> Reader<'d> {
    fn new(doc: &'d Doc, sections: &[String]) -> Result<Reader<'d>, String> {
        let mut heads: Vec<Heading> = Vec::new();
        for (i, b) in doc.blocks.iter().enumerate() {
            if let Kind::Heading { level, text } = &b.kind {
                heads.push(Heading {
                    level: *level,
                    title: inline::render(&text.0).text,
                    block: i,
                    end_block: doc.blocks.len(),
                });
            }
        }
        for i in 0..heads.len() {
            let level = heads[i].level;
            if let Some(next) = heads[i + 1..].iter().find(|h| h.level <= level) {
                heads[i].end_block = next.block;
            }
        }
        let title_heading = heads
            .first()
            .filter(|h| h.block == first_block(doc) && h.level == 1)
            .map(|_| 0);
        let selected = if sections.is_empty() {
            (0..heads.len())
                .filter(|&i| is_tasks_heading(&heads[i].title))
                .collect()
        } else {
            select(&heads, sections)?
        };
        Ok(Reader {
            doc,
            heads,
            title_heading,
            selected,
            asked: !sections.is_empty(),
            cands: Vec::new(),
            ref_lists: Vec::new(),
            found: Found::default(),
        })
    }

    fn in_region(&self, block: usize) -> bool {
        self.selected.is_empty()
            || self
                .selected
                .iter()
                .any(|&h| block > self.heads[h].block && block < self.heads[h].end_block)
    }

    fn read(mut self) -> Result<Extracted, String> {
        self.found.region = self
            .selected
            .iter()
            .map(|&h| self.heads[h].label())
            .collect();
        if let Some(ex) = self.heading_tasks() {
            return Ok(ex);
        }
        let doc = self.doc;
        let mut path: Vec<usize> = Vec::new();
        let mut heading_ix = 0;
        for (bi, b) in doc.blocks.iter().enumerate() {
            if let Kind::Heading { level, .. } = &b.kind {
                while path.last().is_some_and(|&h| self.heads[h].level >= *level) {
                    path.pop();
                }
                path.push(heading_ix);
                heading_ix += 1;
                continue;
            }
            let region = self.in_region(bi);
            let sections: Vec<usize> = path
                .iter()
                .copied()
                .filter(|&h| Some(h) != self.title_heading)
                .collect();
            let ctx = Ctx {
                nested: false,
                in_numbered: false,
                region,
                headed: (self.asked && region)
                    || path.iter().any(|&h| is_work_heading(&self.heads[h].title)),
                deferred: if self.asked {
                    None
                } else {
                    path.iter()
                        .copied()
                        .find(|&h| is_deferring_heading(&self.heads[h].title))
                },
                section: sections.last().copied(),
                parent: None,
            };
            if region {
                match &b.kind {
                    Kind::Table => self.found.tables += 1,
                    Kind::Code => self.found.code_blocks += 1,
                    Kind::Quote => self.found.quotes += 1,
                    Kind::Paragraph(_) => self.found.paragraphs += 1,
                    _ => {}
                }
            }
            self.walk(std::slice::from_ref(b), &ctx);
        }
        Ok(self.choose())
    }

    /// Collect the list items of `blocks`, descending into plain items and
    /// checked ones (whose open children are open work).
    fn walk(&mut self, blocks: &'d [Block], ctx: &Ctx) {
        for b in blocks {
            let Kind::List { ordered, items } = &b.kind else {
                continue;
            };
            let list = self.ref_lists.len();
            self.ref_lists.push(!items.is_empty());
            for item in items {
                let lead = inline::render(&item.lead.0);
                let is_ref = inline::leading_reference(&item.lead.0).is_some();
                if !is_ref {
                    self.ref_lists[list] = false;
                }
                self.cands.push(Cand {
                    item,
                    ordered: *ordered,
                    nested: ctx.nested,
                    in_numbered: ctx.in_numbered,
                    list,
                    region: ctx.region,
                    headed: ctx.headed,
                    deferred: ctx.deferred,
                    section: ctx.section,
                    parent: ctx.parent.clone(),
                });
                let descend = match item.task {
                    Some(true) => !lead.all_struck,
                    Some(false) => false,
                    None => true,
                };
                if descend {
                    let parent = match (item.task, lead.text.is_empty()) {
                        (_, true) => ctx.parent.clone(),
                        (Some(true), false) => Some(format!("{} (checked)", lead.text)),
                        (_, false) => Some(lead.text.clone()),
                    };
                    let inner = Ctx {
                        nested: true,
                        in_numbered: ctx.in_numbered || *ordered,
                        parent,
                        ..ctx.clone()
                    };
                    self.walk(&item.blocks, &inner);
                }
            }
        }
    }

    /// The section label of heading `h` for a task: `Steps`.
    fn section_name(&self, h: Option<usize>) -> Option<String> {
        h.map(|h| self.heads[h].title.clone())
            .filter(|t| !t.is_empty())
    }

    fn choose(mut self) -> Extracted {
        let cands = std::mem::take(&mut self.cands);
        let in_region: Vec<&Cand> = cands.iter().filter(|c| c.region).collect();
        for c in cands
            .iter()
            .filter(|c| !c.region && c.item.task == Some(false))
        {
            let label = c.section.map(|h| self.heads[h].label());
            self.found.count_outside(label.as_deref());
        }
        let checklist = in_region.iter().any(|c| c.item.task.is_some());
        for c in &in_region {
            if c.item.task.is_none() && !c.item.lead.0.is_empty() {
                if c.ordered {
                    self.found.numbered += 1;
                } else {
                    self.found.bullets += 1;
                    if c.headed && !c.nested {
                        let label = c.section.map(|h| self.heads[h].label()).unwrap_or_default();
                        self.found.count_headed(&label);
                        if inline::is_placeholder(&c.item.lead.0) {
                            self.found.placeholder_bullets += 1;
                        }
                    }
                }
            }
        }
        let (format, chosen): (&str, Vec<&Cand>) = if checklist {
            (
                "checklist",
                in_region
                    .iter()
                    .copied()
                    .filter(|c| c.item.task.is_some())
                    .collect(),
            )
        } else if in_region.iter().any(|c| c.headed && !c.nested) {
            let chosen: Vec<&Cand> = in_region
                .iter()
                .copied()
                .filter(|c| c.headed && !c.nested)
                .collect();
            let format = if chosen.iter().all(|c| c.ordered) {
                "numbered"
            } else {
                "bullets"
            };
            (format, chosen)
        } else if in_region.iter().any(|c| c.ordered && !c.in_numbered) {
            (
                "numbered",
                in_region
                    .iter()
                    .copied()
                    .filter(|c| c.ordered && !c.in_numbered)
                    .collect(),
            )
        } else {
            (
                "links",
                in_region
                    .iter()
                    .copied()
                    .filter(|c| !c.nested && self.ref_lists[c.list])
                    .collect(),
            )
        };
        let mut ex = Extracted {
            format: format.into(),
            ..Default::default()
        };
        for c in chosen {
            self.take(&mut ex, c);
        }
        // Plain bullets that became tasks are not "found but unread".
        if !ex.tasks.is_empty() && (format == "bullets" || format == "links") {
            self.found.bullets = 0;
            self.found.headed.clear();
        }
        ex.found = self.found.clone();
        self.note_sections(&mut ex);
        ex
    }

    /// Make candidate `c` a task, or say why it is skipped.
    fn take(&mut self, ex: &mut Extracted, c: &Cand) {
        let item = c.item;
        let line = self.doc.line(item.range.start);
        let whole = inline::render(&item.lead.0);
        let (title_ev, rest_at) = inline::title_part(&item.lead);
        let skip = |ex: &mut Extracted, title: String, reason: String| {
            ex.skipped.push(Skipped {
                line,
                title: strip_prefix(&title).0,
                reason,
            })
        };
        if item.task.is_some() && item.lead.0.is_empty() && item.blocks.is_empty() {
            self.found.empty += 1;
            return skip(ex, String::new(), "empty title".into());
        }
        if whole.all_struck {
            self.found.struck += 1;
            let text = inline::render(&strike_kept(&item.lead.0)).text;
            return skip(ex, text, "struck through: not applicable".into());
        }
        if item.task == Some(true) {
            self.found.checked += 1;
            return skip(ex, whole.text, "checked".into());
        }
        if inline::is_placeholder(title_ev) {
            // Plain ones are counted with the bullets.
            if item.task.is_some() {
                self.found.placeholders += 1;
            }
            return skip(ex, whole.text, "a template's placeholder".into());
        }
        if let Some(h) = c.deferred {
            self.found.deferred += 1;
            return skip(
                ex,
                whole.text,
                format!("under `{}`: not this work", self.heads[h].label()),
            );
        }
        let rendered = inline::render(title_ev);
        let (reference, title, label) = match inline::leading_reference(title_ev) {
            Some((r, rest)) => {
                let (t, label) = strip_prefix(&rest);
                (Some(r), t, label)
            }
            None => {
                let (t, label) = strip_prefix(&rendered.text);
                match Reference::at_start(&t) {
                    Some((r, rest)) => (Some(r), rest.to_string(), label),
                    None => (None, t, label),
                }
            }
        };
        // `#12 (@someone)`: the words after the reference only annotate it;
        // the issue's own title is the task's, the note goes to the body.
        let (title, note) = match &reference {
            Some(_) if is_annotation(&title) => (String::new(), Some(title)),
            _ => (title, None),
        };
        let title = match (&reference, title.is_empty()) {
            (Some(r), true) if r.repo.is_none() => format!("Issue #{}", r.number),
            (Some(r), true) => r.to_string(),
            _ => title,
        };
        if title.is_empty() {
            self.found.empty += 1;
            return skip(ex, title, "empty title".into());
        }
        self.found.open += 1;
        let label = label.or(if item.task.is_none() && c.ordered {
            item.number
        } else {
            None
        });
        let body = match (note, self.body(item, rest_at)) {
            (Some(n), b) if b.is_empty() => n,
            (Some(n), b) => format!("{n}\n\n{b}"),
            (None, b) => b,
        };
        ex.tasks.push(Task {
            title,
            body,
            sub_issue: None,
            reference,
            label,
            line,
            section: self.section_name(c.section),
            parent: c.parent.clone(),
            links: rendered.links,
        });
    }

    /// The item's body: the rest of its first paragraph and its nested
    /// blocks, as Markdown, indented as the item's content.
    fn body(&self, item: &Item, rest_at: Option<usize>) -> String {
        let from = rest_at.or_else(|| item.blocks.first().map(|b| b.range.start));
        let Some(from) = from else {
            return String::new();
        };
        let skip: Vec<Range<usize>> = item
            .blocks
            .iter()
            .filter(|b| matches!(b.kind, Kind::Html { comment: true }))
            .map(|b| b.range.clone())
            .collect();
        let indent = self.doc.column(item.content_start);
        self.doc.dedented(from, item.range.end, indent, &skip)
    }

    /// `## Sub-Tasks` whose sub-headings are the tasks: those tasks, if the
    /// part read is such a section.
    fn heading_tasks(&mut self) -> Option<Extracted> {
        let doc = self.doc;
        let mut ex = Extracted {
            format: "sections".into(),
            ..Default::default()
        };
        let mut any = false;
        for &s in &self.selected {
            let sec = &self.heads[s];
            if !is_tasks_heading(&sec.title) {
                continue;
            }
            let inner: Vec<&Heading> = self
                .heads
                .iter()
                .filter(|h| h.block > sec.block && h.block < sec.end_block)
                .collect();
            let Some(level) = inner.iter().map(|h| h.level).min() else {
                continue;
            };
            any = true;
            for h in inner.iter().filter(|h| h.level == level) {
                let end = inner
                    .iter()
                    .find(|n| n.block > h.block && n.level <= level)
                    .map_or(sec.end_block, |n| n.block);
                let to = doc.blocks.get(end).map_or(doc.src.len(), |b| b.range.start);
                let skip: Vec<Range<usize>> = doc.blocks[h.block + 1..end]
                    .iter()
                    .filter(|b| matches!(b.kind, Kind::Html { comment: true }))
                    .map(|b| b.range.clone())
                    .collect();
                let body = match doc.blocks.get(h.block + 1) {
                    Some(b) if h.block + 1 < end => {
                        doc.dedented(b.range.start, to, usize::MAX, &skip)
                    }
                    _ => String::new(),
                };
                let line = doc.line(doc.blocks[h.block].range.start);
                let Kind::Heading { text, .. } = &doc.blocks[h.block].kind else {
                    continue;
                };
                let (reference, title) = match inline::leading_reference(&text.0) {
                    Some((r, rest)) => (Some(r), rest),
                    None => (None, h.title.clone()),
                };
                let (title, label) = strip_prefix(&title);
                let title = match (&reference, title.is_empty()) {
                    (Some(r), true) if r.repo.is_none() => format!("Issue #{}", r.number),
                    (Some(r), true) => r.to_string(),
                    _ => title,
                };
                if title.is_empty() {
                    ex.skipped.push(Skipped {
                        line,
                        title,
                        reason: "empty title".into(),
                    });
                    continue;
                }
                ex.tasks.push(Task {
                    title,
                    body,
                    reference,
                    label,
                    line,
                    ..Default::default()
                });
            }
        }
        any.then_some(ex)
    }

    /// When the tasks come from several sections and none was asked for,
    /// say which, and how to pick one.
    fn note_sections(&self, ex: &mut Extracted) {
        if self.asked {
            return;
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for t in &ex.tasks {
            let s = t.section.clone().unwrap_or_else(|| "(no heading)".into());
            match counts.iter_mut().find(|(k, _)| *k == s) {
                Some((_, c)) => *c += 1,
                None => counts.push((s, 1)),
            }
        }
        if counts.len() < 2 {
            return;
        }
        const SHOWN: usize = 6;
        let mut list: Vec<String> = counts
            .iter()
            .take(SHOWN)
            .map(|(s, c)| format!("{s} ({c})"))
            .collect();
        if counts.len() > SHOWN {
            list.push(format!("and {} more", counts.len() - SHOWN));
        }
        ex.notes.push(format!(
            "The tasks come from {} sections: {}; `--section NAME` reads only the one whose \
             heading is NAME",
            counts.len(),
            list.join(", ")
        ));
    }
}

/// `(@someone)`, `[blocked]`: words in brackets, and nothing else.
fn is_annotation(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with('(') && t.ends_with(')')) || (t.starts_with('[') && t.ends_with(']'))
}

/// The events of a struck-through item with the strike spans' text kept,
/// for the "skipped" list.
fn strike_kept(events: &[(doc::Inl, Range<usize>)]) -> Vec<(doc::Inl, Range<usize>)> {
    let mut out = Vec::new();
    let mut stack: Vec<bool> = Vec::new();
    for (e, r) in events {
        match e {
            doc::Inl::Start(doc::Span::Strike) => stack.push(true),
            doc::Inl::Start(_) => {
                stack.push(false);
                out.push((e.clone(), r.clone()));
            }
            doc::Inl::End => {
                if stack.pop() == Some(false) {
                    out.push((e.clone(), r.clone()));
                }
            }
            _ => out.push((e.clone(), r.clone())),
        }
    }
    out
}

/// Compare a heading with a `--section` name: words only, lowercase.
fn norm(s: &str) -> String {
    words(s)
}

/// The headings `--section` names: exactly, else those that contain a name.
fn select(heads: &[Heading], names: &[String]) -> Result<Vec<usize>, String> {
    let mut out: Vec<usize> = Vec::new();
    for name in names {
        let want = norm(name);
        if want.is_empty() {
            return Err(format!(
                "`--section {name:?}` names no heading: give a word of the heading"
            ));
        }
        let exact: Vec<usize> = (0..heads.len())
            .filter(|&i| norm(&heads[i].title) == want)
            .collect();
        let found = if exact.is_empty() {
            (0..heads.len())
                .filter(|&i| norm(&heads[i].title).contains(&want))
                .collect()
        } else {
            exact
        };
        if found.is_empty() {
            const SHOWN: usize = 20;
            let mut list: Vec<String> = heads
                .iter()
                .take(SHOWN)
                .map(|h| format!("`{}`", h.label()))
                .collect();
            if heads.len() > SHOWN {
                list.push(format!("and {} more", heads.len() - SHOWN));
            }
            return Err(if heads.is_empty() {
                format!("no heading matches `--section {name}`: the text has no headings")
            } else {
                format!(
                    "no heading matches `--section {name}`; the headings are {}",
                    list.join(", ")
                )
            });
        }
        for i in found {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
