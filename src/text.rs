//! Untrusted text made fit for human output: one line for tables, titles
//! and error lines; escaped for XML, HTML and SVG.

/// Runs of whitespace (newlines included) become one space; ends trimmed.
/// Task text shown on a terminal or in a table: control characters (escape
/// sequences among them) become spaces, so untrusted text cannot move the
/// cursor or change colours.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line: whitespace collapsed and control characters dropped.
pub fn one_line(s: &str) -> String {
    collapse_whitespace(s)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// At most `max` characters; when cut, trailing whitespace goes and `…` ends it.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let cut: String = s.chars().take(max - 1).collect();
    let mut out = cut.trim_end().to_string();
    out.push('…');
    out
}

/// `1 task`, `3 tasks`: a count and its noun (plural by `s`).
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `12.3 MB`, `512 B`: a size for humans (powers of 1000, like `du --si`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A word as a POSIX shell would need it written, for commands shown to people.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+{}".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words joined into a command line a shell would read back as the same words.
pub fn shell_words<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words
        .into_iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escape text for an XML or HTML attribute or element (SVG included).
/// Characters XML cannot carry at all (most control characters) are dropped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Element text: like [`xml_escape`] but keeps line breaks readable.
pub fn xml_text(text: &str) -> String {
    xml_escape(text)
        .replace("&#10;", "\n")
        .replace("&#9;", "\t")
        .replace("&#13;", "")
}

/// XML 1.0 `Char`, minus the controls already handled.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_plural_except_for_one() {
        assert_eq!(count(0, "task"), "0 tasks");
        assert_eq!(count(1, "task"), "1 task");
        assert_eq!(count(2, "agent"), "2 agents");
    }

    #[test]
    fn lines_are_flattened_and_cut_with_an_ellipsis() {
        assert_eq!(collapse_whitespace("  a\n\tb  c "), "a b c");
        assert_eq!(one_line("a\x1b[31m\nb"), "a[31m b");
        assert_eq!(ellipsize("feat/issue-1235-agent-1", 10), "feat/issu…");
        assert_eq!(ellipsize("abcd efgh", 6), "abcd…");
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("xy", 0), "");
    }

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(
            shell_words(["prog", "--flag", "{prompt_file}", "a b", "it's", ""]),
            r"prog --flag {prompt_file} 'a b' 'it'\''s' ''"
        );
    }

    #[test]
    fn sizes_read_like_du_si() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(1000), "1.0 kB");
    }

    #[test]
    fn markup_and_controls_are_escaped_or_dropped() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1b}[31m\u{0}x"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;[31mx"
        );
        assert_eq!(xml_text("l1\nl2 <x>"), "l1\nl2 &lt;x&gt;");
    }
}
