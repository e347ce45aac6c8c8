//! The Slurm launcher: each task's supervisor runs as one Slurm job, on
//! whichever node Slurm picks, with the status files and their locks on the
//! cluster's shared filesystem.
//!
//! * Submission: `sbatch --parsable` of a fixed job script po writes
//!   ([`SCRIPT`]), whose arguments are po-spawn's own path and the task's
//!   spec file (`parallel/<id>/specs/agent-<n>.json`, written atomically).
//!   The script only runs `po-spawn` with `PO_SPAWN_TASK` naming that file: no
//!   task text reaches a shell or Slurm's command line. The job is named
//!   `po-<id>-agent-<n>`, writes its output into the task's log, carries the
//!   status file's path as its comment, is never requeued, and gets
//!   `--time` = the task's timeout + grace + [`TIME_MARGIN_SECS`], so Slurm
//!   is the outer bound.
//! * The job id is written into the status file at submission (`launcher`,
//!   `runner_id`, `runner`; [`crate::protocol::runner`]); the supervisor
//!   writes it again with its `node` when it starts ([`runner_fields`]).
//! * Watching: [`queue`] (one `squeue` a second, a look at running tasks'
//!   status files every tick) wakes the scheduler.
//! * Adoption: a task in progress, or pending with a job still queued for
//!   it, is followed by its job id (or found by its job's comment, should a
//!   po-spawn have died between `sbatch` and recording the id): a task never
//!   has two live jobs.
//! * Ending: `scancel --batch --signal=INT` cancels a running job's task
//!   cleanly (its supervisor ends the agent's tree and records `cancelled`);
//!   a job still waiting, or a forced end, is `scancel`led whole.

pub mod queue;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::local::Local;
use super::{Ended, Launcher, Runner, RunnerState, Site};
use crate::error::{Error, Result};
use crate::protocol::{AgentStatus, State, layout, runner, store};
use crate::run::supervisor::Spec;
use queue::{Job, Known, Phase, Queue};

/// Seconds added to a task's timeout and grace for its job's time limit:
/// preparing the worktree, the setup command, recording, the pull request.
pub const TIME_MARGIN_SECS: f64 = 300.0;

/// The job script: po-spawn (`$1`) as the supervisor of the task whose spec
/// is in `$2`. Constant text; sbatch copies it at submission.
pub const SCRIPT: &str = "#!/bin/sh\n\
# A po task's supervisor, run by Slurm (written by po-spawn --launcher slurm).\n\
# $1: po-spawn; $2: the task's spec file.\n\
PO_SPAWN_TASK=$2\n\
export PO_SPAWN_TASK\n\
exec \"$1\"\n";

/// What `--launcher slurm` submits with, besides what po decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    /// Anything else for sbatch (`--qos=high`), after po's own options, so
    /// these win.
    pub extra: Vec<String>,
}

/// One job's submission.
pub struct Submission<'a> {
    pub name: &'a str,
    pub log: &'a Path,
    pub minutes: u64,
    pub status_file: &'a Path,
    pub chdir: &'a Path,
    pub script: &'a Path,
    pub exe: &'a Path,
    pub spec_file: &'a Path,
}

impl Options {
    /// sbatch's arguments for one job; argv words, never a shell line.
    pub fn sbatch_args(&self, sub: &Submission) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--parsable".into(), "--job-name".into(), sub.name.into()];
        // `%` in a file name is one of sbatch's patterns: such a log is
        // written by the supervisor only.
        a.push("--output".into());
        if sub.log.to_string_lossy().contains('%') {
            a.push("/dev/null".into());
        } else {
            a.push(sub.log.into());
        }
        a.extend(["--open-mode=append".into(), "--no-requeue".into()]);
        a.extend(["--time".into(), sub.minutes.to_string().into()]);
        a.extend(["--comment".into(), sub.status_file.into()]);
        a.extend(["--chdir".into(), sub.chdir.into()]);
        for (flag, v) in self.resources() {
            a.extend([flag.into(), v.into()]);
        }
        a.extend(self.extra.iter().map(OsString::from));
        a.extend([sub.script.into(), sub.exe.into(), sub.spec_file.into()]);
        a
    }
}

impl Options {
    /// The resource flags given (`--partition`, `--account`,
    /// `--cpus-per-task`, `--mem`), with their values.
    fn resources(&self) -> Vec<(&'static str, String)> {
        [
            ("--partition", self.partition.clone()),
            ("--account", self.account.clone()),
            ("--cpus-per-task", self.cpus_per_task.map(|n| n.to_string())),
            ("--mem", self.mem.clone()),
        ]
        .into_iter()
        .filter_map(|(flag, value)| Some((flag, value?)))
        .collect()
    }

    /// The dry run's line: what every job is submitted with.
    pub fn describe(&self, timeout_secs: f64, grace_secs: f64) -> String {
        let mut words = vec![format!("--time {}", minutes(timeout_secs, grace_secs))];
        for (flag, v) in self.resources() {
            words.push(format!("{flag} {v}"));
        }
        words.extend(self.extra.iter().cloned());
        format!(
            "Launcher: slurm, one job per task (sbatch --job-name po-<id>-agent-<n> {})\n",
            words.join(" ")
        )
    }
}

/// This launcher's name, as status files record it.
pub const NAME: &str = "slurm";

/// How a job is shown to people.
pub fn shown(id: u64) -> String {
    format!("Slurm job {id}")
}

/// The Slurm job a status file names, if the Slurm launcher ran it (or an
/// older file names a job).
pub fn job_of(s: &AgentStatus) -> Option<u64> {
    if runner::launcher(s).is_some_and(|l| l != NAME) {
        return None;
    }
    runner::runner_id(s)?.parse().ok()
}

/// The runner fields of a supervisor that runs as a Slurm job: its job and
/// the node it runs on (Slurm's name for it: a one-node job's node list is
/// that name). None outside a Slurm job.
pub fn runner_fields() -> Option<serde_json::Map<String, Value>> {
    let job = std::env::var("SLURM_JOB_ID")
        .ok()
        .and_then(|j| j.trim().parse::<u64>().ok())?;
    let mut fields = serde_json::Map::new();
    runner::record(&mut fields, NAME, &job.to_string(), &shown(job));
    let node = std::env::var("SLURMD_NODENAME")
        .ok()
        .or_else(|| {
            std::env::var("SLURM_JOB_NODELIST")
                .ok()
                .filter(|l| !l.contains([',', '[']))
        })
        .filter(|n| !n.trim().is_empty());
    if let Some(node) = node {
        fields.insert(runner::NODE.into(), Value::from(node));
    }
    Some(fields)
}

/// Whole minutes of Slurm time for a task that may run `secs`.
pub fn minutes(timeout_secs: f64, grace_secs: f64) -> u64 {
    let total = timeout_secs.max(0.0) + grace_secs.max(0.0) + TIME_MARGIN_SECS;
    (total / 60.0).ceil().max(1.0) as u64
}

/// How the launcher knows a task's runner.
enum Run {
    /// A Slurm job.
    Job(u64),
    /// A job that had ended before this po-spawn looked: how.
    Gone(String),
    /// A supervisor of the local pool (a task a local po-spawn left).
    Local(Runner),
}

pub struct Slurm {
    opts: Options,
    exe: PathBuf,
    script: PathBuf,
    id: String,
    queue: Queue,
    runs: HashMap<u64, Run>,
    next_key: u64,
    /// Follows tasks a local po-spawn's supervisors still run.
    local: Local,
    /// This orchestration's jobs as Slurm knew them when the run began.
    at_start: HashMap<u64, Job>,
    /// The live job of each task then, by its comment (status file).
    live_at_start: HashMap<PathBuf, u64>,
    /// Jobs this po-spawn ended.
    ended: HashSet<u64>,
    /// Running jobs that were sent the cancel signal already.
    signalled: HashSet<u64>,
    /// When [`Launcher::end`] last asked Slurm about the jobs.
    refreshed: Option<std::time::Instant>,
    waker: super::Waker,
}

impl Slurm {
    /// Check that Slurm takes jobs as asked (`sbatch --test-only`), and read
    /// what it knows of this orchestration's jobs.
    pub fn new(opts: Options, site: Site) -> Result<Slurm> {
        let specs = layout::specs_dir(&site.dir);
        std::fs::create_dir_all(&specs).map_err(Error::io("create", &specs))?;
        let script = specs.join("job.sh");
        store::write_atomic(&script, SCRIPT.as_bytes())?;
        let mut slurm = Slurm {
            local: Local::new(site.exe.clone(), site.waker.clone(), site.grace),
            queue: Queue::start(site.waker.clone()),
            waker: site.waker,
            opts,
            exe: site.exe,
            script,
            id: site.id,
            runs: HashMap::new(),
            next_key: 1,
            at_start: HashMap::new(),
            live_at_start: HashMap::new(),
            ended: HashSet::new(),
            signalled: HashSet::new(),
            refreshed: None,
        };
        slurm.preflight(
            minutes(site.timeout_secs, site.grace.as_secs_f64()),
            &site.dir,
        )?;
        slurm.inventory()?;
        Ok(slurm)
    }

    /// A test submission with this run's options.
    fn preflight(&self, minutes: u64, dir: &Path) -> Result<()> {
        let probe = layout::specs_dir(dir).join("preflight.json");
        let mut args = self.opts.sbatch_args(&Submission {
            name: &format!("po-{}-preflight", self.id),
            log: Path::new("/dev/null"),
            minutes,
            status_file: &probe,
            chdir: dir,
            script: &self.script,
            exe: &self.exe,
            spec_file: &probe,
        });
        args.insert(0, "--test-only".into());
        let out = Command::new("sbatch")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::usage(format!(
                    "use --launcher slurm: cannot run sbatch ({e}); install Slurm's client \
                     commands (Debian: slurm-client) and check that `sinfo` answers"
                ))
            })?;
        if !out.status.success() {
            return Err(Error::usage(format!(
                "submit to Slurm (sbatch --test-only): {}; check --partition, --account, \
                 --cpus-per-task, --mem and --slurm-arg, and that `sinfo` answers",
                one_line(&out.stderr)
            )));
        }
        Ok(())
    }

    /// One `squeue` for this user's jobs of this orchestration, ended ones
    /// included (for `MinJobAge`).
    fn inventory(&mut self) -> Result<()> {
        let out = Command::new("squeue")
            .args(["--me", "-h", "-t", "all", "-o", "%i|%T|%r|%N|%j|%k"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::system(format!("run squeue: {e}")))?;
        if !out.status.success() {
            return Err(Error::system(format!(
                "ask Slurm about this orchestration's jobs (squeue): {}",
                one_line(&out.stderr)
            )));
        }
        let prefix = format!("po-{}-", self.id);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((job, rest)) = queue::parse_line(line) else {
                continue;
            };
            if !rest.first().is_some_and(|name| name.starts_with(&prefix)) {
                continue;
            }
            if job.phase() != Phase::Ended
                && let Some(comment) = rest.get(1).filter(|c| !c.is_empty())
            {
                let newest = self
                    .live_at_start
                    .entry(PathBuf::from(comment))
                    .or_default();
                *newest = (*newest).max(job.id);
            }
            self.at_start.insert(job.id, job);
        }
        tracing::debug!(
            jobs = self.at_start.len(),
            live = self.live_at_start.len(),
            "slurm inventory"
        );
        Ok(())
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn runner(&mut self, run: Run) -> Runner {
        let key = self.key();
        let shown = match &run {
            Run::Job(id) => shown(*id),
            Run::Gone(_) => "its Slurm job (ended)".into(),
            Run::Local(r) => r.shown.clone(),
        };
        self.runs.insert(key, run);
        Runner { key, shown }
    }

    /// Follow job `id`, which runs the task of `status_file`. What Slurm
    /// said of it at the start is the queue's from now on (a later attempt
    /// of the task never takes it for a live job again).
    fn follow(&mut self, id: u64, status_file: &Path) -> Runner {
        self.live_at_start.retain(|_, j| *j != id);
        self.queue.watch(id, status_file, self.at_start.remove(&id));
        self.runner(Run::Job(id))
    }

    /// The job still queued or running for a task, if Slurm has one: the one
    /// its status file names, else one found by its comment.
    fn live_job(&self, status_file: &Path, status: &AgentStatus) -> Option<u64> {
        let named = job_of(status).filter(|id| {
            self.at_start
                .get(id)
                .is_some_and(|j| j.phase() != Phase::Ended)
        });
        named.or_else(|| self.live_at_start.get(status_file).copied())
    }

    /// Submit the task of `spec` as a job; its id.
    fn submit(&self, spec: &Spec) -> Result<u64> {
        let agent = layout::agent_id_of(&spec.status_file);
        let dir = spec
            .status_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let spec_file = layout::spec_path(&dir, &agent);
        if let Some(parent) = spec_file.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        store::write_json(&spec_file, spec)?;
        let name = format!("po-{}-{agent}", self.id);
        let args = self.opts.sbatch_args(&Submission {
            name: &name,
            log: &spec.log_file,
            minutes: minutes(spec.timeout_secs, spec.grace_secs),
            status_file: &spec.status_file,
            chdir: &spec.repo,
            script: &self.script,
            exe: &self.exe,
            spec_file: &spec_file,
        });
        let out = Command::new("sbatch")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::system(format!("run sbatch for {name}: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout
            .trim()
            .split(';')
            .next()
            .and_then(|j| j.trim().parse::<u64>().ok());
        match (out.status.success(), id) {
            (true, Some(id)) => Ok(id),
            _ => Err(Error::system(format!(
                "submit {name} to Slurm (sbatch): {}",
                one_line(if out.stderr.is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                })
            ))),
        }
    }

    fn scancel(&self, args: &[&str]) {
        match Command::new("scancel")
            .args(args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => tracing::debug!(?args, "scancel"),
            // Gone or finishing already: nothing left to end.
            Ok(o)
                if String::from_utf8_lossy(&o.stderr).contains("Invalid job id")
                    || String::from_utf8_lossy(&o.stderr).contains("already complet") =>
            {
                tracing::debug!(?args, "scancel: the job is ending already")
            }
            Ok(o) => tracing::warn!(
                "po-spawn: failed to end a Slurm job (scancel {}): {}",
                args.join(" "),
                one_line(&o.stderr)
            ),
            Err(e) => tracing::warn!("po-spawn: failed to run scancel: {e}"),
        }
    }
}

/// A command's output as one line for an error.
fn one_line(bytes: &[u8]) -> String {
    crate::protocol::lifecycle::one_line(String::from_utf8_lossy(bytes).trim())
}

/// Record the job a task was submitted as, under the status file's lock:
/// never a change of the task's state. A node and a queue reason from an
/// earlier attempt are cleared.
fn record_submission(status_file: &Path, id: u64) -> Result<()> {
    store::update_status(status_file, |s| {
        if job_of(s) == Some(id) {
            // Its supervisor started and recorded it first.
            return Ok(());
        }
        runner::record(&mut s.extra, NAME, &id.to_string(), &shown(id));
        if s.status == State::Pending {
            s.extra.insert(runner::NODE.into(), Value::Null);
            s.extra.insert(runner::QUEUED.into(), Value::Null);
        }
        Ok(())
    })
    .map(|_| ())
}

impl Launcher for Slurm {
    fn start(&mut self, spec: &Spec) -> Result<Runner> {
        let status = store::read_status(&spec.status_file)?;
        if let Some(id) = self.live_job(&spec.status_file, &status) {
            // Submitted by a po-spawn that died before it saw it start.
            tracing::info!(
                job = id,
                "{}: its Slurm job is still queued",
                status.agent_id
            );
            return Ok(self.follow(id, &spec.status_file));
        }
        let id = self.submit(spec)?;
        if let Err(e) = record_submission(&spec.status_file, id) {
            // The task must not run without its job being known.
            self.scancel(&[&id.to_string()]);
            return Err(e);
        }
        Ok(self.follow(id, &spec.status_file))
    }

    fn adopt(&mut self, status_file: &Path, status: &AgentStatus) -> Option<Runner> {
        let live_lock = store::is_live(status_file);
        let job = job_of(status)
            .filter(|_| runner::launcher(status) == Some(NAME))
            .or_else(|| self.live_at_start.get(status_file).copied());
        let Some(id) = job else {
            // Started by a local po-spawn: follow its liveness lock.
            return self
                .local
                .adopt(status_file, status)
                .map(|r| self.runner(Run::Local(r)));
        };
        // What Slurm said of it when the run began, or since.
        let known = match self.at_start.get(&id).cloned() {
            Some(j) => Known::Live(j),
            None => self.queue.known(id),
        };
        let known = match known {
            Known::Live(j) | Known::Ended(j) => Some(j),
            // Submitted by this run and not asked about yet: live.
            Known::Unknown
                if self
                    .runs
                    .values()
                    .any(|r| matches!(r, Run::Job(j) if *j == id)) =>
            {
                return Some(self.follow(id, status_file));
            }
            Known::Unknown | Known::Vanished => None,
        };
        match known {
            Some(j) if j.phase() != Phase::Ended => Some(self.follow(id, status_file)),
            // Slurm says the job is over, yet someone holds the task: follow
            // the lock, never run it twice.
            _ if live_lock => self
                .local
                .adopt(status_file, status)
                .map(|r| self.runner(Run::Local(r))),
            // Over before this po-spawn looked: the scheduler records how as
            // soon as it looks again.
            Some(j) => {
                (self.waker)();
                Some(self.runner(Run::Gone(j.how())))
            }
            None => {
                (self.waker)();
                Some(self.runner(Run::Gone(queue::vanished(id))))
            }
        }
    }

    fn end(&mut self, runner: &Runner, force: bool) {
        let id = match self.runs.get(&runner.key) {
            Some(Run::Job(id)) => *id,
            Some(Run::Local(r)) => {
                let r = r.clone();
                return self.local.end(&r, force);
            }
            Some(Run::Gone(_)) | None => return,
        };
        self.ended.insert(id);
        let job = id.to_string();
        // Whether a job runs or still waits decides how it ends: ask Slurm
        // afresh, once for all the jobs a Ctrl-C ends together.
        if self
            .refreshed
            .is_none_or(|t| t.elapsed() > std::time::Duration::from_millis(500))
        {
            if let Err(e) = self.queue.refresh() {
                tracing::warn!("po-spawn: failed to {e}");
            }
            self.refreshed = Some(std::time::Instant::now());
        }
        match self.queue.known(id) {
            // Its supervisor cancels the agent and records the task.
            Known::Live(j) if j.phase() == Phase::Running && !force => {
                if self.signalled.insert(id) {
                    self.scancel(&["--batch", "--signal=INT", &job]);
                } else {
                    self.scancel(&[&job]);
                }
            }
            Known::Ended(_) | Known::Vanished => {}
            // Waiting (nothing runs yet), not seen yet, or forced: the whole job.
            _ => self.scancel(&[&job]),
        }
    }

    fn state(&mut self, runner: &Runner) -> RunnerState {
        let id = match self.runs.get(&runner.key) {
            Some(Run::Job(id)) => *id,
            Some(Run::Gone(how)) => {
                return RunnerState::Ended(Ended {
                    how: how.clone(),
                    interrupted: false,
                });
            }
            Some(Run::Local(r)) => {
                let r = r.clone();
                return self.local.state(&r);
            }
            None => {
                return RunnerState::Ended(Ended {
                    how: "its Slurm job is unknown to this po-spawn".into(),
                    interrupted: false,
                });
            }
        };
        let interrupted = self.ended.contains(&id);
        match self.queue.known(id) {
            Known::Unknown => RunnerState::Running,
            Known::Live(j) if j.phase() == Phase::Queued => RunnerState::Queued(j.waiting_for()),
            Known::Live(_) => RunnerState::Running,
            Known::Ended(j) => RunnerState::Ended(Ended {
                how: j.how(),
                interrupted,
            }),
            Known::Vanished => RunnerState::Ended(Ended {
                how: queue::vanished(id),
                interrupted,
            }),
        }
    }

    fn clean_up(&mut self, status_file: &Path, status: &AgentStatus) -> usize {
        if runner::launcher(status) != Some(NAME) {
            return self.local.clean_up(status_file, status);
        }
        // Slurm ends what a job leaves on its node; a job still live goes.
        match job_of(status) {
            Some(id)
                if matches!(self.queue.known(id), Known::Live(_) | Known::Unknown)
                    && self
                        .at_start
                        .get(&id)
                        .is_none_or(|j| j.phase() != Phase::Ended) =>
            {
                self.scancel(&[&id.to_string()]);
                1
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::supervisor::TASK_ENV;

    fn words(a: &[OsString]) -> Vec<String> {
        a.iter().map(|w| w.to_string_lossy().into_owned()).collect()
    }

    fn submission<'a>(log: &'a Path) -> Submission<'a> {
        Submission {
            name: "po-7-agent-1",
            log,
            minutes: 36,
            status_file: Path::new("/r/.claude/runtime/parallel/7/agent-1.status.json"),
            chdir: Path::new("/r"),
            script: Path::new("/r/.claude/runtime/parallel/7/specs/job.sh"),
            exe: Path::new("/usr/bin/po-spawn"),
            spec_file: Path::new("/r/.claude/runtime/parallel/7/specs/agent-1.json"),
        }
    }

    #[test]
    fn sbatch_gets_argv_words_with_the_users_options_last() {
        let opts = Options {
            partition: Some("gpu".into()),
            account: Some("team a".into()),
            cpus_per_task: Some(4),
            mem: Some("8G".into()),
            extra: vec!["--qos=high".into(), "--time=90".into()],
        };
        let log = Path::new("/r/logs/agent-1.log");
        let a = words(&opts.sbatch_args(&submission(log)));
        assert_eq!(
            a,
            [
                "--parsable",
                "--job-name",
                "po-7-agent-1",
                "--output",
                "/r/logs/agent-1.log",
                "--open-mode=append",
                "--no-requeue",
                "--time",
                "36",
                "--comment",
                "/r/.claude/runtime/parallel/7/agent-1.status.json",
                "--chdir",
                "/r",
                "--partition",
                "gpu",
                "--account",
                "team a",
                "--cpus-per-task",
                "4",
                "--mem",
                "8G",
                "--qos=high",
                "--time=90",
                "/r/.claude/runtime/parallel/7/specs/job.sh",
                "/usr/bin/po-spawn",
                "/r/.claude/runtime/parallel/7/specs/agent-1.json",
            ]
        );
        // A log path sbatch would read as a pattern is not handed to it.
        let odd = Path::new("/r/100%/agent-1.log");
        let a = words(&Options::default().sbatch_args(&submission(odd)));
        assert_eq!(a[3..5], ["--output", "/dev/null"]);
    }

    #[test]
    fn the_time_limit_is_timeout_grace_and_margin_in_whole_minutes() {
        assert_eq!(minutes(1800.0, 10.0), 36); // 2110 s
        assert_eq!(minutes(2.0, 1.0), 6); // 303 s
        assert_eq!(minutes(0.0, 0.0), 5);
    }

    /// Run `script` as a job runs it: `sh job.sh PROGRAM SPEC`, with env(1)
    /// as the program and a spec path a shell would expand, which touches a
    /// probe file if anything expands it. The environment printed, the spec
    /// path, and whether the probe was touched.
    fn run_as_a_job(script: &str) -> (String, String, bool) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.sh");
        std::fs::write(&file, script).unwrap();
        let probe = dir.path().join("expanded");
        let spec = format!("{}/a b;$(touch {})", dir.path().display(), probe.display());
        let out = Command::new("sh")
            .arg(&file)
            .args(["/usr/bin/env", &spec])
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&out.stdout).into_owned();
        (env, spec, probe.exists())
    }

    #[test]
    fn the_job_script_only_runs_po_spawn_on_the_spec_file_it_is_given() {
        let (env, spec, expanded) = run_as_a_job(SCRIPT);
        // The program ran (env printed its environment) with the spec path,
        // byte for byte, as PO_SPAWN_TASK...
        assert!(
            env.lines().any(|l| l == format!("{TASK_ENV}={spec}")),
            "{env}"
        );
        // ...and nothing in that path was run by the shell.
        assert!(!expanded, "the shell expanded the spec path");
        // The probe fires on a script that lets the shell read the path.
        let careless = SCRIPT.replace("PO_SPAWN_TASK=$2", "eval \"PO_SPAWN_TASK=$2\"");
        assert_ne!(careless, SCRIPT);
        assert!(run_as_a_job(&careless).2, "the probe cannot tell");
    }
}
