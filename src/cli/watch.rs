//! `po-watch`: Show the tasks of an orchestration: a table, a live view or an event stream.

use clap::Parser;

use super::Common;
use crate::error::{Error, Result};

/// Show the tasks of an orchestration: a table, a live view or an event stream
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
