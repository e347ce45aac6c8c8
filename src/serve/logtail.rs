//! An agent log's tail, and what was appended to it since.
//!
//! A log is found through its task's status file, never through a path in a
//! URL, and is read only when the file opened lies under the runtime root
//! (symbolic links resolved on the open file, so a link cannot lead out)
//! and is a regular file: it is opened without blocking, so a FIFO or a
//! device in its place is refused, not waited on.
//! Text is made safe to show: invalid UTF-8 replaced, terminal escape
//! sequences and other control characters dropped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fsx;

/// How much of a log the page starts with.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// At most this much is read in one step; more than that appended at once
/// starts the view again from the tail.
const STEP_BYTES: u64 = 1024 * 1024;

/// Why a log cannot be shown.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The task has no log (yet), or the file does not exist (yet).
    Missing,
    /// The log lies outside the runtime root.
    Outside(PathBuf),
    Unreadable(String),
}

/// Open `path` for reading if it lies under `root` (both resolved) and is
/// a regular file. The open never blocks (a task can make its log a FIFO,
/// and a status file can name any FIFO or device), and where the file lies
/// is checked before what it is, so nothing is said of a file outside.
pub fn open_inside(path: &Path, root: &Path) -> Result<File, Refusal> {
    let file = match fsx::open_any(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refusal::Missing),
        Err(e) => return Err(Refusal::Unreadable(e.to_string())),
    };
    let real = real_path(&file, path).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    let root = std::fs::canonicalize(root).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if !real.starts_with(&root) {
        return Err(Refusal::Outside(real));
    }
    fsx::regular(file).map_err(|e| Refusal::Unreadable(e.to_string()))
}

/// Where an open file really is: `/proc/self/fd/N` names it after every
/// link was followed; the path resolved otherwise.
fn real_path(file: &File, path: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
}

/// What a step of following found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Text appended since the last step.
    Append(String),
    /// The log was replaced or truncated, or grew by more than a step:
    /// this is its new tail.
    Reset(String),
}

/// A log followed from a byte offset.
pub struct Tail {
    path: PathBuf,
    root: PathBuf,
    offset: u64,
    inode: Option<u64>,
    /// Bytes of a UTF-8 character cut at the end of the last read.
    partial: Vec<u8>,
}

impl Tail {
    /// Follow `path` from `offset` (the end of what the page shows).
    pub fn new(path: &Path, root: &Path, offset: u64) -> Tail {
        Tail {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            offset,
            inode: None,
            partial: Vec::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The last [`TAIL_BYTES`] of the log, from a line start, and the offset
    /// of its end.
    pub fn tail(&mut self) -> Result<(String, u64), Refusal> {
        let mut file = open_inside(&self.path, &self.root)?;
        let meta = file
            .metadata()
            .map_err(|e| Refusal::Unreadable(e.to_string()))?;
        let len = meta.len();
        let from = len.saturating_sub(TAIL_BYTES);
        let bytes = read_range(&mut file, from, len)?;
        let start = if from > 0 {
            bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        self.offset = len;
        self.inode = Some(meta.ino());
        self.partial.clear();
        Ok((clean(&String::from_utf8_lossy(&bytes[start..])), len))
    }

    /// What changed since the last step, if anything.
    pub fn step(&mut self) -> Result<Option<Chunk>, Refusal> {
        let mut file = open_inside(&self.path, &self.root)?;
        let meta = file
            .metadata()
            .map_err(|e| Refusal::Unreadable(e.to_string()))?;
        let len = meta.len();
        let replaced = self.inode.is_some_and(|i| i != meta.ino());
        if self.inode.is_none() {
            self.inode = Some(meta.ino());
        }
        if replaced || len < self.offset || len - self.offset > STEP_BYTES {
            return self.tail().map(|(t, _)| Some(Chunk::Reset(t)));
        }
        if len == self.offset {
            return Ok(None);
        }
        let mut bytes = std::mem::take(&mut self.partial);
        bytes.extend(read_range(&mut file, self.offset, len)?);
        self.offset = len;
        // Hold back a character cut in two by the writer.
        let keep = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => bytes.len(),
        };
        self.partial = bytes.split_off(keep);
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk::Append(clean(&String::from_utf8_lossy(&bytes)))))
    }
}

fn read_range(file: &mut File, from: u64, to: u64) -> Result<Vec<u8>, Refusal> {
    let mut buf = Vec::with_capacity((to - from) as usize);
    file.seek(SeekFrom::Start(from))
        .and_then(|_| file.take(to - from).read_to_end(&mut buf))
        .map_err(|e| Refusal::Unreadable(e.to_string()))?;
    Ok(buf)
}

/// Terminal escape sequences and control characters (but line breaks and
/// tabs) dropped.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params… final byte in @–~; OSC: ESC ] … BEL or ESC \.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    _ => {
                        chars.next();
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn escapes_and_controls_are_dropped() {
        assert_eq!(
            clean("\u{1b}[1;31mred\u{1b}[0m\r\n\u{1b}]0;title\u{7}ok\u{0}\tx"),
            "red\nok\tx"
        );
    }

    #[test]
    fn a_followed_log_yields_what_was_appended_and_restarts_when_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("agent-1.log");
        std::fs::write(&log, "one\n").unwrap();
        let mut t = Tail::new(&log, tmp.path(), 0);
        assert_eq!(t.tail().unwrap(), ("one\n".into(), 4));
        assert_eq!(t.step().unwrap(), None);
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        // "é" cut in two by the writer: held back until complete.
        f.write_all(b"two \xc3").unwrap();
        assert_eq!(t.step().unwrap(), Some(Chunk::Append("two ".into())));
        f.write_all(b"\xa9\n").unwrap();
        assert_eq!(t.step().unwrap(), Some(Chunk::Append("é\n".into())));
        std::fs::remove_file(&log).unwrap();
        std::fs::write(&log, "fresh\n").unwrap();
        assert_eq!(t.step().unwrap(), Some(Chunk::Reset("fresh\n".into())));
    }

    #[test]
    fn the_tail_starts_at_a_line() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("a.log");
        let line = "x".repeat(99) + "\n";
        std::fs::write(&log, line.repeat(1000)).unwrap();
        let (text, end) = Tail::new(&log, tmp.path(), 0).tail().unwrap();
        assert_eq!(end, 100_000);
        assert!(text.len() <= TAIL_BYTES as usize && text.len() > 60_000);
        assert!(text.starts_with('x') && text.len() % 100 == 0);
    }

    #[test]
    fn a_fifo_or_a_device_as_the_log_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runtime");
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let fifo = root.join("logs/agent-1.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let dev = root.join("logs/agent-2.log");
        std::os::unix::fs::symlink("/dev/zero", &dev).unwrap();
        let Err(Refusal::Unreadable(why)) = open_inside(&fifo, &root) else {
            panic!("a FIFO log was opened");
        };
        assert!(why.contains("FIFO"), "{why}");
        let mut t = Tail::new(&fifo, &root, 0);
        assert!(matches!(t.tail(), Err(Refusal::Unreadable(_))));
        assert!(matches!(t.step(), Err(Refusal::Unreadable(_))));
        // A device outside the root is refused as outside, its kind unsaid.
        assert!(matches!(open_inside(&dev, &root), Err(Refusal::Outside(_))));
        let inside_dev = Path::new("/dev/zero");
        assert!(matches!(
            open_inside(inside_dev, Path::new("/dev")),
            Err(Refusal::Unreadable(w)) if w.contains("character device")
        ));
    }

    #[test]
    fn a_log_outside_the_root_or_linked_out_of_it_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runtime");
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let secret = tmp.path().join("secret.txt");
        std::fs::write(&secret, "s3cret").unwrap();
        assert!(matches!(
            open_inside(&secret, &root),
            Err(Refusal::Outside(_))
        ));
        let link = root.join("logs/agent-1.log");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert!(matches!(
            open_inside(&link, &root),
            Err(Refusal::Outside(_))
        ));
        let sneaky = root.join("logs/../../secret.txt");
        assert!(matches!(
            open_inside(&sneaky, &root),
            Err(Refusal::Outside(_))
        ));
        assert_eq!(
            open_inside(&root.join("logs/none.log"), &root).unwrap_err(),
            Refusal::Missing
        );
    }
}
