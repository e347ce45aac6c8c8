//! `--agent-cmd TEMPLATE`: split into argv words, then fill placeholders.
//!
//! The template is the user's own command line (a flag or `PO_AGENT_CMD`), split
//! with simple shell-like rules: whitespace separates words, single quotes keep
//! everything literally, double quotes keep everything but `\"` and `\\`, a
//! backslash outside quotes escapes the next character. There is no expansion of
//! any kind. Placeholders (`{prompt_file} {worktree} {agent_id} {branch} {id}`)
//! are substituted inside words after splitting, so task text never changes how
//! the command is split and never reaches a shell.

use crate::error::{Error, Result};

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 5] = ["prompt_file", "worktree", "agent_id", "branch", "id"];

/// Split a template into words.
pub fn split(template: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(template, "single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(unclosed(template, "double quote")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(unclosed(template, "double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => cur.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(Error::usage(
            "use the agent command: the template is empty; pass --agent-cmd 'PROGRAM ARGS…' \
             (or set PO_AGENT_CMD)",
        ));
    }
    Ok(words)
}

fn unclosed(template: &str, what: &str) -> Error {
    Error::usage(format!(
        "split the agent command {template:?}: unclosed {what}; close it or escape it with \\"
    ))
}

/// Values for the placeholders of one task.
#[derive(Clone, Debug, Default)]
pub struct Values<'a> {
    pub prompt_file: &'a str,
    pub worktree: &'a str,
    pub agent_id: &'a str,
    pub branch: &'a str,
    pub id: &'a str,
}

/// Substitute placeholders inside each word; unknown `{…}` text is left alone.
pub fn fill(words: &[String], v: &Values<'_>) -> Vec<String> {
    words.iter().map(|w| fill_word(w, v)).collect()
}

fn fill_word(word: &str, v: &Values<'_>) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let replaced = after.find('}').and_then(|end| {
            let value = match &after[..end] {
                "prompt_file" => v.prompt_file,
                "worktree" => v.worktree,
                "agent_id" => v.agent_id,
                "branch" => v.branch,
                "id" => v.id,
                _ => return None,
            };
            Some((value, end))
        });
        match replaced {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_expansion() {
        assert_eq!(
            split(r#"prog --flag 'a b' "c \"d\" $HOME" e\ f"#).unwrap(),
            vec!["prog", "--flag", "a b", r#"c "d" $HOME"#, "e f"]
        );
        assert_eq!(split("  sh  -c ''  ").unwrap(), vec!["sh", "-c", ""]);
        assert!(split("prog 'open").is_err());
        assert!(split("   ").is_err());
    }

    #[test]
    fn placeholders_fill_inside_words_only() {
        let words =
            split("run --prompt={prompt_file} {worktree} {unknown} {id}-{agent_id}").unwrap();
        let v = Values {
            prompt_file: "/p/a b.md",
            worktree: "/w; rm -rf /",
            agent_id: "agent-1",
            branch: "feat/x",
            id: "7",
        };
        assert_eq!(
            fill(&words, &v),
            vec![
                "run",
                "--prompt=/p/a b.md",
                "/w; rm -rf /",
                "{unknown}",
                "7-agent-1"
            ]
        );
    }
}
