//! Command-line definitions and entry points of every tool. `src/bin/*` call
//! [`main`] with one of these; `man/` and the shell completions are generated
//! from the same definitions.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser};

use crate::error::{Error, Result, exit};
use crate::protocol::Runtime;

pub mod clean;
pub mod cpo;
pub mod docs;
pub mod merge;
pub mod parse;
pub mod react;
pub mod sandbox;
pub mod serve;
pub mod spawn;
pub mod status;
pub mod summarize;
pub mod watch;

/// Options every tool takes.
#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// Runtime root (default: <git top-level>/.claude/runtime)
    #[arg(long, global = true, env = "PO_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,

    /// More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Common {
    pub fn runtime(&self) -> Result<Runtime> {
        Runtime::discover(self.runtime_dir.as_deref())
    }
}

/// Log to stderr: `PO_LOG` if set, else warnings, raised by `-v`.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,po=debug",
        _ => "trace",
    };
    let filter = std::env::var("PO_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Parse the command line (usage errors exit 64), run, map errors to exit codes.
pub fn main<P: Parser>(name: &str, run: fn(P) -> Result<i32>) -> ! {
    let code = match P::try_parse() {
        Ok(args) => match run(args) {
            Ok(code) => code,
            Err(e) => report(name, &e),
        },
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            }
        }
    };
    std::process::exit(code)
}

/// Print `name: failed to …` (with causes) and return the exit code.
pub fn report(name: &str, e: &Error) -> i32 {
    eprintln!("{}", message(name, e));
    e.exit_code()
}

/// `name: failed to …`, then its causes (errors whose message holds the
/// cause, as [`Error::Io`] does, do not also give it as `source()`).
pub fn message(name: &str, e: &Error) -> String {
    format!("{name}: failed to {}", e.chain())
}

/// Every tool's clap definition, by binary name (for man pages and completions).
pub fn commands() -> Vec<clap::Command> {
    vec![
        parse::Args::command().name("po-parse"),
        spawn::Args::command().name("po-spawn"),
        watch::Args::command().name("po-watch"),
        summarize::Args::command().name("po-summarize"),
        status::Args::command().name("po-status"),
        serve::Args::command().name("po-serve"),
        cpo::Args::command().name("cpo"),
        merge::Args::command().name("po-merge"),
        clean::Args::command().name("po-clean"),
        react::Args::command().name("po-react"),
    ]
}
