//! Robustness of `tandem run` (the UDP-socket datapath server) in a two-namespace lab:
//!
//! * a flood of malformed datagrams (multicast and unicast) with valid clients interleaved:
//!   the server stays up, answers every valid client correctly, and accounts for every
//!   datagram in its counters (RFC 8415 §16: discarded messages are dropped, never answered);
//! * SIGKILL during a burst of clients, three times, restarting on the same state directory:
//!   every lease a client was granted in a REPLY is still in the table, nothing is assigned
//!   twice, and the clients keep their leases (RFC 8415 §18.3.2, §18.3.4).
//!
//! Seeds come from the clock and are printed, so a failure can be replayed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tandem_hwtest::burst::{
    self, CountingSocket, Lease, MAX_RELAY_DEPTH, ServerProcess, TIMEOUT, XorShift, checked,
};
use tandem_hwtest::client::{SERVER_PORT, all_servers};
use tandem_hwtest::clients::{self, LeaseRow, ScratchDir};
use tandem_hwtest::{Lab, require_privileges};
use tandem_wire::dhcp::MessageType;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
/// Lease store size for the tests.
const CAPACITY: u64 = 8192;

fn tandem_bin() -> &'static Path {
    Path::new(TANDEM)
}

/// The pools of a lab: the whole `/64` of the server link for IA_NA, a `/40` cut into `/56`s
/// for IA_PD.
#[derive(Clone, Copy, Debug)]
struct Pools {
    subnet: Ipv6Addr,
    pd: Ipv6Addr,
}

impl Pools {
    fn new(lab: &Lab) -> Self {
        let s = lab.server_addr().segments();
        Self {
            subnet: Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0),
            // fd20:XX00::/40 with XX the lab's number (low byte).
            pd: Ipv6Addr::new(0xfd20, (s[1] & 0xff) << 8, 0, 0, 0, 0, 0, 0),
        }
    }

    fn config(&self, server_if: &str) -> String {
        format!(
            "[server]\npreference = 255\n\n[[interface]]\nname = \"{server_if}\"\n\n\
             [[subnet]]\nprefix = \"{net}/64\"\ninterface = \"{server_if}\"\n\
             preferred-lifetime = 600\nvalid-lifetime = 1200\nt1 = 300\nt2 = 480\n\n\
             [[subnet.pool]]\nprefix = \"{net}/64\"\n\n\
             [[subnet.pd-pool]]\nprefix = \"{pd}/40\"\ndelegated-length = 56\n",
            net = self.subnet,
            pd = self.pd,
        )
    }

    fn has_address(&self, a: Ipv6Addr) -> bool {
        u128::from(a) >> 64 == u128::from(self.subnet) >> 64
    }

    fn has_prefix(&self, (p, len): (Ipv6Addr, u8)) -> bool {
        len == 56 && u128::from(p) >> 88 == u128::from(self.pd) >> 88 && u128::from(p) << 56 == 0
    }

    /// Everything wrong with a granted (or offered) lease: both parts present and in the pools.
    fn problems(&self, lease: Lease) -> Option<String> {
        match (lease.address, lease.prefix) {
            (Some(a), Some(p)) if self.has_address(a) && self.has_prefix(p) => None,
            _ => Some(format!(
                "lease {lease:?} missing or outside the pools {self:?}"
            )),
        }
    }
}

/// A lab, a config file, a state directory and a log in a scratch directory.
struct Setup {
    lab: Lab,
    pools: Pools,
    /// Removed (with the state directory) when the test ends.
    _dir: ScratchDir,
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new(prefix: &str) -> Self {
        let lab = Lab::new(prefix, 1).expect("lab");
        let pools = Pools::new(&lab);
        let dir = ScratchDir::new(prefix).expect("scratch dir");
        let config = dir
            .write("tandem.toml", &pools.config(lab.server_if()), 0o644)
            .expect("config");
        let state = dir.file("state");
        let log = dir.file("server.log");
        burst::fresh_log(&log).expect("log");
        Self {
            lab,
            pools,
            _dir: dir,
            config,
            state,
            log,
        }
    }

    fn start(&self) -> ServerProcess {
        ServerProcess::start(
            tandem_bin(),
            self.lab.server_ns(),
            &self.config,
            &self.state,
            CAPACITY,
            &self.log,
        )
        .unwrap_or_else(|e| panic!("tandem run: {e}"))
    }

    fn multicast(&self) -> SocketAddrV6 {
        all_servers(self.lab.client_ifindex())
    }

    fn leases(&self) -> Vec<LeaseRow> {
        clients::leases(tandem_bin(), &self.state).expect("tandem leases")
    }
}

/// How a client waits: per-attempt timeout and attempts per message.
#[derive(Clone, Copy, Debug)]
struct Patience {
    timeout: Duration,
    attempts: u32,
    /// The REPLY must grant exactly what was advertised (the REQUEST's hint). Only when no
    /// other client runs at the same time: two concurrent clients may be offered the same
    /// lease, and the second REQUEST then rightly gets another (RFC 8415 §18.3.2).
    hint_kept: bool,
}

/// Sequential clients during the flood.
const FLOOD_PATIENCE: Patience = Patience {
    timeout: Duration::from_millis(1000),
    attempts: 5,
    hint_kept: true,
};

/// SOLICIT → ADVERTISE → REQUEST → REPLY for client `duid`; returns the server DUID and the
/// lease, checked against the pools.
fn full_exchange(
    sock: &mut CountingSocket,
    dest: SocketAddrV6,
    duid: &[u8],
    xid: u32,
    pools: &Pools,
    patience: Patience,
) -> Result<(Vec<u8>, Lease), String> {
    let Patience {
        timeout,
        attempts,
        hint_kept,
    } = patience;
    let (adv, reply) =
        burst::solicit_request(sock, dest, duid, xid, Lease::default(), (timeout, attempts))?;
    if let Some(p) = pools.problems(adv.lease) {
        return Err(format!("ADVERTISE: {p}; {adv:?}"));
    }
    if let Some(p) = pools.problems(reply.lease) {
        return Err(format!("REPLY: {p}; {reply:?}"));
    }
    if hint_kept && reply.lease != adv.lease {
        return Err(format!(
            "REPLY granted {:?}, not the advertised hint {:?}",
            reply.lease, adv.lease
        ));
    }
    Ok((adv.server_id.unwrap_or_default(), reply.lease))
}

/// Malformed datagrams: random bytes of random lengths, every truncation of a valid SOLICIT
/// and REQUEST, single byte flips, options whose length runs past the end, relays nested
/// `MAX_RELAY_DEPTH + 1` deep, a 65000-byte datagram, an empty one, and every message type
/// with a random tail.
fn malformed_corpus(rng: &mut XorShift, solicit: &[u8], request: &[u8]) -> Vec<Vec<u8>> {
    let mut corpus = Vec::new();
    for _ in 0..400 {
        let len = rng.below(700);
        corpus.push(rng.bytes(len));
    }
    for valid in [solicit, request] {
        for cut in 0..valid.len() {
            corpus.push(valid[..cut].to_vec());
        }
        for _ in 0..100 {
            let mut m = valid.to_vec();
            let at = rng.below(m.len());
            m[at] ^= 1 << rng.below(8);
            corpus.push(m);
        }
        // The length field of the last option (which ends the message) pushed past the end.
        let last = last_option_offset(valid);
        for _ in 0..25 {
            let mut m = valid.to_vec();
            let len = u16::from_be_bytes([m[last + 2], m[last + 3]]);
            let longer = len.saturating_add(1 + u16::from(rng.byte()));
            m[last + 2..last + 4].copy_from_slice(&longer.to_be_bytes());
            corpus.push(m);
        }
    }
    let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x33);
    for inner in [solicit, request] {
        corpus.push(burst::nested_relay(inner, MAX_RELAY_DEPTH + 1, peer).expect("relay"));
        corpus.push(burst::nested_relay(inner, MAX_RELAY_DEPTH + 8, peer).expect("relay"));
    }
    // 65000 bytes: a SOLICIT header and one option claiming more than the rest.
    let mut huge = rng.bytes(65_000);
    huge[..8].copy_from_slice(&[1, 0x12, 0x34, 0x56, 0x7f, 0xf0, 0xff, 0xff]);
    corpus.push(huge);
    corpus.push(Vec::new());
    for t in 0..=u8::MAX {
        let len = rng.below(120);
        let mut m = vec![t];
        m.extend(rng.bytes(len));
        corpus.push(m);
    }
    corpus
}

/// Offset of the last top-level option of a client message.
fn last_option_offset(msg: &[u8]) -> usize {
    let mut at = 4;
    let mut last = 4;
    for (_, data) in burst::tlv_options(&msg[4..]).expect("valid message") {
        last = at;
        at += 4 + data.len();
    }
    last
}

#[test]
fn netns_run_survives_malformed_flood_and_keeps_serving() {
    require_privileges!();
    let seed = burst::time_seed();
    eprintln!("seed {seed:#x}");
    let mut rng = XorShift::new(seed);
    let setup = Setup::new("tdmf");
    let mut server = setup.start();
    let lost_before = burst::kernel_rx_losses(setup.lab.server_ns()).expect("snmp6");
    let mut sock = CountingSocket::bind(setup.lab.client_ns()).expect("socket");
    let multicast = setup.multicast();
    let unicast = SocketAddrV6::new(setup.lab.server_addr(), SERVER_PORT, 0, 0);
    let mut next_xid = 0x10_0000u32;
    let mut xid = || {
        next_xid += 2;
        next_xid
    };

    // Client 0 first: a valid SOLICIT and REQUEST (with the server's DUID) to mutate.
    let mut granted = vec![];
    let duid0 = burst::client_duid(0);
    let (sid, lease0) = full_exchange(
        &mut sock,
        multicast,
        &duid0,
        xid(),
        &setup.pools,
        FLOOD_PATIENCE,
    )
    .unwrap_or_else(|e| panic!("client 0: {e}\nlog:\n{}", server.log()));
    granted.push((duid0.clone(), lease0));
    let solicit = burst::client_message(
        MessageType::SOLICIT,
        0x0a_bcde,
        &duid0,
        None,
        Lease::default(),
    )
    .expect("solicit");
    let request =
        burst::client_message(MessageType::REQUEST, 0x0b_cdef, &duid0, Some(&sid), lease0)
            .expect("request");
    let corpus = malformed_corpus(&mut rng, &solicit, &request);
    let must_drop = corpus.iter().filter(|m| burst::must_drop(m)).count();
    assert!(
        corpus.len() >= 1000 && must_drop >= 900,
        "{}/{must_drop}",
        corpus.len()
    );

    // The flood: each datagram to ff02::1:2 and to the unicast address; after every 100
    // datagrams a valid client exchange (clients 1..=10), then INFORMATION-REQUEST pings, so
    // the server's receive queue never holds more than ~100 datagrams.
    let malformed_sent = 2 * corpus.len();
    let syncs = (malformed_sent / 100).max(1);
    let mut client = 1u32;
    let mut sent_since_sync = 0;
    for (i, m) in corpus.iter().enumerate() {
        for dest in [multicast, unicast] {
            sock.send(m, dest)
                .unwrap_or_else(|e| panic!("sending datagram {i} ({} bytes): {e}", m.len()));
            sent_since_sync += 1;
        }
        if sent_since_sync >= 100 || i + 1 == corpus.len() {
            sent_since_sync = 0;
            let due = client <= 10 && (i + 1 == corpus.len() || rng.below(syncs) < 12);
            if due {
                let duid = burst::client_duid(client);
                let (got_sid, lease) = full_exchange(
                    &mut sock,
                    multicast,
                    &duid,
                    xid(),
                    &setup.pools,
                    FLOOD_PATIENCE,
                )
                .unwrap_or_else(|e| {
                    panic!(
                        "client {client} during the flood: {e}\nlog:\n{}",
                        server.log()
                    )
                });
                assert_eq!(got_sid, sid, "server DUID");
                granted.push((duid, lease));
                client += 1;
            } else {
                let x = xid();
                let ping = tandem_hwtest::client::information_request(Some(&duid0), x)
                    .expect("information-request");
                let answer = sock
                    .transact(
                        &ping,
                        x,
                        multicast,
                        FLOOD_PATIENCE.timeout,
                        FLOOD_PATIENCE.attempts,
                    )
                    .expect("ping");
                checked(answer, MessageType::REPLY, x, &duid0, Some(&sid))
                    .unwrap_or_else(|e| panic!("ping after datagram {i}: {e}"));
            }
        }
    }
    // Clients not yet served during the flood (the schedule is random) go now.
    while client <= 10 {
        let duid = burst::client_duid(client);
        let (_, lease) = full_exchange(
            &mut sock,
            multicast,
            &duid,
            xid(),
            &setup.pools,
            FLOOD_PATIENCE,
        )
        .unwrap_or_else(|e| panic!("client {client}: {e}"));
        granted.push((duid, lease));
        client += 1;
    }

    assert!(
        server.running().expect("try_wait"),
        "server died:\n{}",
        server.log()
    );
    // A new client after the flood: ADVERTISE, then REPLY with a pool address.
    let duid = burst::client_duid(11);
    let (_, lease) = full_exchange(
        &mut sock,
        multicast,
        &duid,
        xid(),
        &setup.pools,
        FLOOD_PATIENCE,
    )
    .unwrap_or_else(|e| panic!("client after the flood: {e}\nlog:\n{}", server.log()));
    granted.push((duid, lease));
    let distinct: HashSet<_> = granted.iter().map(|(_, l)| l.address).collect();
    assert_eq!(
        distinct.len(),
        granted.len(),
        "an address granted twice: {granted:?}"
    );
    let rows = setup.leases();
    for (duid, lease) in &granted {
        assert!(
            rows.iter().any(|r| r.duid == *duid
                && r.state == "active"
                && r.address == lease.address
                && r.kind == "na"),
            "no active row for {duid:02x?} {lease:?}"
        );
    }

    let lost = burst::kernel_rx_losses(setup.lab.server_ns()).expect("snmp6") - lost_before;
    let sent = sock.sent();
    let stdout = server.stop().expect("stop");
    let line = stdout
        .iter()
        .find(|l| l.starts_with("COUNTERS"))
        .unwrap_or_else(|| panic!("no COUNTERS line in {stdout:?}"));
    let fields = burst::counter_fields(line);
    let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
        fields.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum()
    };
    let drops = sum(&|k| k.starts_with("drop_"));
    let answered = sum(&|k| k == "tx_advertise" || k == "tx_reply");
    let must_drop_sent = 2 * u64::try_from(must_drop).expect("count");
    eprintln!(
        "sent {sent} datagrams ({malformed_sent} malformed, {must_drop_sent} must be dropped); \
         server: {drops} dropped, {answered} answered; kernel lost {lost}\n{line}"
    );
    // Every datagram that reached the socket was either answered or dropped and counted.
    assert_eq!(
        drops + answered,
        sent - lost,
        "datagrams unaccounted for: {line}"
    );
    // Everything that had to be dropped was (less whatever the kernel lost before the server).
    assert!(
        drops >= must_drop_sent.saturating_sub(lost),
        "{drops} drops < {must_drop_sent} datagrams that must be dropped: {line}"
    );
    assert!(
        lost * 20 <= sent,
        "the kernel lost {lost} of {sent} datagrams"
    );
}

// ---- kill -9 during a burst ------------------------------------------------------------------

/// Clients in the burst (distinct DUIDs).
const BURST_CLIENTS: u32 = 400;
/// New clients queued per cycle.
const NEW_PER_CYCLE: u32 = 150;
/// Kill/restart cycles before the final one.
const KILLS: usize = 3;
/// Worker threads (each a socket) sending for the clients.
const WORKERS: usize = 4;
/// Burst clients: short timeouts (they run into the killed server), several at a time.
const BURST_PATIENCE: Patience = Patience {
    timeout: Duration::from_millis(250),
    attempts: 2,
    hint_kept: false,
};

#[derive(Clone, Copy, Debug)]
enum Job {
    /// SOLICIT → REQUEST for a client without a lease (as far as we know).
    New(u32),
    /// A client with a lease asks for it again (REQUEST or RENEW with the lease in its IAs).
    Again(u32, Lease, MessageType),
}

/// State shared by the burst workers and the test.
#[derive(Default)]
struct Burst {
    queue: Mutex<VecDeque<Job>>,
    stop: AtomicBool,
    new_grants: AtomicUsize,
    next_xid: AtomicU32,
    /// Client index → the lease a REPLY granted it.
    grants: Mutex<HashMap<u32, Lease>>,
    /// Clients whose lease came back unchanged in this cycle.
    kept: Mutex<HashSet<u32>>,
    server_id: Mutex<Option<Vec<u8>>>,
    violations: Mutex<Vec<String>>,
}

impl Burst {
    fn violation(&self, v: String) {
        self.violations.lock().expect("lock").push(v);
    }

    fn requeue(&self, job: Job) {
        self.queue.lock().expect("lock").push_back(job);
    }

    /// Records a grant; an address or prefix already granted to another client is a violation.
    fn grant(&self, client: u32, lease: Lease) {
        let mut grants = self.grants.lock().expect("lock");
        for (&other, l) in grants.iter() {
            if other != client && (l.address == lease.address || l.prefix == lease.prefix) {
                self.violation(format!(
                    "client {client} granted {lease:?}, overlapping client {other}'s {l:?}"
                ));
            }
        }
        if let Some(old) = grants.insert(client, lease)
            && old != lease
        {
            self.violation(format!(
                "client {client} had {old:?}, now granted {lease:?}"
            ));
        }
    }

    fn run_job(&self, sock: &mut CountingSocket, dest: SocketAddrV6, pools: &Pools, job: Job) {
        let xid = self.next_xid.fetch_add(2, Ordering::Relaxed) & 0xff_fffe;
        let sid = self.server_id.lock().expect("lock").clone();
        match job {
            Job::New(i) => {
                let duid = burst::client_duid(i);
                match full_exchange(sock, dest, &duid, xid, pools, BURST_PATIENCE) {
                    Ok((got_sid, lease)) => {
                        let mut known = self.server_id.lock().expect("lock");
                        match known.as_ref() {
                            Some(s) if *s != got_sid => {
                                self.violation(format!("server DUID changed to {got_sid:02x?}"))
                            }
                            Some(_) => {}
                            None => *known = Some(got_sid),
                        }
                        drop(known);
                        self.grant(i, lease);
                        self.new_grants.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) if e.starts_with(TIMEOUT) => self.requeue(job),
                    Err(e) => self.violation(format!("client {i}: {e}")),
                }
            }
            Job::Again(i, lease, msg_type) => {
                let duid = burst::client_duid(i);
                let msg = burst::client_message(msg_type, xid, &duid, sid.as_deref(), lease)
                    .expect("message");
                let answer = match sock.transact(
                    &msg,
                    xid,
                    dest,
                    BURST_PATIENCE.timeout,
                    BURST_PATIENCE.attempts,
                ) {
                    Ok(a) => a,
                    Err(e) => return self.violation(format!("client {i}: {e}")),
                };
                match checked(answer, MessageType::REPLY, xid, &duid, sid.as_deref()) {
                    Ok(a) if a.lease == lease => {
                        self.kept.lock().expect("lock").insert(i);
                    }
                    Ok(a) => self.violation(format!(
                        "client {i} asked again ({msg_type:?}) for {lease:?}, got {a:?}"
                    )),
                    Err(e) if e.starts_with(TIMEOUT) => self.requeue(job),
                    Err(e) => self.violation(format!("client {i} ({msg_type:?}): {e}")),
                }
            }
        }
    }
}

/// Every lease granted is active in the table under its client's DUID, and no address or
/// prefix is active for two client bindings ([`clients::held_twice`]).
fn check_table(rows: &[LeaseRow], grants: &HashMap<u32, Lease>, when: &str) {
    let twice = clients::held_twice(rows);
    assert!(twice.is_empty(), "{when}: {twice:#?}");
    let active: Vec<&LeaseRow> = rows.iter().filter(|r| r.state == "active").collect();
    let mut missing = vec![];
    for (&i, lease) in grants {
        let duid = burst::client_duid(i);
        let has = |kind: &str, pred: &dyn Fn(&LeaseRow) -> bool| {
            active
                .iter()
                .any(|r| r.kind == kind && r.duid == duid && pred(r))
        };
        if !has("na", &|r| {
            r.address == lease.address && r.iaid == burst::NA_IAID
        }) || !has("pd", &|r| {
            r.prefix == lease.prefix && r.iaid == burst::PD_IAID
        }) {
            missing.push((i, *lease));
        }
    }
    assert!(
        missing.is_empty(),
        "{when}: {} granted leases missing from the table (of {}): {:?}",
        missing.len(),
        grants.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn netns_run_kill9_during_burst_loses_no_lease_and_never_double_assigns() {
    require_privileges!();
    let seed = burst::time_seed();
    eprintln!("seed {seed:#x}");
    let mut rng = XorShift::new(seed);
    let setup = Setup::new("tdk9");
    let dest = setup.multicast();
    let started = Instant::now();
    let shared = Arc::new(Burst::default());
    let mut next_new = 0u32;
    for cycle in 0..=KILLS {
        let mut server = Some(setup.start());
        let grants_before: HashMap<u32, Lease> = shared.grants.lock().expect("lock").clone();
        check_table(
            &setup.leases(),
            &grants_before,
            &format!("after restart {cycle}"),
        );
        // The queue: every client with a lease asks for it again (REQUEST or RENEW), mixed
        // with new clients (those not granted yet, up to NEW_PER_CYCLE more).
        let mut again: Vec<Job> = grants_before
            .iter()
            .map(|(&i, &l)| {
                let t = if (usize::try_from(i).expect("index") + cycle).is_multiple_of(2) {
                    MessageType::REQUEST
                } else {
                    MessageType::RENEW
                };
                Job::Again(i, l, t)
            })
            .collect();
        let final_cycle = cycle == KILLS;
        let limit = if final_cycle {
            BURST_CLIENTS
        } else {
            (next_new + NEW_PER_CYCLE).min(BURST_CLIENTS)
        };
        let mut fresh: Vec<Job> = (0..limit)
            .filter(|i| !grants_before.contains_key(i))
            .map(Job::New)
            .collect();
        next_new = limit;
        {
            let mut q = shared.queue.lock().expect("lock");
            q.clear();
            while !again.is_empty() || !fresh.is_empty() {
                q.extend(again.pop());
                q.extend(fresh.pop());
            }
        }
        shared.kept.lock().expect("lock").clear();
        shared.new_grants.store(0, Ordering::SeqCst);
        shared.stop.store(false, Ordering::SeqCst);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let shared = Arc::clone(&shared);
                let pools = setup.pools;
                let mut sock = CountingSocket::bind(setup.lab.client_ns()).expect("socket");
                thread::spawn(move || {
                    while !shared.stop.load(Ordering::SeqCst) {
                        let Some(job) = shared.queue.lock().expect("lock").pop_front() else {
                            break;
                        };
                        shared.run_job(&mut sock, dest, &pools, job);
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(if final_cycle { 30 } else { 15 });
        if final_cycle {
            while workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            shared.stop.store(true, Ordering::SeqCst);
        } else {
            let threshold = 50 + rng.below(60);
            while shared.new_grants.load(Ordering::SeqCst) < threshold && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(1));
            }
            let pending = shared.queue.lock().expect("lock").len();
            let granted = shared.new_grants.load(Ordering::SeqCst);
            // The kill lands while the workers are mid-exchange.
            server.take().expect("server").kill9().expect("kill -9");
            shared.stop.store(true, Ordering::SeqCst);
            eprintln!(
                "cycle {cycle}: SIGKILL after {granted} new grants ({:?}), {pending} jobs pending",
                started.elapsed()
            );
            assert!(
                granted >= threshold,
                "only {granted} grants before the deadline"
            );
            assert!(pending > 0, "the burst was over before the kill");
        }
        for w in workers {
            w.join().expect("worker");
        }
        let violations = shared.violations.lock().expect("lock").clone();
        assert!(
            violations.is_empty(),
            "cycle {cycle}: {} violations, first: {:#?}\nlog tail:\n{}",
            violations.len(),
            &violations[..violations.len().min(10)],
            tail(&setup, 40)
        );
        let grants: HashMap<u32, Lease> = shared.grants.lock().expect("lock").clone();
        // Straight from the files the killed (or stopped) server left behind.
        if final_cycle {
            let kept = shared.kept.lock().expect("lock").clone();
            let lost: Vec<u32> = grants_before
                .keys()
                .filter(|i| !kept.contains(i))
                .copied()
                .collect();
            assert!(
                lost.is_empty(),
                "clients that did not get their lease back: {lost:?}"
            );
            assert_eq!(
                shared.queue.lock().expect("lock").len(),
                0,
                "burst unfinished"
            );
            assert_eq!(
                grants.len(),
                BURST_CLIENTS as usize,
                "every client got a lease"
            );
            let stdout = server.take().expect("server").stop().expect("stop");
            eprintln!("final: {} leases; {:?}", grants.len(), stdout.last());
        }
        check_table(&setup.leases(), &grants, &format!("after cycle {cycle}"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}

/// The last `n` lines of the server log.
fn tail(setup: &Setup, n: usize) -> String {
    let log = std::fs::read_to_string(&setup.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
