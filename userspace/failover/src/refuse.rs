//! Refused CONNECTs, as sent and as shown: the CONNECTREPLY a *primary* answers a CONNECT
//! with (a role conflict, `docs/failover.md` D23), the texts of the configuration conflicts
//! that only show at connect time, and [`Refusal`], the record of a refusal sent or received
//! that `tandem status` and the log show.
//!
//! RFC 8156 §6.1 says only the primary connects and only a secondary listens; it has no text
//! for two servers that are both configured as primary (each one's connect then fails, and
//! both look like "partner down"). Tandem's primary therefore also listens, and a CONNECT
//! from its configured peer is answered with [`role_conflict_reply`]: a CONNECTREPLY with
//! Status Code ConfigurationConflict (§5.6, §6.1.2 "reject the connection by including an
//! OPTION_STATUS_CODE option with a status-code indicating the reason for the rejection") and
//! a text that says so, after which the driver closes the connection.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use tandem_wire::dhcp::{StatusCode, StatusCodeOption};
use tandem_wire::failover::{Connectreply, Failover, FailoverTime};

/// The longest text a [`Refusal`] keeps, in characters; longer ones end in `…`.
pub const MAX_REFUSAL_TEXT: usize = 256;
/// The longest relationship name from the partner that a text repeats, in characters (a
/// configured name is at most 255 octets).
const MAX_ECHOED_NAME: usize = 64;

/// Which way a refusal went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We refused the partner's CONNECT.
    Sent,
    /// The partner refused ours.
    Received,
}

impl Direction {
    /// `sent` or `received`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
        }
    }
}

/// A refused CONNECT (a CONNECTREPLY with a Status Code other than Success, §6.1.2): which
/// way, the status, the text, and when. The text is the one on the wire, made safe to show:
/// invalid UTF-8 replaced, control characters replaced by `�`, at most [`MAX_REFUSAL_TEXT`]
/// characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Sent or received.
    pub direction: Direction,
    /// The Status Code (§5.6; ConfigurationConflict for the conflicts of this module).
    pub status: StatusCode,
    /// The status message.
    pub text: String,
    /// When (wall clock).
    pub at: FailoverTime,
}

impl Refusal {
    /// A refusal we sent with `status` and `text`.
    pub fn sent(status: StatusCode, text: &str, at: FailoverTime) -> Self {
        Self {
            direction: Direction::Sent,
            status,
            text: shown(text.as_bytes()),
            at,
        }
    }

    /// The refusal the partner sent us (the Status Code option of its CONNECTREPLY).
    pub fn received(status: &StatusCodeOption<'_>, at: FailoverTime) -> Self {
        Self {
            direction: Direction::Received,
            status: status.code,
            text: shown(status.message),
            at,
        }
    }

    /// The status as people read it: `ConfigurationConflict (17)` ([`status_text`]).
    pub fn status_text(&self) -> String {
        status_text(self.status)
    }
}

/// The name a Status Code has in its RFC (RFC 8415 §21.13, RFC 5007 §5.2, RFC 5460 §5.2,
/// RFC 7653 §5.3, RFC 8156 §5.6), `None` for an unassigned one.
pub const fn status_name(status: StatusCode) -> Option<&'static str> {
    Some(match status.0 {
        0 => "Success",
        1 => "UnspecFail",
        2 => "NoAddrsAvail",
        3 => "NoBinding",
        4 => "NotOnLink",
        5 => "UseMulticast",
        6 => "NoPrefixAvail",
        7 => "UnknownQueryType",
        8 => "MalformedQuery",
        9 => "NotConfigured",
        10 => "NotAllowed",
        11 => "QueryTerminated",
        12 => "DataMissing",
        13 => "CatchUpComplete",
        14 => "NotSupported",
        15 => "TLSConnectionRefused",
        16 => "AddressInUse",
        17 => "ConfigurationConflict",
        18 => "MissingBindingInformation",
        19 => "OutdatedBindingInformation",
        20 => "ServerShuttingDown",
        21 => "DNSUpdateNotSupported",
        22 => "ExcessiveTimeSkew",
        _ => return None,
    })
}

/// A Status Code as people read it: `ConfigurationConflict (17)`, or the number alone.
pub fn status_text(status: StatusCode) -> String {
    match status_name(status) {
        Some(n) => format!("{n} ({})", status.0),
        None => format!("{}", status.0),
    }
}

/// The text of a role conflict: `both servers are configured as primary for relationship
/// "NAME"`.
pub fn role_conflict_text(name: &str) -> String {
    format!("both servers are configured as primary for relationship \"{name}\"")
}

/// The text a secondary refuses a CONNECT naming another relationship with (D10): the name
/// received (shortened to 64 characters, made printable) and ours.
pub fn name_mismatch_text(received: &str, ours: &str) -> String {
    format!(
        "CONNECT names relationship \"{}\" but this server's relationship with its peer is \
         \"{ours}\"",
        echoed(received)
    )
}

/// What a primary answers a CONNECT from its configured peer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleConflictReply {
    /// The CONNECTREPLY, framed (2-octet length first, RFC 5460 §5.1): write it, then close.
    pub frame: Vec<u8>,
    /// What was refused, for the status and the log.
    pub refusal: Refusal,
}

/// The answer of a primary to a CONNECT (frame body, without the length prefix) from the
/// peer of its relationship `ours`: a CONNECTREPLY carrying the CONNECT's transaction-id
/// (§5.4), sent-time `now` (§5.2) and a Status Code ConfigurationConflict whose text is
/// [`role_conflict_text`] (plus the name the CONNECT carries when it is another one). `None`
/// when the bytes are not a well-formed CONNECT: the driver drops such a connection
/// unanswered, as it does before a CONNECT on any accepted connection.
///
/// The partner is configured as primary: only a primary sends CONNECT (§6.1.1). Answering
/// it, rather than dropping it as §6.1 asks of a server with no secondary relationship with
/// the connecting server, is `docs/failover.md` D23.
pub fn role_conflict_reply(
    connect: &[u8],
    ours: &str,
    now: FailoverTime,
) -> Option<RoleConflictReply> {
    let (msg, typed) = Failover::parse_bytes(connect).ok()?;
    let Failover::Connect(params) = typed else {
        return None;
    };
    let mut text = role_conflict_text(ours);
    if let Some(theirs) = params.relationship_name.filter(|n| n.0 != ours) {
        text.push_str(&format!(
            "; the CONNECT names relationship \"{}\"",
            echoed(theirs.0)
        ));
    }
    let status = StatusCode::CONFIGURATION_CONFLICT;
    let reply = Failover::Connectreply(Connectreply::Reject(StatusCodeOption::new(status, &text)));
    let mut frame = vec![0u8; 2 + reply.buffer_len()];
    // The text is at most a few hundred octets (our name ≤ 255, the echoed one ≤ 64
    // characters), so the reply always fits a frame; the transaction-id is the CONNECT's,
    // which parsed, so it is valid.
    let n = reply
        .emit_framed(msg.transaction_id, now, &mut frame)
        .ok()?;
    frame.truncate(n);
    Some(RoleConflictReply {
        frame,
        refusal: Refusal::sent(status, &text, now),
    })
}

/// `bytes` as a text that is safe to log and show: invalid UTF-8 replaced, control characters
/// (line breaks and terminal escapes from a partner) replaced by `�`, at most
/// [`MAX_REFUSAL_TEXT`] characters.
fn shown(bytes: &[u8]) -> String {
    limited(&String::from_utf8_lossy(bytes), MAX_REFUSAL_TEXT)
}

/// A name from the partner, for repeating in a text.
fn echoed(name: &str) -> String {
    limited(name, MAX_ECHOED_NAME)
}

fn limited(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '\u{fffd}' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use tandem_wire::dhcp::MessageType;
    use tandem_wire::failover::option::{
        ConnectFlags, KeepaliveTime, MaxUnackedBndupd, Mclt, ProtocolVersion, RelationshipName,
    };
    use tandem_wire::failover::{ConnectParams, FailoverMessage};

    use super::*;

    const NOW: FailoverTime = FailoverTime(830_000_123);

    fn connect(name: Option<&str>, xid: u32) -> Vec<u8> {
        let msg = Failover::Connect(ConnectParams {
            protocol_version: ProtocolVersion::V1_0,
            mclt: Mclt(3600),
            keepalive_time: KeepaliveTime(60),
            max_unacked_bndupd: MaxUnackedBndupd(64),
            connect_flags: ConnectFlags(ConnectFlags::FIXED_PD_LENGTH),
            relationship_name: name.map(RelationshipName),
        });
        let mut buf = vec![0u8; msg.buffer_len()];
        let n = msg.emit(xid, FailoverTime(830_000_120), &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// The reply as the other primary's endpoint reads it: (message, status code, text).
    fn read(frame: &[u8]) -> (FailoverMessage<'_>, StatusCode, String) {
        let len = usize::from(u16::from_be_bytes([frame[0], frame[1]]));
        assert_eq!(len + 2, frame.len(), "RFC 5460 §5.1 length prefix");
        let (msg, typed) = Failover::parse_bytes(&frame[2..]).unwrap();
        let Failover::Connectreply(Connectreply::Reject(s)) = typed else {
            panic!("a refusing CONNECTREPLY, got {typed:?}")
        };
        let text = String::from_utf8(s.message.to_vec()).unwrap();
        (msg, s.code, text)
    }

    #[test]
    fn connect_to_a_primary_gets_connectreply_configuration_conflict_6_1_2() {
        for name in [Some("dc1"), None] {
            let reply = role_conflict_reply(&connect(name, 0x00ab_cdef), "dc1", NOW).unwrap();
            let (msg, code, text) = read(&reply.frame);
            assert_eq!(msg.msg_type, MessageType::CONNECTREPLY, "{name:?}");
            // §5.4: a response carries the request's transaction-id; §5.2: our sent-time.
            assert_eq!(msg.transaction_id, 0x00ab_cdef, "{name:?}");
            assert_eq!(msg.sent_time, Some(NOW), "{name:?}");
            // §5.6 ConfigurationConflict (17), the status §6.1.2's refusals use (D10, D23).
            assert_eq!(code, StatusCode::CONFIGURATION_CONFLICT, "{name:?}");
            assert_eq!(
                text,
                "both servers are configured as primary for relationship \"dc1\""
            );
            assert_eq!(
                reply.refusal,
                Refusal {
                    direction: Direction::Sent,
                    status: StatusCode::CONFIGURATION_CONFLICT,
                    text: text.clone(),
                    at: NOW,
                }
            );
        }
    }

    #[test]
    fn connect_to_a_primary_naming_another_relationship_says_both() {
        let reply = role_conflict_reply(&connect(Some("dc2"), 7), "dc1", NOW).unwrap();
        let (_, code, text) = read(&reply.frame);
        assert_eq!(code, StatusCode::CONFIGURATION_CONFLICT);
        assert_eq!(
            text,
            "both servers are configured as primary for relationship \"dc1\"; the CONNECT \
             names relationship \"dc2\""
        );
    }

    #[test]
    fn role_conflict_reply_needs_a_well_formed_connect() {
        let good = connect(Some("dc1"), 7);
        // Truncated, empty, another message type, garbage: no answer (the driver drops).
        assert_eq!(
            role_conflict_reply(&good[..good.len() - 1], "dc1", NOW),
            None
        );
        assert_eq!(role_conflict_reply(&[], "dc1", NOW), None);
        let contact = {
            let m = Failover::Contact;
            let mut b = vec![0u8; m.buffer_len()];
            let n = m.emit(7, NOW, &mut b).unwrap();
            b.truncate(n);
            b
        };
        assert_eq!(role_conflict_reply(&contact, "dc1", NOW), None);
        assert_eq!(role_conflict_reply(&[31, 0, 0, 1, 0xff], "dc1", NOW), None);
    }

    #[test]
    fn a_long_or_hostile_name_from_the_partner_is_shortened_and_made_printable() {
        let long = "x".repeat(1000);
        let reply = role_conflict_reply(&connect(Some(&long), 7), "dc1", NOW).unwrap();
        let (_, _, text) = read(&reply.frame);
        assert!(
            text.ends_with(&format!("\"{}…\"", "x".repeat(64))),
            "{text}"
        );
        let t = name_mismatch_text("evil\n\u{1b}[31mname", "dc1");
        assert_eq!(
            t,
            "CONNECT names relationship \"evil\u{fffd}\u{fffd}[31mname\" but this server's \
             relationship with its peer is \"dc1\""
        );
    }

    #[test]
    fn every_assigned_status_has_its_rfc_name() {
        // Same registry, same order: the wire crate's mnemonics, in the RFCs' spelling.
        for s in StatusCode::ALL {
            let ours = status_name(*s).unwrap();
            let wire: String = s.name().unwrap().split('_').collect();
            assert_eq!(ours.to_ascii_uppercase(), wire, "{s:?}");
        }
        assert_eq!(status_name(StatusCode(23)), None);
    }

    #[test]
    fn a_received_refusal_keeps_the_partners_text_made_safe_to_show() {
        let ok = StatusCodeOption::new(StatusCode::CONFIGURATION_CONFLICT, "both primary");
        let r = Refusal::received(&ok, NOW);
        assert_eq!(r.direction, Direction::Received);
        assert_eq!(r.text, "both primary");
        assert_eq!(r.status_text(), "ConfigurationConflict (17)");
        // Invalid UTF-8, a line break, an escape; and a text over the limit.
        let bad = StatusCodeOption {
            code: StatusCode(4711),
            message: b"a\xffb\r\nc\x1b",
        };
        let r = Refusal::received(&bad, NOW);
        assert_eq!(r.text, "a\u{fffd}b\u{fffd}\u{fffd}c\u{fffd}");
        assert_eq!(r.status_text(), "4711");
        let long = [b'y'; 1000];
        let r = Refusal::received(
            &StatusCodeOption {
                code: StatusCode::UNSPEC_FAIL,
                message: &long,
            },
            NOW,
        );
        assert_eq!(r.text.chars().count(), MAX_REFUSAL_TEXT + 1);
        assert!(r.text.ends_with('…'));
    }
}
