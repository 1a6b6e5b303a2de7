//! Typed DHCPv6 options (RFC 8415 §21 and the RFCs that define the other options a server
//! handles). [`DhcpOption::parse`] checks the length rules of each option; codes this module
//! does not know — including the RFC 8156 failover options, decoded by [`crate::failover`] —
//! become [`DhcpOption::Unknown`] and are re-emitted verbatim.
//!
//! Every view here is zero-copy and can also be built from caller-owned data for emitting, so
//! parsing and building never allocate.

use core::net::Ipv6Addr;

use super::domain::{DomainList, DomainName};
use super::relay::RelayPayload;
use super::{Duid, IaAddr, IaNa, IaPd, IaPrefix, IaTa, MessageType, StatusCodeOption};
use crate::codec::{Reader, Writer};
use crate::option::{EmitOption, OptionCode, Options, RawOption};
use crate::{Error, Result};

/// `data` as an array of exactly `N` bytes, else `Malformed(what)`.
fn fixed<const N: usize>(data: &[u8], what: &'static str) -> Result<[u8; N]> {
    data.try_into().map_err(|_| Error::Malformed(what))
}

/// A list of option codes: the Option Request option (RFC 8415 §21.7) and the Echo Request
/// option (RFC 4994 §4). Either a view over the wire bytes or a caller's slice of codes.
#[derive(Clone, Copy, Debug)]
pub enum CodeList<'a> {
    /// Big-endian `u16` codes as received (even length, checked by [`CodeList::parse`]).
    Raw(&'a [u8]),
    /// Codes to emit.
    List(&'a [OptionCode]),
}

impl<'a> CodeList<'a> {
    /// Validates a list of 2-byte codes; an odd length is `Malformed(what)`.
    pub fn parse(data: &'a [u8], what: &'static str) -> Result<Self> {
        if data.len().is_multiple_of(2) {
            Ok(Self::Raw(data))
        } else {
            Err(Error::Malformed(what))
        }
    }

    /// The codes, in order.
    pub fn iter(&self) -> impl Iterator<Item = OptionCode> + use<'a> {
        let (raw, list): (&[u8], &[OptionCode]) = match *self {
            Self::Raw(raw) => (raw, &[]),
            Self::List(list) => (&[], list),
        };
        raw.chunks_exact(2)
            .map(|c| OptionCode(u16::from_be_bytes([c[0], c[1]])))
            .chain(list.iter().copied())
    }

    /// `true` if `code` is in the list.
    pub fn contains(&self, code: OptionCode) -> bool {
        self.iter().any(|c| c == code)
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        match self {
            Self::Raw(raw) => raw.len() / 2,
            Self::List(list) => list.len(),
        }
    }

    /// `true` if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.iter().try_for_each(|c| w.u16(c.0))
    }
}

impl PartialEq for CodeList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A list of IPv6 addresses, such as the DNS Recursive Name Server option (RFC 3646 §3).
#[derive(Clone, Copy, Debug)]
pub enum AddrList<'a> {
    /// 16-byte addresses as received (length a multiple of 16, checked by [`AddrList::parse`]).
    Raw(&'a [u8]),
    /// Addresses to emit.
    List(&'a [Ipv6Addr]),
}

impl<'a> AddrList<'a> {
    /// Validates a list of addresses; a length that is not a multiple of 16 is
    /// `Malformed(what)`.
    pub fn parse(data: &'a [u8], what: &'static str) -> Result<Self> {
        if data.len().is_multiple_of(16) {
            Ok(Self::Raw(data))
        } else {
            Err(Error::Malformed(what))
        }
    }

    /// The addresses, in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv6Addr> + use<'a> {
        let (raw, list): (&[u8], &[Ipv6Addr]) = match *self {
            Self::Raw(raw) => (raw, &[]),
            Self::List(list) => (&[], list),
        };
        raw.chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok().map(Ipv6Addr::from))
            .chain(list.iter().copied())
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Self::Raw(raw) => raw.len() / 16,
            Self::List(list) => list.len(),
        }
    }

    /// `true` if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.iter().try_for_each(|a| w.ipv6(a))
    }
}

impl PartialEq for AddrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A validated sequence of length-prefixed opaque items (`u16` length, then data), the format
/// of the User Class (RFC 8415 §21.15) and Vendor Class (§21.16) data.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OpaqueList<'a> {
    bytes: &'a [u8],
}

impl<'a> OpaqueList<'a> {
    /// Validates `bytes`; an item running past the end is `Malformed(what)`.
    pub fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let len = r.u16(what).map_err(|_| Error::Malformed(what))?;
            r.bytes(usize::from(len), what)
                .map_err(|_| Error::Malformed(what))?;
        }
        Ok(Self { bytes })
    }

    /// Encodes `items` into `buf` and returns the bytes written (items over 65535 bytes are
    /// [`Error::Malformed`]).
    pub fn encode(items: &[&[u8]], buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        for item in items {
            let len = u16::try_from(item.len()).map_err(|_| Error::Malformed("opaque item"))?;
            w.u16(len)?;
            w.put(item)?;
        }
        Ok(w.position())
    }

    /// The encoded items.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader::new(self.bytes);
        core::iter::from_fn(move || {
            let len = r.u16("opaque item").ok()?;
            r.bytes(usize::from(len), "opaque item").ok()
        })
    }
}

impl core::fmt::Debug for OpaqueList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The Authentication option (RFC 8415 §21.11). Tandem does not authenticate (RFC 8415 §20:
/// optional); the option is decoded and passed through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Authentication protocol (RFC 8415 §20: 3 = reconfigure key).
    pub protocol: u8,
    /// Algorithm within the protocol.
    pub algorithm: u8,
    /// Replay detection method (0 = monotonic counter).
    pub rdm: u8,
    /// Replay detection value.
    pub replay_detection: u64,
    /// Protocol-specific authentication information.
    pub info: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Parses AUTH option data: 11 fixed bytes then the authentication information.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let protocol = r.u8("AUTH")?;
        let algorithm = r.u8("AUTH")?;
        let rdm = r.u8("AUTH")?;
        let replay_detection = u64::from_be_bytes(r.array("AUTH")?);
        Ok(Self {
            protocol,
            algorithm,
            rdm,
            replay_detection,
            info: r.take_rest(),
        })
    }
}

/// The Vendor Class option (RFC 8415 §21.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorClass<'a> {
    /// IANA private enterprise number.
    pub enterprise: u32,
    /// The vendor-class-data items.
    pub data: OpaqueList<'a>,
}

/// The Vendor-specific Information option (RFC 8415 §21.17): an enterprise number and that
/// vendor's options, in the usual TLV format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VendorOpts<'a> {
    /// IANA private enterprise number.
    pub enterprise: u32,
    /// The vendor's options.
    pub options: Options<'a>,
}

/// The Relay Agent Remote-ID option (RFC 4649 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteId<'a> {
    /// The relay vendor's IANA private enterprise number.
    pub enterprise: u32,
    /// The opaque remote-id.
    pub remote_id: &'a [u8],
}

/// The Client Link-Layer Address option (RFC 6939 §4), added by the first-hop relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLinkLayerAddr<'a> {
    /// IANA hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// The client's link-layer address.
    pub addr: &'a [u8],
}

/// The Client FQDN option (RFC 4704 §4): flags and a fully qualified or partial name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientFqdn<'a> {
    /// Flags byte: `S` (0x01), `O` (0x02), `N` (0x04); other bits are kept as sent.
    pub flags: u8,
    /// The domain name, possibly partial or empty (RFC 4704 §4.2).
    pub name: DomainName<'a>,
}

impl<'a> ClientFqdn<'a> {
    /// `S`: the server should perform the AAAA update (RFC 4704 §4.1).
    pub const FLAG_S: u8 = 0x01;
    /// `O`: the server overrode the client's `S` preference.
    pub const FLAG_O: u8 = 0x02;
    /// `N`: the server should perform no DNS update.
    pub const FLAG_N: u8 = 0x04;

    /// Parses CLIENT_FQDN option data: the flags byte then exactly one name.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let (&flags, name) = data.split_first().ok_or(Error::Malformed("CLIENT_FQDN"))?;
        Ok(Self {
            flags,
            name: DomainName::parse(name)?,
        })
    }

    /// `true` if the `S` flag is set.
    pub const fn s(&self) -> bool {
        self.flags & Self::FLAG_S != 0
    }
    /// `true` if the `O` flag is set.
    pub const fn o(&self) -> bool {
        self.flags & Self::FLAG_O != 0
    }
    /// `true` if the `N` flag is set.
    pub const fn n(&self) -> bool {
        self.flags & Self::FLAG_N != 0
    }
}

/// A DHCPv6 option, decoded. Unknown codes (and the RFC 8156 failover options, which
/// [`crate::failover`] decodes) are kept as [`DhcpOption::Unknown`] and re-emitted verbatim.
///
/// Parsing a valid option and emitting it again gives the same bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum DhcpOption<'a> {
    /// OPTION_CLIENTID (1), RFC 8415 §21.2.
    ClientId(Duid<'a>),
    /// OPTION_SERVERID (2), RFC 8415 §21.3.
    ServerId(Duid<'a>),
    /// OPTION_IA_NA (3), RFC 8415 §21.4.
    IaNa(IaNa<'a>),
    /// OPTION_IA_TA (4), RFC 8415 §21.5; obsolete since RFC 9915 (parsed, never produced).
    IaTa(IaTa<'a>),
    /// OPTION_IAADDR (5), RFC 8415 §21.6.
    IaAddr(IaAddr<'a>),
    /// OPTION_ORO (6), RFC 8415 §21.7.
    Oro(CodeList<'a>),
    /// OPTION_PREFERENCE (7), RFC 8415 §21.8.
    Preference(u8),
    /// OPTION_ELAPSED_TIME (8), RFC 8415 §21.9, in hundredths of a second.
    ElapsedTime(u16),
    /// OPTION_RELAY_MSG (9), RFC 8415 §21.10.
    RelayMsg(RelayPayload<'a>),
    /// OPTION_AUTH (11), RFC 8415 §21.11.
    Auth(Auth<'a>),
    /// OPTION_UNICAST (12), RFC 8415 §21.12; obsolete since RFC 9915 (parsed, never produced).
    Unicast(Ipv6Addr),
    /// OPTION_STATUS_CODE (13), RFC 8415 §21.13.
    StatusCode(StatusCodeOption<'a>),
    /// OPTION_RAPID_COMMIT (14), RFC 8415 §21.14.
    RapidCommit,
    /// OPTION_USER_CLASS (15), RFC 8415 §21.15.
    UserClass(OpaqueList<'a>),
    /// OPTION_VENDOR_CLASS (16), RFC 8415 §21.16.
    VendorClass(VendorClass<'a>),
    /// OPTION_VENDOR_OPTS (17), RFC 8415 §21.17.
    VendorOpts(VendorOpts<'a>),
    /// OPTION_INTERFACE_ID (18), RFC 8415 §21.18.
    InterfaceId(&'a [u8]),
    /// OPTION_RECONF_MSG (19), RFC 8415 §21.19.
    ReconfMsg(MessageType),
    /// OPTION_RECONF_ACCEPT (20), RFC 8415 §21.20.
    ReconfAccept,
    /// OPTION_DNS_SERVERS (23), RFC 3646 §3.
    DnsServers(AddrList<'a>),
    /// OPTION_DOMAIN_LIST (24), RFC 3646 §4.
    DomainList(DomainList<'a>),
    /// OPTION_IA_PD (25), RFC 8415 §21.21.
    IaPd(IaPd<'a>),
    /// OPTION_IAPREFIX (26), RFC 8415 §21.22.
    IaPrefix(IaPrefix<'a>),
    /// OPTION_INFORMATION_REFRESH_TIME (32), RFC 8415 §21.23, in seconds.
    InformationRefreshTime(u32),
    /// OPTION_REMOTE_ID (37), RFC 4649 §3.
    RemoteId(RemoteId<'a>),
    /// OPTION_SUBSCRIBER_ID (38), RFC 4580 §2 (at least one byte).
    SubscriberId(&'a [u8]),
    /// OPTION_CLIENT_FQDN (39), RFC 4704 §4.
    ClientFqdn(ClientFqdn<'a>),
    /// OPTION_ERO (43), RFC 4994 §4.
    Ero(CodeList<'a>),
    /// OPTION_CLIENT_LINKLAYER_ADDR (79), RFC 6939 §4.
    ClientLinkLayerAddr(ClientLinkLayerAddr<'a>),
    /// OPTION_SOL_MAX_RT (82), RFC 8415 §21.24, in seconds.
    SolMaxRt(u32),
    /// OPTION_INF_MAX_RT (83), RFC 8415 §21.25, in seconds.
    InfMaxRt(u32),
    /// OPTION_RELAY_SOURCE_PORT (135), RFC 8357 §5.2.
    RelaySourcePort(u16),
    /// Any other option, kept verbatim.
    Unknown(RawOption<'a>),
}

impl<'a> DhcpOption<'a> {
    /// Decodes one option, checking the length rules of its RFC. A wrong length for a
    /// fixed-size option is `Malformed("<OPTION NAME>")`.
    pub fn parse(raw: RawOption<'a>) -> Result<Self> {
        let d = raw.data;
        Ok(match raw.code {
            OptionCode::CLIENTID => Self::ClientId(Duid::parse(d)?),
            OptionCode::SERVERID => Self::ServerId(Duid::parse(d)?),
            OptionCode::IA_NA => Self::IaNa(IaNa::parse(d)?),
            OptionCode::IA_TA => Self::IaTa(IaTa::parse(d)?),
            OptionCode::IAADDR => Self::IaAddr(IaAddr::parse(d)?),
            OptionCode::ORO => Self::Oro(CodeList::parse(d, "ORO")?),
            OptionCode::PREFERENCE => Self::Preference(u8::from_be_bytes(fixed(d, "PREFERENCE")?)),
            OptionCode::ELAPSED_TIME => {
                Self::ElapsedTime(u16::from_be_bytes(fixed(d, "ELAPSED_TIME")?))
            }
            OptionCode::RELAY_MSG => Self::RelayMsg(RelayPayload::Bytes(d)),
            OptionCode::AUTH => Self::Auth(Auth::parse(d)?),
            OptionCode::UNICAST => Self::Unicast(Ipv6Addr::from(fixed::<16>(d, "UNICAST")?)),
            OptionCode::STATUS_CODE => Self::StatusCode(StatusCodeOption::parse(d)?),
            OptionCode::RAPID_COMMIT => {
                fixed::<0>(d, "RAPID_COMMIT")?;
                Self::RapidCommit
            }
            OptionCode::USER_CLASS => Self::UserClass(OpaqueList::parse(d, "USER_CLASS")?),
            OptionCode::VENDOR_CLASS => {
                let mut r = Reader::new(d);
                let enterprise = r.u32("VENDOR_CLASS")?;
                let data = OpaqueList::parse(r.take_rest(), "VENDOR_CLASS")?;
                Self::VendorClass(VendorClass { enterprise, data })
            }
            OptionCode::VENDOR_OPTS => {
                let mut r = Reader::new(d);
                let enterprise = r.u32("VENDOR_OPTS")?;
                let options = Options::parse(r.take_rest())?;
                Self::VendorOpts(VendorOpts {
                    enterprise,
                    options,
                })
            }
            OptionCode::INTERFACE_ID => Self::InterfaceId(d),
            OptionCode::RECONF_MSG => Self::ReconfMsg(MessageType(fixed::<1>(d, "RECONF_MSG")?[0])),
            OptionCode::RECONF_ACCEPT => {
                fixed::<0>(d, "RECONF_ACCEPT")?;
                Self::ReconfAccept
            }
            OptionCode::DNS_SERVERS => Self::DnsServers(AddrList::parse(d, "DNS_SERVERS")?),
            OptionCode::DOMAIN_LIST => Self::DomainList(DomainList::parse(d)?),
            OptionCode::IA_PD => Self::IaPd(IaPd::parse(d)?),
            OptionCode::IAPREFIX => Self::IaPrefix(IaPrefix::parse(d)?),
            OptionCode::INFORMATION_REFRESH_TIME => Self::InformationRefreshTime(
                u32::from_be_bytes(fixed(d, "INFORMATION_REFRESH_TIME")?),
            ),
            OptionCode::REMOTE_ID => {
                let mut r = Reader::new(d);
                let enterprise = r.u32("REMOTE_ID")?;
                Self::RemoteId(RemoteId {
                    enterprise,
                    remote_id: r.take_rest(),
                })
            }
            OptionCode::SUBSCRIBER_ID => {
                if d.is_empty() {
                    return Err(Error::Malformed("SUBSCRIBER_ID"));
                }
                Self::SubscriberId(d)
            }
            OptionCode::CLIENT_FQDN => Self::ClientFqdn(ClientFqdn::parse(d)?),
            OptionCode::ERO => Self::Ero(CodeList::parse(d, "ERO")?),
            OptionCode::CLIENT_LINKLAYER_ADDR => {
                let mut r = Reader::new(d);
                let hw_type = r.u16("CLIENT_LINKLAYER_ADDR")?;
                Self::ClientLinkLayerAddr(ClientLinkLayerAddr {
                    hw_type,
                    addr: r.take_rest(),
                })
            }
            OptionCode::SOL_MAX_RT => Self::SolMaxRt(u32::from_be_bytes(fixed(d, "SOL_MAX_RT")?)),
            OptionCode::INF_MAX_RT => Self::InfMaxRt(u32::from_be_bytes(fixed(d, "INF_MAX_RT")?)),
            OptionCode::RELAY_SOURCE_PORT => {
                Self::RelaySourcePort(u16::from_be_bytes(fixed(d, "RELAY_SOURCE_PORT")?))
            }
            _ => Self::Unknown(raw),
        })
    }
}

impl EmitOption for DhcpOption<'_> {
    fn code(&self) -> OptionCode {
        match self {
            Self::ClientId(_) => OptionCode::CLIENTID,
            Self::ServerId(_) => OptionCode::SERVERID,
            Self::IaNa(_) => OptionCode::IA_NA,
            Self::IaTa(_) => OptionCode::IA_TA,
            Self::IaAddr(_) => OptionCode::IAADDR,
            Self::Oro(_) => OptionCode::ORO,
            Self::Preference(_) => OptionCode::PREFERENCE,
            Self::ElapsedTime(_) => OptionCode::ELAPSED_TIME,
            Self::RelayMsg(_) => OptionCode::RELAY_MSG,
            Self::Auth(_) => OptionCode::AUTH,
            Self::Unicast(_) => OptionCode::UNICAST,
            Self::StatusCode(_) => OptionCode::STATUS_CODE,
            Self::RapidCommit => OptionCode::RAPID_COMMIT,
            Self::UserClass(_) => OptionCode::USER_CLASS,
            Self::VendorClass(_) => OptionCode::VENDOR_CLASS,
            Self::VendorOpts(_) => OptionCode::VENDOR_OPTS,
            Self::InterfaceId(_) => OptionCode::INTERFACE_ID,
            Self::ReconfMsg(_) => OptionCode::RECONF_MSG,
            Self::ReconfAccept => OptionCode::RECONF_ACCEPT,
            Self::DnsServers(_) => OptionCode::DNS_SERVERS,
            Self::DomainList(_) => OptionCode::DOMAIN_LIST,
            Self::IaPd(_) => OptionCode::IA_PD,
            Self::IaPrefix(_) => OptionCode::IAPREFIX,
            Self::InformationRefreshTime(_) => OptionCode::INFORMATION_REFRESH_TIME,
            Self::RemoteId(_) => OptionCode::REMOTE_ID,
            Self::SubscriberId(_) => OptionCode::SUBSCRIBER_ID,
            Self::ClientFqdn(_) => OptionCode::CLIENT_FQDN,
            Self::Ero(_) => OptionCode::ERO,
            Self::ClientLinkLayerAddr(_) => OptionCode::CLIENT_LINKLAYER_ADDR,
            Self::SolMaxRt(_) => OptionCode::SOL_MAX_RT,
            Self::InfMaxRt(_) => OptionCode::INF_MAX_RT,
            Self::RelaySourcePort(_) => OptionCode::RELAY_SOURCE_PORT,
            Self::Unknown(raw) => raw.code,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Self::ClientId(d) | Self::ServerId(d) => d.len(),
            Self::IaNa(ia) => ia.data_len(),
            Self::IaTa(ia) => ia.data_len(),
            Self::IaAddr(a) => a.data_len(),
            Self::Oro(l) | Self::Ero(l) => 2 * l.len(),
            Self::Preference(_) | Self::ReconfMsg(_) => 1,
            Self::ElapsedTime(_) | Self::RelaySourcePort(_) => 2,
            Self::RelayMsg(p) => p.wire_len(),
            Self::Auth(a) => 11 + a.info.len(),
            Self::Unicast(_) => 16,
            Self::StatusCode(s) => s.data_len(),
            Self::RapidCommit | Self::ReconfAccept => 0,
            Self::UserClass(l) => l.as_bytes().len(),
            Self::VendorClass(v) => 4 + v.data.as_bytes().len(),
            Self::VendorOpts(v) => 4 + v.options.wire_len(),
            Self::InterfaceId(d) | Self::SubscriberId(d) => d.len(),
            Self::DnsServers(l) => 16 * l.len(),
            Self::DomainList(l) => l.as_bytes().len(),
            Self::IaPd(ia) => ia.data_len(),
            Self::IaPrefix(p) => p.data_len(),
            Self::InformationRefreshTime(_) | Self::SolMaxRt(_) | Self::InfMaxRt(_) => 4,
            Self::RemoteId(r) => 4 + r.remote_id.len(),
            Self::ClientFqdn(f) => 1 + f.name.as_bytes().len(),
            Self::ClientLinkLayerAddr(l) => 2 + l.addr.len(),
            Self::Unknown(raw) => raw.data.len(),
        }
    }

    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Self::ClientId(d) | Self::ServerId(d) => w.put(d.as_bytes()),
            Self::IaNa(ia) => ia.emit_data(w),
            Self::IaTa(ia) => ia.emit_data(w),
            Self::IaAddr(a) => a.emit_data(w),
            Self::Oro(l) | Self::Ero(l) => l.emit_data(w),
            Self::Preference(v) => w.u8(*v),
            Self::ReconfMsg(t) => w.u8(t.0),
            Self::ElapsedTime(v) | Self::RelaySourcePort(v) => w.u16(*v),
            Self::RelayMsg(p) => p.emit(w),
            Self::Auth(a) => {
                w.u8(a.protocol)?;
                w.u8(a.algorithm)?;
                w.u8(a.rdm)?;
                w.put(&a.replay_detection.to_be_bytes())?;
                w.put(a.info)
            }
            Self::Unicast(a) => w.ipv6(*a),
            Self::StatusCode(s) => s.emit_data(w),
            Self::RapidCommit | Self::ReconfAccept => Ok(()),
            Self::UserClass(l) => w.put(l.as_bytes()),
            Self::VendorClass(v) => {
                w.u32(v.enterprise)?;
                w.put(v.data.as_bytes())
            }
            Self::VendorOpts(v) => {
                w.u32(v.enterprise)?;
                v.options.emit(w)
            }
            Self::InterfaceId(d) | Self::SubscriberId(d) => w.put(d),
            Self::DnsServers(l) => l.emit_data(w),
            Self::DomainList(l) => w.put(l.as_bytes()),
            Self::IaPd(ia) => ia.emit_data(w),
            Self::IaPrefix(p) => p.emit_data(w),
            Self::InformationRefreshTime(v) | Self::SolMaxRt(v) | Self::InfMaxRt(v) => w.u32(*v),
            Self::RemoteId(r) => {
                w.u32(r.enterprise)?;
                w.put(r.remote_id)
            }
            Self::ClientFqdn(f) => {
                w.u8(f.flags)?;
                w.put(f.name.as_bytes())
            }
            Self::ClientLinkLayerAddr(l) => {
                w.u16(l.hw_type)?;
                w.put(l.addr)
            }
            Self::Unknown(raw) => w.put(raw.data),
        }
    }
}
