//! `cargo xtask lab --failover`: the lab as an RFC 8156 failover pair. Two `tandem run`
//! processes in two namespaces, joined by a veth carrying the failover link (TCP 647, mutual
//! TLS with a CA and certificates made at run time with rcgen), each with client links of its
//! own:
//!
//! ```text
//!  client links                 netns P                          netns S              client link
//!  c1 dhclient -6  <-> lan1 --+                                  +-- lan4 <-> c4 dhclient -6
//!  c2 dhcpcd       <-> lan2 --+ primary  fo0 <-veth, TCP 647-> fo1 secondary
//!  c3 WIDE dhcp6c  <-> lan3 --+ fd0f::1                fd0f::2
//!                      lan5 --+-- c5: bridge client0 (dhclient -6) --+-- lan5
//! ```
//!
//! `c5` is on a link both servers are on: in NORMAL the secondary sees its messages and, renew
//! responsive, drops them (`drop_renew_responsive_only`), so only the primary answers.
//!
//! Both servers run the socket datapath, or with [`FailoverOptions::datapath`] =
//! [`LabDatapath::Xdp`] the XDP one: the XDP program attached (in the kernel, checked with
//! `ip -d link`) on every client link `lanN` of each server, DHCPv6 served by one AF_XDP worker
//! per RX queue, the failover link `fo0`/`fo1` left to the kernel (TCP). The serving policy of
//! each failover state then reaches the workers' engines through the policy cell
//! (`docs/failover.md` D22), and the lab checks it did: the secondary's drops on the shared
//! link are counted by its XDP worker there (frames received, nothing sent) and by the
//! engines the workers run (`tandem status --json`, `"datapath":"xdp"`).
//!
//! The run: both servers start (secondary first) and their failover states are printed as
//! they move (`tandem status --json` every 0.5 s) until both are NORMAL; the primary's
//! clients run and are judged against the primary's lease table (in NORMAL the secondary is
//! renew responsive and could not have served them anyway); the primary is SIGKILLed, the
//! secondary goes COMMUNICATIONS-INTERRUPTED, `tandem partner-down` takes it to PARTNER-DOWN,
//! and the secondary's own client is served by it; the primary restarts on its state
//! directory and both are watched back to NORMAL.
//!
//! Binding sync (RFC 8156 §7) on either datapath: every active lease the primary grants must
//! appear in the secondary's table (BNDUPD, within 5 s); the shared link's client, leased by
//! the primary, Rebinds at the secondary in PARTNER-DOWN and keeps its address (lease
//! stability); after the restart both tables must hold the same active leases (the
//! secondary's PARTNER-DOWN grants reached the primary) and the same FREE-BACKUP prefixes
//! (§4.2.2); then a partition of the failover link (`fo0` down) during which each serves a new
//! client alone, and after it both are NORMAL again with the same tables. On XDP the changes
//! travel from the workers' engines through their rings to the failover plane, and the
//! partner's updates are stored by the worker that owns the client's shard
//! (`docs/failover.md` D27); both servers then run the same number of shards (D26), the
//! primary's worker count.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::{
    CAPACITY, CLIENT_IF, ClientReport, LabClient, LabDatapath, LabSubnet, config, direct_link,
    domains_of, judge, lease_table,
};
use crate::burst::{self, ServerProcess};
use crate::clients::{DhclientMode, LeaseRow, ScratchDir, leases};
use crate::netns::NetNs;
use crate::process::run_bounded;

/// One active lease of a table: kind, address, prefix.
type HeldLease = (String, Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>);

/// What [`main_job`] does.
#[derive(Clone, Debug)]
pub struct FailoverOptions {
    /// How long the clients of one phase together may take to configure.
    pub client_timeout: Duration,
    /// How long the restarted primary and the secondary may take to be NORMAL again.
    pub recover_timeout: Duration,
    /// The datapath both servers serve their client links on (the failover link is TCP
    /// either way).
    pub datapath: LabDatapath,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            client_timeout: Duration::from_secs(30),
            recover_timeout: Duration::from_secs(120),
            datapath: LabDatapath::Socket,
        }
    }
}

/// The primary's end of the failover link ([`failover_link`]).
pub const PRIMARY_ADDR: Ipv6Addr = Ipv6Addr::new(0xfd0f, 0, 0, 0, 0, 0, 0, 1);
/// The secondary's end of the failover link.
pub const SECONDARY_ADDR: Ipv6Addr = Ipv6Addr::new(0xfd0f, 0, 0, 0, 0, 0, 0, 2);
/// MCLT of the pair (RFC 8156 §5.1); RECOVER-WAIT / POTENTIAL-CONFLICT take about this long.
const MCLT: u32 = 30;
/// How often the states are polled.
const POLL: Duration = Duration::from_millis(500);
/// Timeout of `tandem status` / `tandem partner-down`.
const CTL_TIMEOUT: Duration = Duration::from_secs(5);

/// One server of the pair.
struct Side {
    name: &'static str,
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
    /// Its client links (`lanN`), where it serves DHCPv6.
    client_ifs: Vec<String>,
    /// Its end of the failover link.
    failover_if: &'static str,
}

impl Side {
    fn start(&self, bin: &Path, ns: &NetNs) -> anyhow::Result<ServerProcess> {
        ServerProcess::start(bin, ns, &self.config, &self.state, CAPACITY, &self.log)
            .with_context(|| format!("cannot start the {}", self.name))
    }

    /// The relationship's state from `tandem status --json`; `None` if the server does not
    /// answer (not running).
    fn state(&self, bin: &Path) -> Option<String> {
        failover_field(&self.status(bin)?, "state")
    }

    /// `tandem status --json`; `None` if the server does not answer.
    fn status(&self, bin: &Path) -> Option<String> {
        status_json(bin, &self.state)
    }

    /// Counter `name` (e.g. `drop_renew_responsive_only`) from `tandem status --json`.
    fn counter(&self, bin: &Path, name: &str) -> Option<u64> {
        number_field(&self.status(bin)?, name)
    }

    /// Prints the `READY` line of `proc_` and, on XDP, where the kernel has the XDP program:
    /// on every client link, not on the failover link (TCP 647 stays with the kernel's stack).
    fn check_started(
        &self,
        proc_: &ServerProcess,
        ns: &NetNs,
        datapath: LabDatapath,
        problems: &mut Vec<String>,
    ) {
        let ready = proc_.ready().unwrap_or("(no READY line)");
        println!("  {}: {ready}", self.name);
        let served = ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("mode="));
        if served != Some(datapath.as_str()) {
            problems.push(format!(
                "the {} serves datapath {served:?}, not {}",
                self.name,
                datapath.as_str()
            ));
        }
        if datapath != LabDatapath::Xdp {
            return;
        }
        let ifs = self.client_ifs.iter().map(|i| (i.as_str(), true));
        for (ifname, wanted) in ifs.chain([(self.failover_if, false)]) {
            match kernel_xdp(ns, ifname) {
                Ok(Some(x)) if wanted => println!("    {ifname}: {x}"),
                Ok(None) if !wanted => println!("    {ifname}: no XDP program (failover link)"),
                Ok(Some(x)) => problems.push(format!(
                    "the {}'s failover link {ifname} has an XDP program: {x}",
                    self.name
                )),
                Ok(None) => problems.push(format!(
                    "no XDP program attached to the {}'s client link {ifname}",
                    self.name
                )),
                Err(e) => problems.push(format!("ip -details link show dev {ifname}: {e}")),
            }
        }
    }

    /// The XDP view of `iface` and engine counter `counter` (an empty view if the server does
    /// not answer).
    fn xdp_view(&self, bin: &Path, iface: &str, counter: &str) -> XdpView {
        self.status(bin)
            .map(|s| XdpView::of(&s, iface, counter))
            .unwrap_or_default()
    }

    /// Checks that the frames of `iface` went through the AF_XDP workers since `before`
    /// ([`XdpView::problems`]), waiting up to 2 s for the workers' next published engine
    /// counters when `counted`; prints what it saw.
    #[expect(
        clippy::too_many_arguments,
        reason = "one check, each argument one of its terms"
    )]
    fn check_xdp_link(
        &self,
        bin: &Path,
        before: &XdpView,
        iface: &str,
        counter: &str,
        answered: bool,
        counted: bool,
        problems: &mut Vec<String>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut after = self.xdp_view(bin, iface, counter);
        while counted && after.engine <= before.engine && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
            after = self.xdp_view(bin, iface, counter);
        }
        println!(
            "  {} (tandem status --json): {}",
            self.name,
            before.describe(&after, iface, counter)
        );
        problems.extend(before.problems(
            &after,
            self.name,
            iface,
            answered,
            counted.then_some(counter),
        ));
    }

    fn log_len(&self) -> usize {
        std::fs::read_to_string(&self.log).map_or(0, |l| l.len())
    }

    /// The relationship's transitions the server logged after byte `from` of its log
    /// (`failover lab: A -> B`), every one of them, including those too quick for the poll.
    fn logged_transitions(&self, from: usize) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.get(from..)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("failover lab: ").map(|(_, t)| t))
            .filter(|t| {
                t.split_once(" -> ").is_some_and(|(a, b)| {
                    let state = |x: &str| {
                        !x.is_empty() && x.chars().all(|c| c.is_ascii_uppercase() || c == '-')
                    };
                    state(a) && state(b)
                })
            })
            .map(str::to_owned)
            .collect()
    }

    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect()
    }
}

/// `tandem status --json` of the server on `state_dir`; `None` if it does not answer within
/// 5 s (not running).
pub fn status_json(bin: &Path, state_dir: &Path) -> Option<String> {
    let out = run_bounded(
        Command::new(bin)
            .args(["status", "--json", "--state-dir"])
            .arg(state_dir),
        CTL_TIMEOUT,
    )
    .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Waits (at most `within`, polling every 100 ms) until the relationship's state of the server
/// on `state_dir` is `state`; returns its `tandem status --json` then. The error names the last
/// state seen and holds the last status.
pub fn wait_state(
    bin: &Path,
    state_dir: &Path,
    state: &str,
    within: Duration,
) -> Result<String, String> {
    let until = Instant::now() + within;
    let mut last = None;
    loop {
        if let Some(s) = status_json(bin, state_dir) {
            if failover_field(&s, "state").as_deref() == Some(state) {
                return Ok(s);
            }
            last = Some(s);
        }
        if Instant::now() >= until {
            let seen = last.as_deref().and_then(|s| failover_field(s, "state"));
            return Err(format!(
                "{} not in {state} within {within:?} (last {seen:?}); status: {}",
                state_dir.display(),
                last.unwrap_or_default()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `log` holds every one of `steps` (e.g. `"RECOVER -> RECOVER-WAIT"`), in this order;
/// the error names the first step missing.
pub fn steps_in_order(log: &str, steps: &[&str]) -> Result<(), String> {
    let mut at = 0;
    for step in steps {
        let found = log[at..]
            .find(step)
            .ok_or_else(|| format!("no {step:?} after byte {at} of the log"))?;
        at += found + step.len();
    }
    Ok(())
}

/// The value of `"key":` in the first object of the `"failover":[…]` array of
/// `tandem status --json` (a string without its quotes, or the raw value).
pub fn failover_field(status: &str, key: &str) -> Option<String> {
    let fo = &status[status.find("\"failover\":[")?..];
    let pat = format!("\"{key}\":");
    let at = fo.find(&pat)? + pat.len();
    let rest = &fo[at..];
    if let Some(s) = rest.strip_prefix('"') {
        let end = s.find('"')?;
        Some(s[..end].to_owned())
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

/// The number after the first `"key":` in `json` (a counter or a field of `tandem status
/// --json`).
fn number_field(json: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let rest = &json[json.find(&pat)? + pat.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string after the first `"key":` in `json`, without its quotes (`None` for `null` or
/// a missing key).
fn string_field(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":\"");
    let rest = &json[json.find(&pat)? + pat.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `{…}` object after `"key":` in `json` (the counter maps of `tandem status --json`, which
/// hold no nested object).
fn object_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":{{");
    let start = json.find(&pat)? + pat.len() - 1;
    let end = start + json[start..].find('}')?;
    Some(&json[start..=end])
}

/// One interface's AF_XDP workers (`"workers"` of `tandem status --json`), added up over its
/// queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LinkWorkers {
    /// Workers serving the interface (one per RX queue).
    workers: u64,
    /// Frames taken off their RX rings (the XDP program redirects only DHCPv6 to them).
    rx: u64,
    /// Frames the kernel reported transmitted.
    tx: u64,
    /// Frames not answered.
    dropped: u64,
    /// Frames answered in place.
    replies: u64,
}

impl LinkWorkers {
    /// The workers of `iface` in `status`.
    fn of(status: &str, iface: &str) -> Self {
        let mut sum = Self::default();
        let Some(at) = status.find("\"workers\":[") else {
            return sum;
        };
        let list = &status[at + "\"workers\":[".len()..];
        let list = &list[..list.find(']').unwrap_or(list.len())];
        for w in list.split('}') {
            if string_field(w, "iface").as_deref() != Some(iface) {
                continue;
            }
            let n = |k: &str| number_field(w, k).unwrap_or(0);
            sum.workers += 1;
            sum.rx += n("rx");
            sum.tx += n("tx");
            sum.dropped += n("dropped");
            sum.replies += n("replies");
        }
        sum
    }
}

/// What the XDP checks read from one `tandem status --json` of a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct XdpView {
    /// `"datapath"`: `xdp` when the AF_XDP workers serve.
    datapath: Option<String>,
    /// `"attach_mode"` of the XDP program.
    attach_mode: Option<String>,
    /// The XDP program's `xdp_redirected`, summed over the interfaces (frames steered to the
    /// AF_XDP sockets).
    redirected: u64,
    /// One engine counter; in XDP mode the engines run on the workers, and `status` adds up
    /// what each worker last published (every 200 ms), so this is the workers' count.
    engine: u64,
    /// The workers of one interface.
    link: LinkWorkers,
}

impl XdpView {
    /// The view of `status`: engine counter `counter`, the workers of `iface`.
    fn of(status: &str, iface: &str, counter: &str) -> Self {
        Self {
            datapath: string_field(status, "datapath"),
            attach_mode: string_field(status, "attach_mode"),
            redirected: object_field(status, "xdp")
                .and_then(|x| number_field(x, "xdp_redirected"))
                .unwrap_or(0),
            engine: object_field(status, "engine")
                .and_then(|e| number_field(e, counter))
                .unwrap_or(0),
            link: LinkWorkers::of(status, iface),
        }
    }

    /// Problems with `after` (this is the view before) for a link whose frames must have
    /// reached the AF_XDP workers of `iface`: the datapath, the XDP program's redirects, the
    /// workers' RX; `answered` says whether the workers must have sent something there
    /// (`true`) or nothing at all (`false`), and `counted` whether the engine counter must
    /// have grown.
    fn problems(
        &self,
        after: &Self,
        server: &str,
        iface: &str,
        answered: bool,
        counted: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if after.datapath.as_deref() != Some("xdp") {
            out.push(format!(
                "the {server}'s status says datapath {:?}, not xdp",
                after.datapath
            ));
        }
        if after.link.workers == 0 {
            out.push(format!("the {server} has no AF_XDP worker on {iface}"));
            return out;
        }
        if after.redirected <= self.redirected {
            out.push(format!(
                "the {server}'s XDP program redirected nothing ({} -> {})",
                self.redirected, after.redirected
            ));
        }
        if after.link.rx <= self.link.rx {
            out.push(format!(
                "the {server}'s AF_XDP worker on {iface} received nothing (rx {} -> {})",
                self.link.rx, after.link.rx
            ));
        }
        match (answered, after.link.tx > self.link.tx) {
            (true, false) => out.push(format!(
                "the {server}'s AF_XDP worker on {iface} sent no reply (tx {} -> {})",
                self.link.tx, after.link.tx
            )),
            (false, true) => out.push(format!(
                "the {server}'s AF_XDP worker on {iface} sent {} frame(s), expected none",
                after.link.tx - self.link.tx
            )),
            _ => {}
        }
        if let Some(name) = counted
            && after.engine <= self.engine
        {
            out.push(format!(
                "the {server}'s XDP workers did not count {name} ({} -> {})",
                self.engine, after.engine
            ));
        }
        out
    }

    /// One line: the worker numbers of `iface` from `self` to `after`.
    fn describe(&self, after: &Self, iface: &str, counter: &str) -> String {
        format!(
            "datapath {}, {} AF_XDP worker(s) on {iface}: rx {} -> {}, tx {} -> {}, dropped {} \
             -> {}, replies {} -> {}; xdp_redirected {} -> {}; {counter} (the workers' engines) \
             {} -> {}",
            after.datapath.as_deref().unwrap_or("?"),
            after.link.workers,
            self.link.rx,
            after.link.rx,
            self.link.tx,
            after.link.tx,
            self.link.dropped,
            after.link.dropped,
            self.link.replies,
            after.link.replies,
            self.redirected,
            after.redirected,
            self.engine,
            after.engine
        )
    }
}

/// The XDP program attached to `ifname` in `ns`, as the kernel reports it (`ip -details link
/// show`): the attach mode (`xdp` native, `xdpgeneric`, `xdpoffload`) and the program
/// (`prog/xdp id N name …`); `None` if nothing is attached.
fn kernel_xdp(ns: &NetNs, ifname: &str) -> anyhow::Result<Option<String>> {
    let out = ns.ip(&["-details", "link", "show", "dev", ifname])?;
    Ok(parse_kernel_xdp(&out))
}

/// [`kernel_xdp`]'s reading of `ip -details link show dev X`.
fn parse_kernel_xdp(out: &str) -> Option<String> {
    let first = out.lines().next().unwrap_or_default();
    let mode = first
        .split_whitespace()
        .find(|w| matches!(*w, "xdp" | "xdpgeneric" | "xdpoffload" | "xdpmulti"))?;
    let prog = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("prog/xdp "))
        .map(|l| {
            l.split_whitespace()
                .take_while(|w| *w != "tag")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "prog/xdp ?".to_owned());
    Some(format!("{mode} {prog}"))
}

/// Polls both sides every [`POLL`], printing a line whenever a side's state changes, until
/// `done(primary, secondary)` or `within` has passed. Returns whether `done` was reached;
/// every transition seen is appended to `path`.
struct Watch<'a> {
    bin: &'a Path,
    started: Instant,
    last: [Option<String>; 2],
    seen: [bool; 2],
    path: Vec<String>,
}

impl<'a> Watch<'a> {
    fn new(bin: &'a Path) -> Self {
        Self {
            bin,
            started: Instant::now(),
            last: [None, None],
            seen: [false, false],
            path: vec![],
        }
    }

    fn until(
        &mut self,
        sides: [&Side; 2],
        within: Duration,
        done: impl Fn(&str, &str) -> bool,
    ) -> bool {
        let until = Instant::now() + within;
        loop {
            let now: [Option<String>; 2] = [sides[0].state(self.bin), sides[1].state(self.bin)];
            for (i, side) in sides.iter().enumerate() {
                if now[i] == self.last[i] && self.seen[i] {
                    continue;
                }
                let show =
                    |s: &Option<String>| s.clone().unwrap_or_else(|| "(not running)".to_owned());
                let line = if self.seen[i] {
                    format!(
                        "{}: {} -> {}",
                        side.name,
                        show(&self.last[i]),
                        show(&now[i])
                    )
                } else {
                    format!("{}: {}", side.name, show(&now[i]))
                };
                println!("  +{:>5.1}s {line}", self.started.elapsed().as_secs_f64());
                self.path.push(line);
                self.last[i] = now[i].clone();
                self.seen[i] = true;
            }
            let p = self.last[0].as_deref().unwrap_or("");
            let s = self.last[1].as_deref().unwrap_or("");
            if done(p, s) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            thread::sleep(POLL);
        }
    }
}

/// Prints every transition each side logged after its log offset in `from`.
fn print_paths(sides: [&Side; 2], from: [usize; 2], since: &str) {
    println!("  path taken (every transition each server logged {since}):");
    for (s, from) in sides.iter().zip(from) {
        let path = s.logged_transitions(from);
        println!(
            "    {:<9} {}",
            s.name,
            if path.is_empty() {
                "-".to_owned()
            } else {
                path.join(", ")
            }
        );
    }
}

/// A CA with leaf certificates (DNS name = file name) in `dir`.
pub fn make_ca(dir: &Path, ca: &str, leaves: &[&str]) -> anyhow::Result<()> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, ca);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    std::fs::write(dir.join(format!("{ca}.pem")), issuer.pem())?;
    for leaf in leaves {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![(*leaf).to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, *leaf);
        let cert = params.signed_by(&key, &issuer)?;
        std::fs::write(dir.join(format!("{leaf}.pem")), cert.pem())?;
        std::fs::write(dir.join(format!("{leaf}.key")), key.serialize_pem())?;
    }
    Ok(())
}

/// `conf` with `shards = N` in its `[datapath]` table: the partner's leases land in the shard
/// of their client and a lease in another shard's pool slot is refused (`docs/failover.md`
/// D26), so both servers must spread clients over the same number of shards. On XDP the
/// default is the worker count, which differs (the primary serves more links); the socket
/// datapath serves what the state directory has.
fn same_shards(conf: String, shards: usize) -> String {
    conf.replacen(
        "[datapath]\n",
        &format!("[datapath]\nshards = {shards}\n"),
        1,
    )
}

/// [`same_shards`] on the XDP datapath; the socket datapath's fresh state directories have
/// one shard on both sides already.
fn same_shards_on(datapath: LabDatapath, conf: String, shards: usize) -> String {
    match datapath {
        LabDatapath::Xdp => same_shards(conf, shards),
        LabDatapath::Socket => conf,
    }
}

/// The lab's `[[failover]]` table (relationship `lab`) of `role`: MCLT 30 s, keepalive 4 s,
/// connect-retry 1 s, startup-time 3 s, then the lines of `extra` (more keys of the table, each
/// ending in a newline), mutual TLS with the certificates [`make_ca`] wrote into `dir` (CA
/// `ca`, leaves `primary.lab` and `secondary.lab`).
pub fn failover_toml(dir: &Path, role: &str, me: Ipv6Addr, peer: Ipv6Addr, extra: &str) -> String {
    let other = if role == "primary" {
        "secondary"
    } else {
        "primary"
    };
    format!(
        "[[failover]]\nname = \"lab\"\nrole = \"{role}\"\npeer = \"{peer}\"\nlocal = \"{me}\"\n\
         mclt = {MCLT}\nkeepalive = 4\nconnect-retry = 1\nstartup-time = 3\n{extra}\n\
         [failover.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/{role}.lab.pem\"\n\
         key = \"{d}/{role}.lab.key\"\npeer-names = [\"{other}.lab\"]\n",
        d = dir.display()
    )
}

/// A veth `fo0` (in `p`, [`PRIMARY_ADDR`]) <-> `fo1` (in `s`, [`SECONDARY_ADDR`]), both up
/// with their /64 (no DAD): the failover link of the lab and of `loadgen lab --failover`.
///
/// # Errors
/// If an `ip` command fails.
pub fn failover_link(p: &NetNs, s: &NetNs) -> anyhow::Result<()> {
    p.ip(&[
        "link",
        "add",
        "fo0",
        "type",
        "veth",
        "peer",
        "name",
        "fo1",
        "netns",
        s.name(),
    ])?;
    for (ns, ifname, addr) in [(p, "fo0", PRIMARY_ADDR), (s, "fo1", SECONDARY_ADDR)] {
        ns.ip(&["link", "set", "dev", ifname, "up"])?;
        ns.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            ifname,
            "nodad",
        ])?;
    }
    Ok(())
}

/// Namespace `tandem-lab-c<i>` whose `client0` is a bridge over two veths, one to `lan<i>` in
/// the primary's namespace and one to `lan<i>` in the secondary's: a link both servers are on.
///
/// # Errors
/// If a namespace cannot be made, an `ip` command fails, or an end has no link-local address
/// within 5 s.
pub fn shared_link(p: &NetNs, s: &NetNs, i: u16) -> anyhow::Result<super::DirectLink> {
    let ns = NetNs::new(&format!("tandem-lab-c{i}"))?;
    ns.sysctl("net/ipv6/conf/default/accept_dad", "0")?;
    ns.sysctl("net/ipv6/conf/all/accept_dad", "0")?;
    let server_if = format!("lan{i}");
    let [hi, lo] = i.to_be_bytes();
    ns.ip(&[
        "link",
        "add",
        CLIENT_IF,
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ns.ip(&[
        "link",
        "set",
        "dev",
        CLIENT_IF,
        "address",
        &format!("02:74:6c:{hi:02x}:{lo:02x}:02"),
    ])?;
    for (server, port, n) in [(p, "p0", 1u8), (s, "s0", 3)] {
        server.ip(&[
            "link",
            "add",
            &server_if,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            ns.name(),
        ])?;
        server.sysctl(&format!("net/ipv6/conf/{server_if}/accept_dad"), "0")?;
        let mac = format!("02:74:6c:{hi:02x}:{lo:02x}:{n:02x}");
        server.ip(&["link", "set", "dev", &server_if, "address", &mac])?;
        server.ip(&["link", "set", "dev", &server_if, "up"])?;
        ns.ip(&["link", "set", "dev", port, "master", CLIENT_IF])?;
        ns.ip(&["link", "set", "dev", port, "up"])?;
    }
    ns.sysctl(&format!("net/ipv6/conf/{CLIENT_IF}/accept_dad"), "0")?;
    ns.ip(&["link", "set", "dev", CLIENT_IF, "up"])?;
    let deadline = Instant::now() + super::LINK_TIMEOUT;
    for (side, ifname) in [
        (p, server_if.as_str()),
        (s, server_if.as_str()),
        (&ns, CLIENT_IF),
    ] {
        while !side
            .ip(&["-6", "addr", "show", "dev", ifname, "scope", "link"])?
            .contains("fe80")
        {
            if Instant::now() >= deadline {
                bail!("no link-local address on {ifname} in {}", side.name());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(super::DirectLink { ns, server_if })
}

/// The clients of one phase and what became of them.
struct Phase {
    reports: Vec<ClientReport>,
}

/// Starts `clients` (each on its link), waits for them, judges them against `server`'s
/// lease table and says which server holds their leases; stops them. Prints the reports.
fn run_clients(
    bin: &Path,
    clients: &[(LabClient, &super::DirectLink, &LabSubnet)],
    sides: [&Side; 2],
    server: usize,
    synced: bool,
    timeout: Duration,
    problems: &mut Vec<String>,
) -> anyhow::Result<Phase> {
    let start = Instant::now();
    let mut running = Vec::new();
    for &(c, link, subnet) in clients {
        let rc = c
            .start(&link.ns, CLIENT_IF)
            .with_context(|| format!("cannot start {}", c.describe()))?;
        running.push((c, rc, link, subnet));
    }
    let deadline = start + timeout;
    let mut reports = Vec::new();
    for (c, rc, link, subnet) in &mut running {
        let c = *c;
        let left = deadline.saturating_duration_since(Instant::now());
        let (got, took) = match rc.wait_for(left, |r| c.done(r)) {
            Ok(got) => (got, Some(start.elapsed())),
            Err(_) => (rc.result(), None),
        };
        reports.push(ClientReport {
            client: c,
            command: rc.command().to_owned(),
            place: format!(
                "netns {}, {CLIENT_IF} <-> {}",
                link.ns.name(),
                link.server_if
            ),
            subnet: (*subnet).clone(),
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
    let read_tables = |problems: &mut Vec<String>| -> Vec<Vec<LeaseRow>> {
        sides
            .iter()
            .map(|s| {
                leases(bin, &s.state).unwrap_or_else(|e| {
                    problems.push(format!("tandem leases --json ({}): {e}", s.name));
                    vec![]
                })
            })
            .collect()
    };
    let other = 1 - server;
    let held = |t: &[LeaseRow], duid: &[u8]| -> Vec<HeldLease> {
        let mut v: Vec<_> = t
            .iter()
            .filter(|l| l.duid == duid && l.state == "active")
            .map(|l| (l.kind.clone(), l.address, l.prefix))
            .collect();
        v.sort();
        v
    };
    // With binding sync (RFC 8156 §7: both alive, the socket datapath) the partner must hold
    // the same active leases as the server that granted them, a BNDUPD later; without it
    // (the partner is down, or the XDP datapath, whose workers do not sync yet) none.
    let mut tables = read_tables(problems);
    let deadline = Instant::now() + Duration::from_secs(5);
    while synced
        && Instant::now() < deadline
        && reports.iter().any(|r| {
            r.duid.as_ref().is_some_and(|d| {
                r.client.stateful() && held(&tables[server], d) != held(&tables[other], d)
            })
        })
    {
        thread::sleep(Duration::from_millis(200));
        tables = read_tables(problems);
    }
    for r in &mut reports {
        judge(r, &tables[server]);
        if let Some(duid) = &r.duid {
            let mine = held(&tables[server], duid);
            let theirs = held(&tables[other], duid);
            r.notes.push(format!(
                "answered by: the {} (active leases under its DUID: {} {}, {} {})",
                sides[server].name,
                sides[server].name,
                mine.len(),
                sides[other].name,
                theirs.len(),
            ));
            if !r.client.stateful() {
                continue;
            }
            if synced && mine != theirs {
                r.problems.push(format!(
                    "the {}'s active leases for this client {mine:?} did not reach the {} \
                     by BNDUPD within 5 s (it holds {theirs:?})",
                    sides[server].name, sides[other].name
                ));
            } else if !synced && !theirs.is_empty() {
                r.problems.push(format!(
                    "expected to be served by the {} only; the {} holds {theirs:?}",
                    sides[server].name, sides[other].name
                ));
            }
        }
    }
    for (_, rc, _, _) in running {
        if let Err(e) = rc.stop() {
            problems.push(format!("client stop: {e}"));
        }
    }
    let phase = Phase { reports };
    print!("{}", phase.render());
    Ok(phase)
}

/// Both servers hold the same active leases (within 10 s: the last BNDUPDs may be in flight);
/// otherwise a problem naming `when`.
fn tables_agree(
    bin: &Path,
    primary: &Side,
    secondary: &Side,
    when: &str,
    problems: &mut Vec<String>,
) {
    match wait_tables_agree(
        bin,
        [&primary.state, &secondary.state],
        Duration::from_secs(10),
    ) {
        Ok(n) => println!("  {when}: both hold the same {n} active lease(s)"),
        Err(e) => problems.push(format!("the lease tables differ {when}: {e}")),
    }
}

/// The active leases of the server on `state_dir` (`tandem leases --json`), one sorted line
/// each: kind, address, prefix, the client's DUID (hex) and IAID.
///
/// # Errors
/// If `tandem leases` fails or prints a line it cannot parse.
pub fn active_leases(bin: &Path, state_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut v: Vec<String> = leases(bin, state_dir)?
        .into_iter()
        .filter(|l| l.state == "active")
        .map(|l| {
            format!(
                "{} {:?} {:?} {} iaid {}",
                l.kind,
                l.address,
                l.prefix,
                crate::client::hex(&l.duid),
                l.iaid
            )
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Waits (at most `within`: the last BNDUPDs may be in flight) until the servers on the two
/// state directories hold the same active leases, each for the same client and IAID
/// ([`active_leases`]); returns how many. The error counts and shows (up to 10 of each) the
/// leases only one of them holds.
///
/// # Errors
/// The tables still differ at the deadline, or one cannot be read.
pub fn wait_tables_agree(
    bin: &Path,
    [a, b]: [&Path; 2],
    within: Duration,
) -> Result<usize, String> {
    let read = |dir: &Path| {
        active_leases(bin, dir).map_err(|e| format!("tandem leases ({}): {e}", dir.display()))
    };
    let deadline = Instant::now() + within;
    loop {
        let (p, q) = (read(a)?, read(b)?);
        if p == q {
            return Ok(p.len());
        }
        if Instant::now() >= deadline {
            let only = |x: &[String], y: &[String]| -> Vec<String> {
                x.iter()
                    .filter(|l| y.binary_search(l).is_err())
                    .cloned()
                    .collect()
            };
            let (pa, qb) = (only(&p, &q), only(&q, &p));
            return Err(format!(
                "{} active leases only in {} (first: {:?}), {} only in {} (first: {:?})",
                pa.len(),
                a.display(),
                &pa[..pa.len().min(10)],
                qb.len(),
                b.display(),
                &qb[..qb.len().min(10)]
            ));
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// RFC 7031 req. 4 (lease stability), RFC 8156 §8.4.1 ("allow renewal of all outstanding
/// leases"): the shared link's client (its DUID and address from phase 2, granted by the
/// primary, now dead) sends a Rebind; the secondary in PARTNER-DOWN must answer with the same
/// address and, with no MCLT cap there, extend it to the subnet's full valid lifetime.
fn stability_check(
    bin: &Path,
    secondary: &Side,
    shlink: &super::DirectLink,
    phase2: &Phase,
    problems: &mut Vec<String>,
) {
    let shared = phase2
        .reports
        .iter()
        .find(|r| r.place.contains(shlink.server_if.as_str()))
        .and_then(|r| r.duid.clone());
    let Some(duid) = shared else {
        problems.push("lease stability: the shared link's client has no DUID".into());
        return;
    };
    let row = leases(bin, &secondary.state)
        .unwrap_or_default()
        .into_iter()
        .find(|l| l.duid == duid && l.kind == "na" && l.state == "active");
    let Some((addr, iaid)) = row.and_then(|r| Some((r.address?, r.iaid))) else {
        problems.push(
            "lease stability: the secondary holds no active address for the shared link's \
             client (the primary's BNDUPD never arrived)"
                .into(),
        );
        return;
    };
    let result = (|| -> anyhow::Result<()> {
        let sock = crate::client::DhcpSocket::bind(&shlink.ns, crate::client::CLIENT_PORT)?;
        let dest = crate::client::all_servers(shlink.ns.ifindex(CLIENT_IF)?);
        let xid = crate::client::random_xid();
        let msg = crate::client::rebind(&duid, xid, iaid, addr)?;
        let t = sock.transact(&msg, xid, dest, Duration::from_secs(1), 5)?;
        let Some(reply) = t.reply else {
            bail!("no Reply to the Rebind of {addr}");
        };
        let r = reply.innermost();
        if r.msg_type != tandem_wire::dhcp::MessageType::REPLY
            || r.ia_na
                .first()
                .is_none_or(|ia| ia.leases != 1 || ia.status.is_some())
        {
            bail!("the Rebind of {addr} got {reply}");
        }
        Ok(())
    })();
    if let Err(e) = result {
        problems.push(format!("lease stability: {e:#}"));
        return;
    }
    let after = leases(bin, &secondary.state)
        .unwrap_or_default()
        .into_iter()
        .find(|l| l.duid == duid && l.address == Some(addr) && l.state == "active");
    match after {
        Some(row) if row.raw.contains("\"valid_lifetime\":3600") => println!(
            "  Rebind of {addr} (IAID {iaid}) answered by the secondary: same address, valid \
             lifetime now 3600 s (no MCLT cap in PARTNER-DOWN)"
        ),
        other => problems.push(format!(
            "lease stability: after the Rebind the secondary's binding of {addr} is {:?}, \
             expected active with valid 3600",
            other.map(|r| r.raw)
        )),
    }
}

impl Phase {
    fn render(&self) -> String {
        let mut f = String::new();
        for c in &self.reports {
            // Writing into a String cannot fail.
            let _ = c.render(&mut f);
        }
        f
    }

    fn failures(&self) -> Vec<String> {
        self.reports
            .iter()
            .flat_map(|c| {
                c.problems
                    .iter()
                    .map(move |p| format!("{}: {p}", c.client.describe()))
            })
            .collect()
    }
}

/// Runs the failover lab with `tandem_bin`, printing as it goes; fails with the list of
/// problems if there are any.
#[expect(
    clippy::too_many_lines,
    reason = "the lab is one story told in order, phase by phase"
)]
pub fn main_job(tandem_bin: &Path, opts: &FailoverOptions) -> anyhow::Result<()> {
    crate::privileges()
        .map_err(|why| anyhow::anyhow!("the lab needs root with CAP_NET_ADMIN: {why}"))?;
    let started = Instant::now();
    let bin = tandem_bin;
    let dir = ScratchDir::new("fo-lab")?;
    let pns = NetNs::new("tandem-fo-p")?;
    let sns = NetNs::new("tandem-fo-s")?;
    for ns in [&pns, &sns] {
        ns.sysctl("net/ipv6/conf/default/accept_dad", "0")?;
        ns.sysctl("net/ipv6/conf/all/accept_dad", "0")?;
        // The partition of phase 8 is `ip link set fo0 down` / `up`: keep the static
        // addresses over it, as an interface managed by networkd or ifupdown gets them back.
        ns.sysctl("net/ipv6/conf/default/keep_addr_on_down", "1")?;
        ns.sysctl("net/ipv6/conf/all/keep_addr_on_down", "1")?;
    }
    failover_link(&pns, &sns).context("failover link")?;
    let primary_clients = [
        LabClient::Dhclient(DhclientMode::Na),
        LabClient::Dhcpcd,
        LabClient::WideDhcp6c,
    ];
    // The secondary's share of prefixes is FREE-BACKUP ones, which only pool balancing
    // (not implemented) would give it: its client asks for an address.
    let secondary_client = LabClient::Dhclient(DhclientMode::Na);
    let subnet = |i: u16, server_if: &str| LabSubnet {
        prefix: Ipv6Addr::new(0xfd00, i, 0, 0, 0, 0, 0, 0),
        pd_pool: Ipv6Addr::new(0xfd20, i, 0, 0, 0, 0, 0, 0),
        interface: Some(server_if.to_owned()),
        rapid_commit: false,
    };
    let mut plinks = Vec::new();
    let mut psubnets = Vec::new();
    for i in 1..=3u16 {
        let link = direct_link(&pns, i).with_context(|| format!("client link {i}"))?;
        psubnets.push(subnet(i, &link.server_if));
        plinks.push(link);
    }
    let slink = direct_link(&sns, 4).context("client link 4")?;
    let ssubnet = subnet(4, &slink.server_if);
    // A link both servers are on: the secondary sees this client's messages too.
    let shared_client = LabClient::Dhclient(DhclientMode::Na);
    let shlink = shared_link(&pns, &sns, 5).context("shared client link 5")?;
    let shsubnet = subnet(5, &shlink.server_if);

    make_ca(dir.path(), "ca", &["primary.lab", "secondary.lab"]).context("certificates")?;
    let mut pifs: Vec<&str> = plinks.iter().map(|l| l.server_if.as_str()).collect();
    pifs.push(shlink.server_if.as_str());
    // RFC 8156 §4: both servers of a relationship have the same prefixes and pools. Each
    // also serves the subnets on its partner's links, as relayed subnets (no interface here):
    // that is where the partner's binding updates land, and what it serves in PARTNER-DOWN
    // through a relay.
    let relayed = |s: &LabSubnet| LabSubnet {
        interface: None,
        ..s.clone()
    };
    let mut pall = psubnets.clone();
    pall.push(shsubnet.clone());
    pall.push(relayed(&ssubnet));
    let mut pconf = same_shards_on(
        opts.datapath,
        config(&pifs, &pall, opts.datapath),
        pifs.len(),
    );
    pconf.push_str(&failover_toml(
        dir.path(),
        "primary",
        PRIMARY_ADDR,
        SECONDARY_ADDR,
        "",
    ));
    let mut sall = vec![ssubnet.clone(), shsubnet.clone()];
    sall.extend(psubnets.iter().map(relayed));
    let mut sconf = same_shards_on(
        opts.datapath,
        config(
            &[slink.server_if.as_str(), shlink.server_if.as_str()],
            &sall,
            opts.datapath,
        ),
        pifs.len(),
    );
    sconf.push_str(&failover_toml(
        dir.path(),
        "secondary",
        SECONDARY_ADDR,
        PRIMARY_ADDR,
        "",
    ));
    let side = |name: &'static str,
                text: &str,
                ifs: &[&str],
                failover_if: &'static str|
     -> anyhow::Result<Side> {
        let log = dir.file(&format!("{name}.log"));
        burst::fresh_log(&log)?;
        Ok(Side {
            name,
            config: dir.write(&format!("{name}.toml"), text, 0o644)?,
            state: dir.file(&format!("{name}-state")),
            log,
            client_ifs: ifs.iter().map(|&i| i.to_owned()).collect(),
            failover_if,
        })
    };
    let primary = side("primary", &pconf, &pifs, "fo0")?;
    let secondary = side(
        "secondary",
        &sconf,
        &[slink.server_if.as_str(), shlink.server_if.as_str()],
        "fo1",
    )?;
    let sides = [&primary, &secondary];

    println!("== Tandem lab --failover: an RFC 8156 pair of `tandem run` serving real clients ==");
    println!(
        "topology: netns {} runs the primary on {} (fo0 {PRIMARY_ADDR})",
        pns.name(),
        pifs.join(", ")
    );
    println!(
        "          netns {} runs the secondary on {}, {} (fo1 {SECONDARY_ADDR})",
        sns.name(),
        slink.server_if,
        shlink.server_if
    );
    println!(
        "          failover link: fo0 <- veth -> fo1, TCP 647, mutual TLS (CA and certificates \
         primary.lab / secondary.lab made now with rcgen), MCLT {MCLT} s"
    );
    for (l, c) in plinks.iter().zip(&primary_clients) {
        println!(
            "          primary   {} <- veth -> {CLIENT_IF} in netns {}: {}",
            l.server_if,
            l.ns.name(),
            c.describe()
        );
    }
    println!(
        "          secondary {} <- veth -> {CLIENT_IF} in netns {}: {}",
        slink.server_if,
        slink.ns.name(),
        secondary_client.describe()
    );
    println!(
        "          both      {} <- veth -> bridge {CLIENT_IF} in netns {} <- veth -> {}: {} \
         (shared link)",
        shlink.server_if,
        shlink.ns.name(),
        shlink.server_if,
        shared_client.describe()
    );
    println!(
        "servers:  ip netns exec <ns> {} run --config <lab>/<role>.toml --state-dir \
         <lab>/<role>-state --capacity {CAPACITY}  ({} datapath)",
        bin.display(),
        opts.datapath.as_str()
    );
    if opts.datapath == LabDatapath::Xdp {
        println!(
            "datapath: [datapath] mode = \"xdp\": the XDP program on every client link lanN of \
             each server, one AF_XDP worker per RX queue; fo0/fo1 (TCP 647) left to the kernel"
        );
    }
    println!(
        "note:     binding sync (RFC 8156 §7, BNDUPD/BNDREPLY): every lease one server grants \
         must show in the other's table"
    );
    if opts.datapath == LabDatapath::Xdp {
        println!(
            "          (XDP: from the workers' change rings to the plane, the partner's updates \
             stored by the worker owning the client's shard; both servers run {} shards)",
            pifs.len()
        );
    }

    let mut problems: Vec<String> = Vec::new();
    let mut watch = Watch::new(bin);
    let normal = |p: &str, s: &str| p == "NORMAL" && s == "NORMAL";

    println!();
    println!("-- 1. start the secondary, then the primary; states until both are NORMAL --");
    let sproc = secondary.start(bin, &sns)?;
    let mut pproc = Some(primary.start(bin, &pns)?);
    secondary.check_started(&sproc, &sns, opts.datapath, &mut problems);
    if let Some(p) = &pproc {
        primary.check_started(p, &pns, opts.datapath, &mut problems);
    }
    if !watch.until(sides, Duration::from_secs(60), normal) {
        problems.push("the pair did not reach NORMAL within 60 s".to_owned());
    }
    print_paths(sides, [0, 0], "since it started");

    println!();
    println!("-- 2. the primary's clients (in NORMAL the secondary is renew responsive) --");
    let mut pc: Vec<(LabClient, &super::DirectLink, &LabSubnet)> = primary_clients
        .iter()
        .zip(&plinks)
        .zip(&psubnets)
        .map(|((c, l), s)| (*c, l, s))
        .collect();
    pc.push((shared_client, &shlink, &shsubnet));
    let ignored = "drop_renew_responsive_only";
    let before = secondary.counter(bin, ignored).unwrap_or(0);
    let shared_if = shlink.server_if.as_str();
    let xdp_before = [
        primary.xdp_view(bin, shared_if, "tx_reply"),
        secondary.xdp_view(bin, shared_if, ignored),
    ];
    // Binding sync runs on both datapaths (on XDP through the workers, D27).
    let synced = true;
    let phase2 = run_clients(
        bin,
        &pc,
        sides,
        0,
        synced,
        opts.client_timeout,
        &mut problems,
    )?;
    problems.extend(phase2.failures());
    if opts.datapath == LabDatapath::Xdp {
        // On the shared link the primary's worker answers the client; the secondary's worker
        // receives every message (the XDP program redirects it) and sends nothing: its engine,
        // under the NORMAL secondary's renew-responsive policy from the cell, drops them.
        println!("  the shared link {shared_if} on XDP:");
        let [p, s] = &xdp_before;
        primary.check_xdp_link(bin, p, shared_if, "tx_reply", true, true, &mut problems);
        secondary.check_xdp_link(bin, s, shared_if, ignored, false, true, &mut problems);
    }
    let after = secondary.counter(bin, ignored);
    println!(
        "  secondary on the shared link: {ignored} {before} -> {} (the client's messages it \
         saw and, renew responsive, did not answer)",
        after.map_or_else(|| "?".to_owned(), |a| a.to_string())
    );
    if after.unwrap_or(0) <= before {
        problems.push(format!(
            "the secondary did not count the shared client's messages as {ignored}"
        ));
    }

    println!();
    println!("-- 3. SIGKILL the primary; the secondary should go COMMUNICATIONS-INTERRUPTED --");
    if let Some(p) = pproc.take() {
        p.kill9().context("SIGKILL of the primary")?;
    }
    if !watch.until(sides, Duration::from_secs(30), |_, s| {
        s == "COMMUNICATIONS-INTERRUPTED"
    }) {
        problems.push("the secondary did not go COMMUNICATIONS-INTERRUPTED within 30 s".into());
    }

    println!();
    println!("-- 4. `tandem partner-down lab` on the secondary --");
    match run_bounded(
        Command::new(bin)
            .args(["partner-down", "lab", "--state-dir"])
            .arg(&secondary.state),
        CTL_TIMEOUT,
    ) {
        Ok(out) => {
            println!("  $ tandem partner-down lab --state-dir <lab>/secondary-state");
            for l in out.stdout.lines().chain(out.stderr.lines()) {
                println!("  {l}");
            }
            if !out.status.success() {
                problems.push(format!("tandem partner-down exited {}", out.status));
            }
        }
        Err(e) => problems.push(format!("tandem partner-down: {e}")),
    }
    if !watch.until(sides, Duration::from_secs(10), |_, s| s == "PARTNER-DOWN") {
        problems.push("the secondary did not go PARTNER-DOWN within 10 s".into());
    }

    println!();
    println!("-- 5. the secondary's client, served by the secondary in PARTNER-DOWN --");
    let own_if = slink.server_if.as_str();
    let xdp_before = secondary.xdp_view(bin, own_if, "tx_reply");
    let phase5 = run_clients(
        bin,
        &[(secondary_client, &slink, &ssubnet)],
        sides,
        1,
        false,
        opts.client_timeout,
        &mut problems,
    )?;
    problems.extend(phase5.failures());
    if opts.datapath == LabDatapath::Xdp {
        secondary.check_xdp_link(
            bin,
            &xdp_before,
            own_if,
            "tx_reply",
            true,
            true,
            &mut problems,
        );
    }

    if synced {
        println!();
        println!(
            "-- 5b. lease stability: the shared link's client Rebinds at the secondary, which \
             knows its lease only from the primary's BNDUPD --"
        );
        stability_check(bin, &secondary, &shlink, &phase2, &mut problems);
    }

    println!();
    println!(
        "-- 6. restart the primary on its state directory; states until both are NORMAL \
         (at most {:.0?}) --",
        opts.recover_timeout
    );
    let log_from = [primary.log_len(), secondary.log_len()];
    let recovered_at = Instant::now();
    pproc = Some(primary.start(bin, &pns)?);
    if let Some(p) = &pproc {
        primary.check_started(p, &pns, opts.datapath, &mut problems);
    }
    let back = watch.until(sides, opts.recover_timeout, normal);
    print_paths(sides, log_from, "since the restart");
    if back {
        println!(
            "  back to NORMAL on both {:.1?} after the restart",
            recovered_at.elapsed()
        );
    } else {
        problems.push(format!(
            "the pair was not back in NORMAL within {:.0?} after the restart",
            opts.recover_timeout
        ));
    }

    println!();
    if synced {
        println!(
            "-- 7. lease tables: the same active leases on both (the secondary's PARTNER-DOWN \
             grants reached the restarted primary, RFC 8156 §8.8) --"
        );
    } else {
        println!("-- 7. lease tables (XDP: no binding sync yet, each holds its own grants) --");
    }
    let mut backups = Vec::new();
    for s in sides {
        println!(
            "  {} (tandem leases, without the FREE-BACKUP prefixes):",
            s.name
        );
        match lease_table(bin, &s.state) {
            Ok(t) => {
                let mut backup = 0usize;
                for l in t.lines() {
                    if l.contains("free_backup") {
                        backup += 1;
                    } else {
                        println!("    {l}");
                    }
                }
                println!(
                    "    and {backup} FREE-BACKUP prefixes: the secondary's share for new \
                     clients when it serves alone (RFC 8156 §4.2.2)"
                );
                backups.push(backup);
            }
            Err(e) => problems.push(format!("tandem leases ({}): {e}", s.name)),
        }
    }
    // Proportional allocation (§4.2.2): the primary handed the secondary its share of every
    // PD pool (FREE-BACKUP, bare IAPREFIX BNDUPDs), and both record the same ones.
    if synced {
        // The last BNDUPDs may still be in flight: look again for up to 10 s.
        let count = |side: &Side| {
            leases(bin, &side.state)
                .unwrap_or_default()
                .iter()
                .filter(|l| l.state == "free_backup")
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while backups.first() != backups.get(1) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(250));
            backups = vec![count(&primary), count(&secondary)];
        }
        match backups.as_slice() {
            [p, s] if *p > 0 && p == s => {
                println!("  both record the same {p} FREE-BACKUP prefixes");
            }
            other => {
                let mut why = String::new();
                for side in [&primary, &secondary] {
                    for c in [
                        "bndupd_sent",
                        "bndupd_received",
                        "partner_leases_rejected",
                        "update_overflow",
                        "update_ring_overflow",
                        "update_unencodable",
                        "worker_timeouts",
                        "prefixes_moved",
                    ] {
                        if let Some(n) = side.counter(bin, c) {
                            why.push_str(&format!(" {}.{c}={n}", side.name));
                        }
                    }
                }
                problems.push(format!(
                    "FREE-BACKUP prefixes (primary, secondary): {other:?}; expected the same \
                     non-zero count on both (RFC 8156 §4.2.2 rebalancing);{why}"
                ));
            }
        }
    }
    if synced {
        tables_agree(bin, &primary, &secondary, "after recovery", &mut problems);
    }

    if synced {
        println!();
        println!(
            "-- 8. partition: fo0 down; both serve their own clients alone; fo0 up; back to \
             NORMAL with the same tables (RFC 8156 §8.9, §8.8) --"
        );
        pns.ip(&["link", "set", "fo0", "down"])
            .context("fo0 down")?;
        if !watch.until(sides, Duration::from_secs(20), |p, s| {
            p == "COMMUNICATIONS-INTERRUPTED" && s == "COMMUNICATIONS-INTERRUPTED"
        }) {
            problems.push(
                "both were not COMMUNICATIONS-INTERRUPTED within 20 s of the partition".into(),
            );
        }
        // New clients (fresh DUIDs) on each side; nothing reaches the partner meanwhile.
        for (client, link, subnet, server) in [
            (primary_clients[0], &plinks[0], &psubnets[0], 0),
            (secondary_client, &slink, &ssubnet, 1),
        ] {
            let phase = run_clients(
                bin,
                &[(client, link, subnet)],
                sides,
                server,
                false,
                opts.client_timeout,
                &mut problems,
            )?;
            problems.extend(phase.failures());
        }
        pns.ip(&["link", "set", "fo0", "up"]).context("fo0 up")?;
        let log_from = [primary.log_len(), secondary.log_len()];
        if watch.until(sides, opts.recover_timeout, normal) {
            print_paths(sides, log_from, "since the link came back");
        } else {
            problems.push(format!(
                "the pair was not back in NORMAL within {:.0?} after the partition",
                opts.recover_timeout
            ));
        }
        tables_agree(
            bin,
            &primary,
            &secondary,
            "after the partition",
            &mut problems,
        );
    }

    println!();
    println!("-- 9. servers stopped with SIGTERM --");
    for (s, proc_) in [(&primary, pproc.take()), (&secondary, Some(sproc))] {
        let Some(p) = proc_ else { continue };
        match p.stop() {
            Ok(lines) => {
                let find = |p: &str| lines.iter().find(|l| l.starts_with(p));
                let Some(c) = find("COUNTERS") else {
                    problems.push(format!("the {} printed no COUNTERS line", s.name));
                    continue;
                };
                if s.name == "primary" {
                    // Started after its clients ran: nothing to count, nothing to redirect.
                    println!("  primary (the restarted process: counts since the restart): {c}");
                } else {
                    // The secondary ran the whole story: on XDP its program must have steered
                    // the shared link's and its own client's messages.
                    println!("  secondary: {c}");
                    let ready = find("READY").map_or("", String::as_str);
                    problems.extend(
                        super::datapath_problems(opts.datapath, ready, c)
                            .into_iter()
                            .map(|p| format!("the secondary: {p}")),
                    );
                }
            }
            Err(e) => problems.push(format!("stopping the {}: {e}", s.name)),
        }
    }
    if !problems.is_empty() {
        for s in sides {
            println!();
            println!("-- {} log (last 40 lines) --", s.name);
            print!("{}", s.log_tail(40));
        }
    }

    println!();
    let elapsed = started.elapsed();
    if problems.is_empty() {
        println!("RESULT: all good ({elapsed:.1?})");
        return Ok(());
    }
    println!("RESULT: {} problem(s) ({elapsed:.1?})", problems.len());
    for p in &problems {
        println!("  - {p}");
    }
    drop((plinks, slink, shlink));
    bail!(
        "lab --failover: {} problem(s): {}",
        problems.len(),
        problems.join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_shards_sets_the_count_in_the_datapath_table_on_xdp_only() {
        let subnets: [LabSubnet; 0] = [];
        let xdp = same_shards_on(
            LabDatapath::Xdp,
            config(&["lan1"], &subnets, LabDatapath::Xdp),
            4,
        );
        assert!(
            xdp.contains("[datapath]\nshards = 4\nmode = \"xdp\""),
            "{xdp}"
        );
        assert_eq!(xdp.matches("shards").count(), 1, "{xdp}");
        let socket = config(&["lan1"], &subnets, LabDatapath::Socket);
        assert_eq!(
            same_shards_on(LabDatapath::Socket, socket.clone(), 4),
            socket
        );
    }

    #[test]
    fn failover_field_reads_string_and_raw_values_of_the_relationship() {
        let status = r#"{"counters":{"state":"x"},"failover":[{"name":"lab","state":"NORMAL","unacked":0}]}"#;
        assert_eq!(failover_field(status, "state").as_deref(), Some("NORMAL"));
        assert_eq!(failover_field(status, "unacked").as_deref(), Some("0"));
        assert_eq!(failover_field(status, "link"), None);
        assert_eq!(failover_field("{}", "state"), None);
    }

    #[test]
    fn steps_in_order_needs_every_step_after_the_one_before() {
        let log = "failover lab: STARTUP -> RECOVER\nfailover lab: RECOVER -> RECOVER-WAIT\n\
                   failover lab: RECOVER-WAIT -> RECOVER-DONE\n";
        let steps = ["STARTUP -> RECOVER", "RECOVER -> RECOVER-WAIT"];
        assert_eq!(steps_in_order(log, &steps), Ok(()));
        let reversed = ["RECOVER -> RECOVER-WAIT", "STARTUP -> RECOVER"];
        assert!(steps_in_order(log, &reversed).is_err());
        let missing = ["STARTUP -> RECOVER", "RECOVER-DONE -> NORMAL"];
        assert_eq!(
            steps_in_order(log, &missing),
            Err(format!(
                "no \"RECOVER-DONE -> NORMAL\" after byte {} of the log",
                log.find("STARTUP -> RECOVER").unwrap_or(0) + "STARTUP -> RECOVER".len()
            ))
        );
    }

    #[test]
    fn logged_transitions_keeps_state_changes_only() {
        let dir = ScratchDir::new("fo-lab-test").unwrap();
        let log = dir
            .write(
                "p.log",
                "INFO failover lab: STARTUP -> POTENTIAL-CONFLICT\n\
                 INFO failover lab: serving policy: unresponsive -> x\n\
                 INFO failover lab: partner in NORMAL since 12:00\n\
                 INFO failover lab: CONFLICT-DONE -> NORMAL\n",
                0o644,
            )
            .unwrap();
        let side = Side {
            name: "primary",
            config: PathBuf::new(),
            state: PathBuf::new(),
            log,
            client_ifs: vec![],
            failover_if: "fo0",
        };
        assert_eq!(
            side.logged_transitions(0),
            ["STARTUP -> POTENTIAL-CONFLICT", "CONFLICT-DONE -> NORMAL"]
        );
        assert_eq!(
            side.logged_transitions(side.log_len()),
            Vec::<String>::new()
        );
    }

    /// `tandem status --json` of an XDP server (the shape of `control::render::status_json`).
    const XDP_STATUS: &str = concat!(
        r#"{"datapath":"xdp","attach_mode":"native","interfaces":["lan4","lan5"],"shards":2,"#,
        r#""bindings":1,"capacity":8192,"workers":[{"iface":"lan4","queue":0,"core":null,"#,
        r#""rx":7,"tx":6,"dropped":1,"replies":5},{"iface":"lan5","queue":0,"core":1,"rx":9,"#,
        r#""tx":0,"dropped":4,"replies":0}],"xdp":{"xdp_passed":40,"xdp_redirected":16},"#,
        r#""engine":{"rx_solicit":9,"drop_renew_responsive_only":4,"tx_reply":5},"socket":{},"#,
        r#""failover":[{"name":"lab","role":"secondary","state":"NORMAL","unacked":0}]}"#
    );

    #[test]
    fn xdp_view_reads_datapath_redirects_engine_counter_and_one_links_workers() {
        let v = XdpView::of(XDP_STATUS, "lan5", "drop_renew_responsive_only");
        assert_eq!(v.datapath.as_deref(), Some("xdp"));
        assert_eq!(v.attach_mode.as_deref(), Some("native"));
        assert_eq!(v.redirected, 16);
        assert_eq!(v.engine, 4);
        assert_eq!(
            v.link,
            LinkWorkers {
                workers: 1,
                rx: 9,
                tx: 0,
                dropped: 4,
                replies: 0
            }
        );
        let lan4 = XdpView::of(XDP_STATUS, "lan4", "tx_reply");
        assert_eq!((lan4.link.rx, lan4.link.tx, lan4.engine), (7, 6, 5));
        assert_eq!(XdpView::of(XDP_STATUS, "fo1", "x").link.workers, 0);
        let socket = r#"{"datapath":"socket","attach_mode":null,"workers":[],"xdp":{},"#;
        let v = XdpView::of(socket, "lan5", "tx_reply");
        assert_eq!(v.datapath.as_deref(), Some("socket"));
        assert_eq!((v.attach_mode, v.link.workers, v.redirected), (None, 0, 0));
    }

    #[test]
    fn xdp_link_problems_need_xdp_workers_that_received_and_sent_as_expected() {
        let before = XdpView::of(XDP_STATUS, "lan5", "drop_renew_responsive_only");
        let mut after = before.clone();
        after.redirected += 3;
        after.link.rx += 3;
        after.engine += 1;
        let silent = |a: &XdpView| {
            before.problems(
                a,
                "secondary",
                "lan5",
                false,
                Some("drop_renew_responsive_only"),
            )
        };
        assert_eq!(silent(&after), Vec::<String>::new());
        // Answered where it must stay silent; must answer but did not.
        let mut sent = after.clone();
        sent.link.tx += 1;
        assert_eq!(silent(&sent).len(), 1, "{:?}", silent(&sent));
        assert_eq!(
            before
                .problems(&after, "secondary", "lan5", true, None)
                .len(),
            1
        );
        // Nothing through the workers, or not counted by their engines, or not XDP at all.
        assert_eq!(silent(&before).len(), 3, "{:?}", silent(&before));
        let mut socket = after.clone();
        socket.datapath = Some("socket".to_owned());
        assert_eq!(silent(&socket).len(), 1);
        let no_workers = XdpView::default();
        assert_eq!(silent(&no_workers).len(), 2, "{:?}", silent(&no_workers));
    }

    #[test]
    fn parse_kernel_xdp_reads_mode_and_program_or_nothing() {
        let native = "7: lan1@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdp qdisc \
                      noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether \
                      02:74:6c:00:01:01 brd ff:ff:ff:ff:ff:ff link-netns c1\n    veth \
                      addrgenmode eui64\n    prog/xdp id 41 name tandem_xdp tag \
                      0123456789abcdef jited\n";
        assert_eq!(
            parse_kernel_xdp(native).as_deref(),
            Some("xdp prog/xdp id 41 name tandem_xdp")
        );
        let generic = native.replacen(" xdp ", " xdpgeneric ", 1);
        assert_eq!(
            parse_kernel_xdp(&generic).as_deref(),
            Some("xdpgeneric prog/xdp id 41 name tandem_xdp")
        );
        let none = "3: fo0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue \
                    state UP\n    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n";
        assert_eq!(parse_kernel_xdp(none), None);
    }

    #[test]
    fn failover_toml_names_the_partner_certificate() {
        let text = failover_toml(
            Path::new("/d"),
            "secondary",
            SECONDARY_ADDR,
            PRIMARY_ADDR,
            "heartbeat = 2\n",
        );
        assert!(text.contains("role = \"secondary\""), "{text}");
        assert!(text.contains("peer = \"fd0f::1\""), "{text}");
        assert!(text.contains("cert = \"/d/secondary.lab.pem\""), "{text}");
        assert!(text.contains("peer-names = [\"primary.lab\"]"), "{text}");
        assert!(
            text.contains("startup-time = 3\nheartbeat = 2\n\n[failover.tls]"),
            "{text}"
        );
    }
}
