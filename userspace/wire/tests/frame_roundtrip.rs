//! Frame emission: build → parse round trips, `reply_to`, in-place emission into poisoned
//! buffers, emission errors, and property tests (round trip; no panic on any input).

use core::net::Ipv6Addr;

use proptest::prelude::*;
use tandem_wire::Error;
use tandem_wire::frame::ethernet::{EtherType, EthernetAddress, VlanStack, VlanTag};
use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame, udp};

const POISON: u8 = 0xa5;

const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().expect("test addresses are valid")
}

/// A SOLICIT-shaped request from a link-local client to All_DHCP_Relay_Agents_and_Servers.
fn multicast_request(vlans: &[VlanTag]) -> FrameRepr {
    FrameRepr {
        dst_mac: EthernetAddress::ipv6_multicast(&ip("ff02::1:2")),
        src_mac: CLIENT_MAC,
        vlans: VlanStack::from_slice(vlans).expect("at most two tags"),
        src_ip: ip("fe80::ff:fe00:2"),
        dst_ip: ip("ff02::1:2"),
        hop_limit: 1,
        traffic_class: 0x20,
        flow_label: 0x5_4321,
        src_port: 546,
        dst_port: 547,
    }
}

fn build(repr: &FrameRepr, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![POISON; repr.buffer_len(payload.len())];
    let n = build_udp_frame(repr, payload, &mut out).expect("buffer of buffer_len() bytes");
    assert_eq!(n, out.len());
    out
}

#[test]
fn build_then_parse_returns_every_field() {
    let tag_sets: [&[VlanTag]; 3] = [
        &[],
        &[VlanTag::c_tag(7)],
        &[VlanTag::s_tag(4095), VlanTag::c_tag(1)],
    ];
    for tags in tag_sets {
        let repr = multicast_request(tags);
        let payload = [1, 0xaa, 0xbb, 0xcc, 0, 8, 0, 2, 0, 0];
        let bytes = build(&repr, &payload);
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(FrameRepr::from(&f), repr);
        assert_eq!(f.payload(), &payload);
        assert_eq!(f.ipv6_offset(), 14 + 4 * tags.len());
        assert_eq!(f.payload_offset(), repr.header_len());
        assert_eq!(f.frame_len(), bytes.len());
        assert_eq!(repr.vlan_tags(), tags);
    }
}

#[test]
fn emit_headers_exact_buffer_succeeds_and_shorter_is_buffer_too_small() {
    let repr = multicast_request(&[VlanTag::c_tag(100)]);
    let payload = [7u8; 33];
    let exact = repr.buffer_len(payload.len());
    assert_eq!(exact, 14 + 4 + 40 + 8 + 33);
    for len in 0..exact {
        let mut buf = vec![POISON; len];
        assert_eq!(
            build_udp_frame(&repr, &payload, &mut buf),
            Err(Error::BufferTooSmall)
        );
        assert!(
            buf.iter().all(|&b| b == POISON),
            "wrote into a short buffer of {len}"
        );
        assert_eq!(
            repr.emit_headers(&mut buf, payload.len()),
            Err(Error::BufferTooSmall)
        );
        assert!(
            buf.iter().all(|&b| b == POISON),
            "emit_headers wrote into {len}"
        );
    }
    let mut buf = vec![POISON; exact];
    assert_eq!(build_udp_frame(&repr, &payload, &mut buf), Ok(exact));
    assert!(Frame::parse(&buf).is_ok());
}

#[test]
fn emit_headers_leaves_payload_and_tail_untouched() {
    let repr = multicast_request(&[VlanTag::s_tag(10), VlanTag::c_tag(20)]);
    let payload: Vec<u8> = (0..=255).collect();
    let mut buf = vec![POISON; 2048];
    let start = repr.header_len();
    buf[start..start + payload.len()].copy_from_slice(&payload);
    let n = repr.emit_headers(&mut buf, payload.len()).unwrap();
    assert_eq!(n, start + payload.len());
    assert_eq!(&buf[start..n], &payload[..]);
    assert!(buf[n..].iter().all(|&b| b == POISON));
    // Every header byte was written: none is left poisoned by accident (0xa5 does not occur
    // in these headers).
    assert!(!buf[..start].contains(&POISON), "{:02x?}", &buf[..start]);
    let f = Frame::parse(&buf[..n]).unwrap();
    assert_eq!(FrameRepr::from(&f), repr);
    assert_eq!(f.payload(), &payload[..]);
}

#[test]
fn emit_headers_payload_over_65527_is_malformed() {
    let repr = multicast_request(&[]);
    let mut buf = vec![POISON; 70_000];
    assert_eq!(
        repr.emit_headers(&mut buf, udp::MAX_PAYLOAD_LEN + 1),
        Err(Error::Malformed("UDP payload over 65527 bytes"))
    );
    assert!(buf.iter().all(|&b| b == POISON));
    let payload = vec![0u8; udp::MAX_PAYLOAD_LEN];
    let n = build_udp_frame(&repr, &payload, &mut buf).unwrap();
    let f = Frame::parse(&buf[..n]).unwrap();
    assert_eq!(
        (f.udp().length, f.payload().len()),
        (0xffff, udp::MAX_PAYLOAD_LEN)
    );
    let too_big = vec![0u8; udp::MAX_PAYLOAD_LEN + 1];
    assert_eq!(
        build_udp_frame(&repr, &too_big, &mut buf),
        Err(Error::Malformed("UDP payload over 65527 bytes"))
    );
}

#[test]
fn emit_headers_out_of_range_fields_are_malformed_and_write_nothing() {
    let base = multicast_request(&[]);
    let cases = [
        (
            FrameRepr {
                flow_label: 0x10_0000,
                ..base
            },
            Error::Malformed("IPv6 flow label over 20 bits"),
        ),
        (
            FrameRepr {
                vlans: VlanStack::from_slice(&[VlanTag::c_tag(4096)]).unwrap(),
                ..base
            },
            Error::Malformed("VLAN ID over 4095"),
        ),
        (
            FrameRepr {
                vlans: VlanStack::from_slice(&[VlanTag {
                    pcp: 8,
                    ..VlanTag::c_tag(1)
                }])
                .unwrap(),
                ..base
            },
            Error::Malformed("VLAN PCP over 7"),
        ),
        (
            FrameRepr {
                vlans: VlanStack::from_slice(&[
                    VlanTag::c_tag(1),
                    VlanTag {
                        tpid: EtherType::IPV6,
                        ..VlanTag::c_tag(1)
                    },
                ])
                .unwrap(),
                ..base
            },
            Error::Malformed("VLAN TPID"),
        ),
    ];
    for (repr, err) in cases {
        let mut buf = vec![POISON; 256];
        assert_eq!(repr.emit_headers(&mut buf, 10), Err(err));
        assert!(buf.iter().all(|&b| b == POISON), "{err:?} wrote bytes");
    }
}

#[test]
fn reply_to_multicast_request_comes_from_our_ip() {
    let request = build(&multicast_request(&[]), &[1, 0, 0, 1]);
    let rx = Frame::parse(&request).unwrap();
    let our_ip = ip("fe80::1");
    let reply = FrameRepr::reply_to(&rx, SERVER_MAC, our_ip);
    assert_eq!(
        reply,
        FrameRepr {
            dst_mac: CLIENT_MAC,
            src_mac: SERVER_MAC,
            vlans: VlanStack::EMPTY,
            src_ip: our_ip,
            dst_ip: ip("fe80::ff:fe00:2"),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            src_port: 547,
            dst_port: 546,
        }
    );
}

#[test]
fn reply_to_unicast_request_comes_from_its_destination() {
    // A relay (or a client using a unicast address) talking to our global address, from
    // port 547 (RFC 8415 §19: relays send from 547; the reply goes back to that port).
    let request = FrameRepr {
        dst_mac: SERVER_MAC,
        src_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x99]),
        src_ip: ip("2001:db8:1::1"),
        dst_ip: ip("2001:db8::53"),
        hop_limit: 63,
        src_port: 547,
        ..multicast_request(&[])
    };
    let rx_bytes = build(&request, &[12, 0]);
    let rx = Frame::parse(&rx_bytes).unwrap();
    let reply = FrameRepr::reply_to(&rx, SERVER_MAC, ip("2001:db8::1"));
    assert_eq!(
        reply.src_ip,
        ip("2001:db8::53"),
        "answers from the address asked"
    );
    assert_eq!(reply.dst_ip, ip("2001:db8:1::1"));
    assert_eq!((reply.src_port, reply.dst_port), (547, 547));
    assert_eq!(reply.dst_mac, EthernetAddress([0x02, 0, 0, 0, 0, 0x99]));
    assert_eq!(reply.hop_limit, 64);
}

#[test]
fn reply_to_keeps_vlan_tags_as_received() {
    let tags = [
        VlanTag {
            tpid: EtherType::QINQ_9100,
            pcp: 6,
            dei: true,
            vid: 3000,
        },
        VlanTag {
            tpid: EtherType::VLAN_8021Q,
            pcp: 1,
            dei: false,
            vid: 42,
        },
    ];
    let request = build(&multicast_request(&tags), &[1, 2, 3, 4]);
    let rx = Frame::parse(&request).unwrap();
    let reply = FrameRepr::reply_to(&rx, SERVER_MAC, ip("fe80::1"));
    assert_eq!(reply.vlan_tags(), &tags);
    let tx_bytes = build(&reply, &[7, 2, 3, 4]);
    let tx = Frame::parse(&tx_bytes).unwrap();
    assert_eq!(tx.vlans().as_slice(), &tags);
    assert_eq!(tx.ipv6_offset(), rx.ipv6_offset());
}

#[test]
fn reply_in_place_in_a_umem_frame_parses_with_a_valid_checksum() {
    // The datapath's sequence: receive into a 2048-byte UMEM frame, parse, write the reply
    // after the reply's headers, emit the headers in front of it, transmit.
    let mut umem = [POISON; 2048];
    let request = build(
        &multicast_request(&[VlanTag::c_tag(100)]),
        &[1, 0xab, 0xcd, 0xef],
    );
    umem[..request.len()].copy_from_slice(&request);
    let repr = {
        let rx = Frame::parse(&umem[..request.len()]).unwrap();
        FrameRepr::reply_to(&rx, SERVER_MAC, ip("fe80::1"))
    };
    let reply_msg = [2, 0xab, 0xcd, 0xef, 0, 2, 0, 0];
    umem[repr.header_len()..][..reply_msg.len()].copy_from_slice(&reply_msg);
    let n = repr.emit_headers(&mut umem, reply_msg.len()).unwrap();
    let tx = Frame::parse(&umem[..n]).unwrap();
    assert_eq!(tx.payload(), &reply_msg);
    assert_eq!((tx.src_port(), tx.dst_port()), (547, 546));
    let udp_bytes = &umem[tx.udp_offset()..n];
    assert_eq!(
        udp::verify_checksum(&tx.src_ip(), &tx.dst_ip(), udp_bytes),
        Ok(())
    );
}

fn arb_tag() -> impl Strategy<Value = VlanTag> {
    (
        prop_oneof![
            Just(EtherType::VLAN_8021Q),
            Just(EtherType::VLAN_8021AD),
            Just(EtherType::QINQ_9100)
        ],
        0u8..8,
        any::<bool>(),
        0u16..4096,
    )
        .prop_map(|(tpid, pcp, dei, vid)| VlanTag {
            tpid,
            pcp,
            dei,
            vid,
        })
}

prop_compose! {
    fn arb_repr()(
        dst in any::<[u8; 6]>(),
        src in any::<[u8; 6]>(),
        tags in prop::collection::vec(arb_tag(), 0..=2),
        src_ip in any::<u128>(),
        dst_ip in any::<u128>(),
        hop_limit in any::<u8>(),
        traffic_class in any::<u8>(),
        flow_label in 0u32..=0xf_ffff,
        src_port in any::<u16>(),
        dst_port in any::<u16>(),
    ) -> FrameRepr {
        FrameRepr {
            dst_mac: EthernetAddress(dst),
            src_mac: EthernetAddress(src),
            vlans: VlanStack::from_slice(&tags).expect("the strategy makes at most two"),
            src_ip: Ipv6Addr::from(src_ip),
            dst_ip: Ipv6Addr::from(dst_ip),
            hop_limit,
            traffic_class,
            flow_label,
            src_port,
            dst_port,
        }
    }
}

proptest! {
    #[test]
    fn prop_build_then_parse_gives_back_every_field(
        repr in arb_repr(),
        payload in prop::collection::vec(any::<u8>(), 0..700),
    ) {
        let bytes = build(&repr, &payload);
        let f = Frame::parse(&bytes).unwrap();
        prop_assert_eq!(FrameRepr::from(&f), repr);
        prop_assert_eq!(f.payload(), &payload[..]);
        prop_assert_eq!(f.payload_offset(), repr.header_len());
        prop_assert_eq!(f.frame_len(), bytes.len());
        let udp_bytes = &bytes[f.udp_offset()..];
        prop_assert_eq!(udp::verify_checksum(&repr.src_ip, &repr.dst_ip, udp_bytes), Ok(()));
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Frame::parse(&bytes);
    }

    #[test]
    fn prop_mutated_frames_never_panic(
        repr in arb_repr(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        // Start from a valid frame so the mutations reach the deeper layers.
        let mut bytes = build(&repr, &payload);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let len = cut.index(bytes.len() + 1);
        if let Ok(f) = Frame::parse(&bytes[..len]) {
            // Whatever parsed must be internally consistent.
            prop_assert!(f.frame_len() <= len);
            prop_assert_eq!(f.payload().len() + 8, usize::from(f.udp().length));
        }
    }
}
