//! A deterministic simulator: two endpoints (primary and secondary), a virtual clock, a virtual
//! TCP link that delays, drops connections and partitions, crashes and restarts of either side
//! (losing every record not confirmed durable), wiped storage, clock skew, slow disks and
//! operator commands, all from a seeded RNG. Invariants are checked after every step; every
//! run ends with a healed link and must end, and stay, in NORMAL.
//!
//! `SIM_SEEDS=n` runs n seeds instead of the default; `SIM_SEED=s` runs one, with its log.

use std::collections::VecDeque;
use std::fmt::Write as _;

use tandem_failover::machine::{serving_policy, startup_previous_state};
use tandem_failover::{
    Config, Endpoint, Event, Now, Operator, Persisted, Role, StateName, Transmit,
};
use tandem_lease::{AddressShare, PrefixShare, Responsiveness};
use tandem_wire::dhcp::MessageType;
use tandem_wire::failover::option::ServerFlags;
use tandem_wire::failover::{Failover, FailoverTime};

use StateName::*;

const WALL0: u64 = 830_000_000;
const NAME: &str = "sim";

/// splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough to pick chaos.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// `true` with probability `pct` %.
    fn pct(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

/// Why a side may be in PARTNER-DOWN: only the operator (or configuration standing in for
/// the operator: auto-partner-down, the first-start option) ever sends a server there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PdCause {
    Operator,
    Auto,
    FirstStart,
}

#[derive(Debug)]
struct Node {
    role: Role,
    config: Config,
    ep: Option<Endpoint>,
    /// When a crashed node comes back.
    restart_at: Option<u64>,
    /// The last record confirmed durable.
    durable: Option<Persisted>,
    /// Every (state, start) ever confirmed durable on this node's storage.
    durable_history: Vec<(StateName, FailoverTime)>,
    /// A record being written: confirmed at the given time.
    writing: Option<(Persisted, u64)>,
    /// How long a write takes now (ms).
    disk_ms: u64,
    /// Our wall clock minus true time, seconds.
    skew_s: i64,
    /// The connection this side's endpoint is on.
    conn: Option<u64>,
    /// A close to report at the given time, for connection `id`.
    closed_at: Option<(u64, u64)>,
    pd_cause: Option<PdCause>,
    /// Why it last entered PARTNER-DOWN (a restart from a PARTNER-DOWN record inherits it).
    last_pd_cause: Option<PdCause>,
    /// The startup of this endpoint had no persisted record.
    fresh: bool,
    states_seen: Vec<StateName>,
}

#[derive(Debug)]
struct Wire {
    id: u64,
    /// Frames in flight, by destination side: (deliver at, frame body).
    queue: [VecDeque<(u64, Vec<u8>)>; 2],
}

#[derive(Debug, Default)]
struct Stats {
    steps: u64,
    frames: u64,
    transitions: u64,
    crashes: u64,
    partitions: u64,
    operator_pd: u64,
    connections: u64,
}

struct Sim {
    seed: u64,
    rng: SplitMix,
    t: u64,
    nodes: [Node; 2],
    wire: Option<Wire>,
    next_wire: u64,
    partitioned: bool,
    partition_ends: Option<u64>,
    next_connect: u64,
    delay_ms: (u64, u64),
    chaos: bool,
    next_chaos: u64,
    log: Vec<String>,
    verbose: bool,
    stats: Stats,
    stalls: u64,
}

const P: usize = 0;
const S: usize = 1;

fn other(side: usize) -> usize {
    1 - side
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Self {
        let mut rng = SplitMix(seed);
        let mclt = rng.range(30, 120) as u32;
        let mut configs = [Role::Primary, Role::Secondary].map(|role| {
            let mut c = Config::new(role, NAME);
            c.mclt = mclt;
            c.keepalive = rng.range(8, 30) as u32;
            c.startup_secs = rng.range(5, 20) as u32;
            c.heartbeat = rng.range(10, 60) as u32;
            c.update_timeout = 60;
            c.max_unacked_bndupd = rng.range(1, 100) as u32;
            c
        });
        // The secondary's own MCLT does not matter: it adopts the primary's (§6.1.2).
        if rng.pct(30) {
            configs[S].mclt = rng.range(30, 300) as u32;
        }
        // Auto-partner-down on at most one side; the first-start option on the other.
        if rng.pct(25) {
            let side = (rng.next() % 2) as usize;
            configs[side].auto_partner_down = Some(rng.range(20, 200) as u32);
            if rng.pct(50) {
                configs[other(side)].first_start_partner_down = true;
            }
        }
        let fresh = rng.pct(50);
        let nodes = configs.map(|config| Node {
            role: config.role,
            config,
            ep: None,
            restart_at: Some(0),
            durable: None,
            durable_history: Vec::new(),
            writing: None,
            disk_ms: 0,
            skew_s: 0,
            conn: None,
            closed_at: None,
            pd_cause: None,
            last_pd_cause: None,
            fresh: true,
            states_seen: Vec::new(),
        });
        let mut sim = Self {
            seed,
            rng,
            t: 0,
            nodes,
            wire: None,
            next_wire: 1,
            partitioned: false,
            partition_ends: None,
            next_connect: 0,
            delay_ms: (1, 50),
            chaos: true,
            next_chaos: 0,
            log: Vec::new(),
            verbose,
            stats: Stats::default(),
            stalls: 0,
        };
        if !fresh {
            // An established pair: both remember NORMAL.
            for side in [P, S] {
                let p = Persisted {
                    state: Normal,
                    state_since: FailoverTime((WALL0 - 1000) as u32),
                    previous: Some(CommunicationsInterrupted),
                    partner: None,
                    last_contact: None,
                    communicated: true,
                    resync_all: false,
                    mclt,
                    operating_until: FailoverTime((WALL0 - 30) as u32),
                };
                sim.nodes[side].durable = Some(p);
                sim.nodes[side]
                    .durable_history
                    .push((p.state, p.state_since));
            }
        }
        sim
    }

    fn now(&self, side: usize) -> Now {
        let wall = WALL0 as i64 + (self.t / 1000) as i64 + self.nodes[side].skew_s;
        Now {
            mono_ms: self.t,
            wall: FailoverTime(wall as u32),
        }
    }

    fn note(&mut self, msg: impl FnOnce() -> String) {
        let line = format!("[{:>9}] {}", self.t, msg());
        if self.verbose {
            eprintln!("{line}");
        }
        self.log.push(line);
        if self.log.len() > 400 {
            self.log.drain(..200);
        }
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let mut s = String::new();
        for l in &self.log {
            let _ = writeln!(s, "{l}");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = writeln!(
                s,
                "node {i}: {:?} skew {} conn {:?} durable {:?}",
                n.ep.as_ref().map(|e| e.status()),
                n.skew_s,
                n.conn,
                n.durable
            );
        }
        panic!("seed {}: t={} ms: {what}\n{s}", self.seed, self.t);
    }

    fn state(&self, side: usize) -> Option<StateName> {
        self.nodes[side].ep.as_ref().map(|e| e.state().name())
    }

    // ------------------------------------------------------------------------------------
    // Driving one endpoint (the documented call order).

    fn drive(&mut self, side: usize) {
        loop {
            let n = &mut self.nodes[side];
            let Some(ep) = n.ep.as_mut() else { return };
            if n.writing.is_none()
                && let Some(rec) = ep.poll_persist()
            {
                if n.disk_ms == 0 {
                    self.persisted(side, rec);
                } else {
                    n.writing = Some((rec, self.t + n.disk_ms));
                }
                continue;
            }
            match ep.poll_transmit() {
                Some(tx) => self.transmit(side, tx),
                None => break,
            }
        }
        let mut again = false;
        while let Some(e) = self.nodes[side].ep.as_mut().and_then(Endpoint::poll_event) {
            if let Event::UpdateRequested { .. } = e {
                // The simulated servers hold no bindings: every update asked for (none) is
                // sent; UPDDONE follows once nothing is outstanding (§8.5.2).
                let now = self.now(side);
                if let Some(ep) = self.nodes[side].ep.as_mut() {
                    ep.update_stream_complete(now);
                }
                again = true;
            }
            self.event(side, e);
        }
        if again {
            self.drive(side);
        }
    }

    fn persisted(&mut self, side: usize, rec: Persisted) {
        let n = &mut self.nodes[side];
        n.durable = Some(rec);
        if n.durable_history.last() != Some(&(rec.state, rec.state_since)) {
            n.durable_history.push((rec.state, rec.state_since));
        }
        if let Some(ep) = n.ep.as_mut() {
            ep.handle_persisted();
        }
    }

    fn transmit(&mut self, side: usize, tx: Transmit) {
        match tx {
            Transmit::Frame(bytes) => {
                self.stats.frames += 1;
                self.check_state_is_durable(side, &bytes);
                let Some(w) = self.wire.as_mut() else { return };
                if self.nodes[side].conn != Some(w.id) {
                    return;
                }
                let lo = self.t + self.rng.range(self.delay_ms.0, self.delay_ms.1);
                let q = &mut w.queue[other(side)];
                let at = q.back().map_or(lo, |(b, _)| (*b).max(lo));
                q.push_back((at, bytes[2..].to_vec()));
            }
            Transmit::Close { reason } => {
                self.note(|| format!("{side}: closes ({reason:?})"));
                self.nodes[side].conn = None;
                self.close_wire_from(side);
            }
        }
    }

    /// `side` closed its end: the other side hears of it after a delay (FIN), or, while
    /// partitioned, when the partition heals (RST on its next send).
    fn close_wire_from(&mut self, side: usize) {
        let Some(w) = self.wire.take() else { return };
        let o = other(side);
        if self.nodes[o].conn == Some(w.id) {
            let at = if self.partitioned {
                self.partition_ends.unwrap_or(self.t) + 10
            } else {
                self.t + self.rng.range(self.delay_ms.0, self.delay_ms.1)
            };
            self.nodes[o].closed_at = Some((at, w.id));
        }
    }

    fn event(&mut self, side: usize, e: Event) {
        match e {
            Event::StateChanged { from, to } => {
                self.stats.transitions += 1;
                self.note(|| format!("{side}: {from:?} → {to:?}"));
                self.nodes[side].states_seen.push(to);
                if to == PartnerDown {
                    let n = &self.nodes[side];
                    let cause = match from {
                        CommunicationsInterrupted if n.config.auto_partner_down.is_some() => {
                            // Operator entries are recorded before the command runs.
                            n.pd_cause.or(Some(PdCause::Auto))
                        }
                        Startup if n.fresh && n.config.first_start_partner_down => {
                            Some(PdCause::FirstStart)
                        }
                        // Restarted in PARTNER-DOWN from its own record: the cause of the
                        // entry that record captured holds.
                        Startup if n.durable.is_some_and(|d| d.state == PartnerDown) => {
                            n.pd_cause.or(n.last_pd_cause)
                        }
                        _ => n.pd_cause,
                    };
                    if cause.is_none() {
                        self.fail(&format!(
                            "{side} entered PARTNER-DOWN from {from:?} unforced"
                        ));
                    }
                    self.nodes[side].pd_cause = cause;
                    self.nodes[side].last_pd_cause = cause;
                } else if to != Startup {
                    self.nodes[side].pd_cause = None;
                }
            }
            Event::PeerMisbehaved(m) => self.fail(&format!(
                "{side}: honest partner flagged as misbehaving: {m:?}"
            )),
            Event::LinkDown(r) => self.note(|| format!("{side}: link down {r:?}")),
            Event::LinkUp => self.note(|| format!("{side}: communications OK")),
            _ => {}
        }
    }

    /// Invariant: the durable record is at least as new as any STATE sent (§6.3, §8.1).
    fn check_state_is_durable(&self, side: usize, bytes: &[u8]) {
        let Ok((_, Failover::State(s))) = Failover::parse_bytes(&bytes[2..]) else {
            return;
        };
        let Some(name) = StateName::from_code(s.server_state) else {
            self.fail("STATE with an invalid state")
        };
        let since = s.start_time_of_state.0;
        let h = &self.nodes[side].durable_history;
        let ok = if s.server_flags.contains(ServerFlags::STARTUP) {
            // §8.3.1: the previously recorded state (after step 2), or RECOVER with no record.
            // A first start has nothing recorded: RECOVER is the default (§8.3.2 step 1).
            h.iter()
                .any(|(st, t)| startup_previous_state(*st) == name && *t == since)
                || (self.nodes[side].fresh && name == Recover)
        } else {
            // At least as new: the announced state itself, or a later one (several changes
            // between two writes give one record, the latest).
            h.contains(&(name, since))
                || self.nodes[side]
                    .durable
                    .is_some_and(|d| d.state_since.cmp_wrapping(since).is_ge())
        };
        if !ok {
            self.fail(&format!(
                "{side} announced {name:?} since {since:?}, not durable: {h:?}"
            ));
        }
    }

    // ------------------------------------------------------------------------------------
    // The world.

    fn crash(&mut self, side: usize, down_ms: u64, wipe: bool) {
        self.stats.crashes += 1;
        self.note(|| format!("{side}: CRASH for {down_ms} ms, wipe {wipe}"));
        let n = &mut self.nodes[side];
        n.ep = None;
        n.writing = None; // a write in flight is lost
        n.restart_at = Some(self.t + down_ms);
        n.conn = None;
        n.closed_at = None;
        if wipe {
            n.durable = None;
            n.durable_history.clear();
            n.last_pd_cause = None;
        }
        // The OS closes the socket (FIN) half of the time; otherwise (power loss) nothing.
        if self.rng.pct(50) {
            self.close_wire_from(side);
        } else {
            self.wire = None;
        }
    }

    fn restart(&mut self, side: usize) {
        let now = self.now(side);
        let n = &mut self.nodes[side];
        n.restart_at = None;
        n.fresh = n.durable.is_none();
        n.conn = None;
        let ep = Endpoint::new(n.config.clone(), n.durable, now).expect("valid sim config");
        n.ep = Some(ep);
        let fresh = self.nodes[side].fresh;
        self.note(|| format!("{side}: start (fresh: {fresh})"));
        self.drive(side);
    }

    fn connect(&mut self) {
        let id = self.next_wire;
        self.next_wire += 1;
        self.stats.connections += 1;
        self.note(|| format!("connection {id}"));
        self.wire = Some(Wire {
            id,
            queue: [VecDeque::new(), VecDeque::new()],
        });
        for side in [S, P] {
            self.nodes[side].conn = Some(id);
            self.nodes[side].closed_at = None;
            let now = self.now(side);
            if let Some(ep) = self.nodes[side].ep.as_mut() {
                ep.handle_connected(now);
            }
            self.drive(side);
        }
    }

    fn chaos_op(&mut self) {
        let r = self.rng.next() % 100;
        match r {
            0..=14 => {
                if !self.partitioned {
                    let dur = self.rng.range(1_000, 300_000);
                    self.stats.partitions += 1;
                    self.note(|| format!("PARTITION for {dur} ms"));
                    self.partitioned = true;
                    self.partition_ends = Some(self.t + dur);
                }
            }
            15..=24 => {
                // Drop the connection: both ends see it closed.
                if let Some(w) = self.wire.take() {
                    self.note(|| format!("DROP connection {}", w.id));
                    for side in [P, S] {
                        if self.nodes[side].conn == Some(w.id) {
                            let at = self.t + self.rng.range(1, 200);
                            self.nodes[side].closed_at = Some((at, w.id));
                        }
                    }
                }
            }
            25..=39 => {
                let side = (self.rng.next() % 2) as usize;
                if self.nodes[side].ep.is_some() {
                    let down = self.rng.range(100, 120_000);
                    let wipe = self.rng.pct(10);
                    self.crash(side, down, wipe);
                }
            }
            40..=44 => {
                // Graceful restart: DISCONNECT ServerShuttingDown, then start again.
                let side = (self.rng.next() % 2) as usize;
                let now = self.now(side);
                if self.nodes[side].ep.is_some() {
                    self.note(|| format!("{side}: SHUTDOWN"));
                    if let Some(ep) = self.nodes[side].ep.as_mut() {
                        let _ = ep.handle_operator(now, Operator::Shutdown);
                    }
                    self.drive(side);
                    // The driver waits for the last write before exiting.
                    if let Some((rec, _)) = self.nodes[side].writing.take() {
                        self.persisted(side, rec);
                    }
                    self.drive(side);
                    let n = &mut self.nodes[side];
                    n.ep = None;
                    n.conn = None;
                    n.restart_at = Some(self.t + self.rng.range(100, 30_000));
                }
            }
            45..=59 => {
                let side = (self.rng.next() % 2) as usize;
                let skew = if self.rng.pct(15) {
                    self.rng.range(0, 20) as i64 - 10
                } else {
                    self.rng.range(0, 4) as i64 - 2
                };
                self.note(|| format!("{side}: skew {skew} s"));
                self.nodes[side].skew_s = skew;
            }
            60..=69 => {
                let side = (self.rng.next() % 2) as usize;
                let now = self.now(side);
                if let Some(ep) = self.nodes[side].ep.as_mut() {
                    let before = self.nodes[side].pd_cause;
                    self.nodes[side].pd_cause = Some(PdCause::Operator);
                    let r = ep.handle_operator(now, Operator::PartnerDown);
                    self.note(|| format!("{side}: OPERATOR PARTNER-DOWN → {r:?}"));
                    if r.is_ok() {
                        self.stats.operator_pd += 1;
                    } else {
                        self.nodes[side].pd_cause = before;
                    }
                    self.drive(side);
                }
            }
            70..=79 => {
                let side = (self.rng.next() % 2) as usize;
                self.nodes[side].disk_ms = if self.rng.pct(50) {
                    0
                } else {
                    self.rng.range(1, 800)
                };
            }
            _ => {
                self.delay_ms = (1, self.rng.range(1, 1000));
            }
        }
    }

    /// The next time anything happens.
    fn next_time(&self) -> u64 {
        let mut t = u64::MAX;
        for n in &self.nodes {
            if let Some(x) = n.ep.as_ref().and_then(Endpoint::poll_timeout) {
                t = t.min(x);
            }
            if let Some(x) = n.restart_at {
                t = t.min(x);
            }
            if let Some((_, x)) = n.writing {
                t = t.min(x);
            }
            if let Some((x, _)) = n.closed_at {
                t = t.min(x);
            }
        }
        if let Some(w) = &self.wire
            && !self.partitioned
        {
            for q in &w.queue {
                if let Some((x, _)) = q.front() {
                    t = t.min(*x);
                }
            }
        }
        if let Some(x) = self.partition_ends {
            t = t.min(x);
        }
        if self.wire.is_none() && self.nodes.iter().all(|n| n.ep.is_some()) {
            t = t.min(self.next_connect.max(self.t));
        }
        if self.chaos {
            t = t.min(self.next_chaos);
        }
        t.max(self.t)
    }

    fn step(&mut self) {
        self.stats.steps += 1;
        let t = self.next_time();
        if t == self.t {
            self.stalls += 1;
            if self.stalls > 10_000 {
                self.fail("the simulation does not advance (a timer that never fires?)");
            }
        } else {
            self.stalls = 0;
        }
        self.t = t;
        if self.partition_ends.is_some_and(|x| x <= t) {
            self.partition_ends = None;
            self.partitioned = false;
            self.note(|| "HEAL".into());
            // Frames held by TCP while partitioned flow again.
            if let Some(w) = self.wire.as_mut() {
                for q in &mut w.queue {
                    for (at, _) in q.iter_mut() {
                        *at = (*at).max(t);
                    }
                }
            }
        }
        for side in [P, S] {
            if self.nodes[side].restart_at.is_some_and(|x| x <= t) {
                self.restart(side);
            }
            if let Some((rec, at)) = self.nodes[side].writing
                && at <= t
            {
                self.nodes[side].writing = None;
                self.persisted(side, rec);
                self.drive(side);
            }
            if let Some((at, id)) = self.nodes[side].closed_at
                && at <= t
            {
                self.nodes[side].closed_at = None;
                if self.nodes[side].conn == Some(id) {
                    self.nodes[side].conn = None;
                    let now = self.now(side);
                    if let Some(ep) = self.nodes[side].ep.as_mut() {
                        ep.handle_closed(now);
                    }
                    self.drive(side);
                }
            }
        }
        // Deliveries.
        if !self.partitioned {
            for side in [P, S] {
                while let Some(w) = self.wire.as_mut() {
                    let id = w.id;
                    if w.queue[side].front().is_none_or(|(at, _)| *at > t) {
                        break;
                    }
                    let Some((_, bytes)) = w.queue[side].pop_front() else {
                        break;
                    };
                    if self.nodes[side].conn != Some(id) {
                        continue;
                    }
                    let now = self.now(side);
                    if let Some(ep) = self.nodes[side].ep.as_mut() {
                        ep.handle_message(now, &bytes);
                    }
                    self.drive(side);
                }
            }
        }
        // Timers.
        for side in [P, S] {
            let now = self.now(side);
            if let Some(ep) = self.nodes[side].ep.as_mut()
                && ep.poll_timeout().is_some_and(|x| x <= t)
            {
                ep.handle_timeout(now);
                self.drive(side);
            }
        }
        // The primary connects (§6.1) when both run, nothing is up, and the net lets it.
        if self.wire.is_none()
            && t >= self.next_connect
            && self.nodes.iter().all(|n| n.ep.is_some())
        {
            if self.partitioned {
                self.next_connect = t + 5_000;
            } else {
                self.next_connect = t + 5_000;
                self.connect();
            }
        }
        if self.chaos && t >= self.next_chaos {
            self.chaos_op();
            self.next_chaos = t + self.rng.range(500, 40_000);
        }
        self.check_invariants();
    }

    fn check_invariants(&self) {
        let eps: Vec<_> = self.nodes.iter().map(|n| n.ep.as_ref()).collect();
        for (side, ep) in eps.iter().enumerate() {
            let Some(ep) = ep else { continue };
            let n = &self.nodes[side];
            let st = ep.status();
            if ep.poll_timeout().is_none() {
                continue; // shut down, about to stop
            }
            // The policy is exactly the state's (§8) with the MCLT in use.
            if ep.policy() != serving_policy(n.role, st.state, ep.mclt()) {
                self.fail(&format!("{side}: policy does not match {:?}", st.state));
            }
            // MCLT cap everywhere but PARTNER-DOWN (§4.4, §8.4.1).
            if (ep.policy().mclt.is_none()) != (st.state == PartnerDown) {
                self.fail(&format!("{side}: MCLT cap wrong in {:?}", st.state));
            }
            // Allocation only from the role's own share (§4.2.1.1, §4.2.2, §8.9.1).
            let p = ep.policy();
            let own = match n.role {
                Role::Primary => (AddressShare::Odd, PrefixShare::Free),
                Role::Secondary => (AddressShare::Even, PrefixShare::FreeBackup),
            };
            if p.new_leases && (p.addresses, p.prefixes) != own {
                self.fail(&format!("{side}: allocates outside its share"));
            }
            if st.state == PartnerDown && n.pd_cause.is_none() {
                self.fail(&format!("{side}: PARTNER-DOWN without a cause"));
            }
        }
        let (Some(a), Some(b)) = (eps[P], eps[S]) else {
            return;
        };
        let (sa, sb) = (a.state().name(), b.state().name());
        // Never both PARTNER-DOWN unless the operator (or both sides' configuration) put them
        // there (§8.4 "the other server MUST NOT be operating").
        if sa == PartnerDown && sb == PartnerDown {
            let causes = (self.nodes[P].pd_cause, self.nodes[S].pd_cause);
            let forced = matches!(causes.0, Some(PdCause::Operator | PdCause::FirstStart))
                || matches!(causes.1, Some(PdCause::Operator | PdCause::FirstStart))
                || (self.nodes[P].config.auto_partner_down.is_some()
                    && self.nodes[S].config.auto_partner_down.is_some());
            if !forced {
                self.fail(&format!("both PARTNER-DOWN, causes {causes:?}"));
            }
        }
        // Both allocating: disjoint shares.
        let (pa, pb) = (a.policy(), b.policy());
        if pa.new_leases
            && pb.new_leases
            && (pa.addresses == pb.addresses || pa.prefixes == pb.prefixes)
        {
            self.fail("both allocate from the same share");
        }
        // Both NORMAL: only the primary allocates, the secondary is renew responsive (§8.8.1).
        if sa == Normal && sb == Normal {
            let ok = pa.responsiveness == Responsiveness::Responsive
                && pa.new_leases
                && pb.responsiveness == Responsiveness::RenewResponsive
                && !pb.new_leases;
            if !ok {
                self.fail("both NORMAL with the wrong roles");
            }
        }
        // Communications OK on both: the secondary uses the primary's MCLT (§6.1.2).
        if a.communications_ok() && b.communications_ok() && a.mclt() != b.mclt() {
            self.fail("MCLTs differ while communicating");
        }
    }

    /// Chaos for `chaos_ms`, then heal everything and require NORMAL on both within
    /// `settle_ms`, kept for `stable_ms`.
    fn run(&mut self, chaos_ms: u64, settle_ms: u64, stable_ms: u64) {
        while self.t < chaos_ms {
            self.step();
        }
        self.heal();
        // Let what the chaos left in flight play out (frames stamped by a skewed clock,
        // connections only one side knows are dead): two keepalive periods and a retry.
        let grace = self.t + 2 * 30_000 + 10_000;
        while self.t < grace {
            self.step();
        }
        let deadline = self.t + settle_ms;
        while !self.both_normal() {
            if self.t > deadline {
                self.fail("did not reach NORMAL after healing");
            }
            self.step();
        }
        let until = self.t + stable_ms;
        while self.t < until {
            self.step();
            if !self.both_normal() {
                self.fail("left NORMAL with a healthy link");
            }
        }
    }

    fn heal(&mut self) {
        self.note(|| "=== HEAL ALL ===".into());
        self.chaos = false;
        if self.partitioned {
            self.partition_ends = Some(self.t);
        }
        for side in [P, S] {
            // Clocks within 2 s of each other: with whole-second sent-times and link delay the
            // measured skew stays within the 5 s of §7.1.
            self.nodes[side].skew_s = self.nodes[side].skew_s.clamp(-1, 1);
            if self.nodes[side].ep.is_none() && self.nodes[side].restart_at.is_none() {
                self.nodes[side].restart_at = Some(self.t);
            }
        }
        self.delay_ms = (1, 50);
    }

    fn both_normal(&self) -> bool {
        [P, S].iter().all(|&s| {
            self.state(s) == Some(Normal)
                && self.nodes[s]
                    .ep
                    .as_ref()
                    .is_some_and(Endpoint::communications_ok)
        })
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().expect("SIM_SEED is a number")];
    }
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    (0..n).collect()
}

#[test]
fn sim_random_chaos_always_heals_to_normal() {
    let verbose = std::env::var("SIM_SEED").is_ok();
    #[expect(
        clippy::disallowed_methods,
        reason = "the test reports its own run time; no endpoint ever sees this clock"
    )]
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let seeds = seeds();
    for &seed in &seeds {
        let mut sim = Sim::new(seed, verbose);
        sim.run(15 * 60_000, 30 * 60_000, 5 * 60_000);
        let s = &sim.stats;
        total.steps += s.steps;
        total.frames += s.frames;
        total.transitions += s.transitions;
        total.crashes += s.crashes;
        total.partitions += s.partitions;
        total.operator_pd += s.operator_pd;
        total.connections += s.connections;
    }
    eprintln!(
        "sim: {} seeds, {:?} in {:.1?}",
        seeds.len(),
        total,
        started.elapsed()
    );
    assert!(
        total.transitions > seeds.len() as u64,
        "the chaos moves the states"
    );
}

// ------------------------------------------------------------------------------------------
// Scripted paths through the same simulator: each RFC resynchronisation runs end to end.

/// A quiet simulator with both sides fresh or established, no chaos.
fn quiet(seed: u64, established: bool) -> Sim {
    let mut sim = Sim::new(seed, std::env::var("SIM_VERBOSE").is_ok());
    sim.chaos = false;
    for n in &mut sim.nodes {
        n.config.auto_partner_down = None;
        n.config.first_start_partner_down = false;
        n.config.mclt = 60;
        n.config.startup_secs = 10;
        if !established {
            n.durable = None;
            n.durable_history.clear();
        }
    }
    sim
}

fn run_until(sim: &mut Sim, ms: u64, mut done: impl FnMut(&Sim) -> bool) {
    let end = sim.t + ms;
    while !done(sim) {
        if sim.t > end {
            sim.fail("scripted path did not complete");
        }
        sim.step();
    }
}

fn path(sim: &Sim, side: usize) -> Vec<StateName> {
    let mut v = sim.nodes[side].states_seen.clone();
    v.dedup();
    v
}

#[test]
fn sim_fresh_pair_recovers_to_normal() {
    // §8.3.2 step 1 (D8): both start in RECOVER, UPDREQ each way, no RECOVER-WAIT (never ran
    // failover, §8.6.2), RECOVER-DONE, NORMAL.
    // The first to reach RECOVER-DONE sees its partner still in RECOVER and goes
    // COMMUNICATIONS-INTERRUPTED (§8.7.2), then NORMAL when the partner is RECOVER-DONE
    // (§8.9.2).
    let mut sim = quiet(1, false);
    run_until(&mut sim, 120_000, Sim::both_normal);
    for side in [P, S] {
        let p = path(&sim, side);
        assert_eq!(
            p[..3],
            [Recover, RecoverWait, RecoverDone],
            "side {side}: {p:?}"
        );
        assert_eq!(p.last(), Some(&Normal), "side {side}: {p:?}");
        assert!(p.len() <= 5 && (p.len() == 4 || p[3] == CommunicationsInterrupted));
    }
}

#[test]
fn sim_partition_goes_communications_interrupted_and_back_figure_8() {
    let mut sim = quiet(2, true);
    run_until(&mut sim, 120_000, Sim::both_normal);
    for n in &mut sim.nodes {
        n.states_seen.clear();
    }
    sim.partitioned = true;
    sim.partition_ends = Some(sim.t + 100_000);
    run_until(&mut sim, 60_000, |s| {
        s.state(P) == Some(CommunicationsInterrupted)
            && s.state(S) == Some(CommunicationsInterrupted)
    });
    run_until(&mut sim, 200_000, Sim::both_normal);
    for side in [P, S] {
        assert_eq!(
            path(&sim, side),
            vec![CommunicationsInterrupted, Normal],
            "side {side}"
        );
    }
}

#[test]
fn sim_recover_after_partner_down_runs_recover_wait_recover_done_normal_figure_7() {
    // The secondary dies; the operator puts the primary in PARTNER-DOWN; the secondary comes
    // back: its partner's PARTNER-DOWN began after it stopped → RECOVER (§8.3.2 step 5) →
    // UPDREQ → UPDDONE → RECOVER-WAIT (MCLT from its TIME-OF-FAILURE) → RECOVER-DONE; the
    // primary sees RECOVER-DONE → NORMAL (§8.4.2); then the secondary → NORMAL (§8.7.2).
    let mut sim = quiet(3, true);
    run_until(&mut sim, 120_000, Sim::both_normal);
    sim.crash(S, 200_000, false);
    run_until(&mut sim, 60_000, |s| {
        s.state(P) == Some(CommunicationsInterrupted)
    });
    // The operator waits until the secondary's last record no longer vouches for it
    // (operating-until = TIME-OF-FAILURE); declaring PARTNER-DOWN earlier makes the
    // comparison of §8.3.2 step 5 choose POTENTIAL-CONFLICT instead (D15).
    let tof = u64::from(sim.nodes[S].durable.unwrap().operating_until.0) - WALL0;
    run_until(&mut sim, 120_000, |s| s.t > tof * 1000 + 1000);
    let now = sim.now(P);
    sim.nodes[P].pd_cause = Some(PdCause::Operator);
    sim.nodes[P]
        .ep
        .as_mut()
        .unwrap()
        .handle_operator(now, Operator::PartnerDown)
        .unwrap();
    sim.drive(P);
    for n in &mut sim.nodes {
        n.states_seen.clear();
    }
    let t_restart = sim.nodes[S].restart_at.unwrap();
    run_until(&mut sim, 600_000, Sim::both_normal);
    assert_eq!(
        path(&sim, P),
        vec![Normal],
        "primary: PARTNER-DOWN → NORMAL"
    );
    assert_eq!(
        path(&sim, S),
        vec![Recover, RecoverWait, RecoverDone, Normal],
        "secondary"
    );
    // RECOVER-WAIT lasted until TIME-OF-FAILURE + MCLT (not before the restart + nothing).
    assert!(sim.t >= t_restart, "waited");
}

#[test]
fn sim_both_partner_down_resolve_through_potential_conflict_figure_9() {
    // A partition; the operator puts both sides in PARTNER-DOWN (§8.4.1 "the unlikely case");
    // on reconnect both go POTENTIAL-CONFLICT (§8.4.2); the primary's UPDREQ / UPDDONE takes
    // it to CONFLICT-DONE, the secondary's to NORMAL, then the primary to NORMAL (§8.10.2,
    // §8.12.2).
    let mut sim = quiet(4, true);
    run_until(&mut sim, 120_000, Sim::both_normal);
    sim.partitioned = true;
    sim.partition_ends = Some(sim.t + 200_000);
    run_until(&mut sim, 60_000, |s| {
        s.state(P) == Some(CommunicationsInterrupted)
            && s.state(S) == Some(CommunicationsInterrupted)
    });
    for side in [P, S] {
        let now = sim.now(side);
        sim.nodes[side].pd_cause = Some(PdCause::Operator);
        sim.nodes[side]
            .ep
            .as_mut()
            .unwrap()
            .handle_operator(now, Operator::PartnerDown)
            .unwrap();
        sim.drive(side);
    }
    for n in &mut sim.nodes {
        n.states_seen.clear();
    }
    run_until(&mut sim, 400_000, Sim::both_normal);
    assert_eq!(path(&sim, P), vec![PotentialConflict, ConflictDone, Normal]);
    assert_eq!(path(&sim, S), vec![PotentialConflict, Normal]);
}

#[test]
fn sim_restart_in_normal_comes_back_through_startup() {
    // §8.3.2: a restarted server announces its previous state with STARTUP, resumes
    // COMMUNICATIONS-INTERRUPTED (step 2) and goes NORMAL with its partner (§8.9.2).
    let mut sim = quiet(5, true);
    run_until(&mut sim, 120_000, Sim::both_normal);
    sim.crash(P, 3_000, false);
    for n in &mut sim.nodes {
        n.states_seen.clear();
    }
    run_until(&mut sim, 200_000, Sim::both_normal);
    assert_eq!(path(&sim, P), vec![CommunicationsInterrupted, Normal]);
    assert!(
        sim.nodes[S]
            .states_seen
            .iter()
            .all(|s| *s == CommunicationsInterrupted || *s == Normal)
    );
    let _ = MessageType::STATE;
}
