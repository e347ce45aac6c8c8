//! Reading files that someone else may have made.
//!
//! An agent can replace its status file, its log or its prompt with a FIFO,
//! a device or a link to one, and a status file can name any path as its log.
//! Opening a FIFO for reading blocks until a writer comes; reading a device
//! may never end. So every file po reads that it did not just write itself is
//! opened here:
//!
//! * without blocking (`O_NONBLOCK`, and `O_NOCTTY`), then `fstat`ed on the
//!   open descriptor (no race with a rename), and refused unless it is a
//!   regular file, with what it is in the error;
//! * read up to a cap per kind of file, and refused past it (the cap is in
//!   the error), so an absurdly large file cannot take all memory.
//!
//! The errors are `std::io::Error`s, so callers keep naming the file and the
//! action as they do for any other I/O error (`Error::io("read", path)`):
//! `failed to read …/agent-3.status.json: it is a FIFO, not a regular file; …`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most read of one of po's JSON state files: a status file,
/// `orchestration.json`, a supervisor's spec file, the conflict cache. A
/// status file holds its task's text, and `orchestration.json` the whole
/// source, so this is well above [`SOURCE_MAX`] (JSON escaping grows text).
pub const STATE_MAX: u64 = 64 << 20;
/// The most read of a task source or prompt: a markdown file, a manifest,
/// a manifest's prompt file, a task's prompt (a GitHub issue holds at most
/// 64 KiB; this is a 100,000-item checklist).
pub const SOURCE_MAX: u64 = 8 << 20;
/// The most read of a small configuration or pointer file: `.worktreeinclude`,
/// a worktree's `.git` file, a ref, `.git/info/exclude`, a lock's holder.
pub const SMALL_MAX: u64 = 1 << 20;

/// Open `path` for reading without blocking, whatever it is. Reading from
/// the result may fail with `WouldBlock` (a FIFO); use it only to look at
/// the file before [`regular`] accepts it.
pub fn open_any(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Accept `file` only if it is a regular file, and make it block again (so
/// it reads like any file, also as a child's stdin).
pub fn regular(file: File) -> io::Result<File> {
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_regular(&kind));
    }
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(file)
}

/// Open `path` for reading: never blocks, refuses anything but a regular file.
pub fn open(path: &Path) -> io::Result<File> {
    regular(open_any(path)?)
}

/// Open `path` for appending (created if missing when `create`): a log that
/// someone may have replaced. Never blocks (a FIFO with no reader would
/// block an open for writing forever), and refuses anything but a regular
/// file.
pub fn append(path: &Path, create: bool) -> io::Result<File> {
    let opened = OpenOptions::new()
        .create(create)
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    match opened {
        Ok(f) => regular(f),
        // ENXIO: a FIFO nobody reads; say what it is.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => Err(not_regular(&m.file_type())),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// What a non-regular file is, for the error.
fn not_regular(kind: &std::fs::FileType) -> io::Error {
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {what}, not a regular file; po reads only regular files: replace or remove it"
        ),
    )
}

/// A size for humans: `64 MiB`, `512 KiB`, `100 bytes`.
fn size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Open `path` to read it only: never blocks, refuses anything but a
/// regular file, and says which version of the file is open (its metadata,
/// from the open file itself).
pub fn open_versioned(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let file = open_any(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    Ok((file, meta))
}

/// Read all of an open file, refusing more than `cap` bytes.
pub fn read_file(file: &mut File, cap: u64) -> io::Result<Vec<u8>> {
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_sized(file, hint, cap)
}

/// Read all of an open file of about `len` bytes, refusing more than `cap`.
pub fn read_sized(file: &mut File, len: u64, cap: u64) -> io::Result<Vec<u8>> {
    let hint = len.min(cap);
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it holds more than {}, the most po reads of such a file; it cannot be what po \
                 expects there: replace or remove it",
                size(cap)
            ),
        ));
    }
    Ok(bytes)
}

/// `std::fs::read`, but never blocking, only a regular file, at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    read_file(&mut open(path)?, cap)
}

/// `std::fs::read_to_string`, but never blocking, only a regular file, at
/// most `cap` bytes.
pub fn read_to_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read(path, cap)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn fifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    }

    #[test]
    fn a_regular_file_reads_whole_and_blocks_again() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.json");
        std::fs::write(&p, "{}\n").unwrap();
        assert_eq!(read(&p, 3).unwrap(), b"{}\n");
        assert_eq!(read_to_string(&p, 100).unwrap(), "{}\n");
        let f = open(&p).unwrap();
        use std::os::fd::AsRawFd;
        let flags = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK is cleared");
        // A link to a regular file is that file.
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read(&link, 10).unwrap(), b"{}\n");
    }

    #[test]
    fn a_fifo_is_refused_at_once_and_named_as_one() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("agent-1.status.json");
        fifo(&p);
        let link = tmp.path().join("agent-2.status.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let t = Instant::now();
        for path in [&p, &link] {
            let e = read(path, STATE_MAX).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string()
                    .contains("a FIFO (named pipe), not a regular file"),
                "{e}"
            );
        }
        assert!(t.elapsed() < Duration::from_secs(10), "it did not block");
    }

    #[test]
    fn devices_directories_and_sockets_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/null"), "a character device"),
            (tmp.path(), "a directory"),
        ] {
            let e = read(path, SMALL_MAX).unwrap_err();
            assert!(e.to_string().contains(what), "{}: {e}", path.display());
        }
        let sock = tmp.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        // A socket cannot even be opened; either way it is not read.
        assert!(read(&sock, SMALL_MAX).is_err());
        assert_eq!(
            read(&tmp.path().join("none"), 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn appending_never_blocks_and_only_to_a_regular_file() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("agent-1.log");
        assert!(append(&log, false).is_err(), "not created unless asked");
        writeln!(append(&log, true).unwrap(), "one").unwrap();
        writeln!(append(&log, false).unwrap(), "two").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        let f = tmp.path().join("agent-2.log");
        fifo(&f);
        for create in [true, false] {
            let e = append(&f, create).unwrap_err();
            assert!(e.to_string().contains("FIFO"), "{e}");
        }
        // With a reader on the FIFO the open succeeds, and is refused after.
        let _reader = open_any(&f).unwrap();
        assert!(append(&f, true).unwrap_err().to_string().contains("FIFO"));
    }

    #[test]
    fn more_than_the_cap_is_refused_with_the_cap_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("big");
        std::fs::write(&p, vec![b'x'; 2049]).unwrap();
        assert_eq!(read(&p, 2049).unwrap().len(), 2049);
        let e = read(&p, 2048).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("more than 2 KiB"), "{e}");
        assert_eq!(size(STATE_MAX), "64 MiB");
        assert_eq!(size(100), "100 bytes");
    }

    #[test]
    fn text_that_is_not_utf8_says_where() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("bad.md");
        std::fs::write(&p, b"ok\xff").unwrap();
        let e = read_to_string(&p, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("offset 2"), "{e}");
    }
}
