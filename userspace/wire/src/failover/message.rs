//! The failover message header (RFC 8156 §5.2) and the two plain DHCPv6 messages that share the
//! link while TLS is set up.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    msg-type   |               transaction-id                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           sent-time                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! .                            options                            .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The exception: STARTTLS (23) and its REPLY (7) are ordinary RFC 8415 §8 messages (4-byte
//! header, no sent-time), as RFC 8156 §6.1/§10 reuse them from RFC 7653 §6.2.2/§8.2 (see the
//! digest §14 item 11). [`FailoverMessage::parse`] dispatches on the message type.

use super::frame::{FRAME_HEADER_LEN, MAX_MESSAGE_LEN, emit_frame_header};
use super::time::FailoverTime;
use crate::codec::{Reader, Writer};
use crate::dhcp::MessageType;
use crate::option::Options;
use crate::{Error, Result};

/// Header length of the twelve failover messages (type, transaction-id, sent-time).
pub const FAILOVER_HEADER_LEN: usize = 8;

/// Header length of STARTTLS and REPLY on the failover link (type, transaction-id).
pub const PLAIN_HEADER_LEN: usize = 4;

/// Largest transaction-id (24 bits, RFC 8156 §5.4).
pub const MAX_TRANSACTION_ID: u32 = 0x00ff_ffff;

/// What header a message type has on the failover link, or `Unsupported` for a type that has
/// no business there.
fn has_sent_time(msg_type: MessageType) -> Result<bool> {
    if msg_type.is_failover() {
        Ok(true)
    } else if msg_type == MessageType::STARTTLS || msg_type == MessageType::REPLY {
        Ok(false)
    } else {
        Err(Error::Unsupported("message type on the failover link"))
    }
}

/// One message of the failover link: a failover message (BNDUPD 24 … CONTACT 35) with its
/// sent-time, or STARTTLS/REPLY without. The options are validated as TLVs only; their contents
/// are decoded by [`super::Failover`] or on demand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailoverMessage<'a> {
    /// The message type.
    pub msg_type: MessageType,
    /// The 24-bit transaction-id.
    pub transaction_id: u32,
    /// The sender's clock when sending (failover messages); `None` for STARTTLS and REPLY.
    pub sent_time: Option<FailoverTime>,
    /// The options.
    pub options: Options<'a>,
}

impl<'a> FailoverMessage<'a> {
    /// Parses one message (the bytes inside a frame, without the 2-octet prefix).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let msg_type = MessageType(r.u8("failover message header")?);
        let sent = has_sent_time(msg_type)?;
        let transaction_id = r.u24("failover message header")?;
        let sent_time = if sent {
            Some(FailoverTime(r.u32("failover message header")?))
        } else {
            None
        };
        Ok(Self {
            msg_type,
            transaction_id,
            sent_time,
            options: Options::parse(r.take_rest())?,
        })
    }

    /// Header length of this message: 8, or 4 without a sent-time.
    pub const fn header_len(&self) -> usize {
        if self.sent_time.is_some() {
            FAILOVER_HEADER_LEN
        } else {
            PLAIN_HEADER_LEN
        }
    }

    /// Bytes the message takes (without the frame prefix).
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.options.wire_len()
    }

    /// Bytes the message takes with its 2-octet frame prefix.
    pub fn framed_len(&self) -> usize {
        FRAME_HEADER_LEN + self.buffer_len()
    }

    /// Checks what a peer could not parse back: a sent-time exactly on the failover types, a
    /// 24-bit transaction-id, and a size that fits the 16-bit frame length.
    fn check(&self) -> Result<()> {
        if has_sent_time(self.msg_type)? != self.sent_time.is_some() {
            return Err(Error::Malformed(
                "sent-time does not match the message type",
            ));
        }
        if self.transaction_id > MAX_TRANSACTION_ID {
            return Err(Error::Malformed("transaction-id over 24 bits"));
        }
        if self.buffer_len() > MAX_MESSAGE_LEN {
            return Err(Error::Malformed(
                "failover message longer than 65535 octets",
            ));
        }
        Ok(())
    }

    /// Writes the message at the start of `buf`; returns its length ([`Self::buffer_len`]).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        let mut w = Writer::new(buf);
        self.emit_to(&mut w)?;
        Ok(w.position())
    }

    /// Writes the 2-octet frame prefix (RFC 5460 §5.1) then the message; returns
    /// [`Self::framed_len`].
    pub fn emit_framed(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        let len = self.buffer_len();
        if buf.len() < FRAME_HEADER_LEN + len {
            return Err(Error::BufferTooSmall);
        }
        emit_frame_header(len, buf)?;
        let mut w = Writer::new(
            buf.get_mut(FRAME_HEADER_LEN..)
                .ok_or(Error::BufferTooSmall)?,
        );
        self.emit_to(&mut w)?;
        Ok(FRAME_HEADER_LEN + w.position())
    }

    fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.msg_type.0)?;
        w.u24(self.transaction_id)?;
        if let Some(t) = self.sent_time {
            w.u32(t.0)?;
        }
        self.options.emit(w)
    }
}
