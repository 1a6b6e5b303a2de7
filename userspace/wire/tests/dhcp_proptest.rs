//! Property tests of the DHCPv6 codec: typed options → emit → parse → emit is stable, and
//! arbitrary bytes never panic the parsers (and re-emit verbatim when they parse).

mod dhcp_common;

use std::net::Ipv6Addr;

use proptest::prelude::*;
use tandem_wire::codec::Writer;
use tandem_wire::dhcp::domain::{DomainList, DomainName, encode_name};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::{
    AddrList, Auth, ClientFqdn, ClientLinkLayerAddr, CodeList, DhcpOption, OpaqueList, RemoteId,
    VendorClass, VendorOpts,
};
use tandem_wire::dhcp::relay::{RelayChain, RelayMessage};
use tandem_wire::dhcp::{
    Duid, IaAddr, IaNa, IaPd, IaPrefix, IaTa, MessageType, Packet, StatusCode, StatusCodeOption,
};
use tandem_wire::option::{EmitOption, OptionCode, OptionIter, Options, RawOption};

/// Owned inputs for one typed option; `build` borrows them into a [`DhcpOption`].
#[derive(Clone, Debug)]
struct Spec {
    kind: u8,
    n: u32,
    bytes: Vec<u8>,
    codes: Vec<OptionCode>,
    addrs: Vec<Ipv6Addr>,
    encoded: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..33,
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 1..40),
        proptest::collection::vec(any::<u16>().prop_map(OptionCode), 0..6),
        proptest::collection::vec(any::<u128>().prop_map(Ipv6Addr::from), 0..4),
        proptest::collection::vec("[a-z0-9-]{1,12}", 0..4),
    )
        .prop_map(|(kind, n, bytes, codes, addrs, labels)| {
            // Pre-encoded wire data some kinds need: a domain list or an opaque list.
            let mut encoded = vec![0u8; 512];
            let len = if matches!(kind, 12 | 25) {
                let names: Vec<&str> = labels.iter().map(String::as_str).collect();
                DomainList::encode(&names, &mut encoded).expect("valid by construction")
            } else {
                let items: Vec<&[u8]> = labels.iter().map(String::as_bytes).collect();
                OpaqueList::encode(&items, &mut encoded).expect("valid by construction")
            };
            encoded.truncate(len);
            Spec {
                kind,
                n,
                bytes,
                codes,
                addrs,
                encoded,
            }
        })
}

/// Byte strings of 1..=128 bytes are valid DUID contents; a DUID is written in `buf`.
fn build<'a>(s: &'a Spec, duid_buf: &'a [u8], nested: &'a [&'a dyn EmitOption]) -> DhcpOption<'a> {
    let duid = Duid::parse(duid_buf).expect("valid by construction");
    let n = s.n;
    let list = Options::List(nested);
    let addr = s.addrs.first().copied().unwrap_or(Ipv6Addr::LOCALHOST);
    match s.kind {
        0 => DhcpOption::ClientId(duid),
        1 => DhcpOption::ServerId(duid),
        2 => DhcpOption::IaNa(IaNa {
            iaid: n,
            t1: n / 2,
            t2: n / 3,
            options: list,
        }),
        3 => DhcpOption::IaTa(IaTa {
            iaid: n,
            options: list,
        }),
        4 => DhcpOption::IaAddr(IaAddr {
            addr,
            preferred: n,
            valid: !n,
            options: list,
        }),
        5 => DhcpOption::Oro(CodeList::List(&s.codes)),
        6 => DhcpOption::Preference(n as u8),
        7 => DhcpOption::ElapsedTime(n as u16),
        8 => DhcpOption::Auth(Auth {
            protocol: 3,
            algorithm: 1,
            rdm: 0,
            replay_detection: u64::from(n) << 7,
            info: &s.bytes,
        }),
        9 => DhcpOption::Unicast(addr),
        10 => DhcpOption::StatusCode(StatusCodeOption {
            code: StatusCode(n as u16),
            message: &s.bytes,
        }),
        11 => DhcpOption::RapidCommit,
        12 => DhcpOption::DomainList(DomainList::parse(&s.encoded).expect("valid by construction")),
        13 => DhcpOption::UserClass(
            OpaqueList::parse(&s.encoded, "USER_CLASS").expect("valid by construction"),
        ),
        14 => DhcpOption::VendorOpts(VendorOpts {
            enterprise: n,
            options: list,
        }),
        15 => DhcpOption::VendorClass(VendorClass {
            enterprise: n,
            data: OpaqueList::parse(&s.encoded, "VENDOR_CLASS").expect("valid by construction"),
        }),
        16 => DhcpOption::InterfaceId(&s.bytes),
        17 => DhcpOption::ReconfMsg(MessageType(n as u8)),
        18 => DhcpOption::ReconfAccept,
        19 => DhcpOption::DnsServers(AddrList::List(&s.addrs)),
        20 => DhcpOption::IaPd(IaPd {
            iaid: n,
            t1: 1,
            t2: 2,
            options: list,
        }),
        21 => DhcpOption::IaPrefix(IaPrefix {
            preferred: n,
            valid: n,
            prefix_len: (n % 129) as u8,
            prefix: addr,
            options: list,
        }),
        22 => DhcpOption::InformationRefreshTime(n),
        23 => DhcpOption::RemoteId(RemoteId {
            enterprise: n,
            remote_id: &s.bytes,
        }),
        24 => DhcpOption::SubscriberId(&s.bytes),
        25 => DhcpOption::ClientFqdn(ClientFqdn {
            flags: n as u8,
            name: DomainList::parse(&s.encoded)
                .expect("valid by construction")
                .iter()
                .next()
                .unwrap_or(DomainName::parse(&[]).expect("valid by construction")),
        }),
        26 => DhcpOption::Ero(CodeList::List(&s.codes)),
        27 => DhcpOption::ClientLinkLayerAddr(ClientLinkLayerAddr {
            hw_type: n as u16,
            addr: &s.bytes,
        }),
        28 => DhcpOption::SolMaxRt(n),
        29 => DhcpOption::InfMaxRt(n),
        30 => DhcpOption::RelaySourcePort(n as u16),
        31 => DhcpOption::Unknown(RawOption {
            code: OptionCode(0x8000 | n as u16),
            data: &s.bytes,
        }),
        _ => DhcpOption::Unknown(RawOption {
            code: OptionCode::F_MCLT,
            data: &s.bytes,
        }),
    }
}

fn emit_vec(o: &dyn EmitOption) -> Vec<u8> {
    let mut buf = vec![0xa5; o.wire_len()];
    o.emit(&mut Writer::new(&mut buf))
        .expect("valid by construction");
    buf
}

/// Every option of `block` that decodes typed re-emits exactly its own bytes.
fn typed_reemit_matches(block: &[u8]) -> bool {
    OptionIter::new(block).all(|raw| {
        let Ok(raw) = raw else { return false };
        match DhcpOption::parse(raw) {
            Ok(t) => {
                let mut expected = Vec::new();
                expected.extend(raw.code.0.to_be_bytes());
                expected.extend(
                    u16::try_from(raw.data.len())
                        .expect("option-len")
                        .to_be_bytes(),
                );
                expected.extend(raw.data);
                emit_vec(&t) == expected
            }
            Err(_) => true,
        }
    })
}

proptest! {
    #[test]
    fn typed_options_emit_parse_emit_stable(specs in proptest::collection::vec(spec(), 0..8), txid in 0u32..0x100_0000) {
        let mut duid_buf = [0u8; 130];
        let status = StatusCodeOption::new(StatusCode::SUCCESS, "ok");
        let nested: [&dyn EmitOption; 1] = [&status];
        let opts: Vec<DhcpOption<'_>> = specs
            .iter()
            .map(|s| {
                let contents = &s.bytes[..s.bytes.len().min(128)];
                let n = Duid::emit_raw(tandem_wire::dhcp::DuidType(s.n as u16), contents, &mut duid_buf).unwrap();
                // Each DUID needs its own storage: leak is fine in a test.
                let duid: &'static [u8] = Box::leak(duid_buf[..n].to_vec().into_boxed_slice());
                build(s, duid, &nested)
            })
            .collect();
        let list: Vec<&dyn EmitOption> = opts.iter().map(|o| o as &dyn EmitOption).collect();
        let msg = Message { msg_type: MessageType::REPLY, transaction_id: txid, options: Options::List(&list) };
        let mut buf = vec![0xa5; msg.buffer_len()];
        prop_assert_eq!(msg.emit(&mut buf), Ok(buf.len()));
        let parsed = Message::parse(&buf).unwrap();
        prop_assert_eq!(parsed, msg);
        let mut again = vec![0xa5; parsed.buffer_len()];
        prop_assert_eq!(parsed.emit(&mut again), Ok(buf.len()));
        prop_assert_eq!(&again, &buf);
        // Each option parses typed to something that emits the same bytes.
        let typed: Vec<_> = parsed.typed_options().collect();
        prop_assert_eq!(typed.len(), opts.len());
        for (t, o) in typed.into_iter().zip(&opts) {
            let t = t.unwrap();
            prop_assert_eq!(emit_vec(&t), emit_vec(o));
        }
    }

    #[test]
    fn arbitrary_bytes_parse_without_panic_and_reemit(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = Packet::parse(&bytes) {
            let mut buf = vec![0xa5; p.buffer_len()];
            prop_assert_eq!(p.emit(&mut buf), Ok(bytes.len()));
            prop_assert_eq!(&buf, &bytes);
            prop_assert!(typed_reemit_matches(p.options().raw().unwrap().as_bytes()));
        }
        let _ = RelayChain::parse(&bytes);
        let _ = Duid::parse(&bytes);
        let _ = DomainName::parse(&bytes);
        let _ = DomainList::parse(&bytes);
    }

    #[test]
    fn mutated_vectors_parse_without_panic_and_reemit(
        which in 0..dhcp_common::VECTORS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = dhcp_common::hex(dhcp_common::VECTORS[which].1);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(p) = Packet::parse(&bytes) {
            let mut buf = vec![0xa5; p.buffer_len()];
            prop_assert_eq!(p.emit(&mut buf), Ok(bytes.len()));
            prop_assert_eq!(&buf, &bytes);
            prop_assert!(typed_reemit_matches(p.options().raw().unwrap().as_bytes()));
        }
        if let Ok(chain) = RelayChain::parse(&bytes) {
            let reply = Message { msg_type: MessageType::REPLY, transaction_id: 1, options: Options::default() };
            let mut buf = vec![0xa5; chain.reply_len(&reply)];
            prop_assert_eq!(chain.emit_reply(&reply, &mut buf), Ok(buf.len()));
            prop_assert_eq!(RelayChain::parse(&buf).map(|c| c.levels().len()), Ok(chain.levels().len()));
        }
    }

    #[test]
    fn arbitrary_option_data_parses_typed_without_panic(code in 0u16..140, data in proptest::collection::vec(any::<u8>(), 0..80)) {
        let raw = RawOption { code: OptionCode(code), data: &data };
        if let Ok(t) = DhcpOption::parse(raw) {
            prop_assert_eq!(t.code(), raw.code);
            let mut expected = vec![0u8; 4];
            expected[..2].copy_from_slice(&code.to_be_bytes());
            expected[2..].copy_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            expected.extend(&data);
            prop_assert_eq!(emit_vec(&t), expected);
        }
    }

    #[test]
    fn relay_wrapping_random_message_round_trips(hops in 1usize..6, txid in 0u32..0x100_0000, iface in proptest::collection::vec(any::<u8>(), 0..10)) {
        let mut bytes = vec![MessageType::SOLICIT.0];
        bytes.extend(&txid.to_be_bytes()[1..]);
        for hop in 0..hops {
            let mut outer = vec![MessageType::RELAY_FORW.0, hop as u8];
            outer.extend(Ipv6Addr::from(hop as u128 + 1).octets());
            outer.extend(Ipv6Addr::LOCALHOST.octets());
            outer.extend(dhcp_common::opt(18, &iface));
            outer.extend(dhcp_common::opt(9, &bytes));
            bytes = outer;
        }
        let chain = RelayChain::parse(&bytes).unwrap();
        prop_assert_eq!(chain.levels().len(), hops);
        prop_assert_eq!(chain.innermost_link_address(), Some(Ipv6Addr::from(1u128)));
        let reply = Message { msg_type: MessageType::REPLY, transaction_id: txid, options: Options::default() };
        let mut buf = vec![0xa5; chain.reply_len(&reply)];
        prop_assert_eq!(chain.emit_reply(&reply, &mut buf), Ok(buf.len()));
        let back = RelayChain::parse(&buf).unwrap();
        prop_assert_eq!(back.inner(), reply);
        prop_assert_eq!(back.levels().len(), hops);
        prop_assert!(back.levels().iter().all(|l: &RelayMessage<'_>| l.interface_id() == Some(&iface[..])));
    }

    #[test]
    fn dotted_names_encode_and_display_round_trip(labels in proptest::collection::vec("[a-z0-9-]{1,20}", 1..5)) {
        let dotted = labels.join(".");
        let mut buf = [0u8; 256];
        let n = encode_name(&dotted, true, &mut buf).unwrap();
        let name = DomainName::parse(&buf[..n]).unwrap();
        prop_assert_eq!(name.to_string(), format!("{dotted}."));
    }
}
