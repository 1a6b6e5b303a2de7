//! The stop signals as a source of the event loop: SIGHUP, SIGINT and SIGTERM are blocked in
//! every thread and read from a signalfd ([`tandem_datapath::sys::signal`]). Each of them
//! stops the program cleanly (stores flushed and closed, the final report printed); SIGHUP
//! stops too — as its default action did, without the report — since Tandem has no
//! configuration reload yet.

use std::fmt::Debug;
use std::hash::Hash;
use std::io;
use std::os::fd::AsRawFd as _;

use tandem_datapath::sys::signal::{Signal, SignalFd};

use super::{EventLoop, Interest, Token};

/// SIGHUP, SIGINT and SIGTERM, blocked and pollable (see the module docs).
#[derive(Debug)]
pub struct StopSignals {
    fd: SignalFd,
}

impl StopSignals {
    /// Blocks the stop signals in the calling thread and the threads it spawns afterwards:
    /// call it first thing, before any thread exists.
    ///
    /// # Errors
    /// If the signals cannot be blocked or the signalfd cannot be opened.
    pub fn block() -> io::Result<Self> {
        SignalFd::new(&Signal::ALL).map(|fd| Self { fd })
    }

    /// Registers the signalfd with `ev` under `key`.
    ///
    /// # Errors
    /// If the kernel refuses the registration.
    pub fn register<K: Copy + Eq + Hash + Debug>(
        &self,
        ev: &mut EventLoop<K>,
        key: K,
    ) -> io::Result<Token> {
        ev.register_fd(self.fd.as_raw_fd(), Interest::READABLE, key)
    }

    /// Takes every pending signal; the first one, logged, if any was pending (each means
    /// "stop").
    ///
    /// # Errors
    /// If reading the signalfd fails.
    pub fn take(&self) -> io::Result<Option<Signal>> {
        let mut first = None;
        while let Some(signal) = self.fd.read()? {
            first.get_or_insert(signal);
        }
        if let Some(signal) = first {
            tracing::info!("got {}, stopping", signal.name());
        }
        Ok(first)
    }
}
