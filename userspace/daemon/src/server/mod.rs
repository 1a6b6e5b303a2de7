//! `tandem run`: the DHCPv6 server: the engine (`tandem-proto`) over the sharded,
//! memory-mapped lease store ([`shard`]), on the datapath `[datapath] mode` (or `--datapath`)
//! picks.
//!
//! * [`setup`]: the configuration, state directory and server DUID every datapath starts from.
//! * [`shard`]: the lease database sharded by client DUID (one engine and store per shard).
//! * [`socket_loop`]: the UDP-socket datapath, served from the main thread.
//! * [`xdp_loop`]: the XDP/AF_XDP datapath: program, per-queue workers, the main thread's loop.
//! * [`worker`]: one XDP worker's handler: its shards, the frame-to-reply path, hand-off.
//! * [`mailbox`]: the parcels and inboxes the XDP workers hand frames over with.
//! * [`sync_queues`]: the XDP workers' binding-sync queues: committed changes to the failover
//!   plane, the plane's requests on the shards to their owning workers and back (RFC 8156 §7).

pub mod mailbox;
pub mod setup;
pub mod shard;
pub mod socket_loop;
pub mod sync_queues;
pub mod worker;
pub mod xdp_loop;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tandem_config::DatapathMode;

use self::setup::Setup;
use crate::event_loop::StopSignals;

/// What `tandem run` was asked to do (see the command's help in [`crate::cli`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// State directory; `None`: `[server] state-dir` of the configuration.
    pub state_dir: Option<PathBuf>,
    /// Lease store capacity in bindings (per shard), fixed when a lease file is created.
    pub capacity: u64,
    /// Time between msyncs of the lease store.
    pub flush_interval: Duration,
    /// Overrides `[datapath] mode`.
    pub datapath: Option<DatapathMode>,
    /// Overrides `[datapath] cores`.
    pub cores: Option<Vec<usize>>,
}

/// Runs `tandem run` (see the command's help in [`crate::cli`]).
///
/// # Errors
/// Setup errors (state directory, socket or XDP, store, server DUID) and fatal I/O errors.
pub fn run(opts: &RunOptions) -> anyhow::Result<ExitCode> {
    // Blocked before any thread exists: every thread inherits the mask, and the main thread's
    // event loop reads them from a signalfd.
    let signals = StopSignals::block().context("blocking SIGHUP/SIGINT/SIGTERM")?;
    let Some(setup) = Setup::load(opts)? else {
        return Ok(ExitCode::FAILURE);
    };
    match setup.config.datapath.mode {
        DatapathMode::Socket => socket_loop::run(setup, &signals),
        DatapathMode::Xdp => xdp_loop::run(setup, &signals),
    }
}
