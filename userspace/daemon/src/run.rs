//! `tandem run`: the DHCPv6 server: the engine (`tandem-proto`) over the sharded,
//! memory-mapped lease store ([`crate::shard`]), on the datapath `[datapath] mode` (or
//! `--datapath`) picks: the UDP socket ([`tandem_datapath::udp`], here) or XDP/AF_XDP workers
//! ([`crate::xdp_run`]).
//!
//! Socket mode runs one thread: wait up to [`TICK`] for datagrams, answer each through the
//! shard of its client (the engine commits leases to the store before it returns a Reply,
//! RFC 8415 §18.3), then housekeeping: incremental expiry ([`Engine::reclaim`]) and, every
//! `--flush-interval`, an msync of the stores. It serves every shard the state directory has
//! (1 unless `[datapath] shards` or an earlier XDP run made more). SIGINT/SIGTERM stop the
//! loop; the stores are flushed and closed and the counters printed.
//!
//! [`Engine::reclaim`]: tandem_proto::Engine::reclaim

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tandem_config::{Config, DatapathMode};
use tandem_datapath::udp::{Received, SERVER_PORT, ServerSocket, SocketCounters};
use tandem_lease::{Binding, BindingStatus, ClientKey, FailoverTime, LeaseKind, LeaseStore};
use tandem_proto::{Counters, Outcome, RxMeta};
use tandem_store::StoreOptions;

use crate::cli::{Cores, RunArgs, SignalSet, emit_line, unix_now};
use crate::control::{ControlServer, SocketModeTarget};
use crate::counters::engine_fields;
use crate::entropy::XorShift64Star;
use crate::shard::{ShardSet, resolve_shards};

/// Longest wait for a datagram before housekeeping (and the signal check) runs.
const TICK: Duration = Duration::from_millis(200);
/// Bindings [`tandem_proto::Engine::reclaim`] may visit per tick and shard.
pub(crate) const RECLAIM_BUDGET: usize = 1024;
/// Datagrams handled per wake-up before housekeeping gets a turn.
const BURST: usize = 256;
/// Receive buffer: the largest UDP payload.
const RX_BUF: usize = 65_535;
/// Reply buffer; a reply that does not fit is dropped and counted by the engine.
const TX_BUF: usize = 16_384;

/// What `tandem run` serves with, once the configuration, the command line and the state
/// directory are read.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The configuration, with `--datapath` / `--cores` applied.
    pub(crate) config: Config,
    /// The state directory (exists and is writable).
    pub(crate) state_dir: PathBuf,
    /// The server DUID.
    pub(crate) duid: Vec<u8>,
    /// Options of every shard's store.
    pub(crate) store: StoreOptions,
}

/// Runs `tandem run` (see the command's help in [`crate::cli`]).
///
/// # Errors
/// Setup errors (state directory, socket or XDP, store, server DUID) and fatal I/O errors.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    // Blocked before any thread exists: every thread inherits the mask, and the main thread
    // collects them with sigtimedwait.
    let signals =
        SignalSet::block(&[libc::SIGINT, libc::SIGTERM]).context("blocking SIGINT/SIGTERM")?;
    let Some(mut config) =
        crate::check::load_or_report(&args.config, &mut io::stderr()).context("writing errors")?
    else {
        return Ok(ExitCode::FAILURE);
    };
    if let Some(mode) = args.datapath {
        config.datapath.mode = mode;
    }
    if let Some(Cores(list)) = &args.cores {
        config.datapath.cores = Some(list.clone());
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| config.server.state_dir.clone());
    prepare_state_dir(&state_dir)?;
    // The MAC of the first interface makes a DUID-LLT; a non-Ethernet interface (or none)
    // gets a DUID-UUID instead.
    let mac = config
        .interfaces
        .first()
        .and_then(|iface| tandem_datapath::iface::interface_mac(iface).ok());
    let duid = tandem_store::server_duid::load_or_create(&state_dir, mac, unix_now())
        .with_context(|| format!("loading the server DUID in {}", state_dir.display()))?;
    let setup = Setup {
        config,
        state_dir,
        duid,
        store: StoreOptions {
            capacity: args.capacity,
            flush_interval: args.flush_interval,
        },
    };
    match setup.config.datapath.mode {
        DatapathMode::Socket => run_socket(setup, &signals),
        DatapathMode::Xdp => crate::xdp_run::run(setup, &signals),
    }
}

/// The socket datapath (see the module docs).
fn run_socket(setup: Setup, signals: &SignalSet) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        state_dir,
        duid,
        store,
    } = setup;
    let mut socket = ServerSocket::open(&config.interfaces, SERVER_PORT)?;
    let count = resolve_shards(&state_dir, config.datapath.shards, None)?;
    let mut shards = ShardSet::open(&state_dir, &config, &duid, count, store)?;
    let mut rng = XorShift64Star::from_os().context("seeding the random generator")?;
    tracing::info!(
        "serving {} subnets on {} (socket datapath); state dir {}, {count} shard(s) of capacity \
         {}, {} bindings stored, server DUID {}",
        config.subnets.len(),
        config.interfaces.join(", "),
        state_dir.display(),
        store.capacity,
        shards.stored(),
        hex(&duid),
    );
    let mut control = ControlServer::bind(&state_dir).context("opening the control socket")?;
    emit_line(&format!("READY mode=socket shards={count}"))?;

    let mut rx = vec![0u8; RX_BUF];
    let mut tx = vec![0u8; TX_BUF];
    loop {
        if let Some(sig) = signals
            .wait(Duration::ZERO)
            .context("waiting for signals")?
        {
            tracing::info!("got signal {sig}, stopping");
            break;
        }
        if socket
            .wait_readable(TICK)
            .context("waiting for datagrams")?
        {
            for _ in 0..BURST {
                let datagram = match socket.recv(&mut rx)? {
                    Received::Datagram(d) => d,
                    Received::Dropped => continue,
                    Received::WouldBlock => break,
                };
                let Some(interface) = socket.interface_name(datagram.ifindex) else {
                    continue;
                };
                let now = FailoverTime::from_unix(unix_now());
                let meta = RxMeta {
                    interface,
                    src: *datagram.src.ip(),
                    dst: datagram.dst,
                };
                let payload = rx.get(..datagram.len).unwrap_or_default();
                match shards.handle(now, &meta, payload, &mut rng, &mut tx) {
                    Outcome::Reply { len } => {
                        let reply = tx.get(..len).unwrap_or_default();
                        if let Err(e) =
                            socket.send(reply, datagram.src, datagram.dst, datagram.ifindex)
                        {
                            tracing::warn!("sending a reply to {}: {e}", datagram.src);
                        }
                    }
                    Outcome::Drop(reason) => {
                        tracing::debug!(
                            "dropped a datagram from {} on {interface}: {}",
                            datagram.src,
                            reason.name()
                        );
                    }
                }
            }
        }
        let now = FailoverTime::from_unix(unix_now());
        let report = shards.reclaim(now, RECLAIM_BUDGET);
        tracing::trace!("reclaim: {report:?}");
        shards.flush_if_due(Instant::now());
        let engine = shards.counters();
        control.serve_pending(&mut SocketModeTarget {
            interfaces: &config.interfaces,
            engine: &engine,
            socket: socket.counters(),
            shards: usize::try_from(count).unwrap_or(usize::MAX),
            bindings: shards.stored(),
            capacity: store.capacity.saturating_mul(u64::from(count)),
        });
    }
    let counters = shards.counters();
    shards.close().context("closing the lease store")?;
    emit_line(&counters_line(&counters, socket.counters()))?;
    Ok(ExitCode::SUCCESS)
}

/// Creates the state directory if needed and checks that files can be created in it.
pub(crate) fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating the state directory {}", dir.display()))?;
    let probe = dir.join(format!(".tandem-write-test.{}", std::process::id()));
    match fs::write(&probe, b"") {
        Ok(()) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!("state directory {} is not writable: {e}", dir.display()),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The final `COUNTERS …` line: `rx_<type>` per client message type (and any other type seen),
/// `tx_advertise`, `tx_reply`, `drop_<reason>` for every engine drop reason and the socket
/// layer's drops, then the lease events.
pub fn counters_line(c: &Counters, s: &SocketCounters) -> String {
    let (messages, events) = engine_fields(c);
    format!(
        "COUNTERS{messages} drop_unknown_interface={} drop_no_pktinfo={} drop_truncated={}{events}",
        s.unknown_interface, s.no_pktinfo, s.truncated
    )
}

/// A [`LeaseStore`] adapter that logs each lease write (debug) and each failed write (warn).
pub(crate) struct LoggingStore<'a, S>(pub(crate) &'a mut S);

impl<S: LeaseStore> LeaseStore for LoggingStore<'_, S> {
    type Error = S::Error;

    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.0.get(kind, addr)
    }

    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        self.0.for_client(key, f);
    }

    fn put(&mut self, binding: &Binding) -> Result<(), Self::Error> {
        match self.0.put(binding) {
            Ok(()) => {
                if binding.status == BindingStatus::ACTIVE {
                    tracing::debug!(
                        "lease committed: {}/{} to DUID {} IAID {} (preferred {} s, valid {} s)",
                        binding.addr,
                        binding.prefix_len,
                        hex(binding.duid.as_bytes()),
                        binding.iaid,
                        binding.preferred,
                        binding.valid,
                    );
                } else {
                    tracing::debug!(
                        "lease {}/{} now {}",
                        binding.addr,
                        binding.prefix_len,
                        crate::leases::state_name(binding.status)
                    );
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    "lease store: writing {}/{} failed: {e}",
                    binding.addr,
                    binding.prefix_len
                );
                Err(e)
            }
        }
    }

    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        self.0.scan(cursor, max, f)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use tandem_lease::MemStore;

    use super::*;

    #[test]
    fn counters_line_fresh_engine_lists_every_counter_at_zero() {
        let line = counters_line(&Counters::default(), &SocketCounters::default());
        assert!(
            line.starts_with("COUNTERS rx_solicit=0 rx_request=0 "),
            "{line}"
        );
        assert!(
            line.contains(" rx_information_request=0 rx_relay_forw=0 "),
            "{line}"
        );
        assert!(line.contains(" tx_advertise=0 tx_reply=0 "), "{line}");
        assert!(line.contains(" drop_malformed=0 "), "{line}");
        assert!(line.contains(" drop_unknown_interface=0 "), "{line}");
        assert!(line.ends_with(" store_errors=0"), "{line}");
        let fields = line.split(' ').skip(1).count();
        assert_eq!(
            fields,
            9 /* client message types */ + 2 + tandem_proto::DropReason::ALL.len() + 3 + 6
        );
        assert!(line.split(' ').skip(1).all(|f| f.ends_with("=0")), "{line}");
    }

    #[test]
    fn counters_line_socket_drops_printed() {
        let s = SocketCounters {
            unknown_interface: 3,
            no_pktinfo: 1,
            truncated: 2,
        };
        let line = counters_line(&Counters::default(), &s);
        assert!(
            line.contains(" drop_unknown_interface=3 drop_no_pktinfo=1 drop_truncated=2 "),
            "{line}"
        );
    }

    #[test]
    fn logging_store_passes_writes_through() {
        let mut inner = MemStore::with_capacity_limit(1);
        let a = Binding::free(LeaseKind::Address, "2001:db8::1".parse().unwrap(), 128, 0);
        let b = Binding::free(LeaseKind::Address, "2001:db8::2".parse().unwrap(), 128, 0);
        let mut logged = LoggingStore(&mut inner);
        logged.put(&a).unwrap();
        assert!(logged.put(&b).is_err());
        assert_eq!(logged.len(), 1);
        assert_eq!(logged.get(LeaseKind::Address, a.addr), Some(a));
    }

    #[test]
    fn prepare_state_dir_creates_missing_and_rejects_files() {
        let base = std::env::temp_dir().join(format!("tandem-run-{}", std::process::id()));
        let dir = base.join("a/b");
        prepare_state_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file left behind"
        );
        let file = base.join("file");
        fs::write(&file, b"x").unwrap();
        let err = prepare_state_dir(&file.join("sub")).unwrap_err();
        fs::remove_dir_all(&base).unwrap();
        assert!(
            err.to_string().contains("creating the state directory"),
            "{err}"
        );
    }
}
