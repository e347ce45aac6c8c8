//! What `cpo` needs to show of a manifest: its id, name, and each wave's task
//! ids with their prompt files. Read leniently, so `status` and `validate` can
//! still show what is there when the manifest is incomplete; the manifest's
//! rules are `po::sources::manifest`'s, not this module's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::protocol::sanitize;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub tech_spec_id: Option<String>,
    pub name: Option<String>,
    pub waves: Vec<PlanWave>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanWave {
    pub number: u32,
    pub tasks: Vec<PlanTask>,
    pub validation: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanTask {
    pub id: String,
    /// `prompt_file` as written in the manifest, if any.
    pub prompt_file: Option<String>,
    /// Where the prompt is: the `prompt_file`, else the `prompts/task-NNN.txt`
    /// convention; `None` when neither names a file.
    pub prompt: Option<PathBuf>,
}

impl Plan {
    /// Read `manifest.json` of `dir`. Only unreadable or non-JSON files fail.
    pub fn load(dir: &Path) -> Result<Plan> {
        let path = dir.join(super::MANIFEST);
        let text = crate::fsx::read_to_string(&path, crate::fsx::SOURCE_MAX)
            .map_err(Error::io("read", &path))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::parse(
                path.display().to_string(),
                format!("not valid JSON ({e}); fix the file or recreate it with `cpo init`"),
            )
        })?;
        Ok(Plan::from_value(&value, dir))
    }

    pub fn from_value(value: &Value, dir: &Path) -> Plan {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut waves: Vec<PlanWave> = value
            .get("waves")
            .and_then(Value::as_array)
            .map(|ws| {
                ws.iter()
                    .enumerate()
                    .map(|(i, w)| PlanWave {
                        number: w
                            .get("number")
                            .and_then(Value::as_u64)
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(i as u32 + 1),
                        tasks: w
                            .get("tasks")
                            .and_then(Value::as_array)
                            .map(|ts| {
                                ts.iter()
                                    .enumerate()
                                    .map(|(j, t)| task(t, j, dir))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        validation: text(w.get("validation")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        waves.sort_by_key(|w| w.number);
        Plan {
            tech_spec_id: text(value.get("tech_spec_id")),
            name: text(value.get("name")),
            waves,
        }
    }

    pub fn tasks(&self) -> impl Iterator<Item = (&PlanWave, &PlanTask)> {
        self.waves
            .iter()
            .flat_map(|w| w.tasks.iter().map(move |t| (w, t)))
    }

    /// The orchestration id `po-parse` gives this manifest (its sanitised
    /// `tech_spec_id`), unless `--id` says otherwise.
    pub fn orchestration_id(&self, explicit: Option<&str>) -> Result<String> {
        match (explicit, &self.tech_spec_id) {
            (Some(id), _) => sanitize::id(id),
            (None, Some(ts)) => sanitize::id(ts),
            (None, None) => Err(Error::parse(
                super::MANIFEST,
                "tech_spec_id is missing; add it or pass --id",
            )),
        }
    }
}

fn task(t: &Value, index: usize, dir: &Path) -> PlanTask {
    let id = t
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("task-{:03}", index + 1));
    let prompt_file = t
        .get("prompt_file")
        .and_then(Value::as_str)
        .map(str::to_string);
    let prompt = match &prompt_file {
        Some(p) => Some(dir.join(p)),
        None => conventional_prompt(&id, dir),
    };
    PlanTask {
        id,
        prompt_file,
        prompt,
    }
}

/// `task-001-users` → `prompts/task-001.txt` (or `prompts/task-001-users.txt`,
/// `.md`), the first that exists.
pub fn conventional_prompt(id: &str, dir: &Path) -> Option<PathBuf> {
    let prompts = dir.join("prompts");
    let mut names = vec![format!("{id}.txt"), format!("{id}.md")];
    let digits: String = id
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if !digits.is_empty() {
        names.insert(0, format!("task-{digits}.txt"));
        names.push(format!("task-{digits}.md"));
    }
    names
        .into_iter()
        .filter(|n| !n.contains('/') && !n.contains(".."))
        .map(|n| prompts.join(n))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_waves_in_number_order_and_prompt_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("prompts")).unwrap();
        std::fs::write(dir.path().join("prompts/task-003.txt"), "x").unwrap();
        let v = json!({
            "tech_spec_id": "TS-0042",
            "waves": [
                {"number": 2, "tasks": [{"id": "task-003-orders"}]},
                {"number": 1, "tasks": [{"id": "task-001-users", "prompt_file": "prompts/a.txt"}],
                 "validation": "true"}
            ]
        });
        let plan = Plan::from_value(&v, dir.path());
        assert_eq!(plan.waves[0].number, 1);
        assert_eq!(plan.waves[0].validation.as_deref(), Some("true"));
        assert_eq!(
            plan.waves[0].tasks[0].prompt,
            Some(dir.path().join("prompts/a.txt"))
        );
        assert_eq!(
            plan.waves[1].tasks[0].prompt,
            Some(dir.path().join("prompts/task-003.txt"))
        );
        assert_eq!(plan.orchestration_id(None).unwrap(), "TS-0042");
        assert_eq!(plan.orchestration_id(Some("../x")).unwrap(), "x");
    }

    #[test]
    fn missing_parts_read_as_empty() {
        let plan = Plan::from_value(&json!({"waves": "no"}), Path::new("/nonexistent"));
        assert_eq!(plan, Plan::default());
        assert!(plan.orchestration_id(None).is_err());
    }
}
