//! Client/server messages (RFC 8415 §8).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    msg-type   |               transaction-id                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! .                            options                            .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::option::{ClientFqdn, CodeList, DhcpOption};
use super::{Duid, IaNa, IaPd, IaTa, MessageType, StatusCodeOption, find_all};
use crate::codec::{Reader, Writer};
use crate::option::{OptionCode, OptionIter, Options, RawOption};
use crate::{Error, Result};

/// A DHCPv6 client/server message (RFC 8415 §8): any message type except RELAY-FORW and
/// RELAY-REPL, whose header differs (see [`super::relay::RelayMessage`]). Unknown types parse:
/// deciding what to do with them is the server's business.
///
/// The accessors look into parsed option blocks only (for a built message, whose options are
/// an [`Options::List`], they find nothing) and never allocate. RFC 8415 §21 forbids repeating
/// most options at the top level; when a singleton appears more than once the accessors return
/// the **first** occurrence — use [`Message::count`] to detect (and drop) such messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Message<'a> {
    /// The message type.
    pub msg_type: MessageType,
    /// The 24-bit transaction id (emitting a value over `0xff_ffff` fails).
    pub transaction_id: u32,
    /// The options.
    pub options: Options<'a>,
}

impl<'a> Message<'a> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 4;

    /// Parses a client/server message; the option block's TLV structure is validated (the
    /// contents of each option are decoded on demand by the accessors).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let msg_type = MessageType(r.u8("message header")?);
        if msg_type.is_relay() {
            return Err(Error::Malformed(
                "relay message parsed as client/server message",
            ));
        }
        let transaction_id = r.u24("message header")?;
        Ok(Self {
            msg_type,
            transaction_id,
            options: Options::parse(r.take_rest())?,
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

    /// Writes the message into `w`. Relay types and transaction ids over 24 bits are
    /// [`Error::Malformed`].
    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        if self.msg_type.is_relay() {
            return Err(Error::Malformed("relay type in client/server message"));
        }
        if self.transaction_id > 0xff_ffff {
            return Err(Error::Malformed("transaction id over 24 bits"));
        }
        w.u8(self.msg_type.0)?;
        w.u24(self.transaction_id)?;
        self.options.emit(w)
    }

    /// The first option with `code`.
    pub fn option(&self, code: OptionCode) -> Option<RawOption<'a>> {
        find_all(&self.options, code).next()
    }

    /// All options with `code`, in wire order.
    pub fn options_with(&self, code: OptionCode) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
        find_all(&self.options, code)
    }

    /// How many options with `code` the message holds.
    pub fn count(&self, code: OptionCode) -> usize {
        find_all(&self.options, code).count()
    }

    /// Every option, decoded.
    pub fn typed_options(&self) -> impl Iterator<Item = Result<DhcpOption<'a>>> + use<'a> {
        let bytes = self.options.raw().map_or(&[][..], |r| r.as_bytes());
        OptionIter::new(bytes).map(|o| o.and_then(DhcpOption::parse))
    }

    fn first<T>(&self, code: OptionCode, f: fn(&'a [u8]) -> Result<T>) -> Result<Option<T>> {
        self.option(code).map(|o| f(o.data)).transpose()
    }

    /// The Client Identifier (RFC 8415 §21.2).
    pub fn client_id(&self) -> Result<Option<Duid<'a>>> {
        self.first(OptionCode::CLIENTID, Duid::parse)
    }

    /// The Server Identifier (RFC 8415 §21.3).
    pub fn server_id(&self) -> Result<Option<Duid<'a>>> {
        self.first(OptionCode::SERVERID, Duid::parse)
    }

    /// The IA_NA options (RFC 8415 §21.4), in wire order.
    pub fn ia_nas(&self) -> impl Iterator<Item = Result<IaNa<'a>>> + use<'a> {
        find_all(&self.options, OptionCode::IA_NA).map(|o| IaNa::parse(o.data))
    }

    /// The IA_TA options (RFC 8415 §21.5, obsolete), in wire order.
    pub fn ia_tas(&self) -> impl Iterator<Item = Result<IaTa<'a>>> + use<'a> {
        find_all(&self.options, OptionCode::IA_TA).map(|o| IaTa::parse(o.data))
    }

    /// The IA_PD options (RFC 8415 §21.21), in wire order.
    pub fn ia_pds(&self) -> impl Iterator<Item = Result<IaPd<'a>>> + use<'a> {
        find_all(&self.options, OptionCode::IA_PD).map(|o| IaPd::parse(o.data))
    }

    /// The Option Request option (RFC 8415 §21.7).
    pub fn oro(&self) -> Result<Option<CodeList<'a>>> {
        self.first(OptionCode::ORO, |d| CodeList::parse(d, "ORO"))
    }

    /// The Elapsed Time option (RFC 8415 §21.9), in hundredths of a second.
    pub fn elapsed_time(&self) -> Result<Option<u16>> {
        self.first(OptionCode::ELAPSED_TIME, |d| {
            d.try_into()
                .map(u16::from_be_bytes)
                .map_err(|_| Error::Malformed("ELAPSED_TIME"))
        })
    }

    /// `true` if a Rapid Commit option (RFC 8415 §21.14) is present, whatever its length (a
    /// non-empty one is reported by [`DhcpOption::parse`]).
    pub fn rapid_commit(&self) -> bool {
        self.option(OptionCode::RAPID_COMMIT).is_some()
    }

    /// `true` if a Reconfigure Accept option (RFC 8415 §21.20) is present.
    pub fn reconf_accept(&self) -> bool {
        self.option(OptionCode::RECONF_ACCEPT).is_some()
    }

    /// The top-level Status Code option (RFC 8415 §21.13).
    pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
        self.first(OptionCode::STATUS_CODE, StatusCodeOption::parse)
    }

    /// The Client FQDN option (RFC 4704 §4).
    pub fn client_fqdn(&self) -> Result<Option<ClientFqdn<'a>>> {
        self.first(OptionCode::CLIENT_FQDN, ClientFqdn::parse)
    }

    /// The first option with `code`, decoded.
    pub fn typed(&self, code: OptionCode) -> Result<Option<DhcpOption<'a>>> {
        self.option(code).map(DhcpOption::parse).transpose()
    }
}
