//! The prompt an agent gets: the task, the master issue's context, acceptance
//! criteria in the shape of the seed's sub-issue template, the rules of the
//! worktree, and how to report progress with `po-status`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::protocol::{AgentStatus, Orchestration, store};

/// The most of the master issue's text a prompt quotes. Every prompt quotes
/// it, so a master task list of thousands of items would otherwise make each
/// prompt as long as the whole list (and the orchestration's cost per task
/// grow with its size); past this, the prompt says where the rest is.
pub const CONTEXT_MAX: usize = 32 << 10;

/// Where the agent works and on which branch, for the rules section.
pub struct Place<'a> {
    pub worktree: &'a Path,
    pub branch: Option<&'a str>,
    pub isolated: bool,
}

/// The closing note every prompt carries.
pub fn reporting_note() -> String {
    "## Reporting progress\n\n\
     Report what you are doing with `po-status` (`PO_STATUS_FILE` is already set):\n\n\
     ```sh\n\
     po-status set --progress 10 --phase \"Analyzing codebase\"\n\
     po-status set --progress 50 --phase \"Implementing\"\n\
     po-status set --progress 90 --phase \"Running tests\"\n\
     ```\n\n\
     Your exit status is the task's result: exit 0 when the task is done and committed.\n"
        .to_string()
}

/// The prompt for a task without a prompt file of its own.
pub fn render(task: &AgentStatus, orch: Option<&Orchestration>, place: &Place<'_>) -> String {
    let mut p = String::new();
    let title = if task.title.trim().is_empty() {
        task.agent_id.as_str()
    } else {
        task.title.trim()
    };
    p.push_str(&format!("# {title}\n\n"));
    if let Some(o) = orch {
        match (o.master_issue, o.title.as_deref()) {
            (Some(n), Some(t)) => p.push_str(&format!("**Master Issue**: #{n} - {t}\n")),
            (Some(n), None) => p.push_str(&format!("**Master Issue**: #{n}\n")),
            (None, Some(t)) => p.push_str(&format!("**Master Task List**: {t}\n")),
            (None, None) => {}
        }
        if let Some(url) = o.url.as_deref().filter(|u| !u.is_empty()) {
            p.push_str(&format!("**Link**: {url}\n"));
        }
    }
    if let Some(sub) = task.sub_issue {
        p.push_str(&format!("**Sub-Issue**: #{sub}\n"));
    }
    p.push_str(&format!("**Task**: {title}\n\n"));
    if !task.body.trim().is_empty() {
        p.push_str(task.body.trim());
        p.push_str("\n\n");
    }
    if let Some(body) = orch
        .and_then(|o| o.body.as_deref())
        .filter(|b| !b.trim().is_empty())
    {
        p.push_str("## Context\n\nFrom the master issue (other agents work on its other tasks at the same time):\n\n");
        let mut lines = body.trim().lines();
        let mut quoted = 0;
        for line in lines.by_ref() {
            quoted += line.len() + 3;
            if quoted > CONTEXT_MAX {
                break;
            }
            p.push_str("> ");
            p.push_str(line);
            p.push('\n');
        }
        let rest = lines.count() + usize::from(quoted > CONTEXT_MAX);
        if rest > 0 {
            let whole = orch
                .and_then(|o| o.url.as_deref())
                .filter(|u| !u.is_empty())
                .map(|u| format!("at {u}"))
                .unwrap_or_else(|| "in the orchestration's orchestration.json".into());
            p.push_str(&format!(
                "\n(The master issue goes on for {rest} more lines, not quoted here; the whole text \
                 is {whole}.)\n"
            ));
        }
        p.push('\n');
    }
    if !task.files.is_empty() {
        p.push_str("## Files\n\n");
        for f in &task.files {
            p.push_str(&format!("- `{f}`\n"));
        }
        p.push('\n');
    }
    p.push_str(&format!(
        "## Acceptance Criteria\n\n- {title} implemented\n- Tests passing\n- Documentation updated\n\n"
    ));
    p.push_str("## Rules\n\n");
    if place.isolated {
        p.push_str(&format!(
            "- Work only in this worktree: `{}`. Other agents work in their own worktrees; \
             do not touch them or the main checkout.\n",
            place.worktree.display()
        ));
        if let Some(b) = place.branch {
            p.push_str(&format!(
                "- Commit your work on the branch `{b}` (`git add` and `git commit`); \
                 do not push, do not switch branches.\n"
            ));
        }
    } else {
        p.push_str(&format!(
            "- You work in `{}`, shared with other agents: change only what your task needs.\n",
            place.worktree.display()
        ));
    }
    p.push_str("- This is part of a parallel orchestration. See the master issue for context.\n\n");
    p.push_str(&reporting_note());
    p
}

/// `orchestration.json` as prompts quote it, read once per version of the
/// file: a supervisor that runs task after task parses it again only when
/// it changed (it holds the whole master issue, and its task list).
pub fn orchestration(file: &Path) -> Option<Arc<Orchestration>> {
    type Key = (u64, u64, i64, i64, u64);
    static LAST: Mutex<Option<(PathBuf, Key, Arc<Orchestration>)>> = Mutex::new(None);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).ok()?;
    let key = (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size());
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((f, k, o)) = last.as_ref()
        && f == file
        && *k == key
    {
        return Some(o.clone());
    }
    let parsed = Arc::new(store::read_json::<Orchestration>(file).ok()?);
    *last = Some((file.to_path_buf(), key, parsed.clone()));
    Some(parsed)
}

/// A manifest task's own prompt file, resolved against `dirs` when relative.
pub fn own_prompt(file: &Path, dirs: &[PathBuf]) -> Result<String> {
    let candidates: Vec<PathBuf> = if file.is_absolute() {
        vec![file.to_path_buf()]
    } else {
        std::iter::once(file.to_path_buf())
            .chain(dirs.iter().map(|d| d.join(file)))
            .collect()
    };
    for c in &candidates {
        match crate::fsx::read_to_string(c, crate::fsx::SOURCE_MAX) {
            Ok(mut text) => {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push('\n');
                text.push_str(&reporting_note());
                return Ok(text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // There, but not a file to read (a FIFO, a directory, too large).
            Err(e) => return Err(Error::io("read the task's prompt_file", c)(e)),
        }
    }
    Err(Error::system(format!(
        "read the task's prompt_file {}: not found (looked in {}); fix prompt_file in the \
         manifest",
        file.display(),
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
