//! What goes in and out of an [`crate::Endpoint`] besides bytes: time, operator commands,
//! events, transmits, the reasons a connection ends, counters and the status snapshot.

use alloc::vec::Vec;
use core::fmt;

use tandem_lease::ServingPolicy;
use tandem_wire::dhcp::{MessageType, StatusCode};
use tandem_wire::failover::FailoverTime;
use tandem_wire::failover::option::ServerFlags;

use crate::config::Role;
use crate::machine::StateName;
use crate::persist::PartnerRecord;

/// The time of an input: a monotonic clock for timers and the wall clock for what goes on the
/// wire. The endpoint reads no clock; the driver passes both with every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any origin; never goes back). Every timer and
    /// [`crate::Endpoint::poll_timeout`] is on this clock.
    pub mono_ms: u64,
    /// Wall clock as RFC 8156 §3 time: sent-time of what we send (§5.2), the skew check of
    /// what we receive (§7.1), state start times and the persisted operating time.
    pub wall: FailoverTime,
}

/// A command from the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// "The partner is down" (§8.8.2, §8.9.2, §8.11.2 external command): to PARTNER-DOWN.
    /// The operator vouches that the partner is not operating (§8.4).
    PartnerDown,
    /// Graceful stop: DISCONNECT with ServerShuttingDown (§5.3.10), close, stop serving
    /// (docs/failover.md D7). The endpoint is finished afterwards.
    Shutdown,
}

/// Why an operator command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// PARTNER-DOWN by command is only entered from NORMAL, COMMUNICATIONS-INTERRUPTED and
    /// RESOLUTION-INTERRUPTED (Figure 6's "External Command" arcs).
    NotFromState(StateName),
    /// Already shut down.
    ShutDown,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFromState(s) => write!(
                f,
                "PARTNER-DOWN by command is allowed only from NORMAL, COMMUNICATIONS-INTERRUPTED \
                 or RESOLUTION-INTERRUPTED (RFC 8156 §8.8.2, §8.9.2, §8.11.2), not from {s:?}"
            ),
            Self::ShutDown => f.write_str("the endpoint is shut down"),
        }
    }
}

/// Something for the driver to send, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// One framed message (2-octet length prefix included, RFC 5460 §5.1): write it as is.
    Frame(Vec<u8>),
    /// Close the connection after writing what came before. The endpoint already counts the
    /// link as down; the driver need not call [`crate::Endpoint::handle_closed`].
    Close {
        /// Why.
        reason: DownReason,
    },
}

/// Why a connection ended (or never became usable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// The driver reported the transport closed ([`crate::Endpoint::handle_closed`]).
    TransportClosed,
    /// Nothing arrived within our keepalive-time (§6.6: "that connection is considered dead").
    KeepaliveExpired,
    /// The partner sent DISCONNECT, with its Status Code if any (§5.3.10).
    PartnerDisconnected(Option<StatusCode>),
    /// Our CONNECT was refused by a CONNECTREPLY with this status (§6.1.2).
    ConnectRefusedByPartner(StatusCode),
    /// We refused the partner's CONNECT with this status (§6.1.2).
    ConnectRefused(StatusCode),
    /// The partner's sent-time is more than 5 s from our clock (§7.1, §7.5.1).
    ExcessiveTimeSkew,
    /// The partner broke the protocol; see [`PeerMisbehaved`].
    PeerMisbehaved(MisbehaviorKind),
    /// No UPDDONE (and no BNDUPD) within the update timeout (§8.5.2).
    UpdateTimeout,
    /// A new connection replaced this one ([`crate::Endpoint::handle_connected`] while up).
    Replaced,
    /// Operator shutdown (D7).
    Shutdown,
}

/// A protocol violation by the partner. Not meant for matching beyond logging and counting
/// (house style §3.3); it ends the connection with DISCONNECT (D11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A message larger than a frame can carry (65535 octets).
    Oversized {
        /// Its length.
        len: usize,
    },
    /// The message does not decode (bad header, TLVs, or a required option missing).
    Malformed(tandem_wire::Error),
    /// A message that has no business in this phase of the connection or for this role
    /// (e.g. STATE before CONNECT, CONNECT to a primary, a second CONNECT).
    Unexpected {
        /// The message type.
        msg_type: MessageType,
        /// Where the connection was.
        phase: Phase,
    },
    /// A response whose transaction-id answers nothing we sent (§5.4).
    UnknownTransactionId {
        /// The message type.
        msg_type: MessageType,
        /// Its transaction-id.
        transaction_id: u32,
    },
    /// CONNECT for another relationship (§6.1; ConfigurationConflict, digest gap 8).
    RelationshipName,
    /// A protocol version we do not speak (§6.1.2, §6.1.3).
    UnsupportedVersion {
        /// Major version received.
        major: u16,
        /// Minor version received.
        minor: u16,
    },
    /// CONNECTREPLY's MCLT differs from ours (§6.1.3), or CONNECT's is below 30 s (§1).
    Mclt {
        /// The MCLT received.
        received: u32,
    },
    /// The partner's OPTION_F_CONNECT_FLAGS promise what we cannot process (§6.1.2, §6.1.3).
    ConnectFlags,
    /// STATE carrying STARTUP (never sent, §5.5.16) or an unassigned state value.
    BadServerState(u8),
    /// A BNDUPD beyond the MAX_UNACKED_BNDUPD we announced (§6.1.1 "MUST NOT"), or with the
    /// transaction-id of one still unanswered (§5.4).
    UpdateWindowExceeded,
}

/// The kind of a [`PeerMisbehaved`], to index counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MisbehaviorKind {
    /// [`PeerMisbehaved::Oversized`].
    Oversized,
    /// [`PeerMisbehaved::Malformed`].
    Malformed,
    /// [`PeerMisbehaved::Unexpected`].
    Unexpected,
    /// [`PeerMisbehaved::UnknownTransactionId`].
    UnknownTransactionId,
    /// [`PeerMisbehaved::RelationshipName`].
    RelationshipName,
    /// [`PeerMisbehaved::UnsupportedVersion`].
    UnsupportedVersion,
    /// [`PeerMisbehaved::Mclt`].
    Mclt,
    /// [`PeerMisbehaved::ConnectFlags`].
    ConnectFlags,
    /// [`PeerMisbehaved::BadServerState`].
    BadServerState,
    /// [`PeerMisbehaved::UpdateWindowExceeded`].
    UpdateWindowExceeded,
}

impl MisbehaviorKind {
    /// Number of kinds (the length of [`Counters::misbehaved`]).
    pub const COUNT: usize = 10;
}

// Every kind indexes `Counters::misbehaved`: the last one is `COUNT - 1`.
const _: () = assert!(MisbehaviorKind::UpdateWindowExceeded as usize + 1 == MisbehaviorKind::COUNT);

impl PeerMisbehaved {
    /// Its kind.
    pub const fn kind(&self) -> MisbehaviorKind {
        match self {
            Self::Oversized { .. } => MisbehaviorKind::Oversized,
            Self::Malformed(_) => MisbehaviorKind::Malformed,
            Self::Unexpected { .. } => MisbehaviorKind::Unexpected,
            Self::UnknownTransactionId { .. } => MisbehaviorKind::UnknownTransactionId,
            Self::RelationshipName => MisbehaviorKind::RelationshipName,
            Self::UnsupportedVersion { .. } => MisbehaviorKind::UnsupportedVersion,
            Self::Mclt { .. } => MisbehaviorKind::Mclt,
            Self::ConnectFlags => MisbehaviorKind::ConnectFlags,
            Self::BadServerState(_) => MisbehaviorKind::BadServerState,
            Self::UpdateWindowExceeded => MisbehaviorKind::UpdateWindowExceeded,
        }
    }

    /// The Status Code that goes in our DISCONNECT or refusing CONNECTREPLY (D10, D11).
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedVersion { .. } => StatusCode::NOT_SUPPORTED,
            Self::RelationshipName | Self::Mclt { .. } | Self::ConnectFlags => {
                StatusCode::CONFIGURATION_CONFLICT
            }
            Self::Oversized { .. }
            | Self::Malformed(_)
            | Self::Unexpected { .. }
            | Self::UnknownTransactionId { .. }
            | Self::BadServerState(_)
            | Self::UpdateWindowExceeded => StatusCode::UNSPEC_FAIL,
        }
    }

    /// The human-readable text of that Status Code (§5.3.10 "SHOULD include a descriptive
    /// message").
    pub const fn text(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "message larger than 65535 octets",
            Self::Malformed(_) => "malformed failover message",
            Self::Unexpected { .. } => "message not expected in this phase of the connection",
            Self::UnknownTransactionId { .. } => "response to no outstanding request",
            Self::RelationshipName => "unknown relationship name",
            Self::UnsupportedVersion { .. } => "unsupported failover protocol version",
            Self::Mclt { .. } => "MCLT does not match the configuration",
            Self::ConnectFlags => "cannot process what OPTION_F_CONNECT_FLAGS announces",
            Self::BadServerState(_) => "STATE with STARTUP or an unassigned state value",
            Self::UpdateWindowExceeded => "more BNDUPDs unanswered than MAX_UNACKED_BNDUPD allows",
        }
    }
}

/// Where a connection is, for [`PeerMisbehaved::Unexpected`] and [`LinkStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Primary: CONNECT sent, waiting for CONNECTREPLY (§6.1.1).
    AwaitConnectreply,
    /// Secondary: waiting for CONNECT (§6.1).
    AwaitConnect,
    /// CONNECT/CONNECTREPLY done; the partner's STATE has not arrived yet (§6.1: it must be
    /// the next message).
    AwaitState,
    /// The partner's STATE arrived: communications OK (§6.1).
    Established,
}

/// The connection as seen by [`crate::Endpoint::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// No connection; `reason` is why the last one ended (`None`: there never was one).
    Down {
        /// Why the last connection ended.
        reason: Option<DownReason>,
    },
    /// A connection in `phase`, since `since_ms` (monotonic).
    Up {
        /// Where it is.
        phase: Phase,
        /// When it was reported connected (monotonic ms).
        since_ms: u64,
    },
}

/// What happened, for logs, metrics and the engine. Drained with
/// [`crate::Endpoint::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The endpoint state changed. A chain of transitions taken on one input gives one event
    /// per step (D13).
    StateChanged {
        /// The state left.
        from: StateName,
        /// The state entered.
        to: StateName,
    },
    /// What the engine may do changed: install it (docs/failover.md "How the engine and
    /// failover meet").
    PolicyChanged(ServingPolicy),
    /// The partner reported a new state, flags or start time (§6.4).
    PartnerStateChanged(PartnerRecord),
    /// Communications OK: the partner's STATE arrived on the new connection (§6.1).
    LinkUp,
    /// The connection ended (or was refused) and why.
    LinkDown(DownReason),
    /// The partner broke the protocol; a DISCONNECT and a close follow.
    PeerMisbehaved(PeerMisbehaved),
    /// An alarm the RFC asks to raise (§8.9: NORMAL → COMMUNICATIONS-INTERRUPTED; §8.11:
    /// entering RESOLUTION-INTERRUPTED).
    Alarm(StateName),
    /// The partner sent UPDREQ (`all == false`: every binding flagged "partner needs
    /// update") or UPDREQALL (every binding), §5.3.7, §5.3.8. The driver sends them with
    /// [`crate::Endpoint::send_bndupd`] as the window allows, then calls
    /// [`crate::Endpoint::update_stream_complete`]; UPDDONE follows the last BNDREPLY.
    UpdateRequested {
        /// UPDREQALL.
        all: bool,
    },
    /// Updates may flow on this connection (§8.8 "upon entering NORMAL", D25): the driver
    /// sends every binding still flagged "partner needs update", then keeps sending changes
    /// as they happen, within [`crate::Endpoint::update_window`].
    UpdatesMayFlow,
    /// The secondary asked for delegable prefixes (POOLREQ, §5.3.3); POOLRESP was sent. The
    /// rebalancing itself is part 2 (D17).
    PoolRequested,
    /// The partner's sent-time was more than 5 s off (§7.5.1); measured skew in seconds
    /// (positive: the partner's clock is ahead).
    ExcessiveTimeSkew(i64),
}

/// Counters of what the endpoint dropped, refused or ended, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Protocol violations, by [`MisbehaviorKind`] (as `usize`).
    pub misbehaved: [u64; MisbehaviorKind::COUNT],
    /// Messages of an unassigned type: dropped (D11).
    pub unknown_message_types: u64,
    /// Messages handed in while no connection was up (stale bytes after a close): dropped.
    pub ignored_while_down: u64,
    /// Connections ended because the partner's clock was more than 5 s off (§7.5.1).
    pub excessive_skew: u64,
    /// Connections ended by keepalive expiry (§6.6).
    pub keepalive_expired: u64,
    /// DISCONNECTs received.
    pub disconnects_received: u64,
    /// CONNECTs we refused (secondary).
    pub connects_refused: u64,
    /// CONNECTREPLYs refusing our CONNECT (primary).
    pub connects_refused_by_partner: u64,
    /// UPDDONEs answering a request of an earlier state entry: dropped.
    pub stale_upddone: u64,
    /// Requests for which no UPDDONE came in time (§8.5.2).
    pub update_timeouts: u64,
    /// BNDUPDs refused as a whole by the driver ([`crate::Endpoint::refuse_bndupd`]).
    pub bndupd_refused: u64,
    /// BNDUPDs sent.
    pub bndupd_sent: u64,
    /// BNDUPDs received.
    pub bndupd_received: u64,
    /// BNDREPLYs sent.
    pub bndreply_sent: u64,
    /// BNDREPLYs received.
    pub bndreply_received: u64,
}

/// A binding message for the driver ([`crate::Endpoint::poll_binding`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingInput {
    /// The partner's BNDUPD (§7.5): decode, decide and store it, then answer with
    /// [`crate::Endpoint::send_bndreply`] (or [`crate::Endpoint::refuse_bndupd`]) giving
    /// `conn` and `xid`.
    Update {
        /// The connection it came on.
        conn: u64,
        /// Its transaction-id.
        xid: u32,
        /// The whole message (frame body: header and options).
        message: Vec<u8>,
    },
    /// The partner's BNDREPLY to our BNDUPD sent with `tag` (§7.7).
    Reply {
        /// What the driver gave [`crate::Endpoint::send_bndupd`].
        tag: u64,
        /// Its per-lease verdicts, decoded from the message the endpoint parsed
        /// ([`crate::bndupd::decode_parsed_bndreply`]), or why a binding option block of it
        /// does not decode (the update stays pending).
        reply: Result<crate::bndupd::DecodedReply, tandem_wire::Error>,
    },
}

/// Why [`crate::Endpoint::send_bndupd`] sent nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateNotSent {
    /// No connection with communications OK, a state in which updates do not flow, or the
    /// partner's MAX_UNACKED_BNDUPD reached ([`crate::Endpoint::update_window`]).
    NoWindow,
    /// The options do not fit one frame (65535 octets with the header).
    TooLong,
}

impl Counters {
    /// Violations of `kind`.
    pub fn misbehaved(&self, kind: MisbehaviorKind) -> u64 {
        self.misbehaved.get(kind as usize).copied().unwrap_or(0)
    }

    /// Counts one violation of `kind`.
    pub(crate) fn count_misbehaved(&mut self, kind: MisbehaviorKind) {
        if let Some(c) = self.misbehaved.get_mut(kind as usize) {
            *c += 1;
        }
    }
}

/// A snapshot for the control socket and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Our role.
    pub role: Role,
    /// Our state.
    pub state: StateName,
    /// When it began (wall clock).
    pub state_since: FailoverTime,
    /// The state before.
    pub previous: Option<StateName>,
    /// What the engine may do.
    pub policy: ServingPolicy,
    /// The MCLT in use.
    pub mclt: u32,
    /// The partner as last heard of.
    pub partner: Option<PartnerRecord>,
    /// The connection.
    pub link: LinkStatus,
    /// Communications OK (§6.1).
    pub communications_ok: bool,
    /// Our server flags as they would be sent now.
    pub flags: ServerFlags,
    /// Wall-clock time the last message arrived from the partner.
    pub last_contact: Option<FailoverTime>,
    /// Sent-time minus our clock, in seconds, of the last message received (positive: the
    /// partner's clock is ahead).
    pub skew: Option<i64>,
    /// The largest absolute skew measured since start.
    pub max_abs_skew: u64,
    /// Counters.
    pub counters: Counters,
}
