//! Termination signals as events: block them before any thread starts, then
//! one thread takes them with `sigwait` and hands them on.
//!
//! A child inherits the signal mask of the thread that starts it, and
//! `std::process::Command` passes it on as it is: a program po starts for
//! the user (an agent, a setup or validation command) goes through
//! [`unblocked`], or it would never see the SIGTERM that ends it cleanly.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

fn set() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGINT);
    s.add(Signal::SIGTERM);
    s.add(Signal::SIGHUP);
    s
}

/// Block SIGINT, SIGTERM and SIGHUP in this thread (and every thread it starts
/// afterwards), and call `on_signal` from a dedicated thread for each one.
pub fn forward<F>(mut on_signal: F)
where
    F: FnMut(Signal) + Send + 'static,
{
    let s = set();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&s), None);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                match s.wait() {
                    Ok(sig) => on_signal(sig),
                    Err(_) => continue,
                }
            }
        })
        .expect("start the signal thread");
}

/// Start `cmd` with no signal blocked, as a program expects to start.
pub fn unblocked(cmd: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec the child only calls sigemptyset and
    // sigprocmask, both async-signal-safe, on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(none.as_mut_ptr());
            if libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask a child starts with, from its own `/proc/self/status`.
    fn child_mask(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn a_program_started_unblocked_sees_termination_signals() {
        // A thread that blocks them, as po's own threads do.
        let (blocked, unblocked_mask) = std::thread::spawn(|| {
            let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set()), None);
            let grep = || {
                let mut c = Command::new("grep");
                c.args(["SigBlk", "/proc/self/status"]);
                c
            };
            (child_mask(&mut grep()), child_mask(unblocked(&mut grep())))
        })
        .join()
        .unwrap();
        assert_ne!(
            u64::from_str_radix(&blocked, 16).unwrap(),
            0,
            "the mask is inherited"
        );
        assert_eq!(u64::from_str_radix(&unblocked_mask, 16).unwrap(), 0);
    }
}
