//! The agent seam: what differs between coding agents, behind one trait.
//!
//! An [`Agent`] says how to run its CLI for one task (the argv, how the prompt
//! reaches it, a model, turn and budget limits where the CLI has them, a
//! session to resume), how to read its output ([`StreamRead`], which turns
//! lines into [`StreamUpdate`]s), what its exit codes mean, how its sessions
//! are named and resumed ([`Sessions`]), and which program must exist. The
//! supervisor, the scheduler's budget and dry run, and every reader of status
//! files see only this trait and the updates: none of them knows which agent
//! ran.
//!
//! What a task's supervisor is told is an [`AgentSpec`] (serialisable: it
//! travels in the supervisor's spec); [`AgentSpec::agent`] finds the
//! implementation by its name in [`REGISTERED`]. Adding an agent is its own
//! module and one line there. `--agent-cmd` templates are the generic
//! [`command`] agent.
//!
//! Rules that hold for every agent, applied by the supervisor, not by the
//! adapters: a run whose agent has a stream reader and that ends without the
//! stream's final event ([`StreamUpdate::Finished`]) is a failure; an API
//! error the reader calls retryable makes the failure retryable.

pub mod claude;
pub mod codex;
pub mod command;
pub mod gemini;
mod stream;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::AgentStatus;
use crate::run::template;
pub use stream::{ModelUsage, StreamOutcome, StreamUpdate, apply, read_stream, restart_session};

/// How the prompt reaches the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptVia {
    /// The prompt file is the agent's standard input.
    Stdin,
    /// The argv names the prompt file (standard input has it too).
    File,
    /// The prompt's text is the argument at this index of the argv
    /// (standard input is empty).
    Argument(usize),
}

/// How an agent names its sessions and resumes them (`po-spawn --retry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sessions {
    /// No sessions: every run starts afresh.
    None,
    /// po picks the session's id before the run and records it at the start
    /// (Claude Code's `--session-id`); a retry resumes that id.
    Chosen,
    /// The agent names its session in its stream ([`StreamUpdate::SessionId`],
    /// recorded as it comes); a retry resumes the recorded id.
    Reported,
}

/// The session one run starts or continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session<'a> {
    /// No session to name or resume: the agent starts one of its own.
    Fresh,
    /// A new session under this id ([`Sessions::Chosen`]).
    New(&'a str),
    /// Continue this session.
    Resume(&'a str),
}

impl Sessions {
    /// The session of a task's first run: the recorded one resumed (a
    /// retry), else a new one (`new` names it, for [`Sessions::Chosen`]).
    pub fn plan(
        self,
        recorded: Option<&str>,
        new: impl FnOnce() -> std::io::Result<String>,
    ) -> std::io::Result<Planned> {
        Ok(match (self, recorded) {
            (Sessions::None, _) => Planned::Fresh,
            (Sessions::Chosen | Sessions::Reported, Some(id)) => Planned::Resume(id.to_string()),
            (Sessions::Chosen, None) => Planned::New(new()?),
            (Sessions::Reported, None) => Planned::Fresh,
        })
    }
}

/// A [`Session`] with its id owned, as a supervisor plans a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    Fresh,
    New(String),
    Resume(String),
}

impl Planned {
    pub fn session(&self) -> Session<'_> {
        match self {
            Planned::Fresh => Session::Fresh,
            Planned::New(id) => Session::New(id),
            Planned::Resume(id) => Session::Resume(id),
        }
    }

    /// The id to record when the agent starts (when po knows it).
    pub fn recorded(&self) -> Option<&str> {
        match self {
            Planned::New(id) | Planned::Resume(id) => Some(id),
            Planned::Fresh => None,
        }
    }
}

/// The argv a run would have, for a person to read: the prompt's text, when
/// it is an argument, shown as `<prompt text>`.
pub fn shown_argv(inv: Invocation) -> Vec<String> {
    let mut argv = inv.argv;
    if let PromptVia::Argument(at) = inv.prompt
        && at <= argv.len()
    {
        argv.insert(at, "<prompt text>".into());
    }
    argv
}

/// What one run of an agent is given.
pub struct Launch<'a> {
    pub task: &'a AgentStatus,
    /// The prompt file, the working directory, the task's names.
    pub values: &'a template::Values<'a>,
    pub session: Session<'a>,
}

/// The command line of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Program first.
    pub argv: Vec<String>,
    pub prompt: PromptVia,
}

/// What an exit code means beyond "failed".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitMeaning {
    /// Said after "agent exited with status N: ".
    pub text: String,
    /// Whether the same run may pass when tried again unchanged.
    pub retryable: bool,
}

/// What an agent can be told and what it tells: for the notes a run prints
/// when a limit or the budget cannot reach the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Abilities {
    /// It takes a cap on its model turns (`--max-turns`).
    pub max_turns: bool,
    /// It takes a spending cap of its own (`--max-budget-usd`).
    pub max_budget: bool,
    /// Its stream reports what it spends (cost or tokens).
    pub reports_spend: bool,
}

/// One coding agent's CLI.
pub trait Agent: Send + Sync + std::fmt::Debug {
    /// Its name, as `--agent` takes it (`command` for `--agent-cmd`).
    fn name(&self) -> &str;

    /// The program that must exist for a run to start (argv[0]).
    fn program(&self) -> &str;

    /// What to say when [`Agent::program`] cannot be started: how to get it.
    fn install_hint(&self) -> String;

    /// The argv of one run and how the prompt reaches it.
    fn invocation(&self, launch: &Launch) -> Invocation;

    /// Environment entries the run needs beyond po's own (`PO_*`, `PATH`):
    /// a setting that tells the CLI the worktree is trusted, say.
    fn environment(&self, _launch: &Launch) -> Vec<(String, String)> {
        Vec::new()
    }

    /// A reader for one run's standard output, if the agent has a stream po
    /// reads; without one, its output goes to the log as it is.
    fn reader(&self) -> Option<Box<dyn StreamRead>>;

    /// How sessions are named and resumed.
    fn sessions(&self) -> Sessions {
        Sessions::None
    }

    /// A new session id, for [`Sessions::Chosen`].
    fn new_session_id(&self) -> std::io::Result<String> {
        new_uuid()
    }

    /// Whether a run that resumed a session failed because the agent does not
    /// have that session (then po starts a fresh one, in the same attempt).
    fn unknown_session(&self, _outcome: &StreamOutcome) -> bool {
        false
    }

    /// What a non-zero exit code means, where the CLI documents it.
    fn exit_meaning(&self, _code: i32) -> Option<ExitMeaning> {
        None
    }

    fn abilities(&self) -> Abilities {
        Abilities::default()
    }

    /// What one running agent typically holds in memory, for the pre-flight.
    fn typical_memory(&self) -> Option<u64> {
        None
    }

    /// The agent's own state under `home` that it must be able to write
    /// (its settings, sessions and logs): the paths a sandbox leaves writable
    /// beside the task's worktree. Paths that do not exist yet are listed
    /// too; the sandbox decides what to make.
    fn state_paths(&self, _home: &Path) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Reads one run's output, a line at a time, as it comes.
pub trait StreamRead: Send {
    /// Updates from one line (lines that are not events give none).
    fn feed_line(&mut self, line: &str) -> Vec<StreamUpdate>;

    /// The output ended: what is left to say. A stream that never gave its
    /// final event is judged a failure by the supervisor whatever this says.
    fn end(&mut self) -> Vec<StreamUpdate> {
        Vec::new()
    }
}

/// Which agent to run, as a task's supervisor is told.
///
/// One shape for every agent: `kind` names it, the rest is what the command
/// line gave (each agent uses what its CLI takes). Reads the earlier shapes
/// (`{"kind":"claude","program":…}`, `{"kind":"command","words":[…]}`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AgentSpec {
    pub kind: String,
    /// The program (default: the agent's own name for it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program: String,
    /// An `--agent-cmd` template, already split into words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A spending cap per agent, where the CLI has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    /// Model turns per agent, where the CLI has a cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// A price file (`--prices`) for agents that report only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<PathBuf>,
}

impl AgentSpec {
    /// A registered agent by name, with nothing else set.
    pub fn named(kind: &str) -> AgentSpec {
        AgentSpec {
            kind: kind.to_string(),
            program: String::new(),
            words: Vec::new(),
            model: None,
            max_budget_usd: None,
            max_turns: None,
            prices: None,
        }
    }

    /// The generic agent of an `--agent-cmd` template.
    pub fn command(words: Vec<String>) -> AgentSpec {
        AgentSpec {
            words,
            ..AgentSpec::named(command::NAME)
        }
    }

    /// The implementation this spec names.
    pub fn agent(&self) -> Result<Box<dyn Agent>> {
        if self.kind == command::NAME {
            return Ok(Box::new(command::Command::new(self)));
        }
        match REGISTERED.iter().find(|r| r.name == self.kind) {
            Some(r) => Ok((r.make)(self)),
            None => Err(Error::usage(format!(
                "run agent {:?}: po knows {}; use --agent with one of them, or --agent-cmd",
                self.kind,
                names().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// One agent `--agent` can name.
pub struct Registration {
    pub name: &'static str,
    /// One line for `--agent`'s help.
    pub about: &'static str,
    /// The environment variable that names its program (`PO_CLAUDE`).
    pub program_env: &'static str,
    /// The program run when that variable is not set (`claude`).
    pub program: &'static str,
    pub make: fn(&AgentSpec) -> Box<dyn Agent>,
}

/// The program the environment names for agent `name` (its registration's
/// `program_env`), a relative path made absolute from `cwd`; empty for the
/// agent's own default.
pub fn program_from_env(name: &str, cwd: &Path) -> String {
    REGISTERED
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| std::env::var(r.program_env).ok())
        .filter(|p| !p.trim().is_empty())
        .map(|p| absolute_program(&p, cwd))
        .unwrap_or_default()
}

/// The agents `--agent` (`PO_AGENT`) can name; the first is the default.
pub const REGISTERED: &[Registration] = &[
    claude::REGISTRATION,
    codex::REGISTRATION,
    gemini::REGISTRATION,
];

/// The names `--agent` takes.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTERED.iter().map(|r| r.name)
}

/// A fresh random (version 4) UUID.
pub fn new_uuid() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// A program path as the agent will be started with it: a relative path with
/// a `/` (`./myagent.sh`) is taken from `cwd`, the directory po-spawn was
/// started in, as `parallel` and `xargs` take it; a bare name stays a name
/// (looked up on `PATH`), and a word with a placeholder is left as it is.
pub fn absolute_program(program: &str, cwd: &Path) -> String {
    if program.contains('/') && !program.starts_with('/') && !program.contains('{') {
        cwd.join(program).to_string_lossy().into_owned()
    } else {
        program.to_string()
    }
}

/// Why `program` cannot be started, looked up on `path` (a `PATH` value) the
/// way `execvp` does; `None` when it can (or when it is only known once a
/// task's placeholders are filled in).
pub fn unstartable(program: &str, path: &std::ffi::OsStr) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('{') {
        return None;
    }
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return Some("the agent's command is empty".into());
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return match std::fs::metadata(&p) {
            Err(_) => Some(format!("{program} does not exist")),
            Ok(_) if !executable(&p) => Some(format!("{program} is not an executable file")),
            Ok(_) => None,
        };
    }
    let found = std::env::split_paths(path)
        .map(|d| {
            if d.as_os_str().is_empty() {
                ".".into()
            } else {
                d
            }
        })
        .any(|d| executable(&d.join(program)));
    (!found).then(|| format!("{program} is not on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn specs_of_the_earlier_shapes_still_read() {
        let claude: AgentSpec = serde_json::from_str(
            r#"{"kind":"claude","program":"claude","model":null,"max_budget_usd":1.5,"max_turns":3}"#,
        )
        .unwrap();
        assert_eq!(claude.kind, "claude");
        assert_eq!(claude.max_budget_usd, Some(1.5));
        assert_eq!(claude.agent().unwrap().name(), "claude");
        let cmd: AgentSpec =
            serde_json::from_str(r#"{"kind":"command","words":["./a.sh","{prompt_file}"]}"#)
                .unwrap();
        assert_eq!(
            cmd,
            AgentSpec::command(vec!["./a.sh".into(), "{prompt_file}".into()])
        );
        assert_eq!(cmd.agent().unwrap().program(), "./a.sh");
        let round: AgentSpec = serde_json::from_str(&serde_json::to_string(&cmd).unwrap()).unwrap();
        assert_eq!(round, cmd);
    }

    #[test]
    fn an_unknown_agent_is_a_usage_error_that_names_the_known_ones() {
        let e = AgentSpec::named("frobnicator").agent().unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        let text = e.to_string();
        assert!(
            text.contains("frobnicator") && text.contains("claude"),
            "{text}"
        );
    }

    #[test]
    fn relative_programs_are_taken_from_where_po_spawn_started() {
        let cwd = Path::new("/home/u/repo");
        assert_eq!(
            absolute_program("./myagent.sh", cwd),
            "/home/u/repo/./myagent.sh"
        );
        assert_eq!(absolute_program("bin/agent", cwd), "/home/u/repo/bin/agent");
        assert_eq!(absolute_program("/opt/agent", cwd), "/opt/agent");
        assert_eq!(absolute_program("claude", cwd), "claude");
        assert_eq!(
            absolute_program("{worktree}/run.sh", cwd),
            "{worktree}/run.sh"
        );
    }

    #[test]
    fn a_program_is_startable_when_execvp_would_find_it() {
        let tmp = tempfile::tempdir().unwrap();
        let tool = tmp.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::write(tmp.path().join("plain"), "").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent".into(), tmp.path().to_path_buf()]).unwrap();
        assert_eq!(unstartable("tool", &path), None);
        assert_eq!(unstartable(tool.to_str().unwrap(), &path), None);
        assert!(unstartable("plain", &path).unwrap().contains("not on PATH"));
        let plain = tmp.path().join("plain");
        assert!(
            unstartable(plain.to_str().unwrap(), &path)
                .unwrap()
                .contains("not an executable")
        );
        assert!(
            unstartable("/no/such", &path)
                .unwrap()
                .contains("does not exist")
        );
        assert_eq!(unstartable("{worktree}/x", &path), None);
    }
}
