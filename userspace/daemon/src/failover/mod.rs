//! The failover control plane of `tandem run` (RFC 8156): one [`Endpoint`] per `[[failover]]`
//! relationship, driven from the main thread's [`EventLoop`] in both datapath modes.
//!
//! * The secondary listens on `[local]:port` ([`FailoverKey::Listener`]); a connection from an
//!   address with no relationship in which we are secondary towards it is dropped at once,
//!   unanswered, logged and counted (§6.1). At most [`MAX_PENDING`] accepted connections may
//!   wait for their CONNECT (§10: "limit the number of accepted connections"), each at most
//!   [`PENDING_TIMEOUT`]; the CONNECT's relationship name picks the relationship
//!   ([`connect_relationship_name`], §6.1, §6.2).
//! * The primary connects to `peer:port` at once, and after every loss again after
//!   `connect-retry` seconds, doubling after each attempt that did not reach communications OK
//!   up to 12 × `connect-retry`; it never gives up (§6.1).
//! * The primary also listens on `[local]:port`, with the same listener, bounds, peer filter
//!   and TLS set-up, only to tell a partner that is configured as primary too: its CONNECT is
//!   answered with CONNECTREPLY ConfigurationConflict ([`role_conflict_reply`]) and the
//!   connection closed, logged at ERROR once per episode and counted (`role_conflict`). A
//!   secondary that has had no connection from its primary for longer than its startup time
//!   logs one WARN and shows it as the relationship's `problem` (docs/failover.md D23).
//! * The transport ([`tandem_datapath::link`]) does the framing, STARTTLS and TLS; the endpoint
//!   gets `handle_connected` once the link is established (TLS done).
//! * After every input the endpoint's outputs are drained in its documented order: each
//!   persist record is written to `<state-dir>/failover-<name>.state` durably
//!   ([`state_file`]) *before* `handle_persisted` releases the frames that depend on it; then
//!   the frames go to the link, the events are logged, and each policy change is handed to the
//!   datapath ([`FailoverPlane::take_policy`]).
//! * Time: a monotonic millisecond clock from the plane's start and the wall clock as RFC 8156
//!   §3 time, read at each input ([`Now`]).
//!
//! The owner of the loop gives the plane a place in its key type (`K: From<FailoverKey>`),
//! calls [`FailoverPlane::register`] once, hands every wake of a [`FailoverKey`] to
//! [`FailoverPlane::handle`], calls [`FailoverPlane::arm`] after each turn, and installs what
//! [`FailoverPlane::take_policy`] returns in every engine. On a stop signal,
//! [`FailoverPlane::shutdown`] sends each partner a DISCONNECT (ServerShuttingDown) and waits
//! a bounded time for it to leave.

pub mod latency;
pub mod policy;
pub mod state_file;
pub mod sync;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::net::TcpListener;
use tandem_config::{Config, Failover, FailoverRole, FailoverSecurity};
use tandem_datapath::link::{
    CloseKind, CloseReason, Link, LinkEvent, PeerIdentity, Security, TlsPaths, TlsSettings,
};
use tandem_failover::refuse::{self, Direction, Refusal, role_conflict_text};
use tandem_failover::{
    DownReason, Endpoint, Event, FailoverTime, LinkStatus, Now, Operator, Persisted, Phase, Role,
    ServingPolicy, StateName, Transmit, connect_relationship_name, role_conflict_reply,
};
use tandem_lease::{AddressShare, PrefixShare, Responsiveness};
use tandem_wire::dhcp::StatusCode;

use self::latency::MonoUs;
use crate::control::report::{FailoverView, RefusalView};
use crate::event_loop::{EventLoop, Interest, Token, Wake};
use crate::timefmt::unix_now;

/// Accepted connections waiting for their CONNECT, at most.
pub const MAX_PENDING: usize = 8;
/// Longest an accepted connection may take to send its CONNECT (TLS included).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(15);
/// The primary's back-off stops at this many times `connect-retry`.
pub const RETRY_CAP_FACTOR: u32 = 12;
/// Longest [`FailoverPlane::shutdown`] waits for the DISCONNECTs to leave.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// How soon a failed state-file write is tried again.
const PERSIST_RETRY: Duration = Duration::from_secs(1);
/// How soon binding sync with work left after a turn goes on ([`FailoverKey::Sync`]): the
/// sources that are ready come first, and a sync that could not progress would cost a turn
/// per millisecond, not a spinning loop.
const SYNC_AGAIN: Duration = Duration::from_millis(1);

/// The failover plane's sources and timers, as keys of the owner's event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailoverKey {
    /// Listening socket `n` (secondary).
    Listener(usize),
    /// Connection `n` (numbers are never reused): its socket and its deadlines.
    Conn(u64),
    /// Relationship `n`'s endpoint timer (and the retry of a failed state-file write).
    Endpoint(usize),
    /// Relationship `n`'s next connection attempt (primary).
    Retry(usize),
    /// Relationship `n`'s check for a primary that does not connect (secondary, D23).
    Silence(usize),
    /// Relationship `n`'s binding synchronisation has work left after a turn (a scan goes on
    /// a chunk per pump): due 1 ms later, so that a turn continues it even when
    /// nothing else wakes the loop ([`FailoverPlane::pump_bindings`] runs after every wake).
    Sync(usize),
}

/// Counters of the plane besides each relationship's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaneCounters {
    /// Connections from an address with no relationship: dropped unanswered.
    pub unknown_peer: u64,
    /// Connections dropped because [`MAX_PENDING`] were waiting already.
    pub too_many_pending: u64,
    /// Accepted connections whose first message was not a CONNECT, or which sent none within
    /// [`PENDING_TIMEOUT`].
    pub no_connect: u64,
    /// Transport closes before a relationship was chosen, by [`CloseKind`].
    pub pending_closed: [u64; CloseKind::ALL.len()],
}

/// One connection: its link, its registration and whose it is.
#[derive(Debug)]
struct Conn {
    link: Link,
    token: Token,
    /// The relationship it belongs to (`None`: accepted, CONNECT not seen yet).
    rel: Option<usize>,
    /// The endpoint counts it as its connection (cleared when the endpoint closed it).
    current: bool,
    /// TLS identity, once established.
    tls: Option<PeerIdentity>,
    /// Established (TLS done on a secure link).
    established: bool,
    /// Accepted at; a pending connection must send CONNECT by `PENDING_TIMEOUT` after.
    accepted: Instant,
    /// Accepted: the relationship its address matched (its closes are counted there before
    /// a CONNECT binds it).
    candidate: Option<usize>,
    /// Accepted by a primary and its CONNECT refused (role conflict, D23): closing.
    refused: bool,
}

/// One `[[failover]]` relationship.
#[derive(Debug)]
struct Relationship {
    cfg: Failover,
    endpoint: Endpoint,
    state_file: std::path::PathBuf,
    security: Security,
    /// The endpoint's connection.
    conn: Option<u64>,
    /// A record the endpoint gave that is not durable yet (the write failed).
    unwritten: Option<Persisted>,
    tls_peer: Option<PeerIdentity>,
    /// Why the last connection ended, as the transport saw it.
    last_close: Option<CloseReason>,
    /// Primary: the next attempt's delay, and when it is due.
    retry_delay: Duration,
    next_attempt: Option<Instant>,
    /// Transport closes of this relationship's connections, by [`CloseKind`].
    closes: [u64; CloseKind::ALL.len()],
    /// State-file writes that failed.
    persist_errors: u64,
    /// Connection attempts (primary) or accepted connections bound here (secondary).
    connections: u64,
    /// Binding updates to and from the partner (RFC 8156 §7).
    sync: sync::BindingSync,
    /// The last refusal of our CONNECT by the partner (`Endpoint::last_refusal`).
    refusal_received: Option<Refusal>,
    /// The last refusal of the partner's CONNECT by us: the endpoint's, or on a primary the
    /// listener's role conflict.
    refusal_sent: Option<Refusal>,
    /// Which of the two is the newer.
    newest_refusal: Option<Direction>,
    /// A refusal (either way) since the last communications OK: shown as the problem.
    refusal_active: bool,
    /// The refusal logged at ERROR in this episode; the same one again is logged at debug.
    refusal_logged: Option<(StatusCode, String)>,
    /// Primary: the configured peer connected to us and sent CONNECT since the last
    /// communications OK (both servers configured as primary, D23): from where.
    role_conflict: Option<IpAddr>,
    /// Primary: CONNECTs answered with a role conflict.
    role_conflicts: u64,
    /// Secondary: since when no connection from the primary is bound here (`None`: one is).
    silent_since: Option<Instant>,
    /// Secondary: this silence was logged (once per episode).
    silence_warned: bool,
}

/// The failover plane (see the module docs).
#[derive(Debug)]
pub struct FailoverPlane {
    rels: Vec<Relationship>,
    listeners: Vec<(TcpListener, SocketAddr, Option<Token>)>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    start: Instant,
    /// A policy change the datapath has not taken yet.
    policy: Option<ServingPolicy>,
    /// Timers need re-arming.
    dirty: bool,
    counters: PlaneCounters,
}

/// The RFC 8156 §8 name of a state.
pub const fn state_name(s: StateName) -> &'static str {
    match s {
        StateName::Startup => "STARTUP",
        StateName::Normal => "NORMAL",
        StateName::CommunicationsInterrupted => "COMMUNICATIONS-INTERRUPTED",
        StateName::PartnerDown => "PARTNER-DOWN",
        StateName::PotentialConflict => "POTENTIAL-CONFLICT",
        StateName::Recover => "RECOVER",
        StateName::RecoverWait => "RECOVER-WAIT",
        StateName::RecoverDone => "RECOVER-DONE",
        StateName::ResolutionInterrupted => "RESOLUTION-INTERRUPTED",
        StateName::ConflictDone => "CONFLICT-DONE",
    }
}

/// A policy for people: `responsive, new leases, odd addresses, FREE prefixes, MCLT 3600 s`.
pub fn policy_text(p: &ServingPolicy) -> String {
    let r = match p.responsiveness {
        Responsiveness::Responsive => "responsive",
        Responsiveness::RenewResponsive => "renew responsive",
        Responsiveness::Unresponsive => "unresponsive",
    };
    let a = match p.addresses {
        AddressShare::All => "all addresses",
        AddressShare::Odd => "odd addresses",
        AddressShare::Even => "even addresses",
    };
    let x = match p.prefixes {
        PrefixShare::All => "all prefixes",
        PrefixShare::Free => "FREE prefixes",
        PrefixShare::FreeBackup => "FREE-BACKUP prefixes",
    };
    let m = p
        .mclt
        .map_or_else(|| "no MCLT cap".to_owned(), |m| format!("MCLT {m} s"));
    let n = if p.new_leases {
        "new leases"
    } else {
        "renewals only"
    };
    format!("{r}, {n}, {a}, {x}, {m}")
}

/// Why a link went down, for people.
fn down_text(reason: &DownReason) -> String {
    match reason {
        DownReason::TransportClosed => "transport closed".to_owned(),
        DownReason::KeepaliveExpired => "nothing heard within keepalive-time (§6.6)".to_owned(),
        DownReason::PartnerDisconnected(s) => format!(
            "partner sent DISCONNECT{}",
            s.map_or_else(String::new, |s| format!(" (status {})", s.0))
        ),
        DownReason::ConnectRefusedByPartner(s) => {
            format!("partner refused our CONNECT ({})", refuse::status_text(*s))
        }
        DownReason::ConnectRefused(s) => {
            format!(
                "we refused the partner's CONNECT ({})",
                refuse::status_text(*s)
            )
        }
        DownReason::ExcessiveTimeSkew => "clocks more than 5 s apart (§7.1)".to_owned(),
        DownReason::PeerMisbehaved(k) => format!("partner broke the protocol ({k:?})"),
        DownReason::UpdateTimeout => "no UPDDONE in time (§8.5.2)".to_owned(),
        DownReason::Replaced => "replaced by a new connection".to_owned(),
        DownReason::Shutdown => "shut down".to_owned(),
        other => format!("{other:?}"),
    }
}

/// A secondary's silent primary, for the log and the status (D23).
pub fn silence_text(peer: IpAddr, secs: u64) -> String {
    format!(
        "no connection from the primary ({peer}) for {secs} s: is the partner running and \
         configured as role = \"primary\"?"
    )
}

/// A refusal for people: `the partner refused our CONNECT with ConfigurationConflict (17):
/// TEXT`.
pub fn refusal_sentence(r: &Refusal) -> String {
    let who = match r.direction {
        Direction::Sent => "we refused the partner's CONNECT",
        Direction::Received => "the partner refused our CONNECT",
    };
    format!("{who} with {}: {}", r.status_text(), r.text)
}

/// The relationship's problem as `status` shows it, the most specific first (D23): both
/// servers configured as primary (a CONNECT reached us, a primary, from `role_conflict`), a
/// CONNECT refused either way since the last communications OK, a secondary's primary silent
/// for `silence` = (its address, seconds) past the startup time. `None`: nothing known.
pub fn problem_text(
    name: &str,
    role_conflict: Option<IpAddr>,
    active_refusal: Option<&Refusal>,
    silence: Option<(IpAddr, u64)>,
) -> Option<String> {
    if let Some(peer) = role_conflict {
        return Some(format!(
            "{}: {peer} connected to this primary and sent CONNECT, which only a primary sends \
             (RFC 8156 §6.1); set role = \"secondary\" on one of them",
            role_conflict_text(name)
        ));
    }
    if let Some(r) = active_refusal {
        return Some(refusal_sentence(r));
    }
    silence.map(|(peer, secs)| silence_text(peer, secs))
}

/// A refusal as `status` shows it; `now_unix` places its failover time.
fn refusal_view(r: &Refusal, now_unix: u64) -> RefusalView {
    RefusalView {
        status: refuse::status_name(r.status).map_or_else(|| r.status.0.to_string(), str::to_owned),
        code: r.status.0,
        text: r.text.clone(),
        at: r.at.to_unix(now_unix),
    }
}

/// The endpoint configuration of `f`.
fn endpoint_config(f: &Failover) -> tandem_failover::Config {
    let role = match f.role {
        FailoverRole::Primary => Role::Primary,
        FailoverRole::Secondary => Role::Secondary,
    };
    let mut c = tandem_failover::Config::new(role, f.name.clone());
    c.mclt = f.mclt;
    c.keepalive = f.keepalive;
    c.max_unacked_bndupd = f.max_unacked_bndupd;
    c.startup_secs = f.startup_time;
    c.heartbeat = f.heartbeat;
    c.auto_partner_down = f.auto_partner_down;
    c
}

/// The transport security of `f`, its TLS files loaded.
///
/// # Errors
/// A TLS file is unusable (the error names the field and the file).
pub fn security_of(f: &Failover) -> Result<Security, tandem_datapath::link::TlsError> {
    match &f.security {
        FailoverSecurity::Insecure => Ok(Security::Insecure),
        FailoverSecurity::Tls(t) => TlsSettings::load(&TlsPaths {
            ca: &t.ca,
            cert: &t.cert,
            key: &t.key,
            peer_names: &t.peer_names,
        })
        .map(|s| Security::Tls(Arc::new(s))),
    }
}

/// The problems that make `config`'s failover unusable by this build (docs/failover.md D21):
/// `(field, message)`. Empty when there is nothing to refuse.
pub fn unsupported(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if config.failover.len() > 1 {
        out.push((
            "failover[1]".to_owned(),
            format!(
                "{} [[failover]] relationships: this version serves every subnet under one \
                 failover policy, so a server takes part in one relationship only, covering \
                 all its subnets (docs/failover.md D21)",
                config.failover.len()
            ),
        ));
    }
    for (i, f) in config.failover.iter().enumerate() {
        if f.subnets.len() != config.subnets.len() {
            out.push((
                format!("failover[{i}].subnets"),
                format!(
                    "covers {} of the {} subnets: this version cannot serve some subnets \
                     standalone and others in failover; list them all, or leave `subnets` \
                     out (docs/failover.md D21)",
                    f.subnets.len(),
                    config.subnets.len()
                ),
            ));
        }
    }
    out
}

impl FailoverPlane {
    /// The plane of `config`'s relationships with their state files in `state_dir`; `None`
    /// without any `[[failover]]` (the server stays standalone). `stores_unclean`: some lease
    /// store of this server was not closed cleanly (its recovery said so); after a reboot
    /// that means its latest changes may be lost, and every relationship resynchronises
    /// before allocating (D56, [`Endpoint::stores_set_back`]).
    ///
    /// # Errors
    /// A configuration this build cannot honour ([`unsupported`]), unusable TLS files, an
    /// unreadable state file, or a listening socket that cannot be opened.
    pub fn open(
        config: &Config,
        state_dir: &Path,
        stores_unclean: bool,
    ) -> anyhow::Result<Option<Self>> {
        if config.failover.is_empty() {
            return Ok(None);
        }
        let boot = state_file::current_boot_id();
        let recorded_boot = state_file::load_boot_id(state_dir);
        let set_back = state_file::stores_may_be_set_back(
            stores_unclean,
            boot.as_deref(),
            recorded_boot.as_deref(),
        );
        if let Some((field, msg)) = unsupported(config).into_iter().next() {
            anyhow::bail!("{field}: {msg}");
        }
        let start = Instant::now();
        let mut plane = Self {
            rels: Vec::new(),
            listeners: Vec::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            start,
            policy: None,
            dirty: true,
            counters: PlaneCounters::default(),
        };
        let now = plane.now();
        for (i, f) in config.failover.iter().enumerate() {
            let security = security_of(f)
                .map_err(|e| anyhow::anyhow!("failover[{i}].{}: {e}", e.field.key()))?;
            let path = state_file::path(state_dir, &f.name);
            let persisted = state_file::load(&path)?;
            match &persisted {
                Some(p) => tracing::info!(
                    "failover {}: recorded state {} since {} (previous {}), partner {}",
                    f.name,
                    state_name(p.state),
                    p.state_since.0,
                    p.previous.map_or("-", state_name),
                    p.partner.map_or("unknown", |r| state_name(r.state)),
                ),
                None => tracing::info!("failover {}: no recorded state (first start)", f.name),
            }
            let mut endpoint = Endpoint::new(endpoint_config(f), persisted, now)
                .map_err(|e| anyhow::anyhow!("failover[{i}]: {e}"))?;
            if set_back {
                tracing::warn!(
                    "failover {}: the lease stores were not closed cleanly and the machine has \
                     restarted since (boot id {} → {}): their last changes may be lost, so this \
                     server recovers its partner's whole database (UPDREQALL, RFC 8156 §8.5) \
                     before it allocates (docs/failover.md D56)",
                    f.name,
                    recorded_boot.as_deref().unwrap_or("unknown"),
                    boot.as_deref().unwrap_or("unknown"),
                );
                endpoint.stores_set_back(now);
            }
            let base = Duration::from_secs(u64::from(f.connect_retry));
            plane.rels.push(Relationship {
                cfg: f.clone(),
                endpoint,
                state_file: path,
                security,
                conn: None,
                unwritten: None,
                tls_peer: None,
                last_close: None,
                retry_delay: base,
                next_attempt: None,
                closes: [0; CloseKind::ALL.len()],
                persist_errors: 0,
                connections: 0,
                sync: sync::BindingSync::new(
                    endpoint_config(f).role,
                    f.prefix_share,
                    f.prefix_share_max,
                ),
                refusal_received: None,
                refusal_sent: None,
                newest_refusal: None,
                refusal_active: false,
                refusal_logged: None,
                role_conflict: None,
                role_conflicts: 0,
                silent_since: (f.role == FailoverRole::Secondary).then_some(start),
                silence_warned: false,
            });
            // The secondary listens (§6.1); the primary too, only to tell a partner that is
            // also configured as primary (D23). A primary that cannot listen still works.
            let ip = f.local.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            let addr = SocketAddr::new(ip, f.port);
            if !plane.listeners.iter().any(|(_, a, _)| *a == addr) {
                match TcpListener::bind(addr) {
                    Ok(l) => {
                        tracing::info!(
                            "failover {}: listening on {addr}{}",
                            f.name,
                            if f.role == FailoverRole::Primary {
                                " (to tell a partner also configured as primary, \
                                 docs/failover.md D23)"
                            } else {
                                ""
                            }
                        );
                        plane.listeners.push((l, addr, None));
                    }
                    Err(e) if f.role == FailoverRole::Primary => tracing::warn!(
                        "failover {}: cannot listen on {addr}: {e}; a partner also configured \
                         as primary will not be told so (docs/failover.md D23)",
                        f.name
                    ),
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("failover {}: listening on {addr} (RFC 8156 §6.1)", f.name)
                        });
                    }
                }
            }
        }
        for i in 0..plane.rels.len() {
            plane.drive(i);
        }
        // D56: this boot is recorded once every relationship's record is durable (a record
        // saying RECOVER, after a set-back), so that a crash before then still finds the
        // reboot at the next start.
        if let Some(b) = boot.as_deref()
            && recorded_boot.as_deref() != Some(b)
            && plane.rels.iter().all(|r| r.unwritten.is_none())
            && let Err(e) = state_file::store_boot_id(state_dir, b)
        {
            tracing::error!(
                "writing {}: {e}",
                state_file::boot_id_path(state_dir).display()
            );
        }
        // The engines start under the endpoint's policy (STARTUP: unresponsive), never
        // standalone.
        if let Some(r) = plane.rels.first() {
            plane.policy = Some(r.endpoint.policy());
        }
        Ok(Some(plane))
    }

    fn now(&self) -> Now {
        self.now_at(Instant::now())
    }

    fn now_at(&self, t: Instant) -> Now {
        Now {
            mono_ms: u64::try_from(t.saturating_duration_since(self.start).as_millis())
                .unwrap_or(u64::MAX),
            wall: FailoverTime::from_unix(unix_now()),
        }
    }

    /// `t` on binding sync's microsecond clock (from the plane's start; D50).
    fn mono_us(&self, t: Instant) -> MonoUs {
        MonoUs(
            u64::try_from(t.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX),
        )
    }

    fn instant_of(&self, mono_ms: u64) -> Instant {
        self.start
            .checked_add(Duration::from_millis(mono_ms))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
    }

    /// Registers the listeners and schedules the primaries' first connection attempts.
    ///
    /// # Errors
    /// If a listener cannot be registered.
    pub fn register<K>(&mut self, ev: &mut EventLoop<K>) -> io::Result<()>
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        for (n, (l, _, token)) in self.listeners.iter_mut().enumerate() {
            *token = Some(ev.register(l, Interest::READABLE, FailoverKey::Listener(n).into())?);
        }
        let now = Instant::now();
        for (i, r) in self.rels.iter_mut().enumerate() {
            if r.cfg.role == FailoverRole::Primary {
                r.next_attempt = Some(now);
                ev.set_timer(FailoverKey::Retry(i).into(), now);
            }
        }
        self.dirty = true;
        self.arm(ev);
        Ok(())
    }

    /// A committed change of shard `shard`'s engine, for the partner (RFC 8156 §4.3 lazy
    /// update: call after the client's Reply went out). `committed` is when that Reply went
    /// out (for an expiry, when it was committed), read by the thread that sent it: the update
    /// latency runs from it (D50). One relationship covers every subnet (D21), so it goes to
    /// that one.
    pub fn binding_changed(&mut self, shard: u32, b: &tandem_lease::Binding, committed: Instant) {
        let at = self.mono_us(committed);
        if let Some(r) = self.rels.first_mut() {
            r.sync.changed(shard, b, at);
        }
    }

    /// Moves binding updates between the endpoints and the shards (see [`sync`]): call after
    /// every turn of the loop, with the shards of this process.
    pub fn pump_bindings(&mut self, shards: &mut dyn sync::LeaseShards) {
        for i in 0..self.rels.len() {
            let now = self.now();
            if let Some(r) = self.rels.get_mut(i) {
                r.sync.sample(&r.endpoint, now);
            }
            // Bounded: each round sends at most a window and scans a chunk per shard.
            for _ in 0..64 {
                let t = Instant::now();
                let (now, now_us) = (self.now_at(t), self.mono_us(t));
                let Some(r) = self.rels.get_mut(i) else {
                    break;
                };
                if !r.sync.busy(&r.endpoint, now) {
                    break;
                }
                r.sync.pump(&mut r.endpoint, shards, now, now_us);
                self.drive(i);
                // The shards' time for this turn is spent (XDP: the workers answer within a
                // bounded wait); what is left waits for the next turn.
                if !shards.ready() {
                    break;
                }
            }
        }
    }

    /// `n` committed changes that did not fit a worker's queue on their way here (they are
    /// flagged in the store and a scan sends them, docs/failover.md D27).
    pub fn bindings_overflowed(&mut self, n: u64) {
        if n > 0
            && let Some(r) = self.rels.first_mut()
        {
            r.sync.overflowed(n);
        }
    }

    /// `true` while binding sync has work that needs no input to go on (a scan or an answer
    /// left for a later turn): the owner should call [`FailoverPlane::pump_bindings`] again
    /// soon.
    pub fn bindings_pending(&self) -> bool {
        let now = self.now();
        self.rels.iter().any(|r| r.sync.busy(&r.endpoint, now))
    }

    /// The policy to install in every engine, if it changed since the last call.
    pub fn take_policy(&mut self) -> Option<ServingPolicy> {
        self.policy.take()
    }

    /// The policy in force now (of the one relationship).
    pub fn policy(&self) -> ServingPolicy {
        self.rels
            .first()
            .map_or(ServingPolicy::STANDALONE, |r| r.endpoint.policy())
    }

    /// Handles one wake of a [`FailoverKey`] source or timer.
    pub fn handle<K>(&mut self, wake: Wake<FailoverKey>, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        match wake {
            Wake::Ready {
                key: FailoverKey::Listener(n),
                ..
            } => self.accept(n, ev),
            Wake::Ready {
                key: FailoverKey::Conn(id),
                ..
            } => self.conn_ready(id, false, ev),
            Wake::Timer(FailoverKey::Conn(id)) => self.conn_ready(id, true, ev),
            Wake::Timer(FailoverKey::Endpoint(i)) => {
                let now = self.now();
                if let Some(r) = self.rels.get_mut(i) {
                    r.endpoint.handle_timeout(now);
                }
                self.drive(i);
            }
            Wake::Timer(FailoverKey::Retry(i)) => self.attempt(i, ev),
            Wake::Timer(FailoverKey::Silence(i)) => self.check_silence(i),
            Wake::Timer(FailoverKey::Listener(_) | FailoverKey::Sync(_))
            | Wake::Ready {
                key:
                    FailoverKey::Endpoint(_)
                    | FailoverKey::Retry(_)
                    | FailoverKey::Silence(_)
                    | FailoverKey::Sync(_),
                ..
            } => {}
        }
        self.dirty = true;
        self.arm(ev);
    }

    /// Re-arms the timers of every endpoint and connection after a change.
    pub fn arm<K>(&mut self, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let now = self.now();
        for i in 0..self.rels.len() {
            let Some(r) = self.rels.get(i) else { continue };
            let key = FailoverKey::Sync(i).into();
            if r.sync.busy(&r.endpoint, now) {
                ev.set_timer(key, Instant::now() + SYNC_AGAIN);
            } else {
                ev.cancel_timer(key);
            }
            let key = FailoverKey::Endpoint(i).into();
            let due = r.endpoint.poll_timeout().map(|ms| self.instant_of(ms));
            let due = match (due, r.unwritten.is_some()) {
                (d, true) => Some(d.map_or(Instant::now() + PERSIST_RETRY, |d| {
                    d.min(Instant::now() + PERSIST_RETRY)
                })),
                (d, false) => d,
            };
            match due {
                Some(at) => ev.set_timer(key, at),
                None => {
                    ev.cancel_timer(key);
                }
            }
            let key = FailoverKey::Silence(i).into();
            match r.silent_since {
                // A refused primary is told and logged as such, not as a silent one.
                Some(since) if !r.silence_warned && !r.refusal_active && !r.endpoint_finished() => {
                    ev.set_timer(key, since + r.startup_time());
                }
                _ => {
                    ev.cancel_timer(key);
                }
            }
        }
        for (&id, c) in &self.conns {
            let key = FailoverKey::Conn(id).into();
            let mut due = c.link.poll_timeout();
            if c.rel.is_none() {
                let pending = c.accepted + PENDING_TIMEOUT;
                due = Some(due.map_or(pending, |d| d.min(pending)));
            }
            match due {
                Some(at) => ev.set_timer(key, at),
                None => {
                    ev.cancel_timer(key);
                }
            }
        }
    }

    /// Accepts what waits on listener `n`.
    fn accept<K>(&mut self, n: usize, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        loop {
            let Some((l, local, _)) = self.listeners.get(n) else {
                return;
            };
            let local = *local;
            let (stream, peer) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("failover listener {local}: accept: {e}");
                    return;
                }
            };
            let ip = peer.ip().to_canonical();
            // §6.1: only from an address we have a relationship with on this address and port;
            // a secondary one first (a primary's listener only tells a partner that is also
            // configured as primary, D23).
            let ours = |r: &Relationship| {
                r.cfg.peer.to_canonical() == ip
                    && SocketAddr::new(r.cfg.local.unwrap_or(local.ip()), r.cfg.port) == local
            };
            let Some(first) = self
                .rels
                .iter()
                .position(|r| ours(r) && r.cfg.role == FailoverRole::Secondary)
                .or_else(|| self.rels.iter().position(ours))
            else {
                self.counters.unknown_peer += 1;
                tracing::warn!(
                    "failover: dropped a connection from {peer} on {local}: no relationship \
                     with that address (RFC 8156 §6.1)"
                );
                drop(stream);
                continue;
            };
            let pending = self.conns.values().filter(|c| c.rel.is_none()).count();
            if pending >= MAX_PENDING {
                self.counters.too_many_pending += 1;
                tracing::warn!(
                    "failover: dropped a connection from {peer}: {pending} connections already \
                     wait for their CONNECT (RFC 8156 §10)"
                );
                continue;
            }
            let security = self
                .rels
                .get(first)
                .map_or(Security::Insecure, |r| r.security.clone());
            let link = Link::accept(stream, peer, security, Instant::now());
            tracing::info!("failover: connection from {peer} on {local}");
            if let Some(id) = self.add_conn(link, None, ev)
                && let Some(c) = self.conns.get_mut(&id)
            {
                c.candidate = Some(first);
            }
        }
    }

    fn add_conn<K>(
        &mut self,
        mut link: Link,
        rel: Option<usize>,
        ev: &mut EventLoop<K>,
    ) -> Option<u64>
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let id = self.next_conn;
        self.next_conn += 1;
        let token = match ev.register(
            link.stream_mut(),
            Interest::READABLE | Interest::WRITABLE,
            FailoverKey::Conn(id).into(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("failover: registering a connection: {e}");
                return None;
            }
        };
        self.conns.insert(
            id,
            Conn {
                link,
                token,
                rel,
                current: rel.is_some(),
                tls: None,
                established: false,
                accepted: Instant::now(),
                candidate: rel,
                refused: false,
            },
        );
        if let Some(r) = rel.and_then(|i| self.rels.get_mut(i)) {
            r.conn = Some(id);
        }
        // Data may be there already (edge-triggered): look at once.
        ev.set_timer(FailoverKey::Conn(id).into(), Instant::now());
        Some(id)
    }

    /// The primary's connection attempt for relationship `i`.
    fn attempt<K>(&mut self, i: usize, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let Some(r) = self.rels.get_mut(i) else {
            return;
        };
        r.next_attempt = None;
        if r.conn.is_some() || r.endpoint_finished() {
            return;
        }
        let peer = SocketAddr::new(r.cfg.peer, r.cfg.port);
        r.connections += 1;
        match Link::connect(peer, r.cfg.local, r.security.clone(), Instant::now()) {
            Ok(link) => {
                tracing::debug!("failover {}: connecting to {peer}", r.cfg.name);
                if self.add_conn(link, Some(i), ev).is_none() {
                    self.schedule_retry(i, ev);
                }
            }
            Err(e) => {
                tracing::warn!("failover {}: connecting to {peer}: {e}", r.cfg.name);
                r.closes[CloseKind::ConnectFailed as usize] += 1;
                r.last_close = Some(CloseReason {
                    kind: CloseKind::ConnectFailed,
                    detail: e.to_string(),
                });
                self.schedule_retry(i, ev);
            }
        }
    }

    /// The next attempt after the current delay; the delay doubles up to the cap (§6.1
    /// "SHOULD reduce the frequency", "MUST keep trying").
    fn schedule_retry<K>(&mut self, i: usize, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let Some(r) = self.rels.get_mut(i) else {
            return;
        };
        if r.cfg.role != FailoverRole::Primary || r.endpoint_finished() {
            return;
        }
        let at = Instant::now() + r.retry_delay;
        r.next_attempt = Some(at);
        ev.set_timer(FailoverKey::Retry(i).into(), at);
        let cap = Duration::from_secs(u64::from(r.cfg.connect_retry) * u64::from(RETRY_CAP_FACTOR));
        r.retry_delay = (r.retry_delay * 2).min(cap);
    }

    /// A connection's readiness or timer.
    fn conn_ready<K>(&mut self, id: u64, timer: bool, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        c.link.on_ready(now);
        if timer {
            c.link.on_timeout(now);
            if c.rel.is_none()
                && !c.refused
                && now >= c.accepted + PENDING_TIMEOUT
                && !c.link.is_closed()
            {
                self.counters.no_connect += 1;
                tracing::warn!(
                    "failover: {} sent no CONNECT within {PENDING_TIMEOUT:?}: closed",
                    c.link.peer()
                );
                c.link.abort("no CONNECT in time");
            }
        }
        while let Some(event) = self.conns.get_mut(&id).and_then(|c| c.link.poll_event()) {
            self.link_event(id, event, ev);
        }
        let closed = self.conns.get(&id).is_some_and(|c| c.link.is_closed());
        if closed && let Some(mut c) = self.conns.remove(&id) {
            ev.cancel_timer(FailoverKey::Conn(id).into());
            if let Err(e) = ev.deregister(c.link.stream_mut(), c.token) {
                tracing::debug!("failover: deregistering a connection: {e}");
            }
        }
    }

    fn link_event<K>(&mut self, id: u64, event: LinkEvent, ev: &mut EventLoop<K>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = c.link.peer();
        match event {
            LinkEvent::Established { tls } => {
                c.established = true;
                if let Some(t) = &tls {
                    tracing::info!("failover: TLS with {peer} established: partner {t}");
                }
                c.tls = tls.clone();
                if let Some(i) = c.rel
                    && c.current
                {
                    let now = self.now();
                    if let Some(r) = self.rels.get_mut(i) {
                        tracing::info!("failover {}: connected to {peer}", r.cfg.name);
                        r.tls_peer = tls;
                        r.endpoint.handle_connected(now);
                    }
                    self.drive(i);
                }
            }
            LinkEvent::Message(body) => match c.rel {
                Some(i) if c.current => {
                    let now = self.now();
                    if let Some(r) = self.rels.get_mut(i) {
                        r.endpoint.handle_message(now, &body);
                    }
                    self.drive(i);
                }
                Some(_) => {}
                // Refused (D23) and closing: whatever else it says is not read.
                None if c.refused => {}
                None => self.route(id, &body),
            },
            LinkEvent::Closed(reason) => {
                let (rel, current) = (c.rel, c.current);
                c.current = false;
                let level_warn = !matches!(reason.kind, CloseKind::Local);
                match rel.and_then(|i| self.rels.get_mut(i)) {
                    Some(r) => {
                        if let Some(slot) = r.closes.get_mut(reason.kind as usize) {
                            *slot += 1;
                        }
                        if level_warn {
                            tracing::warn!(
                                "failover {}: connection with {peer} closed: {reason}",
                                r.cfg.name
                            );
                        } else {
                            tracing::info!(
                                "failover {}: connection with {peer} closed: {reason}",
                                r.cfg.name
                            );
                        }
                        // The endpoint's own connection, or the last one it closed (no newer
                        // one since): the status shows how it ended.
                        if current || r.last_close.is_none() || r.conn.is_none() {
                            r.last_close = Some(reason);
                        }
                    }
                    None if c.refused => tracing::debug!(
                        "failover: connection from {peer}, its CONNECT refused, closed: {reason}"
                    ),
                    None => {
                        if let Some(slot) =
                            self.counters.pending_closed.get_mut(reason.kind as usize)
                        {
                            *slot += 1;
                        }
                        if let Some(r) = c.candidate.and_then(|i| self.rels.get_mut(i)) {
                            if let Some(slot) = r.closes.get_mut(reason.kind as usize) {
                                *slot += 1;
                            }
                            if r.conn.is_none() {
                                r.last_close = Some(reason.clone());
                            }
                        }
                        tracing::warn!(
                            "failover: connection from {peer} closed before its CONNECT: {reason}"
                        );
                    }
                }
                if let Some(i) = rel {
                    if current {
                        let now = self.now();
                        if let Some(r) = self.rels.get_mut(i) {
                            if r.conn == Some(id) {
                                r.connection_ended();
                            }
                            r.endpoint.handle_closed(now);
                        }
                        self.drive(i);
                    }
                    if self.rels.get(i).is_some_and(|r| r.conn.is_none()) {
                        self.schedule_retry(i, ev);
                    }
                }
            }
        }
    }

    /// A CONNECT reached us, primary of relationship `i`, from its configured peer: both
    /// servers are configured as primary (only a primary sends CONNECT, §6.1.1). Answered with
    /// CONNECTREPLY ConfigurationConflict and closed; logged at ERROR once per episode (until
    /// communications OK), counted (D23).
    fn refuse_role_conflict(&mut self, id: u64, i: usize, body: &[u8]) {
        let now = self.now();
        let (Some(c), Some(r)) = (self.conns.get_mut(&id), self.rels.get_mut(i)) else {
            return;
        };
        let peer = c.link.peer();
        let Some(reply) = role_conflict_reply(body, &r.cfg.name, now.wall) else {
            // `route` saw a CONNECT, so this does not happen; drop it unanswered if it does.
            c.link.abort("first message not a CONNECT");
            return;
        };
        c.link.send(&reply.frame);
        c.link.close(&reply.refusal.text, Instant::now());
        // Its close is not the relationship's connection's: not counted or shown there.
        c.refused = true;
        c.candidate = None;
        r.role_conflicts += 1;
        if r.role_conflict.is_none() {
            tracing::error!(
                "failover {}: {}: {peer} connected to this primary and sent CONNECT, which only \
                 a primary sends (RFC 8156 §6.1); answered CONNECTREPLY {}; set role = \
                 \"secondary\" on one of them (docs/failover.md D23)",
                r.cfg.name,
                role_conflict_text(&r.cfg.name),
                reply.refusal.status_text(),
            );
        } else {
            tracing::debug!(
                "failover {}: CONNECT from {peer} refused again: {}",
                r.cfg.name,
                reply.refusal.text
            );
        }
        r.role_conflict = Some(peer.ip().to_canonical());
        r.note_refusal(reply.refusal);
        self.dirty = true;
    }

    /// A secondary's check that its primary connects (D23): one WARN once it has not for
    /// longer than the startup time.
    fn check_silence(&mut self, i: usize) {
        let Some(r) = self.rels.get_mut(i) else {
            return;
        };
        if r.silence_warned || r.refusal_active || r.endpoint_finished() {
            return;
        }
        if let Some(secs) = r.silence(Instant::now()) {
            r.silence_warned = true;
            tracing::warn!(
                "failover {}: {}",
                r.cfg.name,
                silence_text(r.cfg.peer.to_canonical(), secs)
            );
        }
    }

    /// The first message of an accepted connection: a CONNECT names the relationship (§6.1).
    fn route(&mut self, id: u64, body: &[u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = c.link.peer().ip().to_canonical();
        let Some(name) = connect_relationship_name(body) else {
            self.counters.no_connect += 1;
            tracing::warn!(
                "failover: the first message from {peer} is not a CONNECT (type {}): closed",
                body.first().copied().unwrap_or(0)
            );
            c.link.abort("first message not a CONNECT");
            return;
        };
        let candidates: Vec<usize> = self
            .rels
            .iter()
            .enumerate()
            .filter(|(_, r)| r.cfg.peer.to_canonical() == peer)
            .map(|(i, _)| i)
            .collect();
        let secondary = |i: &usize| {
            self.rels
                .get(*i)
                .is_some_and(|r| r.cfg.role == FailoverRole::Secondary)
        };
        // By name; without a name the only one; otherwise the first secondary one, whose
        // endpoint refuses a wrong name with CONNECTREPLY ConfigurationConflict (D10);
        // otherwise a primary one, which refuses the role conflict (D23).
        let chosen = candidates
            .iter()
            .copied()
            .find(|&i| {
                self.rels
                    .get(i)
                    .is_some_and(|r| Some(r.cfg.name.as_str()) == name)
            })
            .or_else(|| candidates.iter().copied().find(secondary))
            .or_else(|| candidates.first().copied());
        let Some(i) = chosen else {
            c.link.abort("no relationship");
            return;
        };
        if !secondary(&i) {
            return self.refuse_role_conflict(id, i, body);
        }
        let tls = c.tls.clone();
        c.rel = Some(i);
        c.current = true;
        let now = self.now();
        let old = self.rels.get_mut(i).and_then(|r| r.conn.replace(id));
        if let Some(old) = old
            && let Some(oc) = self.conns.get_mut(&old)
        {
            // The new connection wins (the partner restarted, or the old one is dead and we
            // have not noticed yet).
            oc.current = false;
            oc.link
                .abort("replaced by a new connection from the partner");
            if let Some(r) = self.rels.get_mut(i) {
                r.endpoint.handle_closed(now);
            }
            self.drive(i);
        }
        if let Some(r) = self.rels.get_mut(i) {
            r.connections += 1;
            r.tls_peer = tls;
            // The primary connects: a silence is over (D23).
            if let Some(since) = r.silent_since.take()
                && r.silence_warned
            {
                tracing::info!(
                    "failover {}: the primary connected, after {} s without a connection",
                    r.cfg.name,
                    since.elapsed().as_secs()
                );
            }
            r.silence_warned = false;
            tracing::info!(
                "failover {}: CONNECT from {peer}{}",
                r.cfg.name,
                name.map_or_else(String::new, |n| format!(" for relationship {n:?}"))
            );
            r.endpoint.handle_connected(now);
            r.endpoint.handle_message(now, body);
        }
        self.drive(i);
    }

    /// Drains endpoint `i`'s outputs in the documented order: persist (durable before the
    /// confirmation), transmit, events.
    fn drive(&mut self, i: usize) {
        self.dirty = true;
        let now = self.now();
        let Some(r) = self.rels.get_mut(i) else {
            return;
        };
        loop {
            // 1. Records: durable before `handle_persisted` releases what depends on them.
            if r.unwritten.is_none() {
                r.unwritten = r.endpoint.poll_persist();
            }
            if let Some(record) = r.unwritten {
                match state_file::store(&r.state_file, &record) {
                    Ok(()) => {
                        r.unwritten = None;
                        r.endpoint.handle_persisted();
                        continue;
                    }
                    Err(e) => {
                        r.persist_errors += 1;
                        tracing::error!(
                            "failover {}: writing {}: {e}; frames held until it is written",
                            r.cfg.name,
                            r.state_file.display()
                        );
                    }
                }
            }
            // 2. Frames, in order; a close after them. Queued, then written together: a window
            // of BNDUPDs (or their BNDREPLYs) leaves in a few TLS records and system calls,
            // not one of each per frame (a close writes what is queued first).
            let mut sent = false;
            let mut queued = None;
            while let Some(t) = r.endpoint.poll_transmit() {
                sent = true;
                let conn = r
                    .conn
                    .and_then(|id| self.conns.get_mut(&id).map(|c| (id, c)));
                match t {
                    Transmit::Frame(f) => {
                        if let Some((id, c)) = conn {
                            c.link.queue(&f);
                            if queued.is_some_and(|q| q != id)
                                && let Some(c) = queued.and_then(|q| self.conns.get_mut(&q))
                            {
                                c.link.flush_queued();
                            }
                            queued = Some(id);
                        }
                    }
                    Transmit::Close { reason } => {
                        if let Some((_, c)) = conn {
                            c.current = false;
                            c.link.close(&down_text(&reason), Instant::now());
                        }
                        r.connection_ended();
                    }
                }
            }
            if let Some(c) = queued.and_then(|id| self.conns.get_mut(&id)) {
                c.link.flush_queued();
            }
            // 3. Events.
            while let Some(e) = r.endpoint.poll_event() {
                let name = &r.cfg.name;
                r.sync.on_event(&e, now);
                match e {
                    Event::StateChanged { from, to } => tracing::info!(
                        "failover {name}: {} -> {}",
                        state_name(from),
                        state_name(to)
                    ),
                    Event::PolicyChanged(p) => {
                        tracing::info!("failover {name}: serving policy: {}", policy_text(&p));
                        self.policy = Some(p);
                    }
                    Event::PartnerStateChanged(p) => tracing::info!(
                        "failover {name}: partner in {} since {}{}",
                        state_name(p.state),
                        p.since.0,
                        if p.flags.0 & tandem_wire::failover::option::ServerFlags::STARTUP != 0 {
                            " (STARTUP)"
                        } else {
                            ""
                        }
                    ),
                    Event::LinkUp => {
                        tracing::info!("failover {name}: communications OK (RFC 8156 §6.1)");
                        r.retry_delay = Duration::from_secs(u64::from(r.cfg.connect_retry.max(1)));
                        // The episode of a refusal or a role conflict is over (D23).
                        if r.refusal_active || r.role_conflict.is_some() {
                            tracing::info!(
                                "failover {name}: connected; the problem is over (it was: {})",
                                problem_text(
                                    name,
                                    r.role_conflict,
                                    r.newest_refusal().filter(|_| r.refusal_active),
                                    None
                                )
                                .unwrap_or_default()
                            );
                        }
                        r.refusal_active = false;
                        r.refusal_logged = None;
                        r.role_conflict = None;
                    }
                    Event::LinkDown(
                        reason @ (DownReason::ConnectRefused(_)
                        | DownReason::ConnectRefusedByPartner(_)),
                    ) => match r.endpoint.last_refusal().cloned() {
                        // A refused CONNECT, either way: the status and the text, at ERROR
                        // once per episode (D23).
                        Some(f) => {
                            let key = (f.status, f.text.clone());
                            if r.refusal_logged.as_ref() == Some(&key) {
                                tracing::debug!(
                                    "failover {name}: link down: {}",
                                    refusal_sentence(&f)
                                );
                            } else {
                                tracing::error!(
                                    "failover {name}: link down: {}",
                                    refusal_sentence(&f)
                                );
                                r.refusal_logged = Some(key);
                            }
                            r.note_refusal(f);
                            r.refusal_active = true;
                        }
                        None => {
                            tracing::warn!("failover {name}: link down: {}", down_text(&reason));
                        }
                    },
                    Event::LinkDown(reason) => {
                        tracing::warn!("failover {name}: link down: {}", down_text(&reason));
                    }
                    Event::PeerMisbehaved(p) => tracing::warn!(
                        "failover {name}: the partner broke the protocol: {p:?} ({})",
                        p.text()
                    ),
                    Event::Alarm(s) => tracing::error!(
                        "failover {name}: ALARM: entered {} (RFC 8156 §8.9, §8.11)",
                        state_name(s)
                    ),
                    Event::ExcessiveTimeSkew(s) => tracing::error!(
                        "failover {name}: the partner's clock is {s} s off ours (more than 5 s, \
                         RFC 8156 §7.1): fix the clocks"
                    ),
                    Event::UpdateRequested { all } => {
                        // The bindings go out from `pump_bindings`; UPDDONE after the last
                        // BNDREPLY (§8.5.2).
                        tracing::info!(
                            "failover {name}: the partner asked for {} bindings ({})",
                            if all { "all" } else { "the unacknowledged" },
                            if all { "UPDREQALL" } else { "UPDREQ" }
                        );
                    }
                    Event::UpdatesMayFlow => tracing::info!(
                        "failover {name}: binding updates flow; sending what the partner has \
                         not acknowledged (RFC 8156 §8.8)"
                    ),
                    other => tracing::info!("failover {name}: {other:?}"),
                }
            }
            // 4. Binding messages: processed by `pump_bindings`, which has the shards.
            while let Some(b) = r.endpoint.poll_binding() {
                r.sync.input(b);
            }
            if !sent && r.unwritten.is_none() {
                break;
            }
            if r.unwritten.is_some() {
                break;
            }
        }
    }

    /// `tandem partner-down [NAME]` (RFC 8156 §8.8.2, §8.9.2, §8.11.2 external command).
    ///
    /// # Errors
    /// No such relationship (or a name is needed), or the endpoint refuses in its state.
    pub fn partner_down(&mut self, name: Option<&str>) -> Result<String, String> {
        let i = match name {
            Some(n) => self
                .rels
                .iter()
                .position(|r| r.cfg.name == n)
                .ok_or_else(|| format!("no failover relationship named {n:?}"))?,
            None if self.rels.len() == 1 => 0,
            None => {
                return Err(format!(
                    "{} relationships: name one ({})",
                    self.rels.len(),
                    self.rels
                        .iter()
                        .map(|r| r.cfg.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        let now = self.now();
        let Some(r) = self.rels.get_mut(i) else {
            return Err("no such relationship".to_owned());
        };
        let before = r.endpoint.state().name();
        r.endpoint
            .handle_operator(now, Operator::PartnerDown)
            .map_err(|e| format!("failover {}: refused: {e}", r.cfg.name))?;
        tracing::warn!(
            "failover {}: operator declared the partner down (was {})",
            r.cfg.name,
            state_name(before)
        );
        self.drive(i);
        let r = self.rels.get(i).ok_or("no such relationship")?;
        Ok(format!(
            "failover {}: {} -> {}\n",
            r.cfg.name,
            state_name(before),
            state_name(r.endpoint.state().name())
        ))
    }

    /// Graceful stop (D7): each endpoint sends DISCONNECT with ServerShuttingDown, records
    /// its last state, and the links are given up to [`SHUTDOWN_FLUSH`] to deliver it.
    pub fn shutdown<K>(&mut self, ev: &mut EventLoop<K>, is_ours: impl Fn(K) -> Option<FailoverKey>)
    where
        K: From<FailoverKey> + Copy + Eq + Hash + Debug,
    {
        let now = self.now();
        for i in 0..self.rels.len() {
            if let Some(r) = self.rels.get_mut(i) {
                if let Err(e) = r.endpoint.handle_operator(now, Operator::Shutdown) {
                    tracing::debug!("failover {}: shutdown: {e}", r.cfg.name);
                }
                r.next_attempt = None;
            }
            ev.cancel_timer(FailoverKey::Retry(i).into());
            self.drive(i);
        }
        // Pending connections are dropped; the others close after their last frames.
        let pending: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.rel.is_none())
            .map(|(&id, _)| id)
            .collect();
        for id in pending {
            if let Some(c) = self.conns.get_mut(&id) {
                c.link.abort("shutting down");
            }
        }
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        let mut wakes = Vec::new();
        self.dirty = true;
        while !self.conns.is_empty() && Instant::now() < deadline {
            self.arm(ev);
            for id in self.conns.keys().copied().collect::<Vec<_>>() {
                self.conn_ready(id, false, ev);
            }
            if self.conns.is_empty() {
                break;
            }
            ev.set_timer(FailoverKey::Retry(usize::MAX).into(), deadline);
            if let Err(e) = ev.turn(&mut wakes) {
                tracing::warn!("failover: shutdown: {e}");
                break;
            }
            for wake in wakes.drain(..) {
                if let Some(FailoverKey::Conn(id)) = is_ours(wake.key()) {
                    self.conn_ready(id, matches!(wake, Wake::Timer(_)), ev);
                }
            }
        }
        ev.cancel_timer(FailoverKey::Retry(usize::MAX).into());
        for (id, mut c) in std::mem::take(&mut self.conns) {
            if !c.link.is_closed() {
                tracing::warn!(
                    "failover: connection with {} not closed within {SHUTDOWN_FLUSH:?}: dropped",
                    c.link.peer()
                );
            }
            ev.cancel_timer(FailoverKey::Conn(id).into());
            let _ = ev.deregister(c.link.stream_mut(), c.token);
        }
    }

    /// Every relationship as `status` shows it.
    pub fn views(&self) -> Vec<FailoverView> {
        let now_unix = unix_now();
        let now_us = self.mono_us(Instant::now());
        self.rels
            .iter()
            .map(|r| {
                let s = r.endpoint.status();
                let latency = r.sync.latency(now_us);
                let unix = |t: FailoverTime| t.to_unix(now_unix);
                let (link, link_detail) = match s.link {
                    LinkStatus::Up { phase, .. } => (
                        "up",
                        match phase {
                            Phase::AwaitConnectreply => "CONNECT sent, awaiting CONNECTREPLY",
                            Phase::AwaitConnect => "awaiting CONNECT",
                            Phase::AwaitState => "awaiting the partner's STATE",
                            Phase::Established => "established",
                        }
                        .to_owned(),
                    ),
                    LinkStatus::Down { reason } => {
                        let mut why =
                            reason.map_or_else(|| "never connected".to_owned(), |d| down_text(&d));
                        if let Some(c) = &r.last_close {
                            why.push_str(&format!("; transport: {c}"));
                        }
                        if let Some(at) = r.next_attempt {
                            let secs = at.saturating_duration_since(Instant::now()).as_secs();
                            why.push_str(&format!("; next attempt in {secs} s"));
                        } else if r.conn.is_some() {
                            why.push_str("; connecting");
                        }
                        ("down", why)
                    }
                };
                let mut counters: Vec<(String, u64)> = vec![
                    ("connections".to_owned(), r.connections),
                    ("persist_errors".to_owned(), r.persist_errors),
                    (
                        "disconnects_received".to_owned(),
                        s.counters.disconnects_received,
                    ),
                    ("keepalive_expired".to_owned(), s.counters.keepalive_expired),
                    ("excessive_skew".to_owned(), s.counters.excessive_skew),
                    ("connects_refused".to_owned(), s.counters.connects_refused),
                    (
                        "connects_refused_by_partner".to_owned(),
                        s.counters.connects_refused_by_partner,
                    ),
                    (
                        "unknown_message_types".to_owned(),
                        s.counters.unknown_message_types,
                    ),
                    ("bndupd_sent".to_owned(), s.counters.bndupd_sent),
                    ("bndreply_received".to_owned(), s.counters.bndreply_received),
                    ("bndupd_received".to_owned(), s.counters.bndupd_received),
                    ("bndreply_sent".to_owned(), s.counters.bndreply_sent),
                    ("bndupd_refused".to_owned(), s.counters.bndupd_refused),
                    ("update_timeouts".to_owned(), s.counters.update_timeouts),
                    ("update_backlog".to_owned(), r.sync.backlog() as u64),
                    ("update_changes".to_owned(), r.sync.counters().changes),
                    ("update_overflow".to_owned(), r.sync.counters().overflow),
                    (
                        "update_ring_overflow".to_owned(),
                        r.sync.counters().ring_overflow,
                    ),
                    (
                        "update_unencodable".to_owned(),
                        r.sync.counters().unencodable,
                    ),
                    (
                        "partner_leases_accepted".to_owned(),
                        r.sync.counters().leases_accepted,
                    ),
                    (
                        "partner_leases_rejected".to_owned(),
                        r.sync.counters().leases_rejected,
                    ),
                    (
                        "leases_acked_by_partner".to_owned(),
                        r.sync.counters().acked,
                    ),
                    (
                        "leases_rejected_by_partner".to_owned(),
                        r.sync.counters().rejected_by_partner,
                    ),
                    (
                        "durability_failures".to_owned(),
                        r.sync.counters().durability_failures,
                    ),
                    ("update_scans".to_owned(), r.sync.counters().scans),
                    ("prefix_rebalances".to_owned(), r.sync.counters().rebalances),
                    (
                        "prefixes_moved".to_owned(),
                        r.sync.counters().prefixes_moved,
                    ),
                ];
                let misbehaved: u64 = s.counters.misbehaved.iter().sum();
                counters.push(("peer_misbehaved".to_owned(), misbehaved));
                for (k, n) in CloseKind::ALL.iter().zip(r.closes) {
                    counters.push((format!("close_{}", k.name()), n));
                }
                // The listener's drops before any relationship is known (shown with each).
                counters.push((
                    "dropped_unknown_peer".to_owned(),
                    self.counters.unknown_peer,
                ));
                counters.push((
                    "dropped_too_many_pending".to_owned(),
                    self.counters.too_many_pending,
                ));
                counters.push(("dropped_no_connect".to_owned(), self.counters.no_connect));
                counters.push(("role_conflict".to_owned(), r.role_conflicts));
                let startup_flag = tandem_wire::failover::option::ServerFlags::STARTUP;
                FailoverView {
                    name: r.cfg.name.clone(),
                    role: r.cfg.role.as_str().to_owned(),
                    state: state_name(s.state).to_owned(),
                    state_since: unix(s.state_since),
                    previous: s.previous.map(|p| state_name(p).to_owned()),
                    startup: s.flags.0 & startup_flag != 0,
                    partner_state: s.partner.map(|p| state_name(p.state).to_owned()),
                    partner_since: s.partner.map(|p| unix(p.since)),
                    partner_startup: s.partner.is_some_and(|p| p.flags.0 & startup_flag != 0),
                    link: link.to_owned(),
                    link_detail,
                    communications_ok: s.communications_ok,
                    security: match r.security {
                        Security::Insecure => "insecure",
                        Security::Tls(_) => "tls",
                    }
                    .to_owned(),
                    tls_peer: r.tls_peer.as_ref().map(ToString::to_string),
                    last_contact: s.last_contact.map(unix),
                    skew: s.skew,
                    max_abs_skew: s.max_abs_skew,
                    unacked: r.endpoint.unacked_updates() as u64,
                    update_backlog: r.sync.backlog() as u64,
                    bndupd_sent_per_s: r.sync.rates().0,
                    bndupd_received_per_s: r.sync.rates().1,
                    update_latency_count: latency.count,
                    update_latency_p50_us: latency.p50_us,
                    update_latency_p99_us: latency.p99_us,
                    update_latency_max_us: latency.max_us,
                    mclt: s.mclt,
                    policy: policy_text(&s.policy),
                    problem: problem_text(
                        &r.cfg.name,
                        r.role_conflict,
                        r.newest_refusal().filter(|_| r.refusal_active),
                        r.silence(Instant::now())
                            .map(|secs| (r.cfg.peer.to_canonical(), secs)),
                    ),
                    last_refusal_received: r
                        .refusal_received
                        .as_ref()
                        .map(|f| refusal_view(f, now_unix)),
                    last_refusal_sent: r.refusal_sent.as_ref().map(|f| refusal_view(f, now_unix)),
                    counters,
                }
            })
            .collect()
    }

    /// The plane's own counters.
    pub const fn counters(&self) -> &PlaneCounters {
        &self.counters
    }
}

impl Relationship {
    /// The STARTUP time (§8.3): how long a secondary waits for its primary before it says so.
    fn startup_time(&self) -> Duration {
        Duration::from_secs(u64::from(self.cfg.startup_time))
    }

    /// Secondary: seconds without a connection from the primary, once that is longer than
    /// the startup time (D23); `None` otherwise, and for a primary.
    fn silence(&self, now: Instant) -> Option<u64> {
        let since = self.silent_since?;
        let silent = now.saturating_duration_since(since);
        (silent >= self.startup_time() && !self.endpoint_finished()).then_some(silent.as_secs())
    }

    /// Keeps a refusal, by its direction.
    fn note_refusal(&mut self, f: Refusal) {
        self.newest_refusal = Some(f.direction);
        match f.direction {
            Direction::Sent => self.refusal_sent = Some(f),
            Direction::Received => self.refusal_received = Some(f),
        }
    }

    /// The newer of the last refusal sent and the last received.
    fn newest_refusal(&self) -> Option<&Refusal> {
        match self.newest_refusal? {
            Direction::Sent => self.refusal_sent.as_ref(),
            Direction::Received => self.refusal_received.as_ref(),
        }
    }

    /// The endpoint's connection is gone; a secondary's silence starts (D23).
    fn connection_ended(&mut self) {
        self.conn = None;
        self.tls_peer = None;
        if self.cfg.role == FailoverRole::Secondary && self.silent_since.is_none() {
            self.silent_since = Some(Instant::now());
        }
    }

    /// Shut down: no more connection attempts.
    fn endpoint_finished(&self) -> bool {
        matches!(
            self.endpoint.status().link,
            LinkStatus::Down {
                reason: Some(DownReason::Shutdown)
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};

    use tandem_failover::{Direction, FailoverTime, Refusal};
    use tandem_wire::dhcp::StatusCode;

    use super::{problem_text, refusal_view, silence_text};

    const PEER: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

    fn refusal(direction: Direction, text: &str) -> Refusal {
        Refusal {
            direction,
            status: StatusCode::CONFIGURATION_CONFLICT,
            text: text.to_owned(),
            at: FailoverTime::from_unix(1_796_000_000),
        }
    }

    #[test]
    fn problem_says_both_primary_first_then_a_refusal_then_a_silent_primary_d23() {
        let received = refusal(
            Direction::Received,
            "both servers are configured as primary for relationship \"dc\"",
        );
        let silence = Some((PEER, 12));
        assert_eq!(
            problem_text("dc", Some(PEER), Some(&received), silence).as_deref(),
            Some(
                "both servers are configured as primary for relationship \"dc\": 2001:db8::2 \
                 connected to this primary and sent CONNECT, which only a primary sends \
                 (RFC 8156 §6.1); set role = \"secondary\" on one of them"
            )
        );
        assert_eq!(
            problem_text("dc", None, Some(&received), silence).as_deref(),
            Some(
                "the partner refused our CONNECT with ConfigurationConflict (17): both servers \
                 are configured as primary for relationship \"dc\""
            )
        );
        let sent = refusal(
            Direction::Sent,
            "CONNECT names relationship \"dc9\" but this server's relationship with its peer \
             is \"dc\"",
        );
        assert_eq!(
            problem_text("dc", None, Some(&sent), None).as_deref(),
            Some(
                "we refused the partner's CONNECT with ConfigurationConflict (17): CONNECT names \
                 relationship \"dc9\" but this server's relationship with its peer is \"dc\""
            )
        );
        assert_eq!(
            problem_text("dc", None, None, silence).as_deref(),
            Some(
                "no connection from the primary (2001:db8::2) for 12 s: is the partner running \
                 and configured as role = \"primary\"?"
            )
        );
        assert_eq!(problem_text("dc", None, None, None), None);
        assert_eq!(
            silence_text(PEER, 12),
            problem_text("dc", None, None, silence).unwrap()
        );
    }

    #[test]
    fn a_refusal_shows_its_rfc_status_name_code_text_and_unix_time() {
        let r = refusal(Direction::Received, "both primary");
        let v = refusal_view(&r, 1_796_000_100);
        assert_eq!(
            (v.status.as_str(), v.code, v.text.as_str(), v.at),
            ("ConfigurationConflict", 17, "both primary", 1_796_000_000)
        );
        let mut odd = refusal(Direction::Sent, "x");
        odd.status = StatusCode(999);
        let v = refusal_view(&odd, 1_796_000_100);
        assert_eq!((v.status.as_str(), v.code), ("999", 999));
    }
}
