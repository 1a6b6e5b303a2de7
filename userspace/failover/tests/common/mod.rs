//! Test helpers: one endpoint driven by hand, a scripted partner's frames, and the decoded view
//! of what the endpoint sends.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset of the helpers; pub is for the test modules"
)]

use tandem_failover::{Config, Endpoint, Event, Now, Persisted, Role, StateName, Transmit};
use tandem_wire::dhcp::{MessageType, StatusCode, StatusCodeOption};
use tandem_wire::failover::option::{
    ConnectFlags, KeepaliveTime, MaxUnackedBndupd, Mclt, PartnerDownTime, ProtocolVersion,
    RelationshipName, ServerFlags, StartTimeOfState,
};
use tandem_wire::failover::{ConnectParams, Connectreply, Failover, FailoverTime, State};

/// Wall clock at mono 0 (2026-ish in failover time).
pub const WALL0: u32 = 830_000_000;
pub const NAME: &str = "tandem-test";

pub fn config(role: Role) -> Config {
    let mut c = Config::new(role, NAME);
    c.mclt = 60;
    c.keepalive = 20;
    c.startup_secs = 10;
    c.heartbeat = 30;
    c.update_timeout = 60;
    c
}

/// A message from the partner as `handle_message` takes it (frame body, no length prefix).
pub fn frame(msg: &Failover<'_>, xid: u32, sent: FailoverTime) -> Vec<u8> {
    let mut buf = vec![0u8; msg.buffer_len()];
    let n = msg.emit(xid, sent, &mut buf).expect("test messages emit");
    buf.truncate(n);
    buf
}

pub fn params(mclt: u32, name: Option<&str>) -> ConnectParams<'_> {
    ConnectParams {
        protocol_version: ProtocolVersion::V1_0,
        mclt: Mclt(mclt),
        keepalive_time: KeepaliveTime(20),
        max_unacked_bndupd: MaxUnackedBndupd(10),
        connect_flags: ConnectFlags(ConnectFlags::FIXED_PD_LENGTH),
        relationship_name: name.map(RelationshipName),
    }
}

pub fn state_msg(state: StateName, flags: u8, since: FailoverTime) -> Failover<'static> {
    Failover::State(State {
        server_state: state.code(),
        server_flags: ServerFlags(flags),
        start_time_of_state: StartTimeOfState(since),
        partner_down_time: (state == StateName::PartnerDown).then_some(PartnerDownTime(since)),
    })
}

/// What the endpoint sent, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    Msg {
        msg_type: MessageType,
        xid: u32,
        sent_time: FailoverTime,
        /// STATE: state, flags, start time.
        state: Option<(StateName, ServerFlags, FailoverTime)>,
        /// DISCONNECT / refusing CONNECTREPLY / BNDREPLY status.
        status: Option<StatusCode>,
        /// CONNECT / accepting CONNECTREPLY MCLT.
        mclt: Option<u32>,
    },
    Close,
}

impl Sent {
    pub fn msg_type(&self) -> Option<MessageType> {
        match self {
            Self::Msg { msg_type, .. } => Some(*msg_type),
            Self::Close => None,
        }
    }
    pub fn xid(&self) -> u32 {
        match self {
            Self::Msg { xid, .. } => *xid,
            Self::Close => 0,
        }
    }
}

pub fn decode(t: &Transmit) -> Sent {
    match t {
        Transmit::Close { .. } => Sent::Close,
        Transmit::Frame(bytes) => {
            let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
            assert_eq!(len + 2, bytes.len(), "frame length prefix");
            let (msg, typed) = Failover::parse_bytes(&bytes[2..]).expect("we send what we parse");
            let state = match &typed {
                Failover::State(s) => Some((
                    StateName::from_code(s.server_state).expect("valid state"),
                    s.server_flags,
                    s.start_time_of_state.0,
                )),
                _ => None,
            };
            let status = match &typed {
                Failover::Disconnect(s) => s.map(|s| s.code),
                Failover::Connectreply(Connectreply::Reject(s)) => Some(s.code),
                Failover::Bndreply(b) => b.status.map(|s: StatusCodeOption<'_>| s.code),
                _ => None,
            };
            let mclt = match &typed {
                Failover::Connect(p) | Failover::Connectreply(Connectreply::Accept(p)) => {
                    Some(p.mclt.0)
                }
                _ => None,
            };
            Sent::Msg {
                msg_type: msg.msg_type,
                xid: msg.transaction_id,
                sent_time: msg.sent_time.expect("failover messages carry sent-time"),
                state,
                status,
                mclt,
            }
        }
    }
}

/// One endpoint with a driver that persists at once, on a clock the test moves.
pub struct One {
    pub ep: Endpoint,
    pub mono_ms: u64,
    /// Our wall clock minus the partner script's, in seconds.
    pub durable: Option<Persisted>,
    pub sent: Vec<Sent>,
    pub events: Vec<Event>,
    /// Answer UPDREQ / UPDREQALL as a driver without bindings would (on by default).
    pub auto_complete_updates: bool,
}

impl One {
    pub fn new(cfg: Config, persisted: Option<Persisted>) -> Self {
        let ep = Endpoint::new(cfg, persisted, at(0)).expect("valid test configuration");
        let mut one = Self {
            ep,
            mono_ms: 0,
            durable: persisted,
            sent: Vec::new(),
            events: Vec::new(),
            auto_complete_updates: true,
        };
        one.drain();
        one
    }

    pub fn now(&self) -> Now {
        at(self.mono_ms)
    }

    pub fn wall(&self) -> FailoverTime {
        self.now().wall
    }

    /// Persists (confirming at once), collects transmits and events.
    pub fn drain(&mut self) {
        loop {
            if let Some(p) = self.ep.poll_persist() {
                self.durable = Some(p);
                self.ep.handle_persisted();
                continue;
            }
            match self.ep.poll_transmit() {
                Some(t) => self.sent.push(decode(&t)),
                None => break,
            }
        }
        let mut again = false;
        while let Some(e) = self.ep.poll_event() {
            if let Event::UpdateRequested { .. } = e
                && self.auto_complete_updates
            {
                // A driver without bindings: everything asked for (nothing) is sent.
                self.ep.update_stream_complete(self.now());
                again = true;
            }
            self.events.push(e);
        }
        if again {
            self.drain();
        }
    }

    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    pub fn connected(&mut self) {
        self.ep.handle_connected(self.now());
        self.drain();
    }

    pub fn recv(&mut self, msg: &Failover<'_>, xid: u32) {
        self.recv_skewed(msg, xid, 0);
    }

    pub fn recv_skewed(&mut self, msg: &Failover<'_>, xid: u32, skew: i32) {
        let sent = self.wall().wrapping_add(skew as u32);
        let bytes = frame(msg, xid, sent);
        self.ep.handle_message(self.now(), &bytes);
        self.drain();
    }

    pub fn recv_bytes(&mut self, bytes: &[u8]) {
        self.ep.handle_message(self.now(), bytes);
        self.drain();
    }

    pub fn closed(&mut self) {
        self.ep.handle_closed(self.now());
        self.drain();
    }

    /// Moves the clock by `ms`, firing every timer due on the way.
    pub fn advance(&mut self, ms: u64) {
        let end = self.mono_ms + ms;
        loop {
            match self.ep.poll_timeout() {
                Some(t) if t <= end => {
                    self.mono_ms = self.mono_ms.max(t);
                    self.ep.handle_timeout(self.now());
                    self.drain();
                }
                _ => break,
            }
        }
        self.mono_ms = end;
        self.ep.handle_timeout(self.now());
        self.drain();
    }

    pub fn state(&self) -> StateName {
        self.ep.state().name()
    }

    /// Runs the handshake as the partner script (answering CONNECT, or sending it) and
    /// delivers the partner's STATE in `partner` with `flags`. Clears what was sent before.
    pub fn handshake_with(&mut self, partner: StateName, flags: u8) {
        self.connected();
        match self.ep.config().role {
            Role::Primary => {
                let connect = self
                    .take_sent()
                    .into_iter()
                    .find(|s| s.msg_type() == Some(MessageType::CONNECT))
                    .expect("primary sends CONNECT");
                let mclt = self.ep.mclt();
                self.recv(
                    &Failover::Connectreply(Connectreply::Accept(params(mclt, None))),
                    connect.xid(),
                );
            }
            Role::Secondary => {
                let mclt = self.ep.mclt();
                self.recv(&Failover::Connect(params(mclt, Some(NAME))), 77);
            }
        }
        let since = self.wall();
        self.recv(&state_msg(partner, flags, since), 1000);
    }

    /// The states our STATE messages announced, in order.
    pub fn states_sent(&self) -> Vec<StateName> {
        self.sent
            .iter()
            .filter_map(|s| match s {
                Sent::Msg {
                    state: Some((n, _, _)),
                    ..
                } => Some(*n),
                _ => None,
            })
            .collect()
    }

    pub fn sent_types(&self) -> Vec<MessageType> {
        self.sent.iter().filter_map(Sent::msg_type).collect()
    }

    pub fn closed_by_us(&self) -> bool {
        self.sent.contains(&Sent::Close)
    }
}

pub fn at(mono_ms: u64) -> Now {
    Now {
        mono_ms,
        wall: FailoverTime(WALL0 + (mono_ms / 1000) as u32),
    }
}

/// A persisted record in `state`, as if written `ago` seconds before mono 0.
pub fn record(state: StateName, ago: u32) -> Persisted {
    Persisted {
        state,
        state_since: FailoverTime(WALL0 - ago - 100),
        previous: None,
        partner: None,
        last_contact: None,
        communicated: true,
        resync_all: false,
        mclt: 60,
        operating_until: FailoverTime(WALL0 - ago),
    }
}

pub const STARTUP: u8 = ServerFlags::STARTUP;
pub const COMMUNICATED: u8 = ServerFlags::COMMUNICATED;

pub fn status_of_disconnect(sent: &[Sent]) -> Option<StatusCode> {
    sent.iter().find_map(|s| match s {
        Sent::Msg {
            msg_type: MessageType::DISCONNECT,
            status,
            ..
        } => *status,
        _ => None,
    })
}
