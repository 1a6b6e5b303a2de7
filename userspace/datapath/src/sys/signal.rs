//! Signals collected by the main thread instead of signal handlers: the signals are blocked in
//! every thread (the mask is inherited by threads spawned afterwards) and taken with
//! `sigtimedwait(2)`.

use std::io;
use std::time::Duration;

/// A set of blocked signals that the main thread waits for.
#[derive(Debug)]
pub struct SignalSet {
    set: libc::sigset_t,
}

impl SignalSet {
    /// Blocks `signals` in the calling thread (and every thread it spawns afterwards). Call it
    /// before any thread exists.
    ///
    /// # Errors
    /// If `pthread_sigmask` fails.
    pub fn block(signals: &[libc::c_int]) -> io::Result<Self> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset above.
        let mut set = unsafe { set.assume_init() };
        for &sig in signals {
            // SAFETY: `set` is an initialised sigset_t; `sig` is a valid signal number.
            unsafe { libc::sigaddset(&raw mut set, sig) };
        }
        // SAFETY: `set` is valid for reads; the old mask is not requested.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Self { set })
    }

    /// Waits up to `timeout` for one of the signals; `Ok(None)` on timeout or interruption.
    ///
    /// # Errors
    /// If `sigtimedwait` fails otherwise.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<libc::c_int>> {
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
        };
        // SAFETY: `self.set` and `ts` are valid for reads; no siginfo is requested.
        let sig =
            unsafe { libc::sigtimedwait(&raw const self.set, std::ptr::null_mut(), &raw const ts) };
        if sig >= 0 {
            return Ok(Some(sig));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => Ok(None),
            _ => Err(err),
        }
    }
}
