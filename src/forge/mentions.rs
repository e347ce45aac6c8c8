//! Mentions that notify no one.
//!
//! Task titles and bodies come from issues people wrote, and po copies them
//! into what it posts (sub-issues, pull requests, follow-up issues, the
//! summary comment). An `@user` or `@org/team` there would notify those
//! people again on every run. [`quote`] puts each mention GitHub would link
//! in a code span (`` `@user` ``; `<code>@user</code>` inside HTML), where
//! GitHub links none. What GitHub never links is left alone: code spans and
//! blocks, link text and addresses, URLs, e-mail addresses (`a@b.com`),
//! HTML comments.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// GitHub's markdown extensions that change what a list item is: the
/// parser options for reading text as GitHub renders it.
pub fn options() -> Options {
    Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES
}

/// `text` with every mention quoted so that it notifies no one. Quoting is
/// idempotent: a quoted mention is in a code span, which is not quoted again.
pub fn quote(text: &str) -> String {
    let mut out = quote_once(text);
    // A code span next to stray backticks can merge with them and come
    // apart; what is still a mention then gets a word joiner after its `@`,
    // which no mention can contain.
    if !mentions_in(&out).is_empty() {
        out = quote_once(&out);
    }
    let left = mentions_in(&out);
    if left.is_empty() {
        return out;
    }
    let mut s = String::with_capacity(out.len() + left.len() * 3);
    let mut at = 0;
    for (r, _) in left {
        // After the `@`, or the `&` of its entity (which then is none).
        let cut = out[r.clone()]
            .find(['@', '&'])
            .map_or(r.start + 1, |p| r.start + p + 1);
        s.push_str(&out[at..cut]);
        s.push('\u{2060}');
        at = cut;
    }
    s.push_str(&out[at..]);
    s
}

/// Where the mentions are: their ranges in `text`, and whether each is in
/// HTML (quoted with `<code>`) rather than in Markdown text.
fn mentions_in(text: &str) -> Vec<(Range<usize>, bool)> {
    let mut found = Vec::new();
    // Markdown text: contiguous runs of Text events outside links, images,
    // code blocks and HTML elements that GitHub does not link in.
    let mut run: Option<Range<usize>> = None;
    let mut skip = 0usize; // inside links, images, code blocks
    let mut html_code = 0i32; // inside inline <code>, <pre>, <a>
    let flush = |run: &mut Option<Range<usize>>, found: &mut Vec<(Range<usize>, bool)>| {
        if let Some(r) = run.take() {
            for m in scan(text, r) {
                found.push((m, false));
            }
        }
    };
    for (ev, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match ev {
            Event::Text(_) if skip == 0 && html_code <= 0 => match run.as_mut() {
                Some(r) if r.end == range.start => r.end = range.end,
                _ => {
                    flush(&mut run, &mut found);
                    run = Some(range);
                }
            },
            Event::Start(Tag::Link { .. } | Tag::Image { .. } | Tag::CodeBlock(_)) => {
                flush(&mut run, &mut found);
                skip += 1;
            }
            Event::End(TagEnd::Link | TagEnd::Image | TagEnd::CodeBlock) => {
                skip = skip.saturating_sub(1);
            }
            Event::InlineHtml(tag) => {
                flush(&mut run, &mut found);
                html_code += code_depth_change(&tag);
            }
            Event::Html(_) => {
                flush(&mut run, &mut found);
                for m in scan_html(text, range) {
                    found.push((m, true));
                }
            }
            _ => flush(&mut run, &mut found),
        }
    }
    flush(&mut run, &mut found);
    found.sort_by_key(|(r, _)| r.start);
    found.dedup_by_key(|(r, _)| r.start);
    found
}

fn quote_once(text: &str) -> String {
    let found = mentions_in(text);
    if found.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + found.len() * 4);
    let mut at = 0;
    for (r, html) in found {
        out.push_str(&text[at..r.start]);
        let m = &text[r.clone()];
        if html {
            out.push_str(&format!("<code>{m}</code>"));
        } else {
            out.push('`');
            out.push_str(m);
            out.push('`');
        }
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// +1 for an opening `<code>`, `<pre>`, `<a …>`, -1 for its closing tag.
fn code_depth_change(tag: &str) -> i32 {
    let t = tag.trim_start_matches('<');
    let (closing, t) = match t.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let name: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if !matches!(name.as_str(), "code" | "pre" | "a" | "kbd" | "samp") || tag.ends_with("/>") {
        return 0;
    }
    if closing { -1 } else { 1 }
}

/// Mentions in the text parts of raw HTML (outside tags, comments and
/// `<code>`/`<pre>`/`<a>` elements).
fn scan_html(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let s = &text[range.clone()];
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    let mut text_start = 0;
    let bytes = s.as_bytes();
    let flush = |from: usize, to: usize, depth: i32, out: &mut Vec<Range<usize>>| {
        if depth <= 0 && from < to {
            out.extend(scan(text, range.start + from..range.start + to));
        }
    };
    while i < bytes.len() {
        if s[i..].starts_with("<!--") {
            flush(text_start, i, depth, &mut out);
            i = s[i..].find("-->").map_or(bytes.len(), |e| i + e + 3);
            text_start = i;
            continue;
        }
        if bytes[i] == b'<'
            && bytes
                .get(i + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'/')
        {
            flush(text_start, i, depth, &mut out);
            let end = s[i..].find('>').map_or(bytes.len(), |e| i + e + 1);
            depth += code_depth_change(&s[i..end]);
            i = end;
            text_start = i;
            continue;
        }
        i += 1;
    }
    flush(text_start, bytes.len(), depth, &mut out);
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The mentions GitHub links in one run of text: `@name` or `@org/team`
/// after the start or a non-word character, not inside a URL, ending where
/// a name cannot go on (`@a.b` is no mention of `a`, `@a.` is). Entity and
/// escape forms of `@` count too (`&#64;`, `\@`), as GitHub decodes them.
fn scan(text: &str, run: Range<usize>) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = run.start;
    while i < run.end {
        let at_len = if b[i] == b'@' {
            1
        } else if let Some(e) = ["&#64;", "&#x40;", "&#X40;", "&commat;"]
            .iter()
            .find(|e| b[i..run.end].starts_with(e.as_bytes()))
        {
            e.len()
        } else {
            i += 1;
            continue;
        };
        // A backslash escape before it belongs to the quoted text (the
        // parser may have left it out of the run).
        let start = if i > 0 && b[i - 1] == b'\\' { i - 1 } else { i };
        // A run starts a text node: there, as after a non-word character, a
        // name may begin.
        let before_ok = start <= run.start || !is_word(b[start - 1]);
        let name_at = i + at_len;
        let name_len = name(&b[..run.end], name_at);
        if !before_ok || name_len == 0 || in_url(&text[run.start..i]) {
            i = name_at.max(i + 1);
            continue;
        }
        let mut end = name_at + name_len;
        // `@org/team`
        if end < run.end && b[end] == b'/' {
            let team = team(&b[..run.end], end + 1);
            if team > 0 {
                end += 1 + team;
            } else {
                // `@user/` is not a mention.
                i = end;
                continue;
            }
        }
        if ends_a_name(&b[..run.end], end) {
            out.push(start..end);
        }
        i = end;
    }
    out
}

/// Length of a user name at `at`: a letter or digit, then letters, digits
/// and hyphens (at most 39).
fn name(b: &[u8], at: usize) -> usize {
    if !b.get(at).is_some_and(u8::is_ascii_alphanumeric) {
        return 0;
    }
    let n = b[at..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
        .count();
    n.min(39)
}

fn team(b: &[u8], at: usize) -> usize {
    if !b.get(at).is_some_and(u8::is_ascii_alphanumeric) {
        return 0;
    }
    b[at..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        .count()
}

/// GitHub's look-ahead after a name: the end, dots then the end or a
/// non-word character, or a character that is neither a word character
/// nor a dot.
fn ends_a_name(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        None => true,
        Some(b'.') => {
            let dots = b[end..].iter().take_while(|c| **c == b'.').count();
            b.get(end + dots).is_none_or(|c| !is_word(*c))
        }
        Some(c) => !is_word(*c) && *c != b'.',
    }
}

/// Whether a mention after `before` (the run's text up to it) is inside a
/// URL (a word that starts with a scheme or `www.`), which GitHub links as a
/// whole.
fn in_url(before: &str) -> bool {
    let word_start = before
        .rfind(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | '"' | '\''))
        .map_or(0, |p| p + 1);
    let word = &before[word_start..];
    word.contains("://") || word.starts_with("www.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_go_into_code_spans() {
        assert_eq!(
            quote("cc @alice and @org/team-x."),
            "cc `@alice` and `@org/team-x`."
        );
        assert_eq!(quote("@bob: look"), "`@bob`: look");
        assert_eq!(quote("(@yanboliang)"), "(`@yanboliang`)");
        assert_eq!(quote("**@bold**"), "**`@bold`**");
        assert_eq!(
            quote("# Hi @h\n\n| a |\n|---|\n| @t |\n"),
            "# Hi `@h`\n\n| a |\n|---|\n| `@t` |\n"
        );
        assert_eq!(quote("- [ ] task @x\n"), "- [ ] task `@x`\n");
    }

    #[test]
    fn what_github_never_links_is_left_alone() {
        for same in [
            "mail a@b.com or first.last@example.org",
            "`@already` quoted",
            "```\n@in code\n```",
            "    @indented code",
            "[@linked](https://x.y) <https://x.y/@z>",
            "see https://medium.com/@user/post and www.x.y/@z",
            "<!-- @hidden -->",
            "@a.b is not a mention",
            "@user/ is not one",
            "no @ here, nor @-x",
            "<code>@c</code> and <pre>@p</pre>",
        ] {
            assert_eq!(quote(same), same);
        }
    }

    #[test]
    fn html_blocks_get_code_elements() {
        assert_eq!(
            quote("<details>\n<summary>cc @alice</summary>\n</details>\n"),
            "<details>\n<summary>cc <code>@alice</code></summary>\n</details>\n"
        );
        assert_eq!(
            quote("<div>\n<!-- @x --> <code>@y</code> @z\n</div>\n"),
            "<div>\n<!-- @x --> <code>@y</code> <code>@z</code>\n</div>\n"
        );
    }

    #[test]
    fn escapes_and_entities_are_mentions_too() {
        assert_eq!(quote("\\@esc"), "`\\@esc`");
        assert_eq!(quote("&#64;ent"), "`&#64;ent`");
    }

    #[test]
    fn quoting_is_idempotent_and_leaves_no_mention() {
        for text in [
            "cc @alice",
            "`@x",
            "``@x`",
            "a `b` @c `d",
            "@a@b @c_d @e-f",
            "x\\`@y`",
            "`\\@z",
            "``&#64;w`",
        ] {
            let once = quote(text);
            assert_eq!(quote(&once), once, "{text:?}");
            assert!(mentions_in(&once).is_empty(), "{text:?} → {once:?}");
        }
    }
}
