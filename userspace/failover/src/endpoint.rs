//! [`Endpoint`]: one side of an RFC 8156 relationship, sans I/O.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use tandem_lease::ServingPolicy;
use tandem_wire::dhcp::{MessageType, StatusCode, StatusCodeOption};
use tandem_wire::failover::frame::{FRAME_HEADER_LEN, MAX_MESSAGE_LEN};
use tandem_wire::failover::option::{
    ConnectFlags, KeepaliveTime, MaxUnackedBndupd, Mclt, PartnerDownTime, ProtocolVersion,
    RelationshipName, ServerFlags, StartTimeOfState,
};
use tandem_wire::failover::time::MAX_SKEW_SECS;
use tandem_wire::failover::{
    Bndreply, ConnectParams, Connectreply, FAILOVER_HEADER_LEN, Failover, FailoverTime,
    MAX_TRANSACTION_ID,
};

use crate::config::{CONTACT_PER_KEEPALIVE_TIME, Config, ConfigError, MIN_MCLT_SECS, Role};
use crate::event::{
    BindingInput, Counters, DownReason, Event, LinkStatus, Now, Operator, PeerMisbehaved, Phase,
    Refused, Status, Transmit, UpdateNotSent,
};
use crate::machine::{self, StateName};
use crate::persist::{PartnerRecord, Persisted};
use crate::refuse::{Refusal, name_mismatch_text};

/// Longest chain of transitions one input can cause; the machine reaches a fixpoint in at
/// most three (tested in `machine`), this is a guard.
const MAX_CHAIN: usize = 8;

/// An RFC 8156 §8 endpoint state with the data it needs, in the order of the
/// OPTION_F_SERVER_STATE values (§5.5.16). Times ending in `_ms` are on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// STARTUP (§8.3): unresponsive, waiting for communications until `until_ms`;
    /// `previous` is PREVIOUS-STATE after §8.3.2 step 2, what STATE announces meanwhile.
    Startup {
        /// PREVIOUS-STATE.
        previous: StateName,
        /// When the STARTUP timer expires (§8.3.2 step 6).
        until_ms: u64,
    },
    /// NORMAL (§8.8).
    Normal,
    /// COMMUNICATIONS-INTERRUPTED (§8.9), with the auto-partner-down deadline if configured.
    CommunicationsInterrupted {
        /// When auto-partner-down moves to PARTNER-DOWN (§8.9.2).
        auto_partner_down_ms: Option<u64>,
    },
    /// PARTNER-DOWN (§8.4) since `since` (sent as OPTION_F_PARTNER_DOWN_TIME, §6.3).
    PartnerDown {
        /// When PARTNER-DOWN was entered.
        since: FailoverTime,
    },
    /// POTENTIAL-CONFLICT (§8.10).
    PotentialConflict,
    /// RECOVER (§8.5). `request_all`: UPDREQALL (`true`) or UPDREQ, decided on the first
    /// communications OK and reused when reissuing (§8.5.2).
    Recover {
        /// Whether the request is UPDREQALL.
        request_all: Option<bool>,
    },
    /// RECOVER-WAIT (§8.6) until `until_ms`: TIME-OF-FAILURE (or our start) + MCLT.
    RecoverWait {
        /// When RECOVER-DONE follows (§8.6.2).
        until_ms: u64,
    },
    /// RECOVER-DONE (§8.7).
    RecoverDone,
    /// RESOLUTION-INTERRUPTED (§8.11).
    ResolutionInterrupted,
    /// CONFLICT-DONE (§8.12).
    ConflictDone,
}

impl State {
    /// The state's name.
    pub const fn name(&self) -> StateName {
        match self {
            Self::Startup { .. } => StateName::Startup,
            Self::Normal => StateName::Normal,
            Self::CommunicationsInterrupted { .. } => StateName::CommunicationsInterrupted,
            Self::PartnerDown { .. } => StateName::PartnerDown,
            Self::PotentialConflict => StateName::PotentialConflict,
            Self::Recover { .. } => StateName::Recover,
            Self::RecoverWait { .. } => StateName::RecoverWait,
            Self::RecoverDone => StateName::RecoverDone,
            Self::ResolutionInterrupted => StateName::ResolutionInterrupted,
            Self::ConflictDone => StateName::ConflictDone,
        }
    }
}

/// A transmit waiting in the outbox, held until record `needs` is durable.
#[derive(Debug)]
struct Queued {
    transmit: Transmit,
    needs: u64,
}

/// An UPDREQ / UPDREQALL we sent and whose UPDDONE has not come.
#[derive(Clone, Copy, Debug)]
struct UpdateRequest {
    xid: u32,
    /// UPDREQALL.
    all: bool,
    /// The state entry it was sent for; an UPDDONE for an older entry is dropped.
    epoch: u64,
    /// Drop the connection if neither UPDDONE nor BNDUPD arrives by then (§8.5.2).
    deadline_ms: u64,
}

/// One connection (§6): from [`Endpoint::handle_connected`] until it ends.
#[derive(Debug)]
struct Conn {
    phase: Phase,
    since_ms: u64,
    /// Primary: the CONNECT awaiting its CONNECTREPLY.
    connect_xid: Option<u32>,
    /// FO_KEEPALIVE_TIMER (§6.6): reset on every message received.
    recv_deadline_ms: u64,
    /// FO_SEND_TIME in ms (partner's keepalive / 4, §6.5), known after the handshake.
    send_interval_ms: u64,
    /// FO_SEND_TIMER (§6.6): armed once the handshake is done (D9).
    send_deadline_ms: Option<u64>,
    /// The partner's OPTION_F_MAX_UNACKED_BNDUPD (for part 2's BNDUPD window).
    partner_max_unacked: Option<u32>,
    /// What our last STATE on this connection said.
    last_state_sent: Option<(StateName, ServerFlags)>,
    /// The flags most recently received had STARTUP set (our ACK_STARTUP, §5.5.15).
    ack_startup: bool,
    /// Our outstanding UPDREQ / UPDREQALL messages.
    updates: Vec<UpdateRequest>,
    /// The state entry whose update request got its UPDDONE.
    update_done_epoch: Option<u64>,
    /// Our outstanding POOLREQ.
    pool_xid: Option<u32>,
    /// The state entry (NORMAL) for which POOLREQ was sent.
    pool_epoch: Option<u64>,
    /// Identifies this connection to the driver ([`BindingInput::Update::conn`]): a BNDREPLY
    /// prepared for an earlier connection is not sent on this one.
    id: u64,
    /// Our BNDUPDs awaiting their BNDREPLY: transaction-id → the driver's tag (§7.4, §7.7).
    sent_updates: BTreeMap<u32, u64>,
    /// The partner's BNDUPDs the driver has not answered yet (at most our
    /// MAX_UNACKED_BNDUPD, §6.1.1).
    received_updates: BTreeSet<u32>,
    /// The partner's UPDREQ / UPDREQALL we are answering (§8.5.2, §5.3.7).
    responding: Option<Responding>,
    /// [`Event::UpdatesMayFlow`] was given for the current flow (D25).
    flow_announced: bool,
}

/// The partner's UPDREQ / UPDREQALL being answered: UPDDONE (with its transaction-id) goes
/// once the driver has sent every update the request asks for and the last BNDREPLY came.
#[derive(Clone, Copy, Debug)]
struct Responding {
    xid: u32,
    /// The driver has sent every update of the request ([`Endpoint::update_stream_complete`]).
    complete: bool,
}

/// One side of an RFC 8156 failover relationship (§6.2: one relationship name, one role).
/// Performs no I/O and reads no clock; see the crate documentation for the call order.
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    /// The MCLT in use (the secondary adopts the primary's, §6.1.2).
    mclt: u32,
    state: State,
    state_since: FailoverTime,
    previous: Option<StateName>,
    /// Counts state entries; requests are tied to the entry they were sent in.
    epoch: u64,
    /// The state and start time the records carry: the last non-STARTUP state (`None` on a
    /// first start until a state is entered).
    recorded: Option<(StateName, FailoverTime)>,
    /// No persisted record at start (§8.3.2 step 1, second paragraph).
    fresh: bool,
    /// TIME-OF-FAILURE (§8.3.2 step 1): `None` when unknown (no record).
    time_of_failure: Option<FailoverTime>,
    /// When this endpoint was created (RECOVER-WAIT's base without TIME-OF-FAILURE, §8.6.2).
    started_at: FailoverTime,
    /// COMMUNICATED as read from storage at start.
    communicated_at_start: bool,
    /// COMMUNICATED now.
    communicated: bool,
    /// A full resynchronisation (UPDREQALL) was asked for and its UPDDONE has not come:
    /// persisted, so a restart asks for everything again (`docs/failover.md` D47).
    resync_all: bool,
    /// The partner's COMMUNICATED bit in the first STATE it sent us after our start: whether
    /// it had talked to us before (§8.5.2, §8.6.2).
    partner_communicated_at_first_state: Option<bool>,
    partner: Option<PartnerRecord>,
    last_contact: Option<FailoverTime>,
    link: Option<Conn>,
    last_down: Option<DownReason>,
    /// The last CONNECT refused, by us or by the partner, with its text (D23).
    last_refusal: Option<Refusal>,
    next_xid: u32,
    outbox: VecDeque<Queued>,
    /// Something persisted changed since the last record was polled.
    record_dirty: bool,
    record_seq: u64,
    polled_seq: u64,
    durable_seq: u64,
    operating_until: FailoverTime,
    heartbeat_ms: u64,
    events: VecDeque<Event>,
    policy: ServingPolicy,
    counters: Counters,
    skew: Option<i64>,
    max_abs_skew: u64,
    shut_down: bool,
    /// Binding messages for the driver (BNDUPD to store, BNDREPLY to apply).
    bindings: VecDeque<BindingInput>,
    next_conn_id: u64,
}

impl Endpoint {
    /// An endpoint that starts in STARTUP (§8.3). `persisted` is the last record the driver
    /// confirmed durable, or `None` on a first start: PREVIOUS-STATE is then RECOVER with an
    /// unknown TIME-OF-FAILURE (§8.3.2 step 1; docs/failover.md D8).
    pub fn new(
        config: Config,
        persisted: Option<Persisted>,
        now: Now,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let role = config.role;
        let resync_all = persisted.is_some_and(|p| p.resync_all);
        let (previous_state, recorded, tof, communicated, mclt, partner, last_contact, prev) =
            match persisted {
                Some(p) => {
                    let mclt = match role {
                        // §6.1.2: the secondary keeps the primary's MCLT until a new CONNECT.
                        Role::Secondary if p.mclt >= MIN_MCLT_SECS => p.mclt,
                        _ => config.mclt,
                    };
                    let tof = (p.operating_until.0 != 0).then_some(p.operating_until);
                    (
                        machine::startup_previous_state(p.state),
                        Some((p.state, p.state_since)),
                        tof,
                        p.communicated,
                        mclt,
                        p.partner,
                        p.last_contact,
                        p.previous,
                    )
                }
                None => (
                    StateName::Recover,
                    None,
                    None,
                    false,
                    config.mclt,
                    None,
                    None,
                    None,
                ),
            };
        let startup_ms = u64::from(config.startup_secs) * 1000;
        let heartbeat_ms = now
            .mono_ms
            .saturating_add(u64::from(config.heartbeat) * 500);
        let mut ep = Self {
            mclt,
            state: State::Startup {
                previous: previous_state,
                until_ms: now.mono_ms.saturating_add(startup_ms),
            },
            state_since: now.wall,
            previous: prev,
            epoch: 0,
            recorded,
            fresh: persisted.is_none(),
            time_of_failure: tof,
            started_at: now.wall,
            communicated_at_start: communicated,
            communicated,
            resync_all,
            partner_communicated_at_first_state: None,
            partner,
            last_contact,
            link: None,
            last_down: None,
            last_refusal: None,
            next_xid: 1,
            outbox: VecDeque::new(),
            record_dirty: false,
            record_seq: 0,
            polled_seq: 0,
            durable_seq: 0,
            operating_until: now.wall,
            heartbeat_ms,
            events: VecDeque::new(),
            policy: machine::serving_policy(role, StateName::Startup, mclt),
            counters: Counters::default(),
            skew: None,
            max_abs_skew: 0,
            shut_down: false,
            bindings: VecDeque::new(),
            next_conn_id: 1,
            config,
        };
        // A fresh record right away: its operating-until bounds this run's TIME-OF-FAILURE.
        if ep.recorded.is_some() {
            ep.mark_dirty(now);
        }
        ep.events.push_back(Event::PolicyChanged(ep.policy));
        Ok(ep)
    }

    /// The driver's lease stores may have lost their latest changes (a power loss: they were
    /// not closed cleanly and the machine restarted since; `docs/failover.md` D56). Call once,
    /// right after [`Endpoint::new`].
    ///
    /// The partner may hold, and consider acknowledged, bindings this server granted in its last
    /// moments and no longer knows: nothing would send them back, and this server could give
    /// the same address or prefix to another client. So, as for a server without storage
    /// (§8.3.2 step 1), PREVIOUS-STATE becomes RECOVER, recorded at once so that a restart
    /// before the resynchronisation ends still recovers, and RECOVER asks for everything
    /// (UPDREQALL, §8.5.2, D47) before this server allocates. TIME-OF-FAILURE stays what the
    /// record says (§8.6.2's wait). A server whose record says PARTNER-DOWN keeps it: its
    /// partner was down and cannot hold anything this server lost.
    pub fn stores_set_back(&mut self, now: Now) {
        let State::Startup { previous, .. } = &mut self.state else {
            return;
        };
        if *previous == StateName::PartnerDown {
            return;
        }
        *previous = StateName::Recover;
        self.resync_all = true;
        if self.recorded.is_some() {
            self.recorded = Some((StateName::Recover, now.wall));
            self.mark_dirty(now);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Inputs.

    /// The transport to the partner is up (TCP connected, TLS done if configured, §6.1). The
    /// primary sends CONNECT (§6.1.1); the secondary waits for one. A connection still up is
    /// replaced (the driver has closed it). The keepalive timer starts now (§6.6), which also
    /// bounds the wait for CONNECT / CONNECTREPLY (D9).
    pub fn handle_connected(&mut self, now: Now) {
        if self.shut_down {
            self.push(Transmit::Close {
                reason: DownReason::Shutdown,
            });
            return;
        }
        if self.link.is_some() {
            self.link_down(now, DownReason::Replaced);
        }
        self.outbox.clear();
        self.bindings.clear();
        let keepalive_ms = u64::from(self.config.keepalive) * 1000;
        let id = self.next_conn_id;
        self.next_conn_id += 1;
        let phase = match self.config.role {
            Role::Primary => Phase::AwaitConnectreply,
            Role::Secondary => Phase::AwaitConnect,
        };
        self.link = Some(Conn {
            phase,
            since_ms: now.mono_ms,
            connect_xid: None,
            recv_deadline_ms: now.mono_ms.saturating_add(keepalive_ms),
            send_interval_ms: (keepalive_ms / u64::from(CONTACT_PER_KEEPALIVE_TIME)).max(1000),
            send_deadline_ms: None,
            partner_max_unacked: None,
            last_state_sent: None,
            ack_startup: false,
            updates: Vec::new(),
            update_done_epoch: None,
            pool_xid: None,
            pool_epoch: None,
            id,
            sent_updates: BTreeMap::new(),
            received_updates: BTreeSet::new(),
            responding: None,
            flow_announced: false,
        });
        if self.config.role == Role::Primary {
            let xid = self.alloc_xid();
            if let Some(conn) = self.link.as_mut() {
                conn.connect_xid = Some(xid);
            }
            let name = self.config.relationship_name.clone();
            let connect = Failover::Connect(self.connect_params(Some(&name)));
            self.send(now, &connect, xid);
        }
    }

    /// One message from the partner: the bytes of one frame without the 2-octet length
    /// (RFC 5460 §5.1; [`tandem_wire::failover::FrameDecoder::next_message`]). Never panics:
    /// a protocol violation ends the connection with DISCONNECT and a counted reason (D11).
    pub fn handle_message(&mut self, now: Now, frame: &[u8]) {
        if self.shut_down || self.link.is_none() {
            self.counters.ignored_while_down += 1;
            return;
        }
        self.last_contact = Some(now.wall);
        let keepalive_ms = u64::from(self.config.keepalive) * 1000;
        let phase = match self.link.as_mut() {
            Some(conn) => {
                conn.recv_deadline_ms = now.mono_ms.saturating_add(keepalive_ms);
                conn.phase
            }
            None => return,
        };
        if frame.len() > MAX_MESSAGE_LEN {
            return self.misbehaved(now, PeerMisbehaved::Oversized { len: frame.len() });
        }
        if let Some(&t) = frame.first() {
            let t = MessageType(t);
            if !t.is_failover() && t != MessageType::STARTTLS && t != MessageType::REPLY {
                // D11: an unassigned type is dropped, like RFC 8415 §16's unknown types.
                self.counters.unknown_message_types += 1;
                return;
            }
        }
        let (msg, typed) = match Failover::parse_bytes(frame) {
            Ok(parsed) => parsed,
            Err(e) => return self.misbehaved(now, PeerMisbehaved::Malformed(e)),
        };
        let xid = msg.transaction_id;
        // §7.1, §7.5.1: every message's sent-time is compared with our clock.
        if let Some(sent) = msg.sent_time {
            let skew = i64::from(sent.wrapping_sub(now.wall));
            self.skew = Some(skew);
            self.max_abs_skew = self.max_abs_skew.max(skew.unsigned_abs());
            if skew.unsigned_abs() > u64::from(MAX_SKEW_SECS) {
                let refuse_connect =
                    phase == Phase::AwaitConnect && matches!(typed, Failover::Connect(_));
                return self.excessive_skew(now, skew, refuse_connect.then_some(xid));
            }
        }
        self.dispatch(now, phase, xid, typed, frame);
    }

    /// The transport closed under us (reset, EOF, write error). No DISCONNECT is sent.
    pub fn handle_closed(&mut self, now: Now) {
        if self.link.is_some() {
            self.outbox.clear();
            self.link_down(now, DownReason::TransportClosed);
        }
    }

    /// Time passed: call at (or after) [`Endpoint::poll_timeout`]. Sends CONTACT (§6.6),
    /// declares a silent connection dead (§6.6), and takes the timed transitions: STARTUP's
    /// timer (§8.3.2 step 6), auto-partner-down (§8.9.2) and RECOVER-WAIT's (§8.6.2).
    pub fn handle_timeout(&mut self, now: Now) {
        if self.shut_down {
            return;
        }
        if let Some(conn) = self.link.as_ref() {
            let current = self.epoch;
            if now.mono_ms >= conn.recv_deadline_ms {
                self.counters.keepalive_expired += 1;
                self.disconnect(
                    now,
                    StatusCode::UNSPEC_FAIL,
                    "nothing received within keepalive-time",
                    DownReason::KeepaliveExpired,
                );
            } else if conn
                .updates
                .iter()
                .any(|u| u.epoch == current && now.mono_ms >= u.deadline_ms)
            {
                self.counters.update_timeouts += 1;
                self.disconnect(
                    now,
                    StatusCode::UNSPEC_FAIL,
                    "no UPDDONE and no BNDUPD within the update timeout",
                    DownReason::UpdateTimeout,
                );
            } else if conn.send_deadline_ms.is_some_and(|t| now.mono_ms >= t) {
                // §5.4: CONTACT is initiated by us, so it carries its own transaction-id.
                let xid = self.alloc_xid();
                self.send(now, &Failover::Contact, xid);
            }
        }
        if self.recorded.is_some() && now.mono_ms >= self.heartbeat_ms {
            self.mark_dirty(now);
        }
        self.settle(now);
    }

    /// An operator command. PARTNER-DOWN is refused outside NORMAL, COMMUNICATIONS-INTERRUPTED
    /// and RESOLUTION-INTERRUPTED (§8.8.2, §8.9.2, §8.11.2).
    pub fn handle_operator(&mut self, now: Now, cmd: Operator) -> Result<(), Refused> {
        if self.shut_down {
            return Err(Refused::ShutDown);
        }
        match cmd {
            Operator::PartnerDown => {
                let name = self.state.name();
                if !machine::operator_partner_down_allowed(name) {
                    return Err(Refused::NotFromState(name));
                }
                self.enter(now, StateName::PartnerDown);
                // Not `settle`: the partner's last known state is what the operator overrides;
                // PARTNER-DOWN reacts to the partner's next STATE (§8.4.2).
                self.actions(now);
                Ok(())
            }
            Operator::Shutdown => {
                self.shut_down = true;
                if self.link.is_some() {
                    let xid = self.alloc_xid();
                    self.push_frame(
                        now,
                        &Failover::Disconnect(Some(StatusCodeOption::new(
                            StatusCode::SERVER_SHUTTING_DOWN,
                            "operator shutdown",
                        ))),
                        xid,
                    );
                    self.push(Transmit::Close {
                        reason: DownReason::Shutdown,
                    });
                    self.link = None;
                    self.last_down = Some(DownReason::Shutdown);
                    self.events.push_back(Event::LinkDown(DownReason::Shutdown));
                }
                // The last record says we stopped now; the state stays what it was, and the
                // next start takes §8.3.2 step 2 (D7).
                self.mark_dirty(now);
                self.operating_until = now.wall;
                self.set_policy(machine::serving_policy(
                    self.config.role,
                    StateName::Startup,
                    self.mclt,
                ));
                Ok(())
            }
        }
    }

    /// The driver made the last record returned by [`Endpoint::poll_persist`] durable:
    /// transmits held behind it may go.
    pub fn handle_persisted(&mut self) {
        self.durable_seq = self.polled_seq;
    }

    // ----------------------------------------------------------------------------------------
    // Outputs.

    /// The record to make durable now, if something changed (a state, the partner's state, the
    /// MCLT, the COMMUNICATED flag, or the periodic operating-time refresh). Several changes
    /// between two polls give one record, the latest.
    pub fn poll_persist(&mut self) -> Option<Persisted> {
        if !self.record_dirty {
            return None;
        }
        let (state, state_since) = self.recorded?;
        self.record_dirty = false;
        self.record_seq += 1;
        self.polled_seq = self.record_seq;
        Some(Persisted {
            state,
            state_since,
            previous: self.previous,
            partner: self.partner,
            last_contact: self.last_contact,
            communicated: self.communicated,
            resync_all: self.resync_all,
            mclt: self.mclt,
            operating_until: self.operating_until,
        })
    }

    /// The next thing to send, or `None` (nothing, or held until the record before it is
    /// confirmed with [`Endpoint::handle_persisted`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let front = self.outbox.front()?;
        if front.needs > self.durable_seq {
            return None;
        }
        self.outbox.pop_front().map(|q| q.transmit)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Endpoint::handle_timeout`] next (monotonic ms), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.shut_down {
            return None;
        }
        let mut t: Option<u64> = None;
        let mut at = |v: u64| t = Some(t.map_or(v, |x| x.min(v)));
        match self.state {
            State::Startup { until_ms, .. } => at(until_ms),
            State::CommunicationsInterrupted {
                auto_partner_down_ms: Some(ms),
            } => at(ms),
            State::RecoverWait { until_ms } => at(until_ms),
            _ => {}
        }
        if let Some(conn) = &self.link {
            at(conn.recv_deadline_ms);
            if let Some(s) = conn.send_deadline_ms {
                at(s);
            }
            for u in &conn.updates {
                if u.epoch == self.epoch {
                    at(u.deadline_ms);
                }
            }
        }
        if self.recorded.is_some() {
            at(self.heartbeat_ms);
        }
        t
    }

    /// The current state.
    pub const fn state(&self) -> State {
        self.state
    }

    /// What the engine may do now (also announced by [`Event::PolicyChanged`]).
    pub const fn policy(&self) -> ServingPolicy {
        self.policy
    }

    /// Communications OK (§6.1): the partner's STATE arrived on the current connection.
    pub fn communications_ok(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|c| c.phase == Phase::Established)
    }

    /// A snapshot for the control socket and metrics.
    pub fn status(&self) -> Status {
        Status {
            role: self.config.role,
            state: self.state.name(),
            state_since: self.state_since,
            previous: self.previous,
            policy: self.policy,
            mclt: self.mclt,
            partner: self.partner,
            link: match &self.link {
                Some(c) => LinkStatus::Up {
                    phase: c.phase,
                    since_ms: c.since_ms,
                },
                None => LinkStatus::Down {
                    reason: self.last_down,
                },
            },
            communications_ok: self.communications_ok(),
            flags: self.flags(),
            last_contact: self.last_contact,
            skew: self.skew,
            max_abs_skew: self.max_abs_skew,
            counters: self.counters,
        }
    }

    /// The last CONNECT refused (§6.1.2), by us or by the partner, with the status, the text
    /// and when; kept until the next refusal (the driver judges whether it still matters, e.g.
    /// by a later [`Event::LinkUp`]). Not part of [`Endpoint::status`], which is `Copy`.
    pub const fn last_refusal(&self) -> Option<&Refusal> {
        self.last_refusal.as_ref()
    }

    /// The counters.
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The configuration.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The MCLT in use.
    pub const fn mclt(&self) -> u32 {
        self.mclt
    }

    // ----------------------------------------------------------------------------------------
    // Binding updates (§7): the driver encodes and stores, the endpoint frames, numbers,
    // windows and answers.

    /// How many BNDUPDs [`Endpoint::send_bndupd`] takes now: the partner's MAX_UNACKED_BNDUPD
    /// (§6.1.1, §6.1.2) less ours outstanding, while updates may flow (D25: communications OK
    /// and either a state whose bindings are the partner's to know — not STARTUP, RECOVER,
    /// RECOVER-WAIT — or an UPDREQ / UPDREQALL being answered); 0 otherwise.
    pub fn update_window(&self) -> usize {
        let Some(conn) = self.link.as_ref() else {
            return 0;
        };
        if conn.phase != Phase::Established
            || !(self.lazy_flow_state() || conn.responding.is_some())
        {
            return 0;
        }
        let max = conn.partner_max_unacked.unwrap_or(0) as usize;
        max.saturating_sub(conn.sent_updates.len())
    }

    /// BNDUPDs sent and not yet answered by a BNDREPLY.
    pub fn unacked_updates(&self) -> usize {
        self.link.as_ref().map_or(0, |c| c.sent_updates.len())
    }

    /// BNDUPDs received that the driver has not answered yet.
    pub fn unanswered_updates(&self) -> usize {
        self.link.as_ref().map_or(0, |c| c.received_updates.len())
    }

    /// Sends one BNDUPD whose options (after the 8-octet header: one OPTION_CLIENT_DATA or one
    /// bare OPTION_IAPREFIX, §7.4) the driver encoded. `tag` comes back with the partner's
    /// BNDREPLY ([`BindingInput::Reply`]) so the driver can find the binding; it means nothing
    /// to the endpoint. Returns the transaction-id.
    ///
    /// # Errors
    /// [`UpdateNotSent`]: no window ([`Endpoint::update_window`] is 0), or the message would
    /// not fit a frame. Nothing is sent; the binding stays pending (the driver's scan resends
    /// it).
    pub fn send_bndupd(
        &mut self,
        now: Now,
        tag: u64,
        options: &[u8],
    ) -> Result<u32, UpdateNotSent> {
        if self.update_window() == 0 {
            return Err(UpdateNotSent::NoWindow);
        }
        if options.len() > MAX_MESSAGE_LEN - FAILOVER_HEADER_LEN {
            return Err(UpdateNotSent::TooLong);
        }
        let xid = self.alloc_xid();
        if let Some(c) = self.link.as_mut() {
            c.sent_updates.insert(xid, tag);
        }
        self.send_raw(now, MessageType::BNDUPD, xid, options);
        self.counters.bndupd_sent += 1;
        Ok(xid)
    }

    /// The driver has sent every update the partner's UPDREQ / UPDREQALL asks for (the
    /// bindings flagged "partner needs update", or all of them, §5.3.7, §5.3.8). UPDDONE goes
    /// once every BNDUPD sent so far is answered (§8.5.2: "after ... all of the BNDUPDs have
    /// been acknowledged"). Ignored without such a request.
    pub fn update_stream_complete(&mut self, now: Now) {
        if let Some(r) = self.link.as_mut().and_then(|c| c.responding.as_mut()) {
            r.complete = true;
        }
        self.maybe_upddone(now);
    }

    /// Answers the partner's BNDUPD `xid` of connection `conn` ([`BindingInput::Update`])
    /// with a BNDREPLY whose options the driver encoded (§7.6) after making the accepted
    /// bindings durable (§7.5.2). Returns `false` (nothing sent) when that connection is gone
    /// or the BNDUPD was already answered: the partner resends what it did not get acked.
    pub fn send_bndreply(&mut self, now: Now, conn: u64, xid: u32, options: &[u8]) -> bool {
        let Some(c) = self.link.as_mut() else {
            return false;
        };
        if c.id != conn || !c.received_updates.remove(&xid) {
            return false;
        }
        if options.len() > MAX_MESSAGE_LEN - FAILOVER_HEADER_LEN {
            // Cannot happen for a reply to a BNDUPD that fitted a frame (the reply echoes
            // less); refuse rather than drop the answer.
            c.received_updates.insert(xid);
            return self.refuse_bndupd(now, conn, xid, StatusCode::UNSPEC_FAIL, "reply too long");
        }
        self.send_raw(now, MessageType::BNDREPLY, xid, options);
        self.counters.bndreply_sent += 1;
        true
    }

    /// Refuses the partner's BNDUPD `xid` as a whole: a BNDREPLY with only a top-level Status
    /// Code (`code`, `text`), for a driver that cannot process it (e.g. the lease store
    /// failed). Nothing is stored; the partner keeps the binding flagged and resends it.
    pub fn refuse_bndupd(
        &mut self,
        now: Now,
        conn: u64,
        xid: u32,
        code: StatusCode,
        text: &'static str,
    ) -> bool {
        let Some(c) = self.link.as_mut() else {
            return false;
        };
        if c.id != conn || !c.received_updates.remove(&xid) {
            return false;
        }
        self.counters.bndupd_refused += 1;
        let reply = Failover::Bndreply(Bndreply {
            payload: None,
            status: Some(StatusCodeOption::new(code, text)),
        });
        self.send(now, &reply, xid);
        true
    }

    /// The next binding message for the driver: a BNDUPD to process and answer, or a BNDREPLY
    /// to apply to the binding it answers.
    pub fn poll_binding(&mut self) -> Option<BindingInput> {
        self.bindings.pop_front()
    }

    // ----------------------------------------------------------------------------------------
    // Receiving.

    fn dispatch(&mut self, now: Now, phase: Phase, xid: u32, msg: Failover<'_>, frame: &[u8]) {
        let role = self.config.role;
        let unexpected = PeerMisbehaved::Unexpected {
            msg_type: msg.msg_type(),
            phase,
        };
        match (phase, msg) {
            // §5.3.10: either side, any time; no reply.
            (_, Failover::Disconnect(status)) => {
                self.counters.disconnects_received += 1;
                let reason = DownReason::PartnerDisconnected(status.map(|s| s.code));
                self.push(Transmit::Close { reason });
                self.link_down(now, reason);
            }
            (Phase::AwaitConnect, Failover::Connect(params)) => self.on_connect(now, xid, &params),
            (Phase::AwaitConnectreply, Failover::Connectreply(reply)) => {
                self.on_connectreply(now, xid, &reply);
            }
            (Phase::AwaitState | Phase::Established, Failover::State(s)) => {
                self.on_state(now, &s);
            }
            // CONTACT "MAY be sent at any time" (§5.3.12) once connected; tolerated before the
            // partner's STATE too (D11).
            (Phase::AwaitState | Phase::Established, Failover::Contact) => {}
            (Phase::Established, Failover::Updreq | Failover::Updreqall) => {
                let all = matches!(msg, Failover::Updreqall);
                self.on_update_request(xid, all);
            }
            (Phase::Established, Failover::Upddone) => self.on_upddone(now, xid),
            (Phase::Established, Failover::Bndupd(_)) => self.on_bndupd(now, xid, frame),
            (Phase::Established, Failover::Bndreply(r)) => self.on_bndreply(now, xid, &r),
            (Phase::Established, Failover::Poolreq) if role == Role::Primary => {
                // §5.3.4: POOLRESP acknowledges the task; the rebalancing is part 2 (D17).
                self.events.push_back(Event::PoolRequested);
                self.send(now, &Failover::Poolresp, xid);
            }
            (Phase::Established, Failover::Poolresp) if role == Role::Secondary => {
                let ours = self.link.as_ref().and_then(|c| c.pool_xid);
                if ours == Some(xid) {
                    if let Some(c) = self.link.as_mut() {
                        c.pool_xid = None;
                    }
                } else {
                    self.misbehaved(
                        now,
                        PeerMisbehaved::UnknownTransactionId {
                            msg_type: MessageType::POOLRESP,
                            transaction_id: xid,
                        },
                    );
                }
            }
            _ => self.misbehaved(now, unexpected),
        }
    }

    /// §6.1.2: the secondary checks CONNECT and answers CONNECTREPLY (D10 for the order).
    fn on_connect(&mut self, now: Now, xid: u32, p: &ConnectParams<'_>) {
        let refusal = if p.protocol_version.major != ProtocolVersion::V1_0.major {
            Some(PeerMisbehaved::UnsupportedVersion {
                major: p.protocol_version.major,
                minor: p.protocol_version.minor,
            })
        } else if p
            .relationship_name
            .is_some_and(|n| n.0 != self.config.relationship_name)
        {
            Some(PeerMisbehaved::RelationshipName)
        } else if p.mclt.0 < MIN_MCLT_SECS {
            Some(PeerMisbehaved::Mclt { received: p.mclt.0 })
        } else if !self.flags_compatible(p.connect_flags) {
            Some(PeerMisbehaved::ConnectFlags)
        } else {
            None
        };
        if let Some(why) = refusal {
            self.counters.count_misbehaved(why.kind());
            self.events.push_back(Event::PeerMisbehaved(why));
            // A name mismatch says both names (D23: it shows on both sides as it is).
            let text = match (why, p.relationship_name) {
                (PeerMisbehaved::RelationshipName, Some(theirs)) => {
                    name_mismatch_text(theirs.0, &self.config.relationship_name)
                }
                _ => String::from(why.text()),
            };
            return self.refuse_connect(now, xid, why.status(), &text);
        }
        // §6.1.2: "Use this MCLT supplied by the primary server. Remember this MCLT".
        if p.mclt.0 != self.mclt {
            self.mclt = p.mclt.0;
            self.mark_dirty(now);
            self.set_policy(machine::serving_policy(
                self.config.role,
                self.state.name(),
                self.mclt,
            ));
        }
        self.handshake_done(now, p);
        let reply = Failover::Connectreply(Connectreply::Accept(self.connect_params(None)));
        self.send(now, &reply, xid);
        // §6.1.2: "After sending a CONNECTREPLY message to accept ... MUST send a STATE".
        self.settle(now);
    }

    /// §6.1.3: the primary checks CONNECTREPLY.
    fn on_connectreply(&mut self, now: Now, xid: u32, reply: &Connectreply<'_>) {
        let ours = self.link.as_ref().and_then(|c| c.connect_xid);
        if ours != Some(xid) {
            return self.misbehaved(
                now,
                PeerMisbehaved::UnknownTransactionId {
                    msg_type: MessageType::CONNECTREPLY,
                    transaction_id: xid,
                },
            );
        }
        let p = match reply {
            Connectreply::Reject(status) => {
                self.counters.connects_refused_by_partner += 1;
                // The partner's text says why (a name mismatch, both servers primary, D23).
                self.last_refusal = Some(Refusal::received(status, now.wall));
                let reason = DownReason::ConnectRefusedByPartner(status.code);
                self.push(Transmit::Close { reason });
                return self.link_down(now, reason);
            }
            Connectreply::Accept(p) => p,
        };
        if p.protocol_version.major != ProtocolVersion::V1_0.major {
            return self.misbehaved(
                now,
                PeerMisbehaved::UnsupportedVersion {
                    major: p.protocol_version.major,
                    minor: p.protocol_version.minor,
                },
            );
        }
        if p.mclt.0 != self.mclt {
            return self.misbehaved(now, PeerMisbehaved::Mclt { received: p.mclt.0 });
        }
        if p.relationship_name
            .is_some_and(|n| n.0 != self.config.relationship_name)
        {
            return self.misbehaved(now, PeerMisbehaved::RelationshipName);
        }
        if !self.flags_compatible(p.connect_flags) {
            return self.misbehaved(now, PeerMisbehaved::ConnectFlags);
        }
        if let Some(c) = self.link.as_mut() {
            c.connect_xid = None;
        }
        self.handshake_done(now, p);
        // §6.1.3: "the primary server MUST send a STATE message".
        self.settle(now);
    }

    /// We cannot process a partner that delegates several prefix lengths from one delegable
    /// prefix if we announce FIXED_PD_LENGTH (§5.5.2, §6.1.2, D10). MBZ bits are ignored.
    fn flags_compatible(&self, theirs: ConnectFlags) -> bool {
        !self.config.fixed_pd_length || theirs.fixed_pd_length()
    }

    fn handshake_done(&mut self, now: Now, p: &ConnectParams<'_>) {
        if let Some(c) = self.link.as_mut() {
            c.phase = Phase::AwaitState;
            // §6.6: FO_SEND_TIME = received keepalive-time / FO_CONTACT_PER_KEEPALIVE_TIME;
            // at least one second (D9).
            c.send_interval_ms = (u64::from(p.keepalive_time.0) * 1000
                / u64::from(CONTACT_PER_KEEPALIVE_TIME))
            .max(1000);
            c.send_deadline_ms = Some(now.mono_ms.saturating_add(c.send_interval_ms));
            c.partner_max_unacked = Some(p.max_unacked_bndupd.0);
        }
    }

    /// §6.4: remember the partner's state, flags and start time; the first STATE on a
    /// connection makes communications OK (§6.1); then run the machine (§8.1).
    fn on_state(&mut self, now: Now, s: &tandem_wire::failover::State) {
        let name = match StateName::from_code(s.server_state) {
            Some(StateName::Startup) | None => {
                return self.misbehaved(now, PeerMisbehaved::BadServerState(s.server_state.0));
            }
            Some(n) => n,
        };
        let record = PartnerRecord {
            state: name,
            flags: s.server_flags,
            since: s.start_time_of_state.0,
            // §6.4: "If the state is not PARTNER-DOWN, clear any memory of the
            // partner-down-time."
            partner_down_time: if name == StateName::PartnerDown {
                s.partner_down_time.map(|t| t.0)
            } else {
                None
            },
        };
        if self.partner != Some(record) {
            self.partner = Some(record);
            self.events.push_back(Event::PartnerStateChanged(record));
            self.mark_dirty(now);
        }
        if self.partner_communicated_at_first_state.is_none() {
            self.partner_communicated_at_first_state =
                Some(s.server_flags.contains(ServerFlags::COMMUNICATED));
        }
        let mut first = false;
        if let Some(c) = self.link.as_mut() {
            c.ack_startup = s.server_flags.contains(ServerFlags::STARTUP);
            if c.phase == Phase::AwaitState {
                c.phase = Phase::Established;
                first = true;
            }
        }
        if first {
            // D18: auto-partner-down counts time without communications; a partner that
            // talks to us (in RECOVER / RECOVER-WAIT, the only partners COMMUNICATIONS-
            // INTERRUPTED stays with) is not down.
            if let State::CommunicationsInterrupted {
                auto_partner_down_ms,
            } = &mut self.state
            {
                *auto_partner_down_ms = None;
            }
            self.events.push_back(Event::LinkUp);
            if !self.communicated {
                self.communicated = true;
                self.mark_dirty(now);
            }
        }
        self.settle(now);
    }

    /// §5.3.7, §5.3.8: the partner asks for the unacked (UPDREQ) or all (UPDREQALL) bindings;
    /// the driver sends them ([`Event::UpdateRequested`]) and says when it is done.
    fn on_update_request(&mut self, xid: u32, all: bool) {
        if let Some(c) = self.link.as_mut() {
            // A new request replaces one still being answered: its UPDDONE is this one's.
            c.responding = Some(Responding {
                xid,
                complete: false,
            });
        }
        self.events.push_back(Event::UpdateRequested { all });
    }

    /// A BNDUPD (§7.5): handed to the driver, which stores it and answers. More outstanding
    /// than our MAX_UNACKED_BNDUPD is a protocol violation (§6.1.1: the partner "MUST NOT"
    /// send more), as is reusing the transaction-id of one not yet answered (§5.4).
    fn on_bndupd(&mut self, now: Now, xid: u32, frame: &[u8]) {
        let max = self.config.max_unacked_bndupd as usize;
        let Some(c) = self.link.as_mut() else {
            return;
        };
        if c.received_updates.len() >= max || c.received_updates.contains(&xid) {
            return self.misbehaved(now, PeerMisbehaved::UpdateWindowExceeded);
        }
        c.received_updates.insert(xid);
        let conn = c.id;
        // §8.5.2: the update timeout runs while "no BNDUPD messages are being received".
        let (epoch, timeout) = (self.epoch, u64::from(self.config.update_timeout));
        if let Some(u) = c.updates.iter_mut().find(|u| u.epoch == epoch) {
            u.deadline_ms = now.mono_ms.saturating_add(timeout * 1000);
        }
        self.counters.bndupd_received += 1;
        self.bindings.push_back(BindingInput::Update {
            conn,
            xid,
            message: frame.to_vec(),
        });
    }

    /// A BNDREPLY (§7.7): must answer one of our outstanding BNDUPDs (§5.4); handed to the
    /// driver with the tag it gave.
    fn on_bndreply(&mut self, now: Now, xid: u32, reply: &Bndreply<'_>) {
        let Some(tag) = self.link.as_mut().and_then(|c| c.sent_updates.remove(&xid)) else {
            return self.misbehaved(
                now,
                PeerMisbehaved::UnknownTransactionId {
                    msg_type: MessageType::BNDREPLY,
                    transaction_id: xid,
                },
            );
        };
        self.counters.bndreply_received += 1;
        // Decoded here from what `handle_message` parsed: not parsed again (D63).
        self.bindings.push_back(BindingInput::Reply {
            tag,
            reply: crate::bndupd::decode_parsed_bndreply(xid, reply),
        });
        self.maybe_upddone(now);
    }

    /// UPDDONE for the request being answered once the driver has sent everything it asked for
    /// and no BNDUPD of ours is unanswered (§8.5.2).
    fn maybe_upddone(&mut self, now: Now) {
        let Some(c) = self.link.as_mut() else {
            return;
        };
        let Some(r) = c.responding else {
            return;
        };
        if !r.complete || !c.sent_updates.is_empty() || c.phase != Phase::Established {
            return;
        }
        c.responding = None;
        self.send(now, &Failover::Upddone, r.xid);
    }

    fn on_upddone(&mut self, now: Now, xid: u32) {
        let found = self.link.as_mut().and_then(|c| {
            let i = c.updates.iter().position(|u| u.xid == xid)?;
            Some(c.updates.swap_remove(i))
        });
        let Some(req) = found else {
            return self.misbehaved(
                now,
                PeerMisbehaved::UnknownTransactionId {
                    msg_type: MessageType::UPDDONE,
                    transaction_id: xid,
                },
            );
        };
        if req.epoch != self.epoch {
            self.counters.stale_upddone += 1;
            return;
        }
        if let Some(c) = self.link.as_mut() {
            c.update_done_epoch = Some(req.epoch);
        }
        if req.all && self.resync_all {
            // D47: the database is whole again.
            self.resync_all = false;
            self.mark_dirty(now);
        }
        if let Some(next) = machine::after_upddone(self.config.role, self.state.name()) {
            self.enter(now, next);
        }
        self.settle(now);
    }

    // ----------------------------------------------------------------------------------------
    // Ending connections.

    fn misbehaved(&mut self, now: Now, why: PeerMisbehaved) {
        self.counters.count_misbehaved(why.kind());
        self.events.push_back(Event::PeerMisbehaved(why));
        self.disconnect(
            now,
            why.status(),
            why.text(),
            DownReason::PeerMisbehaved(why.kind()),
        );
    }

    fn excessive_skew(&mut self, now: Now, skew: i64, connect_xid: Option<u32>) {
        self.counters.excessive_skew += 1;
        self.events.push_back(Event::ExcessiveTimeSkew(skew));
        match connect_xid {
            // §6.1.2: "return ExcessiveTimeSkew in the OPTION_STATUS_CODE to reject the
            // CONNECT message".
            Some(xid) => self.refuse_connect(
                now,
                xid,
                StatusCode::EXCESSIVE_TIME_SKEW,
                "clocks differ by more than 5 seconds",
            ),
            // §7.5.1: "if it is greater than 5 seconds the receiving server SHOULD drop the
            // connection".
            None => self.disconnect(
                now,
                StatusCode::EXCESSIVE_TIME_SKEW,
                "clocks differ by more than 5 seconds",
                DownReason::ExcessiveTimeSkew,
            ),
        }
    }

    fn refuse_connect(&mut self, now: Now, xid: u32, code: StatusCode, text: &str) {
        self.counters.connects_refused += 1;
        self.last_refusal = Some(Refusal::sent(code, text, now.wall));
        let reply = Failover::Connectreply(Connectreply::Reject(StatusCodeOption::new(code, text)));
        self.push_frame(now, &reply, xid);
        let reason = DownReason::ConnectRefused(code);
        self.push(Transmit::Close { reason });
        self.link_down(now, reason);
    }

    /// DISCONNECT with a status (§5.3.10), close, and take the connection down.
    fn disconnect(&mut self, now: Now, code: StatusCode, text: &'static str, reason: DownReason) {
        let xid = self.alloc_xid();
        self.push_frame(
            now,
            &Failover::Disconnect(Some(StatusCodeOption::new(code, text))),
            xid,
        );
        self.push(Transmit::Close { reason });
        self.link_down(now, reason);
    }

    /// The connection is gone: communications are not OK (§8.1), run the machine.
    fn link_down(&mut self, now: Now, reason: DownReason) {
        let Some(conn) = self.link.take() else {
            return;
        };
        self.last_down = Some(reason);
        self.events.push_back(Event::LinkDown(reason));
        // D18: losing communications again while in COMMUNICATIONS-INTERRUPTED restarts the
        // auto-partner-down timer (a connection that never got to communications OK leaves
        // it running).
        let auto = self.auto_partner_down_deadline(now);
        if conn.phase == Phase::Established
            && let State::CommunicationsInterrupted {
                auto_partner_down_ms,
            } = &mut self.state
        {
            *auto_partner_down_ms = auto;
        }
        self.settle(now);
    }

    // ----------------------------------------------------------------------------------------
    // The machine.

    /// Runs the state machine until nothing changes (§8.1, D13), then does what the resulting
    /// state asks on this connection.
    fn settle(&mut self, now: Now) {
        if self.shut_down {
            return;
        }
        for _ in 0..MAX_CHAIN {
            match self.next_state(now) {
                Some(next) if next != self.state.name() => self.enter(now, next),
                _ => break,
            }
        }
        self.actions(now);
    }

    fn next_state(&self, now: Now) -> Option<StateName> {
        if let State::RecoverWait { until_ms } = self.state
            && now.mono_ms >= until_ms
        {
            // §8.6.2, with or without communications.
            return Some(StateName::RecoverDone);
        }
        if !self.communications_ok() {
            return match self.state {
                State::Startup { previous, until_ms } => (now.mono_ms >= until_ms).then_some({
                    // §8.3.2 step 6, or the commissioning option of step 1 (D8).
                    if self.fresh && self.config.first_start_partner_down {
                        StateName::PartnerDown
                    } else {
                        previous
                    }
                }),
                State::CommunicationsInterrupted {
                    auto_partner_down_ms: Some(at),
                } if now.mono_ms >= at => Some(StateName::PartnerDown),
                s => machine::after_communications_failed(s.name()),
            };
        }
        // Communications OK: the partner's record came from this connection's STATE.
        let p = self.partner?;
        let startup = p.flags.contains(ServerFlags::STARTUP);
        match self.state {
            State::Startup { previous, .. } => Some(machine::startup_resume(
                previous,
                self.time_of_failure,
                p.state,
                p.since,
            )),
            s => machine::after_partner_state(self.config.role, s.name(), p.state, startup),
        }
    }

    /// Enters `to` (never STARTUP): records it (§8.1 "MUST record the new state ... in stable
    /// storage"), announces events and the policy. The STATE goes out from `actions`.
    fn enter(&mut self, now: Now, to: StateName) {
        let from = self.state.name();
        self.state = match to {
            // STARTUP is only ever the first state (`new`); nothing transitions into it.
            StateName::Startup | StateName::Recover => State::Recover { request_all: None },
            StateName::Normal => State::Normal,
            StateName::CommunicationsInterrupted => State::CommunicationsInterrupted {
                // §8.9: "a timer is started for the length of the configured
                // auto-partner-down period" on entry; armed only while communications are
                // not OK (D18).
                auto_partner_down_ms: if self.communications_ok() {
                    None
                } else {
                    self.auto_partner_down_deadline(now)
                },
            },
            StateName::PartnerDown => State::PartnerDown { since: now.wall },
            StateName::PotentialConflict => State::PotentialConflict,
            StateName::RecoverWait => State::RecoverWait {
                until_ms: self.recover_wait_until(now),
            },
            StateName::RecoverDone => State::RecoverDone,
            StateName::ResolutionInterrupted => State::ResolutionInterrupted,
            StateName::ConflictDone => State::ConflictDone,
        };
        let to = self.state.name();
        self.previous = Some(match from {
            StateName::Startup => self.recorded.map_or(StateName::Recover, |r| r.0),
            f => f,
        });
        self.state_since = now.wall;
        self.recorded = Some((to, now.wall));
        self.epoch += 1;
        self.mark_dirty(now);
        self.events.push_back(Event::StateChanged { from, to });
        // §8.9: "transitioning into the COMMUNICATIONS-INTERRUPTED state from the NORMAL
        // state SHOULD raise an alarm"; §8.11: entering RESOLUTION-INTERRUPTED, same.
        if (from == StateName::Normal && to == StateName::CommunicationsInterrupted)
            || to == StateName::ResolutionInterrupted
        {
            self.events.push_back(Event::Alarm(to));
        }
        self.set_policy(machine::serving_policy(self.config.role, to, self.mclt));
    }

    /// When auto-partner-down fires if armed now (§8.9), `None` when not configured.
    fn auto_partner_down_deadline(&self, now: Now) -> Option<u64> {
        self.config
            .auto_partner_down
            .map(|s| now.mono_ms.saturating_add(u64::from(s) * 1000))
    }

    /// §8.6.2: TIME-OF-FAILURE (or our start) + MCLT; at once if neither side has run failover
    /// before ("MAY transition immediately", judged with the partner's COMMUNICATED flag).
    fn recover_wait_until(&self, now: Now) -> u64 {
        let ran_before =
            self.communicated_at_start || self.partner_communicated_at_first_state.unwrap_or(true);
        if !ran_before {
            return now.mono_ms;
        }
        let base = self.time_of_failure.unwrap_or(self.started_at);
        let end = base.wrapping_add(self.mclt);
        let left = end.wrapping_sub(now.wall).max(0);
        now.mono_ms
            .saturating_add(u64::from(left.unsigned_abs()) * 1000)
    }

    /// What the current state asks for on the current connection: a STATE whenever what we
    /// would announce differs from what we last sent (§6.3, §8.1), UPDREQ / UPDREQALL in
    /// RECOVER (§8.5.2) and POTENTIAL-CONFLICT (§8.10), POOLREQ for a secondary entering
    /// NORMAL (§8.8).
    fn actions(&mut self, now: Now) {
        let Some(conn) = self.link.as_ref() else {
            return;
        };
        if matches!(conn.phase, Phase::AwaitState | Phase::Established) {
            let flags = self.flags();
            let (name, since) = self.announced();
            if conn.last_state_sent != Some((name, flags)) {
                let state = Failover::State(tandem_wire::failover::State {
                    server_state: name.code(),
                    server_flags: flags,
                    start_time_of_state: StartTimeOfState(since),
                    // §6.3: only in PARTNER-DOWN (D18: the time it was entered), also when
                    // STARTUP announces a previous PARTNER-DOWN (§8.3.1).
                    partner_down_time: (name == StateName::PartnerDown)
                        .then_some(PartnerDownTime(since)),
                });
                let xid = self.alloc_xid();
                self.send(now, &state, xid);
                if let Some(c) = self.link.as_mut() {
                    c.last_state_sent = Some((name, flags));
                }
            }
        }
        let Some(conn) = self.link.as_ref() else {
            return;
        };
        if conn.phase != Phase::Established {
            return;
        }
        // §8.8: "upon entering NORMAL" (and D25's other flowing states, and every connection
        // that reaches communications OK in one) the driver sends its pending updates.
        let flows = self.lazy_flow_state();
        if flows && !conn.flow_announced {
            self.events.push_back(Event::UpdatesMayFlow);
        }
        let Some(conn) = self.link.as_mut() else {
            return;
        };
        conn.flow_announced = flows;
        let conn = &*conn;
        let epoch = self.epoch;
        let requested =
            conn.update_done_epoch == Some(epoch) || conn.updates.iter().any(|u| u.epoch == epoch);
        let partner = self.partner.map(|p| p.state);
        match self.state {
            State::Recover { request_all } if !requested => {
                // §8.5.2: UPDREQALL if we have no record of ever having talked to the partner
                // although it has one; decided once, reissued alike after a reconnect — and
                // after a restart (D47: the first connection recorded COMMUNICATED, so the
                // record alone would then say UPDREQ and the database would stay incomplete).
                let all = request_all.unwrap_or_else(|| self.needs_everything());
                self.state = State::Recover {
                    request_all: Some(all),
                };
                self.request_update(now, all);
            }
            // §8.10: the primary entering POTENTIAL-CONFLICT sends UPDREQ; the secondary
            // SHOULD send UPDREQ once the primary is in CONFLICT-DONE (also when it already
            // was on entry, D14).
            State::PotentialConflict
                if !requested
                    && (self.config.role == Role::Primary
                        || partner == Some(StateName::ConflictDone)) =>
            {
                // D47: a server that lost its storage (or has not finished resynchronising)
                // asks for everything here too.
                let all = self.needs_everything();
                self.request_update(now, all);
            }
            State::Normal
                if self.config.role == Role::Secondary && conn.pool_epoch != Some(epoch) =>
            {
                // §8.8: after the unacked BNDUPDs (none until part 2), POOLREQ.
                let xid = self.alloc_xid();
                if let Some(c) = self.link.as_mut() {
                    c.pool_epoch = Some(epoch);
                    c.pool_xid = Some(xid);
                }
                self.send(now, &Failover::Poolreq, xid);
            }
            _ => {}
        }
    }

    /// D25: states whose bindings the partner should hear about as they change: all but
    /// STARTUP, RECOVER and RECOVER-WAIT, where our database may be stale or incomplete until
    /// the partner's updates have arrived.
    fn lazy_flow_state(&self) -> bool {
        !matches!(
            self.state,
            State::Startup { .. } | State::Recover { .. } | State::RecoverWait { .. }
        )
    }

    /// §8.5.2: the database must come whole from the partner — we have no record of ever
    /// having talked to it although it has one of us — or a full resynchronisation begun
    /// earlier has not finished (D47).
    fn needs_everything(&self) -> bool {
        self.resync_all
            || (!self.communicated_at_start
                && self.partner_communicated_at_first_state == Some(true))
    }

    fn request_update(&mut self, now: Now, all: bool) {
        if all && !self.resync_all {
            // D47: recorded, and durable before the UPDREQALL leaves (held behind the record).
            self.resync_all = true;
            self.mark_dirty(now);
        }
        let xid = self.alloc_xid();
        let req = UpdateRequest {
            xid,
            all,
            epoch: self.epoch,
            deadline_ms: now
                .mono_ms
                .saturating_add(u64::from(self.config.update_timeout) * 1000),
        };
        if let Some(c) = self.link.as_mut() {
            c.updates.push(req);
        }
        let msg = if all {
            Failover::Updreqall
        } else {
            Failover::Updreq
        };
        self.send(now, &msg, xid);
    }

    /// What STATE says: in STARTUP the previous state with its recorded start time (§8.3.1).
    fn announced(&self) -> (StateName, FailoverTime) {
        match self.state {
            State::Startup { previous, .. } => {
                (previous, self.recorded.map_or(self.state_since, |r| r.1))
            }
            s => (s.name(), self.state_since),
        }
    }

    /// OPTION_F_SERVER_FLAGS as we would send them now (§5.5.15).
    fn flags(&self) -> ServerFlags {
        let mut f = 0;
        if matches!(self.state, State::Startup { .. }) {
            f |= ServerFlags::STARTUP;
        }
        if self.communicated {
            f |= ServerFlags::COMMUNICATED;
        }
        if self.link.as_ref().is_some_and(|c| c.ack_startup) {
            f |= ServerFlags::ACK_STARTUP;
        }
        ServerFlags(f)
    }

    fn set_policy(&mut self, policy: ServingPolicy) {
        if policy != self.policy {
            self.policy = policy;
            self.events.push_back(Event::PolicyChanged(policy));
        }
    }

    fn mark_dirty(&mut self, now: Now) {
        self.record_dirty = true;
        self.operating_until = now.wall.wrapping_add(self.config.heartbeat);
        self.heartbeat_ms = now
            .mono_ms
            .saturating_add(u64::from(self.config.heartbeat) * 500);
    }

    // ----------------------------------------------------------------------------------------
    // Sending.

    fn connect_params<'a>(&self, name: Option<&'a str>) -> ConnectParams<'a> {
        ConnectParams {
            protocol_version: ProtocolVersion::V1_0,
            mclt: Mclt(self.mclt),
            keepalive_time: KeepaliveTime(self.config.keepalive),
            max_unacked_bndupd: MaxUnackedBndupd(self.config.max_unacked_bndupd),
            connect_flags: self.config.connect_flags(),
            relationship_name: name.map(RelationshipName),
        }
    }

    /// A transaction-id unique among our outstanding requests (§5.4): a 24-bit counter that
    /// skips 0 and every outstanding CONNECT, UPDREQ/UPDREQALL and POOLREQ.
    fn alloc_xid(&mut self) -> u32 {
        loop {
            let xid = self.next_xid;
            self.next_xid = if xid >= MAX_TRANSACTION_ID {
                1
            } else {
                xid + 1
            };
            let busy = self.link.as_ref().is_some_and(|c| {
                c.connect_xid == Some(xid)
                    || c.pool_xid == Some(xid)
                    || c.updates.iter().any(|u| u.xid == xid)
                    || c.sent_updates.contains_key(&xid)
            });
            if !busy {
                return xid;
            }
        }
    }

    /// Queues `msg` and restarts FO_SEND_TIMER (§6.6: "reset ... every time any message is
    /// transmitted").
    fn send(&mut self, now: Now, msg: &Failover<'_>, xid: u32) {
        self.push_frame(now, msg, xid);
        if let Some(c) = self.link.as_mut()
            && c.send_deadline_ms.is_some()
        {
            c.send_deadline_ms = Some(now.mono_ms.saturating_add(c.send_interval_ms));
        }
    }

    /// Queues a message of `msg_type` whose options are already encoded, and restarts
    /// FO_SEND_TIMER like [`Self::send`]. The caller checked that it fits a frame.
    fn send_raw(&mut self, now: Now, msg_type: MessageType, xid: u32, options: &[u8]) {
        let len = FAILOVER_HEADER_LEN + options.len();
        let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + len);
        // RFC 5460 §5.1 length, then RFC 8156 §5.2: type, 24-bit transaction-id, sent-time.
        buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        buf.push(msg_type.0);
        buf.extend_from_slice(&(xid & MAX_TRANSACTION_ID).to_be_bytes()[1..]);
        buf.extend_from_slice(&now.wall.0.to_be_bytes());
        buf.extend_from_slice(options);
        self.push(Transmit::Frame(buf));
        if let Some(c) = self.link.as_mut()
            && c.send_deadline_ms.is_some()
        {
            c.send_deadline_ms = Some(now.mono_ms.saturating_add(c.send_interval_ms));
        }
    }

    fn push_frame(&mut self, now: Now, msg: &Failover<'_>, xid: u32) {
        let mut buf = vec![0u8; 2 + msg.buffer_len()];
        // Our own messages always fit a frame (no more than a few dozen octets, the
        // relationship name is at most 255); an emit error would drop just this message.
        if let Ok(n) = msg.emit_framed(xid, now.wall, &mut buf) {
            buf.truncate(n);
            self.push(Transmit::Frame(buf));
        }
    }

    fn push(&mut self, transmit: Transmit) {
        let needs = if self.record_dirty {
            self.record_seq + 1
        } else {
            self.polled_seq
        };
        self.outbox.push_back(Queued { transmit, needs });
    }
}

/// For the secondary's driver, which must pick the relationship before it has an endpoint
/// for the connection (§6.1, §6.2): the relationship name in a CONNECT message (frame body
/// without the length prefix). `None`: not a well-formed CONNECT; `Some(None)`: a CONNECT
/// without a name ("the only relationship between this pair", §6.1.1).
pub fn connect_relationship_name(frame: &[u8]) -> Option<Option<&str>> {
    match Failover::parse_bytes(frame).ok()?.1 {
        Failover::Connect(p) => Some(p.relationship_name.map(|n| n.0)),
        _ => None,
    }
}
