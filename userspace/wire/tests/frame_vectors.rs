//! Frame vectors (Ethernet / 802.1Q / IPv6 / UDP) and their malformed twins.
//!
//! Provenance:
//! * `UNTAGGED`, `VLAN_100`, `QINQ_88A8`, `QINQ_9100`, `HBH_DSTOPTS`, `AH_UNICAST`: hand-built
//!   per IEEE 802.1Q §9.6 (tags), RFC 8200 §3/§4 (IPv6, Hop-by-Hop and Destination Options
//!   with a PadN option), RFC 4302 §2 (AH, Payload Len 4 = 24 bytes) and RFC 768. The UDP
//!   checksums were computed by a separate Python script (RFC 8200 §8.1 pseudo-header, 16-bit
//!   word sum) and are cross-checked below against [`naive_checksum`].
//!   The UDP payload is a DHCPv6 SOLICIT (RFC 8415 §16.2): transaction id 0x0a0b0c, Client
//!   Identifier (DUID-LL 02:00:00:00:00:02), Elapsed Time 0, an empty IA_NA (IAID 1) and an
//!   Option Request for DNS servers (23) and domain list (24).
//! * `PUBLISHED_SOLICIT`: the `pkt_dhcpv6_solicit` frame from the OpenDaylight OpFlex agent's
//!   tests (`opendaylight/opflex`, `agent-ovs/ovs/test/PacketInHandler_test.cpp`), a SOLICIT
//!   from fe80::200:ff:fe00:8000 to ff02::1:2, 546 → 547, carrying checksum 0x97d7.

use core::net::Ipv6Addr;

use hex_literal::hex;
use tandem_wire::Error;
use tandem_wire::frame::ethernet::{EtherType, EthernetAddress, VlanTag};
use tandem_wire::frame::ipv6::IpProtocol;
use tandem_wire::frame::udp;
use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame};

/// The DHCPv6 SOLICIT every hand-built vector carries (48 bytes).
const SOLICIT: [u8; 48] = hex!(
    "01 0a0b0c"
    "0001 000a 0003 0001 020000000002"
    "0008 0002 0000"
    "0003 000c 00000001 00000000 00000000"
    "0006 0004 0017 0018"
);

/// Untagged: 33:33:00:01:00:02 ← 02:00:00:00:00:02, fe80::ff:fe00:2 → ff02::1:2, hop limit 1,
/// UDP 546 → 547, length 56, checksum 0xf036.
const UNTAGGED: [u8; 110] = hex!(
    "333300010002 020000000002 86dd"
    "60000000 0038 11 01 fe80000000000000000000fffe000002 ff020000000000000000000000010002"
    "0222 0223 0038 f036"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// As `UNTAGGED` with one C-tag (TPID 0x8100, PCP 0, VID 100).
const VLAN_100: [u8; 114] = hex!(
    "333300010002 020000000002 8100 0064 86dd"
    "60000000 0038 11 01 fe80000000000000000000fffe000002 ff020000000000000000000000010002"
    "0222 0223 0038 f036"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// QinQ: S-tag 0x88a8 (PCP 3, VID 200) then C-tag 0x8100 (PCP 5, DEI 1, VID 100).
const QINQ_88A8: [u8; 118] = hex!(
    "333300010002 020000000002 88a8 60c8 8100 b064 86dd"
    "60000000 0038 11 01 fe80000000000000000000fffe000002 ff020000000000000000000000010002"
    "0222 0223 0038 f036"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// Pre-standard QinQ: outer TPID 0x9100 (VID 300), inner 0x8100 (VID 100).
const QINQ_9100: [u8; 118] = hex!(
    "333300010002 020000000002 9100 012c 8100 0064 86dd"
    "60000000 0038 11 01 fe80000000000000000000fffe000002 ff020000000000000000000000010002"
    "0222 0223 0038 f036"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// Hop-by-Hop (→ 60, PadN 4) then Destination Options (→ 17, PadN 4) before UDP; traffic
/// class 0xb8, flow label 0xabcde.
const HBH_DSTOPTS: [u8; 126] = hex!(
    "333300010002 020000000002 86dd"
    "6b8abcde 0048 00 01 fe80000000000000000000fffe000002 ff020000000000000000000000010002"
    "3c 00 0104 00000000"
    "11 00 0104 00000000"
    "0222 0223 0038 f036"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// AH (→ 17, Payload Len 4, SPI 0x1000, sequence 1, 12-byte ICV) before UDP; unicast
/// fd00:dc::2 → fd00:dc::1, hop limit 64, to 02:00:00:00:00:01; UDP checksum 0xf102.
const AH_UNICAST: [u8; 134] = hex!(
    "020000000001 020000000002 86dd"
    "60000000 0050 33 40 fd0000dc000000000000000000000002 fd0000dc000000000000000000000001"
    "11 04 0000 00001000 00000001 000000000000000000000000"
    "0222 0223 0038 f102"
    "010a0b0c0001000a000300010200000000020008000200000003000c000000010000000000000000"
    "0006000400170018"
);

/// See the module documentation for its source.
const PUBLISHED_SOLICIT: [u8; 118] = hex!(
    "33330001000200000000800086dd6000000000401101fe80000000000000020000fffe008000ff0200000000"
    "0000000000000001000202220223004097d70133b9a00001000e000100011c6be9b500000000800000060008"
    "001700180027001f0008000200000003000c0000800000000e1000001518"
);

/// Every valid vector with its IPv6 and UDP header offsets.
const VECTORS: [(&str, &[u8], usize, usize); 7] = [
    ("UNTAGGED", &UNTAGGED, 14, 54),
    ("VLAN_100", &VLAN_100, 18, 58),
    ("QINQ_88A8", &QINQ_88A8, 22, 62),
    ("QINQ_9100", &QINQ_9100, 22, 62),
    ("HBH_DSTOPTS", &HBH_DSTOPTS, 14, 70),
    ("AH_UNICAST", &AH_UNICAST, 14, 78),
    ("PUBLISHED_SOLICIT", &PUBLISHED_SOLICIT, 14, 54),
];

fn client_ll() -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 2)
}

fn all_dhcp() -> Ipv6Addr {
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2)
}

/// RFC 8200 §8.1 checksum, written the obvious way: build the pseudo-header and the datagram
/// (checksum field zeroed) as one byte string, add it up 16 bits at a time, folding the carry
/// after every addition, and complement.
fn naive_checksum(src: Ipv6Addr, dst: Ipv6Addr, udp: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(
        &u32::try_from(udp.len())
            .expect("short test data")
            .to_be_bytes(),
    );
    bytes.extend_from_slice(&[0, 0, 0, 17]);
    let mut datagram = udp.to_vec();
    datagram[6] = 0;
    datagram[7] = 0;
    bytes.extend_from_slice(&datagram);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        if sum > 0xffff {
            sum -= 0xffff;
        }
    }
    let c = !(sum as u16);
    if c == 0 { 0xffff } else { c }
}

/// The source and destination addresses of the IPv6 header at `ipv6_offset`.
fn addresses(frame: &[u8], ipv6_offset: usize) -> (Ipv6Addr, Ipv6Addr) {
    let at = |off: usize| {
        let octets: [u8; 16] = frame[ipv6_offset + off..][..16]
            .try_into()
            .expect("16 bytes");
        Ipv6Addr::from(octets)
    };
    (at(8), at(24))
}

/// Rewrites the UDP checksum of `frame` (naively) after a test changed it.
fn refresh_checksum(frame: &mut [u8], ipv6_offset: usize, udp_offset: usize) {
    let (src, dst) = addresses(frame, ipv6_offset);
    let udp_len = usize::from(u16::from_be_bytes([
        frame[udp_offset + 4],
        frame[udp_offset + 5],
    ]));
    let end = (udp_offset + udp_len).min(frame.len());
    let sum = naive_checksum(src, dst, &frame[udp_offset..end]);
    frame[udp_offset + 6..udp_offset + 8].copy_from_slice(&sum.to_be_bytes());
}

/// A frame: untagged Ethernet, IPv6 fe80::ff:fe00:2 → ff02::1:2 whose payload is `ext`
/// (extension headers, already chained) and a UDP SOLICIT; `first` is the IPv6 Next Header.
fn frame_with_ext(first: u8, ext: &[u8]) -> Vec<u8> {
    let mut f = UNTAGGED[..14].to_vec();
    let payload_len = u16::try_from(ext.len() + 8 + SOLICIT.len()).expect("short test data");
    f.extend_from_slice(&UNTAGGED[14..18]);
    f.extend_from_slice(&payload_len.to_be_bytes());
    f.push(first);
    f.extend_from_slice(&UNTAGGED[21..54]);
    f.extend_from_slice(ext);
    f.extend_from_slice(&UNTAGGED[54..]);
    let udp_offset = 54 + ext.len();
    refresh_checksum(&mut f, 14, udp_offset);
    f
}

#[test]
fn vector_untagged_solicit_parses_every_field() {
    let f = Frame::parse(&UNTAGGED).unwrap();
    assert_eq!(f.dst_mac(), EthernetAddress([0x33, 0x33, 0, 1, 0, 2]));
    assert_eq!(f.src_mac(), EthernetAddress([2, 0, 0, 0, 0, 2]));
    assert!(f.vlans().is_empty());
    assert_eq!((f.src_ip(), f.dst_ip()), (client_ll(), all_dhcp()));
    assert_eq!(
        (f.hop_limit(), f.traffic_class(), f.flow_label()),
        (1, 0, 0)
    );
    assert_eq!((f.src_port(), f.dst_port()), (546, 547));
    assert_eq!(f.udp().length, 56);
    assert_eq!(f.udp().checksum, 0xf036);
    assert_eq!(f.payload(), &SOLICIT);
    assert_eq!(
        (f.ipv6_offset(), f.udp_offset(), f.payload_offset()),
        (14, 54, 62)
    );
    assert_eq!((f.frame_len(), f.extension_headers()), (110, 0));
    assert_eq!(f.ipv6().next_header, IpProtocol::UDP);
}

#[test]
fn vector_single_vlan_parses_tag() {
    let f = Frame::parse(&VLAN_100).unwrap();
    assert_eq!(f.vlans().as_slice(), &[VlanTag::c_tag(100)]);
    assert_eq!(
        (f.ipv6_offset(), f.udp_offset(), f.payload_offset()),
        (18, 58, 66)
    );
    assert_eq!(f.payload(), &SOLICIT);
    assert_eq!(f.ethernet().ethertype, EtherType::IPV6);
}

#[test]
fn vector_qinq_88a8_parses_both_tags() {
    let f = Frame::parse(&QINQ_88A8).unwrap();
    let outer = VlanTag {
        tpid: EtherType::VLAN_8021AD,
        pcp: 3,
        dei: false,
        vid: 200,
    };
    let inner = VlanTag {
        tpid: EtherType::VLAN_8021Q,
        pcp: 5,
        dei: true,
        vid: 100,
    };
    assert_eq!(f.vlans().as_slice(), &[outer, inner]);
    assert_eq!(f.vlans().tags(), &[outer, inner]);
    assert_eq!((f.ipv6_offset(), f.payload_offset()), (22, 70));
    assert_eq!(f.payload(), &SOLICIT);
}

#[test]
fn vector_qinq_9100_parses_both_tags() {
    let f = Frame::parse(&QINQ_9100).unwrap();
    let outer = VlanTag {
        tpid: EtherType::QINQ_9100,
        pcp: 0,
        dei: false,
        vid: 300,
    };
    assert_eq!(f.vlans().as_slice(), &[outer, VlanTag::c_tag(100)]);
    assert_eq!(f.payload(), &SOLICIT);
}

#[test]
fn vector_hop_by_hop_and_destination_options_are_skipped() {
    let f = Frame::parse(&HBH_DSTOPTS).unwrap();
    assert_eq!(f.ipv6().next_header, IpProtocol::HOPOPT);
    assert_eq!(f.extension_headers(), 2);
    assert_eq!((f.udp_offset(), f.payload_offset()), (70, 78));
    assert_eq!((f.traffic_class(), f.flow_label()), (0xb8, 0xabcde));
    assert_eq!(f.payload(), &SOLICIT);
}

#[test]
fn vector_ah_is_skipped_in_four_octet_units() {
    let f = Frame::parse(&AH_UNICAST).unwrap();
    assert_eq!(f.extension_headers(), 1);
    assert_eq!(f.udp_offset(), 14 + 40 + 24);
    assert_eq!(f.src_ip(), "fd00:dc::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(f.dst_ip(), "fd00:dc::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(f.hop_limit(), 64);
    assert_eq!(f.payload(), &SOLICIT);
}

#[test]
fn vector_published_solicit_checksum_verifies() {
    let f = Frame::parse(&PUBLISHED_SOLICIT).unwrap();
    assert_eq!(
        f.src_ip(),
        "fe80::200:ff:fe00:8000".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(f.dst_ip(), all_dhcp());
    assert_eq!(
        (f.src_port(), f.dst_port(), f.udp().checksum),
        (546, 547, 0x97d7)
    );
    assert_eq!(f.payload().len(), 56);
    assert_eq!(f.payload()[0], 1, "SOLICIT");
    let udp_bytes = &PUBLISHED_SOLICIT[54..];
    assert_eq!(udp::checksum(&f.src_ip(), &f.dst_ip(), udp_bytes), 0x97d7);
    assert_eq!(
        udp::verify_checksum(&f.src_ip(), &f.dst_ip(), udp_bytes),
        Ok(())
    );
}

#[test]
fn checksum_matches_naive_on_every_vector() {
    for (name, bytes, ipv6_offset, udp_offset) in VECTORS {
        let (src, dst) = addresses(bytes, ipv6_offset);
        let udp_bytes = &bytes[udp_offset..];
        let carried = u16::from_be_bytes([udp_bytes[6], udp_bytes[7]]);
        assert_eq!(
            naive_checksum(src, dst, udp_bytes),
            carried,
            "{name}: naive"
        );
        assert_eq!(
            udp::checksum(&src, &dst, udp_bytes),
            carried,
            "{name}: fast"
        );
    }
}

#[test]
fn checksum_matches_naive_for_every_length_and_alignment() {
    // Deterministic pseudo-random bytes (xorshift), so lengths 8..=300 cover every tail size
    // of the 8-byte fast path, odd lengths, and sums with many carries (0xff-heavy data).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::new();
    for i in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.push(if i % 3 == 0 { 0xff } else { state as u8 });
    }
    let src: Ipv6Addr = "2001:db8::ffff:ffff".parse().unwrap();
    let dst: Ipv6Addr = "ff05::1:3".parse().unwrap();
    for len in 8..=data.len() {
        let udp_bytes = &data[..len];
        assert_eq!(
            udp::checksum(&src, &dst, udp_bytes),
            naive_checksum(src, dst, udp_bytes),
            "length {len}"
        );
    }
}

#[test]
fn checksum_zero_sum_is_sent_as_ffff() {
    // Choose the payload word so the sum of everything is 0xffff: the complement is 0, which
    // RFC 768 sends as 0xffff.
    let src = Ipv6Addr::UNSPECIFIED;
    let mut udp_bytes = [0u8, 1, 0, 2, 0, 10, 0, 0, 0, 0];
    let partial = !naive_checksum(src, src, &udp_bytes); // the folded sum so far
    udp_bytes[8..10].copy_from_slice(&(0xffff - partial).to_be_bytes());
    assert_eq!(naive_checksum(src, src, &udp_bytes), 0xffff);
    assert_eq!(udp::checksum(&src, &src, &udp_bytes), 0xffff);
    udp_bytes[6..8].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(udp::verify_checksum(&src, &src, &udp_bytes), Ok(()));
}

#[test]
fn vectors_without_extension_headers_re_emit_byte_exact() {
    for (name, bytes, ..) in [VECTORS[0], VECTORS[1], VECTORS[2], VECTORS[3], VECTORS[6]] {
        let f = Frame::parse(bytes).unwrap();
        let repr = FrameRepr::from(&f);
        let mut out = vec![0xa5; bytes.len()];
        assert_eq!(
            build_udp_frame(&repr, f.payload(), &mut out),
            Ok(bytes.len()),
            "{name}"
        );
        assert_eq!(out, bytes, "{name}");
    }
}

#[test]
fn vector_ethernet_padding_is_ignored() {
    let mut padded = UNTAGGED.to_vec();
    padded.extend_from_slice(&[0; 20]);
    let f = Frame::parse(&padded).unwrap();
    assert_eq!(f.payload(), &SOLICIT);
    assert_eq!(f.frame_len(), UNTAGGED.len());
}

#[test]
fn vector_udp_length_shorter_than_ip_payload_trims_payload() {
    // UDP length 52 inside a 56-byte IPv6 payload: the last 4 bytes are not UDP data.
    let mut f = UNTAGGED;
    f[58..60].copy_from_slice(&52u16.to_be_bytes());
    refresh_checksum(&mut f, 14, 54);
    let parsed = Frame::parse(&f).unwrap();
    assert_eq!(parsed.payload(), &SOLICIT[..44]);
}

#[test]
fn vectors_every_truncation_errs() {
    for (name, bytes, ..) in VECTORS {
        for len in 0..bytes.len() {
            let err = Frame::parse(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, Error::Truncated(_) | Error::BadLength(_)),
                "{name} cut at {len}: {err:?}"
            );
        }
    }
}

#[test]
fn vector_wrong_ip_version_is_malformed() {
    for version in [0u8, 4, 5, 7, 15] {
        let mut f = UNTAGGED;
        f[14] = version << 4;
        assert_eq!(
            Frame::parse(&f),
            Err(Error::Malformed("IP version is not 6")),
            "{version}"
        );
    }
}

#[test]
fn vector_ip_payload_length_past_frame_is_bad_length() {
    let mut f = UNTAGGED;
    f[18..20].copy_from_slice(&57u16.to_be_bytes());
    assert_eq!(
        Frame::parse(&f),
        Err(Error::BadLength("IPv6 payload length"))
    );
}

#[test]
fn vector_udp_length_too_long_is_bad_length() {
    let mut f = UNTAGGED;
    f[58..60].copy_from_slice(&57u16.to_be_bytes());
    assert_eq!(Frame::parse(&f), Err(Error::BadLength("UDP length")));
}

#[test]
fn vector_udp_length_under_header_is_bad_length() {
    for len in 0u16..8 {
        let mut f = UNTAGGED;
        f[58..60].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            Frame::parse(&f),
            Err(Error::BadLength("UDP length under 8")),
            "{len}"
        );
    }
}

#[cfg(not(feature = "fuzzing"))]
#[test]
fn vector_bad_checksum_is_rejected() {
    for (name, bytes, _, udp_offset) in VECTORS {
        // A flipped payload bit, and a flipped checksum bit.
        for at in [bytes.len() - 1, udp_offset + 7] {
            let mut f = bytes.to_vec();
            f[at] ^= 0x01;
            assert_eq!(Frame::parse(&f), Err(Error::Checksum), "{name} byte {at}");
        }
    }
}

#[cfg(not(feature = "fuzzing"))]
#[test]
fn vector_zero_checksum_is_rejected() {
    let mut f = UNTAGGED;
    f[60..62].copy_from_slice(&[0, 0]);
    assert_eq!(Frame::parse(&f), Err(Error::Checksum));
}

#[test]
fn vector_ipv4_ethertype_is_unsupported() {
    let mut f = UNTAGGED;
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(Frame::parse(&f), Err(Error::Unsupported("not IPv6")));
}

#[test]
fn vector_icmpv6_upper_layer_is_unsupported() {
    let mut f = UNTAGGED;
    f[20] = IpProtocol::IPV6_ICMP.0;
    assert_eq!(Frame::parse(&f), Err(Error::Unsupported("not UDP")));
}

#[test]
fn three_vlan_tags_are_unsupported() {
    let mut f = UNTAGGED[..12].to_vec();
    f.extend_from_slice(&hex!("88a8 0001 8100 0002 8100 0003"));
    f.extend_from_slice(&UNTAGGED[12..]);
    assert_eq!(
        Frame::parse(&f),
        Err(Error::Unsupported("VLAN stack deeper than 2"))
    );
}

#[test]
fn fragment_header_is_unsupported() {
    // Fragment header (RFC 8200 §4.5): next 17, reserved, offset 0 + M flag, identification.
    let f = frame_with_ext(44, &hex!("11 00 0001 12345678"));
    assert_eq!(Frame::parse(&f), Err(Error::Unsupported("IPv6 fragment")));
}

#[test]
fn esp_and_no_next_header_are_unsupported() {
    let esp = frame_with_ext(50, &[]);
    assert_eq!(
        Frame::parse(&esp),
        Err(Error::Unsupported("IPv6 ESP payload"))
    );
    let none = frame_with_ext(60, &hex!("3b 00 0104 00000000"));
    assert_eq!(
        Frame::parse(&none),
        Err(Error::Unsupported("no upper-layer header"))
    );
}

#[test]
fn eight_extension_headers_parse_and_nine_are_unsupported() {
    let chain = |n: usize| {
        let mut ext = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { 17 } else { 60 };
            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        frame_with_ext(60, &ext)
    };
    let eight = chain(8);
    let f = Frame::parse(&eight).unwrap();
    assert_eq!((f.extension_headers(), f.udp_offset()), (8, 54 + 64));
    assert_eq!(f.payload(), &SOLICIT);
    assert_eq!(
        Frame::parse(&chain(9)),
        Err(Error::Unsupported("more than 8 IPv6 extension headers"))
    );
}

#[test]
fn extension_header_length_past_payload_is_bad_length() {
    // Destination Options claiming (10 + 1) * 8 = 88 bytes in a 72-byte IPv6 payload.
    let f = frame_with_ext(60, &hex!("11 0a 0104 00000000"));
    assert_eq!(
        Frame::parse(&f),
        Err(Error::BadLength("IPv6 extension header length"))
    );
}

#[test]
fn hop_by_hop_after_destination_options_is_malformed() {
    let f = frame_with_ext(60, &hex!("00 00 0104 00000000 11 00 0104 00000000"));
    assert_eq!(
        Frame::parse(&f),
        Err(Error::Malformed("Hop-by-Hop Options header not first"))
    );
}
