//! Typed failover messages (RFC 8156 §5.3): [`Failover`] decodes a [`FailoverMessage`] and
//! checks the options each message requires (§6.1.1–§6.1.2, §6.3, §7.4, §7.6), and builds one
//! from typed fields without allocation.
//!
//! The typed layer is canonical: parsing ignores options a message does not define, and
//! emitting writes the defined ones in RFC order. Container options (OPTION_CLIENT_DATA, a bare
//! OPTION_IAPREFIX) are kept as parsed and re-emitted verbatim. For byte-exact relaying of a
//! whole message, emit the [`FailoverMessage`] instead.

use super::client_data::{BindingInfo, ClientData, unique};
use super::message::FailoverMessage;
use super::option::{
    ConnectFlags, KeepaliveTime, MaxUnackedBndupd, Mclt, OptionList, PartnerDownTime,
    ProtocolVersion, RelationshipName, ServerFlags, ServerState, StartTimeOfState, find_all,
};
use super::time::FailoverTime;
use crate::codec::Writer;
use crate::dhcp::{IaPrefix, MessageType, StatusCode, StatusCodeOption};
use crate::option::{EmitOption, OptionCode, Options};
use crate::{Error, Result};

/// Most options a typed message emits at top level (CONNECT: six).
pub const MAX_TOP_LEVEL_OPTIONS: usize = 6;

/// The single, mandatory option `code` of `options`, decoded with `parse`; absent is
/// [`Error::Malformed`]`(missing)`.
fn required<'a, T>(
    options: &Options<'a>,
    code: OptionCode,
    duplicate: &'static str,
    missing: &'static str,
    parse: impl FnOnce(&'a [u8]) -> Result<T>,
) -> Result<T> {
    unique(options, code, duplicate, parse)?.ok_or(Error::Malformed(missing))
}

/// The single Status Code option of `options`.
fn status<'a>(options: &Options<'a>) -> Result<Option<StatusCodeOption<'a>>> {
    unique(
        options,
        OptionCode::STATUS_CODE,
        "duplicate OPTION_STATUS_CODE",
        StatusCodeOption::parse,
    )
}

/// What a BNDUPD or BNDREPLY carries (RFC 8156 §7.4, §7.6): one client's binding, or one
/// delegable prefix not delegated to any client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BindingPayload<'a> {
    /// OPTION_CLIENT_DATA.
    ClientData(ClientData<'a>),
    /// A bare OPTION_IAPREFIX (its binding options: [`BindingPayload::prefix_info`]).
    Prefix(IaPrefix<'a>),
}

impl<'a> BindingPayload<'a> {
    /// Finds the payload of a BNDUPD/BNDREPLY: at most one OPTION_CLIENT_DATA or one
    /// OPTION_IAPREFIX, never both (RFC 8156 §5.3.1, §7.5.3). `errs` names the message.
    fn find(options: &Options<'a>, errs: &PayloadErrors) -> Result<Option<Self>> {
        let mut cd = find_all(options, OptionCode::CLIENT_DATA);
        let mut pfx = find_all(options, OptionCode::IAPREFIX);
        let (cd1, cd2, pfx1, pfx2) = (cd.next(), cd.next(), pfx.next(), pfx.next());
        if cd2.is_some() {
            return Err(Error::Malformed(errs.two_client_data));
        }
        if pfx2.is_some() {
            return Err(Error::Malformed(errs.two_prefixes));
        }
        match (cd1, pfx1) {
            (Some(_), Some(_)) => Err(Error::Malformed(errs.both)),
            (Some(cd), None) => Ok(Some(Self::ClientData(ClientData::parse(cd.data)?))),
            (None, Some(p)) => {
                let prefix = IaPrefix::parse(p.data)?;
                BindingInfo::parse(&prefix.options)?;
                Ok(Some(Self::Prefix(prefix)))
            }
            (None, None) => Ok(None),
        }
    }

    /// The binding options of a bare prefix; `None` for client data.
    pub fn prefix_info(&self) -> Option<Result<BindingInfo<'a>>> {
        match self {
            Self::ClientData(_) => None,
            Self::Prefix(p) => Some(BindingInfo::parse(&p.options)),
        }
    }

    fn as_emit(&self) -> &dyn EmitOption {
        match self {
            Self::ClientData(cd) => cd,
            Self::Prefix(p) => p,
        }
    }
}

impl EmitOption for BindingPayload<'_> {
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

/// Error texts for [`BindingPayload::find`], per message.
struct PayloadErrors {
    two_client_data: &'static str,
    two_prefixes: &'static str,
    both: &'static str,
    none: &'static str,
}

const BNDUPD_ERRORS: PayloadErrors = PayloadErrors {
    two_client_data: "BNDUPD with more than one OPTION_CLIENT_DATA",
    two_prefixes: "BNDUPD with more than one OPTION_IAPREFIX",
    both: "BNDUPD with both OPTION_CLIENT_DATA and OPTION_IAPREFIX",
    none: "BNDUPD without OPTION_CLIENT_DATA or OPTION_IAPREFIX",
};

const BNDREPLY_ERRORS: PayloadErrors = PayloadErrors {
    two_client_data: "BNDREPLY with more than one OPTION_CLIENT_DATA",
    two_prefixes: "BNDREPLY with more than one OPTION_IAPREFIX",
    both: "BNDREPLY with both OPTION_CLIENT_DATA and OPTION_IAPREFIX",
    none: "BNDREPLY without OPTION_CLIENT_DATA or OPTION_IAPREFIX",
};

/// BNDUPD (24), RFC 8156 §5.3.1, §7.4: exactly one OPTION_CLIENT_DATA or one bare
/// OPTION_IAPREFIX, with every option §7.4 says MUST appear.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bndupd<'a> {
    /// The binding being updated.
    pub payload: BindingPayload<'a>,
}

impl<'a> Bndupd<'a> {
    /// Decodes and checks the options of a BNDUPD.
    pub fn parse(options: &Options<'a>) -> Result<Self> {
        let payload = BindingPayload::find(options, &BNDUPD_ERRORS)?
            .ok_or(Error::Malformed(BNDUPD_ERRORS.none))?;
        match &payload {
            BindingPayload::ClientData(cd) => cd.check_update()?,
            BindingPayload::Prefix(p) => {
                BindingInfo::parse(&p.options)?.check_bare_prefix_update()?
            }
        }
        Ok(Self { payload })
    }
}

/// BNDREPLY (25), RFC 8156 §5.3.2, §7.6: the OPTION_CLIENT_DATA or OPTION_IAPREFIX of the
/// BNDUPD it answers, with Status Codes at the level that is rejected.
///
/// Extension: a BNDREPLY with only a top-level Status Code (no payload) is accepted, for
/// answering a BNDUPD whose payload could not be decoded at all (MissingBindingInformation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bndreply<'a> {
    /// The echoed binding, with the partner's verdicts.
    pub payload: Option<BindingPayload<'a>>,
    /// A message-level Status Code (only without a payload, see above).
    pub status: Option<StatusCodeOption<'a>>,
}

impl<'a> Bndreply<'a> {
    /// Decodes and checks the options of a BNDREPLY.
    pub fn parse(options: &Options<'a>) -> Result<Self> {
        let payload = BindingPayload::find(options, &BNDREPLY_ERRORS)?;
        let status = status(options)?;
        match &payload {
            Some(BindingPayload::ClientData(cd)) => cd.check_reply()?,
            Some(BindingPayload::Prefix(_)) => {}
            None if status.is_some() => {}
            None => return Err(Error::Malformed(BNDREPLY_ERRORS.none)),
        }
        Ok(Self { payload, status })
    }
}

/// The parameters of CONNECT (RFC 8156 §6.1.1) and of an accepting CONNECTREPLY (§6.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectParams<'a> {
    /// OPTION_F_PROTOCOL_VERSION: the version the sender uses.
    pub protocol_version: ProtocolVersion,
    /// OPTION_F_MCLT.
    pub mclt: Mclt,
    /// OPTION_F_KEEPALIVE_TIME: the sender's FO_KEEPALIVE_TIME.
    pub keepalive_time: KeepaliveTime,
    /// OPTION_F_MAX_UNACKED_BNDUPD: the sender's receive window.
    pub max_unacked_bndupd: MaxUnackedBndupd,
    /// OPTION_F_CONNECT_FLAGS.
    pub connect_flags: ConnectFlags,
    /// OPTION_F_RELATIONSHIP_NAME; absent = the only relationship between the two servers.
    pub relationship_name: Option<RelationshipName<'a>>,
}

/// Error texts for [`ConnectParams::parse`], per message.
struct ConnectErrors {
    version: &'static str,
    mclt: &'static str,
    keepalive: &'static str,
    max_unacked: &'static str,
    flags: &'static str,
}

const CONNECT_ERRORS: ConnectErrors = ConnectErrors {
    version: "CONNECT without OPTION_F_PROTOCOL_VERSION",
    mclt: "CONNECT without OPTION_F_MCLT",
    keepalive: "CONNECT without OPTION_F_KEEPALIVE_TIME",
    max_unacked: "CONNECT without OPTION_F_MAX_UNACKED_BNDUPD",
    flags: "CONNECT without OPTION_F_CONNECT_FLAGS",
};

const CONNECTREPLY_ERRORS: ConnectErrors = ConnectErrors {
    version: "CONNECTREPLY without OPTION_F_PROTOCOL_VERSION",
    mclt: "CONNECTREPLY without OPTION_F_MCLT",
    keepalive: "CONNECTREPLY without OPTION_F_KEEPALIVE_TIME",
    max_unacked: "CONNECTREPLY without OPTION_F_MAX_UNACKED_BNDUPD",
    flags: "CONNECTREPLY without OPTION_F_CONNECT_FLAGS",
};

impl<'a> ConnectParams<'a> {
    fn parse(options: &Options<'a>, errs: &ConnectErrors) -> Result<Self> {
        use OptionCode as C;
        let o = options;
        let protocol_version = required(
            o,
            C::F_PROTOCOL_VERSION,
            "duplicate OPTION_F_PROTOCOL_VERSION",
            errs.version,
            ProtocolVersion::parse,
        )?;
        let mclt = required(
            o,
            C::F_MCLT,
            "duplicate OPTION_F_MCLT",
            errs.mclt,
            Mclt::parse,
        )?;
        let keepalive_time = required(
            o,
            C::F_KEEPALIVE_TIME,
            "duplicate OPTION_F_KEEPALIVE_TIME",
            errs.keepalive,
            KeepaliveTime::parse,
        )?;
        let max_unacked_bndupd = required(
            o,
            C::F_MAX_UNACKED_BNDUPD,
            "duplicate OPTION_F_MAX_UNACKED_BNDUPD",
            errs.max_unacked,
            MaxUnackedBndupd::parse,
        )?;
        let connect_flags = required(
            o,
            C::F_CONNECT_FLAGS,
            "duplicate OPTION_F_CONNECT_FLAGS",
            errs.flags,
            ConnectFlags::parse,
        )?;
        let relationship_name = unique(
            o,
            C::F_RELATIONSHIP_NAME,
            "duplicate OPTION_F_RELATIONSHIP_NAME",
            RelationshipName::parse,
        )?;
        Ok(Self {
            protocol_version,
            mclt,
            keepalive_time,
            max_unacked_bndupd,
            connect_flags,
            relationship_name,
        })
    }

    fn push_to<'s>(&'s self, l: &mut OptionList<'s, MAX_TOP_LEVEL_OPTIONS>) {
        // Six slots for at most six options: no push can fail.
        let _ = l.push(&self.protocol_version);
        let _ = l.push(&self.mclt);
        let _ = l.push(&self.keepalive_time);
        let _ = l.push(&self.max_unacked_bndupd);
        let _ = l.push_some(self.relationship_name.as_ref());
        let _ = l.push(&self.connect_flags);
    }
}

/// CONNECTREPLY (32), RFC 8156 §5.3.9, §6.1.2: acceptance with the secondary's parameters, or
/// rejection with a Status Code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectreply<'a> {
    /// The connection is accepted (no Status Code, or a success one).
    Accept(ConnectParams<'a>),
    /// The connection is rejected (a Status Code other than Success); other options ignored.
    Reject(StatusCodeOption<'a>),
}

impl<'a> Connectreply<'a> {
    /// Decodes and checks the options of a CONNECTREPLY.
    pub fn parse(options: &Options<'a>) -> Result<Self> {
        match status(options)? {
            Some(s) if s.code != StatusCode::SUCCESS => Ok(Self::Reject(s)),
            _ => ConnectParams::parse(options, &CONNECTREPLY_ERRORS).map(Self::Accept),
        }
    }
}

/// STATE (34), RFC 8156 §5.3.11, §6.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// OPTION_F_SERVER_STATE.
    pub server_state: ServerState,
    /// OPTION_F_SERVER_FLAGS.
    pub server_flags: ServerFlags,
    /// OPTION_F_START_TIME_OF_STATE.
    pub start_time_of_state: StartTimeOfState,
    /// OPTION_F_PARTNER_DOWN_TIME: present iff the state is PARTNER-DOWN (checked for
    /// PARTNER-DOWN; tolerated, and ignored by receivers, otherwise, §6.4).
    pub partner_down_time: Option<PartnerDownTime>,
}

impl State {
    /// Decodes and checks the options of a STATE.
    pub fn parse(options: &Options<'_>) -> Result<Self> {
        use OptionCode as C;
        let o = options;
        let server_state = required(
            o,
            C::F_SERVER_STATE,
            "duplicate OPTION_F_SERVER_STATE",
            "STATE without OPTION_F_SERVER_STATE",
            ServerState::parse,
        )?;
        let server_flags = required(
            o,
            C::F_SERVER_FLAGS,
            "duplicate OPTION_F_SERVER_FLAGS",
            "STATE without OPTION_F_SERVER_FLAGS",
            ServerFlags::parse,
        )?;
        let start_time_of_state = required(
            o,
            C::F_START_TIME_OF_STATE,
            "duplicate OPTION_F_START_TIME_OF_STATE",
            "STATE without OPTION_F_START_TIME_OF_STATE",
            StartTimeOfState::parse,
        )?;
        let partner_down_time = unique(
            o,
            C::F_PARTNER_DOWN_TIME,
            "duplicate OPTION_F_PARTNER_DOWN_TIME",
            PartnerDownTime::parse,
        )?;
        if server_state == ServerState::PARTNER_DOWN && partner_down_time.is_none() {
            return Err(Error::Malformed(
                "STATE in PARTNER-DOWN without OPTION_F_PARTNER_DOWN_TIME",
            ));
        }
        Ok(Self {
            server_state,
            server_flags,
            start_time_of_state,
            partner_down_time,
        })
    }
}

/// A decoded message of the failover link, in message-type order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Failover<'a> {
    /// REPLY (7) to STARTTLS (RFC 7653 §8.2): no Status Code = go ahead with TLS;
    /// TLSConnectionRefused = refused.
    TlsReply(Option<StatusCodeOption<'a>>),
    /// STARTTLS (23), RFC 7653 §6.2.2 (options SHOULD be ignored, and are).
    StartTls,
    /// BNDUPD (24).
    Bndupd(Bndupd<'a>),
    /// BNDREPLY (25).
    Bndreply(Bndreply<'a>),
    /// POOLREQ (26): no options defined (unknown ones ignored).
    Poolreq,
    /// POOLRESP (27): no options defined.
    Poolresp,
    /// UPDREQ (28): no options defined.
    Updreq,
    /// UPDREQALL (29): no options defined.
    Updreqall,
    /// UPDDONE (30): no options defined.
    Upddone,
    /// CONNECT (31), RFC 8156 §6.1.1.
    Connect(ConnectParams<'a>),
    /// CONNECTREPLY (32).
    Connectreply(Connectreply<'a>),
    /// DISCONNECT (33), RFC 8156 §5.3.10: a Status Code SHOULD be there.
    Disconnect(Option<StatusCodeOption<'a>>),
    /// STATE (34).
    State(State),
    /// CONTACT (35): no options.
    Contact,
}

impl<'a> Failover<'a> {
    /// Decodes `msg` by its type and checks the options it requires.
    pub fn parse(msg: &FailoverMessage<'a>) -> Result<Self> {
        let o = &msg.options;
        Ok(match msg.msg_type {
            MessageType::REPLY => Self::TlsReply(status(o)?),
            MessageType::STARTTLS => Self::StartTls,
            MessageType::BNDUPD => Self::Bndupd(Bndupd::parse(o)?),
            MessageType::BNDREPLY => Self::Bndreply(Bndreply::parse(o)?),
            MessageType::POOLREQ => Self::Poolreq,
            MessageType::POOLRESP => Self::Poolresp,
            MessageType::UPDREQ => Self::Updreq,
            MessageType::UPDREQALL => Self::Updreqall,
            MessageType::UPDDONE => Self::Upddone,
            MessageType::CONNECT => Self::Connect(ConnectParams::parse(o, &CONNECT_ERRORS)?),
            MessageType::CONNECTREPLY => Self::Connectreply(Connectreply::parse(o)?),
            MessageType::DISCONNECT => Self::Disconnect(status(o)?),
            MessageType::STATE => Self::State(State::parse(o)?),
            MessageType::CONTACT => Self::Contact,
            _ => return Err(Error::Unsupported("message type on the failover link")),
        })
    }

    /// Parses the bytes of one frame as a [`FailoverMessage`] and decodes it.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<(FailoverMessage<'a>, Self)> {
        let msg = FailoverMessage::parse(bytes)?;
        let typed = Self::parse(&msg)?;
        Ok((msg, typed))
    }

    /// The message type.
    pub const fn msg_type(&self) -> MessageType {
        match self {
            Self::TlsReply(_) => MessageType::REPLY,
            Self::StartTls => MessageType::STARTTLS,
            Self::Bndupd(_) => MessageType::BNDUPD,
            Self::Bndreply(_) => MessageType::BNDREPLY,
            Self::Poolreq => MessageType::POOLREQ,
            Self::Poolresp => MessageType::POOLRESP,
            Self::Updreq => MessageType::UPDREQ,
            Self::Updreqall => MessageType::UPDREQALL,
            Self::Upddone => MessageType::UPDDONE,
            Self::Connect(_) => MessageType::CONNECT,
            Self::Connectreply(_) => MessageType::CONNECTREPLY,
            Self::Disconnect(_) => MessageType::DISCONNECT,
            Self::State(_) => MessageType::STATE,
            Self::Contact => MessageType::CONTACT,
        }
    }

    /// The top-level options to emit, in RFC order, borrowing `self`.
    pub fn to_list(&self) -> OptionList<'_, MAX_TOP_LEVEL_OPTIONS> {
        let mut l = OptionList::new();
        // At most six options per message and six slots: no push below can fail.
        match self {
            Self::TlsReply(s) | Self::Disconnect(s) => {
                let _ = l.push_some(s.as_ref());
            }
            Self::Bndupd(b) => {
                let _ = l.push(&b.payload);
            }
            Self::Bndreply(b) => {
                let _ = l.push_some(b.status.as_ref());
                let _ = l.push_some(b.payload.as_ref());
            }
            Self::Connect(p) | Self::Connectreply(Connectreply::Accept(p)) => p.push_to(&mut l),
            Self::Connectreply(Connectreply::Reject(s)) => {
                let _ = l.push(s);
            }
            Self::State(s) => {
                let _ = l.push(&s.server_state);
                let _ = l.push(&s.server_flags);
                let _ = l.push(&s.start_time_of_state);
                let _ = l.push_some(s.partner_down_time.as_ref());
            }
            Self::StartTls
            | Self::Poolreq
            | Self::Poolresp
            | Self::Updreq
            | Self::Updreqall
            | Self::Upddone
            | Self::Contact => {}
        }
        l
    }

    /// The message to emit: this type, `transaction_id`, `sent_time` (dropped for STARTTLS and
    /// REPLY, which have none) and the options of `list` (from [`Failover::to_list`]).
    pub fn message<'l>(
        &self,
        transaction_id: u32,
        sent_time: FailoverTime,
        list: &'l OptionList<'l, MAX_TOP_LEVEL_OPTIONS>,
    ) -> FailoverMessage<'l> {
        let msg_type = self.msg_type();
        FailoverMessage {
            msg_type,
            transaction_id,
            sent_time: msg_type.is_failover().then_some(sent_time),
            options: list.options(),
        }
    }

    /// Bytes the message takes (without the frame prefix).
    pub fn buffer_len(&self) -> usize {
        let list = self.to_list();
        self.message(0, FailoverTime(0), &list).buffer_len()
    }

    /// Writes the message at the start of `buf`; returns [`Failover::buffer_len`].
    pub fn emit(
        &self,
        transaction_id: u32,
        sent_time: FailoverTime,
        buf: &mut [u8],
    ) -> Result<usize> {
        let list = self.to_list();
        self.message(transaction_id, sent_time, &list).emit(buf)
    }

    /// Writes the 2-octet frame prefix then the message; returns its length plus 2.
    pub fn emit_framed(
        &self,
        transaction_id: u32,
        sent_time: FailoverTime,
        buf: &mut [u8],
    ) -> Result<usize> {
        let list = self.to_list();
        self.message(transaction_id, sent_time, &list)
            .emit_framed(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_messages_emit_header_only() {
        let mut buf = [0xa5; 9];
        let n = Failover::Contact
            .emit(0x010203, FailoverTime(0x0a0b0c0d), &mut buf)
            .unwrap();
        assert_eq!(n, 8);
        assert_eq!(buf, [35, 1, 2, 3, 0x0a, 0x0b, 0x0c, 0x0d, 0xa5]);
        let n = Failover::StartTls
            .emit(7, FailoverTime(9), &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], [23, 0, 0, 7]);
    }
}
