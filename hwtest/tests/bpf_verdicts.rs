//! The XDP program's verdicts, one table row per sentence of its contract (`ebpf/xdp/src/main.rs`
//! and the counters of `tandem_xdp_abi::Counter`), checked in the kernel with
//! `BPF_PROG_TEST_RUN`: the program is loaded (and verified) but attached nowhere, each crafted
//! frame is run once, and both the XDP action and the exact change of every counter are
//! asserted.
//!
//! A test run sees the frame on RX queue 0 of no interface. With `XSKS[0]` empty, a DHCPv6
//! frame takes the map's miss action, `XDP_PASS`, and counts `no_socket` (not `redirected`);
//! [`bpf_verdicts_dhcpv6_with_socket_on_queue_0_redirects`] puts a real AF_XDP socket there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use tandem_datapath::xdp::{LogLevel, TestRunOutcome, XdpProgram};
use tandem_datapath::xsk::{XskConfig, XskSocket};
use tandem_hwtest::client::SimClient;
use tandem_hwtest::{NetNs, require_privileges};
use tandem_wire::frame::ethernet::{EtherType, EthernetAddress, VlanStack, VlanTag};
use tandem_wire::frame::{FrameRepr, build_udp_frame};
use tandem_xdp_abi::{Counter, next_header};

const XDP_PASS: u32 = TestRunOutcome::XDP_PASS;
const XDP_REDIRECT: u32 = TestRunOutcome::XDP_REDIRECT;

const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 1];
const SERVER_MAC: [u8; 6] = [0x02, 0x74, 0x64, 0, 0, 1];
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// All_DHCP_Servers (RFC 8415 §7.1), what relays may send to.
const ALL_SERVERS_SITE: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);
const CLIENT_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xc1, 0, 0, 1);
const SERVER_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const RELAY_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

const ETH_LEN: usize = 14;
const TAG_LEN: usize = 4;
const IPV6_LEN: usize = 40;

/// IPv6 next-header values that are not extension headers.
const TCP: u8 = 6;
const ICMPV6: u8 = 58;

/// One frame and what the program must do with it.
struct Row {
    /// The contract sentence this row checks, as a name.
    name: &'static str,
    frame: Vec<u8>,
    /// The one verdict counter that must move.
    verdict: Counter,
    /// Whether `vlan` must move too.
    vlan: bool,
    /// Whether `ext_hdr` must move too.
    ext_hdr: bool,
}

fn row(name: &'static str, frame: Vec<u8>, verdict: Counter) -> Row {
    Row {
        name,
        frame,
        verdict,
        vlan: false,
        ext_hdr: false,
    }
}

impl Row {
    fn vlan(mut self) -> Self {
        self.vlan = true;
        self
    }

    fn ext_hdr(mut self) -> Self {
        self.ext_hdr = true;
        self
    }

    /// The counter changes this row must cause, by name (every other counter stays put).
    fn expected(&self) -> BTreeMap<&'static str, u64> {
        let mut want = BTreeMap::from([(Counter::Seen.name(), 1), (self.verdict.name(), 1)]);
        if self.vlan {
            want.insert(Counter::Vlan.name(), 1);
        }
        if self.ext_hdr {
            want.insert(Counter::ExtHdr.name(), 1);
        }
        want
    }
}

/// A DHCPv6 SOLICIT payload (RFC 8415 §18.2.1).
fn solicit() -> Vec<u8> {
    SimClient::new(1)
        .solicit(0x00ab_cdef, false)
        .expect("build a SOLICIT")
}

fn repr(tags: &[VlanTag], src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> FrameRepr {
    let dst_mac = if dst.is_multicast() {
        EthernetAddress::ipv6_multicast(&dst)
    } else {
        EthernetAddress(SERVER_MAC)
    };
    FrameRepr {
        dst_mac,
        src_mac: EthernetAddress(CLIENT_MAC),
        vlans: VlanStack::from_slice(tags).expect("at most two VLAN tags"),
        src_ip: src,
        dst_ip: dst,
        hop_limit: if dst.is_multicast() { 1 } else { 64 },
        traffic_class: 0,
        flow_label: 0,
        src_port: sport,
        dst_port: dport,
    }
}

/// An Ethernet/[VLAN]/IPv6/UDP frame with a correct checksum (tandem-wire's builder).
fn udp(tags: &[VlanTag], src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
    let repr = repr(tags, src, dst, sport, dport);
    let payload = solicit();
    let mut out = vec![0; repr.buffer_len(payload.len())];
    let n = build_udp_frame(&repr, &payload, &mut out).expect("build the frame");
    out.truncate(n);
    out
}

/// A client's multicast SOLICIT: `[fe80::..]:546 → [ff02::1:2]:547`, behind `tags`.
fn dhcp_solicit(tags: &[VlanTag]) -> Vec<u8> {
    udp(tags, CLIENT_LL, ALL_SERVERS, 546, 547)
}

/// An 802.1Q C-tag, or another TPID (0x88a8, 0x9100) with that VID.
fn tag(tpid: u16, vid: u16) -> VlanTag {
    VlanTag::from_tci(EtherType::from(tpid), vid)
}

/// Ethernet header with raw `(tpid, vid)` tags (any number, unlike `VlanStack`) and the final
/// ethertype.
fn eth_raw(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&SERVER_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// Ethernet (with raw tags) + an IPv6 header + `payload` as the upper layer `next`.
fn ipv6_raw(tags: &[(u16, u16)], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = eth_raw(tags, 0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(
        &u16::try_from(payload.len())
            .expect("payload under 64 KiB")
            .to_be_bytes(),
    );
    f.extend_from_slice(&[next, 64]);
    f.extend_from_slice(&CLIENT_LL.octets());
    f.extend_from_slice(&SERVER_ADDR.octets());
    f.extend_from_slice(payload);
    f
}

/// An extension header of type `kind` whose Next Header is `next`: `hdr_ext_len` counts 8-byte
/// units after the first 8 (RFC 8200 §4), filled per type.
fn ext_header(kind: u8, next: u8, hdr_ext_len: u8) -> Vec<u8> {
    let len = (usize::from(hdr_ext_len) + 1) * 8;
    let mut h = vec![0; len];
    h[0] = next;
    h[1] = hdr_ext_len;
    match kind {
        // Hop-by-Hop / Destination Options: one PadN option over the rest (RFC 8200 §4.2).
        next_header::HOP_BY_HOP | next_header::DEST_OPTS => {
            h[2] = 1;
            h[3] = u8::try_from(len - 4).expect("extension header under 256 bytes");
        }
        // Routing: an experimental type (RFC 4727) with Segments Left 0, which a receiver
        // ignores (RFC 8200 §4.4).
        next_header::ROUTING => h[2] = 253,
        // Fragment: reserved byte 0, offset 0 with the M flag (a first fragment), an id.
        next_header::FRAGMENT => {
            h[1] = 0;
            h[3] = 1;
            h[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        }
        // ESP starts with the SPI and a sequence number instead (RFC 4303 §2).
        next_header::ESP => h[..8].copy_from_slice(&[0, 0, 0x10, 0, 0, 0, 0, 1]),
        _ => {}
    }
    h
}

/// Inserts extension headers of the given `(type, hdr_ext_len)` between the IPv6 header at
/// `l3` and its payload, chaining Next Header fields and fixing the payload length. The UDP
/// checksum stays valid: its pseudo-header has the same addresses and upper-layer length.
fn with_ext(mut frame: Vec<u8>, l3: usize, exts: &[(u8, u8)]) -> Vec<u8> {
    let upper = frame[l3 + 6];
    let mut chain = Vec::new();
    for (i, &(kind, len)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(upper, |&(k, _)| k);
        chain.extend(ext_header(kind, next, len));
    }
    if let Some(&(first, _)) = exts.first() {
        frame[l3 + 6] = first;
    }
    let plen = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]);
    let plen = plen + u16::try_from(chain.len()).expect("extension headers under 64 KiB");
    frame[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
    let at = l3 + IPV6_LEN;
    frame.splice(at..at, chain);
    frame
}

/// A Neighbor Solicitation for the server (RFC 4861 §4.3), checksum not filled (the program
/// does not look at it).
fn icmpv6_ns() -> Vec<u8> {
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&SERVER_ADDR.octets());
    ns
}

/// A TCP SYN to `port` (the failover port 647, RFC 8156 §6.1).
fn tcp_syn(port: u16) -> Vec<u8> {
    let mut t = vec![0; 20];
    t[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    t[2..4].copy_from_slice(&port.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    t
}

/// IPv4/UDP to port 547 (DHCPv6 is IPv6-only, RFC 8415 §7).
fn ipv4_udp_547(tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = eth_raw(tags, 0x0800);
    let payload = solicit();
    let total = u16::try_from(20 + 8 + payload.len()).expect("IPv4 packet under 64 KiB");
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1]);
    f.extend_from_slice(&ip);
    let ulen = u16::try_from(8 + payload.len()).expect("UDP datagram under 64 KiB");
    f.extend_from_slice(&546u16.to_be_bytes());
    f.extend_from_slice(&547u16.to_be_bytes());
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

/// An ARP request (RFC 826), broadcast.
fn arp(tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = eth_raw(tags, 0x0806);
    f[..6].copy_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[192, 0, 2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    f
}

/// `frame` with its IPv6 version nibble (at `l3`) set to `version`.
fn with_version(mut frame: Vec<u8>, l3: usize, version: u8) -> Vec<u8> {
    frame[l3] = version << 4 | (frame[l3] & 0x0f);
    frame
}

fn cut(mut frame: Vec<u8>, len: usize) -> Vec<u8> {
    frame.truncate(len);
    frame
}

fn rows() -> Vec<Row> {
    use Counter::*;
    use next_header::{AH, DEST_OPTS, ESP, FRAGMENT, HOP_BY_HOP, MOBILITY, NO_NEXT, ROUTING};
    let c100 = tag(0x8100, 100);
    let s200 = tag(0x88a8, 200);
    let l200 = tag(0x9100, 200);
    let untagged: &[VlanTag] = &[];
    let one = ETH_LEN + TAG_LEN;
    let two = ETH_LEN + 2 * TAG_LEN;
    let udp_at = ETH_LEN + IPV6_LEN;
    vec![
        // --- DHCPv6 to port 547 is steered (RFC 8415 §7.2); no socket on queue 0 → no_socket.
        row(
            "multicast_solicit_to_ff02_1_2_port_547_is_steered",
            dhcp_solicit(untagged),
            NoSocket,
        ),
        row(
            "unicast_from_client_port_546_to_547_is_steered",
            udp(untagged, CLIENT_LL, SERVER_ADDR, 546, 547),
            NoSocket,
        ),
        row(
            "relay_from_port_547_to_547_is_steered",
            udp(untagged, RELAY_ADDR, SERVER_ADDR, 547, 547),
            NoSocket,
        ),
        row(
            "relay_to_all_dhcp_servers_ff05_1_3_is_steered",
            udp(untagged, RELAY_ADDR, ALL_SERVERS_SITE, 547, 547),
            NoSocket,
        ),
        row(
            "ephemeral_source_port_to_547_is_steered",
            udp(untagged, CLIENT_LL, ALL_SERVERS, 49_152, 547),
            NoSocket,
        ),
        // --- Up to two VLAN tags are looked through; each tagged frame counts `vlan`.
        row(
            "single_8021q_tag_is_steered",
            dhcp_solicit(&[c100]),
            NoSocket,
        )
        .vlan(),
        row(
            "single_88a8_tag_is_steered",
            dhcp_solicit(&[s200]),
            NoSocket,
        )
        .vlan(),
        row(
            "qinq_88a8_over_8100_is_steered",
            dhcp_solicit(&[s200, c100]),
            NoSocket,
        )
        .vlan(),
        row(
            "qinq_9100_over_8100_is_steered",
            dhcp_solicit(&[l200, c100]),
            NoSocket,
        )
        .vlan(),
        row(
            "three_vlan_tags_pass_too_deep",
            ipv6_raw(&[(0x88a8, 200), (0x8100, 100), (0x8100, 7)], 17, &[0; 8]),
            PassVlanTooDeep,
        )
        .vlan(),
        row("tagged_arp_is_not_ipv6", arp(&[(0x8100, 100)]), PassNotIpv6).vlan(),
        row(
            "qinq_ipv4_is_not_ipv6",
            ipv4_udp_547(&[(0x88a8, 200), (0x8100, 100)]),
            PassNotIpv6,
        )
        .vlan(),
        // --- Not IPv6.
        row("ipv4_udp_547_is_not_ipv6", ipv4_udp_547(&[]), PassNotIpv6),
        row("arp_is_not_ipv6", arp(&[]), PassNotIpv6),
        row(
            "ipv6_version_4_is_not_ipv6",
            with_version(dhcp_solicit(untagged), ETH_LEN, 4),
            PassNotIpv6,
        ),
        row(
            "tagged_ipv6_version_0_is_not_ipv6",
            with_version(dhcp_solicit(&[c100]), one, 0),
            PassNotIpv6,
        )
        .vlan(),
        // --- IPv6 but not UDP: ND, ICMPv6, TCP (failover 647) go to the kernel.
        row(
            "icmpv6_neighbor_solicitation_is_not_udp",
            ipv6_raw(&[], ICMPV6, &icmpv6_ns()),
            PassNotUdp,
        ),
        row(
            "tcp_failover_port_647_is_not_udp",
            ipv6_raw(&[], TCP, &tcp_syn(647)),
            PassNotUdp,
        ),
        row(
            "tcp_to_port_547_is_not_udp",
            ipv6_raw(&[(0x8100, 100)], TCP, &tcp_syn(547)),
            PassNotUdp,
        )
        .vlan(),
        // --- UDP to another port.
        row(
            "udp_mdns_5353_is_not_dhcp_port",
            udp(untagged, CLIENT_LL, SERVER_ADDR, 5353, 5353),
            PassNotDhcpPort,
        ),
        row(
            "udp_to_client_port_546_is_not_dhcp_port",
            udp(untagged, SERVER_ADDR, CLIENT_LL, 547, 546),
            PassNotDhcpPort,
        ),
        row(
            "qinq_udp_to_546_is_not_dhcp_port",
            udp(&[s200, c100], SERVER_ADDR, CLIENT_LL, 547, 546),
            PassNotDhcpPort,
        )
        .vlan(),
        // --- Extension headers (RFC 8200 §4): hop-by-hop, routing, destination options are
        // followed, up to four; each such frame counts `ext_hdr`.
        row(
            "hop_by_hop_then_udp_547_is_steered",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(HOP_BY_HOP, 0)]),
            NoSocket,
        )
        .ext_hdr(),
        row(
            "destination_options_then_udp_547_is_steered",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(DEST_OPTS, 1)]),
            NoSocket,
        )
        .ext_hdr(),
        row(
            "routing_then_udp_547_is_steered",
            with_ext(
                udp(untagged, RELAY_ADDR, SERVER_ADDR, 547, 547),
                ETH_LEN,
                &[(ROUTING, 2)],
            ),
            NoSocket,
        )
        .ext_hdr(),
        row(
            "four_extension_headers_are_steered",
            with_ext(
                dhcp_solicit(untagged),
                ETH_LEN,
                &[
                    (HOP_BY_HOP, 0),
                    (DEST_OPTS, 3),
                    (ROUTING, 0),
                    (DEST_OPTS, 0),
                ],
            ),
            NoSocket,
        )
        .ext_hdr(),
        row(
            "qinq_with_four_extension_headers_is_steered",
            with_ext(
                dhcp_solicit(&[s200, c100]),
                two,
                &[
                    (HOP_BY_HOP, 1),
                    (ROUTING, 0),
                    (DEST_OPTS, 0),
                    (DEST_OPTS, 7),
                ],
            ),
            NoSocket,
        )
        .vlan()
        .ext_hdr(),
        row(
            "five_extension_headers_pass_too_many",
            with_ext(
                dhcp_solicit(untagged),
                ETH_LEN,
                &[
                    (HOP_BY_HOP, 0),
                    (DEST_OPTS, 0),
                    (ROUTING, 0),
                    (DEST_OPTS, 0),
                    (DEST_OPTS, 0),
                ],
            ),
            PassExtHdrTooMany,
        )
        .ext_hdr(),
        row(
            "hop_by_hop_then_icmpv6_is_not_udp",
            with_ext(
                ipv6_raw(&[], ICMPV6, &icmpv6_ns()),
                ETH_LEN,
                &[(HOP_BY_HOP, 0)],
            ),
            PassNotUdp,
        )
        .ext_hdr(),
        row(
            "destination_options_then_udp_5353_is_not_dhcp_port",
            with_ext(
                udp(untagged, CLIENT_LL, SERVER_ADDR, 5353, 5353),
                ETH_LEN,
                &[(DEST_OPTS, 0)],
            ),
            PassNotDhcpPort,
        )
        .ext_hdr(),
        // --- Extension headers the program does not follow go to the kernel.
        row(
            "fragment_header_is_unsupported",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(FRAGMENT, 0)]),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "esp_is_unsupported",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(ESP, 0)]),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "ah_is_unsupported",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(AH, 1)]),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "no_next_header_is_unsupported",
            ipv6_raw(&[], NO_NEXT, &[]),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "mobility_header_is_unsupported",
            with_ext(dhcp_solicit(untagged), ETH_LEN, &[(MOBILITY, 0)]),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "hop_by_hop_then_fragment_is_unsupported",
            with_ext(
                dhcp_solicit(untagged),
                ETH_LEN,
                &[(HOP_BY_HOP, 0), (FRAGMENT, 0)],
            ),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        row(
            "four_followed_then_fragment_is_unsupported",
            with_ext(
                dhcp_solicit(untagged),
                ETH_LEN,
                &[
                    (HOP_BY_HOP, 0),
                    (DEST_OPTS, 0),
                    (ROUTING, 0),
                    (DEST_OPTS, 0),
                    (FRAGMENT, 0),
                ],
            ),
            PassExtHdrUnsupported,
        )
        .ext_hdr(),
        // --- Truncation at each layer (frames of at least 14 bytes: the kernel refuses less).
        row(
            "frame_ends_after_8021q_tpid_is_truncated_vlan",
            eth_raw(&[], 0x8100),
            TruncatedVlan,
        )
        .vlan(),
        row(
            "frame_ends_inside_first_tag_is_truncated_vlan",
            cut(dhcp_solicit(&[c100]), ETH_LEN + 2),
            TruncatedVlan,
        )
        .vlan(),
        row(
            "frame_ends_inside_second_tag_is_truncated_vlan",
            cut(dhcp_solicit(&[s200, c100]), one + 3),
            TruncatedVlan,
        )
        .vlan(),
        row(
            "frame_ends_after_ethertype_is_truncated_ipv6",
            eth_raw(&[], 0x86dd),
            TruncatedIpv6,
        ),
        row(
            "frame_ends_inside_ipv6_header_is_truncated_ipv6",
            cut(dhcp_solicit(untagged), ETH_LEN + IPV6_LEN - 1),
            TruncatedIpv6,
        ),
        row(
            "qinq_frame_ends_inside_ipv6_header_is_truncated_ipv6",
            cut(dhcp_solicit(&[s200, c100]), two + 20),
            TruncatedIpv6,
        )
        .vlan(),
        row(
            "frame_ends_before_hop_by_hop_is_truncated_ext_hdr",
            cut(
                with_ext(dhcp_solicit(untagged), ETH_LEN, &[(HOP_BY_HOP, 0)]),
                udp_at,
            ),
            TruncatedExtHdr,
        )
        .ext_hdr(),
        row(
            "ext_header_length_past_frame_end_is_truncated_ext_hdr",
            cut(
                with_ext(dhcp_solicit(untagged), ETH_LEN, &[(DEST_OPTS, 2)]),
                udp_at + 20,
            ),
            TruncatedExtHdr,
        )
        .ext_hdr(),
        row(
            "frame_ends_inside_udp_header_is_truncated_udp",
            cut(dhcp_solicit(untagged), udp_at + 5),
            TruncatedUdp,
        ),
        row(
            "frame_ends_after_ext_header_is_truncated_udp",
            cut(
                with_ext(dhcp_solicit(untagged), ETH_LEN, &[(HOP_BY_HOP, 0)]),
                udp_at + 8,
            ),
            TruncatedUdp,
        )
        .ext_hdr(),
        row(
            "tagged_frame_ends_inside_udp_header_is_truncated_udp",
            cut(dhcp_solicit(&[c100]), one + IPV6_LEN + 7),
            TruncatedUdp,
        )
        .vlan(),
    ]
}

/// Runs `frame` once; returns the action and the counters that changed, by name.
fn run(program: &XdpProgram, frame: &[u8]) -> Result<(u32, BTreeMap<&'static str, u64>), String> {
    let before = program.counters().map_err(|e| e.to_string())?;
    let outcome = program.test_run(frame, 1).map_err(|e| e.to_string())?;
    let after = program.counters().map_err(|e| e.to_string())?;
    let delta = Counter::ALL
        .iter()
        .filter_map(|&c| {
            let d = after.get(c).wrapping_sub(before.get(c));
            (d != 0).then_some((c.name(), d))
        })
        .collect();
    Ok((outcome.action, delta))
}

#[test]
fn bpf_verdicts_table_every_contract_sentence_gets_its_action_and_counters() {
    require_privileges!();
    let program = XdpProgram::load(LogLevel::Off).expect("load and verify the XDP program");
    let rows = rows();
    assert!(rows.len() >= 30, "only {} rows", rows.len());
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "row names must be unique");

    let mut failures = String::new();
    for row in &rows {
        let want = row.expected();
        match run(&program, &row.frame) {
            Ok((action, delta)) => {
                if action != XDP_PASS || delta != want {
                    let _ = writeln!(
                        failures,
                        "{}: action {action} (want {XDP_PASS}), counters {delta:?} (want \
                         {want:?}); frame ({} bytes) {}",
                        row.name,
                        row.frame.len(),
                        hex(&row.frame)
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(failures, "{}: test run failed: {e}", row.name);
            }
        }
    }
    assert!(failures.is_empty(), "rows that failed:\n{failures}");

    // The table covers every verdict a test run can reach with no socket on queue 0:
    // `redirected` needs a socket (see the next test), `truncated_eth` a frame the kernel
    // refuses to run (see below).
    let unreachable = [Counter::Redirected, Counter::TruncatedEth];
    let missing: Vec<&str> = Counter::ALL
        .iter()
        .filter(|c| c.is_verdict() && !unreachable.contains(c))
        .filter(|c| !rows.iter().any(|r| r.verdict == **c))
        .map(|c| c.name())
        .collect();
    assert!(missing.is_empty(), "verdicts without a row: {missing:?}");

    // Totals agree with the ABI's invariant: seen == sum of the verdicts.
    let total = program.counters().unwrap();
    assert_eq!(total.get(Counter::Seen), rows.len() as u64, "{total}");
    assert_eq!(total.verdict_total(), rows.len() as u64, "{total}");
    let tagged = rows.iter().filter(|r| r.vlan).count() as u64;
    assert_eq!(total.get(Counter::Vlan), tagged, "{total}");
}

#[test]
fn bpf_verdicts_repeated_runs_count_every_repetition() {
    require_privileges!();
    let program = XdpProgram::load(LogLevel::Off).expect("load and verify the XDP program");
    let frame = with_ext(
        dhcp_solicit(&[tag(0x8100, 100)]),
        ETH_LEN + TAG_LEN,
        &[(next_header::HOP_BY_HOP, 0)],
    );
    let outcome = program.test_run(&frame, 7).unwrap();
    assert_eq!(outcome.action, XDP_PASS);
    let c = program.counters().unwrap();
    for (counter, want) in [
        (Counter::Seen, 7),
        (Counter::NoSocket, 7),
        (Counter::Vlan, 7),
        (Counter::ExtHdr, 7),
        (Counter::Redirected, 0),
    ] {
        assert_eq!(c.get(counter), want, "{}: {c}", counter.name());
    }
}

#[test]
fn bpf_verdicts_frame_shorter_than_ethernet_refused_by_kernel() {
    require_privileges!();
    let program = XdpProgram::load(LogLevel::Off).expect("load and verify the XDP program");
    let before = program.counters().unwrap();
    for len in [0, 1, 13] {
        let frame = cut(dhcp_solicit(&[]), len);
        let err = program
            .test_run(&frame, 1)
            .expect_err("the kernel runs no XDP program on less than an Ethernet header");
        assert!(
            err.to_string().contains(&format!("{len}-byte frame")),
            "{err}"
        );
    }
    // Nothing ran, so nothing counted (`truncated_eth` is only reachable from a driver).
    assert_eq!(program.counters().unwrap(), before);
    // A 14-byte frame is accepted and is the shortest one the program parses.
    let (action, delta) = run(&program, &eth_raw(&[], 0x86dd)).unwrap();
    assert_eq!(action, XDP_PASS);
    assert_eq!(delta, BTreeMap::from([("seen", 1), ("truncated_ipv6", 1)]));
}

/// With an AF_XDP socket in `XSKS[0]` (bound to `lo` queue 0 of a fresh namespace), a DHCPv6
/// frame is redirected, everything else still passes, and removing the socket brings back the
/// miss action.
#[test]
fn bpf_verdicts_dhcpv6_with_socket_on_queue_0_redirects() {
    require_privileges!();
    let ns = NetNs::new("tandem-t-verdict").unwrap();
    // The socket is not `Send`: open it and use it on the thread that joined the namespace.
    ns.run(|| {
        let mut program = XdpProgram::load(LogLevel::Off).expect("load and verify the program");
        let xsk = XskSocket::open(&XskConfig::new("lo", 0)).expect("AF_XDP socket on lo queue 0");
        program.register_socket(0, xsk.fd()).unwrap();

        let c100 = tag(0x8100, 100);
        let s200 = tag(0x88a8, 200);
        for (name, frame, action, want) in [
            (
                "untagged solicit",
                dhcp_solicit(&[]),
                XDP_REDIRECT,
                vec![("redirected", 1), ("seen", 1)],
            ),
            (
                "qinq solicit",
                dhcp_solicit(&[s200, c100]),
                XDP_REDIRECT,
                vec![("redirected", 1), ("seen", 1), ("vlan", 1)],
            ),
            (
                "udp 5353",
                udp(&[c100], CLIENT_LL, SERVER_ADDR, 5353, 5353),
                XDP_PASS,
                vec![("pass_not_dhcp_port", 1), ("seen", 1), ("vlan", 1)],
            ),
        ] {
            let (got, delta) = run(&program, &frame).unwrap();
            assert_eq!(got, action, "{name}");
            assert_eq!(delta, BTreeMap::from_iter(want), "{name}");
        }

        program.unregister_socket(0).unwrap();
        let (got, delta) = run(&program, &dhcp_solicit(&[])).unwrap();
        assert_eq!(got, XDP_PASS);
        assert_eq!(delta, BTreeMap::from([("no_socket", 1), ("seen", 1)]));
        drop(xsk);
        Ok(())
    })
    .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
