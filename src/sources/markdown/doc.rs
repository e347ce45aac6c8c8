//! A Markdown text as a tree of blocks, from pulldown-cmark's events with
//! GitHub's extensions (task lists, strikethrough, tables).
//!
//! Only what task extraction needs is kept: headings, paragraphs and lists
//! with their inline content and source ranges; code, HTML, quotes and tables
//! are kept as opaque blocks (never read for tasks). GitHub's `[tasklist]`
//! fenced blocks are unwrapped before parsing, so their items are ordinary
//! task items in place.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

pub use crate::forge::mentions::options;

/// Inline content: a run of events with their source ranges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inline(pub Vec<(Inl, Range<usize>)>);

#[derive(Clone, Debug, PartialEq)]
pub enum Inl {
    Text(String),
    Code(String),
    /// An inline HTML tag or comment.
    Html(String),
    /// A soft line break (the paragraph goes on on the next line).
    SoftBreak,
    HardBreak,
    /// A task-list marker: checked or not.
    Task(bool),
    Start(Span),
    End,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Span {
    Emphasis,
    Strong,
    Strike,
    Link(String),
    Image(String),
    /// Superscript, subscript and the like: text kept.
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: Kind,
    pub range: Range<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Heading {
        level: usize,
        text: Inline,
    },
    Paragraph(Inline),
    List {
        ordered: bool,
        items: Vec<Item>,
    },
    Code,
    /// An HTML block; `comment` when it holds only comments.
    Html {
        comment: bool,
    },
    Quote,
    Table,
    Rule,
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub range: Range<usize>,
    /// `Some(checked)` for a task item.
    pub task: Option<bool>,
    /// The number an ordered item is written with.
    pub number: Option<u64>,
    /// The item's own text: its first paragraph (empty when the item opens
    /// with another block, as in `1. - [ ] x`).
    pub lead: Inline,
    pub lead_range: Option<Range<usize>>,
    /// Where the item's content starts (its column is the indentation of
    /// its nested content).
    pub content_start: usize,
    /// Blocks after the lead.
    pub blocks: Vec<Block>,
}

/// The parsed text: the (tasklist-unwrapped) source and its blocks.
pub struct Doc {
    pub src: String,
    pub blocks: Vec<Block>,
    line_starts: Vec<usize>,
}

impl Doc {
    pub fn parse(text: &str) -> Doc {
        let src = unwrap_tasklists(&expand_tabs(text));
        let blocks = {
            let mut events = Parser::new_ext(&src, options())
                .into_offset_iter()
                .peekable();
            let mut b = Builder {
                src: &src,
                depth: 0,
            };
            b.blocks(&mut events)
        };
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Doc {
            src,
            blocks,
            line_starts,
        }
    }

    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The byte offset where `offset`'s line starts.
    pub fn line_start(&self, offset: usize) -> usize {
        self.line_starts[self.line(offset) - 1]
    }

    /// The column (in bytes, tabs expanded) of `offset`.
    pub fn column(&self, offset: usize) -> usize {
        offset - self.line_start(offset)
    }

    /// Source lines from the line holding `from` up to `to`, each with
    /// `indent` leading spaces (at most) removed, lines starting inside one of
    /// `skip` left out; trailing spaces and leading and trailing blank lines
    /// dropped.
    pub fn dedented(&self, from: usize, to: usize, indent: usize, skip: &[Range<usize>]) -> String {
        let start = self.line_start(from.min(self.src.len()));
        let to = to.min(self.src.len());
        let mut lines: Vec<&str> = Vec::new();
        let mut pos = start;
        for line in self.src[start..to].split_inclusive('\n') {
            let here = pos;
            pos += line.len();
            if skip.iter().any(|r| r.contains(&here)) {
                continue;
            }
            let line = line.trim_end();
            let spaces = line.len() - line.trim_start_matches(' ').len();
            lines.push(&line[spaces.min(indent)..]);
        }
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines.join("\n")
    }
}

/// Tabs become spaces to the next multiple of four, as the old reader did,
/// so that columns are bytes.
fn expand_tabs(text: &str) -> String {
    if !text.contains('\t') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut col = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let pad = 4 - col % 4;
                out.extend(std::iter::repeat_n(' ', pad));
                col += pad;
            }
            '\n' => {
                out.push(c);
                col = 0;
            }
            _ => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// GitHub renders a fenced block whose info string is `[tasklist]` as a
/// tracked list of its items: blank its fence lines (byte for byte, so
/// offsets and lines stay) and its content is read in place.
fn unwrap_tasklists(text: &str) -> String {
    let mut fences: Vec<Range<usize>> = Vec::new();
    // The open tasklist block and the range of its content so far.
    let mut open: Option<(Range<usize>, Option<Range<usize>>)> = None;
    for (ev, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match ev {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
                if info.trim().eq_ignore_ascii_case("[tasklist]") =>
            {
                open = Some((range, None));
            }
            Event::Text(_) => {
                if let Some((_, content)) = open.as_mut() {
                    let c = content.get_or_insert(range.clone());
                    c.end = range.end;
                }
            }
            Event::End(TagEnd::CodeBlock) => match open.take() {
                Some((block, Some(content))) => {
                    fences.push(block.start..content.start);
                    fences.push(content.end..block.end);
                }
                Some((block, None)) => fences.push(block),
                None => {}
            },
            _ => {}
        }
    }
    if fences.is_empty() {
        return text.to_string();
    }
    let mut bytes = text.as_bytes().to_vec();
    for r in fences {
        for b in &mut bytes[r.start.min(text.len())..r.end.min(text.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Only ASCII fence characters and whole multi-byte characters were
    // replaced by spaces, so the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

type Events<'a> = std::iter::Peekable<pulldown_cmark::OffsetIter<'a>>;

/// Lists nested deeper than this are kept as opaque blocks (their text stays
/// in the body of the item around them): a hostile text of thousands of
/// nested lists must not exhaust the stack.
pub const MAX_DEPTH: usize = 32;

struct Builder<'s> {
    src: &'s str,
    /// Lists open around the current event.
    depth: usize,
}

fn is_span(tag: &Tag) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

fn is_span_end(end: &TagEnd) -> bool {
    matches!(
        end,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

fn is_inline(ev: &Event) -> bool {
    match ev {
        Event::Start(t) => is_span(t),
        Event::End(e) => is_span_end(e),
        Event::Text(_)
        | Event::Code(_)
        | Event::InlineHtml(_)
        | Event::InlineMath(_)
        | Event::SoftBreak
        | Event::HardBreak
        | Event::FootnoteReference(_)
        | Event::TaskListMarker(_) => true,
        _ => false,
    }
}

impl Builder<'_> {
    /// Blocks until the end of the enclosing element (whose End is consumed)
    /// or of the text.
    fn blocks(&mut self, ev: &mut Events) -> Vec<Block> {
        let mut out = Vec::new();
        loop {
            let Some((e, _)) = ev.peek() else {
                return out;
            };
            if is_inline(e) {
                let (inline, range) = self.inline(ev);
                out.push(Block {
                    kind: Kind::Paragraph(inline),
                    range,
                });
                continue;
            }
            let Some((e, range)) = ev.next() else {
                return out;
            };
            match e {
                Event::End(_) => return out,
                Event::Start(tag) => out.push(self.block(tag, range, ev)),
                Event::Rule => out.push(Block {
                    kind: Kind::Rule,
                    range,
                }),
                _ => out.push(Block {
                    kind: Kind::Other,
                    range,
                }),
            }
        }
    }

    /// An inline run: events up to the next block or the end of the element
    /// (not consumed).
    fn inline(&mut self, ev: &mut Events) -> (Inline, Range<usize>) {
        let mut out = Vec::new();
        let mut range: Option<Range<usize>> = None;
        while let Some((e, _)) = ev.peek() {
            if !is_inline(e) {
                break;
            }
            let Some((e, r)) = ev.next() else { break };
            let span = range.get_or_insert(r.clone());
            span.start = span.start.min(r.start);
            span.end = span.end.max(r.end);
            let inl = match e {
                Event::Text(t) => Inl::Text(t.into_string()),
                Event::Code(t) => Inl::Code(t.into_string()),
                Event::InlineMath(t) => Inl::Text(format!("${t}$")),
                Event::InlineHtml(t) => Inl::Html(t.into_string()),
                Event::FootnoteReference(t) => Inl::Text(format!("[^{t}]")),
                Event::SoftBreak => Inl::SoftBreak,
                Event::HardBreak => Inl::HardBreak,
                Event::TaskListMarker(c) => Inl::Task(c),
                Event::Start(Tag::Emphasis) => Inl::Start(Span::Emphasis),
                Event::Start(Tag::Strong) => Inl::Start(Span::Strong),
                Event::Start(Tag::Strikethrough) => Inl::Start(Span::Strike),
                Event::Start(Tag::Link { dest_url, .. }) => {
                    Inl::Start(Span::Link(dest_url.into_string()))
                }
                Event::Start(Tag::Image { dest_url, .. }) => {
                    Inl::Start(Span::Image(dest_url.into_string()))
                }
                Event::Start(_) => Inl::Start(Span::Other),
                _ => Inl::End,
            };
            out.push((inl, r));
        }
        (Inline(out), range.unwrap_or(0..0))
    }

    fn block(&mut self, tag: Tag, range: Range<usize>, ev: &mut Events) -> Block {
        let kind = match tag {
            Tag::Heading { level, .. } => {
                let (text, _) = self.inline(ev);
                self.skip_to_end(ev);
                Kind::Heading {
                    level: level as usize,
                    text,
                }
            }
            Tag::Paragraph => {
                let (text, _) = self.inline(ev);
                self.skip_to_end(ev);
                Kind::Paragraph(text)
            }
            Tag::List(_) if self.depth >= MAX_DEPTH => {
                self.skip_to_end(ev);
                Kind::Other
            }
            Tag::List(start) => {
                self.depth += 1;
                let mut items = Vec::new();
                loop {
                    match ev.next() {
                        Some((Event::Start(Tag::Item), r)) => items.push(self.item(r, ev)),
                        Some((Event::End(_), _)) | None => break,
                        Some(_) => {}
                    }
                }
                self.depth -= 1;
                Kind::List {
                    ordered: start.is_some(),
                    items,
                }
            }
            Tag::CodeBlock(_) => {
                self.skip_to_end(ev);
                Kind::Code
            }
            Tag::HtmlBlock => {
                let mut html = String::new();
                loop {
                    match ev.next() {
                        Some((Event::Html(t), _)) => html.push_str(&t),
                        Some((Event::End(_), _)) | None => break,
                        Some(_) => {}
                    }
                }
                Kind::Html {
                    comment: only_comments(&html),
                }
            }
            Tag::BlockQuote(_) => {
                self.skip_to_end(ev);
                Kind::Quote
            }
            Tag::Table(_) => {
                self.skip_to_end(ev);
                Kind::Table
            }
            _ => {
                self.skip_to_end(ev);
                Kind::Other
            }
        };
        Block { kind, range }
    }

    fn item(&mut self, range: Range<usize>, ev: &mut Events) -> Item {
        let content_start = ev.peek().map_or(range.end, |(_, r)| r.start);
        let mut blocks = self.blocks(ev);
        let (mut lead, lead_range) = match blocks.first() {
            Some(Block {
                kind: Kind::Paragraph(_),
                ..
            }) => {
                let b = blocks.remove(0);
                match b.kind {
                    Kind::Paragraph(text) => (text, Some(b.range)),
                    _ => unreachable!("matched a paragraph"),
                }
            }
            _ => (Inline::default(), None),
        };
        let task = match lead.0.first() {
            Some((Inl::Task(checked), _)) => {
                let checked = *checked;
                lead.0.remove(0);
                Some(checked)
            }
            _ => None,
        };
        let number = {
            let s = &self.src[range.start.min(self.src.len())..];
            let t = s.trim_start();
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            if (1..=9).contains(&digits) {
                t[..digits].parse().ok()
            } else {
                None
            }
        };
        Item {
            range,
            task,
            number,
            lead,
            lead_range,
            content_start,
            blocks,
        }
    }

    /// Consume events up to and including the End of the current element.
    fn skip_to_end(&mut self, ev: &mut Events) {
        let mut depth = 0usize;
        for (e, _) in ev.by_ref() {
            match e {
                Event::Start(_) => depth += 1,
                Event::End(_) if depth == 0 => return,
                Event::End(_) => depth -= 1,
                _ => {}
            }
        }
    }
}

/// Whether an HTML block holds nothing but `<!-- … -->` comments.
fn only_comments(html: &str) -> bool {
    let mut rest = html.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix("<!--") else {
            return false;
        };
        match after.find("-->") {
            Some(end) => rest = after[end + 3..].trim_start(),
            // An unclosed comment runs to the end of the text.
            None => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(doc: &Doc) -> Vec<&Item> {
        doc.blocks
            .iter()
            .filter_map(|b| match &b.kind {
                Kind::List { items, .. } => Some(items.iter()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn task_items_tight_and_loose_and_inside_numbers() {
        let doc = Doc::parse("- [ ] a\n- [x] b\n\n- [ ] c\n\n1. - [ ] d\n");
        let it = items(&doc);
        assert_eq!(it[0].task, Some(false));
        assert_eq!(it[1].task, Some(true));
        assert_eq!(it[2].task, Some(false), "loose items keep their marker");
        let outer = it.last().unwrap();
        assert_eq!((outer.task, outer.number), (None, Some(1)));
        assert!(outer.lead.0.is_empty());
        match &outer.blocks[0].kind {
            Kind::List { items, .. } => assert_eq!(items[0].task, Some(false)),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn tasklist_fences_are_unwrapped_other_fences_stay_code() {
        let doc = Doc::parse("Intro.\n```[tasklist]\n### Tasks\n- [ ] x\n```\n```\n- [ ] y\n```\n");
        assert_eq!(doc.line(doc.src.find("- [ ] x").unwrap()), 4);
        let kinds: Vec<&Kind> = doc.blocks.iter().map(|b| &b.kind).collect();
        assert!(
            matches!(kinds[1], Kind::Heading { level: 3, .. }),
            "{kinds:?}"
        );
        assert!(matches!(kinds[2], Kind::List { .. }), "{kinds:?}");
        assert!(matches!(kinds[3], Kind::Code), "{kinds:?}");
        // An empty tasklist leaves nothing behind.
        let doc = Doc::parse("```[tasklist]\n```\n- [ ] z\n");
        assert_eq!(items(&doc).len(), 1);
    }

    #[test]
    fn comments_are_told_from_other_html() {
        assert!(only_comments("<!-- a -->\n<!-- b -->"));
        assert!(only_comments("<!-- open"));
        assert!(!only_comments("<details>"));
        assert!(!only_comments("<!-- a --> <b>"));
    }

    #[test]
    fn thousands_of_nested_lists_do_not_exhaust_the_stack() {
        let text = "- ".repeat(50_000) + "x\n";
        let doc = Doc::parse(&text);
        assert_eq!(doc.blocks.len(), 1);
        let text: String = (0..5_000)
            .map(|i| format!("{}- [x] a\n", "  ".repeat(i)))
            .collect();
        let doc = Doc::parse(&text);
        assert!(matches!(doc.blocks[0].kind, Kind::List { .. }));
    }

    #[test]
    fn tabs_become_columns() {
        let doc = Doc::parse("-\t[ ] a\n");
        assert_eq!(doc.src, "-   [ ] a\n");
        assert_eq!(items(&doc)[0].task, Some(false));
    }
}
