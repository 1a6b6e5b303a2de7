//! Relay agent messages (RFC 8415 §9) and relay chains (RFC 8415 §19).
//!
//! ```text
//! | msg-type (1) | hop-count (1) | link-address (16) | peer-address (16) | options ... |
//! ```

use core::fmt;
use core::net::Ipv6Addr;

use super::message::Message;
use super::option::{ClientLinkLayerAddr, DhcpOption, RemoteId};
use super::{MessageType, Packet, find_all};
use crate::codec::{Reader, Writer};
use crate::option::{OptionCode, Options, RawOption};
use crate::{Error, Result};

/// Most relay levels a [`RelayChain`] accepts. RFC 8415 §7.6 lowered HOP_COUNT_LIMIT to 8 for
/// relay agents, but RFC 3315 allowed 32 and a server must not refuse what a relay forwards.
pub const MAX_RELAY_DEPTH: usize = 32;

/// The contents of a Relay Message option (RFC 8415 §21.10): bytes received, or a message to
/// emit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RelayPayload<'a> {
    /// The encapsulated message as received (not validated by [`DhcpOption::parse`]).
    Bytes(&'a [u8]),
    /// A client/server message to emit.
    Message(&'a Message<'a>),
    /// A relay message to emit.
    Relay(&'a RelayMessage<'a>),
}

impl RelayPayload<'_> {
    /// Bytes the payload takes.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Message(m) => m.buffer_len(),
            Self::Relay(r) => r.buffer_len(),
        }
    }

    /// Writes the payload.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Self::Bytes(b) => w.put(b),
            Self::Message(m) => m.emit_to(w),
            Self::Relay(r) => r.emit_to(w),
        }
    }
}

/// A Relay-forward or Relay-reply message (RFC 8415 §9.1, §9.2).
///
/// Like [`Message`], the accessors look into parsed option blocks only and return the first
/// occurrence of an option that appears more than once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RelayMessage<'a> {
    /// RELAY-FORW or RELAY-REPL.
    pub msg_type: MessageType,
    /// Number of relay agents that have relayed this message.
    pub hop_count: u8,
    /// An address identifying the client's link, or `::` (RFC 8415 §9.1, RFC 6221).
    pub link_address: Ipv6Addr,
    /// The address of the client or relay the message came from.
    pub peer_address: Ipv6Addr,
    /// The options; a RELAY-FORW must hold a Relay Message option.
    pub options: Options<'a>,
}

impl<'a> RelayMessage<'a> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 34;

    /// Parses a relay message (type 12 or 13; any other type is [`Error::Malformed`]). The
    /// option block's TLV structure is validated; the Relay Message option is not parsed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let msg_type = MessageType(r.u8("relay header")?);
        if !msg_type.is_relay() {
            return Err(Error::Malformed(
                "client/server message parsed as relay message",
            ));
        }
        let hop_count = r.u8("relay header")?;
        let link_address = r.ipv6("relay header")?;
        let peer_address = r.ipv6("relay header")?;
        let options = Options::parse(r.take_rest())?;
        Ok(Self {
            msg_type,
            hop_count,
            link_address,
            peer_address,
            options,
        })
    }

    /// Bytes the message takes on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN + self.options.wire_len()
    }

    /// Writes the message at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        self.emit_to(&mut w)?;
        Ok(w.position())
    }

    /// Writes the message into `w`; a non-relay type is [`Error::Malformed`].
    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        if !self.msg_type.is_relay() {
            return Err(Error::Malformed("non-relay type in relay message"));
        }
        w.u8(self.msg_type.0)?;
        w.u8(self.hop_count)?;
        w.ipv6(self.link_address)?;
        w.ipv6(self.peer_address)?;
        self.options.emit(w)
    }

    /// The first option with `code`.
    pub fn option(&self, code: OptionCode) -> Option<RawOption<'a>> {
        find_all(&self.options, code).next()
    }

    /// How many options with `code` the message holds.
    pub fn count(&self, code: OptionCode) -> usize {
        find_all(&self.options, code).count()
    }

    /// The first option with `code`, decoded.
    pub fn typed(&self, code: OptionCode) -> Result<Option<DhcpOption<'a>>> {
        self.option(code).map(DhcpOption::parse).transpose()
    }

    /// The Relay Message option's payload (RFC 8415 §21.10), undecoded.
    pub fn relay_msg(&self) -> Option<&'a [u8]> {
        self.option(OptionCode::RELAY_MSG).map(|o| o.data)
    }

    /// The Interface-Id option (RFC 8415 §21.18), which the server must echo.
    pub fn interface_id(&self) -> Option<&'a [u8]> {
        self.option(OptionCode::INTERFACE_ID).map(|o| o.data)
    }

    /// The Remote-ID option (RFC 4649 §3).
    pub fn remote_id(&self) -> Result<Option<RemoteId<'a>>> {
        match self.typed(OptionCode::REMOTE_ID)? {
            Some(DhcpOption::RemoteId(r)) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// The Subscriber-ID option (RFC 4580 §2).
    pub fn subscriber_id(&self) -> Result<Option<&'a [u8]>> {
        match self.typed(OptionCode::SUBSCRIBER_ID)? {
            Some(DhcpOption::SubscriberId(s)) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// The Client Link-Layer Address option (RFC 6939 §4).
    pub fn client_link_layer_addr(&self) -> Result<Option<ClientLinkLayerAddr<'a>>> {
        match self.typed(OptionCode::CLIENT_LINKLAYER_ADDR)? {
            Some(DhcpOption::ClientLinkLayerAddr(l)) => Ok(Some(l)),
            _ => Ok(None),
        }
    }

    /// The Relay Source Port option (RFC 8357 §5.2).
    pub fn relay_source_port(&self) -> Result<Option<u16>> {
        match self.typed(OptionCode::RELAY_SOURCE_PORT)? {
            Some(DhcpOption::RelaySourcePort(p)) => Ok(Some(p)),
            _ => Ok(None),
        }
    }
}

/// A relay chain (RFC 8415 §19): the relay messages wrapping a client message, outermost
/// first, decoded without allocation.
///
/// Every level must have the type of the outermost one (a RELAY-FORW chain holds only
/// RELAY-FORW levels); when a level holds more than one Relay Message option, the first is
/// followed.
#[derive(Clone)]
pub struct RelayChain<'a> {
    levels: [RelayMessage<'a>; MAX_RELAY_DEPTH],
    depth: usize,
    inner: Message<'a>,
}

impl<'a> RelayChain<'a> {
    /// Parses a relay message and everything it encapsulates, down to the client message.
    ///
    /// Errors: not a relay message, or a level of another relay type, or a level without a
    /// Relay Message option: [`Error::Malformed`]; more than [`MAX_RELAY_DEPTH`] levels:
    /// [`Error::TooDeep`]; any level or the client message failing to parse: its error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let placeholder = RelayMessage {
            msg_type: MessageType::RELAY_FORW,
            hop_count: 0,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: Ipv6Addr::UNSPECIFIED,
            options: Options::default(),
        };
        let mut levels = [placeholder; MAX_RELAY_DEPTH];
        let outer = RelayMessage::parse(bytes)?;
        let chain_type = outer.msg_type;
        let mut depth = 0;
        let mut next = Packet::Relay(outer);
        loop {
            match next {
                Packet::Relay(level) => {
                    if level.msg_type != chain_type {
                        return Err(Error::Malformed(
                            "relay chain mixes RELAY-FORW and RELAY-REPL",
                        ));
                    }
                    let slot = levels.get_mut(depth).ok_or(Error::TooDeep)?;
                    *slot = level;
                    depth += 1;
                    let payload = level
                        .relay_msg()
                        .ok_or(Error::Malformed("relay message without RELAY_MSG"))?;
                    next = Packet::parse(payload)?;
                }
                Packet::Client(inner) => {
                    return Ok(Self {
                        levels,
                        depth,
                        inner,
                    });
                }
            }
        }
    }

    /// The relay levels, outermost (the one the server received) first. Never empty.
    pub fn levels(&self) -> &[RelayMessage<'a>] {
        self.levels.get(..self.depth).unwrap_or_default()
    }

    /// The client message at the bottom of the chain.
    pub const fn inner(&self) -> Message<'a> {
        self.inner
    }

    /// The relay closest to the client.
    pub fn innermost(&self) -> &RelayMessage<'a> {
        // `depth` is at least 1 after `parse`; the fallback is never taken.
        self.levels().last().unwrap_or(&self.levels[0])
    }

    /// The link-address identifying the client's link: that of the innermost level whose
    /// link-address is not `::` (RFC 8415 §13.1: the server must ignore zero link-addresses
    /// (RFC 6221) and the most encapsulated relay has the most useful value). `None` if every
    /// level has `::` (e.g. a lightweight relay alone).
    pub fn innermost_link_address(&self) -> Option<Ipv6Addr> {
        self.levels()
            .iter()
            .rev()
            .map(|l| l.link_address)
            .find(|a| !a.is_unspecified())
    }

    /// The Interface-Id option of the innermost level (the relay closest to the client), if
    /// that level has one. Outer levels' Interface-Ids are not consulted.
    pub fn interface_id_innermost(&self) -> Option<&'a [u8]> {
        self.innermost().interface_id()
    }

    /// Per-level bytes of the RELAY-REPL header, echoed Interface-Id and RELAY_MSG header.
    fn overhead(level: &RelayMessage<'_>) -> usize {
        RelayMessage::HEADER_LEN + level.interface_id().map_or(0, |i| 4 + i.len()) + 4
    }

    /// Length of the RELAY-REPL chain [`RelayChain::emit_reply`] writes around `reply`.
    pub fn reply_len(&self, reply: &Message<'_>) -> usize {
        self.levels().iter().map(Self::overhead).sum::<usize>() + reply.buffer_len()
    }

    /// Bytes of RELAY-REPL headers (with echoed Interface-Ids and RELAY_MSG option headers)
    /// that [`RelayChain::emit_reply_headers`] writes in front of the inner reply.
    pub fn reply_header_len(&self) -> usize {
        self.levels().iter().map(Self::overhead).sum()
    }

    /// Writes, at the start of `buf`, the RELAY-REPL levels (RFC 8415 §19.3) for an inner reply
    /// of `inner_len` bytes that the caller has written (or will write) right after them, at
    /// `buf[reply_header_len()..]`: so a server can build its reply in place, once. Each level
    /// copies the hop-count, link-address and peer-address of its RELAY-FORW and echoes its
    /// Interface-Id (RFC 8415 §21.18). Returns [`RelayChain::reply_header_len`]. A level whose
    /// payload would exceed 65535 bytes is [`Error::Malformed`]; a short `buf` is
    /// [`Error::BufferTooSmall`].
    pub fn emit_reply_headers(&self, inner_len: usize, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        let mut remaining = self.reply_header_len() + inner_len;
        for level in self.levels() {
            w.u8(MessageType::RELAY_REPL.0)?;
            w.u8(level.hop_count)?;
            w.ipv6(level.link_address)?;
            w.ipv6(level.peer_address)?;
            if let Some(interface_id) = level.interface_id() {
                w.option(OptionCode::INTERFACE_ID.0, |w| w.put(interface_id))?;
            }
            remaining = remaining.saturating_sub(Self::overhead(level));
            let len = u16::try_from(remaining)
                .map_err(|_| Error::Malformed("RELAY_MSG over 65535 bytes"))?;
            w.u16(OptionCode::RELAY_MSG.0)?;
            w.u16(len)?;
        }
        Ok(w.position())
    }

    /// Writes `reply` wrapped in one RELAY-REPL per level (RFC 8415 §19.3): each level copies
    /// the hop-count, link-address and peer-address of its RELAY-FORW and echoes its
    /// Interface-Id option (RFC 8415 §21.18); the innermost Relay Message option carries
    /// `reply`. Returns the bytes written ([`RelayChain::reply_len`]). A level whose payload
    /// would exceed 65535 bytes is [`Error::Malformed`].
    pub fn emit_reply(&self, reply: &Message<'_>, buf: &mut [u8]) -> Result<usize> {
        let header = self.emit_reply_headers(reply.buffer_len(), buf)?;
        let rest = buf.get_mut(header..).ok_or(Error::BufferTooSmall)?;
        let mut w = Writer::new(rest);
        reply.emit_to(&mut w)?;
        Ok(header + w.position())
    }
}

impl fmt::Debug for RelayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayChain")
            .field("levels", &self.levels())
            .field("inner", &self.inner)
            .finish()
    }
}
