//! `tandem run --datapath xdp` (`[datapath] mode = "xdp"`) on a two-queue veth pair between two
//! network namespaces: real dhclient and dhcpcd get leases through the XDP program and the
//! AF_XDP workers (the kernel's UDP stack never sees a DHCPv6 datagram), the control socket
//! reports the workers and re-pins them, other traffic still reaches the kernel, and relayed
//! requests are answered. Each test builds its own namespaces and scratch directories, so they
//! run in parallel; everything is bounded by timeouts and torn down on drop.

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_hwtest::assert::{Lifetimes, SubnetConfig, TestPools, assert_leased, wait_served};
use tandem_hwtest::client::{self, DhcpSocket, Reply, SERVER_PORT, SimClient};
use tandem_hwtest::clients::{self, ClientResult, RunningClient, TandemRun};
use tandem_hwtest::traffic::{self, Service, TCP_GREETING};
use tandem_hwtest::{DhclientMode, Lab, NetNs, StatefulOptions, require_privileges, run_bounded};
use tandem_wire::dhcp::MessageType;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
/// Lease store size (per shard) for the tests.
const CAPACITY: u64 = 4096;
/// A whole exchange (Solicit retransmissions start at 1 s) with a debug build server.
const LEASE_TIMEOUT: Duration = Duration::from_secs(30);
/// One request/reply with a simulated client.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// A `tandem status` / `tandem tune` call.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);
/// RX queues of the lab's veth: one XDP worker each.
const QUEUES: u32 = 2;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
const ALL_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

fn tandem() -> &'static std::path::Path {
    std::path::Path::new(TANDEM)
}

/// A configuration serving `pools` on `server_if` over the XDP datapath; `direct` ties the
/// subnet to the interface (else it is chosen by a relay's link-address), `cores` places the
/// workers.
fn config(pools: &TestPools, server_if: &str, direct: bool, cores: Option<usize>) -> String {
    let cores = cores.map_or_else(String::new, |c| format!("cores = \"{c}\"\n"));
    pools.config(&SubnetConfig {
        server_if,
        direct,
        datapath: &format!("[datapath]\nmode = \"xdp\"\n{cores}\n"),
        rapid_commit: None,
        lifetimes: Lifetimes::LONG,
        dns: false,
    })
}

/// A two-queue lab with `tandem run` serving it over XDP.
fn serve(prefix: &str, direct: bool, cores: Option<usize>) -> (Lab, TestPools, TandemRun) {
    let lab = Lab::new(prefix, QUEUES).expect("lab");
    let pools = TestPools::new(lab.server_addr());
    let config = config(&pools, lab.server_if(), direct, cores);
    let server = TandemRun::start(tandem(), lab.server_ns(), &config, CAPACITY)
        .expect("tandem run --datapath xdp");
    (lab, pools, server)
}

/// `key=value` fields of the `COUNTERS` line among the server's stdout lines.
fn counters(stdout: &[String]) -> BTreeMap<String, u64> {
    let line = stdout
        .iter()
        .find(|l| l.starts_with("COUNTERS"))
        .unwrap_or_else(|| panic!("no COUNTERS line in {stdout:#?}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Sum of the `rx=` fields of the `WORKER` lines.
fn worker_rx_total(stdout: &[String]) -> u64 {
    stdout
        .iter()
        .filter(|l| l.starts_with("WORKER"))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.strip_prefix("rx=")?.parse::<u64>().ok())
        .sum()
}

/// A UDP socket on port 547 in `ns`, joined to ff02::1:2 on `iface`: the kernel's view of
/// DHCPv6 traffic (nothing must arrive here while XDP redirects it).
fn kernel_listener(ns: &NetNs, iface: &str) -> UdpSocket {
    let ifindex = ns.ifindex(iface).expect("ifindex");
    ns.run(|| {
        let sock = UdpSocket::bind("[::]:547")?;
        sock.join_multicast_v6(&ALL_AGENTS, ifindex)?;
        sock.set_nonblocking(true)?;
        Ok(sock)
    })
    .expect("listener on [::]:547 (the XDP datapath must not hold the port)")
}

/// Datagrams waiting on a non-blocking socket.
fn drain(sock: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// The client got both an address and a prefix, and [`assert_leased`] holds for them.
fn assert_leased_both(
    server: &TandemRun,
    pools: &TestPools,
    client: &RunningClient,
    got: &ClientResult,
) {
    assert!(
        !got.addresses.is_empty() && !got.prefixes.is_empty(),
        "{got:?}"
    );
    assert_leased(server, pools, client, got);
}

/// Runs `tandem <args>` (the control socket is a file: no namespace needed) and returns its
/// stdout; panics with its stderr if it fails.
fn cli(args: &[&str]) -> String {
    let out = run_bounded(Command::new(tandem()).args(args), CLI_TIMEOUT).expect("run tandem");
    assert!(
        out.status.success() && !out.timed_out,
        "`tandem {}` failed ({}): {}",
        args.join(" "),
        out.status,
        out.stderr
    );
    out.stdout
}

/// The CPUs this test may run on, ascending.
fn allowed_cores() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim();
    tandem_datapath::worker::parse_core_list(list).expect("core list")
}

/// Everything wrong with an ADVERTISE that must offer one lease per IA (IAID = the client's
/// index, in IA_NA, and in IA_PD when `pd`) to `sim` for transaction `xid` (RFC 8415 §18.3.1).
fn advertise_problems(reply: &Reply, sim: &SimClient, xid: u32, pd: bool) -> Vec<String> {
    let Reply::Client(c) = reply else {
        return vec![format!(
            "a relay message where a client message was expected: {reply}"
        )];
    };
    let mut bad = Vec::new();
    if c.msg_type != MessageType::ADVERTISE || c.xid != xid {
        bad.push(format!("{:?} xid {:#08x}", c.msg_type, c.xid));
    }
    if c.client_id.as_deref() != Some(sim.duid.as_slice()) {
        bad.push("Client Identifier not echoed".to_owned());
    }
    if c.server_id.is_none() {
        bad.push("no Server Identifier".to_owned());
    }
    let iaid = u32::from(sim.index);
    let want_pd: &[u32] = if pd { &[iaid] } else { &[] };
    for (kind, ias, want) in [
        ("IA_NA", &c.ia_na, &[iaid][..]),
        ("IA_PD", &c.ia_pd, want_pd),
    ] {
        let iaids: Vec<u32> = ias.iter().map(|ia| ia.iaid).collect();
        if iaids != want {
            bad.push(format!("{kind} IAIDs {iaids:?}, expected {want:?}"));
        }
        for ia in ias
            .iter()
            .filter(|ia| ia.leases != 1 || ia.status.is_some())
        {
            bad.push(format!("{kind} {ia}: expected one lease and no status"));
        }
    }
    bad
}

#[test]
fn netns_xdp_run_real_clients_get_leases_through_xdp() {
    require_privileges!();
    let lab = Lab::new("txrl", QUEUES).expect("lab");
    // Bound before the server starts: the XDP datapath opens no UDP socket on 547.
    let kernel = kernel_listener(lab.server_ns(), lab.server_if());
    let pools = TestPools::new(lab.server_addr());
    let config = config(&pools, lab.server_if(), true, None);
    let server = TandemRun::start(tandem(), lab.server_ns(), &config, CAPACITY)
        .expect("tandem run --datapath xdp");

    // dhclient -6 -N -P, then (on the same link, once dhclient is gone) dhcpcd.
    let mut dhclient =
        clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::NaPd).expect("dhclient");
    let got = wait_served(&mut dhclient, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty() && !r.prefixes.is_empty()
    });
    assert_leased_both(&server, &pools, &dhclient, &got);
    let dhclient_duid = dhclient.duid().expect("dhclient DUID");
    dhclient.stop().expect("stop dhclient");

    let mut dhcpcd = clients::dhcpcd(
        lab.client_ns(),
        lab.client_if(),
        &StatefulOptions::default(),
    )
    .expect("dhcpcd");
    let got = wait_served(&mut dhcpcd, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty() && !r.prefixes.is_empty()
    });
    assert_leased_both(&server, &pools, &dhcpcd, &got);
    let dhcpcd_duid = dhcpcd.duid().expect("dhcpcd DUID");
    assert_ne!(dhclient_duid, dhcpcd_duid);
    dhcpcd.stop().expect("stop dhcpcd");

    let rows = server.leases().expect("tandem leases --json");
    for duid in [&dhclient_duid, &dhcpcd_duid] {
        for kind in ["na", "pd"] {
            assert!(
                rows.iter()
                    .any(|r| &r.duid == duid && r.kind == kind && r.state == "active"),
                "no active {kind} lease of {duid:02x?}: {rows:#?}"
            );
        }
    }

    let log = server.log();
    let stdout = server.stop().expect("stop server");
    let c = counters(&stdout);
    let get = |k: &str| {
        c.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {c:?}"))
    };
    // Each client did at least Solicit + Request.
    let redirected = get("xdp_redirected");
    assert!(redirected >= 4, "{c:?}");
    // Every redirected frame reached a worker and the engine, and nothing else did: the
    // engine's receive counters add up to exactly what the XDP program redirected.
    assert_eq!(worker_rx_total(&stdout), redirected, "{stdout:#?}");
    let engine_rx: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("rx_"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(engine_rx, redirected, "{c:?}");
    assert!(get("rx_solicit") >= 2 && get("rx_request") >= 2, "{c:?}");
    assert!(get("tx_reply") >= 2 && get("committed") >= 4, "{c:?}");
    // The socket datapath is not running: none of its counters exist...
    for socket_only in ["drop_no_pktinfo", "drop_unknown_interface"] {
        assert!(!c.contains_key(socket_only), "{socket_only} in {c:?}");
    }
    // ... and the kernel's UDP stack, listening on 547 the whole time, got nothing.
    let leaked = drain(&kernel);
    assert!(
        leaked.is_empty(),
        "{} DHCPv6 datagram(s) reached the kernel socket; server log:\n{log}",
        leaked.len()
    );
}

#[test]
fn netns_xdp_run_status_and_tune_over_control_socket() {
    require_privileges!();
    let allowed = allowed_cores();
    let (start_core, target_core) = (*allowed.last().expect("a core"), allowed[0]);
    let (lab, _pools, server) = serve("txrs", true, Some(start_core));
    let dir = server.state_dir().to_str().expect("utf-8 path").to_owned();

    let status = cli(&["status", "--state-dir", &dir, "--json"]);
    assert!(status.starts_with("{\"datapath\":\"xdp\","), "{status}");
    assert!(
        status.contains("\"attach_mode\":\"native\"")
            || status.contains("\"attach_mode\":\"generic\""),
        "{status}"
    );
    assert!(status.contains("\"shards\":2,"), "{status}");
    for q in 0..QUEUES {
        let worker = format!(
            "{{\"iface\":\"{}\",\"queue\":{q},\"core\":{start_core},",
            lab.server_if()
        );
        assert!(status.contains(&worker), "no {worker} in {status}");
    }
    assert!(status.contains("\"xdp\":{\"xdp_seen\":"), "{status}");
    assert!(status.contains("\"engine\":{\"rx_solicit\":0,"), "{status}");
    assert!(
        status.ends_with("\"socket\":{},\"failover\":[]}\n"),
        "{status}"
    );

    let show = cli(&["tune", "show", "--state-dir", &dir]);
    assert!(show.starts_with("workers (xdp datapath; "), "{show}");
    for q in 0..QUEUES {
        let row = show
            .lines()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&lab.server_if()) && w.get(1) == Some(&q.to_string().as_str())
            })
            .unwrap_or_else(|| panic!("no worker row for queue {q} in {show}"));
        assert!(
            row.split_whitespace().nth(2) == Some(start_core.to_string().as_str()),
            "{row}"
        );
    }
    assert!(show.contains("no IRQs (virtual device)"), "{show}");

    let moved = cli(&[
        "tune",
        "cores",
        &target_core.to_string(),
        "--state-dir",
        &dir,
    ]);
    assert!(
        moved.starts_with(&format!("{QUEUES} worker(s) moving to cores")),
        "{moved}"
    );
    // Applied on each worker's next wake-up (at most a poll timeout away).
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = format!("\"core\":{target_core},");
    loop {
        let status = cli(&["status", "--state-dir", &dir, "--json"]);
        let pinned = status.matches(&want).count();
        if pinned == usize::try_from(QUEUES).unwrap() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers not on core {target_core} after 5 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stdout = server.stop().expect("stop server");
    let workers: Vec<&String> = stdout.iter().filter(|l| l.starts_with("WORKER")).collect();
    assert_eq!(workers.len(), 2, "{stdout:#?}");
    for w in workers {
        assert!(w.contains(&format!(" core={target_core} ")), "{w}");
    }
}

#[test]
fn netns_xdp_run_non_dhcp_traffic_still_flows() {
    require_privileges!();
    let (lab, _pools, server) = serve("txrp", true, None);
    let echo = Service::udp_echo(lab.server_ns(), 5353).expect("udp echo");
    let tcp = Service::tcp_greeter(lab.server_ns(), 647).expect("tcp greeter");

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
    // The XDP path is live: a Solicit is answered.
    let sim = SimClient::new(7);
    let xid = client::random_xid();
    let sock = DhcpSocket::bind(lab.client_ns(), 0).expect("client socket");
    let tx = sock
        .transact(
            &sim.solicit(xid, false).expect("SOLICIT"),
            xid,
            client::all_servers(lab.client_ifindex()),
            REPLY_TIMEOUT,
            1,
        )
        .expect("send SOLICIT");
    let reply = tx.reply.expect("no ADVERTISE through XDP");
    let problems = advertise_problems(&reply, &sim, xid, false);
    assert!(problems.is_empty(), "{reply}\n{problems:#?}");

    let stdout = server.stop().expect("stop server");
    let c = counters(&stdout);
    assert_eq!(echo.served(), 3);
    assert_eq!(tcp.served(), 2);
    assert_eq!(c.get("xdp_redirected"), Some(&u64::from(tx.sent)), "{c:?}");
    assert_eq!(c.get("xdp_pass_not_dhcp_port"), Some(&3), "{c:?}");
    assert!(c.get("xdp_pass_not_udp").is_some_and(|&n| n >= 4), "{c:?}");
}

#[test]
fn netns_xdp_run_relayed_request_answered() {
    require_privileges!();
    let (lab, pools, server) = serve("txrr", false, None);
    // The fake relay agent listens on 547, where a server sends RELAY-REPL (RFC 8415 §19.3).
    let relay = DhcpSocket::bind(lab.client_ns(), SERVER_PORT).expect("relay socket");
    let dest = SocketAddrV6::new(lab.server_addr(), SERVER_PORT, 0, 0);
    // The link-address selects the subnet (RFC 8415 §13.1).
    let link = Ipv6Addr::from(u128::from(pools.subnet) | 1);
    let mut sent = 0;
    for j in 1..=4u16 {
        let sim = SimClient::new(200 + j);
        let xid = client::random_xid();
        let inner = sim.solicit(xid, true).expect("SOLICIT");
        let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xc1, j);
        let interface_id = format!("ge-0/0/{j}");
        let fwd =
            client::relay_forw(&inner, 0, link, peer, interface_id.as_bytes()).expect("RELAY-FORW");
        let tx = relay
            .transact(&fwd, xid, dest, REPLY_TIMEOUT, 1)
            .expect("send RELAY-FORW");
        sent += u64::from(tx.sent);
        let reply = tx
            .reply
            .unwrap_or_else(|| panic!("relayed client {j}: no RELAY-REPL"));
        let Reply::Relay(r) = &reply else {
            panic!("relayed client {j}: not a relay reply: {reply}");
        };
        // RFC 8415 §19.3: hop count, link and peer address copied, Interface-Id echoed.
        assert_eq!(r.msg_type, MessageType::RELAY_REPL, "{reply}");
        assert_eq!(
            (r.hop_count, r.link_address, r.peer_address),
            (0, link, peer)
        );
        assert_eq!(r.interface_id.as_deref(), Some(interface_id.as_bytes()));
        let problems = advertise_problems(&r.inner, &sim, xid, true);
        assert!(
            problems.is_empty(),
            "relayed client {j}: {reply}\n{problems:#?}"
        );
        assert_eq!(
            tx.from.map(|f| f.ip()),
            Some(std::net::IpAddr::V6(lab.server_addr()))
        );
    }
    let stdout = server.stop().expect("stop server");
    let c = counters(&stdout);
    assert_eq!(c.get("xdp_redirected"), Some(&sent), "{c:?}");
    assert_eq!(c.get("rx_relay_forw"), Some(&sent), "{c:?}");
    assert_eq!(c.get("tx_advertise"), Some(&4), "{c:?}");
}
