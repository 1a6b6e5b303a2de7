//! An `eventfd(2)` counter used as a wake-up: one thread [`notify`](EventFd::notify)s, the
//! sleeping one `poll()`s (or registers with its event loop) the descriptor and
//! [`drain`](EventFd::drain)s it when it wakes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd as _, OwnedFd, RawFd};

/// A non-blocking, close-on-exec eventfd.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A fresh eventfd with its counter at 0 (not readable).
    ///
    /// # Errors
    /// If `eventfd(2)` fails (out of descriptors).
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain eventfd(2); the result is checked and owned by OwnedFd below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Adds 1 to the counter, making the descriptor readable. A failure (the counter would
    /// overflow) only means it is readable already, so it is ignored.
    pub fn notify(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Blocks until the descriptor is readable (someone notified) or `timeout` has passed,
    /// whichever comes first; `true` if it is readable. The counter is left as it is.
    ///
    /// # Errors
    /// If `poll(2)` fails (other than by a signal, which counts as a spurious wake-up).
    pub fn wait(&self, timeout: std::time::Duration) -> io::Result<bool> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // Round up: a sub-millisecond remainder must not become a busy poll of 0 ms.
        let ms = if timeout > std::time::Duration::ZERO && ms == 0 {
            1
        } else {
            ms
        };
        let mut fd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, borrowed for the duration of the call, as the count says.
        let rc = unsafe { libc::poll(&raw mut fd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0 && fd.revents & libc::POLLIN != 0)
    }

    /// Resets the counter and returns what it was (0: nobody notified since the last drain).
    pub fn drain(&self) -> u64 {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our non-blocking eventfd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if usize::try_from(n) == Ok(buf.len()) {
            u64::from_ne_bytes(buf)
        } else {
            0
        }
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_notifications_add_up_and_drain_resets() {
        let e = EventFd::new().unwrap();
        assert_eq!(e.drain(), 0);
        e.notify();
        e.notify();
        assert_eq!(e.drain(), 2);
        assert_eq!(e.drain(), 0);
    }

    #[test]
    fn eventfd_wait_returns_on_notify_or_after_the_timeout() {
        use std::time::{Duration, Instant};
        let e = EventFd::new().unwrap();
        let start = Instant::now();
        assert!(!e.wait(Duration::from_millis(20)).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20));
        e.notify();
        assert!(e.wait(Duration::from_secs(5)).unwrap());
        assert_eq!(e.drain(), 1, "wait leaves the counter as it is");
        let waker = std::sync::Arc::new(e);
        let other = std::sync::Arc::clone(&waker);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            other.notify();
        });
        assert!(waker.wait(Duration::from_secs(5)).unwrap());
        t.join().unwrap();
    }
}
