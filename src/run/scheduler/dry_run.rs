//! `po-spawn --dry-run`: the plan — scheduling, waves, order, worktrees,
//! branches and the exact commands — printed on stdout; nothing starts.

use std::io::Write;

use super::Config;
use super::plan::Mode;
use super::setup::{Setup, branch_of};
use crate::protocol::view::TaskView;
use crate::protocol::{State, layout, sanitize};
use crate::run::agent::{self, Launch, Planned};
use crate::run::template;

pub fn print(cfg: &Config, setup: &Setup) {
    let tasks: Vec<_> = setup.view.tasks().collect();
    let mut out = String::new();
    out.push_str("🔍 DRY RUN MODE (nothing is started)\n");
    out.push_str(&format!(
        "Orchestration {}: {} task(s) in {}\n",
        setup.id,
        tasks.len(),
        setup.dir.display()
    ));
    out.push_str(&format!(
        "max_workers={} batch_size={} timeout={}s isolation={} base={}\n",
        cfg.max_workers,
        cfg.batch_size
            .map(|b| b.to_string())
            .unwrap_or_else(|| "unlimited".into()),
        cfg.timeout_secs,
        if cfg.isolated { "worktree" } else { "none" },
        cfg.base.as_deref().unwrap_or("HEAD")
    ));
    if let Some(b) = cfg.limits.budget_usd {
        let spent = crate::cost::Total::of(tasks.iter().map(|t| &t.status));
        out.push_str(&format!(
            "Budget: {} for the orchestration{}; {}\n",
            crate::cost::usd(b),
            if cfg.limits.hard {
                ", running agents ended when it is reached"
            } else {
                ""
            },
            spent.against(b)
        ));
    }
    out.push_str(&match setup.mode {
        Mode::Waves => {
            "Scheduling: waves (each wave starts when the one before it is over)\n".to_string()
        }
        Mode::Graph => "Scheduling: dependency graph (a task starts as soon as its dependencies \
                        have completed, from their branches)\n"
            .to_string(),
    });
    out.push_str(&cfg.launcher.describe(cfg.timeout_secs, cfg.grace_secs));
    let base = cfg.base.clone().unwrap_or_else(|| "HEAD".into());
    let first_wave = tasks.first().map(|t| t.status.wave);
    let mut wave = None;
    for t in &tasks {
        let s = &t.status;
        if setup.mode == Mode::Waves && wave != Some(s.wave) {
            wave = Some(s.wave);
            let from = if Some(s.wave) == first_wave {
                base.clone()
            } else {
                "the previous wave's integration branch".into()
            };
            out.push_str(&format!("\nWave {} (from {from}):\n", s.wave));
        } else if setup.mode == Mode::Graph && wave.is_none() {
            wave = Some(0);
            out.push('\n');
        }
        task(&mut out, cfg, setup, t);
    }
    let mut validations: Vec<_> = setup.validations.iter().collect();
    validations.sort();
    for (w, v) in validations {
        out.push_str(&format!("\nWave {w} validation: {v}\n"));
    }
    if let Some(setup_cmd) = &cfg.setup {
        out.push_str(&format!("\nSetup in each worktree: {setup_cmd}\n"));
    }
    out.push_str("\nTo run: drop --dry-run\n");
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// One task of the plan: what would happen to it, where, and the command.
fn task(out: &mut String, cfg: &Config, setup: &Setup, t: &TaskView) {
    let s = &t.status;
    let would = match s.status {
        State::Pending => "run",
        State::InProgress => "adopt or recover",
        st if st.is_retryable() && (cfg.retry || setup.explicit) => "retry",
        _ => "skip",
    };
    let agent_id = sanitize::id(&s.agent_id).unwrap_or_else(|_| "agent".into());
    let branch = branch_of(&setup.id, s);
    let wt = setup.runtime.worktree_dir(&setup.id, &agent_id);
    let prompt = layout::prompt_path(&setup.dir, &agent_id);
    out.push_str(&format!(
        "  {} [{}, {would}]: {}\n",
        crate::text::printable(&t.label),
        s.status,
        crate::text::printable(&s.title)
    ));
    if !s.depends_on.is_empty() {
        let from = match setup.mode {
            Mode::Graph if s.depends_on.len() == 1 => " (starts from its branch)",
            Mode::Graph => " (starts from a merge of their branches)",
            Mode::Waves => "",
        };
        out.push_str(&format!(
            "    depends on: {}{from}\n",
            s.depends_on.join(", ")
        ));
    }
    if cfg.isolated {
        out.push_str(&format!("    branch:   {branch}\n"));
        out.push_str(&format!("    worktree: {}\n", wt.display()));
    }
    out.push_str(&format!("    prompt:   {}\n", prompt.display()));
    let workdir = if cfg.isolated {
        wt.to_string_lossy().into_owned()
    } else {
        "<repository>".into()
    };
    let prompt_file = prompt.to_string_lossy();
    let values = template::Values {
        prompt_file: &prompt_file,
        worktree: &workdir,
        agent_id: &s.agent_id,
        branch: &branch,
        id: &setup.id,
    };
    let argv = match cfg.agent.agent() {
        Ok(agent) => {
            let planned = agent
                .sessions()
                .plan(s.metrics.session_id.as_deref(), || {
                    Ok("<new session id>".into())
                })
                .unwrap_or(Planned::Fresh);
            agent::shown_argv(agent.invocation(&Launch {
                task: s,
                values: &values,
                session: planned.session(),
            }))
        }
        Err(e) => vec![format!("<{e}>")],
    };
    out.push_str(&format!(
        "    command:  {}\n",
        crate::text::shell_words(&argv)
    ));
    if let Some(opts) = &cfg.sandbox {
        out.push_str(&sandbox_lines(
            opts, cfg, setup, t, &argv, &agent_id, &branch,
        ));
    }
}

/// The task's sandbox, as it would be.
fn sandbox_lines(
    opts: &crate::run::sandbox::Options,
    cfg: &Config,
    setup: &Setup,
    t: &TaskView,
    argv: &[String],
    agent_id: &str,
    branch: &str,
) -> String {
    let repo = setup
        .repo
        .clone()
        .unwrap_or_else(|| setup.runtime.root.clone());
    let wt = setup.runtime.worktree_dir(&setup.id, agent_id);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let state = match (cfg.agent.agent(), &home) {
        (Ok(a), Some(h)) => a.state_paths(h),
        _ => Vec::new(),
    };
    let log = setup
        .log_dir(cfg, "<session>")
        .join(format!("{agent_id}.log"));
    let program = argv
        .first()
        .map(std::path::Path::new)
        .filter(|p| p.is_absolute());
    crate::run::sandbox::plan_lines(
        &crate::run::sandbox::Place {
            options: opts,
            workdir: if cfg.isolated { &wt } else { &repo },
            worktree: cfg.isolated.then_some(wt.as_path()),
            repo: &repo,
            branch,
            status_file: &t.file,
            log_file: &log,
            home: home.as_deref(),
            agent_state: &state,
            program,
        },
        argv,
    )
}
