//! Signals as a file descriptor (`signalfd(2)`) instead of signal handlers: the signals are
//! blocked in the calling thread, and in every thread it spawns afterwards (the mask is
//! inherited), so the kernel keeps them pending for the process; the signalfd becomes readable
//! and [`SignalFd::read`] takes them one by one. An event loop polls the descriptor with its
//! sockets.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd as _, OwnedFd, RawFd};

/// A signal the daemon takes through a [`SignalFd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `SIGHUP`: the controlling terminal went away, or an operator's nudge.
    Hangup,
    /// `SIGINT`: Ctrl-C.
    Interrupt,
    /// `SIGTERM`: the polite stop (systemd, `kill`).
    Terminate,
}

impl Signal {
    /// Every signal of this enum.
    pub const ALL: [Self; 3] = [Self::Hangup, Self::Interrupt, Self::Terminate];

    /// The signal number.
    pub const fn number(self) -> libc::c_int {
        match self {
            Self::Hangup => libc::SIGHUP,
            Self::Interrupt => libc::SIGINT,
            Self::Terminate => libc::SIGTERM,
        }
    }

    /// `SIGHUP`, `SIGINT` or `SIGTERM`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hangup => "SIGHUP",
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// The signal of number `n`, if it is one of these.
    pub fn from_number(n: libc::c_int) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }
}

/// Blocked signals read from a non-blocking, close-on-exec signalfd (see the module docs).
///
/// The signals stay blocked when this is dropped: a stop signal arriving after the loop has
/// ended must not kill the process before it has flushed its stores and printed its report.
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks `signals` in the calling thread (and every thread it spawns afterwards) and
    /// opens a signalfd that reads them. Call it before any thread exists, so that no thread
    /// takes a signal with its default action.
    ///
    /// # Errors
    /// If `pthread_sigmask` or `signalfd` fails.
    pub fn new(signals: &[Signal]) -> io::Result<Self> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset above.
        let mut set = unsafe { set.assume_init() };
        for sig in signals {
            // SAFETY: `set` is an initialised sigset_t; the number is a valid signal.
            unsafe { libc::sigaddset(&raw mut set, sig.number()) };
        }
        // SAFETY: `set` is valid for reads; the old mask is not requested.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: -1 asks for a new descriptor; `set` is valid for reads during the call. The
        // result is checked and owned by OwnedFd below.
        let fd =
            unsafe { libc::signalfd(-1, &raw const set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Takes the next pending signal; `Ok(None)` when none is pending. Read until `None` after
    /// each readiness (the descriptor is edge-triggered in an event loop).
    ///
    /// # Errors
    /// If `read` fails otherwise.
    pub fn read(&self) -> io::Result<Option<Signal>> {
        loop {
            // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let len = size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `len` bytes into `info`, a live, exclusively borrowed
            // signalfd_siginfo of that size.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut info).cast(), len) };
            match usize::try_from(n) {
                Ok(n) if n == len => {
                    let number = libc::c_int::try_from(info.ssi_signo).unwrap_or(0);
                    // Only the signals of the mask can be read: any other is skipped.
                    if let Some(signal) = Signal::from_number(number) {
                        return Ok(Some(signal));
                    }
                }
                // A signalfd read returns whole records only.
                Ok(_) => return Ok(None),
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EAGAIN) => return Ok(None),
                        Some(libc::EINTR) => {}
                        _ => return Err(e),
                    }
                }
            }
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_and_names_round_trip() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_number(s.number()), Some(s));
            assert!(s.name().starts_with("SIG"));
        }
        assert_eq!(Signal::from_number(libc::SIGKILL), None);
    }

    #[test]
    fn signalfd_reads_a_signal_sent_to_this_thread() {
        // In a thread of its own: the mask stays on that thread and goes with it. SIGHUP is
        // sent to the thread (not the process), so no other thread of the test binary, where
        // it is not blocked, can take it.
        std::thread::spawn(|| {
            let fd = SignalFd::new(&[Signal::Hangup]).unwrap();
            assert_eq!(fd.read().unwrap(), None);
            // SAFETY: pthread_self names this live thread; SIGHUP is blocked in it.
            let rc = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
            assert_eq!(rc, 0);
            assert_eq!(fd.read().unwrap(), Some(Signal::Hangup));
            assert_eq!(fd.read().unwrap(), None);
        })
        .join()
        .unwrap();
    }
}
