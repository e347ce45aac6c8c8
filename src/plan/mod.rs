//! Planning: from extracted tasks to a plan of agents, waves, file overlaps
//! and complexity estimates, and the report of what was found.

pub mod complexity;
pub mod deps;
pub mod overlap;
pub mod report;
pub mod waves;

use std::path::PathBuf;

use serde_json::{Value, json};

pub use complexity::Complexity;
pub use deps::Dependency;
pub use overlap::Overlap;

use crate::error::{Error, Result};
use crate::sources::manifest::Manifest;
use crate::sources::refs::Reference;
use crate::sources::{Extracted, Skipped, Task};

/// One task as it will run: agent `agent-<n>`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTask {
    /// From 1, in task order.
    pub n: usize,
    pub title: String,
    /// The item's own text (nested content), as Markdown.
    pub body: String,
    pub sub_issue: Option<u64>,
    /// The issue or pull request the item names, in whichever repository.
    pub reference: Option<Reference>,
    /// The heading the item is under, and the item it is nested in.
    pub section: Option<String>,
    pub parent: Option<String>,
    /// Links of the item's own text: `(text, url)`.
    pub links: Vec<(String, String)>,
    /// Files the text mentions.
    pub files: Vec<String>,
    /// Numbers (`n`) of the tasks this one waits for.
    pub depends_on: Vec<usize>,
    pub wave: u32,
    pub complexity: Complexity,
    /// Manifest tasks: their id, agent type and prompt file.
    pub task_id: Option<String>,
    pub agent: Option<String>,
    pub prompt_file: Option<PathBuf>,
}

impl PlannedTask {
    pub fn agent_id(&self) -> String {
        agent_id(self.n)
    }

    /// The body the task is stored and run with: what it refers to, where
    /// it is in the text and its links, then its own text.
    pub fn full_body(&self) -> String {
        let mut context = Vec::new();
        if let Some(r) = &self.reference
            && self.sub_issue.is_none()
        {
            let link = r.url().map(|u| format!(" ({u})")).unwrap_or_default();
            context.push(format!("**Refs**: {r}{link}"));
        }
        // A heading that only says "Tasks" tells the agent nothing.
        if let Some(s) = self
            .section
            .as_ref()
            .filter(|s| !crate::sources::markdown::is_work_heading(s))
        {
            context.push(format!("**Section**: {s}"));
        }
        if let Some(p) = &self.parent {
            context.push(format!("**Part of**: {p}"));
        }
        if !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(text, url)| format!("[{text}]({url})"))
                .collect();
            context.push(format!("**Links**: {}", links.join(", ")));
        }
        match (context.is_empty(), self.body.trim().is_empty()) {
            (true, _) => self.body.clone(),
            (false, true) => context.join("\n"),
            (false, false) => format!("{}\n\n{}", context.join("\n"), self.body),
        }
    }
}

pub fn agent_id(n: usize) -> String {
    format!("agent-{n}")
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanWave {
    pub number: u32,
    /// Task numbers (`n`).
    pub tasks: Vec<usize>,
    pub validation: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `checklist`, `numbered`, `sections` or `manifest`.
    pub format: String,
    pub tasks: Vec<PlannedTask>,
    pub waves: Vec<PlanWave>,
    pub skipped: Vec<Skipped>,
    pub overlaps: Vec<Overlap>,
    pub dependencies: Vec<Dependency>,
    pub warnings: Vec<String>,
    /// What the reader should know that is not a risk (where the tasks come
    /// from, references kept as links).
    pub notes: Vec<String>,
}

impl Plan {
    /// Plan tasks found in text: dependencies become waves; a cycle fails
    /// validation (exit 4) naming its tasks.
    pub fn from_extracted(ex: Extracted) -> Result<Plan> {
        let Extracted {
            format,
            tasks,
            skipped,
            notes,
            ..
        } = ex;
        let dependencies = deps::find(&tasks);
        let mut on: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for d in &dependencies {
            on[d.task].push(d.on);
        }
        let wave_of = waves::assign(&on).map_err(|cycle| cycle_error(&tasks, &cycle))?;
        let planned = tasks
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let files = overlap::mentions(&format!("{}\n{}", t.title, t.body));
                let complexity = complexity::estimate(&t.title, &t.body, files.len());
                PlannedTask {
                    n: i + 1,
                    title: t.title,
                    body: t.body,
                    sub_issue: t.sub_issue,
                    reference: t.reference,
                    section: t.section,
                    parent: t.parent,
                    links: t.links,
                    files,
                    depends_on: on[i].iter().map(|d| d + 1).collect(),
                    wave: wave_of[i],
                    complexity,
                    task_id: None,
                    agent: None,
                    prompt_file: None,
                }
            })
            .collect();
        let mut plan = Plan::finish(format, planned, skipped, dependencies, None);
        plan.notes = notes;
        Ok(plan)
    }

    /// Plan a manifest's tasks; `bodies[i]` is the prompt text of the i-th
    /// task in wave order. Waves are the manifest's own.
    pub fn from_manifest(m: &Manifest, bodies: Vec<String>) -> Plan {
        let mut planned = Vec::new();
        let mut plan_waves = Vec::new();
        let mut bodies = bodies.into_iter();
        for w in &m.waves {
            let mut numbers = Vec::new();
            for t in &w.tasks {
                let n = planned.len() + 1;
                let body = bodies.next().unwrap_or_default();
                let files = overlap::mentions(&body);
                let complexity = complexity::estimate(&t.id, &body, files.len());
                planned.push(PlannedTask {
                    n,
                    title: t.id.clone(),
                    body,
                    sub_issue: None,
                    reference: None,
                    section: None,
                    parent: None,
                    links: Vec::new(),
                    files,
                    depends_on: Vec::new(),
                    wave: w.number,
                    complexity,
                    task_id: Some(t.id.clone()),
                    agent: t.agent.clone(),
                    prompt_file: Some(t.prompt_file.clone()),
                });
                numbers.push(n);
            }
            plan_waves.push(PlanWave {
                number: w.number,
                tasks: numbers,
                validation: w.validation.clone(),
            });
        }
        Plan::finish(
            "manifest".into(),
            planned,
            Vec::new(),
            Vec::new(),
            Some(plan_waves),
        )
    }

    fn finish(
        format: String,
        tasks: Vec<PlannedTask>,
        skipped: Vec<Skipped>,
        dependencies: Vec<Dependency>,
        given_waves: Option<Vec<PlanWave>>,
    ) -> Plan {
        let waves = given_waves.unwrap_or_else(|| {
            let max = tasks.iter().map(|t| t.wave).max().unwrap_or(0);
            (1..=max)
                .map(|number| PlanWave {
                    number,
                    tasks: tasks
                        .iter()
                        .filter(|t| t.wave == number)
                        .map(|t| t.n)
                        .collect(),
                    validation: None,
                })
                .collect()
        });
        let files: Vec<Vec<String>> = tasks.iter().map(|t| t.files.clone()).collect();
        let overlaps = overlap::overlaps(&files);
        let mut warnings: Vec<String> = overlaps
            .iter()
            .map(|o| {
                let ns: Vec<usize> = o.tasks.iter().map(|i| i + 1).collect();
                format!("{} may share {}", report::tasks_phrase(&ns), o.path)
            })
            .collect();
        let mut subs = std::collections::HashMap::new();
        for t in &tasks {
            let named = match (t.sub_issue, &t.reference) {
                (Some(s), _) => Some(format!("#{s}")),
                (None, Some(r)) => Some(r.to_string()),
                (None, None) => None,
            };
            if let Some(s) = named
                && let Some(first) = subs.insert(s.clone(), t.n)
            {
                warnings.push(format!(
                    "tasks {first} and {} both refer to issue {s}; they may do the same work",
                    t.n
                ));
            }
        }
        Plan {
            format,
            tasks,
            waves,
            skipped,
            overlaps,
            dependencies,
            warnings,
            notes: Vec::new(),
        }
    }

    /// What the parser found, as stored in `orchestration.json`'s `report`.
    pub fn report_json(&self) -> Value {
        json!({
            "format": self.format,
            "tasks": self.tasks.len(),
            "skipped": self.skipped,
            "overlaps": self.overlaps.iter().map(|o| json!({
                "path": o.path,
                "agents": o.tasks.iter().map(|i| agent_id(i + 1)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "dependencies": self.dependencies.iter().map(|d| json!({
                "agent": agent_id(d.task + 1),
                "depends_on": agent_id(d.on + 1),
                "phrase": d.phrase,
            })).collect::<Vec<_>>(),
            "warnings": self.warnings,
            "notes": self.notes,
        })
    }
}

fn cycle_error(tasks: &[Task], cycle: &[usize]) -> Error {
    let name = |i: usize| format!("task {} ({:?})", i + 1, tasks[i].title);
    let mut chain: Vec<String> = cycle.iter().map(|&i| name(i)).collect();
    chain.push(name(cycle[0]));
    Error::validation(
        "dependencies",
        format!(
            "the tasks depend on each other in a cycle: {} (each waits for the next); \
             remove or reword one of these dependency phrases",
            chain.join(" → ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::markdown;

    #[test]
    fn dependencies_become_waves_and_overlaps_warnings() {
        let ex = markdown::extract(
            "- [ ] Add user model in `models/user.py`\n- [ ] Add API\n  Depends on task 1; edits user.py\n- [ ] Docs\n",
        );
        let plan = Plan::from_extracted(ex).unwrap();
        assert_eq!(
            plan.tasks.iter().map(|t| t.wave).collect::<Vec<_>>(),
            [1, 2, 1]
        );
        assert_eq!(plan.tasks[1].depends_on, [1]);
        assert_eq!(plan.waves[0].tasks, [1, 3]);
        assert_eq!(plan.warnings, ["Tasks 1-2 may share user.py"]);
    }

    #[test]
    fn a_cycle_fails_validation_naming_the_tasks() {
        let ex = markdown::extract("1. A\n2. B after task 3\n3. C requires task 2\n");
        let e = Plan::from_extracted(ex).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::VALIDATION);
        let msg = e.to_string();
        assert!(msg.contains("task 2 (\"B after task 3\")"), "{msg}");
        assert!(msg.contains("task 3 (\"C requires task 2\")"), "{msg}");
    }
}
