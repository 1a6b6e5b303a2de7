//! The main thread's event loop: one [`mio::Poll`] for every I/O source and a set of
//! [`Timers`] whose earliest deadline is the poll timeout. No thread sleeps on a fixed tick:
//! the loop wakes when a source is ready or a deadline is due, and nothing else.
//!
//! Sources and timers are named by a key of the owner's choosing (`K`, usually a small
//! `Copy` enum: `Signals`, `Control(..)`, `Housekeeping`, …). Registering a source gives it a
//! token from this loop's registry, which maps the token back to its key; a timer is just a
//! key with a deadline. [`EventLoop::turn`] waits once and reports what happened as
//! [`Wake`]s, I/O first, then the due timers, for the owner to `match` on:
//!
//! ```text
//! loop {
//!     event_loop.turn(&mut wakes)?;
//!     for wake in wakes.drain(..) {
//!         match wake.key() {
//!             Key::Signals => if signals.take()?.is_some() { break 'serve },
//!             Key::Housekeeping => { …; event_loop.set_timer(Key::Housekeeping, next) }
//!             Key::Control(k) => control.handle(wake.map(|_| k), &mut event_loop, &mut target),
//!             …
//!         }
//!     }
//! }
//! ```
//!
//! mio is edge-triggered: after a `Ready`, read (or accept, or write) until the source says
//! `WouldBlock`, or keep a timer due now to come back to it. A sans-IO state machine with a
//! `poll_timeout()` (the RFC 8156 endpoint) maps onto one source per socket plus one timer key
//! set to its next deadline after every call.

pub mod signals;
pub mod timers;

use std::fmt::Debug;
use std::hash::Hash;
use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Events, Poll};
pub use mio::{Interest, Token};

pub use self::signals::StopSignals;
pub use self::timers::Timers;

/// Events taken from the kernel per [`EventLoop::turn`] (more stay pending for the next one).
const EVENTS_PER_TURN: usize = 256;

/// What a source reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Readable (or a listener with a connection waiting).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// The peer closed its side, or this side was shut down (read or write).
    pub closed: bool,
    /// An error is pending on the source.
    pub error: bool,
}

/// What woke the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake<K> {
    /// The source registered with `key` is ready.
    Ready {
        /// The source's key.
        key: K,
        /// How.
        readiness: Readiness,
    },
    /// The timer `key` is due (and no longer set).
    Timer(K),
}

impl<K: Copy> Wake<K> {
    /// The key of the source or timer.
    pub fn key(&self) -> K {
        match *self {
            Self::Ready { key, .. } | Self::Timer(key) => key,
        }
    }

    /// The same wake under another key (e.g. the part of the owner's key a service knows).
    pub fn map<J>(self, f: impl FnOnce(K) -> J) -> Wake<J> {
        match self {
            Self::Ready { key, readiness } => Wake::Ready {
                key: f(key),
                readiness,
            },
            Self::Timer(key) => Wake::Timer(f(key)),
        }
    }
}

/// The event loop (see the module docs).
#[derive(Debug)]
pub struct EventLoop<K> {
    poll: Poll,
    events: Events,
    /// Token number → the key its source was registered with (`None`: free).
    sources: Vec<Option<K>>,
    /// Free token numbers, reused last-freed first.
    free: Vec<usize>,
    timers: Timers<K>,
}

impl<K: Copy + Eq + Hash + Debug> EventLoop<K> {
    /// A loop without sources or timers.
    ///
    /// # Errors
    /// If the epoll instance cannot be created.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_PER_TURN),
            sources: Vec::new(),
            free: Vec::new(),
            timers: Timers::new(),
        })
    }

    /// Registers `source` for `interest` under `key`; the token to reregister or deregister it
    /// with.
    ///
    /// # Errors
    /// If the kernel refuses (e.g. the source is registered already).
    pub fn register<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
        key: K,
    ) -> io::Result<Token> {
        let token = self.allocate(key);
        if let Err(e) = self.poll.registry().register(source, token, interest) {
            self.release(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Registers a raw file descriptor (an eventfd, a signalfd, a socket owned elsewhere); it
    /// must stay open until it is deregistered.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn register_fd(&mut self, fd: RawFd, interest: Interest, key: K) -> io::Result<Token> {
        self.register(&mut SourceFd(&fd), interest, key)
    }

    /// Changes the interest of a registered source.
    ///
    /// # Errors
    /// If the kernel refuses (e.g. the source is not registered).
    pub fn reregister<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.poll.registry().reregister(source, token, interest)
    }

    /// Deregisters `source` and frees its token. Events already taken for it may still come
    /// out of the current [`turn`](Self::turn)'s batch: keys should not be reused for
    /// another source right away.
    ///
    /// # Errors
    /// If the kernel refuses (e.g. the source is not registered); the token is freed anyway.
    pub fn deregister<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
    ) -> io::Result<()> {
        self.release(token);
        self.poll.registry().deregister(source)
    }

    /// Deregisters a raw file descriptor registered with [`register_fd`](Self::register_fd).
    ///
    /// # Errors
    /// As [`deregister`](Self::deregister).
    pub fn deregister_fd(&mut self, fd: RawFd, token: Token) -> io::Result<()> {
        self.deregister(&mut SourceFd(&fd), token)
    }

    /// Sets the timer `key` to fire at `at` (moving it if it was set).
    pub fn set_timer(&mut self, key: K, at: Instant) {
        self.timers.set(key, at);
    }

    /// Cancels the timer `key`; its deadline, if it was set.
    pub fn cancel_timer(&mut self, key: K) -> Option<Instant> {
        self.timers.cancel(key)
    }

    /// The deadline of timer `key`, if it is set.
    pub fn timer(&self, key: K) -> Option<Instant> {
        self.timers.deadline(key)
    }

    /// The number of registered sources.
    pub fn sources(&self) -> usize {
        self.sources.iter().flatten().count()
    }

    /// Waits until a source is ready or the earliest timer is due (forever if there is
    /// neither), then appends to `out` a [`Wake::Ready`] per ready source and a
    /// [`Wake::Timer`] per due timer. A signal interrupting the wait is a turn without wakes.
    ///
    /// # Errors
    /// If `epoll_wait` fails otherwise.
    pub fn turn(&mut self, out: &mut Vec<Wake<K>>) -> io::Result<()> {
        let timeout = self
            .timers
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in &self.events {
            let Some(&Some(key)) = self.sources.get(event.token().0) else {
                continue;
            };
            out.push(Wake::Ready {
                key,
                readiness: Readiness {
                    readable: event.is_readable(),
                    writable: event.is_writable(),
                    closed: event.is_read_closed() || event.is_write_closed(),
                    error: event.is_error(),
                },
            });
        }
        let now = Instant::now();
        while let Some(key) = self.timers.pop_due(now) {
            out.push(Wake::Timer(key));
        }
        Ok(())
    }

    fn allocate(&mut self, key: K) -> Token {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.sources.push(None);
                self.sources.len() - 1
            }
        };
        if let Some(slot) = self.sources.get_mut(index) {
            *slot = Some(key);
        }
        Token(index)
    }

    fn release(&mut self, token: Token) {
        if let Some(slot) = self.sources.get_mut(token.0)
            && slot.take().is_some()
        {
            self.free.push(token.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use mio::net::UnixStream;

    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Key {
        A,
        B,
        Tick,
        Later,
    }

    fn ready(wakes: &[Wake<Key>], key: Key) -> Option<Readiness> {
        wakes.iter().find_map(|w| match *w {
            Wake::Ready { key: k, readiness } if k == key => Some(readiness),
            _ => None,
        })
    }

    #[test]
    fn event_loop_reports_ready_sources_by_key() {
        let mut ev = EventLoop::new().unwrap();
        let (mut a, mut a_peer) = UnixStream::pair().unwrap();
        let (mut b, _b_peer) = UnixStream::pair().unwrap();
        ev.register(&mut a, Interest::READABLE, Key::A).unwrap();
        ev.register(&mut b, Interest::READABLE, Key::B).unwrap();
        assert_eq!(ev.sources(), 2);
        a_peer.write_all(b"x").unwrap();
        ev.set_timer(Key::Later, Instant::now() + Duration::from_secs(60));
        let mut wakes = Vec::new();
        ev.turn(&mut wakes).unwrap();
        assert!(
            ready(&wakes, Key::A).is_some_and(|r| r.readable),
            "{wakes:?}"
        );
        assert_eq!(ready(&wakes, Key::B), None, "{wakes:?}");
        let mut buf = [0u8; 4];
        assert_eq!(a.read(&mut buf).unwrap(), 1);
        // The peer hangs up: readable and closed.
        drop(a_peer);
        wakes.clear();
        ev.turn(&mut wakes).unwrap();
        assert!(ready(&wakes, Key::A).is_some_and(|r| r.closed), "{wakes:?}");
    }

    #[test]
    fn event_loop_wakes_for_the_earliest_timer_only_when_due() {
        let mut ev = EventLoop::<Key>::new().unwrap();
        let start = Instant::now();
        ev.set_timer(Key::Tick, start + Duration::from_millis(30));
        ev.set_timer(Key::Later, start + Duration::from_secs(60));
        let mut wakes = Vec::new();
        while wakes.is_empty() {
            ev.turn(&mut wakes).unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(wakes, [Wake::Timer(Key::Tick)]);
        assert_eq!(ev.timer(Key::Tick), None, "a fired timer is no longer set");
        assert_eq!(
            ev.cancel_timer(Key::Later),
            Some(start + Duration::from_secs(60))
        );
    }

    #[test]
    fn event_loop_deregistered_source_token_reused_and_silent() {
        let mut ev = EventLoop::new().unwrap();
        let (mut a, mut a_peer) = UnixStream::pair().unwrap();
        let token = ev.register(&mut a, Interest::READABLE, Key::A).unwrap();
        ev.deregister(&mut a, token).unwrap();
        assert_eq!(ev.sources(), 0);
        a_peer.write_all(b"x").unwrap();
        let (mut b, mut b_peer) = UnixStream::pair().unwrap();
        assert_eq!(
            ev.register(&mut b, Interest::READABLE, Key::B).unwrap(),
            token
        );
        b_peer.write_all(b"y").unwrap();
        let mut wakes = Vec::new();
        ev.turn(&mut wakes).unwrap();
        assert_eq!(ready(&wakes, Key::A), None, "{wakes:?}");
        assert!(ready(&wakes, Key::B).is_some(), "{wakes:?}");
        // Registering twice is refused, and the refused registration takes no token.
        assert!(ev.register(&mut b, Interest::READABLE, Key::A).is_err());
        assert_eq!(ev.sources(), 1);
    }
}
