//! The failover link's transport (RFC 8156 §5.1, §6.1, §10): one non-blocking TCP connection
//! to the partner's port 647, its message framing (RFC 5460 §5.1, through
//! [`FrameDecoder`]), and STARTTLS then TLS (RFC 7653 §8.2, §9.1) or plain TCP when the
//! configuration says so. It makes no failover decision: it hands whole message bodies up and
//! sends the frames it is given.
//!
//! A [`Link`] is a source of the caller's mio event loop (register it with
//! [`Link::stream_mut`] for both readable and writable interest, edge-triggered). After every
//! readiness call [`Link::on_ready`], after every timer [`Link::on_timeout`]; then drain
//! [`Link::poll_event`] and arm a timer for [`Link::poll_timeout`].
//!
//! Who speaks first:
//!
//! | side | insecure | secure |
//! |---|---|---|
//! | initiator (primary) | [`LinkEvent::Established`] once TCP connects | sends STARTTLS (23); on REPLY (7) without status, TLS client handshake; then `Established` |
//! | acceptor (secondary) | the first frame, unless it is STARTTLS: `Established`, then that frame as a message; STARTTLS is answered REPLY + TLSConnectionRefused (15) and the connection closed | the first frame must be STARTTLS: answered REPLY without status, TLS server handshake, then `Established`; anything else closes the connection unanswered (`docs/failover.md` D20) |
//!
//! A refusal (REPLY with TLSConnectionRefused), an unexpected answer, no answer, or a failed
//! handshake close the connection (§8.2 "MUST close"). Against a hostile or broken peer every
//! wait is bounded: the whole set-up (TCP connect, STARTTLS answer, TLS handshake, the
//! acceptor's first frame) within [`SETUP_TIMEOUT`]; a frame begun must be complete within
//! [`FRAME_TIMEOUT`]; a zero-length frame, one byte past a frame's declared end of the
//! pre-TLS exchange, or output piling up beyond [`MAX_PENDING_OUTPUT`] (a peer that does not
//! read) end the connection. Every end is a [`LinkEvent::Closed`] with a [`CloseReason`]
//! whose [`CloseKind`] indexes counters.

pub mod tls;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use tandem_wire::dhcp::{MessageType, StatusCode, StatusCodeOption};
use tandem_wire::failover::frame::{FRAME_HEADER_LEN, MAX_FRAME_LEN};
use tandem_wire::failover::{Failover, FailoverMessage, FailoverTime, FrameDecoder};

pub use self::tls::{PeerIdentity, TlsError, TlsField, TlsPaths, TlsSettings};

/// Longest the set-up may take: TCP connect, the STARTTLS answer, the TLS handshake and (on
/// the acceptor) the first frame.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a frame may take to arrive once its first octet has (RFC 8156 §10: "partial
/// messages ... can also exhaust a server's pool of available connections").
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Most octets waiting to be written before the peer is deemed not to read.
pub const MAX_PENDING_OUTPUT: usize = 4 << 20;
/// Longest a closing connection waits for its last octets to go and the peer to close.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Connects and speaks first (the primary, RFC 8156 §6.1).
    Initiator,
    /// Accepted it (the secondary).
    Acceptor,
}

/// Plain TCP or STARTTLS + TLS.
#[derive(Clone, Debug)]
pub enum Security {
    /// Plain TCP: only when the configuration says `insecure = true` (RFC 7653 §9.1).
    Insecure,
    /// STARTTLS then mutually authenticated TLS.
    Tls(Arc<TlsSettings>),
}

/// Why a connection ended, by kind (to index counters; [`CloseKind::ALL`] lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CloseKind {
    /// We closed it (asked by the caller).
    Local,
    /// The peer closed it (end of stream, or TLS close_notify).
    PeerClosed,
    /// The TCP connection could not be made.
    ConnectFailed,
    /// A socket error (reset, unreachable…).
    Io,
    /// The set-up did not finish within [`SETUP_TIMEOUT`].
    SetupTimeout,
    /// A frame did not complete within [`FRAME_TIMEOUT`].
    FrameTimeout,
    /// A zero-length frame, or bytes that cannot be a frame here.
    BadFrame,
    /// The partner answered STARTTLS with REPLY + TLSConnectionRefused.
    TlsRefusedByPeer,
    /// The partner answered STARTTLS with something else than a REPLY.
    StartTlsUnexpected,
    /// We are insecure and refused the partner's STARTTLS.
    StartTlsRefused,
    /// We are secure and the partner's first message was not STARTTLS (D20).
    PlaintextRefused,
    /// The TLS handshake or record layer failed (certificate refused, bad record…).
    Tls,
    /// More than [`MAX_PENDING_OUTPUT`] octets waited to be written.
    OutputOverflow,
}

impl CloseKind {
    /// Every kind, in counter order.
    pub const ALL: [Self; 13] = [
        Self::Local,
        Self::PeerClosed,
        Self::ConnectFailed,
        Self::Io,
        Self::SetupTimeout,
        Self::FrameTimeout,
        Self::BadFrame,
        Self::TlsRefusedByPeer,
        Self::StartTlsUnexpected,
        Self::StartTlsRefused,
        Self::PlaintextRefused,
        Self::Tls,
        Self::OutputOverflow,
    ];

    /// A stable name for logs and counters.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::PeerClosed => "peer_closed",
            Self::ConnectFailed => "connect_failed",
            Self::Io => "io_error",
            Self::SetupTimeout => "setup_timeout",
            Self::FrameTimeout => "frame_timeout",
            Self::BadFrame => "bad_frame",
            Self::TlsRefusedByPeer => "tls_refused_by_peer",
            Self::StartTlsUnexpected => "starttls_unexpected_answer",
            Self::StartTlsRefused => "starttls_refused",
            Self::PlaintextRefused => "plaintext_refused",
            Self::Tls => "tls_error",
            Self::OutputOverflow => "output_overflow",
        }
    }
}

/// Why a connection ended: its kind and what happened, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    /// The kind.
    pub kind: CloseKind,
    /// Details (the OS error, the TLS alert, the status text), possibly empty.
    pub detail: String,
}

impl CloseReason {
    fn new(kind: CloseKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// What a link reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The connection is usable for failover messages: TLS is up (`Some`: who the partner is)
    /// or the connection is plain TCP (`None`).
    Established {
        /// The partner's certificate, when TLS.
        tls: Option<PeerIdentity>,
    },
    /// One whole message (the frame's body, without its 2-octet length).
    Message(Vec<u8>),
    /// The connection is gone; nothing more comes.
    Closed(CloseReason),
}

/// Where the connection is.
#[derive(Debug)]
enum Phase {
    /// Initiator: TCP connect in progress.
    Connecting,
    /// Initiator, secure: STARTTLS sent, reading the answer exactly.
    AwaitTlsReply,
    /// Acceptor: reading the first frame exactly.
    AwaitFirst,
    /// TLS handshake in progress.
    Handshake,
    /// Established: frames flow.
    Open,
    /// Writing what is left, then half-closing and waiting (at most [`CLOSE_LINGER`]) for
    /// the peer to close, so that nothing unread turns our close into a reset that could
    /// destroy the last frames in flight.
    Closing(CloseReason),
    /// Gone.
    Closed,
}

/// STARTTLS transaction-ids: any value, different per connection for the logs.
static NEXT_XID: AtomicU32 = AtomicU32::new(1);

/// One failover connection (see the module docs).
pub struct Link {
    stream: TcpStream,
    peer: SocketAddr,
    side: Side,
    security: Security,
    phase: Phase,
    tls: Option<Box<rustls::Connection>>,
    /// Frames of the established connection.
    decoder: FrameDecoder<Box<[u8]>>,
    /// The pre-TLS frame read octet-exactly (STARTTLS's answer, the acceptor's first frame).
    exact: Vec<u8>,
    /// Octets to write in the clear (STARTTLS, its REPLY; everything on an insecure link).
    raw_out: Vec<u8>,
    /// Plaintext for the TLS layer (secure links once the handshake started).
    app_out: Vec<u8>,
    /// Frames given before the connection was established (sent once it is).
    early: Vec<u8>,
    events: VecDeque<LinkEvent>,
    setup_deadline: Option<Instant>,
    /// Since when an incomplete frame has been waiting.
    partial_since: Option<Instant>,
    /// While closing: when to give up waiting.
    close_deadline: Option<Instant>,
    /// While closing: our write side is shut down.
    write_shut: bool,
    starttls_xid: u32,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("side", &self.side)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Starts connecting to `peer` (from `local`, if given, port chosen by the system).
    ///
    /// # Errors
    /// If the socket cannot be created, bound or the connect cannot be started.
    pub fn connect(
        peer: SocketAddr,
        local: Option<std::net::IpAddr>,
        security: Security,
        now: Instant,
    ) -> io::Result<Self> {
        let stream = match local {
            None => TcpStream::connect(peer)?,
            Some(ip) => {
                let std = crate::sys::tcp::connect_from(SocketAddr::new(ip, 0), peer)?;
                TcpStream::from_std(std)
            }
        };
        Ok(Self::new(stream, peer, Side::Initiator, security, now))
    }

    /// Takes over an accepted connection from `peer`.
    pub fn accept(stream: TcpStream, peer: SocketAddr, security: Security, now: Instant) -> Self {
        Self::new(stream, peer, Side::Acceptor, security, now)
    }

    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        side: Side,
        security: Security,
        now: Instant,
    ) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            peer,
            side,
            security,
            phase: match side {
                Side::Initiator => Phase::Connecting,
                Side::Acceptor => Phase::AwaitFirst,
            },
            tls: None,
            decoder: FrameDecoder::new(vec![0u8; MAX_FRAME_LEN].into_boxed_slice()),
            exact: Vec::new(),
            raw_out: Vec::new(),
            app_out: Vec::new(),
            early: Vec::new(),
            events: VecDeque::new(),
            setup_deadline: now.checked_add(SETUP_TIMEOUT),
            partial_since: None,
            close_deadline: None,
            write_shut: false,
            starttls_xid: NEXT_XID.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff,
        }
    }

    /// The socket, to register with the event loop (readable and writable).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The partner's address.
    pub const fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Which end this is.
    pub const fn side(&self) -> Side {
        self.side
    }

    /// `true` once established (and not closing).
    pub const fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// `true` once closed: drop it (after deregistering the stream).
    pub const fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// `true` when nothing waits to be written.
    pub fn is_flushed(&self) -> bool {
        self.raw_out.is_empty()
            && self.app_out.is_empty()
            && self.tls.as_ref().is_none_or(|t| !t.wants_write())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// When [`Link::on_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        let frame = self
            .partial_since
            .and_then(|t| t.checked_add(FRAME_TIMEOUT));
        [self.setup_deadline, frame, self.close_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends one frame (2-octet length included, as the failover endpoint gives it). Before the
    /// connection is established it is held and sent once it is.
    pub fn send(&mut self, frame: &[u8]) {
        self.queue(frame);
        self.flush();
    }

    /// Queues one frame as [`Link::send`] does, without writing it yet: the next
    /// [`Link::flush_queued`] (or [`Link::send`], [`Link::on_ready`], [`Link::close`]) writes
    /// everything queued, in order. A burst of frames queued this way leaves in as few TLS
    /// records and system calls as the socket allows, instead of one of each per frame.
    pub fn queue(&mut self, frame: &[u8]) {
        match self.phase {
            Phase::Open => {
                if self.tls.is_some() {
                    self.app_out.extend_from_slice(frame);
                } else {
                    self.raw_out.extend_from_slice(frame);
                }
            }
            Phase::Connecting | Phase::AwaitTlsReply | Phase::AwaitFirst | Phase::Handshake => {
                self.early.extend_from_slice(frame);
            }
            Phase::Closing(_) | Phase::Closed => {}
        }
    }

    /// Writes what [`Link::queue`] queued, as far as the socket takes it (the rest goes on
    /// writable readiness).
    pub fn flush_queued(&mut self) {
        self.flush();
    }

    /// Closes after writing what is queued (a TLS close_notify first). Reports
    /// [`LinkEvent::Closed`] with [`CloseKind::Local`] once done.
    pub fn close(&mut self, detail: &str, now: Instant) {
        self.close_after_flush(CloseReason::new(CloseKind::Local, detail), now);
    }

    /// Closes at once, unflushed.
    pub fn abort(&mut self, detail: &str) {
        self.finish(CloseReason::new(CloseKind::Local, detail));
    }

    /// Readiness of the socket: makes every step it can.
    pub fn on_ready(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if matches!(self.phase, Phase::Connecting) {
            match self.connected() {
                Ok(false) => return,
                Ok(true) => self.on_connected(now),
                Err(e) => {
                    self.finish(CloseReason::new(CloseKind::ConnectFailed, e.to_string()));
                    return;
                }
            }
        }
        self.read(now);
        self.flush();
    }

    /// A timer: ends a set-up or a frame that took too long.
    pub fn on_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.close_deadline.is_some_and(|d| now >= d) {
            if let Phase::Closing(reason) = std::mem::replace(&mut self.phase, Phase::Open) {
                self.finish(reason);
            }
            return;
        }
        if self.setup_deadline.is_some_and(|d| now >= d) {
            let what = match self.phase {
                Phase::Connecting => "TCP connect",
                Phase::AwaitTlsReply => "no answer to STARTTLS",
                Phase::AwaitFirst => "no first message",
                Phase::Handshake => "TLS handshake stalled",
                _ => "closing",
            };
            self.finish(CloseReason::new(
                CloseKind::SetupTimeout,
                format!("{what} within {SETUP_TIMEOUT:?}"),
            ));
            return;
        }
        if self
            .partial_since
            .and_then(|t| t.checked_add(FRAME_TIMEOUT))
            .is_some_and(|d| now >= d)
        {
            self.finish(CloseReason::new(
                CloseKind::FrameTimeout,
                format!(
                    "{} octets of a frame waited more than {FRAME_TIMEOUT:?}",
                    self.decoder.buffered().max(self.exact.len())
                ),
            ));
        }
    }

    /// Whether the non-blocking connect finished (`Err`: it failed).
    fn connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn on_connected(&mut self, now: Instant) {
        match &self.security {
            Security::Insecure => self.establish(None, now),
            Security::Tls(_) => {
                // RFC 7653 §8.2: STARTTLS is the first message on the connection.
                let mut buf = [0u8; 16];
                match Failover::StartTls.emit_framed(self.starttls_xid, FailoverTime(0), &mut buf) {
                    Ok(n) => {
                        self.raw_out
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                        self.phase = Phase::AwaitTlsReply;
                    }
                    Err(e) => self.finish(CloseReason::new(CloseKind::Local, e.to_string())),
                }
            }
        }
    }

    /// The connection is usable: report it, then send what was held.
    fn establish(&mut self, identity: Option<PeerIdentity>, now: Instant) {
        self.phase = Phase::Open;
        self.setup_deadline = None;
        self.partial_since = None;
        let _ = now;
        self.events
            .push_back(LinkEvent::Established { tls: identity });
        let early = std::mem::take(&mut self.early);
        if !early.is_empty() {
            self.send(&early);
        }
    }

    /// Reads everything the socket has and acts on it.
    fn read(&mut self, now: Instant) {
        loop {
            let progressed = match self.phase {
                Phase::AwaitTlsReply | Phase::AwaitFirst => self.read_exact_frame(now),
                Phase::Handshake | Phase::Open if self.tls.is_some() => self.read_tls(now),
                Phase::Open => self.read_plain(now),
                // Closing: read and discard, so that a peer's close is seen.
                Phase::Closing(_) => self.discard(),
                Phase::Connecting | Phase::Handshake | Phase::Closed => false,
            };
            if !progressed || matches!(self.phase, Phase::Closed) {
                return;
            }
        }
    }

    /// Reads octet-exactly the frame before TLS (so nothing of the TLS handshake is taken
    /// by mistake); `true` if it made progress.
    fn read_exact_frame(&mut self, now: Instant) -> bool {
        let want = match self.exact.first_chunk::<FRAME_HEADER_LEN>() {
            None => FRAME_HEADER_LEN - self.exact.len(),
            Some(len) => {
                let len = usize::from(u16::from_be_bytes(*len));
                if len == 0 {
                    self.finish(CloseReason::new(CloseKind::BadFrame, "zero-length frame"));
                    return false;
                }
                FRAME_HEADER_LEN + len - self.exact.len()
            }
        };
        let mut buf = vec![0u8; want];
        match read_some(&mut self.stream, &mut buf) {
            Err(reason) => {
                self.finish(reason);
                false
            }
            Ok(0) => false,
            Ok(n) => {
                self.exact
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
                self.partial_since.get_or_insert(now);
                if let Some(len) = self.exact.first_chunk::<FRAME_HEADER_LEN>()
                    && self.exact.len() == FRAME_HEADER_LEN + usize::from(u16::from_be_bytes(*len))
                {
                    self.partial_since = None;
                    let frame = std::mem::take(&mut self.exact);
                    let body = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
                    match self.phase {
                        Phase::AwaitTlsReply => self.on_tls_answer(body, now),
                        _ => self.on_first_frame(body, now),
                    }
                }
                true
            }
        }
    }

    /// Initiator: the answer to STARTTLS (RFC 7653 §8.2's four possibilities).
    fn on_tls_answer(&mut self, body: &[u8], now: Instant) {
        let msg = match Failover::parse_bytes(body) {
            Ok((_, msg)) => msg,
            Err(e) => {
                self.finish(CloseReason::new(
                    CloseKind::StartTlsUnexpected,
                    format!("undecodable answer to STARTTLS: {e}"),
                ));
                return;
            }
        };
        match msg {
            Failover::TlsReply(None) => self.start_tls(now),
            Failover::TlsReply(Some(status)) => {
                let text = status.message_str().unwrap_or("");
                let kind = if status.code == StatusCode::TLS_CONNECTION_REFUSED {
                    CloseKind::TlsRefusedByPeer
                } else {
                    CloseKind::StartTlsUnexpected
                };
                self.finish(CloseReason::new(
                    kind,
                    format!("REPLY with status {} {text:?}", status.code.0),
                ));
            }
            other => self.finish(CloseReason::new(
                CloseKind::StartTlsUnexpected,
                format!(
                    "message type {} instead of REPLY to STARTTLS",
                    other.msg_type().0
                ),
            )),
        }
    }

    /// Acceptor: the first frame decides (RFC 7653 §9.1).
    fn on_first_frame(&mut self, body: &[u8], now: Instant) {
        let msg_type = body.first().copied().map(MessageType);
        let starttls = msg_type == Some(MessageType::STARTTLS);
        match (&self.security, starttls) {
            (Security::Tls(_), true) => {
                let xid = FailoverMessage::parse(body).map_or(0, |m| m.transaction_id);
                self.queue_tls_reply(xid, None);
                self.start_tls(now);
            }
            (Security::Tls(_), false) => {
                // D20: closed unanswered; nothing unauthenticated goes back in the clear.
                self.finish(CloseReason::new(
                    CloseKind::PlaintextRefused,
                    format!(
                        "first message type {} in the clear; this side requires STARTTLS",
                        msg_type.map_or(0, |t| t.0)
                    ),
                ));
            }
            (Security::Insecure, true) => {
                let xid = FailoverMessage::parse(body).map_or(0, |m| m.transaction_id);
                self.queue_tls_reply(
                    xid,
                    Some(StatusCodeOption::new(
                        StatusCode::TLS_CONNECTION_REFUSED,
                        "TLS is not configured on this server (insecure = true)",
                    )),
                );
                self.close_after_flush(
                    CloseReason::new(
                        CloseKind::StartTlsRefused,
                        "STARTTLS refused: this side is configured insecure",
                    ),
                    now,
                );
            }
            (Security::Insecure, false) => {
                self.establish(None, now);
                self.events.push_back(LinkEvent::Message(body.to_vec()));
            }
        }
    }

    fn queue_tls_reply(&mut self, xid: u32, status: Option<StatusCodeOption<'_>>) {
        let mut buf = [0u8; 128];
        if let Ok(n) = Failover::TlsReply(status).emit_framed(xid, FailoverTime(0), &mut buf) {
            self.raw_out
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }

    /// Begins the TLS handshake (client on the initiator, server on the acceptor).
    fn start_tls(&mut self, _now: Instant) {
        let Security::Tls(settings) = &self.security else {
            return;
        };
        let conn: Result<rustls::Connection, rustls::Error> = match self.side {
            Side::Initiator => rustls::ClientConnection::new(
                Arc::clone(&settings.client),
                settings.server_name.clone(),
            )
            .map(Into::into),
            Side::Acceptor => {
                rustls::ServerConnection::new(Arc::clone(&settings.server)).map(Into::into)
            }
        };
        match conn {
            Ok(c) => {
                self.tls = Some(Box::new(c));
                self.phase = Phase::Handshake;
            }
            Err(e) => self.finish(CloseReason::new(CloseKind::Tls, e.to_string())),
        }
    }

    /// Reads TLS records, then the plaintext they carry; `true` if it made progress.
    fn read_tls(&mut self, now: Instant) -> bool {
        let Some(conn) = self.tls.as_mut() else {
            return false;
        };
        let n = loop {
            match conn.read_tls(&mut self.stream) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    self.finish(CloseReason::new(CloseKind::Io, e.to_string()));
                    return false;
                }
            }
        };
        let state = match conn.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                // Send the alert rustls queued, best effort, then close.
                let _ = conn.write_tls(&mut self.stream);
                let during = if matches!(self.phase, Phase::Handshake) {
                    "handshake: "
                } else {
                    ""
                };
                self.finish(CloseReason::new(CloseKind::Tls, format!("{during}{e}")));
                return false;
            }
        };
        let peer_closed = state.peer_has_closed();
        if matches!(self.phase, Phase::Handshake) && !conn.is_handshaking() {
            let identity = match &self.security {
                Security::Tls(s) => PeerIdentity::of(conn, &s.peer_names),
                Security::Insecure => None,
            };
            self.establish(identity, now);
        }
        if matches!(self.phase, Phase::Open) {
            self.read_plaintext(now);
        }
        if n == 0 || peer_closed {
            if !matches!(self.phase, Phase::Closed) {
                self.finish(CloseReason::new(CloseKind::PeerClosed, ""));
            }
            return false;
        }
        true
    }

    /// Moves the plaintext rustls decrypted into the frame decoder and takes frames out.
    fn read_plaintext(&mut self, now: Instant) {
        loop {
            let Some(conn) = self.tls.as_mut() else {
                return;
            };
            let spare = self.decoder.spare();
            if spare.is_empty() {
                return;
            }
            match conn.reader().read(spare) {
                Ok(0) => return,
                Ok(n) => {
                    if self.decoder.commit(n).is_err() {
                        return;
                    }
                    self.take_frames(now);
                    if matches!(self.phase, Phase::Closed) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.finish(CloseReason::new(CloseKind::Tls, e.to_string()));
                    return;
                }
            }
        }
    }

    /// Reads plain octets into the frame decoder; `true` if it made progress.
    fn read_plain(&mut self, now: Instant) -> bool {
        let spare = self.decoder.spare();
        match read_some(&mut self.stream, spare) {
            Err(reason) => {
                self.finish(reason);
                false
            }
            Ok(0) => false,
            Ok(n) => {
                if self.decoder.commit(n).is_ok() {
                    self.take_frames(now);
                }
                true
            }
        }
    }

    /// Reads and drops (while closing): `true` while there was something.
    fn discard(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                if let Phase::Closing(reason) = std::mem::replace(&mut self.phase, Phase::Open) {
                    self.finish(reason);
                }
                false
            }
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => {
                if let Phase::Closing(reason) = std::mem::replace(&mut self.phase, Phase::Open) {
                    self.finish(reason);
                }
                false
            }
        }
    }

    /// Every whole frame in the decoder becomes a [`LinkEvent::Message`].
    fn take_frames(&mut self, now: Instant) {
        loop {
            match self.decoder.next_message() {
                Ok(Some(body)) => {
                    self.events.push_back(LinkEvent::Message(body.to_vec()));
                    self.partial_since = None;
                }
                Ok(None) => break,
                Err(e) => {
                    self.finish(CloseReason::new(CloseKind::BadFrame, e.to_string()));
                    return;
                }
            }
        }
        if self.decoder.buffered() > 0 {
            self.partial_since.get_or_insert(now);
        }
    }

    /// Writes what the socket takes.
    fn flush(&mut self) {
        if matches!(self.phase, Phase::Closed | Phase::Connecting) {
            return;
        }
        // The clear octets first (STARTTLS, its REPLY), then TLS.
        if let Err(reason) = write_some(&mut self.stream, &mut self.raw_out) {
            self.finish(reason);
            return;
        }
        if self.raw_out.is_empty()
            && let Some(conn) = self.tls.as_mut()
        {
            // rustls takes at most its buffer limit of plaintext at a time: hand it more
            // each time its records are out, until everything is written or the socket is
            // full (then writable readiness brings us back; stopping earlier would leave
            // the rest waiting for the next send).
            let mut taken = 0;
            loop {
                let rest = self.app_out.get(taken..).unwrap_or_default();
                let mut accepted = 0;
                if !rest.is_empty() && !conn.is_handshaking() {
                    match conn.writer().write(rest) {
                        Ok(n) => accepted = n,
                        Err(e) => {
                            self.finish(CloseReason::new(CloseKind::Tls, e.to_string()));
                            return;
                        }
                    }
                    taken += accepted;
                }
                let (mut blocked, mut wrote) = (false, false);
                while conn.wants_write() {
                    match conn.write_tls(&mut self.stream) {
                        Ok(0) => {
                            blocked = true;
                            break;
                        }
                        Ok(_) => wrote = true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            blocked = true;
                            break;
                        }
                        Err(e) => {
                            self.finish(CloseReason::new(CloseKind::Io, e.to_string()));
                            return;
                        }
                    }
                }
                if blocked || taken >= self.app_out.len() || (accepted == 0 && !wrote) {
                    break;
                }
            }
            self.app_out.drain(..taken);
        }
        let pending = self.raw_out.len() + self.app_out.len();
        if pending > MAX_PENDING_OUTPUT {
            self.finish(CloseReason::new(
                CloseKind::OutputOverflow,
                format!("{pending} octets unwritten: the partner does not read"),
            ));
            return;
        }
        if let Phase::Closing(_) = &self.phase
            && self.is_flushed()
            && !self.write_shut
        {
            self.write_shut = true;
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }

    fn close_after_flush(&mut self, reason: CloseReason, now: Instant) {
        if matches!(self.phase, Phase::Closed | Phase::Closing(_)) {
            return;
        }
        if matches!(self.phase, Phase::Connecting) {
            self.finish(reason);
            return;
        }
        if let Some(conn) = self.tls.as_mut()
            && !conn.is_handshaking()
        {
            // The frames first, then close_notify.
            if !self.app_out.is_empty()
                && let Ok(n) = conn.writer().write(&self.app_out)
            {
                self.app_out.drain(..n);
            }
            conn.send_close_notify();
        }
        self.phase = Phase::Closing(reason);
        self.setup_deadline = None;
        self.partial_since = None;
        self.close_deadline = now.checked_add(CLOSE_LINGER);
        self.flush();
        self.read(now);
    }

    /// Closed now: reports why.
    fn finish(&mut self, reason: CloseReason) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.phase = Phase::Closed;
        self.setup_deadline = None;
        self.partial_since = None;
        self.close_deadline = None;
        self.raw_out.clear();
        self.app_out.clear();
        self.events.push_back(LinkEvent::Closed(reason));
    }
}

/// One read: `Ok(0)` when nothing is there now, the count otherwise; end of stream and errors
/// as the reason to close.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, CloseReason> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        return match stream.read(buf) {
            Ok(0) => Err(CloseReason::new(CloseKind::PeerClosed, "")),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                Err(CloseReason::new(CloseKind::PeerClosed, "connection reset"))
            }
            Err(e) => Err(CloseReason::new(CloseKind::Io, e.to_string())),
        };
    }
}

/// Writes from the front of `out` what the socket takes.
fn write_some(stream: &mut TcpStream, out: &mut Vec<u8>) -> Result<(), CloseReason> {
    let mut at = 0;
    let result = loop {
        let Some(rest) = out.get(at..).filter(|r| !r.is_empty()) else {
            break Ok(());
        };
        match stream.write(rest) {
            Ok(0) => break Err(CloseReason::new(CloseKind::Io, "write returned 0")),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                break Err(CloseReason::new(CloseKind::PeerClosed, "broken pipe"));
            }
            Err(e) => break Err(CloseReason::new(CloseKind::Io, e.to_string())),
        }
    };
    out.drain(..at.min(out.len()));
    result
}

#[cfg(test)]
mod tests;
