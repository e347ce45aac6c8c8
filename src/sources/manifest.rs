//! A cpo parallel directory's `manifest.json`: waves of tasks, each with an
//! agent type and a prompt file.
//!
//! Both shapes of the `/parallel-run` document are accepted: tasks that name
//! their `prompt_file`, and tasks that do not, whose prompt is found by the
//! `prompts/task-NNN.txt` convention (`NNN` is the number in the task id, so
//! `task-004-orders` → `prompts/task-004.txt`).
//!
//! Manifest text is untrusted: every prompt path is resolved (symlinks too) and
//! must stay inside the parallel directory. [`load`] reports every problem it
//! finds at once, so `cpo validate` can show them all.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The manifest's file name inside a parallel directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A valid manifest, prompt files resolved to absolute paths.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The manifest file, absolute.
    pub path: PathBuf,
    /// The parallel directory holding it, absolute and canonical.
    pub dir: PathBuf,
    pub tech_spec_id: String,
    /// In `number` order.
    pub waves: Vec<ManifestWave>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ManifestWave {
    pub number: u32,
    pub tasks: Vec<ManifestTask>,
    /// The command that validates the wave once its tasks are merged.
    pub validation: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ManifestTask {
    /// `task-001-users`.
    pub id: String,
    /// The agent type (`python-experts:django-expert`), for the agent adapter.
    pub agent: Option<String>,
    /// Absolute, canonical, inside the parallel directory.
    pub prompt_file: PathBuf,
}

impl Manifest {
    /// Every task in wave order, with its wave number.
    pub fn tasks(&self) -> impl Iterator<Item = (u32, &ManifestTask)> {
        self.waves
            .iter()
            .flat_map(|w| w.tasks.iter().map(move |t| (w.number, t)))
    }
}

/// Everything wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ManifestError {
    /// The manifest (or the directory that should hold it).
    pub path: PathBuf,
    /// Required top-level fields that are absent: `tech_spec_id`, `waves`.
    pub missing_fields: Vec<String>,
    /// Other problems, each naming the task or wave, the field and the fix.
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "validate manifest {}: ", self.path.display())?;
        let mut parts = Vec::new();
        if !self.missing_fields.is_empty() {
            parts.push(format!(
                "Missing required fields: {}",
                self.missing_fields.join(", ")
            ));
        }
        parts.extend(self.problems.iter().cloned());
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ManifestError {}

impl From<ManifestError> for crate::Error {
    fn from(e: ManifestError) -> Self {
        let mut detail = Vec::new();
        if !e.missing_fields.is_empty() {
            detail.push(format!(
                "Missing required fields: {}",
                e.missing_fields.join(", ")
            ));
        }
        detail.extend(e.problems);
        crate::Error::parse(format!("manifest {}", e.path.display()), detail.join("; "))
    }
}

/// Whether `path` is (or is a directory holding) a manifest.
pub fn is_manifest(path: &Path) -> bool {
    if path.is_dir() {
        return path.join(MANIFEST_FILE).exists();
    }
    path.file_name().is_some_and(|n| n == MANIFEST_FILE)
}

/// Load and check `DIR/manifest.json` or a `manifest.json` path.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let file = if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    };
    let fail = |problem: String| ManifestError {
        path: file.clone(),
        missing_fields: Vec::new(),
        problems: vec![problem],
    };
    let file = std::fs::canonicalize(&file).map_err(|e| {
        fail(format!(
            "cannot open it: {e}; run `cpo init DIR -t TS-ID -n NAME` to create one"
        ))
    })?;
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let bytes = crate::fsx::read(&file, crate::fsx::SOURCE_MAX)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse(bytes, file, dir)
}

/// Parse and check the bytes of the manifest `file` in the parallel
/// directory `dir` (prompt files are looked up there).
pub fn parse(bytes: Vec<u8>, file: PathBuf, dir: PathBuf) -> Result<Manifest, ManifestError> {
    let fail = |problem: String| ManifestError {
        path: file.clone(),
        missing_fields: Vec::new(),
        problems: vec![problem],
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "it is not UTF-8 text (invalid byte at offset {}); save it as UTF-8 JSON",
            e.utf8_error().valid_up_to()
        ))
    })?;
    // serde_json's message ends with the position ("… at line 1 column 141").
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| fail(format!("invalid JSON: {e}; fix the syntax")))?;
    check(&value, file, dir)
}

fn check(value: &Value, file: PathBuf, dir: PathBuf) -> Result<Manifest, ManifestError> {
    let mut err = ManifestError {
        path: file.clone(),
        ..Default::default()
    };
    let Some(obj) = value.as_object() else {
        err.problems
            .push("the top level must be a JSON object with `tech_spec_id` and `waves`".into());
        return Err(err);
    };

    let tech_spec_id = match obj.get("tech_spec_id") {
        None | Some(Value::Null) => {
            err.missing_fields.push("tech_spec_id".into());
            String::new()
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            err.problems
                .push("field `tech_spec_id` must be a non-empty string such as \"TS-0042\"".into());
            String::new()
        }
    };

    let mut waves = Vec::new();
    match obj.get("waves") {
        None | Some(Value::Null) => err.missing_fields.push("waves".into()),
        Some(Value::Array(list)) => {
            if list.is_empty() {
                err.problems
                    .push("field `waves` is empty; add at least one wave with tasks".into());
            }
            let mut numbers = HashSet::new();
            let mut ids = HashSet::new();
            for (i, w) in list.iter().enumerate() {
                if let Some(wave) = check_wave(i, w, &dir, &mut numbers, &mut ids, &mut err) {
                    waves.push(wave);
                }
            }
        }
        Some(_) => err
            .problems
            .push("field `waves` must be an array of {number, tasks, validation}".into()),
    }

    if !err.missing_fields.is_empty() || !err.problems.is_empty() {
        return Err(err);
    }
    waves.sort_by_key(|w: &ManifestWave| w.number);
    Ok(Manifest {
        path: file,
        dir,
        tech_spec_id,
        waves,
    })
}

fn check_wave(
    i: usize,
    w: &Value,
    dir: &Path,
    numbers: &mut HashSet<u32>,
    ids: &mut HashSet<String>,
    err: &mut ManifestError,
) -> Option<ManifestWave> {
    let at = format!("waves[{i}]");
    let Some(obj) = w.as_object() else {
        err.problems
            .push(format!("{at} must be an object with `number` and `tasks`"));
        return None;
    };
    let number = match obj.get("number") {
        None => {
            err.problems.push(format!(
                "{at}: field `number` is missing; add the wave's order (1, 2, 3…)"
            ));
            None
        }
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => {
                if !numbers.insert(n) {
                    err.problems.push(format!(
                        "{at}: field `number` {n} is used by another wave; give each wave its own number"
                    ));
                }
                Some(n)
            }
            _ => {
                err.problems.push(format!(
                    "{at}: field `number` must be a positive integer, not {v}"
                ));
                None
            }
        },
    };
    let at = match number {
        Some(n) => format!("wave {n}"),
        None => at,
    };
    let validation = match obj.get("validation") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            err.problems.push(format!(
                "{at}: field `validation` must be a command string, not {v}"
            ));
            None
        }
    };
    let mut tasks = Vec::new();
    match obj.get("tasks") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                err.problems.push(format!(
                    "{at}: field `tasks` is empty; add tasks or remove the wave"
                ));
            }
            for (j, t) in list.iter().enumerate() {
                if let Some(task) = check_task(&at, j, t, dir, ids, err) {
                    tasks.push(task);
                }
            }
        }
        None | Some(Value::Null) => err.problems.push(format!(
            "{at}: field `tasks` is missing; add a list of {{id, agent, prompt_file}}"
        )),
        Some(_) => err.problems.push(format!(
            "{at}: field `tasks` must be an array of {{id, agent, prompt_file}}"
        )),
    }
    Some(ManifestWave {
        number: number?,
        tasks,
        validation,
    })
}

fn check_task(
    wave: &str,
    j: usize,
    t: &Value,
    dir: &Path,
    ids: &mut HashSet<String>,
    err: &mut ManifestError,
) -> Option<ManifestTask> {
    let Some(obj) = t.as_object() else {
        err.problems.push(format!(
            "{wave}: tasks[{j}] must be an object with `id`, `agent` and `prompt_file`"
        ));
        return None;
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => {
            err.problems.push(format!(
                "{wave}: tasks[{j}]: field `id` is missing; add a unique id such as \"task-001-users\""
            ));
            return None;
        }
        Some(v) => {
            err.problems.push(format!(
                "{wave}: tasks[{j}]: field `id` must be a non-empty string, not {v}"
            ));
            return None;
        }
    };
    let at = format!("task {id:?}");
    if !ids.insert(id.clone()) {
        err.problems.push(format!(
            "{at}: field `id` is a duplicate task id; give each task its own id"
        ));
    }
    let agent = match obj.get("agent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            err.problems.push(format!(
                "{at}: field `agent` must be a string such as \"python-experts:django-expert\", not {v}"
            ));
            None
        }
    };
    let prompt_file = match obj.get("prompt_file") {
        None | Some(Value::Null) => conventional_prompt(&at, &id, dir, err),
        Some(Value::String(s)) => resolve_inside(&at, s, dir, err),
        Some(v) => {
            err.problems.push(format!(
                "{at}: field `prompt_file` must be a path string such as \"prompts/task-001.txt\", not {v}"
            ));
            None
        }
    }?;
    Some(ManifestTask {
        id,
        agent,
        prompt_file,
    })
}

/// `prompt_file` joined to the directory, canonicalised, and required to stay inside it.
fn resolve_inside(at: &str, given: &str, dir: &Path, err: &mut ManifestError) -> Option<PathBuf> {
    let candidate = Path::new(given);
    if given.is_empty() || given.contains('\0') {
        err.problems.push(format!(
            "{at}: field `prompt_file` {given:?} is not a usable path; use a path inside {}",
            dir.display()
        ));
        return None;
    }
    if candidate.is_absolute() {
        err.problems.push(format!(
            "{at}: field `prompt_file` {given:?} is absolute; use a path relative to {} such as \"prompts/task-001.txt\"",
            dir.display()
        ));
        return None;
    }
    let joined = dir.join(candidate);
    if !lexically_inside(candidate) {
        err.problems.push(format!(
            "{at}: field `prompt_file` {given:?} points outside the parallel directory {}; keep prompts inside it",
            dir.display()
        ));
        return None;
    }
    let real = match std::fs::canonicalize(&joined) {
        Ok(p) => p,
        Err(e) => {
            err.problems.push(format!(
                "{at}: field `prompt_file` {given:?} cannot be opened ({e}); create {} or fix the path",
                joined.display()
            ));
            return None;
        }
    };
    if !real.starts_with(dir) {
        err.problems.push(format!(
            "{at}: field `prompt_file` {given:?} resolves to {}, outside the parallel directory {}; keep prompts inside it",
            real.display(),
            dir.display()
        ));
        return None;
    }
    if !real.is_file() {
        err.problems.push(format!(
            "{at}: field `prompt_file` {given:?} is not a regular file; point it at the task's prompt text"
        ));
        return None;
    }
    Some(real)
}

/// Whether a relative path stays inside its base by its `..` components alone.
fn lexically_inside(p: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// `task-004-orders` → `prompts/task-004.txt` (digits as written, then zero-padded to 3).
fn conventional_prompt(at: &str, id: &str, dir: &Path, err: &mut ManifestError) -> Option<PathBuf> {
    let digits: String = id
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if digits.is_empty() {
        err.problems.push(format!(
            "{at}: field `prompt_file` is missing and the id has no number for the prompts/task-NNN.txt convention; add \"prompt_file\""
        ));
        return None;
    }
    let mut names = vec![format!("prompts/task-{digits}.txt")];
    if let Ok(n) = digits.parse::<u64>() {
        let padded = format!("prompts/task-{n:03}.txt");
        if !names.contains(&padded) {
            names.push(padded);
        }
    }
    for name in &names {
        if dir.join(name).exists() {
            return resolve_inside(at, name, dir, err);
        }
    }
    err.problems.push(format!(
        "{at}: field `prompt_file` is missing and {} does not exist; add \"prompt_file\" or create that file",
        dir.join(&names[0]).display()
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dir_with(manifest: &str, prompts: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("prompts")).unwrap();
        for p in prompts {
            fs::write(d.path().join(p), "do it\n").unwrap();
        }
        fs::write(d.path().join(MANIFEST_FILE), manifest).unwrap();
        d
    }

    #[test]
    fn both_shapes_load_in_wave_order() {
        let d = dir_with(
            r#"{"tech_spec_id":"TS-1","waves":[
                {"number":2,"tasks":[{"id":"task-004-orders","agent":"a"}],"validation":"pytest"},
                {"number":1,"tasks":[{"id":"task-001-users","prompt_file":"prompts/task-001.txt"}]}]}"#,
            &["prompts/task-001.txt", "prompts/task-004.txt"],
        );
        let m = load(d.path()).unwrap();
        assert_eq!(m.tech_spec_id, "TS-1");
        assert_eq!(m.waves.iter().map(|w| w.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(m.waves[1].validation.as_deref(), Some("pytest"));
        assert!(
            m.waves[1].tasks[0]
                .prompt_file
                .ends_with("prompts/task-004.txt")
        );
        assert!(m.waves[1].tasks[0].prompt_file.is_absolute());
        assert_eq!(m.waves[1].tasks[0].agent.as_deref(), Some("a"));
    }

    #[test]
    fn every_problem_is_listed() {
        let d = dir_with(r#"{"other":1, "waves": null}"#, &[]);
        let e = load(d.path()).unwrap_err();
        assert_eq!(e.missing_fields, ["tech_spec_id", "waves"]);
        assert!(
            e.to_string()
                .contains("Missing required fields: tech_spec_id, waves")
        );

        let d = dir_with(
            r#"{"tech_spec_id":"T","waves":[{"number":1,"tasks":[
                {"id":"t-1","prompt_file":"../outside.txt"},
                {"id":"t-1","prompt_file":"/etc/passwd"},
                {"id":"t-9"}]}]}"#,
            &[],
        );
        let e = load(d.path()).unwrap_err();
        assert!(e.missing_fields.is_empty());
        assert_eq!(e.problems.len(), 4, "{:?}", e.problems);
        assert!(e.problems.iter().any(|p| p.contains("duplicate")));
        assert!(e.problems.iter().any(|p| p.contains("absolute")));
        assert!(e.problems.iter().any(|p| p.contains("task-9.txt")));
        let err: crate::Error = e.into();
        assert_eq!(err.exit_code(), crate::exit::PARSE);
    }

    #[test]
    fn symlinks_out_of_the_directory_are_refused() {
        let outside = tempfile::NamedTempFile::new().unwrap();
        let d = dir_with(
            r#"{"tech_spec_id":"T","waves":[{"number":1,"tasks":[{"id":"task-001","prompt_file":"prompts/link.txt"}]}]}"#,
            &[],
        );
        std::os::unix::fs::symlink(outside.path(), d.path().join("prompts/link.txt")).unwrap();
        let e = load(d.path()).unwrap_err();
        assert!(
            e.problems[0].contains("outside the parallel directory"),
            "{e}"
        );
        assert!(e.problems[0].contains("prompt_file"), "{e}");
    }
}
