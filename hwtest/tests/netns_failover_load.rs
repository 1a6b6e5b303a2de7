//! An RFC 8156 failover pair under load, and the primary SIGKILLed in the middle of it
//! (docs/failover.md "A crash under load", D55).
//!
//! Two `tandem run` processes in two namespaces, mutual TLS over the failover link
//! (`fo0` ↔ `fo1`, TCP 647; MCLT 30 s, heartbeat 2 s, startup-time 3 s), both serving one
//! subnet on a link they are both on (the lab's shared link: a bridge in a client namespace with
//! a veth to each server, `lab::failover::shared_link`), on the socket datapath and, in a second
//! test, on the XDP one. A load generator in the client namespace ([`WORKERS`] threads, one UDP
//! socket each, the exchanges of `tandem_hwtest::burst`) keeps a few thousand clients (distinct
//! DUIDs, an IA_NA and an IA_PD each) busy, all to ff02::1:2: new clients SOLICIT → REQUEST at
//! [`NEW_PER_SECOND`], bound ones RENEW every [`RENEW_EVERY`].
//!
//! 1. NORMAL: the primary allocates, the secondary is renew responsive (RFC 8156 §8.8.1) and
//!    learns every lease by BNDUPD, lazily (§4.3). Once [`BOUND_AT_KILL`] clients are bound and
//!    renewals flow, the primary is SIGKILLed while exchanges are in flight.
//! 2. The secondary goes COMMUNICATIONS-INTERRUPTED (§8.8.2). Its lease table, read then, is
//!    all it learnt before the kill. Every client bound before the kill rebinds: a sample first
//!    RENEWs naming the dead primary and must get no answer (any other server discards it,
//!    RFC 8415 §16.6); then each, as at its T2, sends REBIND (RFC 9915 §18.2.5). The secondary
//!    (responsive, §8.9.1) must give back every lease it holds for the client: an address or
//!    prefix it had learnt that comes back changed fails the test. A lease granted a moment
//!    before the kill whose BNDUPD never reached the secondary (lazy updates: the RFC
//!    guarantees nothing for it, §4.3) gets NoBinding (D2); the client asks with a REQUEST to
//!    the secondary naming its old lease (RFC 8415 §18.2.10.1) and gets another lease from the
//!    secondary's share. Those "orphans" are counted and reported.
//! 3. `tandem partner-down`, more than a heartbeat after the kill (so that the primary's restart
//!    gives RECOVER, D15), → PARTNER-DOWN (§8.4): while the bound clients keep renewing,
//!    [`PD_CLIENTS`] new clients are served by the secondary. Everything the secondary granted
//!    since the kill is of its share: even addresses (§4.2.1.1), prefixes it held as
//!    FREE-BACKUP (§4.2.2).
//! 4. The primary restarts on its state directory: STARTUP → RECOVER → RECOVER-WAIT →
//!    RECOVER-DONE → NORMAL (§8.3.2 step 5, §8.5–§8.7), never POTENTIAL-CONFLICT, while the load
//!    goes on against the secondary; then [`NORMAL_CLIENTS`] new clients get odd addresses from
//!    the primary again and every bound client renews once more.
//! 5. The load stops. Both lease tables hold the same active leases, each for the same client
//!    (DUID and IAID); the checker over the union of both finds no address or prefix active for
//!    two clients (`clients::held_twice`); every lease a client holds (its last Reply) is active
//!    for it in both; and no orphan is active any more (granted without an acknowledged partner
//!    lifetime, it lasted at most the MCLT, §4.4, D55).
//!
//! Throughout, no address or prefix is granted to a client while another holds it. The choices
//! (order of the clients, the sample) are seeded: [`SEED`], or `TANDEM_LOAD_SEED`. The two tests
//! run one after the other; each takes about 40 s, most of it RECOVER-WAIT (the MCLT).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tandem_hwtest::burst::{self, CountingSocket, Lease, ServerProcess, TIMEOUT, XorShift};
use tandem_hwtest::client::all_servers;
use tandem_hwtest::clients::{self, LeaseRow, ScratchDir};
use tandem_hwtest::lab::failover::{self, PRIMARY_ADDR, SECONDARY_ADDR};
use tandem_hwtest::lab::{self, CLIENT_IF, DirectLink, LabDatapath, LabSubnet};
use tandem_hwtest::{NetNs, require_privileges, run_bounded};
use tandem_wire::dhcp::MessageType;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
/// The default seed of the generator's choices (`TANDEM_LOAD_SEED` overrides it).
const SEED: u64 = 0x8156_0915;
/// New clients queued in NORMAL, [`NEW_PER_SECOND`]; the kill comes before all are bound.
const NORMAL_QUEUE: u32 = 3000;
/// The pace of new clients in NORMAL.
const NEW_PER_SECOND: u32 = 600;
/// Clients bound when the primary is killed (at least).
const BOUND_AT_KILL: usize = 2000;
/// Renewals answered before the kill (the updates of renewals flow too).
const RENEWALS_AT_KILL: u64 = 300;
/// New clients served by the secondary in PARTNER-DOWN.
const PD_CLIENTS: u32 = 200;
/// New clients served by the primary once the pair is NORMAL again.
const NORMAL_CLIENTS: u32 = 100;
/// Clients that RENEW naming the dead primary before they rebind.
const RENEW_SAMPLE: usize = 16;
/// How often a bound client renews.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// Generator threads, one socket each.
const WORKERS: usize = 8;
/// Per-message wait and attempts of the generator's clients.
const PATIENCE: (Duration, u32) = (Duration::from_millis(300), 3);
/// Lease store size of each server (the clients' leases and the FREE-BACKUP prefixes).
const CAPACITY: u64 = 16_384;
/// The shared link's number (`lan<N>` on both servers).
const LINK: u16 = 5;

fn tandem_bin() -> &'static Path {
    Path::new(TANDEM)
}

/// One server of the pair.
struct Side {
    name: &'static str,
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl Side {
    fn start(&self, ns: &NetNs, datapath: LabDatapath) -> ServerProcess {
        let p = ServerProcess::start(
            tandem_bin(),
            ns,
            &self.config,
            &self.state,
            CAPACITY,
            &self.log,
        )
        .unwrap_or_else(|e| panic!("the {} does not start: {e}", self.name));
        let ready = p.ready().unwrap_or_default();
        assert!(
            ready.contains(&format!("mode={}", datapath.as_str())),
            "the {} serves another datapath: {ready}",
            self.name
        );
        p
    }

    fn wait_state(&self, state: &str, within: Duration) {
        if let Err(e) = failover::wait_state(tandem_bin(), &self.state, state, within) {
            panic!("the {}: {e}\nlog tail:\n{}", self.name, self.tail(40));
        }
    }

    fn leases(&self) -> Vec<LeaseRow> {
        clients::leases(tandem_bin(), &self.state)
            .unwrap_or_else(|e| panic!("tandem leases of the {}: {e}", self.name))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// The pair's namespaces, links, configuration and state (removed on drop).
struct Pair {
    primary: Side,
    secondary: Side,
    subnet: LabSubnet,
    // Dropped in this order: the client namespace, then the servers'.
    link: DirectLink,
    pns: NetNs,
    sns: NetNs,
    _dir: ScratchDir,
}

impl Pair {
    fn new(datapath: LabDatapath) -> Self {
        let dir = ScratchDir::new("fo-load").expect("scratch dir");
        let pns = NetNs::new("tandem-fol-p").expect("netns");
        let sns = NetNs::new("tandem-fol-s").expect("netns");
        for ns in [&pns, &sns] {
            ns.sysctl("net/ipv6/conf/default/accept_dad", "0")
                .expect("sysctl");
            ns.sysctl("net/ipv6/conf/all/accept_dad", "0")
                .expect("sysctl");
        }
        failover::failover_link(&pns, &sns).expect("failover link");
        let link = failover::shared_link(&pns, &sns, LINK).expect("shared client link");
        failover::make_ca(dir.path(), "ca", &["primary.lab", "secondary.lab"])
            .expect("certificates");
        // RFC 8156 §4: both serve the same subnet and pools, here on the same link.
        let subnet = LabSubnet {
            prefix: Ipv6Addr::new(0xfd00, LINK, 0, 0, 0, 0, 0, 0),
            pd_pool: Ipv6Addr::new(0xfd20, LINK, 0, 0, 0, 0, 0, 0),
            interface: Some(link.server_if.clone()),
            rapid_commit: false,
        };
        let side = |name: &'static str, me, peer| {
            let mut text = lab::config(
                &[link.server_if.as_str()],
                std::slice::from_ref(&subnet),
                datapath,
            );
            // A heartbeat of 2 s: TIME-OF-FAILURE at most 2 s after the kill (D15), so the
            // operator's PARTNER-DOWN 4 s after it gives RECOVER at the restart.
            text.push_str(&failover::failover_toml(
                dir.path(),
                name,
                me,
                peer,
                "heartbeat = 2\n",
            ));
            let log = dir.file(&format!("{name}.log"));
            burst::fresh_log(&log).expect("log");
            Side {
                name,
                config: dir
                    .write(&format!("{name}.toml"), &text, 0o644)
                    .expect("config"),
                state: dir.file(&format!("{name}-state")),
                log,
            }
        };
        Self {
            primary: side("primary", PRIMARY_ADDR, SECONDARY_ADDR),
            secondary: side("secondary", SECONDARY_ADDR, PRIMARY_ADDR),
            subnet,
            link,
            pns,
            sns,
            _dir: dir,
        }
    }
}

/// One part of a client's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Part {
    Address(Ipv6Addr),
    Prefix(Ipv6Addr, u8),
}

fn parts(lease: Lease) -> Vec<Part> {
    let a = lease.address.map(Part::Address);
    let p = lease.prefix.map(|(p, len)| Part::Prefix(p, len));
    a.into_iter().chain(p).collect()
}

/// What a client holds: its lease and the server that last answered it.
#[derive(Clone, Debug)]
struct Held {
    lease: Lease,
    server: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum Job {
    /// A new client: SOLICIT → REQUEST.
    New(u32),
    /// A bound client renews at its server.
    Renew(u32),
    /// After the kill: REBIND of the lease held.
    Rebind(u32),
    /// After the kill: a RENEW naming the dead primary, which nobody may answer; then Rebind.
    Unanswered(u32),
    /// After a NoBinding: REQUEST to the server that answered, the lease held before as hints.
    Reacquire(u32),
}

/// How a job ended, applied under the queue lock.
enum Done {
    Ok,
    /// Queue this one-shot job next.
    Then(Job),
    /// The client keeps renewing.
    Renewed(u32),
    /// No answer in time: retried, unless the generator is on hold (the kill).
    Timeout(Job),
}

/// The generator's queues: one-shot jobs and the bound clients' renewals, each due at its time.
#[derive(Default)]
struct Queues {
    once: VecDeque<(Instant, Job)>,
    renew: VecDeque<(Instant, u32)>,
    renewing: bool,
    hold: bool,
    stop: bool,
    busy: usize,
    turn: u64,
    /// New-client jobs that got no answer while on hold (the kill).
    interrupted: Vec<u32>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    new_grants: u64,
    renewals: u64,
    timeouts: u64,
    rebinds: u64,
    reacquired: u64,
    unanswered: u64,
}

/// A Rebind after the kill: the lease held, what the Reply gave, its statuses and server.
#[derive(Clone, Debug)]
struct Rebound {
    client: u32,
    before: Lease,
    got: Lease,
    statuses: Vec<u16>,
    server: Vec<u8>,
}

/// What the generator threads share.
struct Load {
    dest: SocketAddrV6,
    subnet: LabSubnet,
    q: Mutex<Queues>,
    next_xid: Mutex<u32>,
    held: Mutex<HashMap<u32, Held>>,
    /// Who holds each address and prefix now (the generator's view).
    holders: Mutex<HashMap<Part, u32>>,
    /// Every grant of a REQUEST (new clients, clients asking again after a NoBinding), in
    /// order: client, lease, server DUID.
    grants: Mutex<Vec<(u32, Held)>>,
    /// The lease each client held before it asked again after a NoBinding.
    asked_again: Mutex<HashMap<u32, Lease>>,
    rebound: Mutex<Vec<Rebound>>,
    stats: Mutex<Stats>,
    violations: Mutex<Vec<String>>,
}

impl Load {
    fn new(dest: SocketAddrV6, subnet: LabSubnet) -> Self {
        Self {
            dest,
            subnet,
            q: Mutex::default(),
            next_xid: Mutex::new(2),
            held: Mutex::default(),
            holders: Mutex::default(),
            grants: Mutex::default(),
            asked_again: Mutex::default(),
            rebound: Mutex::default(),
            stats: Mutex::default(),
            violations: Mutex::default(),
        }
    }

    fn violation(&self, v: String) {
        self.violations.lock().expect("lock").push(v);
    }

    fn stats(&self) -> Stats {
        *self.stats.lock().expect("lock")
    }

    fn bound(&self) -> usize {
        self.held.lock().expect("lock").len()
    }

    /// Two transaction ids (the second for a REQUEST after a SOLICIT).
    fn xid(&self) -> u32 {
        let mut x = self.next_xid.lock().expect("lock");
        *x = (*x + 2) & 0xff_fffe;
        *x
    }

    /// Records that `client` now holds `lease` from `server`: a part another client holds is
    /// a violation (no lease is granted to two clients), the parts it no longer holds are
    /// released in the generator's view.
    fn hold(&self, client: u32, lease: Lease, server: &[u8]) {
        let mut held = self.held.lock().expect("lock");
        let mut holders = self.holders.lock().expect("lock");
        if let Some(old) = held.get(&client) {
            for p in parts(old.lease) {
                holders.remove(&p);
            }
        }
        for p in parts(lease) {
            if let Some(other) = holders.insert(p, client)
                && other != client
            {
                self.violation(format!(
                    "client {client} granted {p:?}, which client {other} holds"
                ));
            }
        }
        held.insert(
            client,
            Held {
                lease,
                server: server.to_vec(),
            },
        );
    }

    /// A grant must have both parts, in the pools.
    fn complete(&self, lease: Lease) -> bool {
        lease.address.is_some_and(|a| self.subnet.has_address(a))
            && lease.prefix.is_some_and(|p| self.subnet.has_prefix(p))
    }

    fn run(&self, sock: &mut CountingSocket, job: Job) -> Done {
        let xid = self.xid();
        let duid = |i| burst::client_duid(i);
        match job {
            Job::New(i) => {
                match burst::solicit_request(
                    sock,
                    self.dest,
                    &duid(i),
                    xid,
                    Lease::default(),
                    PATIENCE,
                ) {
                    Ok((_, reply)) => self.granted(i, true, reply),
                    Err(e) if e.starts_with(TIMEOUT) => Done::Timeout(job),
                    Err(e) => {
                        self.violation(format!("client {i} ({job:?}): {e}"));
                        Done::Ok
                    }
                }
            }
            Job::Reacquire(i) => {
                // RFC 8415 §18.2.10.1: a Request to the server that answered with NoBinding,
                // with every IA; the lease held before the Rebind as hints (§18.2.2).
                let Some(h) = self.held.lock().expect("lock").get(&i).cloned() else {
                    return Done::Ok;
                };
                let hints = self.asked_again.lock().expect("lock")[&i];
                let msg = burst::client_message(
                    MessageType::REQUEST,
                    xid,
                    &duid(i),
                    Some(&h.server),
                    hints,
                )
                .expect("REQUEST");
                let answer = match sock.transact(&msg, xid, self.dest, PATIENCE.0, PATIENCE.1) {
                    Ok(a) => a,
                    Err(e) => {
                        self.violation(format!("client {i} REQUEST: {e}"));
                        return Done::Ok;
                    }
                };
                match burst::checked(answer, MessageType::REPLY, xid, &duid(i), Some(&h.server)) {
                    Ok(reply) => {
                        // What the client still held (its binding at this server) comes back.
                        let got = parts(reply.lease);
                        for kept in parts(h.lease).into_iter().filter(|p| !got.contains(p)) {
                            self.violation(format!(
                                "client {i} asked again holding {kept:?}, got {:?}",
                                reply.lease
                            ));
                        }
                        self.granted(i, false, reply)
                    }
                    Err(e) if e.starts_with(TIMEOUT) => Done::Timeout(job),
                    Err(e) => {
                        self.violation(format!("client {i} REQUEST: {e}"));
                        Done::Ok
                    }
                }
            }
            Job::Renew(i) | Job::Unanswered(i) => {
                let Some(h) = self.held.lock().expect("lock").get(&i).cloned() else {
                    return Done::Ok;
                };
                let msg = burst::client_message(
                    MessageType::RENEW,
                    xid,
                    &duid(i),
                    Some(&h.server),
                    h.lease,
                )
                .expect("RENEW");
                let (wait, attempts) = match job {
                    Job::Unanswered(_) => (Duration::from_millis(500), 1),
                    _ => PATIENCE,
                };
                let answer = match sock.transact(&msg, xid, self.dest, wait, attempts) {
                    Ok(a) => a,
                    Err(e) => {
                        self.violation(format!("client {i} RENEW: {e}"));
                        return Done::Ok;
                    }
                };
                if matches!(job, Job::Unanswered(_)) {
                    if let Some(a) = answer {
                        self.violation(format!(
                            "client {i}: a RENEW naming the dead primary was answered \
                             (RFC 8415 §16.6: discarded by any other server): {a:?}"
                        ));
                    }
                    self.stats.lock().expect("lock").unanswered += 1;
                    return Done::Then(Job::Rebind(i));
                }
                match burst::checked(answer, MessageType::REPLY, xid, &duid(i), Some(&h.server)) {
                    Ok(a) if a.lease == h.lease => {
                        self.stats.lock().expect("lock").renewals += 1;
                        Done::Renewed(i)
                    }
                    Ok(a) => {
                        self.violation(format!(
                            "client {i} renewed {:?}, got {:?} (statuses {:?})",
                            h.lease, a.lease, a.statuses
                        ));
                        Done::Ok
                    }
                    Err(e) if e.starts_with(TIMEOUT) => Done::Timeout(job),
                    Err(e) => {
                        self.violation(format!("client {i} RENEW: {e}"));
                        Done::Ok
                    }
                }
            }
            Job::Rebind(i) => {
                let Some(h) = self.held.lock().expect("lock").get(&i).cloned() else {
                    return Done::Ok;
                };
                let msg = burst::client_message(MessageType::REBIND, xid, &duid(i), None, h.lease)
                    .expect("REBIND");
                let answer = match sock.transact(&msg, xid, self.dest, PATIENCE.0, PATIENCE.1) {
                    Ok(a) => a,
                    Err(e) => {
                        self.violation(format!("client {i} REBIND: {e}"));
                        return Done::Ok;
                    }
                };
                match burst::checked(answer, MessageType::REPLY, xid, &duid(i), None) {
                    Ok(a) => {
                        let server = a.server_id.clone().unwrap_or_default();
                        self.rebound.lock().expect("lock").push(Rebound {
                            client: i,
                            before: h.lease,
                            got: a.lease,
                            statuses: a.statuses.clone(),
                            server: server.clone(),
                        });
                        self.stats.lock().expect("lock").rebinds += 1;
                        self.hold(i, a.lease, &server);
                        if self.complete(a.lease) {
                            Done::Renewed(i)
                        } else {
                            // NoBinding for a part: the client asks again, naming what it had
                            // (RFC 8415 §18.2.10.1).
                            self.asked_again.lock().expect("lock").insert(i, h.lease);
                            Done::Then(Job::Reacquire(i))
                        }
                    }
                    Err(e) if e.starts_with(TIMEOUT) => Done::Timeout(job),
                    Err(e) => {
                        self.violation(format!("client {i} REBIND: {e}"));
                        Done::Ok
                    }
                }
            }
        }
    }

    /// Records the REPLY to a REQUEST of client `i`, new or asking again: it must grant both
    /// parts, in the pools.
    fn granted(&self, i: u32, new: bool, reply: burst::Answer) -> Done {
        if !self.complete(reply.lease) {
            self.violation(format!(
                "client {i} (new: {new}): incomplete grant {:?} (statuses {:?})",
                reply.lease, reply.statuses
            ));
            return Done::Ok;
        }
        let server = reply.server_id.unwrap_or_default();
        self.hold(i, reply.lease, &server);
        let mut s = self.stats.lock().expect("lock");
        if new {
            s.new_grants += 1;
        } else {
            s.reacquired += 1;
        }
        self.grants.lock().expect("lock").push((
            i,
            Held {
                lease: reply.lease,
                server,
            },
        ));
        Done::Renewed(i)
    }

    /// The next job of a worker: renewals that are due and one-shot jobs, taken in turn.
    fn take(q: &mut Queues) -> Option<Job> {
        q.turn += 1;
        let now = Instant::now();
        let renew = |q: &mut Queues| {
            if q.renewing && q.renew.front().is_some_and(|(due, _)| *due <= now) {
                q.renew.pop_front().map(|(_, i)| Job::Renew(i))
            } else {
                None
            }
        };
        let once = |q: &mut Queues| {
            if q.once.front().is_some_and(|(due, _)| *due <= now) {
                q.once.pop_front().map(|(_, j)| j)
            } else {
                None
            }
        };
        if q.turn.is_multiple_of(2) {
            renew(q).or_else(|| once(q))
        } else {
            once(q).or_else(|| renew(q))
        }
    }

    fn worker(&self, mut sock: CountingSocket) {
        loop {
            let job = {
                let mut q = self.q.lock().expect("lock");
                if q.stop {
                    return;
                }
                let job = if q.hold { None } else { Self::take(&mut q) };
                if job.is_some() {
                    q.busy += 1;
                }
                job
            };
            let Some(job) = job else {
                thread::sleep(Duration::from_millis(2));
                continue;
            };
            let done = self.run(&mut sock, job);
            let mut q = self.q.lock().expect("lock");
            q.busy -= 1;
            match done {
                Done::Ok => {}
                Done::Then(next) => q.once.push_back((Instant::now(), next)),
                Done::Renewed(i) => {
                    if q.renewing {
                        q.renew.push_back((Instant::now() + RENEW_EVERY, i));
                    }
                }
                Done::Timeout(job) => {
                    if q.hold {
                        if let Job::New(i) = job {
                            q.interrupted.push(i);
                        }
                    } else {
                        self.stats.lock().expect("lock").timeouts += 1;
                        match job {
                            Job::Renew(i) => q.renew.push_back((Instant::now(), i)),
                            other => q.once.push_back((Instant::now(), other)),
                        }
                    }
                }
            }
        }
    }

    /// Stops taking jobs and waits (at most 5 s) for the jobs under way.
    fn pause(&self) {
        self.q.lock().expect("lock").hold = true;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.q.lock().expect("lock").busy > 0 {
            assert!(Instant::now() < deadline, "the generator did not pause");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (at most `within`) until no one-shot job is queued or under way.
    fn wait_once_done(&self, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        loop {
            {
                let q = self.q.lock().expect("lock");
                if q.once.is_empty() && q.busy == 0 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: not done within {within:?}: {} jobs queued, {} under way, {:?}",
                    q.once.len(),
                    q.busy,
                    self.stats()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Queues one-shot `jobs`, due now.
    fn queue(&self, jobs: impl IntoIterator<Item = Job>) {
        let now = Instant::now();
        let mut q = self.q.lock().expect("lock");
        q.once.extend(jobs.into_iter().map(|j| (now, j)));
    }

    /// Every bound client renews from now on, each every [`RENEW_EVERY`].
    fn renew_all(&self) {
        let now = Instant::now();
        let mut ids: Vec<u32> = self.held.lock().expect("lock").keys().copied().collect();
        ids.sort_unstable();
        let mut q = self.q.lock().expect("lock");
        q.renew = ids.into_iter().map(|i| (now, i)).collect();
        q.renewing = true;
    }

    /// Waits (at most `within`) until `done(stats, bound)`.
    fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&Stats, usize) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let (stats, bound) = (self.stats(), self.bound());
            if done(&stats, bound) {
                return;
            }
            if Instant::now() >= deadline {
                let violations = self.violations.lock().expect("lock").clone();
                panic!(
                    "{what}: not reached within {within:?}: {stats:?}, {bound} bound; \
                     violations {violations:?}"
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn assert_no_violation(&self, when: &str) {
        let v = self.violations.lock().expect("lock");
        assert!(
            v.is_empty(),
            "{when}: {} violation(s), first: {:#?}",
            v.len(),
            &v[..v.len().min(10)]
        );
    }
}

/// The active leases of a table by client binding and kind: (DUID, IAID, kind) → lease.
fn active_by_client(rows: &[LeaseRow]) -> HashMap<(Vec<u8>, u32, &str), Vec<Part>> {
    let mut m: HashMap<(Vec<u8>, u32, &str), Vec<Part>> = HashMap::new();
    for r in rows.iter().filter(|r| r.state == "active") {
        let (kind, part) = match (r.address, r.prefix) {
            (Some(a), _) => ("na", Part::Address(a)),
            (None, Some((p, l))) => ("pd", Part::Prefix(p, l)),
            (None, None) => continue,
        };
        m.entry((r.duid.clone(), r.iaid, kind))
            .or_default()
            .push(part);
    }
    m
}

/// Whether `part` of `client` is active in a table read by [`active_by_client`].
fn knows(table: &HashMap<(Vec<u8>, u32, &str), Vec<Part>>, client: u32, part: Part) -> bool {
    let (iaid, kind) = match part {
        Part::Address(_) => (burst::NA_IAID, "na"),
        Part::Prefix(..) => (burst::PD_IAID, "pd"),
    };
    table
        .get(&(burst::client_duid(client), iaid, kind))
        .is_some_and(|v| v.contains(&part))
}

/// The FREE-BACKUP prefixes of a table (the secondary's share, RFC 8156 §4.2.2).
fn free_backup(rows: &[LeaseRow]) -> HashSet<(Ipv6Addr, u8)> {
    rows.iter()
        .filter(|r| r.state == "free_backup")
        .filter_map(|r| r.prefix)
        .collect()
}

/// The whole story on `datapath` (module documentation).
#[expect(
    clippy::too_many_lines,
    reason = "one story told in order, phase by phase, each check next to what it checks"
)]
fn run(datapath: LabDatapath) {
    let seed = std::env::var("TANDEM_LOAD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    eprintln!(
        "seed {seed} (TANDEM_LOAD_SEED), datapath {}",
        datapath.as_str()
    );
    let mut rng = XorShift::new(seed);
    let started = Instant::now();
    let t = || format!("+{:>5.1}s", started.elapsed().as_secs_f64());
    let pair = Pair::new(datapath);
    let (primary, secondary) = (&pair.primary, &pair.secondary);

    // Both up and NORMAL, the secondary holding its share of the prefixes.
    let sproc = secondary.start(&pair.sns, datapath);
    let pproc = primary.start(&pair.pns, datapath);
    primary.wait_state("NORMAL", Duration::from_secs(30));
    secondary.wait_state("NORMAL", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    // The secondary's share of the prefixes, for new clients when it serves alone.
    let backup = loop {
        let (p, s) = (
            free_backup(&primary.leases()),
            free_backup(&secondary.leases()),
        );
        if !s.is_empty() && p == s {
            eprintln!(
                "{} both NORMAL; the secondary holds {} FREE-BACKUP prefixes (RFC 8156 §4.2.2)",
                t(),
                s.len()
            );
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "FREE-BACKUP prefixes (RFC 8156 §4.2.2): primary {}, secondary {}",
            p.len(),
            s.len()
        );
        thread::sleep(Duration::from_millis(200));
    };

    // The generator: new clients at NEW_PER_SECOND, each renewing every RENEW_EVERY once bound.
    let ifindex = pair.link.ns.ifindex(CLIENT_IF).expect("client0");
    let load = Arc::new(Load::new(all_servers(ifindex), pair.subnet.clone()));
    let mut order: Vec<u32> = (0..NORMAL_QUEUE).collect();
    shuffle(&mut order, &mut rng);
    {
        let now = Instant::now();
        let gap = Duration::from_secs(1) / NEW_PER_SECOND;
        let mut q = load.q.lock().expect("lock");
        for (n, &i) in (0u32..).zip(&order) {
            q.once.push_back((now + gap * n, Job::New(i)));
        }
        q.renewing = true;
    }
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let load = Arc::clone(&load);
            let sock = CountingSocket::bind(&pair.link.ns).expect("socket");
            thread::spawn(move || load.worker(sock))
        })
        .collect();

    // 1. NORMAL under load; the primary is SIGKILLed with exchanges and BNDUPDs in flight.
    load.wait_until(
        Duration::from_secs(40),
        "the load before the kill",
        |s, b| b >= BOUND_AT_KILL && s.renewals >= RENEWALS_AT_KILL,
    );
    pproc.kill9().expect("SIGKILL of the primary");
    let killed = Instant::now();
    load.pause();
    let at_kill = load.stats();
    let pending = load.q.lock().expect("lock").once.len();
    eprintln!(
        "{} SIGKILL of the primary: {} clients bound ({} new grants, {} renewals answered, {} \
         timeouts so far), {pending} new clients still queued",
        t(),
        load.bound(),
        at_kill.new_grants,
        at_kill.renewals,
        at_kill.timeouts
    );
    assert!(pending > 0, "the load was over before the kill");
    load.assert_no_violation("in NORMAL");
    // The first grants, long before the kill, are the primary's (in NORMAL only the primary
    // allocates, RFC 8156 §8.8.1). A client whose SOLICIT went out just after the kill may have
    // been served by the secondary already (COMMUNICATIONS-INTERRUPTED, §8.9.1).
    let primary_duid = load.grants.lock().expect("lock")[0].1.server.clone();

    // 2. COMMUNICATIONS-INTERRUPTED: what the secondary learnt before the kill is all it will
    // ever learn of the dead primary's grants; every bound client rebinds there.
    secondary.wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(10));
    let srows = secondary.leases();
    let known = active_by_client(&srows);
    let backup_left = free_backup(&srows).len();
    let unacked_at_primary = primary
        .leases()
        .iter()
        .filter(|r| r.state == "active" && r.raw.contains("\"needs_update\":true"))
        .count();
    let bound: HashMap<u32, Held> = load.held.lock().expect("lock").clone();
    let mut parts_known = 0usize;
    // Leases granted too late for their BNDUPD: the secondary never learns them from the dead
    // primary (docs/failover.md D55).
    let mut orphans: Vec<(u32, Part)> = Vec::new();
    for (&i, h) in &bound {
        for p in parts(h.lease) {
            if knows(&known, i, p) {
                parts_known += 1;
            } else {
                orphans.push((i, p));
            }
        }
    }
    let parts_unknown = orphans.len();
    let in_flight: HashSet<u32> = orphans.iter().map(|(i, _)| *i).collect();
    eprintln!(
        "{} the secondary, COMMUNICATIONS-INTERRUPTED, knows {parts_known} of the {} leases \
         the {} bound clients hold; {parts_unknown} leases of {} clients were granted too late \
         for their BNDUPD (the killed primary's store has {unacked_at_primary} active leases \
         flagged needs_update); it holds {} FREE-BACKUP prefixes",
        t(),
        parts_known + parts_unknown,
        bound.len(),
        in_flight.len(),
        backup_left
    );
    let mut clients: Vec<u32> = bound.keys().copied().collect();
    clients.sort_unstable();
    shuffle(&mut clients, &mut rng);
    let sample = RENEW_SAMPLE.min(clients.len());
    {
        let mut q = load.q.lock().expect("lock");
        q.once.clear();
        q.renew.clear();
        q.renewing = false;
    }
    load.queue(clients[..sample].iter().map(|&i| Job::Unanswered(i)));
    load.queue(clients[sample..].iter().map(|&i| Job::Rebind(i)));
    load.q.lock().expect("lock").hold = false;
    load.wait_once_done(Duration::from_secs(30), "rebinding at the secondary");
    load.assert_no_violation("rebinding at the secondary");
    let rebound = load.rebound.lock().expect("lock").clone();
    assert_eq!(
        rebound.len(),
        bound.len(),
        "every bound client rebinds once"
    );
    let secondary_duid = rebound[0].server.clone();
    assert_ne!(secondary_duid, primary_duid);
    assert!(
        rebound.iter().all(|r| r.server == secondary_duid),
        "only the secondary answers"
    );
    let mut changed_known = Vec::new();
    let (mut same, mut no_binding, mut different) = (0usize, 0usize, 0usize);
    for r in &rebound {
        let got = parts(r.got);
        for p in parts(r.before) {
            if knows(&known, r.client, p) && !got.contains(&p) {
                changed_known.push(format!(
                    "client {}: {p:?}, known to the secondary, rebound as {:?} (statuses {:?})",
                    r.client, r.got, r.statuses
                ));
            }
        }
        if r.got == r.before {
            same += 1;
        } else if r.statuses.contains(&3) {
            no_binding += 1;
        } else {
            different += 1;
        }
    }
    let after_rebind = load.stats();
    eprintln!(
        "{} rebinding: {} RENEWs naming the dead primary went unanswered; {} clients sent \
         REBIND to the secondary: {same} got their whole lease back, {no_binding} got NoBinding \
         for what the secondary never learnt, {different} another lease; {} asked again \
         (REQUEST, RFC 8415 §18.2.10.1) and were served by the secondary",
        t(),
        after_rebind.unanswered,
        rebound.len(),
        after_rebind.reacquired
    );
    assert!(
        changed_known.is_empty(),
        "{} lease(s) the secondary had learnt came back changed on REBIND (RFC 8156 §8.9.1 \
         responsive, §7: the partner's binding database), first: {:#?}",
        changed_known.len(),
        &changed_known[..changed_known.len().min(10)]
    );
    // A client whose lease the secondary did not (wholly) know cannot get it back there: a
    // Rebind creates no binding (D2), and the dead primary's odd addresses are not the
    // secondary's to give (RFC 8156 §4.2.1.1).
    assert_eq!(
        same,
        bound.len() - in_flight.len(),
        "exactly the clients whose whole lease the secondary knew kept it"
    );

    // 3. PARTNER-DOWN (more than a heartbeat after the kill, D15): the secondary serves new
    // clients from its own share while every bound client keeps renewing.
    thread::sleep(Duration::from_secs(4).saturating_sub(killed.elapsed()));
    let out = run_bounded(
        Command::new(TANDEM)
            .args(["partner-down", "lab", "--state-dir"])
            .arg(&secondary.state),
        Duration::from_secs(5),
    )
    .expect("tandem partner-down");
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout,
        "failover lab: COMMUNICATIONS-INTERRUPTED -> PARTNER-DOWN\n"
    );
    secondary.wait_state("PARTNER-DOWN", Duration::from_secs(5));
    let pd_new: Vec<u32> = (NORMAL_QUEUE..NORMAL_QUEUE + PD_CLIENTS).collect();
    let interrupted = std::mem::take(&mut load.q.lock().expect("lock").interrupted);
    load.renew_all();
    load.queue(pd_new.iter().chain(&interrupted).map(|&i| Job::New(i)));
    load.wait_once_done(Duration::from_secs(30), "new clients in PARTNER-DOWN");
    load.assert_no_violation("PARTNER-DOWN");
    let held = load.held.lock().expect("lock").clone();
    let served = pd_new
        .iter()
        .filter(|i| held.get(i).is_some_and(|h| h.server == secondary_duid))
        .count();
    assert_eq!(served, pd_new.len(), "new clients served by the secondary");
    // Every lease the secondary granted is of its share: even addresses (§4.2.1.1), prefixes
    // it held as FREE-BACKUP (§4.2.2). A Rebind that came back with another lease than the one
    // it named counts as a grant too; a part of the primary's lease that a client asking again
    // still held (and the secondary renewed) does not.
    let from_primary = |i: u32, p: Part| {
        bound
            .get(&i)
            .is_some_and(|b| b.server == primary_duid && parts(b.lease).contains(&p))
    };
    let mut granted: Vec<(u32, Part)> = load
        .grants
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, h)| h.server == secondary_duid)
        .flat_map(|(i, h)| parts(h.lease).into_iter().map(|p| (*i, p)))
        .filter(|&(i, p)| !from_primary(i, p))
        .collect();
    for r in &rebound {
        let before = parts(r.before);
        granted.extend(
            parts(r.got)
                .into_iter()
                .filter(|p| !before.contains(p))
                .map(|p| (r.client, p)),
        );
    }
    let not_its_share: Vec<&(u32, Part)> = granted
        .iter()
        .filter(|(_, p)| match *p {
            Part::Address(a) => u128::from(a) & 1 != 0,
            Part::Prefix(p, len) => !backup.contains(&(p, len)),
        })
        .collect();
    assert!(
        not_its_share.is_empty(),
        "the secondary granted leases outside its share: {not_its_share:?}"
    );
    let granted_by_secondary = granted.len();
    eprintln!(
        "{} PARTNER-DOWN: {} new clients served by the secondary (and {} interrupted at the \
         kill), {granted_by_secondary} leases granted by it since the kill, all even addresses \
         and FREE-BACKUP prefixes; {} renewals answered so far",
        t(),
        pd_new.len(),
        interrupted.len(),
        load.stats().renewals
    );

    // 4. The primary restarts on its state directory and recovers while the load goes on.
    let log_from = primary.log().len();
    let pproc = primary.start(&pair.pns, datapath);
    primary.wait_state("NORMAL", Duration::from_secs(60));
    secondary.wait_state("NORMAL", Duration::from_secs(10));
    let log = primary.log()[log_from..].to_owned();
    let steps = [
        "STARTUP -> RECOVER",
        "RECOVER -> RECOVER-WAIT",
        "RECOVER-WAIT -> RECOVER-DONE",
        "RECOVER-DONE -> NORMAL",
    ];
    if let Err(e) = failover::steps_in_order(&log, &steps) {
        panic!("the restarted primary (RFC 8156 §8.3.2 step 5): {e}:\n{log}");
    }
    assert!(!log.contains("POTENTIAL-CONFLICT"), "{log}");
    let at_normal = load.stats();
    eprintln!(
        "{} the restarted primary went STARTUP -> RECOVER -> RECOVER-WAIT -> RECOVER-DONE -> \
         NORMAL, the secondary NORMAL; {} renewals answered meanwhile",
        t(),
        at_normal.renewals - after_rebind.renewals
    );
    let normal_new: Vec<u32> =
        (NORMAL_QUEUE + PD_CLIENTS..NORMAL_QUEUE + PD_CLIENTS + NORMAL_CLIENTS).collect();
    let bound_now = load.bound() as u64;
    load.queue(normal_new.iter().map(|&i| Job::New(i)));
    load.wait_once_done(Duration::from_secs(30), "new clients in NORMAL again");
    load.wait_until(
        Duration::from_secs(30),
        "every client renewing once in NORMAL",
        |s, _| s.renewals >= at_normal.renewals + bound_now,
    );
    let held = load.held.lock().expect("lock").clone();
    let odd_from_primary = normal_new
        .iter()
        .filter(|i| {
            held.get(i).is_some_and(|h| {
                h.server == primary_duid && h.lease.address.is_some_and(|a| u128::from(a) & 1 == 1)
            })
        })
        .count();
    assert_eq!(
        odd_from_primary,
        normal_new.len(),
        "new clients in NORMAL get odd addresses from the primary (RFC 8156 §4.2.1.1, §8.8.1)"
    );

    // 5. The load stops; the tables agree, no lease has two holders, every client's lease is in
    // both.
    load.q.lock().expect("lock").stop = true;
    for w in workers {
        w.join().expect("generator thread");
    }
    load.assert_no_violation("back in NORMAL");
    let active = failover::wait_tables_agree(
        tandem_bin(),
        [&primary.state, &secondary.state],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("the lease tables differ after the recovery: {e}"));
    let (prows, srows) = (primary.leases(), secondary.leases());
    let twice = clients::held_twice(prows.iter().chain(&srows));
    assert!(
        twice.is_empty(),
        "leases active for two clients: {:#?}",
        &twice[..twice.len().min(10)]
    );
    let (ptable, stable) = (active_by_client(&prows), active_by_client(&srows));
    let mut missing = Vec::new();
    for (&i, h) in &held {
        for p in parts(h.lease) {
            if !knows(&ptable, i, p) || !knows(&stable, i, p) {
                missing.push(format!("client {i}: {p:?}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} leases clients hold are not active for them in both tables, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // An orphan was granted with no partner lifetime acknowledged, so for at most the MCLT
    // (RFC 8156 §4.4); the pair is NORMAL only after RECOVER-WAIT waited the MCLT beyond the
    // primary's TIME-OF-FAILURE (§8.6.2), so every orphan has ended by now, on both servers.
    let state_in = |rows: &[LeaseRow], p: Part| -> String {
        rows.iter()
            .find(|r| match p {
                Part::Address(a) => r.address == Some(a),
                Part::Prefix(x, len) => r.prefix == Some((x, len)),
            })
            .map_or_else(|| "absent".to_owned(), |r| r.state.clone())
    };
    let mut orphan_states: HashMap<(String, String), usize> = HashMap::new();
    let mut still_active = Vec::new();
    for &(i, p) in &orphans {
        let states = (state_in(&prows, p), state_in(&srows, p));
        if states.0 == "active" || states.1 == "active" {
            still_active.push(format!("client {i}: {p:?} {states:?}"));
        }
        *orphan_states.entry(states).or_default() += 1;
    }
    assert!(
        still_active.is_empty(),
        "leases the secondary never learnt are still active after the MCLT (primary, \
         secondary): {still_active:?}"
    );
    let end = load.stats();
    eprintln!(
        "{} both tables hold the same {active} active leases, none for two clients; every \
         lease of the {} clients is in both; the {} orphans have ended (states in the primary's \
         and the secondary's table: {orphan_states:?})",
        t(),
        held.len(),
        orphans.len()
    );
    let mut counters = Vec::new();
    for (side, p) in [(primary, pproc), (secondary, sproc)] {
        let lines = p
            .stop()
            .unwrap_or_else(|e| panic!("the {} stops: {e}", side.name));
        let line = lines
            .iter()
            .find(|l| l.starts_with("COUNTERS"))
            .unwrap_or_else(|| panic!("the {} printed no COUNTERS: {lines:?}", side.name));
        eprintln!("{}: {line}", side.name);
        counters.push(burst::counter_fields(line));
    }
    let count = |side: usize, name: &str| {
        counters[side]
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    };
    // The secondary saw the new clients of NORMAL on the shared link and, renew responsive,
    // did not answer them (§8.8.1).
    assert!(count(1, "drop_renew_responsive_only") > 0);
    if datapath == LabDatapath::Xdp {
        assert!(count(0, "xdp_redirected") > 0 && count(1, "xdp_redirected") > 0);
    }
    eprintln!(
        "SUMMARY {}: {} bound at the kill, {} of their leases unknown to the secondary ({} \
         clients); {same} rebound with the same lease, {} NoBinding/other and asked again; {} \
         new clients served in PARTNER-DOWN, {} in NORMAL after the recovery; {} new grants, \
         {} renewals, {} timeouts in all; {:.1?}",
        datapath.as_str(),
        bound.len(),
        parts_unknown,
        in_flight.len(),
        no_binding + different,
        pd_new.len(),
        normal_new.len(),
        end.new_grants,
        end.renewals,
        end.timeouts,
        started.elapsed()
    );
}

/// Fisher–Yates with the test's generator.
fn shuffle<T>(v: &mut [T], rng: &mut XorShift) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// The two datapaths' runs, one at a time: each loads the machine's two CPUs on its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn netns_failover_load_primary_killed_mid_load_secondary_keeps_leases_and_pair_recovers() {
    require_privileges!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    run(LabDatapath::Socket);
}

#[test]
fn netns_failover_load_xdp_primary_killed_mid_load_secondary_keeps_leases_and_pair_recovers() {
    require_privileges!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    run(LabDatapath::Xdp);
}
