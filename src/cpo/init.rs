//! `cpo init DIR -t TS-ID -n NAME`: a new parallel directory with a
//! `manifest.json` skeleton (one sample wave, one sample task), its prompt,
//! a `README.md` on what goes where, and a `.gitignore` for what runs write.
//! An existing manifest is never overwritten.

use std::fs;
use std::path::Path;

use serde_json::json;

use super::validate::TEMPLATE_MARKER;
use crate::error::{Error, Result, exit};
use crate::protocol::store;

pub fn init(dir: &Path, tech_spec_id: &str, name: &str) -> Result<i32> {
    if tech_spec_id.trim().is_empty() {
        return Err(Error::usage(
            "initialise: -t TS-ID is empty; pass the Tech Spec id, e.g. -t TS-0042",
        ));
    }
    let manifest = dir.join(super::MANIFEST);
    if manifest.exists() {
        return Err(Error::usage(format!(
            "initialise {}: {} already exists and is kept; edit it, or choose a new directory",
            dir.display(),
            manifest.display()
        )));
    }
    let prompts = dir.join("prompts");
    fs::create_dir_all(&prompts).map_err(Error::io("create", &prompts))?;

    let prompt = prompts.join("task-001.txt");
    if !prompt.exists() {
        write(&prompt, &sample_prompt(tech_spec_id, name))?;
    }
    let readme = dir.join("README.md");
    if !readme.exists() {
        write(&readme, &readme_text(dir, tech_spec_id, name))?;
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        write(&ignore, "# written by `cpo run`\nlogs/\nreport.json\n")?;
    }
    let skeleton = json!({
        "tech_spec_id": tech_spec_id.trim(),
        "name": name.trim(),
        "waves": [
            {
                "number": 1,
                "tasks": [
                    {
                        "id": "task-001-example",
                        "agent": "general-purpose",
                        "prompt_file": "prompts/task-001.txt"
                    }
                ]
            }
        ]
    });
    store::write_json(&manifest, &skeleton)?;
    crate::out::print(&format!(
        "Created {}\n  {}\n  {}\n  {}\n\nNext: describe each task in prompts/, list the tasks in \
         waves in manifest.json, then `cpo validate {0}` and `cpo run {0}`.\n",
        dir.display(),
        manifest.display(),
        prompt.display(),
        readme.display()
    ))?;
    Ok(exit::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(Error::io("write", path))
}

fn sample_prompt(tech_spec_id: &str, name: &str) -> String {
    format!(
        "{TEMPLATE_MARKER}\n\
         # {tech_spec_id}: {name}, task 001\n\
         \n\
         Describe one task here: what to build or change, which files it touches,\n\
         and how to know it is done (tests to pass, commands to run).\n\
         \n\
         The agent works in its own git worktree and commits there; keep each\n\
         task's files apart from the other tasks of the same wave.\n"
    )
}

fn readme_text(dir: &Path, tech_spec_id: &str, name: &str) -> String {
    format!(
        "# {tech_spec_id}: {name}\n\
         \n\
         A parallel directory for `cpo` (po's Claude Parallel Orchestrator).\n\
         \n\
         - `manifest.json`: `tech_spec_id` and `waves`; each wave has a `number`, its\n  \
           `tasks` (`id`, `agent`, `prompt_file`) and an optional `validation` command\n  \
           that must pass before the next wave starts.\n\
         - `prompts/`: one prompt per task.\n\
         - `logs/` and `report.json`: written by `cpo run` (ignored by git here).\n\
         \n\
         ```sh\n\
         cpo validate {dir}\n\
         cpo run {dir} --max-workers 3\n\
         cpo status {dir}\n\
         ```\n",
        dir = dir.display()
    )
}
