//! Termination signals as events: block them before any thread starts, then
//! one thread takes them with `sigwait` and hands them on. Children started
//! through `std::process::Command` get an empty signal mask again.

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
