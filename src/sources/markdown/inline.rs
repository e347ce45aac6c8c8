//! A task item's own text as a reader sees it: the title (emphasis and link
//! syntax gone, code spans kept, struck-through words dropped), where the
//! title ends in a wrapped paragraph, and the reference it opens with.

use std::ops::Range;

use super::doc::{Inl, Inline, Span};
use crate::sources::refs::Reference;

/// A run of inline content rendered to text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// Some text is struck through, and nothing else is visible.
    pub all_struck: bool,
    /// Links whose address the text does not show: `(text, url)`.
    pub links: Vec<(String, String)>,
}

/// Render `events`: text as GitHub shows it, on one line.
pub fn render(events: &[(Inl, Range<usize>)]) -> Rendered {
    let mut out = String::new();
    let mut stack: Vec<Span> = Vec::new();
    let mut struck = 0usize;
    let mut visible = 0usize;
    // Open links: (url, where their text starts in `out`).
    let mut open_links: Vec<(String, usize)> = Vec::new();
    let mut links = Vec::new();
    for (e, _) in events {
        let in_strike = stack.contains(&Span::Strike);
        let mut push = |s: &str, out: &mut String| {
            let chars = s.chars().filter(|c| !c.is_whitespace()).count();
            if in_strike {
                struck += chars;
            } else {
                visible += chars;
                out.push_str(s);
            }
        };
        match e {
            Inl::Text(t) => push(t, &mut out),
            Inl::Code(c) => {
                let quoted = if c.contains('`') {
                    format!("`` {c} ``")
                } else {
                    format!("`{c}`")
                };
                push(&quoted, &mut out)
            }
            Inl::SoftBreak | Inl::HardBreak => push(" ", &mut out),
            Inl::Html(_) | Inl::Task(_) => {}
            Inl::Start(span) => {
                if let Span::Link(url) = span {
                    open_links.push((url.clone(), out.len()));
                }
                stack.push(span.clone());
            }
            Inl::End => {
                if let Some(Span::Link(_)) = stack.pop()
                    && let Some((url, at)) = open_links.pop()
                {
                    let text = collapse(&out[at.min(out.len())..]);
                    if !url.is_empty() && !text.contains(url.as_str()) {
                        links.push((text, url));
                    }
                }
            }
        }
    }
    Rendered {
        text: collapse(&out),
        all_struck: struck > 0 && visible == 0,
        links,
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Short words a wrapped line does not end a title on.
const JOINING_WORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
    "with", "via", "is", "are", "be", "that", "which", "not", "but", "its", "their", "our",
];

/// Brackets and backticks of the title so far, counted as lines are added.
#[derive(Default)]
struct Balance {
    open: [i64; 3],
    ticks: usize,
}

impl Balance {
    fn add(&mut self, line: &str) {
        for c in line.chars() {
            match c {
                '(' => self.open[0] += 1,
                ')' => self.open[0] -= 1,
                '[' => self.open[1] += 1,
                ']' => self.open[1] -= 1,
                '{' => self.open[2] += 1,
                '}' => self.open[2] -= 1,
                '`' => self.ticks += 1,
                _ => {}
            }
        }
    }

    fn unfinished(&self) -> bool {
        self.open.iter().any(|&n| n > 0) || self.ticks % 2 == 1
    }
}

/// Whether a paragraph that wrapped after a line ending in `last` (the title
/// so far balanced as `balance`) goes on with `next` as the same sentence:
/// an open bracket or code span, a line that ends on a joining character or
/// word, or a next line that does not start a new sentence (a capital
/// letter).
fn continues(balance: &Balance, last: &str, next: &str) -> bool {
    if balance.unfinished() {
        return true;
    }
    let t = last.trim_end();
    if t.ends_with([',', '-', '–', '—', '/', '&', '+', '(', '[', '|', '\\']) {
        return true;
    }
    let word = t
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    if JOINING_WORDS.contains(&word.as_str()) {
        return true;
    }
    !next
        .trim_start()
        .chars()
        .next()
        .is_some_and(char::is_uppercase)
}

/// The title's events and, when the paragraph goes on after the title, the
/// offset its remainder (a body line) starts at. A wrapped item is one title;
/// a hard break, or a line that starts a new sentence, ends it.
pub fn title_part(lead: &Inline) -> (&[(Inl, Range<usize>)], Option<usize>) {
    let ev = &lead.0;
    let breaks: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, (e, _))| matches!(e, Inl::SoftBreak | Inl::HardBreak))
        .map(|(i, _)| i)
        .collect();
    let mut balance = Balance::default();
    let mut any = false;
    let mut depth = 0i64;
    let mut start = 0;
    for (k, &i) in breaks.iter().enumerate() {
        let line = render(&ev[start..i]).text;
        balance.add(&line);
        any |= !line.trim().is_empty();
        for (e, _) in &ev[start..i] {
            match e {
                Inl::Start(_) => depth += 1,
                Inl::End => depth -= 1,
                _ => {}
            }
        }
        let next_end = breaks.get(k + 1).copied().unwrap_or(ev.len());
        let next = render(&ev[i + 1..next_end]).text;
        let ends = matches!(ev[i].0, Inl::HardBreak) || !continues(&balance, &line, &next);
        if ends && any && depth <= 0 {
            let rest = ev.get(i + 1).map(|(_, r)| r.start);
            return (&ev[..i], rest);
        }
        start = i + 1;
    }
    (ev, None)
}

/// The reference a title opens with — a link to an issue (`[#12](url)`) or
/// the text `#12`, `owner/repo#12`, an issue URL — and the title after it.
pub fn leading_reference(events: &[(Inl, Range<usize>)]) -> Option<(Reference, String)> {
    let first = events.iter().position(|(e, _)| match e {
        Inl::Text(t) => !t.trim().is_empty(),
        Inl::Html(_) => false,
        _ => true,
    })?;
    if let (Inl::Start(Span::Link(url)), _) = &events[first] {
        let mut depth = 0;
        let mut end = events.len();
        for (i, (e, _)) in events.iter().enumerate().skip(first) {
            match e {
                Inl::Start(_) => depth += 1,
                Inl::End => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        // `[vscode#12](url)` names the issue; `[currently](url) child
        // processes …` is a sentence with a link in it.
        let text = render(&events[first..end]).text;
        return match Reference::from_url(url) {
            Some(r) if names_a_reference(&text, url) => {
                let rest = render(&events[end..]).text;
                Some((r, trim_separators(&rest)))
            }
            _ => None,
        };
    }
    let text = render(events).text;
    let (r, rest) = Reference::at_start(&text)?;
    Some((r, trim_separators(rest)))
}

/// Whether a link's text is a reference itself: the address, `#12`,
/// `repo#12` or `owner/repo#12`.
fn names_a_reference(text: &str, url: &str) -> bool {
    let t = text.trim().trim_matches('`');
    if t == url || Reference::parse(t).is_some() {
        return true;
    }
    match t.rsplit_once('#') {
        Some((name, digits)) => {
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        }
        None => false,
    }
}

fn trim_separators(s: &str) -> String {
    s.trim()
        .trim_start_matches([':', '-', '–', '—'])
        .trim()
        .to_string()
}

/// `[Task 1]`: a template's placeholder, not a task (the brackets are not a
/// link).
pub fn is_placeholder(events: &[(Inl, Range<usize>)]) -> bool {
    let t = render(events).text;
    let has_link = events
        .iter()
        .any(|(e, _)| matches!(e, Inl::Start(Span::Link(_))));
    !has_link
        && t.len() > 2
        && t.starts_with('[')
        && t.ends_with(']')
        && !t[1..t.len() - 1].contains([']', '['])
}

#[cfg(test)]
mod tests {
    use super::super::doc::{Doc, Kind};
    use super::*;

    fn lead(md: &str) -> Inline {
        let doc = Doc::parse(md);
        match &doc.blocks[0].kind {
            Kind::List { items, .. } => items[0].lead.clone(),
            Kind::Paragraph(p) => p.clone(),
            k => panic!("{k:?}"),
        }
    }

    fn title(md: &str) -> String {
        let l = lead(md);
        render(title_part(&l).0).text
    }

    #[test]
    fn titles_read_as_rendered_text() {
        assert_eq!(
            title("- [ ] **Bold** _it_ [link](https://x.y/z) `code` ![img](a.png) <b>h</b>\n"),
            "Bold it link `code` img h"
        );
        assert_eq!(title("- [ ] a `` x`y `` b\n"), "a `` x`y `` b");
        assert_eq!(title("- [ ] Support ~~Windows~~ Linux\n"), "Support Linux");
        let l = lead("- [ ] ~~gone~~\n");
        assert!(render(&l.0).all_struck);
        let l = lead("* [ ] ~*typing-sig* PEPs: link~\n");
        assert!(render(&l.0).all_struck, "a single tilde strikes too");
        let l = lead("- [ ] ~~half~~ kept\n");
        assert!(!render(&l.0).all_struck);
    }

    #[test]
    fn wrapped_items_are_one_title_a_new_sentence_is_body() {
        let md = "- [x] Implement the RFC (cc @rust-lang/XXX -- can anyone write up mentoring\n      instructions?)\n";
        assert_eq!(
            title(md),
            "Implement the RFC (cc @rust-lang/XXX -- can anyone write up mentoring instructions?)"
        );
        assert_eq!(title("- [ ] Next\nlazy line\n"), "Next lazy line");
        assert_eq!(
            title("- [ ] Fix the crash in\n  Widget rendering\n"),
            "Fix the crash in Widget rendering"
        );
        let l = lead("- [ ] Cart data model\n  Lives in `models/cart.py`.\n");
        let (t, rest) = title_part(&l);
        assert_eq!(render(t).text, "Cart data model");
        assert!(rest.is_some());
        let l = lead("- [ ] Hard break\\\n  next\n");
        assert_eq!(render(title_part(&l).0).text, "Hard break");
    }

    #[test]
    fn references_open_a_title() {
        let l = lead("- [ ] [vscode#1](https://github.com/microsoft/vscode/issues/1) Fix it\n");
        let (r, rest) = leading_reference(&l.0).unwrap();
        assert_eq!(
            (r.to_string(), rest.as_str()),
            ("microsoft/vscode#1".into(), "Fix it")
        );
        let l = lead("- [ ] #124: Add tests\n");
        let (r, rest) = leading_reference(&l.0).unwrap();
        assert_eq!((r.to_string(), rest.as_str()), ("#124".into(), "Add tests"));
        let l = lead("- [ ] [currently](https://github.com/o/r/pull/121573) children get X\n");
        assert_eq!(
            leading_reference(&l.0),
            None,
            "a word with a link is no reference"
        );
        let l = lead("- [ ] Notebook [vscode#1](https://github.com/microsoft/vscode/issues/1)\n");
        assert_eq!(leading_reference(&l.0), None);
        assert_eq!(
            render(&l.0).links,
            [(
                "vscode#1".to_string(),
                "https://github.com/microsoft/vscode/issues/1".to_string()
            )]
        );
    }

    #[test]
    fn placeholders_are_told_from_links() {
        assert!(is_placeholder(&lead("- [Task 1]\n").0));
        assert!(!is_placeholder(&lead("- [Task 1](https://x.y)\n").0));
        assert!(!is_placeholder(&lead("- [a] and [b]\n").0));
        assert!(!is_placeholder(&lead("- Task\n").0));
    }
}
