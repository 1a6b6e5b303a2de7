//! Binding updates on the wire (RFC 8156 §7.4–§7.7): one [`Binding`] as a BNDUPD, a received
//! BNDUPD as [`LeaseUpdate`]s, the BNDREPLY answering it, and a received BNDREPLY as per-lease
//! acknowledgements.
//!
//! What to *do* with an update — accept or reject it, what to store, what an ack clears — is
//! `tandem_lease::sync`; this module only maps between those values and the messages, with
//! the codec of `tandem_wire::failover` doing the parsing and the RFC's MUST checks. It
//! performs no I/O and reads no clock; encoding writes into the caller's buffer and allocates
//! nothing; decoding borrows the message and never panics, whatever the bytes.
//!
//! The three steps, and who calls what (transaction-ids and framing are the endpoint's):
//!
//! 1. **Sender**: [`BndupdMessage::new`]`(&binding, now)`, then
//!    [`BndupdMessage::emit_framed`] (or [`BndupdMessage::with_failover`] to hand the typed
//!    message to the endpoint's own sender) with a fresh transaction-id. The sender keeps the
//!    binding's start-time-of-state with the transaction-id: §7.6 does not echo it and
//!    [`LeaseAck::ack_info`] needs it.
//! 2. **Receiver**: [`decode_bndupd`]. A [`Reject::Whole`] is answered at once with
//!    [`BndreplyMessage::refusal`]; a [`Reject::Malformed`] is a peer error (not a BNDUPD at
//!    all). Otherwise, for each of [`DecodedUpdate::leases`] in order: a [`LeaseRefusal`]
//!    is its verdict; a [`LeaseUpdate`] is checked against the configuration (not ours:
//!    ConfigurationConflict, §7.5.4), then [`tandem_lease::sync::decide`]d against the binding
//!    held and, if accepted, [`tandem_lease::sync::apply`]d and stored. When every binding is
//!    durable (§7.5.2), [`BndreplyMessage::new`] with one [`Verdict`] per lease answers.
//! 3. **Sender**: [`decode_bndreply`]; for each accepted [`LeaseAck`],
//!    [`tandem_lease::sync::ack`] with [`LeaseAck::ack_info`].
//!
//! Choices where the RFC is open (`docs/failover.md` D24, D61): what changed, one lease per
//! binding, and a client's bindings that wait together in one BNDUPD ([`ClientBndupd`], §7.4
//! allows one client's whole binding, one IA per binding); OPTION_CLT_TIME is converted
//! with the LQ_BASE_TIME of its own block; no OPTION_VSS, OPTION_LQ_RELAY_DATA,
//! OPTION_F_RECONFIGURE_DATA or OPTION_CLIENT_FQDN is sent (none is stored), and a received
//! OPTION_VSS refuses the whole update (only the default VPN exists here); per-lease Status
//! Codes carry no text, so a BNDREPLY is never longer than the BNDUPD it answers.

use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv6Addr;

use tandem_lease::sync::{self, AckInfo, Decision, LeaseUpdate, UpdateClient};
use tandem_lease::{Binding, BindingStatus, DuidBuf, LeaseKind};
use tandem_wire::codec::Writer;
use tandem_wire::dhcp::StatusCodeOption;
use tandem_wire::dhcp::{Duid, IaAddr, IaNa, IaPd, IaPrefix, MessageType, StatusCode};
use tandem_wire::failover::frame::MAX_MESSAGE_LEN;
use tandem_wire::failover::option::{
    CltTime, ExpirationTime, LqBaseTime, OptionList, PartnerLifetime, PartnerRawCltTime,
    StartTimeOfState, StateExpirationTime,
};
use tandem_wire::failover::{
    BindingInfo, BindingPayload, Bndreply, Bndupd, ClientData, Failover, FailoverMessage,
    FailoverTime, Ia, Lease, LeaseOption,
};
use tandem_wire::option::{EmitOption, OptionCode, Options, RawOption};
use tandem_wire::{Error, Result};

impl From<crate::Role> for sync::Role {
    fn from(role: crate::Role) -> Self {
        match role {
            crate::Role::Primary => Self::Primary,
            crate::Role::Secondary => Self::Secondary,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sending a binding: BNDUPD
// ---------------------------------------------------------------------------------------------

/// Why a binding cannot be sent in a BNDUPD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The binding has no client, and RFC 8156 §7.4 has no form for it without one: an address
    /// (there is no bare IAADDR; only a delegable prefix can go as a bare OPTION_IAPREFIX), or
    /// an ACTIVE prefix (ACTIVE "MUST" carry client identification, §7.2). An address nobody
    /// ever held tells the partner nothing: independent allocation assigns addresses to the
    /// servers by parity (§4.2.1.1), so the update is dropped, not sent.
    NoClient,
    /// The binding's DUID is not 3 to 130 octets (RFC 8415 §11.1): the partner would refuse the
    /// whole OPTION_CLIENT_DATA.
    InvalidDuid,
    /// Bindings that cannot share one BNDUPD ([`ClientBndupd::new`]): none, more than
    /// [`CLIENT_BNDUPD_MAX`], a bare prefix, another client, or two in one IA.
    NotOneClient,
    /// The wire codec refused (a buffer too small, a prefix length over 128).
    Wire(Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoClient => f.write_str(
                "binding without a client cannot be sent (RFC 8156 §7.4: no bare IAADDR, ACTIVE \
                 needs a client)",
            ),
            Self::InvalidDuid => f.write_str("binding with a DUID of the wrong length"),
            Self::NotOneClient => f.write_str("bindings that cannot share one BNDUPD"),
            Self::Wire(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for EncodeError {
    fn from(e: Error) -> Self {
        Self::Wire(e)
    }
}

/// How a binding goes out (RFC 8156 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// In an OPTION_CLIENT_DATA, with its client (IA_NA or IA_PD).
    ClientData,
    /// A bare OPTION_IAPREFIX: a delegable prefix "currently not associated with any clients".
    BarePrefix,
}

/// How `binding` goes out (RFC 8156 §7.4), or why it cannot ([`BndupdMessage::new`]).
fn shape_of(binding: &Binding) -> core::result::Result<Shape, EncodeError> {
    let unassigned = matches!(
        binding.status,
        BindingStatus::FREE | BindingStatus::FREE_BACKUP | BindingStatus::PENDING_FREE
    );
    let shape = match binding.kind {
        LeaseKind::Prefix if binding.duid.is_empty() || unassigned => Shape::BarePrefix,
        _ if binding.duid.is_empty() => return Err(EncodeError::NoClient),
        _ => Shape::ClientData,
    };
    if shape == Shape::BarePrefix && binding.status == BindingStatus::ACTIVE {
        return Err(EncodeError::NoClient);
    }
    if shape == Shape::ClientData && Duid::parse(binding.duid.as_bytes()).is_err() {
        return Err(EncodeError::InvalidDuid);
    }
    Ok(shape)
}

/// One binding as a BNDUPD (RFC 8156 §7.4), ready to emit with a transaction-id: built once,
/// emitted without allocation.
///
/// * A prefix that is FREE or FREE-BACKUP (the rebalancing of §4.2.2, transition (7)), or that
///   no client ever held, is a bare OPTION_IAPREFIX: OPTION_LQ_BASE_TIME, the binding status and
///   its start time, and the timeout-dependent times.
/// * Every other binding is an OPTION_CLIENT_DATA with OPTION_CLIENTID, OPTION_LQ_BASE_TIME and
///   one IA_NA / IA_PD (IAID, T1, T2 as last sent to the client) holding one IAADDR / IAPREFIX
///   (lifetimes as last sent) with OPTION_F_BINDING_STATUS, OPTION_F_START_TIME_OF_STATE,
///   OPTION_CLT_TIME when we ever talked to the client, OPTION_F_PARTNER_RAW_CLT_TIME when we
///   know one, and OPTION_F_STATE_EXPIRATION_TIME, OPTION_F_PARTNER_LIFETIME
///   ([`sync::partner_lifetime_to_send`]) and OPTION_F_EXPIRATION_TIME exactly when the
///   status has a timeout (a state-expiration-time, §7.2, §7.4 "*").
///
/// OPTION_LQ_BASE_TIME and the sent-time are both `now`; OPTION_CLT_TIME is `now − CLTT` in
/// seconds (0 if the CLTT is ahead of `now`).
#[derive(Clone, Copy, Debug)]
pub struct BndupdMessage {
    binding: Binding,
    now: FailoverTime,
    shape: Shape,
}

impl BndupdMessage {
    /// The BNDUPD for `binding` at `now`.
    ///
    /// # Errors
    /// [`EncodeError::NoClient`] or [`EncodeError::InvalidDuid`]: the binding cannot be sent.
    pub fn new(binding: &Binding, now: FailoverTime) -> core::result::Result<Self, EncodeError> {
        let shape = shape_of(binding)?;
        Ok(Self {
            binding: *binding,
            now,
            shape,
        })
    }

    /// The binding as sent.
    pub const fn binding(&self) -> &Binding {
        &self.binding
    }

    /// `true` when it goes as a bare OPTION_IAPREFIX.
    pub fn is_bare_prefix(&self) -> bool {
        self.shape == Shape::BarePrefix
    }

    /// Calls `f` with the typed message (for a sender that emits [`Failover`] values itself;
    /// the sent-time should be [`BndupdMessage`]'s `now`).
    pub fn with_failover<R>(&self, f: impl FnOnce(&Failover<'_>) -> R) -> R {
        let b = &self.binding;
        let base = LqBaseTime(self.now);
        if self.shape == Shape::BarePrefix {
            let mut info = binding_info(b, self.now, Shape::BarePrefix);
            info.lq_base_time = Some(base);
            let options = info.to_list();
            let prefix = IaPrefix {
                preferred: b.preferred,
                valid: b.valid,
                prefix_len: b.prefix_len,
                prefix: b.addr,
                options: options.options(),
            };
            return f(&Failover::Bndupd(Bndupd {
                payload: BindingPayload::Prefix(prefix),
            }));
        }
        let ia = LeaseIa { b, now: self.now };
        let client_id = RawOption {
            code: OptionCode::CLIENTID,
            data: b.duid.as_bytes(),
        };
        let content: [&dyn EmitOption; 3] = [&client_id, &base, &ia];
        f(&Failover::Bndupd(Bndupd {
            payload: BindingPayload::ClientData(ClientData {
                options: Options::List(&content),
            }),
        }))
    }

    /// Bytes the message takes (without the frame prefix).
    pub fn buffer_len(&self) -> usize {
        self.with_failover(|m| m.buffer_len())
    }

    /// Writes the message (header with `transaction_id` and sent-time `now`, then the options)
    /// at the start of `buf`; returns [`BndupdMessage::buffer_len`].
    ///
    /// # Errors
    /// The codec's: [`Error::BufferTooSmall`], or a prefix length over 128.
    pub fn emit(&self, transaction_id: u32, buf: &mut [u8]) -> Result<usize> {
        self.with_failover(|m| m.emit(transaction_id, self.now, buf))
    }

    /// As [`BndupdMessage::emit`], behind the 2-octet frame prefix (RFC 5460 §5.1).
    ///
    /// # Errors
    /// As [`BndupdMessage::emit`].
    pub fn emit_framed(&self, transaction_id: u32, buf: &mut [u8]) -> Result<usize> {
        self.with_failover(|m| m.emit_framed(transaction_id, self.now, buf))
    }
}

/// The binding options of `b`'s IAADDR / IAPREFIX in a BNDUPD at `now` (§7.4): a bare
/// IAPREFIX carries no CLT_TIME or PARTNER_RAW_CLT_TIME (no client talked to it).
fn binding_info(b: &Binding, now: FailoverTime, shape: Shape) -> BindingInfo<'static> {
    let timeout = b.state_expiration_time.0 != 0;
    let mut info = BindingInfo {
        binding_status: Some(b.status),
        start_time_of_state: Some(StartTimeOfState(b.start_time_of_state)),
        state_expiration_time: timeout.then_some(StateExpirationTime(b.state_expiration_time)),
        partner_lifetime: sync::partner_lifetime_to_send(b).map(PartnerLifetime),
        expiration_time: timeout.then_some(ExpirationTime(b.expiration_time)),
        ..BindingInfo::default()
    };
    if shape == Shape::ClientData {
        info.clt_time =
            (b.cltt.0 != 0).then(|| CltTime(u32::try_from(now.wrapping_sub(b.cltt)).unwrap_or(0)));
        info.partner_raw_clt_time =
            (b.partner_raw_clt_time.0 != 0).then_some(PartnerRawCltTime(b.partner_raw_clt_time));
    }
    info
}

/// One binding of a client as the IA_NA or IA_PD of its OPTION_CLIENT_DATA (§7.4), holding the
/// binding's one IAADDR or IAPREFIX with its binding options.
struct LeaseIa<'a> {
    b: &'a Binding,
    now: FailoverTime,
}

impl LeaseIa<'_> {
    fn with_ia<R>(&self, f: impl FnOnce(&dyn EmitOption) -> R) -> R {
        let b = self.b;
        let info = binding_info(b, self.now, Shape::ClientData);
        let options = info.to_list();
        let addr;
        let prefix;
        let lease: &dyn EmitOption = match b.kind {
            LeaseKind::Address => {
                addr = IaAddr {
                    addr: b.addr,
                    preferred: b.preferred,
                    valid: b.valid,
                    options: options.options(),
                };
                &addr
            }
            LeaseKind::Prefix => {
                prefix = IaPrefix {
                    preferred: b.preferred,
                    valid: b.valid,
                    prefix_len: b.prefix_len,
                    prefix: b.addr,
                    options: options.options(),
                };
                &prefix
            }
        };
        let leases = [lease];
        match b.kind {
            LeaseKind::Address => f(&IaNa {
                iaid: b.iaid,
                t1: b.t1,
                t2: b.t2,
                options: Options::List(&leases),
            }),
            LeaseKind::Prefix => f(&IaPd {
                iaid: b.iaid,
                t1: b.t1,
                t2: b.t2,
                options: Options::List(&leases),
            }),
        }
    }
}

impl EmitOption for LeaseIa<'_> {
    fn code(&self) -> OptionCode {
        match self.b.kind {
            LeaseKind::Address => OptionCode::IA_NA,
            LeaseKind::Prefix => OptionCode::IA_PD,
        }
    }

    fn data_len(&self) -> usize {
        self.with_ia(|ia| ia.data_len())
    }

    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.with_ia(|ia| ia.emit_data(w))
    }
}

/// Most bindings of one client a [`ClientBndupd`] carries.
pub const CLIENT_BNDUPD_MAX: usize = 4;

/// Several bindings of one client in one BNDUPD (RFC 8156 §7.4: "a single client binding in an
/// OPTION_CLIENT_DATA option", with "more than one" IA_NA or IA_PD "if more than one of them are
/// associated with this client"; `docs/failover.md` D61): one OPTION_CLIENT_DATA with one
/// IA_NA or IA_PD per binding, each with its one lease, in the order given. Built once, emitted
/// without allocation, like [`BndupdMessage`].
#[derive(Clone, Copy, Debug)]
pub struct ClientBndupd<'a> {
    bindings: &'a [Binding],
    now: FailoverTime,
}

impl<'a> ClientBndupd<'a> {
    /// The BNDUPD for `bindings` at `now`: 1 to [`CLIENT_BNDUPD_MAX`] bindings that each go in
    /// an OPTION_CLIENT_DATA ([`BndupdMessage::new`], not a bare prefix), of the same client,
    /// no two in the same IA (address or prefix, IAID).
    ///
    /// # Errors
    /// [`EncodeError::NotOneClient`] for bindings that cannot share the message; otherwise as
    /// [`BndupdMessage::new`] for the first one that cannot be sent.
    pub fn new(
        bindings: &'a [Binding],
        now: FailoverTime,
    ) -> core::result::Result<Self, EncodeError> {
        let Some((first, rest)) = bindings.split_first() else {
            return Err(EncodeError::NotOneClient);
        };
        if bindings.len() > CLIENT_BNDUPD_MAX {
            return Err(EncodeError::NotOneClient);
        }
        if shape_of(first)? != Shape::ClientData {
            return Err(EncodeError::NotOneClient);
        }
        for (i, b) in rest.iter().enumerate() {
            let before = bindings.get(..=i).unwrap_or_default();
            if !Self::admits(before, b) {
                return Err(shape_of(b).err().unwrap_or(EncodeError::NotOneClient));
            }
        }
        Ok(Self { bindings, now })
    }

    /// `true` if `binding` can be sent in an OPTION_CLIENT_DATA (not as a bare prefix, and
    /// [`BndupdMessage::new`] accepts it): it may start a [`ClientBndupd`].
    pub fn carries(binding: &Binding) -> bool {
        shape_of(binding) == Ok(Shape::ClientData)
    }

    /// `true` if `next` may join `bindings` (which [`ClientBndupd::new`] accepts) in one
    /// BNDUPD: there is room, it goes in an OPTION_CLIENT_DATA, of the same client, in an IA
    /// of its own.
    pub fn admits(bindings: &[Binding], next: &Binding) -> bool {
        let Some(first) = bindings.first() else {
            return false;
        };
        bindings.len() < CLIENT_BNDUPD_MAX
            && next.duid == first.duid
            && Self::carries(next)
            && !bindings
                .iter()
                .any(|b| b.kind == next.kind && b.iaid == next.iaid)
    }

    /// The bindings, in the order they go out.
    pub const fn bindings(&self) -> &'a [Binding] {
        self.bindings
    }

    /// Calls `f` with the typed message (see [`BndupdMessage::with_failover`]).
    pub fn with_failover<R>(&self, f: impl FnOnce(&Failover<'_>) -> R) -> R {
        let first = self.bindings.first();
        let client_id = RawOption {
            code: OptionCode::CLIENTID,
            data: first.map_or(&[][..], |b| b.duid.as_bytes()),
        };
        let base = LqBaseTime(self.now);
        let ias: [Option<LeaseIa<'_>>; CLIENT_BNDUPD_MAX] =
            core::array::from_fn(|i| self.bindings.get(i).map(|b| LeaseIa { b, now: self.now }));
        let mut content: [&dyn EmitOption; 2 + CLIENT_BNDUPD_MAX] =
            [&client_id; 2 + CLIENT_BNDUPD_MAX];
        content[1] = &base;
        let mut n = 2;
        for ia in ias.iter().flatten() {
            if let Some(slot) = content.get_mut(n) {
                *slot = ia;
                n += 1;
            }
        }
        f(&Failover::Bndupd(Bndupd {
            payload: BindingPayload::ClientData(ClientData {
                options: Options::List(content.get(..n).unwrap_or_default()),
            }),
        }))
    }

    /// Bytes the message takes (without the frame prefix).
    pub fn buffer_len(&self) -> usize {
        self.with_failover(|m| m.buffer_len())
    }

    /// Writes the message (header with `transaction_id` and sent-time `now`, then the options)
    /// at the start of `buf`; returns [`ClientBndupd::buffer_len`].
    ///
    /// # Errors
    /// The codec's: [`Error::BufferTooSmall`], or a prefix length over 128.
    pub fn emit(&self, transaction_id: u32, buf: &mut [u8]) -> Result<usize> {
        self.with_failover(|m| m.emit(transaction_id, self.now, buf))
    }
}

/// Writes the BNDUPD of `binding` (RFC 8156 §7.4) with `transaction_id` and sent-time `now` at
/// the start of `buf`, without the frame prefix; returns its length. See [`BndupdMessage`].
///
/// # Errors
/// As [`BndupdMessage::new`] and [`BndupdMessage::emit`].
pub fn encode_bndupd(
    binding: &Binding,
    transaction_id: u32,
    now: FailoverTime,
    buf: &mut [u8],
) -> core::result::Result<usize, EncodeError> {
    Ok(BndupdMessage::new(binding, now)?.emit(transaction_id, buf)?)
}

// ---------------------------------------------------------------------------------------------
// Receiving a BNDUPD
// ---------------------------------------------------------------------------------------------

/// A BNDUPD that cannot be processed as a binding update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reject<'a> {
    /// Not a BNDUPD message, or its header or top-level options are not well-formed TLVs:
    /// there is no update to answer; the endpoint treats it as a peer error
    /// (`docs/failover.md` D11).
    Malformed(Error),
    /// The whole update is refused (RFC 8156 §7.5.3, §7.5.4): answer it with
    /// [`BndreplyMessage::refusal`].
    Whole(WholeRejection<'a>),
}

/// A BNDUPD refused as a whole, with what its BNDREPLY echoes (RFC 8156 §7.6 item 1: the
/// Status Code in the outermost option).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WholeRejection<'a> {
    /// The BNDUPD's transaction-id, for the BNDREPLY.
    pub transaction_id: u32,
    /// MissingBindingInformation (§7.5.3: not exactly one well-formed OPTION_CLIENT_DATA or
    /// OPTION_IAPREFIX with every option §7.4 requires) or ConfigurationConflict (§7.5.4: an
    /// OPTION_VSS; only the default VPN is configured here).
    pub code: StatusCode,
    /// What was wrong, for the Status Code's message and the log.
    pub reason: &'static str,
    echo: WholeEcho<'a>,
}

/// What a whole refusal echoes: the block kind, and whatever of CLIENTID, VSS and the prefix
/// could be read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum WholeEcho<'a> {
    /// No single block to echo: the Status Code goes at the top level.
    Nothing,
    /// An OPTION_CLIENT_DATA with the Status Code, CLIENTID and VSS if readable.
    ClientData {
        client_id: Option<&'a [u8]>,
        vss: Option<&'a [u8]>,
    },
    /// An OPTION_IAPREFIX (the received fixed part) with VSS if any and the Status Code.
    Prefix {
        prefix: IaPrefix<'a>,
        vss: Option<&'a [u8]>,
    },
}

/// Why one lease of a BNDUPD is refused before [`sync::decide`] (RFC 8156 §7.6 item 2: a
/// Status Code in that IAADDR / IAPREFIX only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRefusal {
    /// MissingBindingInformation (an unknown binding status, or ACTIVE without a client) or
    /// ConfigurationConflict (an IA_TA address: no temporary addresses are configured here).
    pub code: StatusCode,
    /// What was wrong, for the log (the BNDREPLY carries the code only).
    pub reason: &'static str,
}

/// A well-formed BNDUPD, borrowed from the message: its leases in wire order, and what the
/// BNDREPLY echoes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodedUpdate<'a> {
    /// The transaction-id, for the BNDREPLY (§7.5.3: "the same transaction-id").
    pub transaction_id: u32,
    /// The partner's sent-time.
    pub sent_time: FailoverTime,
    payload: BindingPayload<'a>,
    /// OPTION_LQ_BASE_TIME of the block (CLIENT_DATA or bare IAPREFIX).
    base: FailoverTime,
    /// OPTION_CLIENTID (CLIENT_DATA only).
    client: Option<DuidBuf>,
}

/// The `&'static str` an error carries.
const fn error_text(e: Error) -> &'static str {
    match e {
        Error::Truncated(s)
        | Error::BadLength(s)
        | Error::TrailingBytes(s)
        | Error::Malformed(s)
        | Error::Unsupported(s) => s,
        _ => "malformed binding update",
    }
}

/// Decodes a BNDUPD (a frame body: header and options) into its leases, with the message-level
/// rejections of RFC 8156 §7.5.3 and §7.5.4 (see [`Reject`]). The per-lease ones come out of
/// [`DecodedUpdate::leases`]. Never panics.
///
/// # Errors
/// [`Reject::Malformed`] for what is not a BNDUPD; [`Reject::Whole`] for a BNDUPD refused as a
/// whole: MissingBindingInformation when it does not hold exactly one OPTION_CLIENT_DATA or one
/// OPTION_IAPREFIX, when that block or anything in it is malformed, or when an option §7.4 says
/// MUST appear is missing (the codec's checks: `Bndupd::parse`); ConfigurationConflict for an
/// OPTION_VSS.
pub fn decode_bndupd(body: &[u8]) -> core::result::Result<DecodedUpdate<'_>, Reject<'_>> {
    let msg = FailoverMessage::parse(body).map_err(Reject::Malformed)?;
    if msg.msg_type != MessageType::BNDUPD {
        return Err(Reject::Malformed(Error::Unsupported("not a BNDUPD")));
    }
    let transaction_id = msg.transaction_id;
    let sent_time = msg.sent_time.unwrap_or_default();
    let whole = |code, reason, echo| {
        Reject::Whole(WholeRejection {
            transaction_id,
            code,
            reason,
            echo,
        })
    };
    let bndupd = match Bndupd::parse(&msg.options) {
        Ok(b) => b,
        Err(e) => {
            return Err(whole(
                StatusCode::MISSING_BINDING_INFORMATION,
                error_text(e),
                whole_echo(&msg.options),
            ));
        }
    };
    let (base, client, vss) = match &bndupd.payload {
        BindingPayload::ClientData(cd) => (
            cd.lq_base_time().map(|t| t.0),
            cd.client_id().and_then(|d| DuidBuf::new(d.as_bytes())),
            cd.vss(),
        ),
        BindingPayload::Prefix(p) => {
            let info = BindingInfo::parse(&p.options).unwrap_or_default();
            (info.lq_base_time.map(|t| t.0), None, info.vss)
        }
    };
    if vss.is_some() {
        return Err(whole(
            StatusCode::CONFIGURATION_CONFLICT,
            "OPTION_VSS: no VPN but the default one is configured",
            whole_echo(&msg.options),
        ));
    }
    // `Bndupd::parse` checked both (a CLIENTID of 3 to 130 octets): these cannot fail.
    let Some(base) = base else {
        return Err(whole(
            StatusCode::MISSING_BINDING_INFORMATION,
            "binding without OPTION_LQ_BASE_TIME",
            whole_echo(&msg.options),
        ));
    };
    if client.is_none() && !matches!(bndupd.payload, BindingPayload::Prefix(_)) {
        return Err(whole(
            StatusCode::MISSING_BINDING_INFORMATION,
            "OPTION_CLIENT_DATA without a usable OPTION_CLIENTID",
            whole_echo(&msg.options),
        ));
    }
    Ok(DecodedUpdate {
        transaction_id,
        sent_time,
        payload: bndupd.payload,
        base,
        client,
    })
}

/// What a whole refusal can echo of a BNDUPD's top-level options (which parsed as TLVs).
fn whole_echo<'a>(options: &Options<'a>) -> WholeEcho<'a> {
    let Some(raw) = options.raw() else {
        return WholeEcho::Nothing;
    };
    let mut cds = raw.find_all(OptionCode::CLIENT_DATA);
    let mut pfxs = raw.find_all(OptionCode::IAPREFIX);
    match (cds.next(), cds.next(), pfxs.next(), pfxs.next()) {
        (Some(cd), None, None, None) => {
            let inner = Options::parse(cd.data).ok().and_then(|o| o.raw());
            let find = |code| inner.and_then(|o| o.find(code)).map(|o| o.data);
            WholeEcho::ClientData {
                client_id: find(OptionCode::CLIENTID).filter(|d| Duid::parse(d).is_ok()),
                vss: find(OptionCode::VSS),
            }
        }
        (None, None, Some(p), None) => match IaPrefix::parse(p.data) {
            Ok(prefix) => WholeEcho::Prefix {
                vss: prefix
                    .options
                    .raw()
                    .and_then(|o| o.find(OptionCode::VSS))
                    .map(|o| o.data),
                prefix,
            },
            Err(_) => WholeEcho::Nothing,
        },
        _ => WholeEcho::Nothing,
    }
}

impl<'a> DecodedUpdate<'a> {
    /// `true` for a bare OPTION_IAPREFIX, `false` for an OPTION_CLIENT_DATA.
    pub const fn is_bare_prefix(&self) -> bool {
        matches!(self.payload, BindingPayload::Prefix(_))
    }

    /// The client (OPTION_CLIENTID); `None` for a bare prefix.
    pub const fn client(&self) -> Option<&DuidBuf> {
        self.client.as_ref()
    }

    /// The leases in wire order (every IAADDR / IAPREFIX of every IA, or the bare prefix), each
    /// a [`LeaseUpdate`] or a [`LeaseRefusal`]. [`BndreplyMessage::new`] takes one verdict per
    /// item, in this order.
    pub fn leases(&self) -> impl Iterator<Item = core::result::Result<LeaseUpdate, LeaseRefusal>> {
        let this = *self;
        self.raw_leases()
            .map(move |(ia, lease, info)| this.lease_update(ia, lease, &info))
    }

    /// Number of leases.
    pub fn lease_count(&self) -> usize {
        self.raw_leases().count()
    }

    /// `true` if any lease carries DNS information (OPTION_CLIENT_FQDN or
    /// OPTION_F_DNS_REMOVAL_INFO). Tandem does no DNS update: RFC 8156 §9 says such a server
    /// "SHOULD" warn; it accepts the update and keeps no DNS data (it does not use the MAY of
    /// rejecting with DNSUpdateNotSupported).
    pub fn has_dns_info(&self) -> bool {
        self.raw_leases()
            .any(|(_, _, i)| i.client_fqdn.is_some() || i.dns_removal_info.is_some())
    }

    /// Every lease with its IA (`None` for a bare prefix) and binding options.
    fn raw_leases(
        &self,
    ) -> impl Iterator<Item = (Option<Ia<'a>>, LeaseOption<'a>, BindingInfo<'a>)> + use<'a> {
        let (cd, prefix) = match self.payload {
            BindingPayload::ClientData(cd) => (Some(cd), None),
            BindingPayload::Prefix(p) => (None, Some(p)),
        };
        let client_leases = cd
            .into_iter()
            .flat_map(|cd| cd.leases())
            .map(|Lease { ia, lease, info }| (Some(ia), lease, info));
        // The bare prefix's options were checked by `Bndupd::parse`.
        let bare = prefix.map(|p| {
            let info = BindingInfo::parse(&p.options).unwrap_or_default();
            (None, LeaseOption::Prefix(p), info)
        });
        client_leases.chain(bare)
    }

    fn lease_update(
        &self,
        ia: Option<Ia<'a>>,
        lease: LeaseOption<'a>,
        info: &BindingInfo<'a>,
    ) -> core::result::Result<LeaseUpdate, LeaseRefusal> {
        let missing = |reason| LeaseRefusal {
            code: StatusCode::MISSING_BINDING_INFORMATION,
            reason,
        };
        let status = info
            .binding_status
            .ok_or(missing("without OPTION_F_BINDING_STATUS"))?;
        if status.name().is_none() {
            return Err(missing("unknown OPTION_F_BINDING_STATUS value"));
        }
        let start = info
            .start_time_of_state
            .ok_or(missing("without OPTION_F_START_TIME_OF_STATE"))?;
        if let Some(Ia::Ta(_)) = ia {
            return Err(LeaseRefusal {
                code: StatusCode::CONFIGURATION_CONFLICT,
                reason: "IA_TA: no temporary addresses are configured",
            });
        }
        let client = match (ia, self.client) {
            (Some(ia), Some(duid)) => {
                let (t1, t2) = match ia {
                    Ia::Na(na) => (na.t1, na.t2),
                    Ia::Pd(pd) => (pd.t1, pd.t2),
                    Ia::Ta(_) => (0, 0),
                };
                Some(UpdateClient {
                    duid,
                    iaid: ia.iaid(),
                    t1,
                    t2,
                })
            }
            _ => None,
        };
        if client.is_none() && status == BindingStatus::ACTIVE {
            return Err(missing("ACTIVE without client identification (§7.2)"));
        }
        let (kind, addr, prefix_len, preferred, valid) = match lease {
            LeaseOption::Addr(a) => (LeaseKind::Address, a.addr, 128, a.preferred, a.valid),
            LeaseOption::Prefix(p) => (
                LeaseKind::Prefix,
                p.prefix,
                p.prefix_len,
                p.preferred,
                p.valid,
            ),
        };
        Ok(LeaseUpdate {
            kind,
            addr,
            prefix_len,
            client,
            preferred,
            valid,
            status,
            start_time_of_state: start.0,
            state_expiration_time: info.state_expiration_time.map(|t| t.0),
            // RFC 5007 §4.1.2.3: seconds before the block's LQ_BASE_TIME (D24).
            clt_time: info
                .clt_time
                .map(|c| FailoverTime(self.base.0.wrapping_sub(c.0))),
            partner_lifetime: info.partner_lifetime.map(|t| t.0),
            partner_raw_clt_time: info.partner_raw_clt_time.map(|t| t.0),
            expiration_time: info.expiration_time.map(|t| t.0),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Answering: BNDREPLY
// ---------------------------------------------------------------------------------------------

/// The answer for one lease of a BNDUPD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (and stored): no Status Code (RFC 8156 §7.5.3 "SHOULD NOT contain").
    Accept,
    /// Rejected with this status (AddressInUse, ConfigurationConflict,
    /// MissingBindingInformation, OutdatedBindingInformation); `SUCCESS` reads as
    /// [`Verdict::Accept`].
    Reject(StatusCode),
}

impl Verdict {
    /// The Status Code to put in the lease's options, if any.
    fn status(self) -> Option<StatusCode> {
        match self {
            Self::Reject(code) if code != StatusCode::SUCCESS => Some(code),
            _ => None,
        }
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Accept { .. } => Self::Accept,
            Decision::Outdated { .. } => Self::Reject(StatusCode::OUTDATED_BINDING_INFORMATION),
            Decision::AddressInUse => Self::Reject(StatusCode::ADDRESS_IN_USE),
        }
    }
}

impl From<LeaseRefusal> for Verdict {
    fn from(r: LeaseRefusal) -> Self {
        Self::Reject(r.code)
    }
}

/// The BNDREPLY (RFC 8156 §7.6) answering a BNDUPD: ready to emit without allocation.
///
/// For a decoded update ([`BndreplyMessage::new`]): the same kind of block. An
/// OPTION_CLIENT_DATA echoes OPTION_CLIENTID and every IA (same type, IAID, T1, T2) with every
/// lease (address or prefix and length, lifetimes) in the order received; a bare
/// OPTION_IAPREFIX echoes the prefix. Each lease holds an OPTION_STATUS_CODE only if rejected
/// (without text), OPTION_F_BINDING_STATUS and OPTION_F_STATE_EXPIRATION_TIME as received, and
/// OPTION_F_PARTNER_LIFETIME_SENT holding the received OPTION_F_PARTNER_LIFETIME byte for byte.
/// Rejections are at the lease level, an IA is never rejected as a whole.
///
/// For a whole refusal ([`BndreplyMessage::refusal`]): the block with only the Status Code
/// (with the reason as text), the CLIENTID and VSS; or, when no single block could be read, a
/// top-level Status Code (the codec's documented extension of §7.6).
#[derive(Clone, Copy, Debug)]
pub struct BndreplyMessage<'a> {
    transaction_id: u32,
    body: ReplyBody<'a>,
}

#[derive(Clone, Copy, Debug)]
enum ReplyBody<'a> {
    Leases {
        update: &'a DecodedUpdate<'a>,
        verdicts: &'a [Verdict],
    },
    /// The refusal, and whether its block is echoed.
    Whole(&'a WholeRejection<'a>, bool),
}

impl<'a> BndreplyMessage<'a> {
    /// The answer to `update`, with `verdicts[i]` for the `i`-th of [`DecodedUpdate::leases`].
    ///
    /// # Errors
    /// [`Error::Malformed`] unless there is exactly one verdict per lease.
    pub fn new(update: &'a DecodedUpdate<'a>, verdicts: &'a [Verdict]) -> Result<Self> {
        if verdicts.len() != update.lease_count() {
            return Err(Error::Malformed("BNDREPLY needs one verdict per lease"));
        }
        Ok(Self {
            transaction_id: update.transaction_id,
            body: ReplyBody::Leases { update, verdicts },
        })
    }

    /// The answer to a BNDUPD refused as a whole. Should the echo make it longer than a
    /// message can be (a BNDUPD of nearly 64 KiB that is mostly an OPTION_VSS), the Status Code
    /// goes at the top level alone.
    pub fn refusal(rejection: &'a WholeRejection<'a>) -> Self {
        let echoing = Self {
            transaction_id: rejection.transaction_id,
            body: ReplyBody::Whole(rejection, true),
        };
        if echoing.buffer_len() <= MAX_MESSAGE_LEN {
            return echoing;
        }
        Self {
            body: ReplyBody::Whole(rejection, false),
            ..echoing
        }
    }

    /// The transaction-id (the BNDUPD's).
    pub const fn transaction_id(&self) -> u32 {
        self.transaction_id
    }

    /// Calls `f` with the message to emit, stamped `sent_time`.
    pub fn with_message<R>(
        &self,
        sent_time: FailoverTime,
        f: impl FnOnce(&FailoverMessage<'_>) -> R,
    ) -> R {
        let xid = self.transaction_id;
        let message = |options| bndreply(xid, sent_time, options);
        match self.body {
            ReplyBody::Leases { update, verdicts } => {
                let block = ReplyBlock { update, verdicts };
                let top: [&dyn EmitOption; 1] = [&block];
                f(&message(Options::List(&top)))
            }
            ReplyBody::Whole(r, echo) => {
                let status = StatusCodeOption::new(r.code, r.reason);
                match if echo { r.echo } else { WholeEcho::Nothing } {
                    WholeEcho::Nothing => {
                        let top: [&dyn EmitOption; 1] = [&status];
                        f(&message(Options::List(&top)))
                    }
                    WholeEcho::ClientData { client_id, vss } => {
                        let client_id = client_id.map(|data| RawOption {
                            code: OptionCode::CLIENTID,
                            data,
                        });
                        let vss = vss.map(|data| RawOption {
                            code: OptionCode::VSS,
                            data,
                        });
                        let mut l = OptionList::<3>::new();
                        // Three slots, at most three options: no push can fail.
                        let _ = l.push(&status);
                        let _ = l.push_some(client_id.as_ref());
                        let _ = l.push_some(vss.as_ref());
                        let cd = ClientData {
                            options: l.options(),
                        };
                        let top: [&dyn EmitOption; 1] = [&cd];
                        f(&message(Options::List(&top)))
                    }
                    WholeEcho::Prefix { prefix, vss } => {
                        let vss = vss.map(|data| RawOption {
                            code: OptionCode::VSS,
                            data,
                        });
                        let mut l = OptionList::<2>::new();
                        // Two slots, at most two options: no push can fail.
                        let _ = l.push_some(vss.as_ref());
                        let _ = l.push(&status);
                        let p = IaPrefix {
                            options: l.options(),
                            ..prefix
                        };
                        let top: [&dyn EmitOption; 1] = [&p];
                        f(&message(Options::List(&top)))
                    }
                }
            }
        }
    }

    /// Bytes the message takes (without the frame prefix).
    pub fn buffer_len(&self) -> usize {
        self.with_message(FailoverTime(0), |m| m.buffer_len())
    }

    /// Writes the message stamped `sent_time` at the start of `buf`; returns
    /// [`BndreplyMessage::buffer_len`].
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit(&self, sent_time: FailoverTime, buf: &mut [u8]) -> Result<usize> {
        self.with_message(sent_time, |m| m.emit(buf))
    }

    /// As [`BndreplyMessage::emit`], behind the 2-octet frame prefix (RFC 5460 §5.1).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn emit_framed(&self, sent_time: FailoverTime, buf: &mut [u8]) -> Result<usize> {
        self.with_message(sent_time, |m| m.emit_framed(buf))
    }
}

/// A BNDREPLY with these options.
const fn bndreply(
    transaction_id: u32,
    sent_time: FailoverTime,
    options: Options<'_>,
) -> FailoverMessage<'_> {
    FailoverMessage {
        msg_type: MessageType::BNDREPLY,
        transaction_id,
        sent_time: Some(sent_time),
        options,
    }
}

/// Writes the BNDREPLY for `update` with `verdicts` (see [`BndreplyMessage::new`]) stamped
/// `sent_time` at the start of `buf`; returns its length.
///
/// # Errors
/// A verdict count that is not the lease count, or [`Error::BufferTooSmall`].
pub fn encode_bndreply(
    update: &DecodedUpdate<'_>,
    verdicts: &[Verdict],
    sent_time: FailoverTime,
    buf: &mut [u8],
) -> Result<usize> {
    BndreplyMessage::new(update, verdicts)?.emit(sent_time, buf)
}

/// The echoed block of a BNDREPLY for a decoded update: OPTION_CLIENT_DATA or OPTION_IAPREFIX,
/// written straight from the BNDUPD's bytes (any number of IAs and leases, no allocation).
struct ReplyBlock<'a> {
    update: &'a DecodedUpdate<'a>,
    verdicts: &'a [Verdict],
}

/// Bytes of a lease's echoed options: Status Code (no text), BINDING_STATUS,
/// STATE_EXPIRATION_TIME and PARTNER_LIFETIME_SENT as received.
fn echo_options_len(info: &BindingInfo<'_>, verdict: Verdict) -> usize {
    let status = if verdict.status().is_some() { 6 } else { 0 };
    let binding_status = if info.binding_status.is_some() { 5 } else { 0 };
    let sexp = if info.state_expiration_time.is_some() {
        8
    } else {
        0
    };
    let pls = if info.partner_lifetime.is_some() {
        8
    } else {
        0
    };
    status + binding_status + sexp + pls
}

fn emit_echo_options(info: &BindingInfo<'_>, verdict: Verdict, w: &mut Writer<'_>) -> Result<()> {
    if let Some(code) = verdict.status() {
        StatusCodeOption::new(code, "").emit(w)?;
    }
    if let Some(s) = info.binding_status {
        s.emit(w)?;
    }
    if let Some(t) = info.state_expiration_time {
        t.emit(w)?;
    }
    if let Some(pl) = info.partner_lifetime {
        // §5.5.8: "an exact duplicate (echo) of the time received": the 4 octets as read.
        w.option(OptionCode::F_PARTNER_LIFETIME_SENT.0, |w| {
            w.put(&pl.0.0.to_be_bytes())
        })?;
    }
    Ok(())
}

/// Bytes of a lease option (header, fixed part, echoed options).
fn lease_len(lease: &LeaseOption<'_>, info: &BindingInfo<'_>, verdict: Verdict) -> usize {
    let fixed = match lease {
        LeaseOption::Addr(_) => 24,
        LeaseOption::Prefix(_) => 25,
    };
    4 + fixed + echo_options_len(info, verdict)
}

fn emit_lease(
    lease: &LeaseOption<'_>,
    info: &BindingInfo<'_>,
    verdict: Verdict,
    w: &mut Writer<'_>,
) -> Result<()> {
    match lease {
        LeaseOption::Addr(a) => w.option(OptionCode::IAADDR.0, |w| {
            w.ipv6(a.addr)?;
            w.u32(a.preferred)?;
            w.u32(a.valid)?;
            emit_echo_options(info, verdict, w)
        }),
        LeaseOption::Prefix(p) => w.option(OptionCode::IAPREFIX.0, |w| {
            w.u32(p.preferred)?;
            w.u32(p.valid)?;
            w.u8(p.prefix_len)?;
            w.ipv6(p.prefix)?;
            emit_echo_options(info, verdict, w)
        }),
    }
}

impl ReplyBlock<'_> {
    /// The verdict of the `i`-th lease ([`BndreplyMessage::new`] checked the count; a missing
    /// one would read as a rejection, never as an acceptance).
    fn verdict(&self, i: usize) -> Verdict {
        self.verdicts
            .get(i)
            .copied()
            .unwrap_or(Verdict::Reject(StatusCode::UNSPEC_FAIL))
    }
}

impl EmitOption for ReplyBlock<'_> {
    fn code(&self) -> OptionCode {
        match self.update.payload {
            BindingPayload::ClientData(_) => OptionCode::CLIENT_DATA,
            BindingPayload::Prefix(_) => OptionCode::IAPREFIX,
        }
    }

    fn data_len(&self) -> usize {
        match self.update.payload {
            BindingPayload::Prefix(p) => {
                let info = BindingInfo::parse(&p.options).unwrap_or_default();
                25 + echo_options_len(&info, self.verdict(0))
            }
            BindingPayload::ClientData(cd) => {
                let client_id = cd.client_id().map_or(0, |d| 4 + d.len());
                let mut i = 0;
                let ias: usize = cd
                    .ias()
                    .map(|ia| {
                        let fixed = if matches!(ia, Ia::Ta(_)) { 4 } else { 12 };
                        let leases: usize = ia
                            .leases()
                            .map(|l| {
                                let len = lease_len(&l.lease, &l.info, self.verdict(i));
                                i += 1;
                                len
                            })
                            .sum();
                        4 + fixed + leases
                    })
                    .sum();
                client_id + ias
            }
        }
    }

    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        match self.update.payload {
            BindingPayload::Prefix(p) => {
                let info = BindingInfo::parse(&p.options).unwrap_or_default();
                w.u32(p.preferred)?;
                w.u32(p.valid)?;
                w.u8(p.prefix_len)?;
                w.ipv6(p.prefix)?;
                emit_echo_options(&info, self.verdict(0), w)
            }
            BindingPayload::ClientData(cd) => {
                if let Some(d) = cd.client_id() {
                    w.option(OptionCode::CLIENTID.0, |w| w.put(d.as_bytes()))?;
                }
                let mut i = 0;
                for ia in cd.ias() {
                    w.option(ia.code().0, |w| {
                        w.u32(ia.iaid())?;
                        match ia {
                            Ia::Na(IaNa { t1, t2, .. }) | Ia::Pd(IaPd { t1, t2, .. }) => {
                                w.u32(t1)?;
                                w.u32(t2)?;
                            }
                            Ia::Ta(_) => {}
                        }
                        for l in ia.leases() {
                            emit_lease(&l.lease, &l.info, self.verdict(i), w)?;
                            i += 1;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receiving a BNDREPLY
// ---------------------------------------------------------------------------------------------

/// What a BNDREPLY echoes for an accepted lease (RFC 8156 §7.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    /// OPTION_F_BINDING_STATUS ("MUST" be echoed; `None` if the partner did not).
    pub status: Option<BindingStatus>,
    /// OPTION_F_STATE_EXPIRATION_TIME.
    pub state_expiration_time: Option<FailoverTime>,
    /// OPTION_F_PARTNER_LIFETIME_SENT.
    pub partner_lifetime_sent: Option<FailoverTime>,
}

/// The partner's verdict on one lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckResult {
    /// Accepted: no Status Code with an error at its level or above (§7.7; a success code is
    /// informational).
    Accepted(Echo),
    /// Rejected with this status, found in the lease, its IA or the whole block.
    Rejected(StatusCode),
}

/// One lease of a BNDREPLY: which lease, and the partner's verdict on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseAck {
    /// Address or prefix.
    pub kind: LeaseKind,
    /// The address or prefix.
    pub addr: Ipv6Addr,
    /// 128 for an address, else the prefix length.
    pub prefix_len: u8,
    /// The echoed OPTION_CLIENTID and the IAID; `None` for a bare prefix.
    pub client: Option<(DuidBuf, u32)>,
    /// Accepted or rejected.
    pub result: AckResult,
}

impl LeaseAck {
    /// What [`sync::ack`] needs, for an accepted lease whose BNDUPD carried
    /// `start_time_of_state` (kept by the sender, §7.6 does not echo it); `None` if rejected
    /// or if the partner echoed no binding status (then the update stays pending and is sent
    /// again).
    pub fn ack_info(&self, start_time_of_state: FailoverTime) -> Option<AckInfo> {
        let AckResult::Accepted(echo) = self.result else {
            return None;
        };
        Some(AckInfo {
            status: echo.status?,
            start_time_of_state,
            state_expiration_time: echo.state_expiration_time,
            partner_lifetime_sent: echo.partner_lifetime_sent,
            client: self.client.map(|(duid, _)| duid),
        })
    }
}

/// A decoded BNDREPLY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedReply {
    /// The transaction-id: the BNDUPD's it answers.
    pub transaction_id: u32,
    /// A Status Code with an error at the top level or in the outermost block: the whole
    /// BNDUPD is rejected (§7.6 item 1, §7.7), every lease below too.
    pub whole: Option<StatusCode>,
    /// The leases echoed, in wire order.
    pub leases: Vec<LeaseAck>,
}

/// The error code of a Status Code, if it is one (§7.6: a success code is informational).
fn error_code(s: Option<StatusCodeOption<'_>>) -> Option<StatusCode> {
    s.map(|s| s.code).filter(|c| *c != StatusCode::SUCCESS)
}

/// Decodes a BNDREPLY (a frame body) into per-lease verdicts (RFC 8156 §7.7): an error Status
/// Code at the outermost block rejects everything, in an IA_* every lease of it, in an
/// IAADDR / IAPREFIX that lease; a success code has no bearing. Never panics.
///
/// # Errors
/// The codec's error for what is not a well-formed BNDREPLY (`Bndreply::parse`: a payload with
/// the §7.6 MUSTs, or a top-level Status Code alone).
pub fn decode_bndreply(body: &[u8]) -> Result<DecodedReply> {
    let msg = FailoverMessage::parse(body)?;
    if msg.msg_type != MessageType::BNDREPLY {
        return Err(Error::Unsupported("not a BNDREPLY"));
    }
    decode_parsed_bndreply(msg.transaction_id, &Bndreply::parse(&msg.options)?)
}

/// [`decode_bndreply`] of a BNDREPLY the caller parsed already (its transaction-id and its
/// options as [`Bndreply`], e.g. the endpoint's `Failover::Bndreply`): the message is not
/// parsed twice (`docs/failover.md` D63).
///
/// # Errors
/// The codec's error for a binding option block that does not parse.
pub fn decode_parsed_bndreply(transaction_id: u32, reply: &Bndreply<'_>) -> Result<DecodedReply> {
    let top = error_code(reply.status);
    let mut leases = Vec::new();
    let whole = match reply.payload {
        None => top,
        Some(BindingPayload::Prefix(p)) => {
            let info = BindingInfo::parse(&p.options)?;
            let whole = top.or(error_code(info.status));
            leases.push(LeaseAck {
                kind: LeaseKind::Prefix,
                addr: p.prefix,
                prefix_len: p.prefix_len,
                client: None,
                result: result(whole, &info),
            });
            whole
        }
        Some(BindingPayload::ClientData(cd)) => {
            let whole = top.or(error_code(cd.status()));
            let duid = cd.client_id().and_then(|d| DuidBuf::new(d.as_bytes()));
            for ia in cd.ias() {
                let rejected = whole.or(error_code(ia.status()?));
                for l in ia.leases() {
                    let (kind, addr, prefix_len) = match l.lease {
                        LeaseOption::Addr(a) => (LeaseKind::Address, a.addr, 128),
                        LeaseOption::Prefix(p) => (LeaseKind::Prefix, p.prefix, p.prefix_len),
                    };
                    leases.push(LeaseAck {
                        kind,
                        addr,
                        prefix_len,
                        client: duid.map(|d| (d, ia.iaid())),
                        result: result(rejected, &l.info),
                    });
                }
            }
            whole
        }
    };
    Ok(DecodedReply {
        transaction_id,
        whole,
        leases,
    })
}

/// The verdict on one lease, given a rejection at a level above it.
fn result(above: Option<StatusCode>, info: &BindingInfo<'_>) -> AckResult {
    match above.or(error_code(info.status)) {
        Some(code) => AckResult::Rejected(code),
        None => AckResult::Accepted(Echo {
            status: info.binding_status,
            state_expiration_time: info.state_expiration_time.map(|t| t.0),
            partner_lifetime_sent: info.partner_lifetime_sent.map(|t| t.0),
        }),
    }
}

#[cfg(test)]
mod tests;
