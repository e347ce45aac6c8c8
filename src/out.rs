//! Data on stdout, as a Unix filter writes it.
//!
//! A reader that went away (`po-summarize 1234 | head -1`, a closed pipe) is
//! not an error: the rest of the output is dropped quietly and the tool goes on
//! with its work and its exit status. Any other failure to write (a full disk
//! behind `> file`) is an error that names stdout.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Set once stdout's reader has gone: later output is dropped unwritten.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `text` to stdout and flush it.
pub fn print(text: &str) -> Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Error::io("write", "stdout")(e)),
    }
}

/// Write `line` and a newline to stdout.
pub fn println(line: &str) -> Result<()> {
    print(&format!("{line}\n"))
}
