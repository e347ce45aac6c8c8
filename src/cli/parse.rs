//! `po-parse`: Extract sub-tasks from an issue, markdown file or manifest into an orchestration.

use clap::Parser;

use super::Common;
use crate::error::{Error, Result};

/// Extract sub-tasks from an issue, markdown file or manifest into an orchestration
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
