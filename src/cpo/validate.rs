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

use super::ParallelDir;
use super::plan::Plan;
use crate::error::{Result, exit};
use crate::sources::manifest;

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

/// `cpo validate DIR`: print the findings, exit 0, 3 or 4. `agent_cmd` is
/// the `--agent-cmd` template the run will use, if not Claude Code.
pub fn command(dir: &Path, agent_cmd: Option<&str>) -> Result<i32> {
    let pd = ParallelDir::open(dir)?;
    let findings = check(&pd, agent_cmd);
    crate::out::print(&render(&pd, &findings))?;
    Ok(findings.exit_code())
}

/// Every check, nothing printed; `agent_cmd` as for [`command`].
pub fn check(pd: &ParallelDir, agent_cmd: Option<&str>) -> Findings {
    let mut f = Findings::default();
    if !pd.manifest().is_file() {
        f.problems.push(format!(
            "{} does not exist; create the directory with `cpo init DIR -t TS-ID -n NAME` or \
             write the manifest there",
            pd.shown_join(super::MANIFEST)
        ));
    } else {
        // What can be shown even of an invalid manifest.
        f.plan = Plan::load(&pd.path).unwrap_or_default();
        // The manifest's rules are po-parse's: the same check, the same words.
        let prompts: Vec<(String, PathBuf)> = match manifest::load(&pd.path) {
            Ok(m) => m
                .tasks()
                .map(|(_, t)| (t.id.clone(), t.prompt_file.clone()))
                .collect(),
            Err(e) => {
                f.missing_fields = e.missing_fields;
                f.problems = e.problems;
                // Prompts that exist inside DIR can still be checked for content;
                // the others are already reported.
                f.plan
                    .tasks()
                    .filter_map(|(_, t)| {
                        let real = std::fs::canonicalize(t.prompt.as_ref()?).ok()?;
                        real.starts_with(&pd.path).then(|| (t.id.clone(), real))
                    })
                    .collect()
            }
        };
        prompt_contents(pd, &prompts, &mut f);
    }
    git(pd, &mut f);
    agent(&mut f, agent_cmd);
    dedup(&mut f.problems);
    dedup(&mut f.warnings);
    f
}

/// Every prompt has something in it, and not just `cpo init`'s template.
fn prompt_contents(pd: &ParallelDir, prompts: &[(String, PathBuf)], f: &mut Findings) {
    for (id, prompt) in prompts {
        let shown = prompt
            .strip_prefix(&pd.path)
            .map(|r| pd.shown_join(&r.to_string_lossy()))
            .unwrap_or_else(|_| prompt.display().to_string());
        let Ok(bytes) = crate::fsx::read(prompt, crate::fsx::SOURCE_MAX) else {
            f.problems.push(format!(
                "task {id:?}: prompt file {shown} cannot be read; write the task's prompt there"
            ));
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.trim().is_empty() {
            f.problems.push(format!(
                "task {id:?}: prompt file {shown} is empty; write the task's prompt there"
            ));
        } else if text.contains(TEMPLATE_MARKER) {
            f.warnings.push(format!(
                "task {id:?}: {shown} is still the template `cpo init` wrote"
            ));
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
    let Ok(status) = crate::git::changed_files(&top) else {
        return;
    };
    let top_real = std::fs::canonicalize(&top).unwrap_or(top.clone());
    let inside = pd.path.strip_prefix(&top_real).ok().map(Path::to_path_buf);
    let dirty = status
        .into_iter()
        .map(|(_, path)| path)
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

/// The agent's program can be started: the `--agent-cmd` template's first
/// word (a path is taken from the current directory, as po-spawn does), or
/// Claude Code's `claude`.
fn agent(f: &mut Findings, agent_cmd: Option<&str>) {
    let env = std::env::var("PO_AGENT_CMD").ok();
    if let Some(template) = agent_cmd.or(env.as_deref()) {
        let program = crate::run::template::split(template)
            .ok()
            .and_then(|words| words.into_iter().next());
        let found = program.as_deref().is_some_and(|p| match p.contains('/') {
            true => executable(Path::new(p)),
            false => super::tools::on_path(p).is_some(),
        });
        if !found {
            f.warnings.push(format!(
                "the agent command's program {} is not an executable file here (--agent-cmd \
                 {}): check the path, relative to the directory cpo runs in",
                program.as_deref().unwrap_or("(none)"),
                crate::text::shell_quote(template)
            ));
        }
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

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn git_out(dir: &Path, args: &[&str]) -> Option<String> {
    crate::git::git(dir, args).ok().filter(|s| !s.is_empty())
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
