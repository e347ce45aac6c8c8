//! `cpo validate`: the manifest, its prompts and the git prerequisites of the
//! `/parallel-run` document, reported in the document's words.
//!
//! * Manifest errors (missing `tech_spec_id` or `waves`, bad tasks, a missing
//!   or empty prompt) fail with `ERROR: manifest.json validation failed`, exit 3.
//! * Prerequisites that make a run impossible (no git repository, no commit to
//!   branch from) fail with `ERROR: prerequisites not met`, exit 4.
//! * A dirty working tree is a warning, not a failure: agents branch from the
//!   last commit, so uncommitted changes are simply not part of their work;
//!   the warning says so. Changes inside the parallel directory itself are
//!   not counted (its prompts are read from disk, and `cpo run` writes there).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::ParallelDir;
use super::plan::Plan;
use crate::error::{Result, exit};

/// The template text `cpo init` puts in its sample prompt.
pub const TEMPLATE_MARKER: &str = "<!-- cpo init: replace this prompt -->";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    /// Required manifest fields that are absent (`tech_spec_id`, `waves`).
    pub missing_fields: Vec<String>,
    /// Other manifest errors, each naming the field or file and the fix.
    pub problems: Vec<String>,
    /// What makes a run impossible outside the manifest.
    pub prerequisites: Vec<String>,
    /// Worth knowing; does not fail.
    pub warnings: Vec<String>,
    /// The manifest as far as it could be read.
    pub plan: Plan,
}

impl Findings {
    pub fn manifest_ok(&self) -> bool {
        self.missing_fields.is_empty() && self.problems.is_empty()
    }

    pub fn ok(&self) -> bool {
        self.manifest_ok() && self.prerequisites.is_empty()
    }

    pub fn exit_code(&self) -> i32 {
        if !self.manifest_ok() {
            exit::PARSE
        } else if !self.prerequisites.is_empty() {
            exit::VALIDATION
        } else {
            exit::SUCCESS
        }
    }
}

/// `cpo validate DIR`: print the findings, exit 0, 3 or 4.
pub fn command(dir: &Path) -> Result<i32> {
    let pd = ParallelDir::open(dir)?;
    let findings = check(&pd);
    print!("{}", render(&pd, &findings));
    Ok(findings.exit_code())
}

/// Every check, nothing printed.
pub fn check(pd: &ParallelDir) -> Findings {
    let mut f = Findings::default();
    let manifest = pd.manifest();
    if !manifest.is_file() {
        f.problems.push(format!(
            "{} does not exist; create the directory with `cpo init DIR -t TS-ID -n NAME` or \
             write the manifest there",
            pd.shown_join(super::MANIFEST)
        ));
    } else {
        match std::fs::read_to_string(&manifest)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Err(e) => f.problems.push(format!(
                "{}: not valid JSON ({e})",
                pd.shown_join(super::MANIFEST)
            )),
            Ok(value) => {
                f.plan = Plan::from_value(&value, &pd.path);
                structure(&value, pd, &mut f);
                prompts(pd, &mut f);
            }
        }
    }
    git(pd, &mut f);
    agent(&mut f);
    dedup(&mut f.problems);
    dedup(&mut f.warnings);
    f
}

/// The manifest's required fields and task rules.
fn structure(value: &Value, pd: &ParallelDir, f: &mut Findings) {
    let Some(obj) = value.as_object() else {
        f.problems
            .push("the manifest is not a JSON object; see `cpo init` for the shape".into());
        return;
    };
    match obj.get("tech_spec_id") {
        None | Some(Value::Null) => f.missing_fields.push("tech_spec_id".into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            f.missing_fields.push("tech_spec_id".into())
        }
        Some(Value::String(_)) => {}
        Some(_) => f
            .problems
            .push("tech_spec_id: must be a string such as \"TS-0042\"".into()),
    }
    let waves = match obj.get("waves") {
        None | Some(Value::Null) => {
            f.missing_fields.push("waves".into());
            return;
        }
        Some(Value::Array(w)) => w,
        Some(_) => {
            f.problems
                .push("waves: must be a list of {\"number\", \"tasks\"} objects".into());
            return;
        }
    };
    if waves.is_empty() {
        f.problems
            .push("waves: is empty; add a wave with at least one task".into());
    }
    let mut ids = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, wave) in waves.iter().enumerate() {
        let at = format!("waves[{i}]");
        if let Some(n) = wave.get("number") {
            match n.as_u64() {
                Some(n) if n >= 1 => {
                    if !numbers.insert(n) {
                        f.problems.push(format!(
                            "{at}.number: wave {n} appears twice; number waves 1, 2, 3…"
                        ));
                    }
                }
                _ => f
                    .problems
                    .push(format!("{at}.number: must be a whole number from 1")),
            }
        }
        let Some(tasks) = wave.get("tasks").and_then(Value::as_array) else {
            f.problems
                .push(format!("{at}.tasks: missing; list the wave's tasks"));
            continue;
        };
        if tasks.is_empty() {
            f.problems.push(format!(
                "{at}.tasks: is empty; add a task or remove the wave"
            ));
        }
        for (j, task) in tasks.iter().enumerate() {
            let at = format!("{at}.tasks[{j}]");
            match task.get("id").and_then(Value::as_str).map(str::trim) {
                None | Some("") => f
                    .problems
                    .push(format!("{at}.id: missing; give the task a unique id")),
                Some(id) => {
                    if !ids.insert(id.to_string()) {
                        f.problems.push(format!(
                            "{at}.id: {id:?} is used twice; task ids must be unique"
                        ));
                    }
                }
            }
            if let Some(p) = task.get("prompt_file") {
                match p.as_str() {
                    Some(p) => {
                        if let Some(msg) = outside(p, pd) {
                            f.problems.push(format!("{at}.prompt_file: {msg}"));
                        }
                    }
                    None => f.problems.push(format!(
                        "{at}.prompt_file: must be a path such as prompts/task-001.txt"
                    )),
                }
            }
        }
    }
}

/// `Some(reason)` when a prompt path leaves the parallel directory.
fn outside(p: &str, pd: &ParallelDir) -> Option<String> {
    let rel = Path::new(p);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Some(format!(
            "{p} is outside {}; keep prompts inside the parallel directory",
            pd.shown.display()
        ));
    }
    let full = pd.path.join(rel);
    match std::fs::canonicalize(&full) {
        Ok(real) if !real.starts_with(&pd.path) => Some(format!(
            "{p} leads outside {} (a symbolic link); keep prompts inside the parallel directory",
            pd.shown.display()
        )),
        _ => None,
    }
}

/// Every task has a prompt file with something in it.
fn prompts(pd: &ParallelDir, f: &mut Findings) {
    let plan = f.plan.clone();
    for (wave, task) in plan.tasks() {
        let shown = |p: &Path| {
            p.strip_prefix(&pd.path)
                .map(|r| pd.shown_join(&r.to_string_lossy()))
                .unwrap_or_else(|_| p.display().to_string())
        };
        let Some(prompt) = &task.prompt else {
            f.problems.push(format!(
                "{} (wave {}): no prompt_file and no prompts/task-NNN.txt; add \"prompt_file\" \
                 to the task",
                task.id, wave.number
            ));
            continue;
        };
        if task
            .prompt_file
            .as_deref()
            .is_some_and(|p| outside(p, pd).is_some())
        {
            continue;
        }
        match std::fs::read(prompt) {
            Err(_) => f.problems.push(format!(
                "{}: prompt_file {} does not exist; write the task's prompt there",
                task.id,
                shown(prompt)
            )),
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if text.trim().is_empty() {
                    f.problems.push(format!(
                        "{}: prompt_file {} is empty; write the task's prompt there",
                        task.id,
                        shown(prompt)
                    ));
                } else if text.contains(TEMPLATE_MARKER) {
                    f.warnings.push(format!(
                        "{}: {} is still the template `cpo init` wrote",
                        task.id,
                        shown(prompt)
                    ));
                }
            }
        }
    }
}

/// The repository agents branch from: the current directory's.
fn git(pd: &ParallelDir, f: &mut Findings) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let Some(top) = git_out(&cwd, &["rev-parse", "--show-toplevel"]) else {
        f.prerequisites.push(
            "not inside a git repository: each task runs in its own git worktree; run cpo from \
             the repository (or `git init` and commit first)"
                .into(),
        );
        return;
    };
    let top = PathBuf::from(top);
    if git_out(&top, &["rev-parse", "--verify", "--quiet", "HEAD"]).is_none() {
        f.prerequisites.push(
            "the repository has no commit yet: agents branch from HEAD; commit something first"
                .into(),
        );
        return;
    }
    let Some(status) = git_out_raw(
        &top,
        &["status", "--porcelain", "-z", "--untracked-files=all"],
    ) else {
        return;
    };
    let top_real = std::fs::canonicalize(&top).unwrap_or(top.clone());
    let inside = pd.path.strip_prefix(&top_real).ok().map(Path::to_path_buf);
    let dirty = dirty_paths(&status)
        .into_iter()
        .filter(|p| {
            !p.starts_with(".claude/runtime")
                && !inside
                    .as_ref()
                    .is_some_and(|d| !d.as_os_str().is_empty() && Path::new(p).starts_with(d))
        })
        .collect::<Vec<_>>();
    if !dirty.is_empty() {
        let head = git_out(&top, &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
        let shown: Vec<&str> = dirty.iter().take(3).map(String::as_str).collect();
        f.warnings.push(format!(
            "git working tree is not clean ({} uncommitted: {}{}); agents branch from HEAD \
             ({head}) and will not see these changes; commit or stash them first",
            dirty.len(),
            shown.join(", "),
            if dirty.len() > 3 { ", …" } else { "" }
        ));
    }
}

/// Paths in `git status --porcelain -z` output.
pub fn dirty_paths(z: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries = z.split('\0');
    while let Some(e) = entries.next() {
        if e.len() < 4 {
            continue;
        }
        let (xy, path) = e.split_at(3);
        out.push(path.to_string());
        if xy.starts_with('R') || xy.starts_with('C') {
            entries.next();
        }
    }
    out
}

fn agent(f: &mut Findings) {
    if std::env::var_os("PO_AGENT_CMD").is_some() {
        return;
    }
    if super::tools::on_path("claude").is_none() {
        f.warnings.push(
            "claude (Claude Code CLI) is not on PATH: install it, or run another agent with \
             `cpo run DIR --agent-cmd 'prog {prompt_file}'` (or PO_AGENT_CMD)"
                .into(),
        );
    }
}

fn git_out_raw(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn git_out(dir: &Path, args: &[&str]) -> Option<String> {
    let s = git_out_raw(dir, args)?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

/// The findings in the document's words.
pub fn render(pd: &ParallelDir, f: &Findings) -> String {
    let mut out = String::new();
    let list = |out: &mut String, title: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        out.push_str(&format!("\n{title}\n"));
        for i in items {
            out.push_str(&format!("  - {i}\n"));
        }
    };
    if !f.manifest_ok() {
        out.push_str("ERROR: manifest.json validation failed\n");
        list(&mut out, "Missing required fields:", &f.missing_fields);
        list(&mut out, "Problems:", &f.problems);
        if !f.prerequisites.is_empty() {
            list(&mut out, "Prerequisites not met:", &f.prerequisites);
        }
        list(&mut out, "Warnings:", &f.warnings);
        out.push_str(&format!(
            "\nFix {} and run 'cpo validate {}' again (`cpo init DIR -t TS-ID -n NAME` writes a \
             skeleton).\n",
            pd.shown_join(super::MANIFEST),
            pd.shown.display()
        ));
        return out;
    }
    if !f.prerequisites.is_empty() {
        out.push_str("ERROR: prerequisites not met\n");
        list(&mut out, "Problems:", &f.prerequisites);
        list(&mut out, "Warnings:", &f.warnings);
        return out;
    }
    let tasks: usize = f.plan.waves.iter().map(|w| w.tasks.len()).sum();
    out.push_str(&format!(
        "manifest.json is valid: {}{}, {} wave{}, {} task{}\n",
        f.plan.tech_spec_id.as_deref().unwrap_or("?"),
        f.plan
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        f.plan.waves.len(),
        plural(f.plan.waves.len()),
        tasks,
        plural(tasks)
    ));
    for w in &f.plan.waves {
        let ids: Vec<&str> = w.tasks.iter().map(|t| t.id.as_str()).collect();
        out.push_str(&format!("  Wave {}: {}\n", w.number, ids.join(", ")));
        if let Some(v) = &w.validation {
            out.push_str(&format!("    validation: {v}\n"));
        }
    }
    list(&mut out, "Warnings:", &f.warnings);
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_paths_skip_rename_sources() {
        let z = " M src/a.rs\0R  new.rs\0old.rs\0?? notes.txt\0";
        assert_eq!(dirty_paths(z), vec!["src/a.rs", "new.rs", "notes.txt"]);
    }

    #[test]
    fn missing_fields_render_as_the_document_shows() {
        let pd = ParallelDir {
            shown: "p".into(),
            path: "/p".into(),
        };
        let f = Findings {
            missing_fields: vec!["tech_spec_id".into(), "waves".into()],
            ..Findings::default()
        };
        let text = render(&pd, &f);
        assert!(text.starts_with(
            "ERROR: manifest.json validation failed\n\nMissing required fields:\n  - \
             tech_spec_id\n  - waves\n"
        ));
        assert_eq!(f.exit_code(), exit::PARSE);
    }
}
