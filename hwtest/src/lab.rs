//! The lab behind `cargo xtask lab`: `tandem run` serving real Debian DHCPv6 clients in network
//! namespaces, ending in a report of what each client configured, the server's lease table and
//! its counters. The server runs the socket datapath, or with [`LabDatapath::Xdp`] the XDP/AF_XDP
//! one (`[datapath] mode = "xdp"`, `xdp-mode = "auto"`): one XDP program and one worker per RX
//! queue on every server interface (`lan1`..`lan6` and `tandem0`).
//!
//! ```text
//!                       +-- lan1 <-veth-> client0 [netns c1: dhclient -6        (IA_NA)]
//!                       +-- lan2 <-veth-> client0 [netns c2: dhclient -6 -P     (IA_PD)]
//!  netns srv            +-- lan3 <-veth-> client0 [netns c3: dhclient -6 -S     (stateless)]
//!  tandem run ----------+-- lan4 <-veth-> client0 [netns c4: dhcpcd             (IA_NA+IA_PD)]
//!                       +-- lan5 <-veth-> client0 [netns c5: dibbler-client     (Rapid Commit)]
//!                       +-- lan6 <-veth-> client0 [netns c6: WIDE dhcp6c        (IA_NA+IA_PD)]
//!                       +-- tandem0 <-veth-> up0 [netns rly: dhcp6relay] down0 <-veth->
//!                                                  client0 [netns cli: dhclient -6 -N -P]
//! ```
//!
//! Each client link is a subnet of its own (selected by the receiving interface, RFC 8415
//! §13.1); the relayed one is selected by the relay's link-address (§19.1.1). Every subnet has
//! a /64 address pool, a /40 PD pool cut into /56s, a DNS server and a domain search list
//! (RFC 3646); the dibbler link has Rapid Commit on (§18.3.1). What a client configured is read
//! from the client itself ([`RunningClient::result`]); the lease table from `tandem leases`.
//!
//! The lab as an RFC 8156 failover pair lives in [`failover`] (`cargo xtask lab --failover`);
//! the older XDP steering demo in [`xdp_demo`] (`cargo xtask lab --xdp-demo`).

pub mod failover;
pub mod xdp_demo;

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::clients::{
    self, ClientResult, DhclientMode, LeaseRow, RelayLab, RunningClient, StatefulOptions, TandemRun,
};
use crate::netns::NetNs;
use crate::process::run_bounded;

/// The DNS server every subnet announces (RFC 3646 §3).
pub const DNS_SERVER: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x53, 0, 0, 0, 0, 0, 0x53);
/// The domain search list every subnet announces (RFC 3646 §4).
pub const DOMAIN_SEARCH: &str = "lab.tandem.example";
/// Delegated prefix length of every PD pool.
pub const DELEGATED_LEN: u8 = 56;
/// Lease store capacity of the lab's server.
const CAPACITY: u64 = 4096;
/// Timeout of `tandem leases`.
const LEASES_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the lab waits for the link-local addresses of a new veth.
const LINK_TIMEOUT: Duration = Duration::from_secs(5);

/// The packet path the lab's `tandem run` serves on (`[datapath] mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabDatapath {
    /// One UDP socket on port 547 (`mode = "socket"`, the server's default).
    #[default]
    Socket,
    /// The XDP program on every server interface steering DHCPv6 to AF_XDP workers
    /// (`mode = "xdp"`, `xdp-mode = "auto"`).
    Xdp,
}

impl LabDatapath {
    /// The name `tandem run` uses (`--datapath`, `[datapath] mode`, `READY mode=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Xdp => "xdp",
        }
    }

    /// The `[datapath]` table of the lab's configuration.
    fn toml(self) -> String {
        match self {
            Self::Socket => "[datapath]\nmode = \"socket\"\n\n".to_owned(),
            Self::Xdp => "[datapath]\nmode = \"xdp\"\nxdp-mode = \"auto\"\n\n".to_owned(),
        }
    }
}

/// What [`run`] does.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// How long all clients together may take to configure (they run in parallel).
    pub client_timeout: Duration,
    /// The server's datapath.
    pub datapath: LabDatapath,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            client_timeout: Duration::from_secs(30),
            datapath: LabDatapath::Socket,
        }
    }
}

/// Which real client a lab client is, and what it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabClient {
    /// `dhclient -6` with the given mode, on a direct link.
    Dhclient(DhclientMode),
    /// `dhcpcd -6`, IA_NA + IA_PD.
    Dhcpcd,
    /// `dibbler-client`, IA_NA + IA_PD with Rapid Commit (RFC 8415 §18.2.1).
    DibblerRapidCommit,
    /// WIDE `dhcp6c`, IA_NA + IA_PD.
    WideDhcp6c,
    /// `dhclient -6 -N -P` behind the WIDE relay `dhcp6relay` (RFC 8415 §19).
    RelayedDhclient,
}

impl LabClient {
    /// Every client of the lab, in the order of the report.
    pub const ALL: [Self; 7] = [
        Self::Dhclient(DhclientMode::Na),
        Self::Dhclient(DhclientMode::Pd),
        Self::Dhclient(DhclientMode::Stateless),
        Self::Dhcpcd,
        Self::DibblerRapidCommit,
        Self::WideDhcp6c,
        Self::RelayedDhclient,
    ];

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dhclient(DhclientMode::Na) => "ISC dhclient -6 (IA_NA)",
            Self::Dhclient(DhclientMode::Pd) => "ISC dhclient -6 -P (IA_PD)",
            Self::Dhclient(DhclientMode::NaPd) => "ISC dhclient -6 -N -P (IA_NA+IA_PD)",
            Self::Dhclient(DhclientMode::Stateless) => "ISC dhclient -6 -S (stateless)",
            Self::Dhcpcd => "dhcpcd -6 (IA_NA+IA_PD)",
            Self::DibblerRapidCommit => "dibbler-client (IA_NA+IA_PD, Rapid Commit)",
            Self::WideDhcp6c => "WIDE dhcp6c (IA_NA+IA_PD)",
            Self::RelayedDhclient => "ISC dhclient -6 -N -P via WIDE dhcp6relay",
        }
    }

    /// Whether it asks for an address.
    pub fn wants_na(self) -> bool {
        !matches!(
            self,
            Self::Dhclient(DhclientMode::Pd | DhclientMode::Stateless)
        )
    }

    /// Whether it asks for a prefix.
    pub fn wants_pd(self) -> bool {
        !matches!(
            self,
            Self::Dhclient(DhclientMode::Na | DhclientMode::Stateless)
        )
    }

    /// Whether it must report the DNS server (dhclient -P is not asked for it: its script
    /// call for the prefix carries only the IA_PD).
    pub fn wants_dns(self) -> bool {
        self != Self::Dhclient(DhclientMode::Pd)
    }

    /// Whether the server should hold a lease for it.
    pub fn stateful(self) -> bool {
        self.wants_na() || self.wants_pd()
    }

    /// Whether it is configured, as far as the lab waits for.
    fn done(self, r: &ClientResult) -> bool {
        (!self.wants_na() || !r.addresses.is_empty())
            && (!self.wants_pd() || !r.prefixes.is_empty())
            && (!self.wants_dns() || !r.dns.is_empty())
    }

    fn start(self, ns: &NetNs, iface: &str) -> io::Result<RunningClient> {
        let both = StatefulOptions::default();
        match self {
            Self::Dhclient(mode) => clients::dhclient(ns, iface, mode),
            Self::Dhcpcd => clients::dhcpcd(ns, iface, &both),
            Self::DibblerRapidCommit => clients::dibbler(
                ns,
                iface,
                &StatefulOptions {
                    rapid_commit: true,
                    ..both
                },
            ),
            Self::WideDhcp6c => clients::wide_dhcp6c(ns, iface, &both),
            Self::RelayedDhclient => clients::dhclient(ns, iface, DhclientMode::NaPd),
        }
    }
}

/// One subnet of the lab's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSubnet {
    /// The on-link /64 (also the address pool).
    pub prefix: Ipv6Addr,
    /// The /40 PD pool, cut into /[`DELEGATED_LEN`]s.
    pub pd_pool: Ipv6Addr,
    /// The server interface of a direct link; `None` for the relayed link.
    pub interface: Option<String>,
    /// Rapid Commit on this subnet.
    pub rapid_commit: bool,
}

impl LabSubnet {
    /// Whether `a` is in the subnet's /64 address pool.
    pub fn has_address(&self, a: Ipv6Addr) -> bool {
        u128::from(a) >> 64 == u128::from(self.prefix) >> 64
    }

    /// Whether `(p, len)` is a /56 of the subnet's /40 PD pool.
    pub fn has_prefix(&self, (p, len): (Ipv6Addr, u8)) -> bool {
        len == DELEGATED_LEN && u128::from(p) >> 88 == u128::from(self.pd_pool) >> 88
    }

    fn toml(&self) -> String {
        let interface = self
            .interface
            .as_ref()
            .map(|i| format!("interface = \"{i}\"\n"))
            .unwrap_or_default();
        format!(
            "[[subnet]]\nprefix = \"{}/64\"\n{interface}rapid-commit = {}\n\
             preferred-lifetime = 1800\nvalid-lifetime = 3600\n\n\
             [[subnet.pool]]\nprefix = \"{}/64\"\n\n\
             [[subnet.pd-pool]]\nprefix = \"{}/40\"\ndelegated-length = {DELEGATED_LEN}\n\n\
             [subnet.options]\ndns-servers = [\"{DNS_SERVER}\"]\ndomain-search = [\"{DOMAIN_SEARCH}\"]\n\n",
            self.prefix, self.rapid_commit, self.prefix, self.pd_pool
        )
    }
}

/// The lab's `tandem.toml`: `server_ifs` are listened on (or have the XDP program attached),
/// `subnets` served, over `datapath`.
pub fn config(server_ifs: &[&str], subnets: &[LabSubnet], datapath: LabDatapath) -> String {
    let mut c = String::from("# written by tandem-hwtest's lab\n[server]\npreference = 255\n\n");
    c.push_str(&datapath.toml());
    for i in server_ifs {
        c.push_str(&format!("[[interface]]\nname = \"{i}\"\n\n"));
    }
    for s in subnets {
        c.push_str(&s.toml());
    }
    c
}

/// What one client configured, and what is wrong with it.
#[derive(Clone, Debug)]
pub struct ClientReport {
    /// Which client.
    pub client: LabClient,
    /// Its command line.
    pub command: String,
    /// Where it runs: namespace and link.
    pub place: String,
    /// The subnet it is on.
    pub subnet: LabSubnet,
    /// Its DUID, read from the client's own files.
    pub duid: Option<Vec<u8>>,
    /// What it configured (from its script calls, its log and its interface).
    pub got: ClientResult,
    /// Addresses it built itself from its delegated prefix (not leases).
    pub derived: Vec<Ipv6Addr>,
    /// Domain search list it was given, when its script saw one.
    pub domains: Vec<String>,
    /// Remarks on how it got there (e.g. Rapid Commit seen in its log).
    pub notes: Vec<String>,
    /// How long it took to configure (`None`: it did not).
    pub took: Option<Duration>,
    /// Its lease-table rows (by DUID).
    pub rows: Vec<LeaseRow>,
    /// What is wrong (empty: it got what it asked for and the table agrees).
    pub problems: Vec<String>,
}

impl ClientReport {
    /// The client's block of the lab report: verdict, what it is and where, its command, DUID,
    /// what it configured, its lease rows (when counted), notes and problems, and the tail of its
    /// log when something is wrong.
    pub fn render(&self, f: &mut impl std::fmt::Write) -> std::fmt::Result {
        let verdict = if self.problems.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        let took = self
            .took
            .map_or_else(|| "not configured".to_owned(), |t| format!("{t:.1?}"));
        writeln!(
            f,
            "{verdict} {}  [{}; {took}]",
            self.client.describe(),
            self.place
        )?;
        writeln!(f, "       command:   {}", self.command)?;
        writeln!(
            f,
            "       DUID:      {}",
            self.duid.as_deref().map_or_else(
                || "unknown (dhclient keeps it in a lease file; -S writes none)".to_owned(),
                hex_colons
            )
        )?;
        writeln!(f, "       addresses: {}", list(&self.got.addresses))?;
        if !self.derived.is_empty() {
            writeln!(
                f,
                "                  {} (from its prefix)",
                list(&self.derived)
            )?;
        }
        let prefixes: Vec<String> = self
            .got
            .prefixes
            .iter()
            .map(|(p, l)| format!("{p}/{l}"))
            .collect();
        writeln!(f, "       prefixes:  {}", list(&prefixes))?;
        writeln!(f, "       DNS:       {}", list(&self.got.dns))?;
        if !self.domains.is_empty() {
            writeln!(f, "       search:    {}", list(&self.domains))?;
        }
        if !self.rows.is_empty() {
            writeln!(
                f,
                "       leases:    {} row(s) under its DUID",
                self.rows.len()
            )?;
        }
        for n in &self.notes {
            writeln!(f, "       note:      {n}")?;
        }
        for p in &self.problems {
            writeln!(f, "       problem:   {p}")?;
        }
        if !self.problems.is_empty() {
            let lines: Vec<&str> = self.got.log.lines().collect();
            writeln!(f, "       its log (last 15 lines):")?;
            for line in lines.iter().skip(lines.len().saturating_sub(15)) {
                writeln!(f, "         {line}")?;
            }
        }
        Ok(())
    }
}

/// Everything [`run`] saw.
#[derive(Clone, Debug)]
pub struct LabReport {
    /// The topology, in words.
    pub topology: Vec<String>,
    /// The subnets served.
    pub subnets: Vec<LabSubnet>,
    /// The server's command line.
    pub server_command: String,
    /// The datapath the lab asked for.
    pub datapath: LabDatapath,
    /// The server's `READY …` line (`mode=` names the datapath that served).
    pub ready: String,
    /// The clients, in [`LabClient::ALL`] order.
    pub clients: Vec<ClientReport>,
    /// `tandem leases --state-dir D` (the human table), taken while the clients held their
    /// leases.
    pub lease_table: String,
    /// The same table as `--json` rows.
    pub leases: Vec<LeaseRow>,
    /// The server's `COUNTERS …` line after SIGTERM (empty if it printed none).
    pub counters: String,
    /// Problems not tied to one client (table rows nobody configured, server stop).
    pub problems: Vec<String>,
    /// The server's log, kept for a failed run.
    pub server_log: String,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl LabReport {
    /// Everything that went wrong; empty on success.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .clients
            .iter()
            .flat_map(|c| {
                c.problems
                    .iter()
                    .map(move |p| format!("{}: {p}", c.client.describe()))
            })
            .collect();
        out.extend(self.problems.iter().cloned());
        out
    }

    /// The datapath that served, from `mode=` of the server's `READY` line.
    pub fn served_by(&self) -> Option<&str> {
        self.ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("mode="))
    }

    /// The `xdp_*` fields of the `COUNTERS` line (the XDP program's verdicts, summed over the
    /// interfaces), in order.
    pub fn xdp_counters(&self) -> Vec<(&str, u64)> {
        self.counters
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| k.starts_with("xdp_"))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect()
    }

    /// `COUNTERS` value `name` (e.g. `rx_solicit`), if printed.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
    }
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for LabReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== Tandem lab: `tandem run` serving real DHCPv6 clients =="
        )?;
        for line in &self.topology {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "server:   {}", self.server_command)?;
        writeln!(
            f,
            "datapath: {} requested, {} served ({})",
            self.datapath.as_str(),
            self.served_by().unwrap_or("unknown"),
            if self.ready.is_empty() {
                "no READY line"
            } else {
                &self.ready
            }
        )?;
        writeln!(f, "subnets:")?;
        for s in &self.subnets {
            writeln!(
                f,
                "  {:<22} {:<8} pool {}/64, PD {}/40 -> /{DELEGATED_LEN}, DNS {DNS_SERVER}, \
                 search {DOMAIN_SEARCH}{}",
                format!("{}/64", s.prefix),
                s.interface.as_deref().unwrap_or("relayed"),
                s.prefix,
                s.pd_pool,
                if s.rapid_commit { ", rapid-commit" } else { "" }
            )?;
        }
        let good = self
            .clients
            .iter()
            .filter(|c| c.problems.is_empty())
            .count();
        writeln!(f)?;
        writeln!(
            f,
            "-- clients: {good} of {} got what they asked for (as read from the clients) --",
            self.clients.len()
        )?;
        for c in &self.clients {
            c.render(f)?;
        }
        writeln!(f)?;
        writeln!(f, "-- server lease table (tandem leases) --")?;
        for line in self.lease_table.lines() {
            writeln!(f, "  {line}")?;
        }
        writeln!(f)?;
        writeln!(f, "-- server stopped with SIGTERM --")?;
        if self.counters.is_empty() {
            writeln!(f, "  (no COUNTERS line)")?;
        } else {
            writeln!(f, "  {}", self.counters)?;
        }
        if self.datapath == LabDatapath::Xdp {
            let xdp: Vec<String> = self
                .xdp_counters()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(f, "  XDP program (all interfaces): {}", list(&xdp))?;
        }
        let failures = self.failures();
        if !failures.is_empty() && !self.server_log.trim().is_empty() {
            writeln!(f)?;
            writeln!(f, "-- server log (last 40 lines) --")?;
            let lines: Vec<&str> = self.server_log.lines().collect();
            for line in lines.iter().skip(lines.len().saturating_sub(40)) {
                writeln!(f, "  {line}")?;
            }
        }
        write_result(f, &failures, self.elapsed)
    }
}

/// Runs the lab with `tandem_bin`, prints the report on stdout, and fails if any client did
/// not get what it asked for or the lease table disagrees with the clients.
pub fn main_job(tandem_bin: &Path, opts: &LabOptions) -> anyhow::Result<LabReport> {
    let report = run(tandem_bin, opts)?;
    let failures = report.failures();
    print_and_judge(report, &failures)
}

/// The closing `RESULT:` block of a lab report (this lab's and [`xdp_demo`]'s).
pub(crate) fn write_result(
    f: &mut fmt::Formatter<'_>,
    failures: &[String],
    elapsed: Duration,
) -> fmt::Result {
    writeln!(f)?;
    if failures.is_empty() {
        return writeln!(f, "RESULT: all good ({elapsed:.1?})");
    }
    writeln!(f, "RESULT: {} problem(s) ({elapsed:.1?})", failures.len())?;
    for fail in failures {
        writeln!(f, "  - {fail}")?;
    }
    Ok(())
}

/// Prints `report` on stdout; an error listing `failures` if there are any.
pub(crate) fn print_and_judge<R: fmt::Display>(
    report: R,
    failures: &[String],
) -> anyhow::Result<R> {
    print!("{report}");
    if !failures.is_empty() {
        bail!(
            "lab: {} problem(s): {}",
            failures.len(),
            failures.join(" | ")
        );
    }
    Ok(report)
}

/// What is wrong with the datapath that served, given the server's `READY` and `COUNTERS`
/// lines: it must be the one asked for, and over XDP the program must have redirected
/// DHCPv6 to the AF_XDP workers (`xdp_redirected > 0`).
fn datapath_problems(want: LabDatapath, ready: &str, counters: &str) -> Vec<String> {
    let mut out = Vec::new();
    let served = ready
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("mode="));
    if served != Some(want.as_str()) {
        out.push(format!(
            "datapath {} requested, READY line says {:?}",
            want.as_str(),
            served
        ));
    }
    if want == LabDatapath::Xdp {
        let redirected = counters
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("xdp_redirected="))
            .and_then(|v| v.parse::<u64>().ok());
        match redirected {
            Some(n) if n > 0 => {}
            Some(_) => out.push("xdp_redirected=0: the XDP program steered nothing".to_owned()),
            None => out.push("no xdp_redirected in the COUNTERS line".to_owned()),
        }
    }
    out
}

/// A client link: its namespace (holding [`CLIENT_IF`]) and the server's end `lan<i>` (for a
/// link both failover servers are on, [`failover::shared_link`], the name of both ends).
#[derive(Debug)]
pub struct DirectLink {
    /// The client namespace.
    pub ns: NetNs,
    /// The server's interface.
    pub server_if: String,
}

/// Name of the client's interface in every client namespace.
pub const CLIENT_IF: &str = "client0";

/// Runs the lab and returns the report without printing or judging it. Errors only when the
/// topology cannot be built or the server does not start.
pub fn run(tandem_bin: &Path, opts: &LabOptions) -> anyhow::Result<LabReport> {
    crate::privileges()
        .map_err(|why| anyhow::anyhow!("the lab needs root with CAP_NET_ADMIN: {why}"))?;
    let started = Instant::now();
    let relay_lab = RelayLab::new("tandem-lab").context("cannot build the relay topology")?;
    let server_ns = relay_lab.server_ns();
    let direct_clients: Vec<LabClient> = LabClient::ALL
        .into_iter()
        .filter(|c| *c != LabClient::RelayedDhclient)
        .collect();
    let mut links = Vec::new();
    let mut subnets = Vec::new();
    for (i, client) in (1u16..).zip(&direct_clients) {
        let link = direct_link(server_ns, i).with_context(|| format!("client link {i}"))?;
        subnets.push(LabSubnet {
            prefix: Ipv6Addr::new(0xfd00, i, 0, 0, 0, 0, 0, 0),
            pd_pool: Ipv6Addr::new(0xfd20, i, 0, 0, 0, 0, 0, 0),
            interface: Some(link.server_if.clone()),
            rapid_commit: *client == LabClient::DibblerRapidCommit,
        });
        links.push(link);
    }
    let relay_index = u16::try_from(links.len() + 1).context("too many links")?;
    subnets.push(LabSubnet {
        prefix: relay_lab.client_prefix(),
        pd_pool: Ipv6Addr::new(0xfd20, relay_index, 0, 0, 0, 0, 0, 0),
        interface: None,
        rapid_commit: false,
    });
    let mut server_ifs = vec![RelayLab::SERVER_IF];
    server_ifs.extend(links.iter().map(|l| l.server_if.as_str()));
    let config_text = config(&server_ifs, &subnets, opts.datapath);

    let mut topology = vec![format!(
        "topology: netns {} runs `tandem run` on {}",
        server_ns.name(),
        server_ifs.join(", ")
    )];
    for (link, client) in links.iter().zip(&direct_clients) {
        topology.push(format!(
            "          {} <- veth -> {} in netns {}: {}",
            link.server_if,
            CLIENT_IF,
            link.ns.name(),
            client.describe()
        ));
    }
    topology.push(format!(
        "          {} <- veth -> {} in netns {} (dhcp6relay, link-address {}) {} <- veth -> {} \
         in netns {}: {}",
        RelayLab::SERVER_IF,
        RelayLab::RELAY_UP_IF,
        relay_lab.relay_ns().name(),
        relay_lab.relay_down_addr(),
        RelayLab::RELAY_DOWN_IF,
        RelayLab::CLIENT_IF,
        relay_lab.client_ns().name(),
        LabClient::RelayedDhclient.describe()
    ));

    let server = TandemRun::start(tandem_bin, server_ns, &config_text, CAPACITY)
        .context("cannot start `tandem run`")?;
    let server_command = format!(
        "ip netns exec {} {} run --config <lab>/tandem.toml --state-dir {} --capacity {CAPACITY} \
         ([datapath] mode = \"{}\")",
        server_ns.name(),
        tandem_bin.display(),
        server.state_dir().display(),
        opts.datapath.as_str()
    );
    let relay = clients::wide_relay(
        relay_lab.relay_ns(),
        RelayLab::RELAY_DOWN_IF,
        RelayLab::RELAY_UP_IF,
        relay_lab.server_addr(),
    )
    .context("cannot start dhcp6relay")?;

    // Every client starts at once; they configure in parallel.
    let client_start = Instant::now();
    let mut running = Vec::new();
    for (client, link, subnet) in direct_clients
        .iter()
        .zip(&links)
        .zip(&subnets)
        .map(|((c, l), s)| (*c, l, s))
    {
        let rc = client
            .start(&link.ns, CLIENT_IF)
            .with_context(|| format!("cannot start {}", client.describe()))?;
        let place = format!(
            "netns {}, {} <-> {}",
            link.ns.name(),
            CLIENT_IF,
            link.server_if
        );
        running.push((client, rc, place, subnet.clone()));
    }
    let relayed = LabClient::RelayedDhclient;
    let rc = relayed
        .start(relay_lab.client_ns(), RelayLab::CLIENT_IF)
        .with_context(|| format!("cannot start {}", relayed.describe()))?;
    let relay_subnet = subnets.last().cloned().context("no relayed subnet")?;
    running.push((
        relayed,
        rc,
        format!("netns {}, behind the relay", relay_lab.client_ns().name()),
        relay_subnet,
    ));

    let deadline = client_start + opts.client_timeout;
    let mut reports = Vec::new();
    for (client, rc, place, subnet) in &mut running {
        let left = deadline.saturating_duration_since(Instant::now());
        let c = *client;
        let (got, took) = match rc.wait_for(left, |r| c.done(r)) {
            Ok(got) => (got, Some(client_start.elapsed())),
            Err(_) => (rc.result(), None),
        };
        reports.push(ClientReport {
            client: c,
            command: rc.command().to_owned(),
            place: place.clone(),
            subnet: subnet.clone(),
            duid: rc.duid(),
            derived: vec![],
            domains: domains_of(&got),
            got,
            took,
            notes: vec![],
            rows: vec![],
            problems: vec![],
        });
    }

    let mut problems = Vec::new();
    let lease_table = match lease_table(tandem_bin, server.state_dir()) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("tandem leases: {e}"));
            String::new()
        }
    };
    let leases = server.leases().unwrap_or_else(|e| {
        problems.push(format!("tandem leases --json: {e}"));
        vec![]
    });
    for r in &mut reports {
        judge(r, &leases);
    }
    problems.extend(unclaimed_rows(&reports, &leases));
    let server_log = server.log();

    // Clients first (dibbler and dhcp6c send a RELEASE on SIGTERM, answered while the server
    // still runs), in parallel; then the relay; then the server, whose COUNTERS line ends it.
    let stopped: Vec<io::Result<ClientResult>> = thread::scope(|s| {
        let handles: Vec<_> = running
            .into_iter()
            .map(|(_, rc, _, _)| s.spawn(move || rc.stop()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("client stop panicked")))
            })
            .collect()
    });
    for e in stopped.into_iter().filter_map(Result::err) {
        problems.push(format!("client stop: {e}"));
    }
    drop(relay);
    let (ready, counters) = match server.stop() {
        Ok(lines) => {
            let find = |p: &str| {
                lines
                    .iter()
                    .find(|l| l.starts_with(p))
                    .cloned()
                    .unwrap_or_default()
            };
            (find("READY"), find("COUNTERS"))
        }
        Err(e) => {
            problems.push(format!("stopping tandem run: {e}"));
            (String::new(), String::new())
        }
    };
    if counters.is_empty() {
        problems.push("tandem run printed no COUNTERS line on SIGTERM".to_owned());
    }
    problems.extend(datapath_problems(opts.datapath, &ready, &counters));
    drop(links);
    drop(relay_lab);
    Ok(LabReport {
        topology,
        subnets,
        server_command,
        datapath: opts.datapath,
        ready,
        clients: reports,
        lease_table,
        leases,
        counters,
        problems,
        server_log,
        elapsed: started.elapsed(),
    })
}

/// Namespace `tandem-lab-c<i>` with `client0`, joined by a veth to `lan<i>` in `server_ns`.
/// DAD is off on both ends, so link-local addresses are usable at once.
fn direct_link(server_ns: &NetNs, i: u16) -> io::Result<DirectLink> {
    let ns = NetNs::new(&format!("tandem-lab-c{i}"))?;
    ns.sysctl("net/ipv6/conf/default/accept_dad", "0")?;
    ns.sysctl("net/ipv6/conf/all/accept_dad", "0")?;
    let server_if = format!("lan{i}");
    server_ns.ip(&[
        "link",
        "add",
        &server_if,
        "type",
        "veth",
        "peer",
        "name",
        CLIENT_IF,
        "netns",
        ns.name(),
    ])?;
    let [hi, lo] = i.to_be_bytes();
    for (side, ifname, n) in [(server_ns, server_if.as_str(), 1u8), (&ns, CLIENT_IF, 2)] {
        let mac = format!("02:74:6c:{hi:02x}:{lo:02x}:{n:02x}");
        side.sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")?;
        side.ip(&["link", "set", "dev", ifname, "address", &mac])?;
        side.ip(&["link", "set", "dev", ifname, "up"])?;
    }
    let deadline = Instant::now() + LINK_TIMEOUT;
    for (side, ifname) in [(server_ns, server_if.as_str()), (&ns, CLIENT_IF)] {
        while !side
            .ip(&["-6", "addr", "show", "dev", ifname, "scope", "link"])?
            .contains("fe80")
        {
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "no link-local address on {ifname}"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(DirectLink { ns, server_if })
}

/// `tandem leases --state-dir <dir>`: the human table.
fn lease_table(bin: &Path, state_dir: &Path) -> io::Result<String> {
    let out = run_bounded(
        Command::new(bin)
            .arg("leases")
            .arg("--state-dir")
            .arg(state_dir),
        LEASES_TIMEOUT,
    )?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "exit {}: {}",
            out.status, out.stderr
        )));
    }
    Ok(out.stdout)
}

/// The domain search list of the client's last script call naming one: dhclient and dhcpcd
/// (`new_dhcp6_domain_search`), dhcp6c (`new_domain_name`), dibbler (`SRV_OPTION24`).
fn domains_of(got: &ClientResult) -> Vec<String> {
    got.calls
        .iter()
        .rev()
        .find_map(|call| {
            ["new_dhcp6_domain_search", "new_domain_name", "SRV_OPTION24"]
                .iter()
                .find_map(|k| call.env.get(*k))
        })
        .map(|v| {
            v.trim_matches(['\'', '"'])
                .split_whitespace()
                .map(|d| d.trim_end_matches('.').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one client against what it asked for and the lease table, filling `rows`,
/// `derived` and `problems`.
fn judge(r: &mut ClientReport, leases: &[LeaseRow]) {
    let c = r.client;
    let prefixes = r.got.prefixes.clone();
    let (derived, addresses): (Vec<Ipv6Addr>, Vec<Ipv6Addr>) =
        r.got.addresses.iter().partition(|a| {
            prefixes
                .iter()
                .any(|&(p, l)| l <= 128 && in_prefix(**a, p, l))
        });
    r.derived = derived;
    r.got.addresses = addresses;
    let p = &mut r.problems;
    if r.took.is_none() {
        p.push("did not configure in time".to_owned());
    }
    if c.wants_na() && r.got.addresses.is_empty() {
        p.push("no address".to_owned());
    }
    if !c.wants_na() && !r.got.addresses.is_empty() {
        p.push(format!(
            "addresses it did not ask for: {}",
            list(&r.got.addresses)
        ));
    }
    if c.wants_pd() && r.got.prefixes.is_empty() {
        p.push("no delegated prefix".to_owned());
    }
    if !c.wants_pd() && !r.got.prefixes.is_empty() {
        p.push("a prefix it did not ask for".to_owned());
    }
    if c == LabClient::DibblerRapidCommit {
        rapid_commit_seen(&r.got.log, &mut r.notes, p);
    }
    if c.wants_dns() && r.got.dns != [DNS_SERVER] {
        p.push(format!(
            "DNS servers {} (want {DNS_SERVER})",
            list(&r.got.dns)
        ));
    }
    for &a in &r.got.addresses {
        if !r.subnet.has_address(a) {
            p.push(format!("{a} is outside {}/64", r.subnet.prefix));
        }
    }
    for &(pfx, len) in &r.got.prefixes {
        if !r.subnet.has_prefix((pfx, len)) {
            p.push(format!(
                "{pfx}/{len} is not a /{DELEGATED_LEN} of {}/40",
                r.subnet.pd_pool
            ));
        }
    }
    let Some(duid) = r.duid.clone() else {
        // dhclient -S writes no lease file, so its DUID stays unknown; [`unclaimed_rows`]
        // still catches any lease the server might have made for it.
        if c.stateful() {
            p.push("cannot read its DUID".to_owned());
        }
        return;
    };
    r.rows = leases.iter().filter(|l| l.duid == duid).cloned().collect();
    let active = |kind: &str| {
        r.rows
            .iter()
            .filter(|l| l.kind == kind && l.state == "active")
            .collect::<Vec<_>>()
    };
    let (na, pd) = (active("na"), active("pd"));
    for &a in &r.got.addresses {
        if !na.iter().any(|l| l.address == Some(a)) {
            p.push(format!("{a}: no active lease under its DUID"));
        }
    }
    for &pfx in &r.got.prefixes {
        if !pd.iter().any(|l| l.prefix == Some(pfx)) {
            p.push(format!(
                "{}/{}: no active lease under its DUID",
                pfx.0, pfx.1
            ));
        }
    }
    if !c.stateful() && !r.rows.is_empty() {
        p.push(format!(
            "stateless, yet {} lease row(s) under its DUID",
            r.rows.len()
        ));
    }
}

/// RFC 8415 §18.2.1/§18.3.1: dibbler's log shows its SOLICIT answered by a REPLY carrying
/// Rapid Commit (option 14) and no ADVERTISE.
fn rapid_commit_seen(log: &str, notes: &mut Vec<String>, problems: &mut Vec<String>) {
    let advertised = log.contains("Received ADVERTISE");
    let committed = log
        .lines()
        .any(|l| l.contains("Received REPLY") && l.split_whitespace().any(|w| w == "14"));
    if committed && !advertised {
        notes.push("Rapid Commit: its SOLICIT got a committed REPLY, no ADVERTISE".to_owned());
    } else {
        problems.push(format!(
            "no Rapid Commit exchange in its log (REPLY with option 14: {committed}, \
             ADVERTISE received: {advertised})"
        ));
    }
}

/// Active lease-table rows no client configured.
fn unclaimed_rows(reports: &[ClientReport], leases: &[LeaseRow]) -> Vec<String> {
    leases
        .iter()
        .filter(|l| l.state == "active")
        .filter(|l| {
            !reports.iter().any(|r| {
                r.duid.as_deref() == Some(l.duid.as_slice())
                    && (l.address.is_some_and(|a| r.got.addresses.contains(&a))
                        || l.prefix.is_some_and(|p| r.got.prefixes.contains(&p)))
            })
        })
        .map(|l| format!("lease table row no client configured: {}", l.raw))
        .collect()
}

/// Whether `a` is inside `p/len`.
fn in_prefix(a: Ipv6Addr, p: Ipv6Addr, len: u8) -> bool {
    let shift = 128u32.saturating_sub(u32::from(len));
    u128::from(a).checked_shr(shift).unwrap_or(0) == u128::from(p).checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn subnet() -> LabSubnet {
        LabSubnet {
            prefix: a("fd00:0:0:1::"),
            pd_pool: a("fd20:1::"),
            interface: Some("lan1".to_owned()),
            rapid_commit: true,
        }
    }

    #[test]
    fn config_lab_subnets_parse_as_tandem_config() {
        let relayed = LabSubnet {
            prefix: a("fd02:1::"),
            pd_pool: a("fd20:2::"),
            interface: None,
            rapid_commit: false,
        };
        let text = config(
            &["tandem0", "lan1"],
            &[subnet(), relayed],
            LabDatapath::Socket,
        );
        assert!(text.contains("interface = \"lan1\""), "{text}");
        assert!(text.contains("[datapath]\nmode = \"socket\""), "{text}");
        assert!(text.contains("rapid-commit = true"), "{text}");
        assert!(text.contains("prefix = \"fd20:2::/40\""), "{text}");
        assert_eq!(text.matches("[[subnet]]").count(), 2, "{text}");
        assert_eq!(
            text.matches(&format!("dns-servers = [\"{DNS_SERVER}\"]"))
                .count(),
            2
        );
    }

    #[test]
    fn lab_subnet_pools_accept_own_and_reject_others() {
        let s = subnet();
        assert!(s.has_address(a("fd00:0:0:1:dead:beef::1")));
        assert!(!s.has_address(a("fd00:0:0:2::1")));
        assert!(s.has_prefix((a("fd20:1:ab:cd00::"), 56)));
        assert!(!s.has_prefix((a("fd20:1:ab:cd00::"), 48)));
        assert!(!s.has_prefix((a("fd20:2::"), 56)));
    }

    #[test]
    fn lab_client_wants_match_what_each_asks_for() {
        let stateless = LabClient::Dhclient(DhclientMode::Stateless);
        assert!(!stateless.stateful() && stateless.wants_dns());
        let pd = LabClient::Dhclient(DhclientMode::Pd);
        assert!(pd.wants_pd() && !pd.wants_na() && !pd.wants_dns());
        assert!(LabClient::RelayedDhclient.wants_na() && LabClient::RelayedDhclient.wants_pd());
        let got = ClientResult {
            addresses: vec![a("fd00:0:0:1::5")],
            dns: vec![DNS_SERVER],
            ..ClientResult::default()
        };
        assert!(LabClient::Dhclient(DhclientMode::Na).done(&got));
        assert!(!LabClient::Dhcpcd.done(&got));
    }

    fn report(client: LabClient, got: ClientResult, duid: &[u8]) -> ClientReport {
        ClientReport {
            client,
            command: String::new(),
            place: String::new(),
            subnet: subnet(),
            duid: Some(duid.to_vec()),
            got,
            derived: vec![],
            domains: vec![],
            took: Some(Duration::from_secs(1)),
            notes: vec![],
            rows: vec![],
            problems: vec![],
        }
    }

    fn row(kind: &str, address: Option<&str>, prefix: Option<(&str, u8)>, duid: &[u8]) -> LeaseRow {
        LeaseRow {
            kind: kind.to_owned(),
            address: address.map(a),
            prefix: prefix.map(|(p, l)| (a(p), l)),
            duid: duid.to_vec(),
            iaid: 1,
            state: "active".to_owned(),
            raw: String::new(),
        }
    }

    #[test]
    fn judge_matching_table_gives_no_problem_and_derived_address_is_split() {
        let got = ClientResult {
            addresses: vec![a("fd00:0:0:1::5"), a("fd20:1:ab:cd01::1")],
            prefixes: vec![(a("fd20:1:ab:cd00::"), 56)],
            dns: vec![DNS_SERVER],
            ..ClientResult::default()
        };
        let mut r = report(LabClient::WideDhcp6c, got, &[1, 2, 3]);
        let table = [
            row("na", Some("fd00:0:0:1::5"), None, &[1, 2, 3]),
            row("pd", None, Some(("fd20:1:ab:cd00::", 56)), &[1, 2, 3]),
        ];
        judge(&mut r, &table);
        assert_eq!(r.problems, Vec::<String>::new());
        assert_eq!(r.derived, [a("fd20:1:ab:cd01::1")]);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(unclaimed_rows(&[r], &table), Vec::<String>::new());
    }

    #[test]
    fn judge_missing_row_and_foreign_row_are_problems() {
        let got = ClientResult {
            addresses: vec![a("fd00:0:0:1::5")],
            dns: vec![DNS_SERVER],
            ..ClientResult::default()
        };
        let mut r = report(LabClient::Dhclient(DhclientMode::Na), got, &[1, 2, 3]);
        let table = [row("na", Some("fd00:0:0:1::6"), None, &[9, 9])];
        judge(&mut r, &table);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0].contains("no active lease"),
            "{:?}",
            r.problems
        );
        assert_eq!(unclaimed_rows(&[r], &table).len(), 1);
    }

    #[test]
    fn rapid_commit_seen_needs_reply_with_option_14_and_no_advertise() {
        let (mut notes, mut problems) = (vec![], vec![]);
        let log =
            "52:28 Client Info Received REPLY on client0/2,trans-id=0x37, 6 opts: 2 1 14 3 25 23";
        rapid_commit_seen(log, &mut notes, &mut problems);
        assert_eq!((notes.len(), problems.len()), (1, 0));
        let log = format!("x Received ADVERTISE on client0/2\n{log}");
        rapid_commit_seen(&log, &mut notes, &mut problems);
        assert_eq!((notes.len(), problems.len()), (1, 1));
    }

    #[test]
    fn domains_of_reads_dhclient_search_list() {
        let call = clients::ScriptCall {
            args: String::new(),
            env: [(
                "new_dhcp6_domain_search".to_owned(),
                "'lab.tandem.example.'".to_owned(),
            )]
            .into(),
        };
        let got = ClientResult {
            calls: vec![call],
            ..ClientResult::default()
        };
        assert_eq!(domains_of(&got), [DOMAIN_SEARCH]);
    }

    #[test]
    fn counter_reads_value_from_counters_line() {
        let report = LabReport {
            topology: vec![],
            subnets: vec![],
            server_command: String::new(),
            datapath: LabDatapath::Socket,
            ready: "READY mode=socket shards=1".to_owned(),
            clients: vec![],
            lease_table: String::new(),
            leases: vec![],
            counters: "COUNTERS rx_solicit=6 tx_reply=9".to_owned(),
            problems: vec![],
            server_log: String::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(report.counter("rx_solicit"), Some(6));
        assert_eq!(report.counter("tx_advertise"), None);
        assert_eq!(report.served_by(), Some("socket"));
        assert!(report.xdp_counters().is_empty());
        let text = report.to_string();
        assert!(
            text.contains("datapath: socket requested, socket served"),
            "{text}"
        );
        assert!(text.contains("RESULT: all good"), "{text}");
    }

    #[test]
    fn config_xdp_datapath_sets_mode_and_auto_attach() {
        let text = config(&["tandem0", "lan1"], &[subnet()], LabDatapath::Xdp);
        assert!(
            text.contains("[datapath]\nmode = \"xdp\"\nxdp-mode = \"auto\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("[[interface]]").count(), 2, "{text}");
        assert_eq!(text.matches("[datapath]").count(), 1, "{text}");
    }

    #[test]
    fn datapath_problems_xdp_needs_xdp_ready_and_redirects() {
        let ready = "READY mode=xdp attach=native workers=7 shards=7";
        let good = "COUNTERS rx_solicit=6 xdp_redirected=40 xdp_passed=3";
        assert_eq!(
            datapath_problems(LabDatapath::Xdp, ready, good),
            Vec::<String>::new()
        );
        let none = "COUNTERS rx_solicit=0 xdp_redirected=0";
        assert_eq!(datapath_problems(LabDatapath::Xdp, ready, none).len(), 1);
        assert_eq!(
            datapath_problems(LabDatapath::Xdp, ready, "COUNTERS rx_solicit=6").len(),
            1
        );
        let socket_ready = "READY mode=socket shards=1";
        assert_eq!(
            datapath_problems(LabDatapath::Xdp, socket_ready, good).len(),
            1
        );
        assert_eq!(
            datapath_problems(LabDatapath::Socket, socket_ready, "COUNTERS rx_solicit=6"),
            Vec::<String>::new()
        );
        assert_eq!(datapath_problems(LabDatapath::Socket, ready, good).len(), 1);
    }

    #[test]
    fn lab_report_xdp_counters_lists_only_xdp_fields() {
        let report = LabReport {
            topology: vec![],
            subnets: vec![],
            server_command: String::new(),
            datapath: LabDatapath::Xdp,
            ready: "READY mode=xdp attach=native workers=7 shards=7".to_owned(),
            clients: vec![],
            lease_table: String::new(),
            leases: vec![],
            counters: "COUNTERS rx_solicit=6 xdp_redirected=40 xdp_passed=3".to_owned(),
            problems: vec![],
            server_log: String::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            report.xdp_counters(),
            [("xdp_redirected", 40), ("xdp_passed", 3)]
        );
        assert_eq!(report.served_by(), Some("xdp"));
        let text = report.to_string();
        assert!(
            text.contains("XDP program (all interfaces): xdp_redirected=40, xdp_passed=3"),
            "{text}"
        );
    }
}
