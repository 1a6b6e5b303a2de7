//! Malformed twins of the failover vectors: truncations, missing MUST options, wrong fixed
//! lengths, forbidden combinations, foreign message types, zero-length frames.

use std::vec::Vec;

use tandem_wire::Error;
use tandem_wire::dhcp::MessageType;
use tandem_wire::failover::frame::{FrameDecoder, split_frame};
use tandem_wire::failover::{Failover, FailoverMessage, FailoverOption, FailoverTime};
use tandem_wire::option::{OptionCode, OptionIter, Options, RawOption};

const BNDUPD_CLIENT_DATA: &str = include_str!("vectors/failover_bndupd_client_data.hex");
const BNDUPD_PREFIX: &str = include_str!("vectors/failover_bndupd_prefix.hex");
const BNDREPLY_OUTDATED: &str = include_str!("vectors/failover_bndreply_outdated.hex");
const CONNECT: &str = include_str!("vectors/failover_connect.hex");
const CONNECTREPLY_ACCEPT: &str = include_str!("vectors/failover_connectreply_accept.hex");
const DISCONNECT: &str = include_str!("vectors/failover_disconnect.hex");
const STATE_PARTNER_DOWN: &str = include_str!("vectors/failover_state_partner_down.hex");

const WITH_OPTIONS: [&str; 9] = [
    BNDUPD_CLIENT_DATA,
    BNDUPD_PREFIX,
    BNDREPLY_OUTDATED,
    CONNECT,
    CONNECTREPLY_ACCEPT,
    include_str!("vectors/failover_connectreply_reject.hex"),
    DISCONNECT,
    STATE_PARTNER_DOWN,
    include_str!("vectors/failover_reply_tls_refused.hex"),
];

fn vector(text: &str) -> Vec<u8> {
    let hex: Vec<&str> = text
        .lines()
        .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
        .collect();
    hex.iter()
        .map(|b| u8::from_str_radix(b, 16).expect("vector byte"))
        .collect()
}

fn tlv(code: u16, data: &[u8]) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(
        &u16::try_from(data.len())
            .expect("short option")
            .to_be_bytes(),
    );
    out.extend_from_slice(data);
    out
}

/// Fixed part before the nested options of the containers the failover vectors use.
fn container_prefix(code: u16) -> Option<usize> {
    match code {
        45 | 116 => Some(0),
        3 | 25 => Some(12),
        5 => Some(24),
        26 => Some(25),
        _ => None,
    }
}

/// `block` rewritten at any depth: `f(code, data)` gives the new data, or `None` to drop the
/// option (lengths recomputed).
fn rewrite<F: Fn(u16, &[u8]) -> Option<Vec<u8>>>(block: &[u8], f: &F) -> Vec<u8> {
    let mut out = Vec::new();
    for o in OptionIter::new(block) {
        let o = o.expect("valid block");
        let Some(data) = f(o.code.0, o.data) else {
            continue;
        };
        match container_prefix(o.code.0) {
            Some(n) if data == o.data => {
                let mut nested = o.data[..n].to_vec();
                nested.extend(rewrite(&o.data[n..], f));
                out.extend(tlv(o.code.0, &nested));
            }
            _ => out.extend(tlv(o.code.0, &data)),
        }
    }
    out
}

/// `block` with every option `code` removed, at any depth.
fn strip(block: &[u8], code: u16) -> Vec<u8> {
    rewrite(block, &|c, d| (c != code).then(|| d.to_vec()))
}

/// The message `bytes` with option `code` removed everywhere.
fn without(bytes: &[u8], code: u16) -> Vec<u8> {
    let header = if bytes[0] == 7 || bytes[0] == 23 {
        4
    } else {
        8
    };
    let mut out = bytes[..header].to_vec();
    out.extend(strip(&bytes[header..], code));
    out
}

fn typed_err(bytes: &[u8]) -> Error {
    let msg = FailoverMessage::parse(bytes).expect("header and TLVs stay valid");
    Failover::parse(&msg).expect_err("typed parse must fail")
}

#[test]
fn truncations_fail_or_lose_information() {
    for text in WITH_OPTIONS {
        let bytes = vector(text);
        let full = Failover::parse_bytes(&bytes).unwrap().1;
        let header = FailoverMessage::parse(&bytes).unwrap().header_len();
        // Top-level option boundaries: the only places a cut leaves a valid TLV block.
        let mut boundaries = vec![header];
        for o in OptionIter::new(&bytes[header..]) {
            boundaries.push(boundaries.last().unwrap() + o.unwrap().wire_len());
        }
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            match FailoverMessage::parse(cut) {
                Ok(msg) => {
                    assert!(boundaries.contains(&len), "cut at {len} parsed");
                    if let Ok(typed) = Failover::parse(&msg) {
                        assert_ne!(typed, full, "cut at {len} lost nothing");
                    }
                }
                Err(e) => {
                    assert!(!boundaries.contains(&len), "cut at {len}: {e:?}");
                    assert!(
                        matches!(e, Error::Truncated(_) | Error::BadLength(_)),
                        "cut at {len}: {e:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn connect_without_each_required_option_is_malformed() {
    let bytes = vector(CONNECT);
    let cases = [
        (127, "CONNECT without OPTION_F_PROTOCOL_VERSION"),
        (122, "CONNECT without OPTION_F_MCLT"),
        (128, "CONNECT without OPTION_F_KEEPALIVE_TIME"),
        (121, "CONNECT without OPTION_F_MAX_UNACKED_BNDUPD"),
        (115, "CONNECT without OPTION_F_CONNECT_FLAGS"),
    ];
    for (code, err) in cases {
        assert_eq!(typed_err(&without(&bytes, code)), Error::Malformed(err));
    }
    // The relationship name is optional (RFC 8156 §6.1.1).
    let msg = without(&bytes, 130);
    let Failover::Connect(p) = Failover::parse_bytes(&msg).unwrap().1 else {
        panic!()
    };
    assert_eq!(p.relationship_name, None);
}

#[test]
fn connectreply_without_each_required_option_is_malformed() {
    let bytes = vector(CONNECTREPLY_ACCEPT);
    let cases = [
        (127, "CONNECTREPLY without OPTION_F_PROTOCOL_VERSION"),
        (122, "CONNECTREPLY without OPTION_F_MCLT"),
        (128, "CONNECTREPLY without OPTION_F_KEEPALIVE_TIME"),
        (121, "CONNECTREPLY without OPTION_F_MAX_UNACKED_BNDUPD"),
        (115, "CONNECTREPLY without OPTION_F_CONNECT_FLAGS"),
    ];
    for (code, err) in cases {
        assert_eq!(typed_err(&without(&bytes, code)), Error::Malformed(err));
    }
}

#[test]
fn state_without_each_required_option_is_malformed() {
    let bytes = vector(STATE_PARTNER_DOWN);
    let cases = [
        (132, "STATE without OPTION_F_SERVER_STATE"),
        (131, "STATE without OPTION_F_SERVER_FLAGS"),
        (133, "STATE without OPTION_F_START_TIME_OF_STATE"),
        (
            125,
            "STATE in PARTNER-DOWN without OPTION_F_PARTNER_DOWN_TIME",
        ),
    ];
    for (code, err) in cases {
        assert_eq!(typed_err(&without(&bytes, code)), Error::Malformed(err));
    }
}

#[test]
fn bndupd_client_data_without_must_options_is_malformed() {
    let bytes = vector(BNDUPD_CLIENT_DATA);
    let cases = [
        (1, "OPTION_CLIENT_DATA without OPTION_CLIENTID"),
        (100, "OPTION_CLIENT_DATA without OPTION_LQ_BASE_TIME"),
        (114, "IAADDR without OPTION_F_BINDING_STATUS"),
        (133, "IAADDR without OPTION_F_START_TIME_OF_STATE"),
        (5, "IA_NA without OPTION_IAADDR"),
        (26, "IA_PD without OPTION_IAPREFIX"),
        (45, "BNDUPD without OPTION_CLIENT_DATA or OPTION_IAPREFIX"),
    ];
    for (code, err) in cases {
        assert_eq!(
            typed_err(&without(&bytes, code)),
            Error::Malformed(err),
            "without {code}"
        );
    }
    let no_ia = without(&without(&bytes, 3), 25);
    assert_eq!(
        typed_err(&no_ia),
        Error::Malformed("OPTION_CLIENT_DATA without IA_NA, IA_TA or IA_PD")
    );
    // Optional ones may go.
    for code in [129, 47, 134, 46, 123, 126, 120, 39, 116] {
        assert!(
            Failover::parse_bytes(&without(&bytes, code)).is_ok(),
            "without {code}"
        );
    }
}

#[test]
fn bndupd_bare_prefix_without_must_options_is_malformed() {
    let bytes = vector(BNDUPD_PREFIX);
    let cases = [
        (100, "IAPREFIX without OPTION_LQ_BASE_TIME"),
        (114, "IAPREFIX without OPTION_F_BINDING_STATUS"),
        (133, "IAPREFIX without OPTION_F_START_TIME_OF_STATE"),
        (26, "BNDUPD without OPTION_CLIENT_DATA or OPTION_IAPREFIX"),
    ];
    for (code, err) in cases {
        assert_eq!(
            typed_err(&without(&bytes, code)),
            Error::Malformed(err),
            "without {code}"
        );
    }
    assert!(Failover::parse_bytes(&without(&bytes, 68)).is_ok());
}

#[test]
fn bndreply_without_payload_or_client_id_is_malformed() {
    let bytes = vector(BNDREPLY_OUTDATED);
    assert_eq!(
        typed_err(&without(&bytes, 45)),
        Error::Malformed("BNDREPLY without OPTION_CLIENT_DATA or OPTION_IAPREFIX")
    );
    assert_eq!(
        typed_err(&without(&bytes, 1)),
        Error::Malformed("OPTION_CLIENT_DATA without OPTION_CLIENTID")
    );
    // A bare top-level Status Code is the accepted extension.
    let mut msg = bytes[..8].to_vec();
    msg.extend(tlv(13, &[0, 18]));
    let Failover::Bndreply(r) = Failover::parse_bytes(&msg).unwrap().1 else {
        panic!()
    };
    assert_eq!((r.payload, r.status.map(|s| s.code.0)), (None, Some(18)));
}

#[test]
fn disconnect_without_status_is_accepted() {
    let bytes = without(&vector(DISCONNECT), 13);
    assert_eq!(
        Failover::parse_bytes(&bytes).unwrap().1,
        Failover::Disconnect(None)
    );
}

#[test]
fn bndupd_with_two_client_data_is_malformed() {
    let bytes = vector(BNDUPD_CLIENT_DATA);
    let mut twice = bytes.clone();
    twice.extend_from_slice(&bytes[8..]);
    assert_eq!(
        typed_err(&twice),
        Error::Malformed("BNDUPD with more than one OPTION_CLIENT_DATA")
    );
}

#[test]
fn bndupd_with_client_data_and_prefix_is_malformed() {
    let mut both = vector(BNDUPD_CLIENT_DATA);
    both.extend_from_slice(&vector(BNDUPD_PREFIX)[8..]);
    assert_eq!(
        typed_err(&both),
        Error::Malformed("BNDUPD with both OPTION_CLIENT_DATA and OPTION_IAPREFIX")
    );
    let prefix = vector(BNDUPD_PREFIX);
    let mut two = prefix.clone();
    two.extend_from_slice(&prefix[8..]);
    assert_eq!(
        typed_err(&two),
        Error::Malformed("BNDUPD with more than one OPTION_IAPREFIX")
    );
}

#[test]
fn duplicate_singleton_options_are_malformed() {
    let mut bytes = vector(CONNECT);
    bytes.extend(tlv(122, &[0, 0, 0, 1]));
    assert_eq!(
        typed_err(&bytes),
        Error::Malformed("duplicate OPTION_F_MCLT")
    );
    let mut bytes = vector(STATE_PARTNER_DOWN);
    bytes.extend(tlv(132, &[2]));
    assert_eq!(
        typed_err(&bytes),
        Error::Malformed("duplicate OPTION_F_SERVER_STATE")
    );
}

/// Fixed-length options: code, length, name in the error.
const FIXED: [(u16, usize, &str); 20] = [
    (46, 4, "OPTION_CLT_TIME"),
    (100, 4, "OPTION_LQ_BASE_TIME"),
    (114, 1, "OPTION_F_BINDING_STATUS"),
    (115, 2, "OPTION_F_CONNECT_FLAGS"),
    (119, 2, "OPTION_F_DNS_FLAGS"),
    (120, 4, "OPTION_F_EXPIRATION_TIME"),
    (121, 4, "OPTION_F_MAX_UNACKED_BNDUPD"),
    (122, 4, "OPTION_F_MCLT"),
    (123, 4, "OPTION_F_PARTNER_LIFETIME"),
    (124, 4, "OPTION_F_PARTNER_LIFETIME_SENT"),
    (125, 4, "OPTION_F_PARTNER_DOWN_TIME"),
    (126, 4, "OPTION_F_PARTNER_RAW_CLT_TIME"),
    (127, 4, "OPTION_F_PROTOCOL_VERSION"),
    (128, 4, "OPTION_F_KEEPALIVE_TIME"),
    (131, 1, "OPTION_F_SERVER_FLAGS"),
    (132, 1, "OPTION_F_SERVER_STATE"),
    (133, 4, "OPTION_F_START_TIME_OF_STATE"),
    (134, 4, "OPTION_F_STATE_EXPIRATION_TIME"),
    (129, 4, "OPTION_F_RECONFIGURE_DATA"),
    (47, 16, "OPTION_LQ_RELAY_DATA"),
];

#[test]
fn fixed_length_options_with_wrong_length_are_malformed() {
    let data = [0x5a; 20];
    for (code, len, name) in FIXED {
        // 129 and 47 have a fixed part and then variable data: only shorter is wrong.
        let variable = matches!(code, 129 | 47);
        for wrong in [0, len - 1, len + 1, len + 3] {
            let raw = RawOption {
                code: OptionCode(code),
                data: &data[..wrong],
            };
            let res = FailoverOption::parse(raw);
            if variable && wrong > len {
                assert!(res.is_ok(), "{name} len {wrong}");
            } else {
                assert_eq!(res, Err(Error::Malformed(name)), "{name} len {wrong}");
            }
        }
        let raw = RawOption {
            code: OptionCode(code),
            data: &data[..len],
        };
        assert!(FailoverOption::parse(raw).is_ok(), "{name} len {len}");
    }
}

#[test]
fn wrong_length_inside_a_message_is_malformed() {
    // MCLT with 3 bytes inside CONNECT.
    let bytes = vector(CONNECT);
    let mut msg = without(&bytes, 122);
    msg.extend(tlv(122, &[0, 0, 1]));
    assert_eq!(typed_err(&msg), Error::Malformed("OPTION_F_MCLT"));
    // BINDING_STATUS with 2 bytes deep inside CLIENT_DATA/IA_NA/IAADDR.
    let bytes = vector(BNDUPD_CLIENT_DATA);
    let mut bad = bytes[..8].to_vec();
    bad.extend(rewrite(&bytes[8..], &|c, d| {
        Some(if c == 114 { vec![1, 1] } else { d.to_vec() })
    }));
    assert_eq!(bad.len(), bytes.len() + 3); // one more byte in each of 3 binding statuses
    assert_eq!(typed_err(&bad), Error::Malformed("OPTION_F_BINDING_STATUS"));
    // START_TIME_OF_STATE with 5 bytes in the bare prefix.
    let bytes = vector(BNDUPD_PREFIX);
    let mut bad = bytes[..8].to_vec();
    bad.extend(rewrite(&bytes[8..], &|c, d| {
        Some(if c == 133 { vec![0; 5] } else { d.to_vec() })
    }));
    assert_eq!(
        typed_err(&bad),
        Error::Malformed("OPTION_F_START_TIME_OF_STATE")
    );
}

#[test]
fn bad_names_and_text_are_malformed() {
    let cases: [(u16, &[u8], &str); 5] = [
        (117, b"\x05host", "OPTION_F_DNS_HOST_NAME"),
        (118, b"\xc0\x0c", "OPTION_F_DNS_ZONE_NAME"),
        (117, b"", "OPTION_F_DNS_HOST_NAME"),
        (130, b"dc\xff", "OPTION_F_RELATIONSHIP_NAME"),
        (118, &[64; 65], "OPTION_F_DNS_ZONE_NAME"),
    ];
    for (code, data, name) in cases {
        let raw = RawOption {
            code: OptionCode(code),
            data,
        };
        assert_eq!(
            FailoverOption::parse(raw),
            Err(Error::Malformed(name)),
            "{name}"
        );
    }
    // Inside DNS_REMOVAL_INFO the nested name is checked too.
    let info = tlv(117, b"\x05host");
    let raw = RawOption {
        code: OptionCode::F_DNS_REMOVAL_INFO,
        data: &info,
    };
    assert_eq!(
        FailoverOption::parse(raw),
        Err(Error::Malformed("OPTION_F_DNS_HOST_NAME"))
    );
}

#[test]
fn foreign_message_types_are_unsupported_on_the_link() {
    for t in [0u8, 1, 3, 12, 13, 14, 22, 36, 255] {
        let bytes = [t, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            FailoverMessage::parse(&bytes),
            Err(Error::Unsupported("message type on the failover link")),
            "type {t}"
        );
    }
    let msg = FailoverMessage {
        msg_type: MessageType::SOLICIT,
        transaction_id: 1,
        sent_time: None,
        options: Options::default(),
    };
    assert_eq!(
        Failover::parse(&msg),
        Err(Error::Unsupported("message type on the failover link"))
    );
    assert!(msg.emit(&mut [0; 16]).is_err());
}

#[test]
fn short_headers_are_truncated() {
    assert_eq!(
        FailoverMessage::parse(&[]),
        Err(Error::Truncated("failover message header"))
    );
    assert_eq!(
        FailoverMessage::parse(&[24, 0, 0, 1, 0, 0, 0]),
        Err(Error::Truncated("failover message header"))
    );
    assert_eq!(
        FailoverMessage::parse(&[23, 0, 0]),
        Err(Error::Truncated("failover message header"))
    );
}

#[test]
fn trailing_garbage_after_options_is_bad_length() {
    let mut bytes = vector(CONNECT);
    bytes.extend_from_slice(&[0, 1, 0, 9, 1]);
    assert_eq!(
        FailoverMessage::parse(&bytes),
        Err(Error::BadLength("option"))
    );
    let mut bytes = vector(CONNECT);
    bytes.push(0);
    assert_eq!(
        FailoverMessage::parse(&bytes),
        Err(Error::Truncated("option header"))
    );
}

#[test]
fn inconsistent_messages_refuse_to_emit() {
    let mut buf = [0u8; 64];
    let no_sent = FailoverMessage {
        msg_type: MessageType::CONTACT,
        transaction_id: 1,
        sent_time: None,
        options: Options::default(),
    };
    assert!(matches!(no_sent.emit(&mut buf), Err(Error::Malformed(_))));
    let with_sent = FailoverMessage {
        msg_type: MessageType::STARTTLS,
        sent_time: Some(FailoverTime(1)),
        ..no_sent
    };
    assert!(matches!(with_sent.emit(&mut buf), Err(Error::Malformed(_))));
    let big_xid = FailoverMessage {
        transaction_id: 0x0100_0000,
        sent_time: Some(FailoverTime(1)),
        ..no_sent
    };
    assert_eq!(
        big_xid.emit(&mut buf),
        Err(Error::Malformed("transaction-id over 24 bits"))
    );
}

#[test]
fn zero_length_frame_is_malformed() {
    let err = Error::Malformed("zero-length failover frame");
    assert_eq!(split_frame(&[0, 0]), Err(err));
    let mut d = FrameDecoder::new(vec![0u8; 64]);
    d.push(&[0, 8, 35, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8]);
    assert_eq!(d.next_message().unwrap().map(<[u8]>::len), Some(8));
    assert_eq!(d.next_message(), Err(err));
    // The stream cannot be resynchronised: the error sticks.
    d.push(&[35, 0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(d.next_message(), Err(err));
}
