//! DHCPv6 messages and options: RFC 8415, with the changes of RFC 9915 (IA_TA, Server Unicast
//! and UseMulticast obsolete: parsed, never produced by Tandem).

pub mod domain;
mod duid;
mod ia;
pub mod message;
pub mod option;
pub mod relay;
mod status;

pub use duid::{Duid, DuidEn, DuidLl, DuidLlt, DuidType, MAX_DUID_CONTENTS, MAX_DUID_LEN};
pub use ia::{IaAddr, IaNa, IaPd, IaPrefix, IaTa};
pub use status::StatusCodeOption;

use crate::option::{OptionCode, OptionIter, Options, RawOption};
use crate::registry::registry;
use crate::{Error, Result};
use message::Message;
use relay::RelayMessage;

/// Any DHCPv6 message a server receives on port 547, told apart by its first byte: a
/// client/server message (RFC 8415 §8) or a relay message (RFC 8415 §9).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Packet<'a> {
    /// Any type but RELAY-FORW and RELAY-REPL.
    Client(Message<'a>),
    /// RELAY-FORW or RELAY-REPL.
    Relay(RelayMessage<'a>),
}

impl<'a> Packet<'a> {
    /// Parses a message of either kind.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        match bytes.first() {
            None => Err(Error::Truncated("message header")),
            Some(&t) if MessageType(t).is_relay() => RelayMessage::parse(bytes).map(Self::Relay),
            Some(_) => Message::parse(bytes).map(Self::Client),
        }
    }

    /// The message type.
    pub const fn msg_type(&self) -> MessageType {
        match self {
            Self::Client(m) => m.msg_type,
            Self::Relay(r) => r.msg_type,
        }
    }

    /// The options.
    pub const fn options(&self) -> Options<'a> {
        match self {
            Self::Client(m) => m.options,
            Self::Relay(r) => r.options,
        }
    }

    /// Bytes the message takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Client(m) => m.buffer_len(),
            Self::Relay(r) => r.buffer_len(),
        }
    }

    /// Writes the message at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Self::Client(m) => m.emit(buf),
            Self::Relay(r) => r.emit(buf),
        }
    }
}

/// The options with `code` in a parsed block, borrowing the packet rather than the block value
/// (so the iterator can outlive a temporary `Options`). A built (`List`) block yields nothing.
pub(crate) fn find_all<'a>(
    options: &Options<'a>,
    code: OptionCode,
) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
    let bytes = options.raw().map_or(&[][..], |r| r.as_bytes());
    // The block was TLV-validated when parsed, so `OptionIter` yields no `Err` here.
    OptionIter::new(bytes)
        .filter_map(core::result::Result::ok)
        .filter(move |o| o.code == code)
}

registry! {
    /// IANA "Message Types" (DHCPv6 Parameters), including the RFC 8156 failover messages
    /// (24–35) and the leasequery messages that share the numbering.
    pub struct MessageType(u8) {
        SOLICIT = 1, ADVERTISE = 2, REQUEST = 3, CONFIRM = 4, RENEW = 5, REBIND = 6, REPLY = 7,
        RELEASE = 8, DECLINE = 9, RECONFIGURE = 10, INFORMATION_REQUEST = 11, RELAY_FORW = 12,
        RELAY_REPL = 13, LEASEQUERY = 14, LEASEQUERY_REPLY = 15, LEASEQUERY_DONE = 16,
        LEASEQUERY_DATA = 17, RECONFIGURE_REQUEST = 18, RECONFIGURE_REPLY = 19,
        DHCPV4_QUERY = 20, DHCPV4_RESPONSE = 21, ACTIVELEASEQUERY = 22, STARTTLS = 23,
        BNDUPD = 24, BNDREPLY = 25, POOLREQ = 26, POOLRESP = 27, UPDREQ = 28, UPDREQALL = 29,
        UPDDONE = 30, CONNECT = 31, CONNECTREPLY = 32, DISCONNECT = 33, STATE = 34,
        CONTACT = 35,
    }
}

impl MessageType {
    /// `true` for RELAY-FORW and RELAY-REPL, which have the relay header (RFC 8415 §9).
    pub const fn is_relay(self) -> bool {
        matches!(self.0, 12 | 13)
    }

    /// `true` for the twelve RFC 8156 failover messages (BNDUPD 24 … CONTACT 35).
    pub const fn is_failover(self) -> bool {
        matches!(self.0, 24..=35)
    }
}

registry! {
    /// IANA "Status Codes" (DHCPv6 Parameters), RFC 8415 §21.13 and the leasequery, active
    /// leasequery and failover (RFC 8156 §5.6) additions.
    pub struct StatusCode(u16) {
        SUCCESS = 0, UNSPEC_FAIL = 1, NO_ADDRS_AVAIL = 2, NO_BINDING = 3, NOT_ON_LINK = 4,
        USE_MULTICAST = 5, NO_PREFIX_AVAIL = 6, UNKNOWN_QUERY_TYPE = 7, MALFORMED_QUERY = 8,
        NOT_CONFIGURED = 9, NOT_ALLOWED = 10, QUERY_TERMINATED = 11, DATA_MISSING = 12,
        CATCH_UP_COMPLETE = 13, NOT_SUPPORTED = 14, TLS_CONNECTION_REFUSED = 15,
        ADDRESS_IN_USE = 16, CONFIGURATION_CONFLICT = 17, MISSING_BINDING_INFORMATION = 18,
        OUTDATED_BINDING_INFORMATION = 19, SERVER_SHUTTING_DOWN = 20,
        DNS_UPDATE_NOT_SUPPORTED = 21, EXCESSIVE_TIME_SKEW = 22,
    }
}
