//! Relay messages and relay chains (RFC 8415 §9, §19): decoding the vectors, nesting limits, and
//! the RELAY-REPL chain a server builds around its reply.

mod dhcp_common;

use std::net::Ipv6Addr;

use dhcp_common::{opt, vector};
use tandem_wire::Error;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::relay::{MAX_RELAY_DEPTH, RelayChain, RelayMessage, RelayPayload};
use tandem_wire::dhcp::{MessageType, Packet, StatusCode, StatusCodeOption};
use tandem_wire::option::{EmitOption, OptionCode, Options};

/// Wraps `inner` in a RELAY-FORW with the given fields and extra options (before RELAY_MSG).
fn wrap(inner: &[u8], hop: u8, link: Ipv6Addr, peer: Ipv6Addr, extra: &[u8]) -> Vec<u8> {
    let mut out = vec![MessageType::RELAY_FORW.0, hop];
    out.extend(link.octets());
    out.extend(peer.octets());
    out.extend(extra);
    out.extend(opt(OptionCode::RELAY_MSG.0, inner));
    out
}

fn addr(s: &str) -> Ipv6Addr {
    s.parse().expect("test address")
}

/// A REPLY with a Server Identifier and a status.
fn reply_bytes() -> Vec<u8> {
    let mut out = vec![MessageType::REPLY.0, 0x5a, 0x1b, 0x2c];
    out.extend(opt(2, &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6]));
    out.extend(opt(13, b"\x00\x00ok"));
    out
}

#[test]
fn relay_single_level_fields_decoded() {
    let bytes = vector("relay_forw_solicit");
    let Packet::Relay(r) = Packet::parse(&bytes).unwrap() else {
        panic!("not a relay")
    };
    assert_eq!((r.msg_type, r.hop_count), (MessageType::RELAY_FORW, 0));
    assert_eq!(r.link_address, addr("2001:db8:1::1"));
    assert_eq!(r.peer_address, addr("fe80::5054:ff:fea1:b2c3"));
    assert_eq!(r.interface_id(), Some(&b"ge-0/0/1.100"[..]));
    let remote = r.remote_id().unwrap().unwrap();
    assert_eq!(
        (remote.enterprise, remote.remote_id),
        (3561, &b"circuit-42"[..])
    );
    let lla = r.client_link_layer_addr().unwrap().unwrap();
    assert_eq!(
        (lla.hw_type, lla.addr),
        (1, &[0x52, 0x54, 0, 0xa1, 0xb2, 0xc3][..])
    );
    assert_eq!(r.subscriber_id(), Ok(None));
    assert_eq!(r.relay_source_port(), Ok(None));
    assert_eq!(r.relay_msg(), Some(&vector("dhclient_solicit")[..]));

    let chain = RelayChain::parse(&bytes).unwrap();
    assert_eq!(chain.levels().len(), 1);
    assert_eq!(chain.inner().msg_type, MessageType::SOLICIT);
    assert_eq!(chain.innermost_link_address(), Some(addr("2001:db8:1::1")));
    assert_eq!(chain.interface_id_innermost(), Some(&b"ge-0/0/1.100"[..]));
}

#[test]
fn relay_double_nested_innermost_nonzero_link_used() {
    let bytes = vector("relay_double");
    let chain = RelayChain::parse(&bytes).unwrap();
    let levels = chain.levels();
    assert_eq!(levels.len(), 2);
    assert_eq!((levels[0].hop_count, levels[1].hop_count), (1, 0));
    assert_eq!(levels[0].link_address, Ipv6Addr::UNSPECIFIED);
    assert_eq!(chain.innermost_link_address(), Some(addr("2001:db8:1::1")));
    assert_eq!(chain.interface_id_innermost(), Some(&b"ge-0/0/1.100"[..]));
    assert_eq!(levels[0].interface_id(), Some(&b"uplink7"[..]));
    assert_eq!(chain.inner().client_id().unwrap().unwrap().len(), 14);
}

#[test]
fn relay_chain_innermost_link_skips_zero_levels() {
    let solicit = vector("dhclient_solicit");
    // Inner relay has ::, outer has an address: the outer one is the only usable value.
    let inner = wrap(&solicit, 0, Ipv6Addr::UNSPECIFIED, addr("fe80::1"), &[]);
    let outer = wrap(&inner, 1, addr("2001:db8:9::1"), addr("2001:db8::2"), &[]);
    let chain = RelayChain::parse(&outer).unwrap();
    assert_eq!(chain.innermost_link_address(), Some(addr("2001:db8:9::1")));
    let zero = wrap(&solicit, 0, Ipv6Addr::UNSPECIFIED, addr("fe80::1"), &[]);
    let chain = RelayChain::parse(&zero).unwrap();
    assert_eq!(chain.innermost_link_address(), None);
    assert_eq!(chain.interface_id_innermost(), None);
}

/// `depth` RELAY-FORW levels around the dhclient SOLICIT.
fn nested(depth: usize) -> Vec<u8> {
    let mut bytes = vector("dhclient_solicit");
    for hop in (0..depth).rev() {
        let hop = u8::try_from(hop).expect("depth fits u8");
        let iface = opt(OptionCode::INTERFACE_ID.0, &[hop]);
        bytes = wrap(
            &bytes,
            hop,
            addr("2001:db8::1"),
            Ipv6Addr::from(u128::from(hop)),
            &iface,
        );
    }
    bytes
}

#[test]
fn relay_chain_32_levels_accepted() {
    let bytes = nested(MAX_RELAY_DEPTH);
    let chain = RelayChain::parse(&bytes).unwrap();
    assert_eq!(chain.levels().len(), 32);
    assert_eq!(chain.interface_id_innermost(), Some(&[31u8][..]));
    assert_eq!(chain.inner().msg_type, MessageType::SOLICIT);
}

#[test]
fn relay_chain_33_levels_too_deep() {
    assert_eq!(
        RelayChain::parse(&nested(MAX_RELAY_DEPTH + 1)).map(|c| c.levels().len()),
        Err(Error::TooDeep)
    );
}

#[test]
fn relay_chain_without_relay_msg_malformed() {
    let mut bytes = vec![MessageType::RELAY_FORW.0, 0];
    bytes.extend([0; 32]);
    bytes.extend(opt(OptionCode::INTERFACE_ID.0, b"x"));
    assert!(Packet::parse(&bytes).is_ok());
    assert_eq!(
        RelayChain::parse(&bytes).map(|c| c.levels().len()),
        Err(Error::Malformed("relay message without RELAY_MSG"))
    );
}

#[test]
fn relay_chain_mixed_types_and_client_message_rejected() {
    let solicit = vector("dhclient_solicit");
    assert!(matches!(
        RelayChain::parse(&solicit),
        Err(Error::Malformed(_))
    ));
    let mut inner = wrap(&solicit, 0, addr("2001:db8::1"), addr("fe80::1"), &[]);
    inner[0] = MessageType::RELAY_REPL.0;
    let outer = wrap(&inner, 1, addr("2001:db8::1"), addr("fe80::1"), &[]);
    assert!(matches!(
        RelayChain::parse(&outer),
        Err(Error::Malformed(_))
    ));
    // A RELAY_MSG whose payload is empty.
    let empty = wrap(&[], 0, addr("2001:db8::1"), addr("fe80::1"), &[]);
    assert_eq!(
        RelayChain::parse(&empty).map(|_| ()),
        Err(Error::Truncated("message header"))
    );
}

#[test]
fn relay_emit_reply_single_level_exact_bytes() {
    let bytes = vector("relay_forw_solicit");
    let chain = RelayChain::parse(&bytes).unwrap();
    let reply_raw = reply_bytes();
    let reply = Message::parse(&reply_raw).unwrap();
    // Expected: RELAY-REPL, same hop/link/peer, Interface-Id echoed, RELAY_MSG(reply); the
    // Remote-ID and Client Link-Layer Address options are not echoed.
    let mut expected = vec![MessageType::RELAY_REPL.0, 0];
    expected.extend(addr("2001:db8:1::1").octets());
    expected.extend(addr("fe80::5054:ff:fea1:b2c3").octets());
    expected.extend(opt(OptionCode::INTERFACE_ID.0, b"ge-0/0/1.100"));
    expected.extend(opt(OptionCode::RELAY_MSG.0, &reply_raw));
    let n = chain.reply_len(&reply);
    assert_eq!(n, expected.len());
    let mut buf = vec![0xa5; n];
    assert_eq!(chain.emit_reply(&reply, &mut buf), Ok(n));
    assert_eq!(buf, expected);
    let mut short = vec![0xa5; n - 1];
    assert_eq!(
        chain.emit_reply(&reply, &mut short),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn relay_emit_reply_mirrors_every_level() {
    for bytes in [vector("relay_double"), nested(MAX_RELAY_DEPTH)] {
        let chain = RelayChain::parse(&bytes).unwrap();
        let status = StatusCodeOption::new(StatusCode::NO_ADDRS_AVAIL, "none");
        let list = [&status as &dyn EmitOption];
        let reply = Message {
            msg_type: MessageType::ADVERTISE,
            transaction_id: 7,
            options: Options::List(&list),
        };
        let n = chain.reply_len(&reply);
        let mut buf = vec![0xa5; n];
        assert_eq!(chain.emit_reply(&reply, &mut buf), Ok(n));
        let back = RelayChain::parse(&buf).unwrap();
        assert_eq!(back.levels().len(), chain.levels().len());
        for (a, b) in chain.levels().iter().zip(back.levels()) {
            assert_eq!(b.msg_type, MessageType::RELAY_REPL);
            assert_eq!(
                (a.hop_count, a.link_address, a.peer_address),
                (b.hop_count, b.link_address, b.peer_address)
            );
            assert_eq!(a.interface_id(), b.interface_id());
            assert_eq!(
                b.count(OptionCode::INTERFACE_ID),
                usize::from(a.interface_id().is_some())
            );
        }
        assert_eq!(back.inner(), reply);
        assert_eq!(
            back.inner().status().unwrap().unwrap().message_str(),
            Some("none")
        );
    }
}

#[test]
fn relay_built_with_payload_matches_vector() {
    let bytes = vector("relay_forw_solicit");
    let parsed = RelayMessage::parse(&bytes).unwrap();
    let solicit_raw = vector("dhclient_solicit");
    let solicit = Message::parse(&solicit_raw).unwrap();
    let raw = parsed.options.raw().unwrap();
    let iface = raw.find(OptionCode::INTERFACE_ID).unwrap();
    let remote = DhcpOption::parse(raw.find(OptionCode::REMOTE_ID).unwrap()).unwrap();
    let lla = DhcpOption::parse(raw.find(OptionCode::CLIENT_LINKLAYER_ADDR).unwrap()).unwrap();
    let msg = DhcpOption::RelayMsg(RelayPayload::Message(&solicit));
    let list: [&dyn EmitOption; 4] = [&iface, &remote, &lla, &msg];
    let built = RelayMessage {
        options: Options::List(&list),
        ..parsed
    };
    let mut buf = vec![0xa5; built.buffer_len()];
    assert_eq!(built.emit(&mut buf), Ok(bytes.len()));
    assert_eq!(buf, bytes);

    // One more level, built around the built relay.
    let inner = DhcpOption::RelayMsg(RelayPayload::Relay(&built));
    let list2 = [&inner as &dyn EmitOption];
    let outer = RelayMessage {
        hop_count: 1,
        options: Options::List(&list2),
        ..parsed
    };
    let mut buf2 = vec![0xa5; outer.buffer_len()];
    outer.emit(&mut buf2).unwrap();
    assert_eq!(RelayChain::parse(&buf2).unwrap().levels().len(), 2);
    let bad = RelayMessage {
        msg_type: MessageType::SOLICIT,
        ..parsed
    };
    assert!(matches!(bad.emit(&mut buf2), Err(Error::Malformed(_))));
}
