//! File overlaps: paths and directories each task mentions, and the tasks
//! that may touch the same files.
//!
//! A mention is a backticked span or a bare word that looks like a path:
//! it has a `/` (bare words need a trailing `/`, a file extension or three
//! components, so `and/or` is not one), or it is a file name with a known
//! source extension (`user.py`). Two tasks overlap when they mention the
//! same path, when one mentions a directory containing the other's path, or
//! when one mentions a bare file name that is the last part of the other's path.
//! Fenced code is not read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

const EXTENSIONS: &[&str] = &[
    "py", "pyi", "rs", "js", "mjs", "cjs", "ts", "tsx", "jsx", "go", "java", "kt", "kts", "swift",
    "rb", "php", "c", "h", "cc", "cpp", "hpp", "cs", "m", "mm", "scala", "ex", "exs", "erl", "hs",
    "ml", "lua", "r", "pl", "sh", "bash", "zsh", "fish", "sql", "html", "htm", "css", "scss",
    "sass", "less", "vue", "svelte", "md", "rst", "txt", "json", "jsonc", "yaml", "yml", "toml",
    "ini", "cfg", "conf", "env", "xml", "csv", "proto", "graphql", "gql", "tf", "lock", "gradle",
    "mk", "ipynb",
];

/// Framework names and abbreviations that look like file names but are not.
const NOT_FILES: &[&str] = &[
    "node.js",
    "vue.js",
    "next.js",
    "nuxt.js",
    "react.js",
    "express.js",
    "three.js",
    "d3.js",
    "chart.js",
    "ember.js",
    "e.g",
    "i.e",
    "asp.net",
];

/// Tasks that may share a path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overlap {
    /// The shared path, directory (`src/auth/`) or file name (`user.py`).
    pub path: String,
    /// Indexes into the task list, ascending.
    pub tasks: Vec<usize>,
}

/// Paths `text` mentions, normalised: backticked ones first (the explicit
/// mentions), then path-like words, each in order of first mention.
pub fn mentions(text: &str) -> Vec<String> {
    let mut quoted: Vec<String> = Vec::new();
    let mut bare: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut outside = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 {
                quoted.extend(pathlike(part.trim(), true));
            } else {
                outside.push_str(part);
                outside.push(' ');
            }
        }
        for word in outside.split_whitespace() {
            let word = word
                .trim_start_matches(['(', '[', '{', '<', '"', '\'', '*', '_'])
                .trim_end_matches([
                    ')', ']', '}', '>', '"', '\'', ',', ';', ':', '!', '?', '.', '*', '_',
                ]);
            bare.extend(pathlike(word, false));
        }
    }
    let mut seen = HashSet::new();
    quoted
        .into_iter()
        .chain(bare)
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

fn pathlike(s: &str, backticked: bool) -> Option<String> {
    if s.is_empty()
        || s.len() > 200
        || s.starts_with('-')
        || s.contains("://")
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '~' | '@'))
    {
        return None;
    }
    let s = s.strip_prefix("./").unwrap_or(s);
    let mut norm = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '/' && norm.ends_with('/') {
            continue;
        }
        norm.push(c);
    }
    let trimmed = norm.trim_end_matches('/');
    if trimmed.is_empty() || !trimmed.chars().any(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if trimmed.split('/').any(|c| c == "..") {
        return None;
    }
    let is_dir = norm.ends_with('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let has_ext = known_extension(last);
    if trimmed.contains('/') {
        let components = trimmed.split('/').filter(|c| !c.is_empty()).count();
        if backticked || is_dir || has_ext || components >= 3 {
            return Some(norm);
        }
        return None;
    }
    if is_dir {
        // `auth/`: a directory by its trailing slash.
        return Some(norm);
    }
    if has_ext && !NOT_FILES.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return Some(norm);
    }
    None
}

fn known_extension(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && stem.chars().any(|c| c.is_ascii_alphanumeric())
                && EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        }
        None => false,
    }
}

/// Groups of two or more tasks that may touch the same files.
pub fn overlaps(files: &[Vec<String>]) -> Vec<Overlap> {
    let key = |m: &str| m.trim_end_matches('/').to_string();
    let mut exact: HashMap<String, BTreeSet<usize>> = HashMap::new();
    let mut dirs: HashSet<String> = HashSet::new();
    for (i, ms) in files.iter().enumerate() {
        for m in ms {
            exact.entry(key(m)).or_default().insert(i);
            if m.ends_with('/') {
                dirs.insert(key(m));
            }
        }
    }
    let mut groups: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, ms) in files.iter().enumerate() {
        for m in ms {
            let k = key(m);
            groups.entry(k.clone()).or_default().insert(i);
            for (p, _) in k.match_indices('/') {
                let prefix = &k[..p];
                if exact.contains_key(prefix) {
                    groups.entry(prefix.to_string()).or_default().insert(i);
                }
            }
            if let Some((_, base)) = k.rsplit_once('/')
                && exact.contains_key(base)
                && !dirs.contains(base)
            {
                groups.entry(base.to_string()).or_default().insert(i);
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, tasks)| tasks.len() > 1)
        .map(|(k, tasks)| Overlap {
            path: if dirs.contains(&k) {
                format!("{k}/")
            } else {
                k
            },
            tasks: tasks.into_iter().collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_backticked_or_path_like() {
        assert_eq!(
            mentions(
                "Touch `src/auth/` and models/user.py, see user.py. Not and/or, \
                 not Node.js, not e.g. this. `cfg` `lib/x` https://x.io/a/b.py (utils/)"
            ),
            ["src/auth/", "lib/x", "models/user.py", "user.py", "utils/"]
        );
        assert_eq!(
            mentions("Both a/b.md and c/d.md exist.\nCreate `e/f.md` from a/b.md."),
            ["e/f.md", "a/b.md", "c/d.md"]
        );
        assert!(mentions("```\nsrc/in/code.rs\n```").is_empty());
        assert_eq!(mentions("./a//b.rs"), ["a/b.rs"]);
    }

    #[test]
    fn same_file_directory_or_file_name_overlap() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = overlaps(&[
            f(&["src/auth/"]),
            f(&["src/auth/login.rs"]),
            f(&["src/pay/card.rs"]),
            f(&["user.py"]),
            f(&["models/user.py"]),
            f(&["src/pay/bank.rs"]),
        ]);
        assert_eq!(
            got,
            [
                Overlap {
                    path: "src/auth/".into(),
                    tasks: vec![0, 1]
                },
                Overlap {
                    path: "user.py".into(),
                    tasks: vec![3, 4]
                },
            ]
        );
    }
}
