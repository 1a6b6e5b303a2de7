//! `tandem xdp-demo` on a veth pair between two network namespaces: real XDP, real AF_XDP
//! sockets, DHCPv6 clients on ordinary UDP sockets. Each test builds its own namespaces, so
//! they run in parallel.

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::process::Command;
use std::time::Duration;

use tandem_hwtest::client::{self, DhcpSocket, Expect, ExpectRelay, Reply, SERVER_PORT, SimClient};
use tandem_hwtest::traffic::{self, Service, TCP_GREETING};
use tandem_hwtest::{
    DemoArgs, Lab, NetNs, Server, ServerOutput, XdpMode, lab, require_privileges, run_bounded,
};
use tandem_wire::dhcp::MessageType;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

fn tandem() -> &'static std::path::Path {
    std::path::Path::new(TANDEM)
}

/// Client `i` multicasts a SOLICIT (IA_NA, plus IA_PD when `with_pd`) from its own ephemeral
/// port and must get a correct ADVERTISE. Returns the datagrams sent.
fn solicit_directly(lab: &Lab, i: u16, with_pd: bool) -> u64 {
    let client = SimClient::new(i);
    let xid = client::random_xid();
    let msg = client.solicit(xid, with_pd).expect("build SOLICIT");
    let sock = DhcpSocket::bind(lab.client_ns(), 0).expect("client socket");
    let dest = client::all_servers(lab.client_ifindex());
    let tx = sock
        .transact(&msg, xid, dest, REPLY_TIMEOUT, 1)
        .expect("send SOLICIT");
    let reply = tx
        .reply
        .unwrap_or_else(|| panic!("client {i}: no reply to SOLICIT {xid:#08x}"));
    let iaids = [u32::from(i)];
    let problems = Expect {
        msg_type: MessageType::ADVERTISE,
        xid,
        client_id: Some(&client.duid),
        ia_na: &iaids,
        ia_pd: if with_pd { &iaids } else { &[] },
    }
    .problems(&reply);
    assert!(problems.is_empty(), "client {i}: {reply}\n{problems:#?}");
    let from = tx.from.expect("reply has a source");
    assert_eq!(from.port(), SERVER_PORT, "client {i}: reply from {from}");
    u64::from(tx.sent)
}

/// Stops the server and checks it exited cleanly with a report.
fn stop(server: Server) -> ServerOutput {
    let out = server.stop().expect("server stops on SIGTERM");
    assert!(
        out.status.success(),
        "server exit {}; stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.counters.is_empty(),
        "no COUNTERS line in {:#?}",
        out.stdout
    );
    out
}

#[test]
fn netns_xdp_native_two_queues_answers_solicits() {
    require_privileges!();
    let lab = Lab::new("tandem-t-native", 2).unwrap();
    let args = DemoArgs {
        queues: Some(2),
        mode: XdpMode::Native,
        ..DemoArgs::new(lab.server_if())
    };
    let server = Server::start(tandem(), lab.server_ns(), &args).unwrap();
    assert_eq!(
        server.ready_field("mode"),
        Some("native"),
        "{}",
        server.ready_line()
    );
    assert_eq!(
        server.ready_field("queues"),
        Some("2"),
        "{}",
        server.ready_line()
    );

    // 24 flows (distinct DUIDs and source ports): the veth's flow hash picks the RX queue.
    let sent: u64 = (1..=24)
        .map(|i| solicit_directly(&lab, i, i % 3 == 0))
        .sum();

    let out = stop(server);
    let counters = out.counters_line();
    assert_eq!(out.counter("redirected"), Some(sent), "{counters}");
    assert_eq!(out.counter("no_socket"), Some(0), "{counters}");
    assert_eq!(out.worker_rx_total(), sent, "{:#?}", out.workers);
    assert_eq!(out.worker_tx_total(), sent, "{:#?}", out.workers);
    let queues: BTreeSet<u32> = out.workers.iter().map(|w| w.queue).collect();
    assert_eq!(queues, BTreeSet::from([0, 1]), "{:#?}", out.workers);
    // Native mode on veth honours the flow hash: with 24 random source ports, every queue gets
    // some (all on one queue has probability 2^-23).
    assert!(
        out.workers.iter().all(|w| w.rx > 0),
        "a queue got nothing: {:#?}",
        out.workers
    );
}

#[test]
fn netns_xdp_generic_mode_answers_solicits() {
    require_privileges!();
    let lab = Lab::new("tandem-t-generic", 2).unwrap();
    let args = DemoArgs {
        queues: Some(2),
        mode: XdpMode::Generic,
        ..DemoArgs::new(lab.server_if())
    };
    let server = Server::start(tandem(), lab.server_ns(), &args).unwrap();
    assert_eq!(
        server.ready_field("mode"),
        Some("generic"),
        "{}",
        server.ready_line()
    );

    let sent: u64 = (1..=8).map(|i| solicit_directly(&lab, i, i == 8)).sum();

    let out = stop(server);
    assert_eq!(
        out.counter("redirected"),
        Some(sent),
        "{}",
        out.counters_line()
    );
    assert_eq!(out.worker_rx_total(), sent, "{:#?}", out.workers);
    // In SKB mode a multi-queue veth reports every frame on RX queue 0 (docs/toolchain.md §7).
    let q0 = out
        .workers
        .iter()
        .find(|w| w.queue == 0)
        .expect("a worker on queue 0");
    assert_eq!(q0.rx, sent, "{:#?}", out.workers);
}

#[test]
fn netns_xdp_relayed_solicit_gets_relay_reply() {
    require_privileges!();
    let lab = Lab::new("tandem-t-relay", 1).unwrap();
    let args = DemoArgs {
        queues: Some(1),
        ..DemoArgs::new(lab.server_if())
    };
    let server = Server::start(tandem(), lab.server_ns(), &args).unwrap();
    // The fake relay listens on 547, where a server sends RELAY-REPL (RFC 8415 §19.3).
    let relay = DhcpSocket::bind(lab.client_ns(), SERVER_PORT).unwrap();
    let dest = SocketAddrV6::new(lab.server_addr(), SERVER_PORT, 0, 0);
    let mut sent = 0;

    for j in 1..=3u16 {
        let client = SimClient::new(100 + j);
        let xid = client::random_xid();
        let with_pd = j == 3;
        let inner = client.solicit(xid, with_pd).unwrap();
        let link = Ipv6Addr::new(0x2001, 0xdb8, j, 0, 0, 0, 0, 1);
        let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xc1, j);
        let interface_id = format!("ge-0/0/{j}");
        let fwd = client::relay_forw(&inner, 0, link, peer, interface_id.as_bytes()).unwrap();
        let tx = relay.transact(&fwd, xid, dest, REPLY_TIMEOUT, 1).unwrap();
        sent += u64::from(tx.sent);
        let reply = tx
            .reply
            .unwrap_or_else(|| panic!("relayed client {j}: no RELAY-REPL"));
        let iaids = [u32::from(client.index)];
        let problems = ExpectRelay {
            hop_count: 0,
            link_address: link,
            peer_address: peer,
            interface_id: interface_id.as_bytes(),
            inner: Expect {
                msg_type: MessageType::ADVERTISE,
                xid,
                client_id: Some(&client.duid),
                ia_na: &iaids,
                ia_pd: if with_pd { &iaids } else { &[] },
            },
        }
        .problems(&reply);
        assert!(
            problems.is_empty(),
            "relayed client {j}: {reply}\n{problems:#?}"
        );
        assert_eq!(tx.from.map(|f| f.ip()), Some(lab.server_addr().into()));
    }

    // Two relays deep: the reply nests two RELAY-REPLs, each echoing its own Interface-Id.
    let client = SimClient::new(110);
    let xid = client::random_xid();
    let solicit = client.solicit(xid, false).unwrap();
    let link0 = Ipv6Addr::new(0x2001, 0xdb8, 10, 0, 0, 0, 0, 1);
    let peer0 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xc1, 110);
    let first = client::relay_forw(&solicit, 0, link0, peer0, b"inner-relay").unwrap();
    let (link1, peer1) = (Ipv6Addr::UNSPECIFIED, lab.client_addr());
    let second = client::relay_forw(&first, 1, link1, peer1, b"outer-relay").unwrap();
    let tx = relay
        .transact(&second, xid, dest, REPLY_TIMEOUT, 1)
        .unwrap();
    sent += u64::from(tx.sent);
    let reply = tx.reply.expect("doubly relayed SOLICIT: no reply");
    let Reply::Relay(outer) = &reply else {
        panic!("not a relay reply: {reply}")
    };
    assert_eq!(outer.msg_type, MessageType::RELAY_REPL, "{reply}");
    assert_eq!(
        (outer.hop_count, outer.link_address, outer.peer_address),
        (1, link1, peer1)
    );
    assert_eq!(
        outer.interface_id.as_deref(),
        Some(&b"outer-relay"[..]),
        "{reply}"
    );
    let iaids = [110];
    let problems = ExpectRelay {
        hop_count: 0,
        link_address: link0,
        peer_address: peer0,
        interface_id: b"inner-relay",
        inner: Expect {
            msg_type: MessageType::ADVERTISE,
            xid,
            client_id: Some(&client.duid),
            ia_na: &iaids,
            ia_pd: &[],
        },
    }
    .problems(&outer.inner);
    assert!(problems.is_empty(), "{reply}\n{problems:#?}");

    let out = stop(server);
    assert_eq!(
        out.counter("redirected"),
        Some(sent),
        "{}",
        out.counters_line()
    );
    assert_eq!(out.worker_tx_total(), sent, "{:#?}", out.workers);
}

#[test]
fn netns_non_dhcp_traffic_passes_to_kernel() {
    require_privileges!();
    let lab = Lab::new("tandem-t-pass", 2).unwrap();
    let echo = Service::udp_echo(lab.server_ns(), 5353).unwrap();
    let tcp = Service::tcp_greeter(lab.server_ns(), 647).unwrap();
    let args = DemoArgs {
        queues: Some(2),
        ..DemoArgs::new(lab.server_if())
    };
    let server = Server::start(tandem(), lab.server_ns(), &args).unwrap();

    let dhcp_sent = solicit_directly(&lab, 1, false);
    let echo_dest = SocketAddrV6::new(lab.server_addr(), echo.port(), 0, 0);
    for n in 0..3 {
        let payload = format!("not dhcp #{n}");
        let back = traffic::udp_roundtrip(
            lab.client_ns(),
            echo_dest,
            payload.as_bytes(),
            REPLY_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("UDP to {echo_dest} while XDP is attached: {e}"));
        assert_eq!(back, payload.as_bytes());
    }
    let tcp_dest = SocketAddrV6::new(lab.server_addr(), tcp.port(), 0, 0);
    for _ in 0..2 {
        let got = traffic::tcp_fetch(lab.client_ns(), tcp_dest, REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("TCP to {tcp_dest} while XDP is attached: {e}"));
        assert_eq!(got, TCP_GREETING);
    }
    // A DHCP exchange after the other traffic still works.
    let dhcp_sent = dhcp_sent + solicit_directly(&lab, 2, true);

    let out = stop(server);
    let counters = out.counters_line();
    assert_eq!(echo.served(), 3);
    assert_eq!(tcp.served(), 2);
    // Only the DHCPv6 datagrams were redirected; UDP 5353 and TCP 647 went to the kernel.
    assert_eq!(out.counter("redirected"), Some(dhcp_sent), "{counters}");
    // The 3 echo datagrams are UDP to another port; the TCP segments (at least SYN and ACK
    // of each connection) are not UDP at all. Both verdicts are XDP_PASS.
    assert_eq!(out.counter("pass_not_dhcp_port"), Some(3), "{counters}");
    let not_udp = out
        .counter("pass_not_udp")
        .expect("xdp_pass_not_udp counter");
    assert!(not_udp >= 2 * 2, "{counters}");
    assert_eq!(out.worker_rx_total(), dhcp_sent, "{:#?}", out.workers);
}

#[test]
fn netns_xdp_demo_missing_interface_fails_clearly() {
    require_privileges!();
    let ns = NetNs::new("tandem-t-noif").unwrap();
    let out = run_bounded(
        Command::new("ip").args([
            "netns",
            "exec",
            ns.name(),
            TANDEM,
            "xdp-demo",
            "--iface",
            "tandem-nope0",
        ]),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(!out.timed_out, "xdp-demo hung with a missing interface");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("tandem-nope0"),
        "stderr does not name the interface:\n{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("READY"),
        "claimed READY:\n{}",
        out.stdout
    );
}

#[test]
fn netns_lab_without_xdp_carries_udp_both_ways() {
    require_privileges!();
    let lab = Lab::new("tandem-t-topo", 4).unwrap();
    let echo = Service::udp_echo(lab.server_ns(), 7).unwrap();
    for addr in [lab.server_addr(), lab.server_link_local()] {
        let scope = if addr.is_unicast_link_local() {
            lab.client_ifindex()
        } else {
            0
        };
        let dest = SocketAddrV6::new(addr, echo.port(), 0, scope);
        let back = traffic::udp_roundtrip(lab.client_ns(), dest, b"ping", REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("UDP to {dest}: {e}"));
        assert_eq!(back, b"ping");
    }
    assert_eq!(echo.served(), 2);
    let rxq = lab
        .server_ns()
        .ip(&["-d", "link", "show", "dev", lab.server_if()])
        .unwrap();
    assert!(rxq.contains("numrxqueues 4"), "{rxq}");
}

#[test]
fn netns_lab_xdp_demo_reports_every_exchange_answered() {
    require_privileges!();
    let opts = lab::xdp_demo::DemoOptions {
        clients: 6,
        relayed: 2,
        attempts: 1,
        ..Default::default()
    };
    let report = lab::xdp_demo::run(tandem(), &opts).unwrap();
    let text = report.to_string();
    assert_eq!(report.exchanges.len(), 6 + 2 + 1, "{text}");
    assert!(report.failures().is_empty(), "{text}");
    assert_eq!(
        report.counter("redirected"),
        Some(report.dhcp_datagrams_sent),
        "{text}"
    );
    assert!(text.contains("RELAY_REPL"), "{text}");
    assert!(text.contains("RESULT: all good"), "{text}");
}

/// The main job end to end: `tandem run` serving every real client of the lab.
#[test]
fn netns_lab_real_clients_all_configured_and_leased() {
    require_privileges!();
    let report = lab::run(tandem(), &lab::LabOptions::default()).unwrap();
    let text = report.to_string();
    assert!(report.failures().is_empty(), "{text}");
    assert!(text.contains("RESULT: all good"), "{text}");
    assert_eq!(report.clients.len(), lab::LabClient::ALL.len(), "{text}");
    for c in &report.clients {
        let what = c.client.describe();
        if c.client.stateful() {
            let duid = c.duid.as_deref().expect("a stateful client's DUID is read");
            let active: Vec<_> = report
                .leases
                .iter()
                .filter(|l| l.duid == duid && l.state == "active")
                .collect();
            let want = c.got.addresses.len() + c.got.prefixes.len();
            assert!(want > 0, "{what}: nothing configured\n{text}");
            assert_eq!(active.len(), want, "{what}: lease rows\n{text}");
        } else {
            // dhclient -S keeps no lease file (so no DUID): the table must hold only the
            // stateful clients' leases.
            assert_eq!(c.got.dns, [lab::DNS_SERVER], "{what}\n{text}");
            assert!(!c.got.has_lease(), "{what}\n{text}");
        }
    }
    let claimed: usize = report
        .clients
        .iter()
        .map(|c| c.got.addresses.len() + c.got.prefixes.len())
        .sum();
    let active = report.leases.iter().filter(|l| l.state == "active").count();
    assert_eq!(
        active, claimed,
        "every active row belongs to a client\n{text}"
    );
    let stateful = report
        .clients
        .iter()
        .filter(|c| c.client.stateful())
        .count();
    assert_eq!(stateful, 6, "{text}");
    assert!(
        report.counter("rx_solicit").is_some_and(|n| n >= 6),
        "{text}"
    );
    assert!(
        report.counter("rx_relay_forw").is_some_and(|n| n >= 1),
        "{text}"
    );
    assert!(
        report
            .counter("rx_information_request")
            .is_some_and(|n| n >= 1),
        "{text}"
    );
    assert_eq!(report.counter("store_errors"), Some(0), "{text}");
}

/// The main job over `tandem run --datapath xdp`: one XDP program and AF_XDP workers on every
/// server interface (six client links and the relay uplink), every real client configured,
/// and the program's counters show DHCPv6 steered to the workers.
#[test]
fn netns_lab_real_clients_through_xdp() {
    require_privileges!();
    let opts = lab::LabOptions {
        datapath: lab::LabDatapath::Xdp,
        ..lab::LabOptions::default()
    };
    let report = lab::run(tandem(), &opts).unwrap();
    let text = report.to_string();
    assert!(report.failures().is_empty(), "{text}");
    assert!(text.contains("RESULT: all good"), "{text}");
    assert_eq!(report.served_by(), Some("xdp"), "{text}");
    assert!(
        report
            .ready
            .contains(&format!("workers={}", lab::LabClient::ALL.len())),
        "one worker per single-queue interface\n{text}"
    );
    assert_eq!(report.clients.len(), lab::LabClient::ALL.len(), "{text}");
    assert!(
        report.counter("xdp_redirected").is_some_and(|n| n > 0),
        "{text}"
    );
    assert!(
        report.counter("rx_relay_forw").is_some_and(|n| n >= 1),
        "{text}"
    );
    assert_eq!(report.counter("store_errors"), Some(0), "{text}");
    let active = report.leases.iter().filter(|l| l.state == "active").count();
    assert!(active >= 6, "{text}");
}
