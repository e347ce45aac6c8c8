//! Reading and writing status files without torn reads or lost updates.
//!
//! * Writes go to a temporary file in the same directory, are `fsync`ed and
//!   renamed over the target (invariant 1).
//! * Every read-modify-write holds an exclusive `flock(2)` on a sidecar
//!   `<file>.lock` that is never renamed (invariant 2). `std::fs::File::lock`
//!   is the same `flock(2)`, so `flock(1)` in shell scripts and fs2-based tools
//!   interoperate.
//! * Whoever runs a task holds `<agent>.live.lock` for the run's lifetime; the
//!   kernel drops it when that process dies (invariant 4).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::schema::AgentStatus;
use crate::error::{Error, Result};
use crate::fsx;

/// An exclusive `flock` that is released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// A `flock` belongs to the open file description, which a process forked
/// at that moment (by any thread: a test harness's, a reaper's) shares until
/// its `exec` closes the descriptor. Closing ours alone would leave the lock
/// held for that instant; unlocking releases it for every sharer at once.
impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("open lock file", path))
}

/// Block until the exclusive lock on `path` (created if missing) is ours.
pub fn lock_exclusive(path: &Path) -> Result<FileLock> {
    let file = open_lock_file(path)?;
    file.lock().map_err(Error::io("lock", path))?;
    Ok(FileLock {
        file,
        path: path.to_path_buf(),
    })
}

/// Take the exclusive lock on `path` if nobody holds it.
pub fn try_lock_exclusive(path: &Path) -> Result<Option<FileLock>> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(FileLock {
            file,
            path: path.to_path_buf(),
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path)(e)),
    }
}

/// The sidecar that serialises read-modify-write of `file`.
pub fn lock_path(file: &Path) -> PathBuf {
    sibling(file, ".lock")
}

/// The lock held by whoever runs the task described by `status_file`.
pub fn liveness_path(status_file: &Path) -> PathBuf {
    let name = file_name(status_file);
    let stem = name.strip_suffix(".status.json").unwrap_or(&name);
    status_file.with_file_name(format!("{stem}.live.lock"))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    file.with_file_name(format!("{}{suffix}", file_name(file)))
}

/// Take the liveness lock of a task: `None` if a live process already runs it.
///
/// A reader's probe ([`is_live`]) holds a free lock for an instant; a runner
/// that tries at that instant retries for a moment rather than mistaking the
/// probe for another runner.
pub fn hold_liveness(status_file: &Path) -> Result<Option<FileLock>> {
    let path = liveness_path(status_file);
    const TRIES: u32 = 20;
    for attempt in 1..=TRIES {
        if let Some(lock) = try_lock_exclusive(&path)? {
            return Ok(Some(lock));
        }
        if attempt < TRIES {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    Ok(None)
}

/// Whether some live process holds the task's liveness lock.
///
/// The lock file is opened read-only (never created) and a *shared* lock is
/// tried and dropped at once: it fails exactly while a runner holds its
/// exclusive lock, and two readers probing a free lock never see each other.
pub fn is_live(status_file: &Path) -> bool {
    // Without blocking: someone may have put a FIFO there.
    let Ok(file) = fsx::open_any(&liveness_path(status_file)) else {
        return false;
    };
    match file.try_lock_shared() {
        // Released at once, not at close: a process forked meanwhile shares
        // the descriptor until its exec, and would keep a runner out.
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(e) => matches!(e, TryLockError::WouldBlock),
    }
}

/// A temporary file beside `path`, unique to this process and call.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        file_name(path),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        f.write_all(bytes).map_err(Error::io("write", &tmp))?;
        f.sync_all().map_err(Error::io("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialise `value` as pretty JSON with a trailing newline and write it atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::system(format!("serialise {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read and parse a JSON file, naming the file and the problem on failure.
///
/// Anyone who can write the runtime directory can put a FIFO, a device or
/// a huge file where a status file should be: it is opened without blocking
/// and refused unless it is a regular file of at most [`fsx::STATE_MAX`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fsx::read(path, fsx::STATE_MAX).map_err(Error::io("read", path))?;
    parse_json(path, &bytes)
}

/// Parse the bytes of a JSON file read from `path`.
pub fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadStatus {
        path: path.to_path_buf(),
        detail: format!("{e}; fix or remove the file (other tasks are unaffected)"),
    })
}

pub fn read_status(path: &Path) -> Result<AgentStatus> {
    read_json(path)
}

/// Write a status file under its lock (creating or replacing it whole).
pub fn write_status(path: &Path, status: &AgentStatus) -> Result<()> {
    let _lock = lock_exclusive(&lock_path(path))?;
    write_json(path, status)
}

/// Read-modify-write a status file under its lock; `last_update` is set to now.
/// If `f` fails nothing is written.
pub fn update_status<F>(path: &Path, f: F) -> Result<AgentStatus>
where
    F: FnOnce(&mut AgentStatus) -> Result<()>,
{
    let _lock = lock_exclusive(&lock_path(path))?;
    let mut status = read_status(path)?;
    f(&mut status)?;
    status.last_update = Some(crate::timefmt::now());
    write_json(path, &status)?;
    Ok(status)
}

/// From how many files [`write_statuses`] flushes the whole file system
/// once rather than each file: `syncfs` also waits for every other
/// process's unwritten data there, which a few files should not.
pub const SYNCFS_FROM: usize = 64;

/// Write many status files of one directory, each atomically (an existing
/// one under its lock), with one flush of the file system instead of one `fsync` per file
/// (on Linux, from [`SYNCFS_FROM`] files on): every temporary file is
/// written first, then made durable at once (`syncfs(2)`; for fewer files,
/// or elsewhere, an `fsync` each), then each is renamed into place: a new
/// one by a rename that replaces nothing, an existing one under its lock
/// once `may_replace` accepted it, and the directory is `fsync`ed. A crash leaves each file whole, old or new; on an
/// error the temporary files that were not renamed go.
pub fn write_statuses<F>(dir: &Path, files: &[(PathBuf, AgentStatus)], may_replace: F) -> Result<()>
where
    F: Fn(&Path, &AgentStatus) -> Result<()>,
{
    let mut tmps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let mut renamed = 0;
    let result = (|| {
        for (path, status) in files {
            let tmp = temp_path(path);
            let mut bytes = serde_json::to_vec_pretty(status)
                .map_err(|e| Error::system(format!("serialise {}: {e}", path.display())))?;
            bytes.push(b'\n');
            let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
            tmps.push(tmp.clone());
            f.write_all(&bytes).map_err(Error::io("write", &tmp))?;
            if !cfg!(target_os = "linux") || files.len() < SYNCFS_FROM {
                f.sync_all().map_err(Error::io("fsync", &tmp))?;
            }
        }
        #[cfg(target_os = "linux")]
        if files.len() >= SYNCFS_FROM {
            use std::os::fd::AsRawFd;
            let d = File::open(dir).map_err(Error::io("open", dir))?;
            nix::unistd::syncfs(d.as_raw_fd())
                .map_err(|e| Error::io("sync the file system of", dir)(e.into()))?;
        }
        for ((path, _), tmp) in files.iter().zip(&tmps) {
            // A file that is not there yet is replacing nothing: a rename
            // that refuses to replace makes it whole without its lock (and
            // so without a second inode); one made meanwhile is replaced
            // below, under its lock, as any other.
            if !path.exists() && rename_new(tmp, path)? {
                renamed += 1;
                continue;
            }
            let _lock = lock_exclusive(&lock_path(path))?;
            match read_status(path) {
                Ok(old) => may_replace(path, &old)?,
                Err(_) if !path.exists() => {}
                Err(e) => return Err(e),
            }
            fs::rename(tmp, path).map_err(Error::io("rename into place", path))?;
            renamed += 1;
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("fsync", dir))
    })();
    for tmp in &tmps[renamed..] {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Rename `tmp` to `path` only if nothing is at `path`: `true` when done,
/// `false` when something is there, or the file system cannot say
/// (`renameat2` with `RENAME_NOREPLACE` missing).
fn rename_new(tmp: &Path, path: &Path) -> Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{RenameFlags, renameat2};
        match renameat2(None, tmp, None, path, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST | Errno::EINVAL | Errno::ENOSYS) => Ok(false),
            Err(e) => Err(Error::io("rename into place", path)(e.into())),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (tmp, path);
        Ok(false)
    }
}

/// Read-modify-write any JSON file as an untyped value under its lock.
pub fn update_json<F>(path: &Path, f: F) -> Result<serde_json::Value>
where
    F: FnOnce(&mut serde_json::Value) -> Result<()>,
{
    let _lock = lock_exclusive(&lock_path(path))?;
    let mut value: serde_json::Value = read_json(path)?;
    f(&mut value)?;
    write_json(path, &value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fork a child that shares every descriptor of this process for
    /// `millis`, as any child does between its fork and its exec, then exits
    /// without an exec; its pid.
    fn fork_sharing_descriptors(millis: i64) -> libc::pid_t {
        // SAFETY: the child calls only async-signal-safe functions
        // (nanosleep, _exit) before it exits.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let t = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: millis * 1_000_000,
                };
                libc::nanosleep(&t, std::ptr::null_mut());
                libc::_exit(0);
            }
            pid
        }
    }

    fn reap(pid: libc::pid_t) {
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }

    #[test]
    fn a_dropped_lock_is_free_while_a_forked_child_still_shares_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("agent-1.status.json");
        let guard = hold_liveness(&status).unwrap().unwrap();
        let child = fork_sharing_descriptors(500);
        drop(guard);
        let free = !is_live(&status);
        let again = hold_liveness(&status).unwrap();
        reap(child);
        assert!(free, "the child's copy of the descriptor kept the lock");
        assert!(again.is_some(), "a new runner was kept out");
    }

    #[test]
    fn sidecars_sit_beside_the_status_file() {
        let p = Path::new("/r/parallel/7/agent-3.status.json");
        assert_eq!(
            lock_path(p),
            Path::new("/r/parallel/7/agent-3.status.json.lock")
        );
        assert_eq!(
            liveness_path(p),
            Path::new("/r/parallel/7/agent-3.live.lock")
        );
    }

    #[test]
    fn many_statuses_are_written_whole_and_a_refused_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: u32| dir.path().join(format!("agent-{n}.status.json"));
        let mut running = AgentStatus::new("agent-2", "1");
        running.status = crate::protocol::State::InProgress;
        write_status(&path(2), &running).unwrap();
        let files: Vec<(PathBuf, AgentStatus)> = (1..=3)
            .map(|n| (path(n), AgentStatus::new(format!("agent-{n}"), "1")))
            .collect();
        let refuse_running = |_: &Path, old: &AgentStatus| match old.status {
            crate::protocol::State::Pending => Ok(()),
            _ => Err(Error::usage("it runs")),
        };
        assert!(write_statuses(dir.path(), &files, refuse_running).is_err());
        assert_eq!(read_status(&path(1)).unwrap().agent_id, "agent-1");
        assert_eq!(
            read_status(&path(2)).unwrap().status,
            crate::protocol::State::InProgress,
            "a refused file is left as it was"
        );
        assert!(!path(3).exists(), "nothing after the refusal is written");
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        // Once the task is pending again, all three are written.
        write_status(&path(2), &AgentStatus::new("agent-2", "1")).unwrap();
        write_statuses(dir.path(), &files, refuse_running).unwrap();
        for n in 1..=3 {
            assert_eq!(
                read_status(&path(n)).unwrap().agent_id,
                format!("agent-{n}")
            );
        }
    }

    /// From [`SYNCFS_FROM`] files on, one flush of the file system makes
    /// them durable: every file is there, whole, and no temporary is left.
    #[test]
    fn a_batch_past_the_syncfs_threshold_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let n = SYNCFS_FROM + 36;
        let files: Vec<(PathBuf, AgentStatus)> = (1..=n)
            .map(|i| {
                (
                    dir.path().join(format!("agent-{i}.status.json")),
                    AgentStatus::new(format!("agent-{i}"), "1"),
                )
            })
            .collect();
        write_statuses(dir.path(), &files, |_, _| Ok(())).unwrap();
        for (path, status) in &files {
            assert_eq!(read_status(path).unwrap().agent_id, status.agent_id);
        }
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
        assert_eq!(
            names.iter().filter(|n| n.ends_with(".status.json")).count(),
            n
        );
        // New files replace nothing: made without their locks' inodes.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(!names.iter().any(|n| n.ends_with(".lock")), "{names:?}");
    }

    #[test]
    fn failed_update_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-1.status.json");
        write_status(&p, &AgentStatus::new("agent-1", "1")).unwrap();
        let before = fs::read(&p).unwrap();
        let r = update_status(&p, |s| {
            s.title = "changed".into();
            Err(Error::usage("no"))
        });
        assert!(r.is_err());
        assert_eq!(before, fs::read(&p).unwrap());
    }

    #[test]
    fn a_fifo_status_file_is_refused_at_once_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-1.status.json");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_status(&p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("FIFO"), "{msg}");
        assert_eq!(e.exit_code(), crate::exit::SYSTEM);
        // A FIFO where the liveness lock should be is not a live runner, and
        // probing it does not block either.
        nix::unistd::mkfifo(&liveness_path(&p), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!is_live(&p));
    }

    #[test]
    fn numbers_survive_any_number_of_rewrites() {
        // Found by fuzzing: without exact float parsing a number drifts by
        // one unit in the last place on every rewrite.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-1.status.json");
        let mut s = AgentStatus::new("agent-1", "1");
        s.metrics.cost_usd = Some(0.1 + 0.2);
        s.extra
            .insert("big".into(), serde_json::json!(1.111111111111111e120));
        write_status(&p, &s).unwrap();
        let first = fs::read(&p).unwrap();
        for _ in 0..3 {
            let again = read_status(&p).unwrap();
            write_status(&p, &again).unwrap();
        }
        assert_eq!(
            String::from_utf8(first).unwrap(),
            fs::read_to_string(&p).unwrap()
        );
    }

    #[test]
    fn liveness_is_exclusive_within_a_process_too() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent-1.status.json");
        assert!(!is_live(&p));
        let held = hold_liveness(&p).unwrap().expect("free lock");
        assert!(is_live(&p));
        assert!(hold_liveness(&p).unwrap().is_none());
        drop(held);
        assert!(!is_live(&p));
    }
}
