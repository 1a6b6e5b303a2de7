//! Real Debian DHCPv6 clients (ISC dhclient, dhcpcd, dibbler, WIDE dhcp6c) and the WIDE relay
//! agent, each in its own namespaces: their first message must reach a listener on UDP 547 in
//! the server namespace and parse with `tandem-wire` as the right type, with the options the
//! client was configured to send. Each test builds its own namespaces and scratch directories,
//! so they run in parallel; no client ever runs in the host's network namespace or writes to
//! the host's `/etc` or `/var`.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tandem_hwtest::assert::{
    Lifetimes, SubnetConfig, TestPools, assert_leased, rows_of, wait_served,
};
use tandem_hwtest::clients::{self, ClientResult, LeaseRow, RunningClient, TandemRun};
use tandem_hwtest::{DhclientMode, Lab, NetNs, RelayLab, StatefulOptions, require_privileges};
use tandem_wire::dhcp::MessageType;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::RelayMessage;
use tandem_wire::option::OptionCode;

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
const ALL_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
/// Lease store size for the tests.
const CAPACITY: u64 = 4096;
/// A whole exchange (Solicit retransmissions start at 1 s) with a debug build server.
const LEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client's first transmission comes after at most SOL_MAX_DELAY (1 s) plus its start-up.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A UDP socket on port 547 in `ns`, joined to ff02::1:2 on `iface`.
fn listen(ns: &NetNs, iface: &str) -> UdpSocket {
    let ifindex = ns.ifindex(iface).expect("ifindex");
    ns.run(|| {
        let sock = UdpSocket::bind("[::]:547")?;
        sock.join_multicast_v6(&ALL_AGENTS, ifindex)?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(sock)
    })
    .expect("listener on [::]:547")
}

/// The first datagram to arrive within [`FIRST_MESSAGE_TIMEOUT`]; on timeout, panics with the
/// client's log.
fn first_datagram(sock: &UdpSocket, client: &RunningClient) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + FIRST_MESSAGE_TIMEOUT;
    let mut buf = [0u8; 2048];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => return (buf[..n].to_vec(), from),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("recv: {e} ({:?})", e.kind()),
        }
        assert!(
            Instant::now() < deadline,
            "nothing from `{}` within {FIRST_MESSAGE_TIMEOUT:?}; log:\n{}",
            client.command(),
            client.log()
        );
    }
}

/// Option codes of a parsed message, in wire order.
fn codes(msg: &Message<'_>) -> Vec<OptionCode> {
    msg.options
        .raw()
        .expect("parsed options")
        .iter()
        .map(|o| o.code)
        .collect()
}

/// Starts `start` on a fresh [`Lab`]'s client end and returns the parsed first message (its
/// bytes), the source address and the option codes.
fn first_message_of(
    start: impl FnOnce(&NetNs, &str) -> std::io::Result<RunningClient>,
) -> (Vec<u8>, SocketAddr, RunningClient) {
    let lab = Lab::new("tdcl", 1).expect("lab");
    let sock = listen(lab.server_ns(), lab.server_if());
    let client = start(lab.client_ns(), lab.client_if()).expect("start client");
    let (bytes, from) = first_datagram(&sock, &client);
    // The lab (namespaces) outlives the client only until here: stop it first.
    let stopped = client;
    drop(lab);
    (bytes, from, stopped)
}

fn assert_solicit(bytes: &[u8], from: SocketAddr, want: &[OptionCode], absent: &[OptionCode]) {
    let msg = Message::parse(bytes).expect("client message parses");
    let got = codes(&msg);
    assert_eq!(msg.msg_type, MessageType::SOLICIT, "options {got:?}");
    assert_eq!(
        from.port(),
        546,
        "clients send from port 546 (RFC 8415 §7.2)"
    );
    assert!(got.contains(&OptionCode::CLIENTID), "{got:?}");
    assert!(got.contains(&OptionCode::ELAPSED_TIME), "{got:?}");
    for code in want {
        assert!(got.contains(code), "{code:?} missing from {got:?}");
    }
    for code in absent {
        assert!(!got.contains(code), "unexpected {code:?} in {got:?}");
    }
}

/// Isolation: the client wrote its DUID to `rel` under its private scratch directory.
fn assert_private_duid(client: &RunningClient, rel: &str) {
    assert!(
        client.dir().join(rel).exists(),
        "no private DUID file {rel}; log:\n{}",
        client.log()
    );
}

/// Client options asking for Rapid Commit (RFC 8415 §18.2.1), with IA_NA and IA_PD.
fn rapid_commit_opts() -> StatefulOptions {
    StatefulOptions {
        rapid_commit: true,
        ..StatefulOptions::default()
    }
}

#[test]
fn netns_clients_dhclient_na_sends_solicit_with_ia_na() {
    require_privileges!();
    let (bytes, from, client) =
        first_message_of(|ns, ifname| clients::dhclient(ns, ifname, DhclientMode::Na));
    assert_solicit(
        &bytes,
        from,
        &[OptionCode::IA_NA, OptionCode::ORO],
        &[OptionCode::IA_PD],
    );
    drop(client);
}

#[test]
fn netns_clients_dhclient_pd_sends_solicit_with_ia_pd_only() {
    require_privileges!();
    let (bytes, from, _client) =
        first_message_of(|ns, ifname| clients::dhclient(ns, ifname, DhclientMode::Pd));
    assert_solicit(&bytes, from, &[OptionCode::IA_PD], &[OptionCode::IA_NA]);
}

#[test]
fn netns_clients_dhclient_na_pd_sends_both_ias() {
    require_privileges!();
    let (bytes, from, _client) =
        first_message_of(|ns, ifname| clients::dhclient(ns, ifname, DhclientMode::NaPd));
    assert_solicit(&bytes, from, &[OptionCode::IA_NA, OptionCode::IA_PD], &[]);
}

#[test]
fn netns_clients_dhclient_stateless_sends_information_request() {
    require_privileges!();
    let (bytes, _from, _client) =
        first_message_of(|ns, ifname| clients::dhclient(ns, ifname, DhclientMode::Stateless));
    let msg = Message::parse(&bytes).expect("parses");
    let got = codes(&msg);
    assert_eq!(msg.msg_type, MessageType::INFORMATION_REQUEST, "{got:?}");
    assert!(got.contains(&OptionCode::ORO), "{got:?}");
    assert!(!got.contains(&OptionCode::IA_NA), "{got:?}");
}

/// Starts `start` with [`rapid_commit_opts`] on a fresh lab and checks that its Solicit asks
/// for IA_NA, IA_PD and Rapid Commit (RFC 8415 §18.2.1); returns the client.
fn rapid_commit_solicit(
    start: impl FnOnce(&NetNs, &str, &StatefulOptions) -> std::io::Result<RunningClient>,
) -> RunningClient {
    let opts = rapid_commit_opts();
    let (bytes, from, client) = first_message_of(|ns, ifname| start(ns, ifname, &opts));
    assert_solicit(
        &bytes,
        from,
        &[
            OptionCode::IA_NA,
            OptionCode::IA_PD,
            OptionCode::RAPID_COMMIT,
        ],
        &[],
    );
    client
}

#[test]
fn netns_clients_dhcpcd_sends_solicit_with_na_pd_and_rapid_commit() {
    require_privileges!();
    let client = rapid_commit_solicit(clients::dhcpcd);
    // Isolation: its DUID went to the private /var/lib/dhcpcd.
    assert_private_duid(&client, "lib/duid");
}

#[test]
fn netns_clients_dhcpcd_without_pd_omits_ia_pd() {
    require_privileges!();
    let opts = StatefulOptions {
        ia_pd: false,
        ..StatefulOptions::default()
    };
    let (bytes, from, _client) = first_message_of(|ns, ifname| clients::dhcpcd(ns, ifname, &opts));
    assert_solicit(
        &bytes,
        from,
        &[OptionCode::IA_NA],
        &[OptionCode::IA_PD, OptionCode::RAPID_COMMIT],
    );
}

#[test]
fn netns_clients_dibbler_rapid_commit_sends_solicit_with_rapid_commit() {
    require_privileges!();
    let client = rapid_commit_solicit(clients::dibbler);
    assert_private_duid(&client, "lib/client-duid");
}

#[test]
fn netns_clients_wide_dhcp6c_sends_solicit_with_na_and_pd() {
    require_privileges!();
    let (bytes, from, client) = first_message_of(|ns, ifname| {
        clients::wide_dhcp6c(ns, ifname, &StatefulOptions::default())
    });
    assert_solicit(
        &bytes,
        from,
        &[OptionCode::IA_NA, OptionCode::IA_PD],
        &[OptionCode::RAPID_COMMIT],
    );
    assert_private_duid(&client, "lib/dhcp6c_duid");
}

#[test]
fn netns_clients_wide_relay_forwards_dhclient_solicit_with_link_address() {
    require_privileges!();
    let lab = RelayLab::new("tdrf").expect("relay lab");
    // Relays send to the server's unicast address: a plain socket on 547 sees them.
    let sock = listen(lab.server_ns(), RelayLab::SERVER_IF);
    let relay = clients::wide_relay(
        lab.relay_ns(),
        RelayLab::RELAY_DOWN_IF,
        RelayLab::RELAY_UP_IF,
        lab.server_addr(),
    )
    .expect("start relay");
    let client = clients::dhclient(lab.client_ns(), RelayLab::CLIENT_IF, DhclientMode::Na)
        .expect("start dhclient");
    let (bytes, from) = first_datagram(&sock, &client);
    let relayed = RelayMessage::parse(&bytes).unwrap_or_else(|e| {
        panic!(
            "not a relay message ({e:?}) from {from}; relay log:\n{}",
            relay.log()
        )
    });
    assert_eq!(relayed.msg_type, MessageType::RELAY_FORW);
    assert_eq!(relayed.hop_count, 0);
    assert_eq!(relayed.link_address, lab.relay_down_addr());
    assert!(
        relayed.peer_address.segments()[0] == 0xfe80,
        "peer-address is the client's link-local, got {}",
        relayed.peer_address
    );
    assert_eq!(from.ip(), std::net::IpAddr::V6(lab.relay_up_addr()));
    // RFC 8415 §7.2 says relays send from 547, but WIDE dhcp6relay's server-side socket is
    // bound to 546 (and waits for RELAY-REPL there): the server must answer the source port.
    assert_eq!(from.port(), 546, "WIDE dhcp6relay's source port");
    let inner = Message::parse(relayed.relay_msg().expect("Relay Message option"))
        .expect("inner message parses");
    assert_eq!(inner.msg_type, MessageType::SOLICIT);
    assert!(codes(&inner).contains(&OptionCode::IA_NA));
    drop(client);
    drop(relay);
}

// ---- End to end: `tandem run` serving the real clients ---------------------------------------

fn tandem_bin() -> &'static std::path::Path {
    std::path::Path::new(TANDEM)
}

/// A direct lab with `tandem run` serving it.
fn serve_lab(
    prefix: &str,
    rapid_commit: bool,
    lifetimes: Lifetimes,
) -> (Lab, TestPools, TandemRun) {
    let lab = Lab::new(prefix, 1).expect("lab");
    let pools = TestPools::new(lab.server_addr());
    let server = start_server(
        lab.server_ns(),
        &pools,
        lab.server_if(),
        true,
        rapid_commit,
        lifetimes,
    );
    (lab, pools, server)
}

/// `tandem run` in `ns` serving `pools` with DNS servers, on the kernel's UDP stack.
fn start_server(
    ns: &NetNs,
    pools: &TestPools,
    server_if: &str,
    direct: bool,
    rapid_commit: bool,
    lifetimes: Lifetimes,
) -> TandemRun {
    let config = pools.config(&SubnetConfig {
        server_if,
        direct,
        datapath: "",
        rapid_commit: Some(rapid_commit),
        lifetimes,
        dns: true,
    });
    TandemRun::start(tandem_bin(), ns, &config, CAPACITY).expect("tandem run")
}

/// An address, a prefix and DNS servers: what a stateful client asking for both gets.
fn full_lease(r: &ClientResult) -> bool {
    !r.addresses.is_empty() && !r.prefixes.is_empty() && !r.dns.is_empty()
}

#[test]
fn netns_clients_dhclient_na_gets_pool_address_listed_under_its_duid() {
    require_privileges!();
    let (lab, pools, server) = serve_lab("tdna", false, Lifetimes::LONG);
    let mut client =
        clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::Na).expect("dhclient");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty()
    });
    assert_eq!(got.addresses.len(), 1, "{got:?}");
    assert_eq!(got.dns, [pools.dns], "DNS servers from the subnet options");
    assert_leased(&server, &pools, &client, &got);
}

#[test]
fn netns_clients_dhclient_pd_gets_prefix_from_pd_pool() {
    require_privileges!();
    let (lab, pools, server) = serve_lab("tdpd", false, Lifetimes::LONG);
    let mut client =
        clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::Pd).expect("dhclient");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        !r.prefixes.is_empty()
    });
    assert_eq!(got.prefixes.len(), 1, "{got:?}");
    assert!(got.addresses.is_empty(), "{got:?}");
    assert_leased(&server, &pools, &client, &got);
}

#[test]
fn netns_clients_dhclient_stateless_gets_dns_without_lease() {
    require_privileges!();
    let (lab, pools, server) = serve_lab("tdst", false, Lifetimes::LONG);
    let mut client = clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::Stateless)
        .expect("dhclient");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| !r.dns.is_empty());
    assert_eq!(got.dns, [pools.dns]);
    assert!(!got.has_lease(), "{got:?}");
    assert_eq!(server.leases().expect("leases"), []);
}

#[test]
fn netns_clients_dhclient_renews_at_t1_and_keeps_address() {
    require_privileges!();
    let (lab, pools, server) = serve_lab(
        "tdrn",
        false,
        Lifetimes {
            preferred: 8,
            valid: 16,
            t1: 2,
            t2: 4,
        },
    );
    let mut client =
        clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::Na).expect("dhclient");
    let bound = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty()
    });
    let renewed = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        r.reasons().contains(&"RENEW6")
    });
    assert_eq!(
        renewed.addresses, bound.addresses,
        "same address after RENEW"
    );
    assert_leased(&server, &pools, &client, &renewed);
}

#[test]
fn netns_clients_dhclient_release_frees_lease() {
    require_privileges!();
    let (lab, pools, server) = serve_lab("tdrl", false, Lifetimes::LONG);
    let mut client =
        clients::dhclient(lab.client_ns(), lab.client_if(), DhclientMode::Na).expect("dhclient");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty()
    });
    assert_leased(&server, &pools, &client, &got);
    let duid = client.duid().expect("duid");
    let after = client.release().expect("dhclient -r");
    assert!(
        after.reasons().contains(&"RELEASE6"),
        "{:?}",
        after.reasons()
    );
    let active: Vec<LeaseRow> = rows_of(&server, &duid)
        .into_iter()
        .filter(|r| r.state == "active")
        .collect();
    assert_eq!(active, [], "lease still active after RELEASE");
}

/// Starts `start` against a served lab and checks that it gets an address, a prefix and the
/// subnet's DNS server, all listed under its DUID.
fn gets_full_lease(
    prefix: &str,
    start: impl FnOnce(&NetNs, &str) -> std::io::Result<RunningClient>,
) {
    let (lab, pools, server) = serve_lab(prefix, false, Lifetimes::LONG);
    let mut client = start(lab.client_ns(), lab.client_if()).expect("start client");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, full_lease);
    assert_eq!(got.dns, [pools.dns]);
    assert_leased(&server, &pools, &client, &got);
}

#[test]
fn netns_clients_dhcpcd_gets_address_and_prefix() {
    require_privileges!();
    gets_full_lease("tdcd", |ns, ifname| {
        clients::dhcpcd(ns, ifname, &StatefulOptions::default())
    });
}

#[test]
fn netns_clients_dibbler_rapid_commit_gets_lease_without_advertise() {
    require_privileges!();
    let (lab, pools, server) = serve_lab("tddb", true, Lifetimes::LONG);
    let opts = rapid_commit_opts();
    let mut client = clients::dibbler(lab.client_ns(), lab.client_if(), &opts).expect("dibbler");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, full_lease);
    assert_leased(&server, &pools, &client, &got);
    assert_eq!(
        got.dns,
        [pools.dns],
        "DNS servers (from its private resolv.conf)"
    );
    let stdout = server.stop().expect("stop server").join("\n");
    assert!(
        stdout.contains(" tx_advertise=0 ") && stdout.contains(" rx_request=0 "),
        "Rapid Commit: no ADVERTISE and no REQUEST expected: {stdout}"
    );
}

#[test]
fn netns_clients_wide_dhcp6c_gets_address_and_prefix() {
    require_privileges!();
    gets_full_lease("tdwd", |ns, ifname| {
        clients::wide_dhcp6c(ns, ifname, &StatefulOptions::default())
    });
}

#[test]
fn netns_clients_relayed_dhclient_gets_address_of_relay_link() {
    require_privileges!();
    let lab = RelayLab::new("tdry").expect("relay lab");
    let pools = TestPools::new(lab.client_prefix());
    let server = start_server(
        lab.server_ns(),
        &pools,
        RelayLab::SERVER_IF,
        false,
        false,
        Lifetimes::LONG,
    );
    let _relay = clients::wide_relay(
        lab.relay_ns(),
        RelayLab::RELAY_DOWN_IF,
        RelayLab::RELAY_UP_IF,
        lab.server_addr(),
    )
    .expect("relay");
    let mut client = clients::dhclient(lab.client_ns(), RelayLab::CLIENT_IF, DhclientMode::NaPd)
        .expect("dhclient");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, full_lease);
    assert_eq!(got.dns, [pools.dns]);
    assert_leased(&server, &pools, &client, &got);
}

/// Starts `start` against a served lab, waits for an address, releases, and checks that no
/// lease of the client's DUID stays active.
fn release_frees_lease(
    prefix: &str,
    start: impl FnOnce(&NetNs, &str) -> std::io::Result<RunningClient>,
) {
    let (lab, pools, server) = serve_lab(prefix, false, Lifetimes::LONG);
    let mut client = start(lab.client_ns(), lab.client_if()).expect("start client");
    let got = wait_served(&mut client, &server, LEASE_TIMEOUT, |r| {
        !r.addresses.is_empty()
    });
    assert_leased(&server, &pools, &client, &got);
    let duid = client.duid().expect("duid");
    let command = client.command().to_owned();
    let after = client.release().expect("release");
    let rows = rows_of(&server, &duid);
    assert!(
        !rows.is_empty(),
        "the lease rows are gone entirely: {rows:?}"
    );
    let active: Vec<&LeaseRow> = rows.iter().filter(|r| r.state == "active").collect();
    assert!(
        active.is_empty(),
        "`{command}` released but leases stay active: {active:#?}\nclient log:\n{}",
        after.log
    );
}

#[test]
fn netns_clients_dhcpcd_dash_k_releases_lease() {
    require_privileges!();
    release_frees_lease("tdcr", |ns, ifname| {
        clients::dhcpcd(ns, ifname, &StatefulOptions::default())
    });
}

#[test]
fn netns_clients_dibbler_sigterm_releases_lease() {
    require_privileges!();
    release_frees_lease("tddr", |ns, ifname| {
        clients::dibbler(ns, ifname, &StatefulOptions::default())
    });
}

#[test]
fn netns_clients_wide_dhcp6c_sigterm_releases_lease() {
    require_privileges!();
    release_frees_lease("tdwr", |ns, ifname| {
        clients::wide_dhcp6c(ns, ifname, &StatefulOptions::default())
    });
}
