//! Dependencies stated in task text.
//!
//! A phrase — "depends on", "after", "requires", "blocked by", "waits for",
//! "once … is done" — followed, in the same clause, by a reference to another
//! task makes a dependency. References are `task 2` / `tasks 2 and 3` (the
//! task's own number: `3.` or `Sub-task 3:`, else its position), `#N` (an
//! existing sub-issue if one has that number, else task N), or another task's
//! title as whole words. Text that names no task ("after login") is not a
//! dependency.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::sources::Task;

const PHRASES: &[&str] = &[
    "depends on",
    "depend on",
    "dependent on",
    "depending on",
    "blocked by",
    "requires",
    "require",
    "waits for",
    "wait for",
    "after",
    "once",
];

const DONE_WORDS: &[&str] = &[
    "done",
    "complete",
    "completed",
    "finished",
    "merged",
    "lands",
    "landed",
    "ready",
];

/// Longest title, in words, that is looked for.
const MAX_TITLE_WORDS: usize = 16;

/// Task `task` waits for task `on` (indexes into the task list).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dependency {
    pub task: usize,
    pub on: usize,
    /// The words that said so.
    pub phrase: String,
}

/// Resolves references to tasks.
struct Index {
    by_label: HashMap<u64, usize>,
    by_sub_issue: HashMap<u64, usize>,
    by_title: HashMap<String, usize>,
    len: usize,
}

impl Index {
    fn new(tasks: &[Task]) -> Index {
        let mut ix = Index {
            by_label: HashMap::new(),
            by_sub_issue: HashMap::new(),
            by_title: HashMap::new(),
            len: tasks.len(),
        };
        for (i, t) in tasks.iter().enumerate() {
            if let Some(l) = t.label {
                ix.by_label.entry(l).or_insert(i);
            }
            if let Some(s) = t.sub_issue {
                ix.by_sub_issue.entry(s).or_insert(i);
            }
            let words = words(&t.title);
            if words.len() <= MAX_TITLE_WORDS && words.join(" ").len() >= 4 {
                ix.by_title.entry(words.join(" ")).or_insert(i);
            }
        }
        ix
    }

    fn task_number(&self, n: u64) -> Option<usize> {
        self.by_label.get(&n).copied().or_else(|| {
            let i = usize::try_from(n).ok()?.checked_sub(1)?;
            (i < self.len).then_some(i)
        })
    }

    fn hash(&self, n: u64) -> Option<usize> {
        self.by_sub_issue
            .get(&n)
            .copied()
            .or_else(|| self.task_number(n))
    }
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every dependency the tasks' titles and bodies state.
pub fn find(tasks: &[Task]) -> Vec<Dependency> {
    let ix = Index::new(tasks);
    let mut out = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let text = format!("{}\n{}", t.title, t.body);
        let mut seen = BTreeSet::new();
        for (phrase, clause) in clauses(&text) {
            for on in references(&ix, &clause) {
                if on != i && seen.insert(on) {
                    out.push(Dependency {
                        task: i,
                        on,
                        phrase: snippet(&phrase, &clause),
                    });
                }
            }
        }
    }
    out
}

fn snippet(phrase: &str, clause: &str) -> String {
    let clause: String = clause.trim().chars().take(80).collect();
    format!("{phrase} {clause}")
}

/// (phrase, the rest of its clause) for each dependency phrase in `text`.
fn clauses(text: &str) -> Vec<(String, String)> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for phrase in PHRASES {
        for (at, _) in lower.match_indices(phrase) {
            let before = lower[..at].chars().next_back();
            let after_at = at + phrase.len();
            let after = lower[after_at..].chars().next();
            if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let rest = &lower[after_at..];
            let end = clause_end(rest);
            let clause = &rest[..end];
            if *phrase == "once"
                && !words(clause)
                    .iter()
                    .any(|w| DONE_WORDS.contains(&w.as_str()))
            {
                continue;
            }
            out.push((phrase.to_string(), clause.to_string()));
        }
    }
    out
}

fn clause_end(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' | b';' | b'!' | b'?' => return i,
            b'.' if bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) => return i,
            _ => {}
        }
        if i >= 300 && rest.is_char_boundary(i) {
            return i;
        }
    }
    rest.len()
}

/// Tasks a clause names.
fn references(ix: &Index, clause: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let tokens: Vec<&str> = clause
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut in_task_list = false;
    for tok in &tokens {
        let tok = tok.trim_matches(|c: char| matches!(c, '(' | ')' | ':' | '"' | '\'' | '*' | '`'));
        if let Some(n) = tok.strip_prefix('#').and_then(|d| d.parse::<u64>().ok()) {
            out.extend(ix.hash(n));
            continue;
        }
        if matches!(
            tok,
            "task" | "tasks" | "sub-task" | "sub-tasks" | "subtask" | "subtasks"
        ) {
            in_task_list = true;
            continue;
        }
        if in_task_list {
            if let Ok(n) = tok.parse::<u64>() {
                out.extend(ix.task_number(n));
                continue;
            }
            if matches!(tok, "and" | "&" | "or") {
                continue;
            }
            in_task_list = false;
        }
    }
    let ws = words(clause);
    for start in 0..ws.len() {
        for len in 1..=MAX_TITLE_WORDS.min(ws.len() - start) {
            let candidate = ws[start..start + len].join(" ");
            if let Some(&i) = ix.by_title.get(&candidate) {
                out.push(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(title: &str, body: &str) -> Task {
        Task {
            title: title.into(),
            body: body.into(),
            ..Default::default()
        }
    }

    fn pairs(tasks: &[Task]) -> Vec<(usize, usize)> {
        find(tasks).iter().map(|d| (d.task, d.on)).collect()
    }

    #[test]
    fn phrases_naming_tasks_become_dependencies() {
        let tasks = [
            task("Add user model", ""),
            task("Add user API", "Depends on task 1."),
            task("Add docs", "Blocked by #2; after login works, polish"),
            task(
                "Ship",
                "Once the add user api is done, and after tasks 1 and 3",
            ),
            task("Other", "requires nothing after lunch"),
        ];
        assert_eq!(pairs(&tasks), [(1, 0), (2, 1), (3, 0), (3, 2), (3, 1)]);
    }

    #[test]
    fn labels_and_sub_issues_resolve_numbers() {
        let mut a = task("Alpha", "");
        a.label = Some(7);
        let mut b = task("Beta", "requires #123");
        b.sub_issue = Some(50);
        let mut c = task("Gamma", "after task 7");
        c.sub_issue = Some(123);
        assert_eq!(pairs(&[a, b, c]), [(1, 2), (2, 0)]);
    }

    #[test]
    fn once_needs_a_done_word() {
        let tasks = [task("Setup db", ""), task("B", "once setup db starts")];
        assert!(pairs(&tasks).is_empty());
    }
}
