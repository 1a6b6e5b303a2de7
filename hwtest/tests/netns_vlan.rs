//! VLAN-tagged DHCPv6 through the XDP path: `tandem xdp-demo` on the server veth, whole
//! Ethernet frames injected from the client veth with an `AF_PACKET` socket
//! ([`tandem_hwtest::rawsock`]), since this kernel has no 802.1Q interfaces to send from.
//!
//! The replies are read back on the same raw socket. The client veth's receive path moves the
//! outer tag into skb metadata (docs/toolchain.md §7 "VLAN"); the socket reads it back through
//! `PACKET_AUXDATA` and reinserts it, so each reply is checked exactly as it was on the wire.

use std::net::Ipv6Addr;
use std::time::Duration;

use tandem_hwtest::client::{Expect, Reply, SimClient, random_xid};
use tandem_hwtest::rawsock::{RawFrame, RawSocket, StrippedTag};
use tandem_hwtest::{DemoArgs, Lab, Server, XdpMode, require_privileges};
use tandem_wire::dhcp::MessageType;
use tandem_wire::frame::ethernet::{EthernetAddress, VlanStack, VlanTag};
use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
/// Bounded wait for each reply (the demo answers in well under a millisecond).
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// The headers of a frame from the client's veth, behind `tags`.
fn client_repr(lab: &Lab, tags: &[VlanTag], dst: Ipv6Addr, sport: u16, dport: u16) -> FrameRepr {
    let dst_mac = if dst.is_multicast() {
        EthernetAddress::ipv6_multicast(&dst)
    } else {
        EthernetAddress(lab.server_mac())
    };
    FrameRepr {
        dst_mac,
        src_mac: EthernetAddress(lab.client_mac()),
        vlans: VlanStack::from_slice(tags).expect("at most two VLAN tags"),
        src_ip: lab.client_link_local(),
        dst_ip: dst,
        hop_limit: if dst.is_multicast() { 1 } else { 64 },
        traffic_class: 0,
        flow_label: 0,
        src_port: sport,
        dst_port: dport,
    }
}

/// A whole frame with a valid UDP checksum (tandem-wire's builder).
fn frame(repr: &FrameRepr, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0; repr.buffer_len(payload.len())];
    let n = build_udp_frame(repr, payload, &mut out).expect("build the frame");
    out.truncate(n);
    out
}

/// What the client saw of an answer.
struct Answer {
    repr: FrameRepr,
    reply: Reply,
    raw: RawFrame,
}

/// Injects a multicast SOLICIT from client `index` behind `tags` and waits for the ADVERTISE
/// with its transaction id; checks the message and that the reply frame carries the same tags.
fn solicit_tagged(lab: &Lab, sock: &RawSocket, index: u16, tags: &[VlanTag]) {
    let client = SimClient::new(index);
    let xid = random_xid();
    let msg = client.solicit(xid, false).expect("build a SOLICIT");
    let sent = client_repr(lab, tags, ALL_SERVERS, 546, 547);
    sock.send(&frame(&sent, &msg))
        .expect("send a frame on the raw socket");

    let answer = sock
        .recv_until(REPLY_TIMEOUT, |raw| {
            let rx = Frame::parse(&raw.bytes).ok()?;
            if rx.src_port() != 547 {
                return None;
            }
            let reply = Reply::parse(rx.payload()).ok()?;
            (reply.xid() == xid).then(|| Answer {
                repr: FrameRepr::from(&rx),
                reply,
                raw: raw.clone(),
            })
        })
        .expect("receive on the raw socket")
        .unwrap_or_else(|| panic!("tags {tags:?}: no ADVERTISE for xid {xid:#08x}"));

    let iaids = [u32::from(index)];
    let problems = Expect {
        msg_type: MessageType::ADVERTISE,
        xid,
        client_id: Some(&client.duid),
        ia_na: &iaids,
        ia_pd: &[],
    }
    .problems(&answer.reply);
    assert!(
        problems.is_empty(),
        "tags {tags:?}: {}\n{problems:#?}",
        answer.reply
    );
    let got = answer.repr;
    assert_eq!(got.vlan_tags(), tags, "VLAN tags of the reply");
    assert_eq!(
        (got.dst_mac, got.src_mac),
        (
            EthernetAddress(lab.client_mac()),
            EthernetAddress(lab.server_mac())
        ),
        "tags {tags:?}: reply MACs"
    );
    assert_eq!(got.dst_ip, lab.client_link_local(), "tags {tags:?}");
    assert_eq!((got.src_port, got.dst_port), (547, 546), "tags {tags:?}");
    // The client's kernel untags the outer tag of every tagged frame it receives
    // (`skb_vlan_untag`), so the socket must have reinserted exactly the reply's outer tag.
    let outer = tags.first().map(|t| StrippedTag {
        tpid: u16::from(t.tpid),
        tci: t.tci().expect("valid VLAN tag"),
    });
    assert_eq!(
        answer.raw.stripped_tag, outer,
        "tags {tags:?}: tag read from PACKET_AUXDATA"
    );
}

fn tagged_solicits_are_steered_and_answered(prefix: &str, mode: XdpMode) {
    let lab = Lab::new(prefix, 1).expect("build the veth lab");
    let sock = RawSocket::open(lab.client_ns(), lab.client_if()).expect("open the raw socket");
    let args = DemoArgs {
        queues: Some(1),
        mode,
        ..DemoArgs::new(lab.server_if())
    };
    let server = Server::start(std::path::Path::new(TANDEM), lab.server_ns(), &args)
        .expect("start tandem xdp-demo");
    assert_eq!(
        server.ready_field("mode"),
        Some(mode.as_str()),
        "{}",
        server.ready_line()
    );

    let c100 = VlanTag::c_tag(100);
    let s200 = VlanTag::s_tag(200);
    // A tagged datagram to another UDP port first: passed to the kernel (which drops it, no
    // VLAN 100 there). On one queue, frames are handled in order, so the answers below prove
    // it was handled before the server stops.
    let mdns = client_repr(&lab, &[c100], lab.server_addr(), 5353, 5353);
    sock.send(&frame(&mdns, b"not dhcp"))
        .expect("send a frame on the raw socket");

    solicit_tagged(&lab, &sock, 1, &[c100]);
    solicit_tagged(&lab, &sock, 2, &[s200, c100]);
    solicit_tagged(&lab, &sock, 3, &[]);

    let out = server.stop().expect("server stops on SIGTERM");
    assert!(
        out.status.success(),
        "{}; stderr:\n{}",
        out.status,
        out.stderr
    );
    let counters = out.counters_line();
    assert_eq!(out.counter("redirected"), Some(3), "{counters}");
    assert_eq!(out.counter("no_socket"), Some(0), "{counters}");
    // Two tagged SOLICITs and the tagged non-DHCP datagram.
    assert_eq!(out.counter("vlan"), Some(3), "{counters}");
    assert_eq!(out.counter("pass_not_dhcp_port"), Some(1), "{counters}");
    assert_eq!(out.worker_rx_total(), 3, "{:#?}", out.workers);
    assert_eq!(out.worker_tx_total(), 3, "{:#?}", out.workers);
}

#[test]
fn netns_xdp_vlan_tagged_solicits_are_steered_and_answered() {
    require_privileges!();
    tagged_solicits_are_steered_and_answered("tandem-t-vlan", XdpMode::Native);
}

#[test]
fn netns_xdp_generic_vlan_tagged_solicits_are_steered_and_answered() {
    require_privileges!();
    tagged_solicits_are_steered_and_answered("tandem-t-vlang", XdpMode::Generic);
}
