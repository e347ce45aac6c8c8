//! What a po-spawn run tells people: progress on stderr in the seeds' shape,
//! and every scheduler decision in the session log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::timefmt;

pub struct Console {
    verbose: bool,
    session: Mutex<Option<File>>,
}

impl Console {
    pub fn new(verbose: bool) -> Console {
        Console {
            verbose,
            session: Mutex::new(None),
        }
    }

    /// Start writing decisions to `path` (appending).
    pub fn open_session_log(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io("open", path))?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(())
    }

    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// A line for people (stderr), also recorded in the session log.
    pub fn say(&self, line: &str) {
        eprintln!("{line}");
        self.log(line.trim());
    }

    /// Detail shown with `-v` / `AMPLIHACK_PARALLEL_VERBOSE`, always logged.
    pub fn detail(&self, line: &str) {
        if self.verbose {
            eprintln!("{line}");
        }
        self.log(line.trim());
    }

    /// A decision, for the session log only.
    pub fn log(&self, line: &str) {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{} {line}", timefmt::format(&timefmt::now()));
        }
    }
}
