//! A datagram received on port 547, parsed once (RFC 8415 §8, §9).
//!
//! The datapath parses a datagram into an [`Inbound`] to find its shard ([`Inbound::shard`])
//! and hands the same value to [`crate::Engine::handle_inbound`]: a relayed request's chain is
//! decoded once, not once per consumer.

use tandem_wire::dhcp::MessageType;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::{RelayChain, RelayMessage};

use crate::counters::DropReason;
use crate::shard::duid_hash;

/// What a datagram is, once parsed.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one datagram; boxing the chain would allocate per packet"
)]
pub(crate) enum Parsed<'a> {
    /// A client message sent to the server directly.
    Direct(Message<'a>),
    /// A RELAY-FORW chain with the client message at its bottom (RFC 8415 §19).
    Relayed(RelayChain<'a>),
}

/// A datagram received on port 547, parsed once: a client message, a RELAY-FORW chain, or
/// the reason it will be dropped.
#[derive(Clone, Debug)]
pub struct Inbound<'a> {
    /// The type of the outermost message, if its header parsed (for the receive counters).
    outer_type: Option<MessageType>,
    parsed: Result<Parsed<'a>, DropReason>,
}

impl<'a> Inbound<'a> {
    /// Parses `payload` (a UDP payload received on port 547). Never fails: a datagram that is
    /// not a client message or a RELAY-FORW chain carries its [`DropReason`] (malformed, or a
    /// RELAY-REPL, which only servers send, RFC 8415 §16.14).
    pub fn parse(payload: &'a [u8]) -> Self {
        let Some(&first) = payload.first() else {
            return Self {
                outer_type: None,
                parsed: Err(DropReason::Malformed),
            };
        };
        if !MessageType(first).is_relay() {
            return match Message::parse(payload) {
                Ok(msg) => Self {
                    outer_type: Some(msg.msg_type),
                    parsed: Ok(Parsed::Direct(msg)),
                },
                Err(_) => Self {
                    outer_type: None,
                    parsed: Err(DropReason::Malformed),
                },
            };
        }
        match RelayChain::parse(payload) {
            Ok(chain) => {
                let t = chain.levels().first().map(|l| l.msg_type);
                let parsed = if t == Some(MessageType::RELAY_REPL) {
                    Err(DropReason::ServerMessage)
                } else {
                    Ok(Parsed::Relayed(chain))
                };
                Self {
                    outer_type: t,
                    parsed,
                }
            }
            Err(_) => {
                // Only on this error path is the outer header looked at again, to count it.
                let t = RelayMessage::parse(payload).ok().map(|r| r.msg_type);
                let reason = if t == Some(MessageType::RELAY_REPL) {
                    DropReason::ServerMessage
                } else {
                    DropReason::Malformed
                };
                Self {
                    outer_type: t,
                    parsed: Err(reason),
                }
            }
        }
    }

    /// The client message: the datagram itself, or the innermost message of its relay chain.
    pub fn client_message(&self) -> Option<Message<'a>> {
        match &self.parsed {
            Ok(Parsed::Direct(m)) => Some(*m),
            Ok(Parsed::Relayed(c)) => Some(c.inner()),
            Err(_) => None,
        }
    }

    /// The client's DUID (the Client Identifier of the client message, RFC 8415 §21.2), if
    /// present and well-formed.
    pub fn client_duid(&self) -> Option<&'a [u8]> {
        Some(self.client_message()?.client_id().ok()??.as_bytes())
    }

    /// The shard (`0..shards`) serving this datagram: [`duid_hash`] of the client's DUID mod
    /// `shards`, `Some(0)` without looking when `shards` ≤ 1, and `None` when there is no
    /// client DUID (see [`crate::shard_of`]).
    pub fn shard(&self, shards: u32) -> Option<u32> {
        if shards <= 1 {
            return Some(0);
        }
        let hash = duid_hash(self.client_duid()?);
        u32::try_from(hash % u64::from(shards)).ok()
    }

    pub(crate) const fn outer_type(&self) -> Option<MessageType> {
        self.outer_type
    }

    pub(crate) fn parsed(&self) -> Result<&Parsed<'a>, DropReason> {
        self.parsed.as_ref().map_err(|r| *r)
    }
}
