//! `cpo`: Claude Parallel Orchestrator: run waves of tasks from a manifest.json.

use clap::Parser;

use super::Common;
use crate::error::{Error, Result};

/// Claude Parallel Orchestrator: run waves of tasks from a manifest.json
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: Args) -> Result<i32> {
    super::init_tracing(args.common.verbose);
    Err(Error::system("run: not built yet"))
}
