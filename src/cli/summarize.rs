//! `po-summarize`: Aggregate an orchestration's results into summary.json and summary.md.

use clap::Parser;

use super::Common;
use crate::error::{Error, Result};

/// Aggregate an orchestration's results into summary.json and summary.md
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
