//! The options of the failover link: every OPTION_F_* of RFC 8156 §5.5 (codes 114–134) and the
//! leasequery options that RFC 8156 §7.4 reuses: OPTION_CLIENT_DATA (45), OPTION_CLT_TIME (46)
//! and OPTION_LQ_RELAY_DATA (47) of RFC 5007 §4.1.2.2–§4.1.2.4, OPTION_VSS (68, RFC 6607 §3.4,
//! kept opaque) and OPTION_LQ_BASE_TIME (100, RFC 7653 §6.3.1).
//!
//! Each type parses the option *data* (what follows the 4-byte option header) and implements
//! [`EmitOption`]. A fixed-length option with another length is `Error::Malformed` naming the
//! option. [`FailoverOption`] dispatches on the code; every other code is kept as
//! [`FailoverOption::Other`] and round-trips verbatim.

use core::net::Ipv6Addr;

use super::client_data::ClientData;
use super::time::FailoverTime;
use crate::codec::{Reader, Writer};
use crate::option::{EmitOption, OptionCode, OptionIter, Options, RawOption};
use crate::registry::registry;
use crate::{Error, Result};

/// The option data as an array of exactly `N` bytes, or `Malformed(what)`.
fn fixed<const N: usize>(data: &[u8], what: &'static str) -> Result<[u8; N]> {
    data.try_into().map_err(|_| Error::Malformed(what))
}

/// Declares an option holding one big-endian `u32` (an interval or an absolute time).
macro_rules! u32_option {
    ($(#[$doc:meta])* $name:ident($inner:ty) = $code:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            #[doc = concat!("Parses ", $what, " data: exactly 4 bytes.")]
            pub fn parse(data: &[u8]) -> Result<Self> {
                Ok(Self(<$inner>::from(u32::from_be_bytes(fixed(data, $what)?))))
            }
        }

        impl EmitOption for $name {
            fn code(&self) -> OptionCode {
                OptionCode::$code
            }
            fn data_len(&self) -> usize {
                4
            }
            fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
                w.u32(u32::from(self.0))
            }
        }
    };
}

registry! {
    /// OPTION_F_BINDING_STATUS (114) values, RFC 8156 §5.5.1 (0 is reserved; unknown values
    /// are kept as data). The type is also the option itself: it implements [`EmitOption`].
    pub struct BindingStatus(u8) {
        ACTIVE = 1, EXPIRED = 2, RELEASED = 3, PENDING_FREE = 4, FREE = 5, FREE_BACKUP = 6,
        ABANDONED = 7, RESET = 8,
    }
}

impl BindingStatus {
    /// Parses OPTION_F_BINDING_STATUS data: exactly 1 byte.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let [v] = fixed(data, "OPTION_F_BINDING_STATUS")?;
        Ok(Self(v))
    }
}

impl EmitOption for BindingStatus {
    fn code(&self) -> OptionCode {
        OptionCode::F_BINDING_STATUS
    }
    fn data_len(&self) -> usize {
        1
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.0)
    }
}

registry! {
    /// OPTION_F_SERVER_STATE (132) values, RFC 8156 §5.5.16: the failover endpoint states of
    /// RFC 8156 §8. STARTUP (1) is never sent: a server in STARTUP sets the STARTUP bit of
    /// OPTION_F_SERVER_FLAGS instead (§8.3). The type is also the option (it implements
    /// [`EmitOption`]).
    pub struct ServerState(u8) {
        STARTUP = 1, NORMAL = 2, COMMUNICATIONS_INTERRUPTED = 3, PARTNER_DOWN = 4,
        POTENTIAL_CONFLICT = 5, RECOVER = 6, RECOVER_WAIT = 7, RECOVER_DONE = 8,
        RESOLUTION_INTERRUPTED = 9, CONFLICT_DONE = 10,
    }
}

impl ServerState {
    /// Parses OPTION_F_SERVER_STATE data: exactly 1 byte.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let [v] = fixed(data, "OPTION_F_SERVER_STATE")?;
        Ok(Self(v))
    }
}

impl EmitOption for ServerState {
    fn code(&self) -> OptionCode {
        OptionCode::F_SERVER_STATE
    }
    fn data_len(&self) -> usize {
        1
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.0)
    }
}

/// OPTION_F_CONNECT_FLAGS (115), RFC 8156 §5.5.2: a 16-bit flag word. Bits are numbered from
/// the most significant bit, so bit 15 (FIXED_PD_LENGTH) has the value `0x0001`. The MBZ bits
/// are kept as received so the option round-trips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnectFlags(pub u16);

impl ConnectFlags {
    /// Bit 15 (F), FIXED_PD_LENGTH: all prefixes delegated from one delegable prefix have the
    /// same length.
    pub const FIXED_PD_LENGTH: u16 = 0x0001;

    /// Parses OPTION_F_CONNECT_FLAGS data: exactly 2 bytes.
    pub fn parse(data: &[u8]) -> Result<Self> {
        Ok(Self(u16::from_be_bytes(fixed(
            data,
            "OPTION_F_CONNECT_FLAGS",
        )?)))
    }

    /// `true` if FIXED_PD_LENGTH is set.
    pub const fn fixed_pd_length(self) -> bool {
        self.0 & Self::FIXED_PD_LENGTH != 0
    }

    /// The must-be-zero bits (0–14) as received.
    pub const fn mbz(self) -> u16 {
        self.0 & !Self::FIXED_PD_LENGTH
    }
}

impl EmitOption for ConnectFlags {
    fn code(&self) -> OptionCode {
        OptionCode::F_CONNECT_FLAGS
    }
    fn data_len(&self) -> usize {
        2
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.0)
    }
}

/// OPTION_F_DNS_FLAGS (119), RFC 8156 §5.5.3.3: what must be done to remove a DNS name. Bits are
/// numbered from the most significant bit; MBZ bits (0–11) are kept as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DnsFlags(pub u16);

impl DnsFlags {
    /// Bit 12 (U), USING_REQUESTED_FQDN: the name came from the client's FQDN.
    pub const USING_REQUESTED_FQDN: u16 = 0x0008;
    /// Bit 13 (S), SYNTHESIZED_NAME: the name was synthesized by the server.
    pub const SYNTHESIZED_NAME: u16 = 0x0004;
    /// Bit 14 (R), REV_UPTODATE: the reverse zone is up to date.
    pub const REV_UPTODATE: u16 = 0x0002;
    /// Bit 15 (F), FWD_UPTODATE: the forward zone is up to date.
    pub const FWD_UPTODATE: u16 = 0x0001;

    /// Parses OPTION_F_DNS_FLAGS data: exactly 2 bytes.
    pub fn parse(data: &[u8]) -> Result<Self> {
        Ok(Self(u16::from_be_bytes(fixed(data, "OPTION_F_DNS_FLAGS")?)))
    }

    /// `true` if every bit of `bits` is set.
    pub const fn contains(self, bits: u16) -> bool {
        self.0 & bits == bits
    }

    /// The must-be-zero bits (0–11) as received.
    pub const fn mbz(self) -> u16 {
        self.0 & !0x000f
    }
}

impl EmitOption for DnsFlags {
    fn code(&self) -> OptionCode {
        OptionCode::F_DNS_FLAGS
    }
    fn data_len(&self) -> usize {
        2
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.0)
    }
}

/// OPTION_F_SERVER_FLAGS (131), RFC 8156 §5.5.15. Bits are numbered from the most significant
/// bit; the MBZ bits (0–4) are kept as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerFlags(pub u8);

impl ServerFlags {
    /// Bit 5 (A), ACK_STARTUP: the flags most recently received had STARTUP set.
    pub const ACK_STARTUP: u8 = 0x04;
    /// Bit 6 (S), STARTUP: MUST be set while the server is in STARTUP state.
    pub const STARTUP: u8 = 0x02;
    /// Bit 7 (C), COMMUNICATED: the sender has communicated with its partner.
    pub const COMMUNICATED: u8 = 0x01;

    /// Parses OPTION_F_SERVER_FLAGS data: exactly 1 byte.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let [v] = fixed(data, "OPTION_F_SERVER_FLAGS")?;
        Ok(Self(v))
    }

    /// `true` if every bit of `bits` is set.
    pub const fn contains(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The must-be-zero bits (0–4) as received.
    pub const fn mbz(self) -> u8 {
        self.0 & !0x07
    }
}

impl EmitOption for ServerFlags {
    fn code(&self) -> OptionCode {
        OptionCode::F_SERVER_FLAGS
    }
    fn data_len(&self) -> usize {
        1
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.0)
    }
}

u32_option! {
    /// OPTION_F_EXPIRATION_TIME (120), RFC 8156 §5.5.4: the greatest lifetime this server ever
    /// acked to its partner for the lease (absolute).
    ExpirationTime(FailoverTime) = F_EXPIRATION_TIME, "OPTION_F_EXPIRATION_TIME"
}
u32_option! {
    /// OPTION_F_MAX_UNACKED_BNDUPD (121), RFC 8156 §5.5.5: how many BNDUPDs the sender accepts
    /// unacknowledged.
    MaxUnackedBndupd(u32) = F_MAX_UNACKED_BNDUPD, "OPTION_F_MAX_UNACKED_BNDUPD"
}
u32_option! {
    /// OPTION_F_MCLT (122), RFC 8156 §5.5.6: the Maximum Client Lead Time, in seconds.
    Mclt(u32) = F_MCLT, "OPTION_F_MCLT"
}
u32_option! {
    /// OPTION_F_PARTNER_LIFETIME (123), RFC 8156 §5.5.7: when the partner may consider the lease
    /// expired (absolute).
    PartnerLifetime(FailoverTime) = F_PARTNER_LIFETIME, "OPTION_F_PARTNER_LIFETIME"
}
u32_option! {
    /// OPTION_F_PARTNER_LIFETIME_SENT (124), RFC 8156 §5.5.8: an exact echo of a received
    /// OPTION_F_PARTNER_LIFETIME (absolute).
    PartnerLifetimeSent(FailoverTime) = F_PARTNER_LIFETIME_SENT, "OPTION_F_PARTNER_LIFETIME_SENT"
}
u32_option! {
    /// OPTION_F_PARTNER_DOWN_TIME (125), RFC 8156 §5.5.9: when the sender most recently lost
    /// communications with its partner (absolute).
    PartnerDownTime(FailoverTime) = F_PARTNER_DOWN_TIME, "OPTION_F_PARTNER_DOWN_TIME"
}
u32_option! {
    /// OPTION_F_PARTNER_RAW_CLT_TIME (126), RFC 8156 §5.5.10: when the partner last interacted
    /// with the client, exactly as the partner reported it (absolute).
    PartnerRawCltTime(FailoverTime) = F_PARTNER_RAW_CLT_TIME, "OPTION_F_PARTNER_RAW_CLT_TIME"
}
u32_option! {
    /// OPTION_F_KEEPALIVE_TIME (128), RFC 8156 §5.5.12: seconds within which the sender must
    /// hear from its partner (the RFC's field label "receive-time" is a typo).
    KeepaliveTime(u32) = F_KEEPALIVE_TIME, "OPTION_F_KEEPALIVE_TIME"
}
u32_option! {
    /// OPTION_F_START_TIME_OF_STATE (133), RFC 8156 §5.5.17: when the endpoint state (in STATE)
    /// or the binding-status (in IAaddr/IAprefix options) took its current value (absolute).
    StartTimeOfState(FailoverTime) = F_START_TIME_OF_STATE, "OPTION_F_START_TIME_OF_STATE"
}
u32_option! {
    /// OPTION_F_STATE_EXPIRATION_TIME (134), RFC 8156 §5.5.18: when the current binding-status
    /// of the lease expires (absolute).
    StateExpirationTime(FailoverTime) = F_STATE_EXPIRATION_TIME, "OPTION_F_STATE_EXPIRATION_TIME"
}
u32_option! {
    /// OPTION_CLT_TIME (46), RFC 5007 §4.1.2.3: seconds since the sender last communicated with
    /// the client (relative to OPTION_LQ_BASE_TIME).
    CltTime(u32) = CLT_TIME, "OPTION_CLT_TIME"
}
u32_option! {
    /// OPTION_LQ_BASE_TIME (100), RFC 7653 §6.3.1: the absolute time the enclosing
    /// OPTION_CLIENT_DATA or OPTION_IAPREFIX was built (RFC 8156 §7.4).
    LqBaseTime(FailoverTime) = LQ_BASE_TIME, "OPTION_LQ_BASE_TIME"
}

/// OPTION_F_PROTOCOL_VERSION (127), RFC 8156 §5.5.11: major and minor version (1.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolVersion {
    /// Major version; incremented for large changes.
    pub major: u16,
    /// Minor version; incremented for small changes.
    pub minor: u16,
}

impl ProtocolVersion {
    /// Version 1.0, the version RFC 8156 defines.
    pub const V1_0: Self = Self { major: 1, minor: 0 };

    /// Parses OPTION_F_PROTOCOL_VERSION data: exactly 4 bytes.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let [a, b, c, d] = fixed(data, "OPTION_F_PROTOCOL_VERSION")?;
        Ok(Self {
            major: u16::from_be_bytes([a, b]),
            minor: u16::from_be_bytes([c, d]),
        })
    }
}

impl EmitOption for ProtocolVersion {
    fn code(&self) -> OptionCode {
        OptionCode::F_PROTOCOL_VERSION
    }
    fn data_len(&self) -> usize {
        4
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.major)?;
        w.u16(self.minor)
    }
}

/// OPTION_F_RECONFIGURE_DATA (129), RFC 8156 §5.5.13: when the client's reconfigure key was
/// created, and the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReconfigureData<'a> {
    /// When the reconfigure key was created (absolute).
    pub time: FailoverTime,
    /// The reconfigure key (16 bytes for RKAP, RFC 8415 §20.4; any length accepted).
    pub key: &'a [u8],
}

impl<'a> ReconfigureData<'a> {
    /// Parses OPTION_F_RECONFIGURE_DATA data: a 4-byte time then the key.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let time = FailoverTime(r.u32("OPTION_F_RECONFIGURE_DATA").map_err(as_malformed)?);
        Ok(Self {
            time,
            key: r.take_rest(),
        })
    }
}

impl EmitOption for ReconfigureData<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::F_RECONFIGURE_DATA
    }
    fn data_len(&self) -> usize {
        4 + self.key.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.time.0)?;
        w.put(self.key)
    }
}

/// Turns a truncation inside a fixed part into the `Malformed` the failover codec reports.
fn as_malformed(e: Error) -> Error {
    match e {
        Error::Truncated(what) => Error::Malformed(what),
        other => other,
    }
}

/// OPTION_F_RELATIONSHIP_NAME (130), RFC 8156 §5.5.14: the relationship's name, UTF-8, not
/// NUL-terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelationshipName<'a>(pub &'a str);

impl<'a> RelationshipName<'a> {
    /// Parses OPTION_F_RELATIONSHIP_NAME data: any valid UTF-8.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        core::str::from_utf8(data)
            .map(Self)
            .map_err(|_| Error::Malformed("OPTION_F_RELATIONSHIP_NAME"))
    }
}

impl EmitOption for RelationshipName<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::F_RELATIONSHIP_NAME
    }
    fn data_len(&self) -> usize {
        self.0.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.put(self.0.as_bytes())
    }
}

/// A DNS name in RFC 1035 §3.1 wire form, uncompressed (RFC 8415 §10): labels of 1 to 63
/// bytes, each preceded by its length, ending with the zero-length root label for a fully
/// qualified name. A name without the root label is accepted as a partial name (RFC 4704 §4.2
/// style); compression pointers are rejected; the whole name is at most 255 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsName<'a> {
    bytes: &'a [u8],
    fully_qualified: bool,
}

impl<'a> DnsName<'a> {
    /// Longest name on the wire (RFC 1035 §2.3.4).
    pub const MAX_LEN: usize = 255;

    /// Validates `bytes` as a wire-form name; `what` names the option in errors.
    pub fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(Error::Malformed(what));
        }
        let mut r = Reader::new(bytes);
        let mut fully_qualified = false;
        while !r.is_empty() {
            let len = r.u8(what)?;
            if len == 0 {
                r.finish(what)?;
                fully_qualified = true;
                break;
            }
            if len > 63 {
                return Err(Error::Malformed(what)); // also rejects compression pointers
            }
            r.bytes(usize::from(len), what).map_err(as_malformed)?;
        }
        Ok(Self {
            bytes,
            fully_qualified,
        })
    }

    /// The wire bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `true` if the name ends with the root label.
    pub const fn is_fully_qualified(&self) -> bool {
        self.fully_qualified
    }

    /// The labels, root label excluded.
    pub fn labels(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader::new(self.bytes);
        core::iter::from_fn(move || {
            let len = r.u8("label").ok().filter(|&l| l != 0)?;
            r.bytes(usize::from(len), "label").ok()
        })
    }
}

/// OPTION_F_DNS_HOST_NAME (117), RFC 8156 §5.5.3.1: the host name the partner entered in DNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsHostName<'a>(pub DnsName<'a>);

impl<'a> DnsHostName<'a> {
    /// Parses OPTION_F_DNS_HOST_NAME data: a wire-form DNS name.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        DnsName::parse(data, "OPTION_F_DNS_HOST_NAME").map(Self)
    }
}

impl EmitOption for DnsHostName<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::F_DNS_HOST_NAME
    }
    fn data_len(&self) -> usize {
        self.0.as_bytes().len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.put(self.0.as_bytes())
    }
}

/// OPTION_F_DNS_ZONE_NAME (118), RFC 8156 §5.5.3.2: the zone the partner updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsZoneName<'a>(pub DnsName<'a>);

impl<'a> DnsZoneName<'a> {
    /// Parses OPTION_F_DNS_ZONE_NAME data: a wire-form DNS name.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        DnsName::parse(data, "OPTION_F_DNS_ZONE_NAME").map(Self)
    }
}

impl EmitOption for DnsZoneName<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::F_DNS_ZONE_NAME
    }
    fn data_len(&self) -> usize {
        self.0.as_bytes().len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.put(self.0.as_bytes())
    }
}

/// The options with `code` in a parsed block (none for a built `List` block), borrowing the
/// packet rather than the block value.
pub(crate) fn find_all<'a>(
    options: &Options<'a>,
    code: OptionCode,
) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
    let bytes = options.raw().map_or(&[][..], |r| r.as_bytes());
    // Parsed blocks were TLV-validated, so `OptionIter` yields no `Err` on them.
    OptionIter::new(bytes)
        .filter_map(core::result::Result::ok)
        .filter(move |o| o.code == code)
}

/// The single option with `code` in a parsed block: `None` if absent, `Malformed(duplicate)`
/// if it appears twice.
pub(crate) fn find_unique<'a>(
    options: &Options<'a>,
    code: OptionCode,
    duplicate: &'static str,
) -> Result<Option<RawOption<'a>>> {
    let mut all = find_all(options, code);
    let first = all.next();
    if all.next().is_some() {
        return Err(Error::Malformed(duplicate));
    }
    Ok(first)
}

/// OPTION_F_DNS_REMOVAL_INFO (116), RFC 8156 §5.5.3: what is needed to remove a DNS name the
/// partner entered; a container of OPTION_F_DNS_HOST_NAME, OPTION_F_DNS_ZONE_NAME and
/// OPTION_F_DNS_FLAGS (RFC 8156 §9.2). Parsing validates the three when present (at most one
/// each); other nested options are kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DnsRemovalInfo<'a> {
    /// The encapsulated options.
    pub options: Options<'a>,
}

impl<'a> DnsRemovalInfo<'a> {
    /// Parses OPTION_F_DNS_REMOVAL_INFO data.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let this = Self {
            options: Options::parse(data)?,
        };
        this.host_name()?;
        this.zone_name()?;
        this.flags()?;
        Ok(this)
    }

    /// The OPTION_F_DNS_HOST_NAME, if any (parsed blocks only).
    pub fn host_name(&self) -> Result<Option<DnsHostName<'a>>> {
        find_unique(
            &self.options,
            OptionCode::F_DNS_HOST_NAME,
            "duplicate OPTION_F_DNS_HOST_NAME",
        )?
        .map(|o| DnsHostName::parse(o.data))
        .transpose()
    }

    /// The OPTION_F_DNS_ZONE_NAME, if any (parsed blocks only).
    pub fn zone_name(&self) -> Result<Option<DnsZoneName<'a>>> {
        find_unique(
            &self.options,
            OptionCode::F_DNS_ZONE_NAME,
            "duplicate OPTION_F_DNS_ZONE_NAME",
        )?
        .map(|o| DnsZoneName::parse(o.data))
        .transpose()
    }

    /// The OPTION_F_DNS_FLAGS, if any (parsed blocks only).
    pub fn flags(&self) -> Result<Option<DnsFlags>> {
        find_unique(
            &self.options,
            OptionCode::F_DNS_FLAGS,
            "duplicate OPTION_F_DNS_FLAGS",
        )?
        .map(|o| DnsFlags::parse(o.data))
        .transpose()
    }
}

impl EmitOption for DnsRemovalInfo<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::F_DNS_REMOVAL_INFO
    }
    fn data_len(&self) -> usize {
        self.options.wire_len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.options.emit(w)
    }
}

/// OPTION_LQ_RELAY_DATA (47), RFC 5007 §4.1.2.4: the relay agent the client's last message came
/// through and that relay chain, with the innermost Relay Message option removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LqRelayData<'a> {
    /// Address of the relay agent the message was received from.
    pub peer_address: Ipv6Addr,
    /// The last complete RELAY-FORW (kept as bytes).
    pub relay_message: &'a [u8],
}

impl<'a> LqRelayData<'a> {
    /// Parses OPTION_LQ_RELAY_DATA data: a 16-byte address then the relay message.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let peer_address = r.ipv6("OPTION_LQ_RELAY_DATA").map_err(as_malformed)?;
        Ok(Self {
            peer_address,
            relay_message: r.take_rest(),
        })
    }
}

impl EmitOption for LqRelayData<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::LQ_RELAY_DATA
    }
    fn data_len(&self) -> usize {
        16 + self.relay_message.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.ipv6(self.peer_address)?;
        w.put(self.relay_message)
    }
}

/// OPTION_VSS (68), RFC 6607 §3.4: the VPN of the binding, kept opaque (RFC 8156 §7.4: present
/// iff the binding is in a VPN other than the global, default one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vss<'a>(pub &'a [u8]);

impl<'a> Vss<'a> {
    /// Parses OPTION_VSS data (any bytes).
    pub const fn parse(data: &'a [u8]) -> Result<Self> {
        Ok(Self(data))
    }
}

impl EmitOption for Vss<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::VSS
    }
    fn data_len(&self) -> usize {
        self.0.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.put(self.0)
    }
}

/// A list of at most `N` options to emit, kept on the stack: how typed values become an
/// [`Options::List`] without allocation. Typed messages and [`super::BindingInfo`] return one
/// from `to_list()`, borrowing their fields.
pub struct OptionList<'a, const N: usize> {
    items: [&'a dyn EmitOption; N],
    len: usize,
}

/// Fills the unused slots of an [`OptionList`]; never emitted.
static UNUSED_SLOT: RawOption<'static> = RawOption {
    code: OptionCode(0),
    data: &[],
};

impl<'a, const N: usize> OptionList<'a, N> {
    /// The empty list.
    pub fn new() -> Self {
        Self {
            items: [&UNUSED_SLOT; N],
            len: 0,
        }
    }

    /// Appends `option`; fails with [`Error::BufferTooSmall`] when the list is full.
    pub fn push(&mut self, option: &'a dyn EmitOption) -> Result<()> {
        let slot = self.items.get_mut(self.len).ok_or(Error::BufferTooSmall)?;
        *slot = option;
        self.len += 1;
        Ok(())
    }

    /// Appends `option` if it is `Some`.
    pub fn push_some<T: EmitOption + 'a>(&mut self, option: Option<&'a T>) -> Result<()> {
        option.map_or(Ok(()), |o| self.push(o))
    }

    /// The options pushed so far.
    pub fn as_slice(&self) -> &[&'a dyn EmitOption] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// The options pushed so far, as a block to emit.
    pub fn options(&self) -> Options<'_> {
        Options::List(self.as_slice())
    }

    /// Number of options pushed.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// `true` if nothing was pushed.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for OptionList<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for OptionList<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.options().fmt(f)
    }
}

/// Any option the failover link defines, decoded by code; everything else is
/// [`FailoverOption::Other`]. Variants follow the option codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FailoverOption<'a> {
    /// OPTION_CLIENT_DATA (45).
    ClientData(ClientData<'a>),
    /// OPTION_CLT_TIME (46).
    CltTime(CltTime),
    /// OPTION_LQ_RELAY_DATA (47).
    LqRelayData(LqRelayData<'a>),
    /// OPTION_VSS (68).
    Vss(Vss<'a>),
    /// OPTION_LQ_BASE_TIME (100).
    LqBaseTime(LqBaseTime),
    /// OPTION_F_BINDING_STATUS (114).
    BindingStatus(BindingStatus),
    /// OPTION_F_CONNECT_FLAGS (115).
    ConnectFlags(ConnectFlags),
    /// OPTION_F_DNS_REMOVAL_INFO (116).
    DnsRemovalInfo(DnsRemovalInfo<'a>),
    /// OPTION_F_DNS_HOST_NAME (117).
    DnsHostName(DnsHostName<'a>),
    /// OPTION_F_DNS_ZONE_NAME (118).
    DnsZoneName(DnsZoneName<'a>),
    /// OPTION_F_DNS_FLAGS (119).
    DnsFlags(DnsFlags),
    /// OPTION_F_EXPIRATION_TIME (120).
    ExpirationTime(ExpirationTime),
    /// OPTION_F_MAX_UNACKED_BNDUPD (121).
    MaxUnackedBndupd(MaxUnackedBndupd),
    /// OPTION_F_MCLT (122).
    Mclt(Mclt),
    /// OPTION_F_PARTNER_LIFETIME (123).
    PartnerLifetime(PartnerLifetime),
    /// OPTION_F_PARTNER_LIFETIME_SENT (124).
    PartnerLifetimeSent(PartnerLifetimeSent),
    /// OPTION_F_PARTNER_DOWN_TIME (125).
    PartnerDownTime(PartnerDownTime),
    /// OPTION_F_PARTNER_RAW_CLT_TIME (126).
    PartnerRawCltTime(PartnerRawCltTime),
    /// OPTION_F_PROTOCOL_VERSION (127).
    ProtocolVersion(ProtocolVersion),
    /// OPTION_F_KEEPALIVE_TIME (128).
    KeepaliveTime(KeepaliveTime),
    /// OPTION_F_RECONFIGURE_DATA (129).
    ReconfigureData(ReconfigureData<'a>),
    /// OPTION_F_RELATIONSHIP_NAME (130).
    RelationshipName(RelationshipName<'a>),
    /// OPTION_F_SERVER_FLAGS (131).
    ServerFlags(ServerFlags),
    /// OPTION_F_SERVER_STATE (132).
    ServerState(ServerState),
    /// OPTION_F_START_TIME_OF_STATE (133).
    StartTimeOfState(StartTimeOfState),
    /// OPTION_F_STATE_EXPIRATION_TIME (134).
    StateExpirationTime(StateExpirationTime),
    /// Any other option, kept verbatim (DHCPv6 options such as IAPREFIX are decoded by
    /// [`crate::dhcp`]).
    Other(RawOption<'a>),
}

impl<'a> FailoverOption<'a> {
    /// Decodes one option by its code.
    pub fn parse(raw: RawOption<'a>) -> Result<Self> {
        let d = raw.data;
        Ok(match raw.code {
            OptionCode::CLIENT_DATA => Self::ClientData(ClientData::parse(d)?),
            OptionCode::CLT_TIME => Self::CltTime(CltTime::parse(d)?),
            OptionCode::LQ_RELAY_DATA => Self::LqRelayData(LqRelayData::parse(d)?),
            OptionCode::VSS => Self::Vss(Vss::parse(d)?),
            OptionCode::LQ_BASE_TIME => Self::LqBaseTime(LqBaseTime::parse(d)?),
            OptionCode::F_BINDING_STATUS => Self::BindingStatus(BindingStatus::parse(d)?),
            OptionCode::F_CONNECT_FLAGS => Self::ConnectFlags(ConnectFlags::parse(d)?),
            OptionCode::F_DNS_REMOVAL_INFO => Self::DnsRemovalInfo(DnsRemovalInfo::parse(d)?),
            OptionCode::F_DNS_HOST_NAME => Self::DnsHostName(DnsHostName::parse(d)?),
            OptionCode::F_DNS_ZONE_NAME => Self::DnsZoneName(DnsZoneName::parse(d)?),
            OptionCode::F_DNS_FLAGS => Self::DnsFlags(DnsFlags::parse(d)?),
            OptionCode::F_EXPIRATION_TIME => Self::ExpirationTime(ExpirationTime::parse(d)?),
            OptionCode::F_MAX_UNACKED_BNDUPD => Self::MaxUnackedBndupd(MaxUnackedBndupd::parse(d)?),
            OptionCode::F_MCLT => Self::Mclt(Mclt::parse(d)?),
            OptionCode::F_PARTNER_LIFETIME => Self::PartnerLifetime(PartnerLifetime::parse(d)?),
            OptionCode::F_PARTNER_LIFETIME_SENT => {
                Self::PartnerLifetimeSent(PartnerLifetimeSent::parse(d)?)
            }
            OptionCode::F_PARTNER_DOWN_TIME => Self::PartnerDownTime(PartnerDownTime::parse(d)?),
            OptionCode::F_PARTNER_RAW_CLT_TIME => {
                Self::PartnerRawCltTime(PartnerRawCltTime::parse(d)?)
            }
            OptionCode::F_PROTOCOL_VERSION => Self::ProtocolVersion(ProtocolVersion::parse(d)?),
            OptionCode::F_KEEPALIVE_TIME => Self::KeepaliveTime(KeepaliveTime::parse(d)?),
            OptionCode::F_RECONFIGURE_DATA => Self::ReconfigureData(ReconfigureData::parse(d)?),
            OptionCode::F_RELATIONSHIP_NAME => Self::RelationshipName(RelationshipName::parse(d)?),
            OptionCode::F_SERVER_FLAGS => Self::ServerFlags(ServerFlags::parse(d)?),
            OptionCode::F_SERVER_STATE => Self::ServerState(ServerState::parse(d)?),
            OptionCode::F_START_TIME_OF_STATE => {
                Self::StartTimeOfState(StartTimeOfState::parse(d)?)
            }
            OptionCode::F_STATE_EXPIRATION_TIME => {
                Self::StateExpirationTime(StateExpirationTime::parse(d)?)
            }
            _ => Self::Other(raw),
        })
    }

    /// The decoded option as something to emit.
    fn as_emit(&self) -> &dyn EmitOption {
        match self {
            Self::ClientData(o) => o,
            Self::CltTime(o) => o,
            Self::LqRelayData(o) => o,
            Self::Vss(o) => o,
            Self::LqBaseTime(o) => o,
            Self::BindingStatus(o) => o,
            Self::ConnectFlags(o) => o,
            Self::DnsRemovalInfo(o) => o,
            Self::DnsHostName(o) => o,
            Self::DnsZoneName(o) => o,
            Self::DnsFlags(o) => o,
            Self::ExpirationTime(o) => o,
            Self::MaxUnackedBndupd(o) => o,
            Self::Mclt(o) => o,
            Self::PartnerLifetime(o) => o,
            Self::PartnerLifetimeSent(o) => o,
            Self::PartnerDownTime(o) => o,
            Self::PartnerRawCltTime(o) => o,
            Self::ProtocolVersion(o) => o,
            Self::KeepaliveTime(o) => o,
            Self::ReconfigureData(o) => o,
            Self::RelationshipName(o) => o,
            Self::ServerFlags(o) => o,
            Self::ServerState(o) => o,
            Self::StartTimeOfState(o) => o,
            Self::StateExpirationTime(o) => o,
            Self::Other(o) => o,
        }
    }
}

impl EmitOption for FailoverOption<'_> {
    fn code(&self) -> OptionCode {
        self.as_emit().code()
    }
    fn data_len(&self) -> usize {
        self.as_emit().data_len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.as_emit().emit_data(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_name_accepts_fqdn_and_partial() {
        let fqdn = b"\x04host\x07example\x03com\x00";
        let name = DnsName::parse(fqdn, "x").unwrap();
        assert!(name.is_fully_qualified());
        let labels: std::vec::Vec<_> = name.labels().collect();
        assert_eq!(labels, [&b"host"[..], b"example", b"com"]);
        let partial = DnsName::parse(b"\x04host", "x").unwrap();
        assert!(!partial.is_fully_qualified());
        assert!(DnsName::parse(b"\x00", "x").unwrap().is_fully_qualified());
    }

    #[test]
    fn dns_name_rejects_bad_labels() {
        assert_eq!(DnsName::parse(b"", "n"), Err(Error::Malformed("n")));
        assert_eq!(DnsName::parse(b"\x05host", "n"), Err(Error::Malformed("n")));
        assert_eq!(DnsName::parse(b"\xc0\x0c", "n"), Err(Error::Malformed("n")));
        assert_eq!(
            DnsName::parse(b"\x01a\x00\x01b", "n"),
            Err(Error::TrailingBytes("n"))
        );
        let long = [[63u8; 64]; 4].concat();
        assert_eq!(DnsName::parse(&long, "n"), Err(Error::Malformed("n")));
    }

    #[test]
    fn flags_expose_mbz_bits() {
        assert!(ConnectFlags(0x0001).fixed_pd_length());
        assert_eq!(ConnectFlags(0x8001).mbz(), 0x8000);
        assert!(DnsFlags(0x000b).contains(DnsFlags::USING_REQUESTED_FQDN | DnsFlags::FWD_UPTODATE));
        assert_eq!(DnsFlags(0x0010).mbz(), 0x0010);
        assert!(ServerFlags(0x05).contains(ServerFlags::ACK_STARTUP));
        assert!(!ServerFlags(0x05).contains(ServerFlags::STARTUP));
        assert_eq!(ServerFlags(0x80).mbz(), 0x80);
    }

    #[test]
    fn registries_name_rfc_values() {
        assert_eq!(ServerState::PARTNER_DOWN.0, 4);
        assert_eq!(ServerState(2).name(), Some("NORMAL"));
        assert_eq!(ServerState(10).name(), Some("CONFLICT_DONE"));
        assert_eq!(BindingStatus(8).name(), Some("RESET"));
        assert_eq!(BindingStatus(0).name(), None);
    }

    #[test]
    fn relationship_name_rejects_invalid_utf8() {
        assert_eq!(
            RelationshipName::parse(b"\xff"),
            Err(Error::Malformed("OPTION_F_RELATIONSHIP_NAME"))
        );
        assert_eq!(RelationshipName::parse(b"dc1"), Ok(RelationshipName("dc1")));
    }
}
