//! Where tasks come from: a GitHub issue, a markdown file or stdin, or a cpo
//! parallel directory's manifest.
//!
//! Every source yields [`Task`]s in document order plus what was deliberately
//! left out (checked checklist items). Text is untrusted: it is only ever
//! stored, never run or used as a path.

pub mod issue;
pub mod manifest;
pub mod markdown;
pub mod refs;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// One sub-task as the source states it.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Task {
    pub title: String,
    /// The item's nested content, as Markdown.
    pub body: String,
    /// An issue of this repository the item names (`- [ ] #123`): its pull
    /// request closes it. Set from `reference` by [`refs`]' rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_issue: Option<u64>,
    /// The issue or pull request the item opens with, in whichever repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<refs::Reference>,
    /// The number the source gives the task (`3.` or `Sub-task 3:`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<u64>,
    /// 1-based line in the source text (0 for manifest tasks).
    pub line: usize,
    /// The heading the item is under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The item it is nested in (a checked one, or a plain bullet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Links in the item's own text whose address the title does not show:
    /// `(text, url)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
}

/// An item that looks like a task but is not one to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skipped {
    pub line: usize,
    pub title: String,
    pub reason: String,
}

/// The tasks of one text, and how they were found.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Extracted {
    /// `checklist`, `numbered`, `bullets`, `links` or `sections`.
    pub format: String,
    pub tasks: Vec<Task>,
    pub skipped: Vec<Skipped>,
    /// What the text holds, for the message when it has no task.
    pub found: markdown::Found,
    /// Things the reader should know about the tasks found (where they come
    /// from, references left as links).
    pub notes: Vec<String>,
}

/// What `po-parse SOURCE` names.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceArg {
    Issue(u64),
    Stdin,
    File(PathBuf),
    Manifest(PathBuf),
}

impl SourceArg {
    /// `1234` or `#1234` → an issue; `-` → stdin; a directory or `manifest.json`
    /// → a manifest; any other existing file → markdown (`./1234` for a file
    /// whose name is a number).
    pub fn detect(raw: &str) -> Result<SourceArg> {
        let digits = raw.strip_prefix('#').unwrap_or(raw);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits
                .parse()
                .map(SourceArg::Issue)
                .map_err(|_| Error::usage(format!("read issue number {raw:?}: it is too large")));
        }
        if raw == "-" {
            return Ok(SourceArg::Stdin);
        }
        let path = Path::new(raw);
        if path.is_dir() {
            if manifest::is_manifest(path) {
                return Ok(SourceArg::Manifest(path.to_path_buf()));
            }
            return Err(Error::parse(
                raw,
                format!(
                    "a directory source must hold {}; run `cpo init {raw} -t TS-ID -n NAME`, or pass a markdown file",
                    manifest::MANIFEST_FILE
                ),
            ));
        }
        if !path.exists() {
            return Err(Error::usage(format!(
                "read source {raw:?}: it is not an issue number, `-`, a file or a directory; {}",
                ACCEPTED
            )));
        }
        if manifest::is_manifest(path) {
            Ok(SourceArg::Manifest(path.to_path_buf()))
        } else {
            Ok(SourceArg::File(path.to_path_buf()))
        }
    }
}

/// The formats `po-parse` accepts, for error messages.
pub const ACCEPTED: &str = "po-parse reads Markdown (GitHub checklists, numbered lists, bullets \
under a heading such as `## Tasks`, `### ` headings under `## Sub-Tasks`) or a cpo directory with \
manifest.json; `po-parse --help` says how";

/// Bytes from a file, stdin or an issue as text: UTF-8 required, NUL bytes
/// (binary files) refused, a BOM dropped and line endings made `\n`.
pub fn decode(bytes: Vec<u8>, what: &str) -> Result<String> {
    if bytes.contains(&0) {
        return Err(Error::parse(
            what,
            "it looks like a binary file (it contains NUL bytes); pass a markdown text file",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Error::parse(
            what,
            format!(
                "it is not valid UTF-8 (invalid byte at offset {at}); convert it, e.g. `iconv -t UTF-8`"
            ),
        )
    })?;
    Ok(normalize(&text))
}

/// Drop a BOM; `\r\n` and lone `\r` become `\n`.
pub fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(SourceArg::detect("1234").unwrap(), SourceArg::Issue(1234));
        assert_eq!(SourceArg::detect("#7").unwrap(), SourceArg::Issue(7));
        assert_eq!(SourceArg::detect("-").unwrap(), SourceArg::Stdin);
        assert_eq!(
            SourceArg::detect("/definitely/not/here.md")
                .unwrap_err()
                .exit_code(),
            crate::exit::USAGE
        );
    }

    #[test]
    fn text_is_checked_and_normalised() {
        assert_eq!(
            decode(b"\xef\xbb\xbfa\r\nb\rc".to_vec(), "x").unwrap(),
            "a\nb\nc"
        );
        assert!(
            decode(b"a\0b".to_vec(), "x")
                .unwrap_err()
                .to_string()
                .contains("binary")
        );
        assert!(
            decode(b"a\xffb".to_vec(), "x")
                .unwrap_err()
                .to_string()
                .contains("offset 1")
        );
    }
}
