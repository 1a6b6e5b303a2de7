//! `tandem run` on the UDP-socket datapath ([`tandem_datapath::udp`]; `[datapath] mode =
//! "socket"`, the default).
//!
//! Socket mode runs on the main thread, in its [`EventLoop`]: the UDP socket is one source of
//! it, besides the stop signals and the control socket. When the socket is readable, up to
//! [`BURST`] datagrams are answered, each through the shard of its client (the engine commits
//! leases to the store before it returns a Reply, RFC 8415 §18.3); a burst cut short comes
//! back through a timer due at once, so that signals, the control socket and the timers get
//! their turn in between. Timers: incremental expiry ([`Engine::reclaim`]) every
//! [`HOUSEKEEPING_EVERY`], and an msync of the stores every `--flush-interval`. It serves
//! every shard the state directory has (1 unless `[datapath] shards` or an earlier XDP run
//! made more). SIGHUP/SIGINT/SIGTERM end the loop; the stores are flushed and closed and the
//! counters printed.
//!
//! Why the main thread and not a thread of its own: the engine work per datagram is small and
//! bounded, one thread then owns every shard (no lock, no counter snapshots for `status`,
//! which reads the live counters), and the failover link will be one more source of the same
//! loop, fed by the same per-worker binding-change ring as the XDP workers' (a ring this
//! thread both fills and drains).
//!
//! [`Engine::reclaim`]: tandem_proto::Engine::reclaim

use std::io;
use std::os::fd::AsRawFd as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tandem_datapath::udp::{Datagram, Received, SERVER_PORT, ServerSocket, SocketCounters};
use tandem_lease::FailoverTime;
use tandem_proto::{Counters, Inbound, Outcome, RxMeta};

use super::setup::Setup;
use super::shard::{HOUSEKEEPING_EVERY, RECLAIM_BUDGET, ShardSet, resolve_shards};
use crate::control::{ControlKey, ControlServer, ControlTarget, StatusReport, WorkerView};
use crate::counters::{engine_counters, engine_fields, socket_counters};
use crate::entropy::XorShift64Star;
use crate::event_loop::{EventLoop, Interest, StopSignals};
use crate::failover::{FailoverKey, FailoverPlane};
use crate::output::{emit_line, hex};
use crate::timefmt::unix_now;

/// Datagrams handled per readiness before the other sources and the timers get a turn.
pub const BURST: usize = 256;
/// Shortest time between two msyncs, whatever `--flush-interval` says.
const MIN_FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Receive buffer: the largest UDP payload.
const RX_BUF: usize = 65_535;
/// Reply buffer; a reply that does not fit is dropped and counted by the engine.
const TX_BUF: usize = 16_384;

/// The sources and timers of the socket datapath's event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// SIGHUP, SIGINT, SIGTERM.
    Signals,
    /// The control socket.
    Control(ControlKey),
    /// The UDP socket; as a timer (due at once), the rest of a burst cut short.
    Udp,
    /// Incremental expiry of every shard.
    Reclaim,
    /// msync of the stores whose flush interval has passed.
    Flush,
    /// The failover plane (RFC 8156): listeners, connections, endpoint timers.
    Failover(FailoverKey),
}

impl From<ControlKey> for Key {
    fn from(k: ControlKey) -> Self {
        Self::Control(k)
    }
}

impl From<FailoverKey> for Key {
    fn from(k: FailoverKey) -> Self {
        Self::Failover(k)
    }
}

/// The socket datapath (see the module docs).
pub(crate) fn run(setup: Setup, signals: &StopSignals) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        state_dir,
        duid,
        store,
    } = setup;
    let socket = ServerSocket::open(&config.interfaces, SERVER_PORT)?;
    let count = resolve_shards(&state_dir, config.datapath.shards, None)?;
    let shards = ShardSet::open(&state_dir, &config, &duid, count, store)?;
    let rng = XorShift64Star::from_os().context("seeding the random generator")?;
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
    let unclean = shards
        .shards()
        .iter()
        .any(|s| !s.store.recovery().clean_shutdown);
    let mut plane = FailoverPlane::open(&config, &state_dir, unclean)?;
    let mut server = SocketServer {
        socket,
        shards,
        changes: Vec::new(),
        track_changes: plane.is_some(),
        rng,
        rx: vec![0u8; RX_BUF],
        tx: vec![0u8; TX_BUF],
    };

    let mut ev = EventLoop::new().context("creating the event loop")?;
    signals
        .register(&mut ev, Key::Signals)
        .context("polling the signals")?;
    control
        .register(&mut ev)
        .context("polling the control socket")?;
    ev.register_fd(server.socket.as_raw_fd(), Interest::READABLE, Key::Udp)
        .context("polling the UDP socket")?;
    if let Some(p) = plane.as_mut() {
        // Before the first datagram: the engines serve under the failover state's policy
        // (STARTUP: unresponsive), never standalone.
        server.shards.set_policy(p.policy());
        let _ = p.take_policy();
        p.register(&mut ev)
            .context("polling the failover sockets")?;
    }
    let flush_every = store.flush_interval.max(MIN_FLUSH_EVERY);
    let now = Instant::now();
    // Datagrams may have arrived between bind and registration: look at once.
    ev.set_timer(Key::Udp, now);
    ev.set_timer(Key::Reclaim, now + HOUSEKEEPING_EVERY);
    ev.set_timer(Key::Flush, now + flush_every);
    emit_line(&format!("READY mode=socket shards={count}"))?;

    let mut wakes = Vec::new();
    'serve: loop {
        ev.turn(&mut wakes).context("waiting for events")?;
        for wake in wakes.drain(..) {
            match wake.key() {
                Key::Signals => {
                    if signals.take().context("reading signals")?.is_some() {
                        break 'serve;
                    }
                }
                Key::Udp => {
                    if !server.serve_burst()? {
                        ev.set_timer(Key::Udp, Instant::now());
                    }
                    // Lazy updates (RFC 8156 §4.3): the Replies have gone out.
                    if let Some(p) = plane.as_mut() {
                        for (shard, b, sent) in server.changes.drain(..) {
                            p.binding_changed(shard, &b, sent);
                        }
                    }
                }
                Key::Reclaim => {
                    let now = FailoverTime::from_unix(unix_now());
                    let mut expired = |shard: u32, b: &tandem_lease::Binding| {
                        if let Some(p) = plane.as_mut() {
                            // No Reply: the update latency runs from the commit (D50).
                            p.binding_changed(shard, b, Instant::now());
                        }
                    };
                    let report = server.shards.reclaim(now, RECLAIM_BUDGET, &mut expired);
                    tracing::trace!("reclaim: {report:?}");
                    ev.set_timer(Key::Reclaim, Instant::now() + HOUSEKEEPING_EVERY);
                }
                Key::Flush => {
                    server.shards.flush_if_due(Instant::now());
                    ev.set_timer(Key::Flush, Instant::now() + flush_every);
                }
                Key::Control(k) => {
                    let engine = server.shards.counters();
                    let mut target = SocketModeTarget {
                        interfaces: &config.interfaces,
                        engine: &engine,
                        socket: server.socket.counters(),
                        shards: usize::try_from(count).unwrap_or(usize::MAX),
                        bindings: server.shards.stored(),
                        capacity: store.capacity.saturating_mul(u64::from(count)),
                        failover: plane.as_mut(),
                    };
                    control.handle(wake.map(|_| k), &mut ev, &mut target);
                }
                Key::Failover(k) => {
                    if let Some(p) = plane.as_mut() {
                        p.handle(wake.map(|_| k), &mut ev);
                    }
                }
            }
            // A failover state change takes effect before the next datagram; binding updates
            // move between the partner and the shards (RFC 8156 §7).
            if let Some(p) = plane.as_mut() {
                p.pump_bindings(&mut server.shards);
                p.arm(&mut ev);
                if let Some(policy) = p.take_policy() {
                    server.shards.set_policy(policy);
                }
            }
        }
    }
    if let Some(p) = plane.as_mut() {
        p.shutdown(&mut ev, |k| match k {
            Key::Failover(f) => Some(f),
            _ => None,
        });
    }
    let SocketServer { socket, shards, .. } = server;
    let counters = shards.counters();
    shards.close().context("closing the lease store")?;
    emit_line(&counters_line(&counters, socket.counters()))?;
    Ok(ExitCode::SUCCESS)
}

/// The socket datapath's state: the socket, every shard, and the buffers.
struct SocketServer {
    socket: ServerSocket,
    shards: ShardSet,
    /// Bindings the engines changed since the plane last took them (with their shard and
    /// when their Reply was sent, docs/failover.md D50), for the failover partner; only
    /// collected with a relationship.
    changes: Vec<(u32, tandem_lease::Binding, Instant)>,
    track_changes: bool,
    rng: XorShift64Star,
    /// Receive buffer ([`RX_BUF`]).
    rx: Vec<u8>,
    /// Reply buffer ([`TX_BUF`]).
    tx: Vec<u8>,
}

impl SocketServer {
    /// Serves up to [`BURST`] waiting datagrams; `true` once the socket has none left.
    ///
    /// # Errors
    /// If receiving fails (other than "nothing to read").
    fn serve_burst(&mut self) -> io::Result<bool> {
        for _ in 0..BURST {
            match self.socket.recv(&mut self.rx)? {
                Received::Datagram(d) => self.serve_datagram(&d),
                Received::Dropped => {}
                Received::WouldBlock => return Ok(true),
            }
        }
        Ok(false)
    }

    /// The one path from a received datagram (in `rx`) to its reply (socket datapath): the
    /// shard of its client, that shard's engine, the reply sent back to where the request
    /// came from (RFC 8415 §18.3, §19.3; see [`ServerSocket::send`]).
    fn serve_datagram(&mut self, datagram: &Datagram) {
        let Self {
            socket,
            shards,
            changes,
            track_changes,
            rng,
            rx,
            tx,
        } = self;
        let Some(interface) = socket.interface_name(datagram.ifindex) else {
            return;
        };
        // Parsed once: the shard is picked from it and the engine takes it as is.
        let inbound = Inbound::parse(rx.get(..datagram.len).unwrap_or_default());
        let Some(shard) = shards.shard_for(&inbound) else {
            return;
        };
        let now = FailoverTime::from_unix(unix_now());
        let meta = RxMeta {
            interface,
            src: *datagram.src.ip(),
            dst: datagram.dst,
        };
        let index = shard.index;
        let (engine, mut store) = shard.engine_and_store();
        let outcome = engine.handle_inbound(now, &meta, &inbound, &mut store, rng, tx);
        match outcome {
            Outcome::Reply { len } => {
                let reply = tx.get(..len).unwrap_or_default();
                if let Err(e) = socket.send(reply, datagram.src, datagram.dst, datagram.ifindex) {
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
        // For the partner (RFC 8156 §4.3), stamped now that the Reply has gone out: the update
        // latency runs from here (D50). One clock read per datagram that committed something,
        // beside its two system calls.
        if *track_changes && !engine.changes().is_empty() {
            let sent = Instant::now();
            changes.extend(engine.changes().iter().map(|c| (index, c.binding, sent)));
        }
    }
}

/// [`ControlTarget`] of the socket datapath: one thread, no workers. Built from the loop's
/// state for each wake-up of the control socket (with several shard engines,
/// [`Counters::merge`] them into one first).
///
/// `tune cores` is refused: the socket datapath has no per-queue workers to pin.
#[derive(Debug)]
pub struct SocketModeTarget<'a> {
    /// The configured interfaces.
    pub interfaces: &'a [String],
    /// The engine's counters.
    pub engine: &'a Counters,
    /// The socket layer's counters.
    pub socket: &'a SocketCounters,
    /// Lease database shards.
    pub shards: usize,
    /// Bindings stored, over all shards.
    pub bindings: usize,
    /// Store capacity, over all shards.
    pub capacity: u64,
    /// The failover plane (`None`: standalone).
    pub failover: Option<&'a mut FailoverPlane>,
}

impl ControlTarget for SocketModeTarget<'_> {
    fn status(&self) -> StatusReport {
        StatusReport {
            datapath: "socket".to_owned(),
            attach_mode: None,
            interfaces: self.interfaces.to_vec(),
            shards: self.shards,
            bindings: self.bindings,
            capacity: self.capacity,
            workers: Vec::new(),
            xdp: Vec::new(),
            engine: engine_counters(self.engine),
            socket: socket_counters(self.socket),
            failover: self
                .failover
                .as_deref()
                .map_or_else(Vec::new, FailoverPlane::views),
        }
    }

    fn partner_down(&mut self, name: Option<&str>) -> Result<String, String> {
        crate::control::partner_down(self.failover.as_deref_mut(), name)
    }

    fn workers(&self) -> Vec<WorkerView> {
        Vec::new()
    }

    fn set_cores(&mut self, _cores: &[usize]) -> Result<Vec<(u32, usize)>, String> {
        Err(
            "the socket datapath has no workers to pin (per-queue workers run with \
             `[datapath] mode = \"xdp\"` or `tandem run --datapath xdp`)"
                .to_owned(),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::render::status_text;

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
    fn socket_mode_target_reports_counters_and_refuses_pinning() {
        let interfaces = vec!["eth0".to_owned()];
        let engine = Counters::default();
        let socket = SocketCounters {
            unknown_interface: 4,
            no_pktinfo: 0,
            truncated: 1,
        };
        let mut target = SocketModeTarget {
            interfaces: &interfaces,
            engine: &engine,
            socket: &socket,
            shards: 1,
            bindings: 3,
            capacity: 10,
            failover: None,
        };
        let status = target.status();
        assert_eq!(status.datapath, "socket");
        assert_eq!(status.attach_mode, None);
        assert!(status.workers.is_empty());
        assert_eq!(status.socket[0], ("drop_unknown_interface".to_owned(), 4));
        assert_eq!(status.engine.last(), Some(&("store_errors".to_owned(), 0)));
        let text = status_text(&status);
        assert!(
            text.starts_with("datapath: socket\ninterfaces: eth0\n"),
            "{text}"
        );
        assert!(text.contains("workers: none\n"), "{text}");
        assert!(
            text.contains("socket: drop_unknown_interface=4 drop_no_pktinfo=0 drop_truncated=1\n")
        );
        let err = target.set_cores(&[0]).unwrap_err();
        assert!(
            err.contains("socket datapath has no workers to pin"),
            "{err}"
        );
    }
}
