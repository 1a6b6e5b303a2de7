//! The XDP steering demo behind `cargo xtask lab --xdp-demo`: a scripted, readable run of
//! `tandem xdp-demo` on a 2-queue veth, with direct, relayed and information-request clients
//! and some non-DHCP traffic, ending in a report of what came back and what the datapath
//! counted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tandem_wire::dhcp::MessageType;

use crate::client::{
    self, CLIENT_PORT, DhcpSocket, Expect, ExpectRelay, Reply, SERVER_PORT, SimClient,
};
use crate::server::{DemoArgs, Server, WorkerStats, XdpMode};
use crate::topo::{Lab, link_local, mac_string};
use crate::traffic::{self, Service, TCP_GREETING};

/// Port of the UDP echo service in the server namespace (not DHCP: must reach the kernel).
pub const ECHO_PORT: u16 = 5353;
/// Port of the TCP service in the server namespace (the failover port, RFC 8156 §5.1).
pub const TCP_PORT: u16 = 647;

/// What [`demo`] does.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// RX/TX queues of the veth pair (and AF_XDP sockets of the server).
    pub queues: u32,
    /// Clients sending a SOLICIT directly (multicast), each with its own DUID and socket.
    pub clients: u16,
    /// SOLICITs sent wrapped in RELAY-FORW by a fake relay (unicast to the server).
    pub relayed: u16,
    /// `--mode` of the server.
    pub mode: XdpMode,
    /// How long to wait for each reply.
    pub reply_timeout: Duration,
    /// Transmissions per message (1 = no retransmission).
    pub attempts: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            queues: 2,
            clients: 16,
            relayed: 4,
            mode: XdpMode::Auto,
            reply_timeout: Duration::from_secs(1),
            attempts: 2,
        }
    }
}

/// One DHCPv6 request and what came back.
#[derive(Clone, Debug)]
pub struct ExchangeRecord {
    /// Who sent it (`client 3`, `relayed client 101`, ...).
    pub label: String,
    /// What was sent, in words.
    pub request: String,
    /// The local port it was sent from.
    pub local_port: u16,
    /// Where it was sent.
    pub dest: SocketAddrV6,
    /// Datagrams sent (retransmissions included).
    pub sent: u32,
    /// The reply, if any.
    pub reply: Option<Reply>,
    /// Where the reply came from.
    pub reply_from: Option<SocketAddr>,
    /// What is wrong with the reply (empty: answered correctly).
    pub problems: Vec<String>,
}

impl ExchangeRecord {
    /// `true` when a correct reply came back.
    pub fn ok(&self) -> bool {
        self.reply.is_some() && self.problems.is_empty()
    }
}

/// One non-DHCP probe and its outcome.
#[derive(Clone, Debug)]
pub struct ProbeRecord {
    /// What was tried.
    pub label: String,
    /// What happened: `Ok(description)` or `Err(why it failed)`.
    pub outcome: Result<String, String>,
}

/// Everything [`demo`] saw.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// The topology, in words.
    pub topology: String,
    /// The command line of the server.
    pub server_command: String,
    /// Its `READY` line.
    pub ready: String,
    /// Every DHCPv6 exchange, in order.
    pub exchanges: Vec<ExchangeRecord>,
    /// Non-DHCP probes.
    pub probes: Vec<ProbeRecord>,
    /// DHCPv6 datagrams sent (all go to UDP port 547, so XDP must redirect each).
    pub dhcp_datagrams_sent: u64,
    /// The server's XDP counters.
    pub counters: BTreeMap<String, u64>,
    /// The server's per-worker statistics.
    pub workers: Vec<WorkerStats>,
    /// The server's exit status, as text.
    pub exit_status: String,
    /// What the server wrote to stderr.
    pub server_stderr: String,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl DemoReport {
    /// Everything that went wrong: DHCPv6 exchanges without a correct reply, failed non-DHCP
    /// probes. Empty on success.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.exchanges {
            if e.reply.is_none() {
                out.push(format!("{}: no reply to {}", e.label, e.request));
            } else if !e.problems.is_empty() {
                out.push(format!("{}: {}", e.label, e.problems.join("; ")));
            }
        }
        for p in &self.probes {
            if let Err(why) = &p.outcome {
                out.push(format!("{}: {why}", p.label));
            }
        }
        out
    }

    /// Counter `name`, also found as `xdp_<name>`.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .get(name)
            .or_else(|| self.counters.get(&format!("xdp_{name}")))
            .copied()
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== Tandem XDP lab ==")?;
        writeln!(f, "topology: {}", self.topology)?;
        writeln!(f, "server:   {}", self.server_command)?;
        writeln!(f, "          {}", self.ready)?;
        let good = self.exchanges.iter().filter(|e| e.ok()).count();
        writeln!(f)?;
        writeln!(
            f,
            "-- DHCPv6 exchanges: {good} of {} answered correctly --",
            self.exchanges.len()
        )?;
        for e in &self.exchanges {
            let verdict = if e.ok() { "ok  " } else { "FAIL" };
            let resent = if e.sent > 1 {
                format!(" (sent {} times)", e.sent)
            } else {
                String::new()
            };
            writeln!(
                f,
                "{verdict} {:<18} port {:<5} -> {}: {}{resent}",
                e.label, e.local_port, e.dest, e.request
            )?;
            match (&e.reply, &e.reply_from) {
                (Some(reply), Some(from)) => writeln!(f, "       <- {from}: {reply}")?,
                (Some(reply), None) => writeln!(f, "       <- {reply}")?,
                (None, _) => writeln!(f, "       <- nothing")?,
            }
            for p in &e.problems {
                writeln!(f, "       problem: {p}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "-- non-DHCP traffic (must be passed to the kernel) --")?;
        for p in &self.probes {
            match &p.outcome {
                Ok(what) => writeln!(f, "ok   {}: {what}", p.label)?,
                Err(why) => writeln!(f, "FAIL {}: {why}", p.label)?,
            }
        }
        writeln!(f)?;
        writeln!(f, "-- XDP counters (summed over CPUs) --")?;
        for (name, value) in &self.counters {
            writeln!(f, "{name:<28} {value}")?;
        }
        match self.counter("redirected") {
            Some(r) => writeln!(
                f,
                "redirected {r} vs DHCPv6 datagrams sent {}: {}",
                self.dhcp_datagrams_sent,
                if r == self.dhcp_datagrams_sent {
                    "equal"
                } else {
                    "DIFFERENT"
                }
            )?,
            None => writeln!(f, "(no xdp_redirected counter reported)")?,
        }
        writeln!(f)?;
        writeln!(f, "-- AF_XDP workers --")?;
        for w in &self.workers {
            writeln!(f, "{w}")?;
        }
        let rx: u64 = self.workers.iter().map(|w| w.rx).sum();
        let tx: u64 = self.workers.iter().map(|w| w.tx).sum();
        writeln!(f, "total rx={rx} tx={tx}")?;
        writeln!(f, "server exit: {}", self.exit_status)?;
        let stderr = self.server_stderr.trim();
        if !stderr.is_empty() {
            writeln!(f)?;
            writeln!(f, "-- server stderr --")?;
            for line in stderr.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        super::write_result(f, &self.failures(), self.elapsed)
    }
}

/// Runs the lab with `tandem_bin` (a `tandem` executable), prints the report on stdout, and
/// fails if any DHCPv6 exchange got no correct reply or a non-DHCP probe failed.
pub fn demo(tandem_bin: &Path, opts: &DemoOptions) -> anyhow::Result<DemoReport> {
    let report = run(tandem_bin, opts)?;
    let failures = report.failures();
    super::print_and_judge(report, &failures)
}

/// Runs the lab and returns the report without printing or judging it. Errors only when the
/// lab cannot be built or the server does not start or stop.
pub fn run(tandem_bin: &Path, opts: &DemoOptions) -> anyhow::Result<DemoReport> {
    crate::privileges().map_err(|why| {
        anyhow::anyhow!("the lab needs root with CAP_NET_ADMIN+CAP_SYS_ADMIN+CAP_BPF: {why}")
    })?;
    let started = Instant::now();
    let lab = Lab::new("tandem-lab", opts.queues).context("cannot build the lab topology")?;
    let topology = format!(
        "netns {} [{} {} {} {}] <== veth, {} queue(s) ==> netns {} [{} {} {} {}]",
        lab.server_ns().name(),
        lab.server_if(),
        mac_string(&lab.server_mac()),
        lab.server_addr(),
        lab.server_link_local(),
        lab.queues(),
        lab.client_ns().name(),
        lab.client_if(),
        mac_string(&lab.client_mac()),
        lab.client_addr(),
        lab.client_link_local(),
    );
    let echo = Service::udp_echo(lab.server_ns(), ECHO_PORT).context("UDP echo service")?;
    let tcp = Service::tcp_greeter(lab.server_ns(), TCP_PORT).context("TCP service")?;
    let args = DemoArgs {
        queues: Some(opts.queues),
        mode: opts.mode,
        ..DemoArgs::new(lab.server_if())
    };
    let server_command = format!(
        "ip netns exec {} {} {}",
        lab.server_ns().name(),
        tandem_bin.display(),
        args.to_args().join(" ")
    );
    let server = Server::start(tandem_bin, lab.server_ns(), &args)?;
    let ready = server.ready_line().to_owned();

    let mut exchanges = Vec::new();
    for i in 1..=opts.clients {
        exchanges.push(direct_solicit(&lab, opts, i)?);
    }
    let relay = DhcpSocket::bind(lab.client_ns(), SERVER_PORT).context("fake relay socket")?;
    for j in 1..=opts.relayed {
        exchanges.push(relayed_solicit(&lab, opts, &relay, j)?);
    }
    exchanges.push(information_request(&lab, opts)?);
    let dhcp_datagrams_sent = exchanges.iter().map(|e| u64::from(e.sent)).sum();

    let probes = non_dhcp_probes(&lab, opts.reply_timeout);
    let output = server.stop()?;
    drop((echo, tcp));
    Ok(DemoReport {
        topology,
        server_command,
        ready,
        exchanges,
        probes,
        dhcp_datagrams_sent,
        counters: output.counters,
        workers: output.workers,
        exit_status: output.status.to_string(),
        server_stderr: output.stderr,
        elapsed: started.elapsed(),
    })
}

/// Client `i` multicasts a SOLICIT from its own ephemeral port (every fourth one asks for a
/// prefix too).
fn direct_solicit(lab: &Lab, opts: &DemoOptions, i: u16) -> anyhow::Result<ExchangeRecord> {
    let client = SimClient::new(i);
    let with_pd = i.is_multiple_of(4);
    let xid = client::random_xid();
    let msg = client.solicit(xid, with_pd)?;
    let sock = DhcpSocket::bind(lab.client_ns(), 0)?;
    let dest = client::all_servers(lab.client_ifindex());
    let tx = sock.transact(&msg, xid, dest, opts.reply_timeout, opts.attempts)?;
    let iaids = [u32::from(i)];
    let expect = Expect {
        msg_type: MessageType::ADVERTISE,
        xid,
        client_id: Some(&client.duid),
        ia_na: &iaids,
        ia_pd: if with_pd { &iaids } else { &[] },
    };
    let request = format!(
        "SOLICIT xid={xid:#08x} duid={} IA_NA({i}){}",
        client::hex(&client.duid),
        if with_pd {
            format!(" IA_PD({i})")
        } else {
            String::new()
        }
    );
    Ok(record(
        format!("client {i}"),
        request,
        sock.local_port()?,
        dest,
        tx,
        |r| expect.problems(r),
    ))
}

/// Client `100 + j`'s SOLICIT, wrapped by a fake relay in a RELAY-FORW with an Interface-Id
/// and unicast from port 547 to the server's global address.
fn relayed_solicit(
    lab: &Lab,
    opts: &DemoOptions,
    relay: &DhcpSocket,
    j: u16,
) -> anyhow::Result<ExchangeRecord> {
    let client = SimClient::new(100 + j);
    let with_pd = j.is_multiple_of(2);
    let xid = client::random_xid();
    let inner = client.solicit(xid, with_pd)?;
    let link_address = Ipv6Addr::new(0x2001, 0xdb8, j, 0, 0, 0, 0, 1);
    let peer_address = link_local(client.mac);
    let interface_id = format!("relay0/port{j}");
    let msg = client::relay_forw(
        &inner,
        0,
        link_address,
        peer_address,
        interface_id.as_bytes(),
    )?;
    let dest = SocketAddrV6::new(lab.server_addr(), SERVER_PORT, 0, 0);
    let tx = relay.transact(&msg, xid, dest, opts.reply_timeout, opts.attempts)?;
    let iaids = [u32::from(client.index)];
    let expect = ExpectRelay {
        hop_count: 0,
        link_address,
        peer_address,
        interface_id: interface_id.as_bytes(),
        inner: Expect {
            msg_type: MessageType::ADVERTISE,
            xid,
            client_id: Some(&client.duid),
            ia_na: &iaids,
            ia_pd: if with_pd { &iaids } else { &[] },
        },
    };
    let request = format!(
        "RELAY-FORW link={link_address} peer={peer_address} interface-id={interface_id:?} \
         {{ SOLICIT xid={xid:#08x} IA_NA({}){} }}",
        client.index,
        if with_pd {
            format!(" IA_PD({})", client.index)
        } else {
            String::new()
        }
    );
    let label = format!("relayed client {}", client.index);
    Ok(record(label, request, relay.local_port()?, dest, tx, |r| {
        expect.problems(r)
    }))
}

/// An INFORMATION-REQUEST multicast from the standard client port 546.
fn information_request(lab: &Lab, opts: &DemoOptions) -> anyhow::Result<ExchangeRecord> {
    let client = SimClient::new(200);
    let xid = client::random_xid();
    let msg = client::information_request(Some(&client.duid), xid)?;
    let sock = DhcpSocket::bind(lab.client_ns(), CLIENT_PORT)?;
    let dest = client::all_servers(lab.client_ifindex());
    let tx = sock.transact(&msg, xid, dest, opts.reply_timeout, opts.attempts)?;
    let expect = Expect {
        msg_type: MessageType::REPLY,
        xid,
        client_id: Some(&client.duid),
        ia_na: &[],
        ia_pd: &[],
    };
    let request = format!("INFORMATION-REQUEST xid={xid:#08x}");
    Ok(record(
        "info client 200".to_owned(),
        request,
        CLIENT_PORT,
        dest,
        tx,
        |r| expect.problems(r),
    ))
}

fn record(
    label: String,
    request: String,
    local_port: u16,
    dest: SocketAddrV6,
    tx: client::Transaction,
    check: impl Fn(&Reply) -> Vec<String>,
) -> ExchangeRecord {
    let problems = tx.reply.as_ref().map(check).unwrap_or_default();
    ExchangeRecord {
        label,
        request,
        local_port,
        dest,
        sent: tx.sent,
        reply: tx.reply,
        reply_from: tx.from,
        problems,
    }
}

/// UDP to the echo port and a TCP connection to the TCP port, both at the server's address.
fn non_dhcp_probes(lab: &Lab, timeout: Duration) -> Vec<ProbeRecord> {
    let echo_dest = SocketAddrV6::new(lab.server_addr(), ECHO_PORT, 0, 0);
    let payload = b"hello from the client namespace";
    let udp = match traffic::udp_roundtrip(lab.client_ns(), echo_dest, payload, timeout) {
        Ok(back) if back == payload => {
            Ok(format!("{} bytes echoed by a kernel socket", back.len()))
        }
        Ok(back) => Err(format!(
            "echo returned {:?}",
            String::from_utf8_lossy(&back)
        )),
        Err(e) => Err(e.to_string()),
    };
    let tcp_dest = SocketAddrV6::new(lab.server_addr(), TCP_PORT, 0, 0);
    let tcp = match traffic::tcp_fetch(lab.client_ns(), tcp_dest, timeout) {
        Ok(got) if got == TCP_GREETING => Ok(format!(
            "connected, read {:?}",
            String::from_utf8_lossy(&got).trim_end()
        )),
        Ok(got) => Err(format!("read {:?}", String::from_utf8_lossy(&got))),
        Err(e) => Err(e.to_string()),
    };
    vec![
        ProbeRecord {
            label: format!("UDP to {echo_dest}"),
            outcome: udp,
        },
        ProbeRecord {
            label: format!("TCP to {tcp_dest}"),
            outcome: tcp,
        },
    ]
}
