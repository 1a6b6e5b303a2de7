//! The binding sync simulator of issue 9 (RFC 8156 §4.4, §7, §8; `docs/failover.md`, "Binding
//! sync simulator"): two servers, each the real [`Endpoint`] driven in the daemon's call order
//! (`FailoverPlane::drive` and `pump_bindings`), the daemon's real [`BindingSync`] glue and
//! lease shards of real [`Engine`]s over [`MemStore`]s; a virtual link and clock (per-side
//! skew within ±3 s); a population of DHCPv6 clients (RFC 8415 / RFC 9915) doing Solicit (with
//! and without Rapid Commit), Request, Renew, Rebind, Release and Decline with IA_NA and IA_PD
//! on a link both servers see (a relay forwarding to both); and chaos: partitions, dropped
//! connections, process crashes, graceful restarts, power losses (the stores fall back to their
//! last msync), lost disks (no stores, no failover record), clock skew and the operator's
//! PARTNER-DOWN while the partner really is down.
//!
//! Invariants, checked after every step:
//!
//! 1. No lease (address or prefix) is held by two clients at once, judged by what the clients
//!    themselves hold (a lease counts until 8 s before its valid lifetime ends, the clock
//!    slack). The one exception is counted, not failed: a lease a storage loss erased from
//!    every store that knew the client held it.
//! 2. Every lease a client holds is covered (ACTIVE for that client until at least the end the
//!    client was given) by the store of at least one server, up or down, at every step; and by
//!    *both* servers' stores once updates have flowed — both up, communications OK, both in
//!    states where updates flow (D25) — for [`GRACE_MS`] since it was granted (and since a
//!    server lost its disk). Leases a storage loss set back or erased are exempt.
//! 3. No valid lifetime given outside PARTNER-DOWN exceeds max(now, the largest partner
//!    lifetime the partner acknowledged for that lease in a BNDREPLY, as seen on the wire) +
//!    MCLT (RFC 8156 §4.4).
//! 4. Whenever both are NORMAL with nothing queued, in flight or flagged, the two lease tables
//!    hold the same ACTIVE leases (client, IA, end) — but for a lease a power loss set back on
//!    one side, until it converges — and after the chaos, with everything healed, both reach
//!    NORMAL, idle and identical within [`SETTLE_MS`], every held lease in both.
//!
//! `TANDEM_SIM_SEEDS=n` runs seeds 0..n instead of 200 (`TANDEM_SIM_FIRST=f`: f..f+n), plus
//! the regression seeds long runs found (`REGRESSION_SEEDS`), spread
//! over the CPUs; `TANDEM_SIM_SEED=s` runs one with its log on stderr. A failure names its
//! seed and prints the last events, both lease tables and what the clients hold.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use tandem::failover::latency::MonoUs;
use tandem::failover::sync::{BindingSync, LeaseShards};
use tandem_failover::bndupd::{AckResult, decode_bndreply};
use tandem_failover::{
    BindingInput, Config as EpConfig, Endpoint, Event, FailoverTime, Now, Operator, Persisted,
    Role, StateName, Transmit,
};
use tandem_lease::sync::{AckInfo, LeaseUpdate, Role as SyncRole};
use tandem_lease::{Binding, BindingFlags, BindingStatus, LeaseKind, LeaseStore, MemStore};
use tandem_proto::{Engine, Inbound, Outcome, PartnerOutcome, RxMeta, SplitMix64};
use tandem_wire::dhcp::MessageType;
use tandem_wire::dhcp::message::Message;
use tandem_wire::option::OptionCode;

use StateName::*;

/// The wall clock at t = 0 (RFC 8156 §3 seconds).
const WALL0: u64 = 830_000_000;
const NAME: &str = "sim";
const P: usize = 0;
const S: usize = 1;

/// A client stops counting on a lease this long before its valid lifetime ends: each server's
/// clock is within ±3 s of the true time, so a server may see a lease end up to 6 s early
/// (its clock moved from −3 to +3, or the partner's clock is 6 s ahead of the granter's), plus
/// a second for the whole-second times of RFC 8156 §3, plus a second of margin.
const SLACK_MS: u64 = 8_000;
/// Updates have "had time to flow" once both servers have been up, with communications OK and
/// in states where updates flow (D25), this long since the grant (invariant 2).
const GRACE_MS: u64 = 60_000;
/// Each server's lease housekeeping (the engine's expiry, then a pump) runs this often.
const RECLAIM_EVERY_MS: u64 = 1_000;
/// The stores are msynced this often (the daemon's default `--flush-interval`).
const FLUSH_EVERY_MS: u64 = 1_000;

const CONFIG: &str = r#"
[[interface]]
name = "eth0"

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
rapid-commit = true
preferred-lifetime = 200
valid-lifetime = 400
t1 = 100
t2 = 160

  [[subnet.pool]]
  range = "2001:db8:1::100-2001:db8:1::117"

  [[subnet.pd-pool]]
  prefix = "2001:db8:8000::/52"
  delegated-length = 56
"#;

const IAID_NA: u32 = 1;
const IAID_PD: u32 = 2;

/// splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, enough to pick chaos.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
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
    fn side(&mut self) -> usize {
        (self.next() % 2) as usize
    }
}

// ------------------------------------------------------------------------------------------
// The lease shards of one server: the disk (stores) and the process (engines).

/// One server's lease database as [`LeaseShards`], as the daemon's `ShardSet` does it: the
/// engine of the shard stores the partner's update or ack and reports what changed.
///
/// Durability model (`docs/failover.md`, "Binding sync simulator"): `stores` are the mapped
/// tables, whose every write survives a process crash (the page cache keeps them); `synced` is
/// what the last msync made durable, what a power loss falls back to. `make_durable` (before a
/// BNDREPLY, §7.5.2) and the periodic flush copy `stores` into `synced`.
#[derive(Debug)]
struct Shards {
    engines: Vec<Engine>,
    stores: Vec<MemStore>,
    synced: Vec<MemStore>,
    /// Power losses are simulated: keep `synced` (else it is never read).
    track_synced: bool,
}

impl Shards {
    fn count_usize(&self) -> usize {
        self.stores.len()
    }

    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.stores.iter().find_map(|s| s.get(kind, addr))
    }

    fn all(&self) -> impl Iterator<Item = &Binding> {
        self.stores.iter().flat_map(MemStore::iter)
    }

    /// What an msync makes durable.
    fn msync(&mut self) {
        if self.track_synced {
            self.synced.clone_from(&self.stores);
        }
    }
}

impl LeaseShards for Shards {
    fn count(&self) -> u32 {
        self.stores.len() as u32
    }

    fn shard_of_lease(&self, kind: LeaseKind, addr: Ipv6Addr, len: u8) -> Option<u32> {
        self.engines.first()?.lease_shard(kind, addr, len)
    }

    fn partner_update(
        &mut self,
        shard: u32,
        now: FailoverTime,
        role: SyncRole,
        upd: &LeaseUpdate,
        out: &mut dyn FnMut(&Binding),
    ) -> PartnerOutcome {
        let k = shard as usize;
        let (Some(engine), Some(store)) = (self.engines.get_mut(k), self.stores.get_mut(k)) else {
            return PartnerOutcome::OtherShard;
        };
        let outcome = engine.partner_update(now, role, upd, store);
        for c in engine.changes() {
            out(&c.binding);
        }
        outcome
    }

    fn partner_ack(
        &mut self,
        shard: u32,
        now: FailoverTime,
        kind: LeaseKind,
        addr: Ipv6Addr,
        info: &AckInfo,
        out: &mut dyn FnMut(&Binding),
    ) {
        let k = shard as usize;
        let (Some(engine), Some(store)) = (self.engines.get_mut(k), self.stores.get_mut(k)) else {
            return;
        };
        engine.partner_ack(now, kind, addr, info, store);
        for c in engine.changes() {
            out(&c.binding);
        }
    }

    fn scan(
        &self,
        shard: u32,
        cursor: u64,
        max: usize,
        f: &mut dyn FnMut(&Binding),
    ) -> Option<u64> {
        self.stores.get(shard as usize)?.scan(cursor, max, f)
    }

    fn rebalance(
        &mut self,
        shard: u32,
        now: FailoverTime,
        share_percent: u32,
        cap: u64,
        out: &mut dyn FnMut(&Binding),
    ) -> bool {
        let k = shard as usize;
        let (Some(engine), Some(store)) = (self.engines.get_mut(k), self.stores.get_mut(k)) else {
            return true;
        };
        engine.rebalance_prefixes(now, share_percent, cap, store);
        for c in engine.changes() {
            out(&c.binding);
        }
        true
    }

    fn make_durable(&mut self) -> std::io::Result<()> {
        self.msync();
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Servers, link, clients.

/// The running process of a server: what a crash loses.
#[derive(Debug)]
struct Process {
    ep: Endpoint,
    sync: BindingSync,
}

#[derive(Debug)]
struct Server {
    role: Role,
    ep_config: EpConfig,
    duid: Vec<u8>,
    proc: Option<Process>,
    shards: Shards,
    /// The last failover record written durably (the daemon writes it synchronously with
    /// fsync before `handle_persisted`, so every confirmed record survives).
    record: Option<Persisted>,
    restart_at: Option<u64>,
    /// Wall clock minus true time, seconds (within ±3).
    skew_s: i64,
    conn: Option<u64>,
    /// A close to report at the given time, for connection `id`.
    closed_at: Option<(u64, u64)>,
    rng: SplitMix64,
    next_reclaim: u64,
    next_flush: u64,
    /// When its disk was last lost (invariant 2: what it knows starts over).
    lost_disk_at: Option<u64>,
    /// The operator declared this server down (only ever while it is down).
    declared_down: bool,
    /// Its stores were set back by a power loss since it last started: the daemon tells the
    /// endpoint so at the restart (`Endpoint::stores_set_back`, docs/failover.md D56).
    set_back: bool,
}

#[derive(Debug)]
struct Wire {
    id: u64,
    /// Frames in flight, by destination side: (deliver at, frame body).
    queue: [VecDeque<(u64, Vec<u8>)>; 2],
}

/// How a held lease was lost to storage (the durability model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// A server restarted with empty stores and no failover record.
    Disk,
    /// A server's stores fell back to their last msync.
    Power,
}

/// A lease a client holds (its own view).
#[derive(Clone, Copy, Debug)]
struct Held {
    kind: LeaseKind,
    addr: Ipv6Addr,
    len: u8,
    /// True time (ms) the client stops counting on it: the valid lifetime's end less
    /// [`SLACK_MS`].
    hold_end: u64,
    /// When it was last granted or extended, and by which server.
    granted_at: u64,
    granted_by: usize,
    /// Lost with a disk or a power loss while no surviving store covered it, or set back by a
    /// power loss on the server that covered it: the durability window, not the binding sync
    /// (exempt from invariant 2). `true`: a surviving store still protects it (knows the client
    /// with an end or a partner lifetime that keeps the lease from another client until the
    /// client's end, D46), so invariant 1 still holds for it; `false`: nobody knows the client
    /// holds it any more — a conflict on it is counted, not a failure.
    lost: Option<(Loss, bool)>,
}

#[derive(Debug)]
struct Client {
    duid: Vec<u8>,
    held: Vec<Held>,
    /// The server DUID of its last Reply (Renew, Release and Decline name it).
    server: Option<Vec<u8>>,
    t1_at: u64,
    t2_at: u64,
    next_at: u64,
    xid: u32,
}

#[derive(Debug, Default)]
struct Stats {
    steps: u64,
    grants: u64,
    extensions: u64,
    releases: u64,
    declines: u64,
    rapid_commits: u64,
    frames: u64,
    bndupd: u64,
    crashes: u64,
    power_losses: u64,
    lost_disks: u64,
    partitions: u64,
    operator_pd: u64,
    quiescent_checks: u64,
    /// Held leases lost to a disk loss / to a power loss (see [`Held::lost`]).
    lost_to_disk: u64,
    lost_to_power: u64,
    /// Of those, given to another client while still held.
    conflicts_after_disk_loss: u64,
    conflicts_after_power_loss: u64,
    mclt_checks: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.grants += o.grants;
        self.extensions += o.extensions;
        self.releases += o.releases;
        self.declines += o.declines;
        self.rapid_commits += o.rapid_commits;
        self.frames += o.frames;
        self.bndupd += o.bndupd;
        self.crashes += o.crashes;
        self.power_losses += o.power_losses;
        self.lost_disks += o.lost_disks;
        self.partitions += o.partitions;
        self.operator_pd += o.operator_pd;
        self.quiescent_checks += o.quiescent_checks;
        self.lost_to_disk += o.lost_to_disk;
        self.lost_to_power += o.lost_to_power;
        self.conflicts_after_disk_loss += o.conflicts_after_disk_loss;
        self.conflicts_after_power_loss += o.conflicts_after_power_loss;
        self.mclt_checks += o.mclt_checks;
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    t: u64,
    config: tandem_config::Config,
    shard_count: u32,
    decline_quarantine: u32,
    mclt: u32,
    servers: [Server; 2],
    clients: Vec<Client>,
    wire: Option<Wire>,
    next_wire: u64,
    partitioned: bool,
    partition_ends: Option<u64>,
    next_connect: u64,
    delay_ms: (u64, u64),
    chaos: bool,
    next_chaos: u64,
    /// Power loss is part of the chaos (else only process crashes and lost disks).
    power_loss: bool,
    /// Who holds each lease, from the clients' own views (invariant 1).
    holders: HashMap<(LeaseKind, u128), usize>,
    /// The largest partner lifetime each server's partner acknowledged for each lease, as
    /// seen on the wire (invariant 3).
    acked: HashMap<(usize, LeaseKind, u128), FailoverTime>,
    /// Since when updates flow both ways (invariant 2).
    flow_since: Option<u64>,
    /// Leases a power loss set back on one side while the partner knew the newer state
    /// (invariant 4 tolerates their difference until they converge).
    set_back: std::collections::HashSet<(LeaseKind, u128)>,
    log: VecDeque<String>,
    verbose: bool,
    stats: Stats,
    stalls: u64,
}

fn other(side: usize) -> usize {
    1 - side
}

fn key(kind: LeaseKind, addr: Ipv6Addr) -> (LeaseKind, u128) {
    (kind, u128::from(addr))
}

// DHCPv6 message building (RFC 8415 §21).

fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn ia_na(iaid: u32, addrs: &[Ipv6Addr]) -> Vec<u8> {
    let mut d = iaid.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 8]);
    for a in addrs {
        let mut x = a.octets().to_vec();
        x.extend_from_slice(&[0; 8]);
        d.extend(opt(5, &x));
    }
    opt(3, &d)
}

fn ia_pd(iaid: u32, prefixes: &[(Ipv6Addr, u8)]) -> Vec<u8> {
    let mut d = iaid.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 8]);
    for (p, len) in prefixes {
        let mut x = vec![0; 8];
        x.push(*len);
        x.extend_from_slice(&p.octets());
        d.extend(opt(26, &x));
    }
    opt(25, &d)
}

fn dhcp_msg(t: MessageType, xid: u32, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![t.0];
    v.extend_from_slice(&xid.to_be_bytes()[1..]);
    for o in opts {
        v.extend_from_slice(o);
    }
    v
}

/// An ACTIVE lease as the tables are compared: kind, lease, length, client, IAID, end.
type ActiveLease = (
    LeaseKind,
    Ipv6Addr,
    u8,
    tandem_lease::DuidBuf,
    u32,
    FailoverTime,
);

/// One lease of a reply: kind, lease, length, preferred, valid.
type ReplyLease = (LeaseKind, Ipv6Addr, u8, u32, u32);

/// What a client reads from a Reply or Advertise.
#[derive(Debug)]
struct ReplyView {
    msg_type: MessageType,
    server: Vec<u8>,
    leases: Vec<ReplyLease>,
    /// IAs answered with a status and no lease (NoBinding, NoAddrsAvail, …).
    no_binding: bool,
    t1: Option<u32>,
    t2: Option<u32>,
}

fn read_reply(bytes: &[u8]) -> Option<ReplyView> {
    let m = Message::parse(bytes).ok()?;
    let server = m.option(OptionCode::SERVERID)?.data.to_vec();
    let mut leases = Vec::new();
    let mut no_binding = false;
    let (mut t1, mut t2) = (None::<u32>, None::<u32>);
    for ia in m.ia_nas() {
        let ia = ia.ok()?;
        let mut any = false;
        for a in ia.addresses() {
            let a = a.ok()?;
            leases.push((LeaseKind::Address, a.addr, 128, a.preferred, a.valid));
            any |= a.valid > 0;
        }
        if let Ok(Some(s)) = ia.status()
            && s.code == tandem_wire::dhcp::StatusCode::NO_BINDING
        {
            no_binding = true;
        }
        if any {
            t1 = Some(t1.map_or(ia.t1, |x| x.min(ia.t1)));
            t2 = Some(t2.map_or(ia.t2, |x| x.min(ia.t2)));
        }
    }
    for ia in m.ia_pds() {
        let ia = ia.ok()?;
        let mut any = false;
        for p in ia.prefixes() {
            let p = p.ok()?;
            leases.push((
                LeaseKind::Prefix,
                p.prefix,
                p.prefix_len,
                p.preferred,
                p.valid,
            ));
            any |= p.valid > 0;
        }
        if let Ok(Some(s)) = ia.status()
            && s.code == tandem_wire::dhcp::StatusCode::NO_BINDING
        {
            no_binding = true;
        }
        if any {
            t1 = Some(t1.map_or(ia.t1, |x| x.min(ia.t1)));
            t2 = Some(t2.map_or(ia.t2, |x| x.min(ia.t2)));
        }
    }
    Some(ReplyView {
        msg_type: m.msg_type,
        server,
        leases,
        no_binding,
        t1,
        t2,
    })
}

/// Client-side kinds of exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    Request,
    Renew,
    Rebind,
    RapidSolicit,
}

/// What one server said to a client message, with what the MCLT check needs.
#[derive(Debug)]
struct Answer {
    side: usize,
    reply: Vec<u8>,
    /// The server's wall clock when it answered and whether it was in PARTNER-DOWN.
    wall: FailoverTime,
    partner_down: bool,
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Self {
        let mut rng = Rng(seed ^ 0x5eed_5eed);
        let config = tandem_config::Config::from_str(CONFIG, "sim.toml").expect("valid sim config");
        let mclt = rng.range(30, 120) as u32;
        let shard_count = rng.range(1, 3) as u32;
        let decline_quarantine = rng.range(60, 600) as u32;
        let power_loss = rng.pct(50);
        let n_clients = rng.range(6, 24) as usize;
        let servers = [Role::Primary, Role::Secondary].map(|role| {
            let mut c = EpConfig::new(role, NAME);
            c.mclt = mclt;
            c.keepalive = rng.range(10, 30) as u32;
            c.startup_secs = rng.range(5, 20) as u32;
            c.heartbeat = rng.range(10, 60) as u32;
            c.update_timeout = 120;
            c.max_unacked_bndupd = rng.range(1, 16) as u32;
            let duid = match role {
                Role::Primary => vec![0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1],
                Role::Secondary => vec![0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 2],
            };
            Server {
                role,
                ep_config: c,
                duid,
                proc: None,
                shards: Shards {
                    engines: Vec::new(),
                    stores: vec![MemStore::new(); shard_count as usize],
                    synced: vec![MemStore::new(); shard_count as usize],
                    track_synced: power_loss,
                },
                record: None,
                restart_at: Some(0),
                skew_s: rng.range(0, 6) as i64 - 3,
                conn: None,
                closed_at: None,
                rng: SplitMix64::new(rng.next()),
                next_reclaim: 0,
                next_flush: 0,
                lost_disk_at: None,
                set_back: false,
                declared_down: false,
            }
        });
        let clients = (0..n_clients)
            .map(|i| Client {
                duid: vec![0, 3, 0, 1, 2, 0, 0, 0, (i >> 8) as u8, i as u8],
                held: Vec::new(),
                server: None,
                t1_at: u64::MAX,
                t2_at: u64::MAX,
                next_at: rng.range(20_000, 60_000),
                xid: (i as u32) << 12,
            })
            .collect();
        Self {
            seed,
            rng,
            t: 0,
            config,
            shard_count,
            decline_quarantine,
            mclt,
            servers,
            clients,
            wire: None,
            next_wire: 1,
            partitioned: false,
            partition_ends: None,
            next_connect: 0,
            delay_ms: (1, 50),
            chaos: true,
            next_chaos: 30_000,
            power_loss,
            holders: HashMap::new(),
            acked: HashMap::new(),
            flow_since: None,
            set_back: std::collections::HashSet::new(),
            log: VecDeque::new(),
            verbose,
            stats: Stats::default(),
            stalls: 0,
        }
    }

    fn now(&self, side: usize) -> Now {
        let wall = WALL0 as i64 + (self.t / 1000) as i64 + self.servers[side].skew_s;
        Now {
            mono_ms: self.t,
            wall: FailoverTime(wall as u32),
        }
    }

    /// A server wall time as true milliseconds, read with `side`'s current skew.
    fn true_ms(&self, side: usize, wall: FailoverTime) -> i64 {
        (i64::from(wall.0) - WALL0 as i64 - self.servers[side].skew_s) * 1000
    }

    fn note(&mut self, msg: impl FnOnce() -> String) {
        let line = format!("[{:>9}] {}", self.t, msg());
        if self.verbose {
            eprintln!("{line}");
        }
        self.log.push_back(line);
        if self.log.len() > 600 {
            self.log.pop_front();
        }
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let mut s = String::new();
        for l in &self.log {
            let _ = writeln!(s, "{l}");
        }
        for (i, n) in self.servers.iter().enumerate() {
            let _ = writeln!(
                s,
                "server {i}: {:?} sync {:?} backlog {:?} skew {} conn {:?} record {:?}",
                n.proc.as_ref().map(|p| p.ep.status()),
                n.proc.as_ref().map(|p| *p.sync.counters()),
                n.proc.as_ref().map(|p| p.sync.backlog()),
                n.skew_s,
                n.conn,
                n.record
            );
            for b in n.shards.all() {
                let _ = writeln!(
                    s,
                    "  {:?} {} /{} {:?} since {} duid {:?} iaid {} cltt {} ste {} pl {} apl {} et {} flags {}",
                    b.kind,
                    b.addr,
                    b.prefix_len,
                    b.status,
                    b.start_time_of_state.0,
                    b.duid,
                    b.iaid,
                    b.cltt.0,
                    b.state_expiration_time.0,
                    b.partner_lifetime.0,
                    b.acked_partner_lifetime.0,
                    b.expiration_time.0,
                    b.flags.0
                );
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            if !c.held.is_empty() {
                let _ = writeln!(s, "client {i}: {:?}", c.held);
            }
        }
        panic!(
            "failover_sim seed {} (rerun: TANDEM_SIM_SEED={} cargo test -p tandem --test \
             failover_sim): t={} ms: {what}\n{s}",
            self.seed, self.seed, self.t
        );
    }

    // --------------------------------------------------------------------------------------
    // Driving one server, in the daemon's order (`FailoverPlane::drive` and
    // `FailoverPlane::pump_bindings`).

    /// `FailoverPlane::drive`: records durable before `handle_persisted`, frames, events (to
    /// the sync and the engines), binding messages to the sync.
    fn drive(&mut self, side: usize) {
        loop {
            let now = self.now(side);
            let srv = &mut self.servers[side];
            let Some(pr) = srv.proc.as_mut() else { return };
            if let Some(rec) = pr.ep.poll_persist() {
                srv.record = Some(rec);
                pr.ep.handle_persisted();
                continue;
            }
            let mut frames = Vec::new();
            while let Some(t) = pr.ep.poll_transmit() {
                frames.push(t);
            }
            let mut events = Vec::new();
            while let Some(e) = pr.ep.poll_event() {
                pr.sync.on_event(&e, now);
                if let Event::PolicyChanged(p) = e {
                    for en in &mut srv.shards.engines {
                        en.set_policy(p);
                    }
                }
                events.push(e);
            }
            while let Some(b) = pr.ep.poll_binding() {
                if let BindingInput::Update { .. } = b {
                    self.stats.bndupd += 1;
                }
                pr.sync.input(b);
            }
            let sent = !frames.is_empty();
            for t in frames {
                self.transmit(side, t);
            }
            for e in events {
                self.event(side, e);
            }
            if !sent {
                break;
            }
        }
    }

    /// `FailoverPlane::pump_bindings` for this server: at most 64 rounds while the sync has
    /// work, each followed by a drive.
    fn pump(&mut self, side: usize) {
        for _ in 0..64 {
            let now = self.now(side);
            let srv = &mut self.servers[side];
            let Some(pr) = srv.proc.as_mut() else { return };
            if !pr.sync.busy(&pr.ep, now) {
                break;
            }
            pr.sync
                .pump(&mut pr.ep, &mut srv.shards, now, MonoUs(now.mono_ms * 1000));
            self.drive(side);
        }
    }

    /// After any input: drain the endpoint, then move binding updates (the daemon's loop turn).
    fn service(&mut self, side: usize) {
        self.drive(side);
        self.pump(side);
    }

    fn transmit(&mut self, side: usize, tx: Transmit) {
        match tx {
            Transmit::Frame(bytes) => {
                self.stats.frames += 1;
                if self.verbose
                    && let Ok(u) = tandem_failover::bndupd::decode_bndupd(&bytes[2..])
                {
                    for l in u.leases().flatten() {
                        let up = self.wire.as_ref().map(|w| w.id) == self.servers[side].conn
                            && self.wire.is_some();
                        self.note(|| {
                            format!("{side} -> BNDUPD {} {:?} (wire up: {up})", l.addr, l.status)
                        });
                    }
                }
                let Some(w) = self.wire.as_mut() else { return };
                if self.servers[side].conn != Some(w.id) {
                    return;
                }
                let lo = self.t + self.rng.range(self.delay_ms.0, self.delay_ms.1);
                let q = &mut w.queue[other(side)];
                let at = q.back().map_or(lo, |(b, _)| (*b).max(lo));
                q.push_back((at, bytes[2..].to_vec()));
            }
            Transmit::Close { reason } => {
                self.note(|| format!("{side}: closes ({reason:?})"));
                self.servers[side].conn = None;
                self.close_wire_from(side);
            }
        }
    }

    fn close_wire_from(&mut self, side: usize) {
        let Some(w) = self.wire.take() else { return };
        let o = other(side);
        if self.servers[o].conn == Some(w.id) {
            let at = if self.partitioned {
                self.partition_ends.unwrap_or(self.t) + 10
            } else {
                self.t + self.rng.range(self.delay_ms.0, self.delay_ms.1)
            };
            self.servers[o].closed_at = Some((at, w.id));
        }
    }

    fn event(&mut self, side: usize, e: Event) {
        match e {
            Event::StateChanged { from, to } => {
                self.note(|| format!("{side}: {from:?} → {to:?}"));
                if to == PartnerDown && !self.servers[other(side)].declared_down {
                    // Only the operator sends a server to PARTNER-DOWN here (no
                    // auto-partner-down, no first-start option), and only while the partner
                    // is down; a restart from a PARTNER-DOWN record keeps it.
                    let restarted = from == Startup;
                    if !restarted {
                        self.fail(&format!(
                            "{side} entered PARTNER-DOWN from {from:?} unforced"
                        ));
                    }
                }
            }
            Event::PeerMisbehaved(m) => self.fail(&format!(
                "{side}: honest partner flagged as misbehaving: {m:?}"
            )),
            Event::LinkDown(r) => self.note(|| format!("{side}: link down {r:?}")),
            Event::LinkUp => self.note(|| format!("{side}: communications OK")),
            Event::UpdateRequested { all } => {
                self.note(|| format!("{side}: partner asks for updates (all: {all})"));
            }
            Event::ExcessiveTimeSkew(s) => self.note(|| format!("{side}: skew {s} s")),
            Event::UpdatesMayFlow => self.note(|| format!("{side}: updates may flow")),
            _ => {}
        }
    }

    // --------------------------------------------------------------------------------------
    // Processes and disks.

    fn start(&mut self, side: usize) {
        let now = self.now(side);
        let n = self.shard_count;
        let srv = &mut self.servers[side];
        srv.restart_at = None;
        srv.conn = None;
        srv.closed_at = None;
        srv.declared_down = false;
        srv.shards.engines = (0..n)
            .map(|k| {
                Engine::new(self.config.clone(), srv.duid.clone())
                    .with_partition(k, n)
                    .with_decline_quarantine(self.decline_quarantine)
            })
            .collect();
        let mut ep =
            Endpoint::new(srv.ep_config.clone(), srv.record, now).expect("valid sim config");
        if std::mem::take(&mut srv.set_back) {
            ep.stores_set_back(now);
        }
        for en in &mut srv.shards.engines {
            en.set_policy(ep.policy());
        }
        srv.proc = Some(Process {
            ep,
            // The primary hands the secondary a share of the prefixes (docs/failover.md D30).
            sync: BindingSync::new(srv.role, 10, 64),
        });
        srv.next_reclaim = self.t + RECLAIM_EVERY_MS;
        srv.next_flush = self.t + FLUSH_EVERY_MS;
        let fresh = srv.record.is_none();
        self.note(|| format!("{side}: start (fresh: {fresh})"));
        self.service(side);
    }

    /// A process crash; with `power`, the stores fall back to their last msync; with `wipe`,
    /// the disk is gone (stores and the failover record).
    fn crash(&mut self, side: usize, down_ms: u64, power: bool, wipe: bool) {
        self.stats.crashes += 1;
        self.note(|| format!("{side}: CRASH for {down_ms} ms, power loss {power}, wipe {wipe}"));
        let t = self.t;
        let srv = &mut self.servers[side];
        srv.proc = None;
        srv.restart_at = Some(t + down_ms);
        srv.conn = None;
        srv.closed_at = None;
        if wipe {
            self.stats.lost_disks += 1;
            let n = srv.shards.stores.len();
            srv.shards.stores = vec![MemStore::new(); n];
            srv.shards.synced = vec![MemStore::new(); n];
            srv.record = None;
            srv.lost_disk_at = Some(t);
        } else if power {
            self.stats.power_losses += 1;
            let before: Vec<Binding> = srv.shards.all().copied().collect();
            let covered: Vec<(usize, usize)> = self.covered_by(side);
            let srv = &mut self.servers[side];
            srv.shards.stores.clone_from(&srv.shards.synced);
            srv.set_back = true;
            for b in before {
                if srv.shards.get(b.kind, b.addr) != Some(b) {
                    self.set_back.insert(key(b.kind, b.addr));
                }
            }
            // A lease the crashed side covered before and not after: its grant or renewal was
            // in the msync window.
            for (ci, hi) in covered {
                let h = self.clients[ci].held[hi];
                if !self.covers(side, ci, &h) && h.lost.is_none() {
                    let protected = self.protects(P, ci, &h) || self.protects(S, ci, &h);
                    self.note(|| {
                        format!(
                            "client {ci}: {} set back by the power loss (protected: {protected})",
                            h.addr
                        )
                    });
                    self.stats.lost_to_power += 1;
                    self.clients[ci].held[hi].lost = Some((Loss::Power, protected));
                }
            }
        }
        if power || wipe {
            self.mark_orphans(if wipe { Loss::Disk } else { Loss::Power });
        }
        if self.rng.pct(50) {
            self.close_wire_from(side);
        } else {
            self.wire = None;
        }
    }

    /// The held leases (client, index) that `side`'s store covers now.
    fn covered_by(&self, side: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (ci, c) in self.clients.iter().enumerate() {
            for (hi, h) in c.held.iter().enumerate() {
                if h.hold_end > self.t && self.covers(side, ci, h) {
                    out.push((ci, hi));
                }
            }
        }
        out
    }

    /// After a loss of storage: the leases no store covers any more are orphaned (the
    /// durability window of a lazy update or an msync interval, not the sync).
    fn mark_orphans(&mut self, loss: Loss) {
        for ci in 0..self.clients.len() {
            for hi in 0..self.clients[ci].held.len() {
                let h = self.clients[ci].held[hi];
                if h.hold_end <= self.t {
                    continue;
                }
                if let Some((first, true)) = h.lost {
                    // Lost before but still protected by the other store: is it still?
                    if !(self.protects(P, ci, &h) || self.protects(S, ci, &h)) {
                        self.note(|| {
                            format!("client {ci}: {} no longer protected ({loss:?})", h.addr)
                        });
                        self.clients[ci].held[hi].lost = Some((first, false));
                    }
                    continue;
                }
                if h.lost.is_some() {
                    continue;
                }
                if !(self.covers(P, ci, &h) || self.covers(S, ci, &h)) {
                    let protected = self.protects(P, ci, &h) || self.protects(S, ci, &h);
                    self.note(|| {
                        format!(
                            "client {ci}: {} lost with the storage ({loss:?}, protected: \
                             {protected})",
                            h.addr
                        )
                    });
                    match loss {
                        Loss::Disk => self.stats.lost_to_disk += 1,
                        Loss::Power => self.stats.lost_to_power += 1,
                    }
                    self.clients[ci].held[hi].lost = Some((loss, protected));
                }
            }
        }
    }

    /// `side`'s store keeps `h` from going to another client until the client's end: its
    /// binding names client `ci` (ACTIVE, EXPIRED or RELEASED: not yet available to others)
    /// and its end, or the partner lifetime it acked to the partner plus the MCLT (D46),
    /// reaches the client's.
    fn protects(&self, side: usize, ci: usize, h: &Held) -> bool {
        let Some(b) = self.servers[side].shards.get(h.kind, h.addr) else {
            return false;
        };
        let mclt_ms = i64::from(self.mclt) * 1000;
        // The partner-lifetime field is no durable knowledge: it is what this server sent and
        // an ack clears it. The expiration-time is what it acked to the partner.
        let ends = [(b.state_expiration_time, 0), (b.expiration_time, mclt_ms)];
        // An EXPIRED or RELEASED binding knows of the grant only if its client's last
        // transaction is the grant or later: a client that got the lease again from the other
        // server, whose update never arrived, is unknown here (seeds 1499, 871: the record's
        // CLTT is the earlier lease's).
        let knows_grant = b.status == BindingStatus::ACTIVE
            || self.true_ms(side, b.cltt) + 1000 >= h.granted_at as i64;
        matches!(
            b.status,
            BindingStatus::ACTIVE | BindingStatus::EXPIRED | BindingStatus::RELEASED
        ) && knows_grant
            && b.duid.as_bytes() == self.clients[ci].duid.as_slice()
            && ends
                .iter()
                .filter(|(t, _)| t.0 != 0)
                .any(|(t, plus)| self.true_ms(side, *t) + plus + 1000 >= h.hold_end as i64)
    }

    /// `side`'s store holds `h` ACTIVE for client `ci` until at least the client's end.
    fn covers(&self, side: usize, ci: usize, h: &Held) -> bool {
        let Some(b) = self.servers[side].shards.get(h.kind, h.addr) else {
            return false;
        };
        b.status == BindingStatus::ACTIVE
            && b.duid.as_bytes() == self.clients[ci].duid.as_slice()
            && b.prefix_len == h.len
            && self.true_ms(side, b.state_expiration_time) + 1000 >= h.hold_end as i64
    }

    fn connect(&mut self) {
        let id = self.next_wire;
        self.next_wire += 1;
        self.note(|| format!("connection {id}"));
        self.wire = Some(Wire {
            id,
            queue: [VecDeque::new(), VecDeque::new()],
        });
        for side in [S, P] {
            self.servers[side].conn = Some(id);
            self.servers[side].closed_at = None;
            let now = self.now(side);
            if let Some(pr) = self.servers[side].proc.as_mut() {
                pr.ep.handle_connected(now);
            }
            self.service(side);
        }
    }

    /// A frame reaches `side`. A BNDREPLY's echoed partner lifetimes are what the partner
    /// acknowledged (invariant 3 keeps the largest per lease).
    fn deliver(&mut self, side: usize, bytes: &[u8]) {
        if self.verbose
            && let Ok(u) = tandem_failover::bndupd::decode_bndupd(bytes)
        {
            for l in u.leases().flatten() {
                self.note(|| {
                    format!(
                        "{side} <- BNDUPD {} {:?} client {:?} ste {:?} clt {:?} pl {:?}",
                        l.addr,
                        l.status,
                        l.client.map(|c| c.duid),
                        l.state_expiration_time.map(|t| t.0),
                        l.clt_time.map(|t| t.0),
                        l.partner_lifetime.map(|t| t.0)
                    )
                });
            }
        }
        if bytes.first() == Some(&MessageType::BNDREPLY.0)
            && let Ok(r) = decode_bndreply(bytes)
        {
            if self.verbose {
                for a in &r.leases {
                    self.note(|| format!("{side} <- BNDREPLY {} {:?}", a.addr, a.result));
                }
                if let Some(w) = r.whole {
                    self.note(|| format!("{side} <- BNDREPLY refusing the whole: {w:?}"));
                }
            }
            for a in &r.leases {
                if let AckResult::Accepted(echo) = a.result
                    && let Some(pl) = echo.partner_lifetime_sent
                {
                    let e = self
                        .acked
                        .entry((side, a.kind, u128::from(a.addr)))
                        .or_insert(pl);
                    if pl.cmp_wrapping(*e).is_gt() {
                        *e = pl;
                    }
                }
            }
        }
        let now = self.now(side);
        if let Some(pr) = self.servers[side].proc.as_mut() {
            pr.ep.handle_message(now, bytes);
        }
        self.service(side);
    }

    /// The server's lease housekeeping: expiry (`Engine::reclaim`), every change to the sync
    /// (as the socket loop's reclaim timer does), then a pump (which also runs the periodic
    /// rescan when the sync has work).
    fn housekeeping(&mut self, side: usize) {
        let now = self.now(side);
        let srv = &mut self.servers[side];
        let Some(pr) = srv.proc.as_mut() else { return };
        for k in 0..srv.shards.count_usize() {
            let (engine, store) = (&mut srv.shards.engines[k], &mut srv.shards.stores[k]);
            engine.reclaim(now.wall, store, 1024);
            for c in engine.changes() {
                pr.sync
                    .changed(k as u32, &c.binding, MonoUs(now.mono_ms * 1000));
            }
        }
        self.service(side);
    }

    // --------------------------------------------------------------------------------------
    // Clients.

    /// One client message to every server that is up (a relay forwarding to both): each
    /// answers or not as its engine decides; the changes go to its sync after the reply.
    fn broadcast(&mut self, payload: &[u8]) -> Vec<Answer> {
        let mut out = Vec::new();
        for side in [P, S] {
            let now = self.now(side);
            let srv = &mut self.servers[side];
            let Some(pr) = srv.proc.as_mut() else {
                continue;
            };
            let inbound = Inbound::parse(payload);
            let k = inbound.shard(srv.shards.count()).unwrap_or(0) as usize;
            let meta = RxMeta {
                interface: "eth0",
                src: "fe80::1".parse().expect("an address"),
                dst: "ff02::1:2".parse().expect("an address"),
            };
            let mut buf = vec![0u8; 4096];
            let outcome = srv.shards.engines[k].handle_inbound(
                now.wall,
                &meta,
                &inbound,
                &mut srv.shards.stores[k],
                &mut srv.rng,
                &mut buf,
            );
            for c in srv.shards.engines[k].changes() {
                pr.sync
                    .changed(k as u32, &c.binding, MonoUs(now.mono_ms * 1000));
            }
            let partner_down = pr.ep.state().name() == PartnerDown;
            if let Outcome::Reply { len } = outcome {
                buf.truncate(len);
                out.push(Answer {
                    side,
                    reply: buf,
                    wall: now.wall,
                    partner_down,
                });
            }
            self.service(side);
        }
        out
    }

    fn next_xid(&mut self, ci: usize) -> u32 {
        let c = &mut self.clients[ci];
        c.xid = (c.xid + 1) & 0xff_ffff;
        c.xid
    }

    fn client_act(&mut self, ci: usize) {
        self.drop_ended(ci);
        let has = !self.clients[ci].held.is_empty();
        let (t1, t2) = (self.clients[ci].t1_at, self.clients[ci].t2_at);
        if !has {
            if self.rng.pct(20) {
                self.exchange(ci, Ask::RapidSolicit);
            } else {
                self.solicit(ci);
            }
        } else if self.t >= t2 {
            self.exchange(ci, Ask::Rebind);
        } else if self.t >= t1 {
            self.exchange(ci, Ask::Renew);
        } else {
            match self.rng.next() % 100 {
                0..=9 => self.release(ci),
                10..=14 => self.decline(ci),
                15..=24 => self.exchange(ci, Ask::Renew),
                25..=29 => self.exchange(ci, Ask::Rebind),
                30..=34 => self.exchange(ci, Ask::Request),
                _ => {}
            }
        }
        let c = &self.clients[ci];
        let idle = self.t + self.rng.range(5_000, 90_000);
        let due = if c.held.is_empty() {
            idle
        } else if self.t < c.t1_at {
            c.t1_at.min(idle)
        } else {
            // Retransmission while renewing / rebinding.
            self.t + self.rng.range(2_000, 15_000)
        };
        self.clients[ci].next_at = due.max(self.t + 1);
    }

    /// Leases whose end has come are no longer the client's.
    fn drop_ended(&mut self, ci: usize) {
        let t = self.t;
        let ended: Vec<Held> = self.clients[ci]
            .held
            .iter()
            .filter(|h| h.hold_end <= t)
            .copied()
            .collect();
        for h in ended {
            self.unhold(ci, h.kind, h.addr);
        }
    }

    fn unhold(&mut self, ci: usize, kind: LeaseKind, addr: Ipv6Addr) {
        self.clients[ci]
            .held
            .retain(|h| !(h.kind == kind && h.addr == addr));
        if self.holders.get(&key(kind, addr)) == Some(&ci) {
            self.holders.remove(&key(kind, addr));
        }
    }

    fn ias(&self, ci: usize, with_leases: bool) -> Vec<Vec<u8>> {
        let c = &self.clients[ci];
        let addrs: Vec<Ipv6Addr> = c
            .held
            .iter()
            .filter(|h| with_leases && h.kind == LeaseKind::Address)
            .map(|h| h.addr)
            .collect();
        let prefixes: Vec<(Ipv6Addr, u8)> = c
            .held
            .iter()
            .filter(|h| with_leases && h.kind == LeaseKind::Prefix)
            .map(|h| (h.addr, h.len))
            .collect();
        vec![ia_na(IAID_NA, &addrs), ia_pd(IAID_PD, &prefixes)]
    }

    fn solicit(&mut self, ci: usize) {
        let xid = self.next_xid(ci);
        let mut o = vec![opt(1, &self.clients[ci].duid.clone())];
        o.extend(self.ias(ci, false));
        let answers = self.broadcast(&dhcp_msg(MessageType::SOLICIT, xid, &o));
        let advertised: Vec<(Answer, ReplyView)> = answers
            .into_iter()
            .filter_map(|a| read_reply(&a.reply).map(|v| (a, v)))
            .filter(|(_, v)| v.msg_type == MessageType::ADVERTISE)
            .collect();
        if advertised.is_empty() {
            return;
        }
        let pick = (self.rng.next() as usize) % advertised.len();
        let (_, v) = &advertised[pick];
        // Request from the chosen server, the advertised leases as hints (RFC 8415 §18.2.2).
        let addrs: Vec<Ipv6Addr> = v
            .leases
            .iter()
            .filter(|l| l.0 == LeaseKind::Address && l.4 > 0)
            .map(|l| l.1)
            .collect();
        let prefixes: Vec<(Ipv6Addr, u8)> = v
            .leases
            .iter()
            .filter(|l| l.0 == LeaseKind::Prefix && l.4 > 0)
            .map(|l| (l.1, l.2))
            .collect();
        let xid = self.next_xid(ci);
        let o = vec![
            opt(1, &self.clients[ci].duid.clone()),
            opt(2, &v.server),
            ia_na(IAID_NA, &addrs),
            ia_pd(IAID_PD, &prefixes),
        ];
        let answers = self.broadcast(&dhcp_msg(MessageType::REQUEST, xid, &o));
        self.take_reply(ci, answers, Ask::Request);
    }

    /// Request (naming the last server, the leases held as hints), Renew (naming it), Rebind
    /// (naming none), or a Solicit with Rapid Commit.
    fn exchange(&mut self, ci: usize, ask: Ask) {
        let xid = self.next_xid(ci);
        let mut o = vec![opt(1, &self.clients[ci].duid.clone())];
        let t = match ask {
            Ask::Request | Ask::Renew => {
                let Some(sid) = self.clients[ci].server.clone() else {
                    return self.solicit(ci);
                };
                o.push(opt(2, &sid));
                if ask == Ask::Request {
                    MessageType::REQUEST
                } else {
                    MessageType::RENEW
                }
            }
            Ask::Rebind => MessageType::REBIND,
            Ask::RapidSolicit => {
                o.push(opt(14, &[]));
                MessageType::SOLICIT
            }
        };
        o.extend(self.ias(ci, ask != Ask::RapidSolicit));
        let answers = self.broadcast(&dhcp_msg(t, xid, &o));
        self.take_reply(ci, answers, ask);
    }

    /// The client takes one Reply (the first to arrive: any of them) and applies it.
    fn take_reply(&mut self, ci: usize, answers: Vec<Answer>, ask: Ask) {
        let mut replies: Vec<(Answer, ReplyView)> = answers
            .into_iter()
            .filter_map(|a| read_reply(&a.reply).map(|v| (a, v)))
            .filter(|(_, v)| v.msg_type == MessageType::REPLY)
            .collect();
        if replies.is_empty() {
            if ask == Ask::RapidSolicit {
                self.solicit(ci);
            }
            return;
        }
        if ask == Ask::RapidSolicit {
            self.stats.rapid_commits += 1;
        }
        let pick = (self.rng.next() as usize) % replies.len();
        let (a, v) = replies.swap_remove(pick);
        self.apply_reply(ci, &a, &v);
    }

    fn apply_reply(&mut self, ci: usize, a: &Answer, v: &ReplyView) {
        let mut got = false;
        for &(kind, addr, len, preferred, valid) in &v.leases {
            if valid == 0 {
                self.unhold(ci, kind, addr);
                continue;
            }
            got = true;
            if preferred > valid {
                self.fail(&format!("{addr}: preferred {preferred} > valid {valid}"));
            }
            self.check_mclt(a, kind, addr, valid);
            let hold_end = (self.t + u64::from(valid) * 1000).saturating_sub(SLACK_MS);
            if hold_end <= self.t {
                self.unhold(ci, kind, addr);
                continue;
            }
            // Invariant 1: nobody else holds it.
            if let Some(&other_ci) = self.holders.get(&key(kind, addr))
                && other_ci != ci
            {
                let theirs = self.clients[other_ci]
                    .held
                    .iter()
                    .find(|h| h.kind == kind && h.addr == addr)
                    .copied();
                match theirs {
                    Some(Held {
                        hold_end,
                        lost: Some((loss, false)),
                        ..
                    }) if hold_end > self.t => {
                        // The first holder's lease was lost with a disk or a power loss and
                        // nobody knew of it any more.
                        match loss {
                            Loss::Disk => self.stats.conflicts_after_disk_loss += 1,
                            Loss::Power => self.stats.conflicts_after_power_loss += 1,
                        }
                        self.note(|| {
                            format!(
                                "{addr}: given to client {ci} while client {other_ci} holds it, \
                                 unknown to both servers since the {loss:?} loss"
                            )
                        });
                        self.unhold(other_ci, kind, addr);
                    }
                    Some(h) if h.hold_end > self.t => self.fail(&format!(
                        "invariant 1: {kind:?} {addr} given to client {ci} by server {} while \
                         client {other_ci} holds it until {} (granted by server {} at {})",
                        a.side, h.hold_end, h.granted_by, h.granted_at
                    )),
                    _ => {}
                }
            }
            self.holders.insert(key(kind, addr), ci);
            let held = Held {
                kind,
                addr,
                len,
                hold_end,
                granted_at: self.t,
                granted_by: a.side,
                lost: None,
            };
            let c = &mut self.clients[ci];
            if let Some(h) = c.held.iter_mut().find(|h| h.kind == kind && h.addr == addr) {
                *h = held;
                self.stats.extensions += 1;
            } else {
                c.held.push(held);
                self.stats.grants += 1;
            }
        }
        if got {
            let c = &mut self.clients[ci];
            c.server = Some(v.server.clone());
            let t1 = u64::from(v.t1.unwrap_or(0).max(1));
            let t2 = u64::from(v.t2.unwrap_or(0).max(2));
            c.t1_at = self.t + t1 * 1000;
            c.t2_at = self.t + t2.max(t1) * 1000;
        } else if v.no_binding {
            // RFC 8415 §18.2.10.1: NoBinding → Request (with the leases as hints) soon.
            self.clients[ci].t1_at = self.t + 1_000;
        }
    }

    /// Invariant 3 (RFC 8156 §4.4): outside PARTNER-DOWN, a lease's valid lifetime ends no
    /// later than max(now, acked partner lifetime) + MCLT, with "acked" the largest partner
    /// lifetime the partner echoed in a BNDREPLY for this lease to this server.
    fn check_mclt(&mut self, a: &Answer, kind: LeaseKind, addr: Ipv6Addr, valid: u32) {
        if a.partner_down {
            return;
        }
        self.stats.mclt_checks += 1;
        let acked = self
            .acked
            .get(&(a.side, kind, u128::from(addr)))
            .copied()
            .unwrap_or(FailoverTime(0));
        let ahead = if acked.0 == 0 {
            0
        } else {
            i64::from(acked.wrapping_sub(a.wall)).max(0)
        };
        if i64::from(valid) > ahead + i64::from(self.mclt) {
            self.fail(&format!(
                "invariant 3: server {} gave {addr} valid {valid} s at {} with acked partner \
                 lifetime {} and MCLT {}",
                a.side, a.wall.0, acked.0, self.mclt
            ));
        }
    }

    fn release(&mut self, ci: usize) {
        let Some(sid) = self.clients[ci].server.clone() else {
            return;
        };
        self.stats.releases += 1;
        let xid = self.next_xid(ci);
        let mut o = vec![opt(1, &self.clients[ci].duid.clone()), opt(2, &sid)];
        o.extend(self.ias(ci, true));
        // The client lets go whether or not a Reply comes (RFC 8415 §18.2.7 gives up after
        // its retransmissions).
        let held: Vec<Held> = self.clients[ci].held.clone();
        for h in held {
            self.unhold(ci, h.kind, h.addr);
        }
        let _ = self.broadcast(&dhcp_msg(MessageType::RELEASE, xid, &o));
    }

    fn decline(&mut self, ci: usize) {
        let Some(sid) = self.clients[ci].server.clone() else {
            return;
        };
        let Some(h) = self.clients[ci]
            .held
            .iter()
            .find(|h| h.kind == LeaseKind::Address)
            .copied()
        else {
            return;
        };
        self.stats.declines += 1;
        let xid = self.next_xid(ci);
        let o = vec![
            opt(1, &self.clients[ci].duid.clone()),
            opt(2, &sid),
            ia_na(IAID_NA, &[h.addr]),
        ];
        self.unhold(ci, h.kind, h.addr);
        let _ = self.broadcast(&dhcp_msg(MessageType::DECLINE, xid, &o));
    }

    // --------------------------------------------------------------------------------------
    // Chaos.

    fn chaos_op(&mut self) {
        match self.rng.next() % 100 {
            0..=11 if !self.partitioned => {
                let dur = self.rng.range(1_000, 240_000);
                self.stats.partitions += 1;
                self.note(|| format!("PARTITION for {dur} ms"));
                self.partitioned = true;
                self.partition_ends = Some(self.t + dur);
            }
            12..=19 => {
                if let Some(w) = self.wire.take() {
                    self.note(|| format!("DROP connection {}", w.id));
                    for side in [P, S] {
                        if self.servers[side].conn == Some(w.id) {
                            let at = self.t + self.rng.range(1, 200);
                            self.servers[side].closed_at = Some((at, w.id));
                        }
                    }
                }
            }
            20..=39 => {
                let side = self.rng.side();
                if self.servers[side].proc.is_some() {
                    let down = self.rng.range(100, 180_000);
                    let wipe = self.rng.pct(8);
                    let power = self.power_loss && !wipe && self.rng.pct(30);
                    self.crash(side, down, power, wipe);
                }
            }
            40..=44 => {
                // Graceful restart: DISCONNECT ServerShuttingDown (D7), then start again.
                let side = self.rng.side();
                let now = self.now(side);
                if self.servers[side].proc.is_some() {
                    self.note(|| format!("{side}: SHUTDOWN"));
                }
                if let Some(pr) = self.servers[side].proc.as_mut() {
                    let _ = pr.ep.handle_operator(now, Operator::Shutdown);
                    self.service(side);
                    let srv = &mut self.servers[side];
                    // The daemon msyncs and closes the stores on the way out.
                    srv.shards.msync();
                    srv.proc = None;
                    srv.conn = None;
                    srv.restart_at = Some(self.t + self.rng.range(100, 30_000));
                }
            }
            45..=54 => {
                let side = self.rng.side();
                let skew = self.rng.range(0, 6) as i64 - 3;
                self.note(|| format!("{side}: skew {skew} s"));
                self.servers[side].skew_s = skew;
            }
            55..=69 => {
                // The operator: PARTNER-DOWN, only when the partner really is down (§8.4).
                let side = self.rng.side();
                let o = other(side);
                if self.servers[o].proc.is_none() {
                    let now = self.now(side);
                    if let Some(pr) = self.servers[side].proc.as_mut() {
                        let r = pr.ep.handle_operator(now, Operator::PartnerDown);
                        if r.is_ok() {
                            self.stats.operator_pd += 1;
                            self.servers[o].declared_down = true;
                        }
                        self.note(|| format!("{side}: OPERATOR PARTNER-DOWN → {r:?}"));
                        self.service(side);
                    }
                }
            }
            70..=79 => {
                self.delay_ms = (1, self.rng.range(1, 500));
            }
            _ => {}
        }
    }

    // --------------------------------------------------------------------------------------
    // Time.

    fn next_time(&self) -> u64 {
        let mut t = u64::MAX;
        for n in &self.servers {
            if let Some(pr) = &n.proc {
                if let Some(x) = pr.ep.poll_timeout() {
                    t = t.min(x);
                }
                let now = Now {
                    mono_ms: self.t,
                    wall: FailoverTime(0),
                };
                if pr.sync.busy(&pr.ep, now) {
                    t = t.min(self.t);
                }
                t = t.min(n.next_reclaim).min(n.next_flush);
            }
            if let Some(x) = n.restart_at {
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
        if self.wire.is_none() && self.servers.iter().all(|n| n.proc.is_some()) {
            t = t.min(self.next_connect.max(self.t));
        }
        if self.chaos {
            t = t.min(self.next_chaos);
        }
        for c in &self.clients {
            t = t.min(c.next_at);
        }
        t.max(self.t)
    }

    fn step(&mut self) {
        self.stats.steps += 1;
        let t = self.next_time();
        if t == self.t {
            self.stalls += 1;
            if self.stalls > 10_000 {
                self.fail("the simulation does not advance");
            }
        } else {
            self.stalls = 0;
        }
        self.t = t;
        if self.partition_ends.is_some_and(|x| x <= t) {
            self.partition_ends = None;
            self.partitioned = false;
            self.note(|| "HEAL".into());
            if let Some(w) = self.wire.as_mut() {
                for q in &mut w.queue {
                    for (at, _) in q.iter_mut() {
                        *at = (*at).max(t);
                    }
                }
            }
        }
        for side in [P, S] {
            if self.servers[side].restart_at.is_some_and(|x| x <= t) {
                self.start(side);
            }
            if let Some((at, id)) = self.servers[side].closed_at
                && at <= t
            {
                self.servers[side].closed_at = None;
                if self.servers[side].conn == Some(id) {
                    self.servers[side].conn = None;
                    let now = self.now(side);
                    if let Some(pr) = self.servers[side].proc.as_mut() {
                        pr.ep.handle_closed(now);
                    }
                    self.service(side);
                }
            }
        }
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
                    if self.servers[side].conn != Some(id) {
                        continue;
                    }
                    self.deliver(side, &bytes);
                }
            }
        }
        for side in [P, S] {
            let now = self.now(side);
            if let Some(pr) = self.servers[side].proc.as_mut()
                && pr.ep.poll_timeout().is_some_and(|x| x <= t)
            {
                pr.ep.handle_timeout(now);
                self.service(side);
            }
            if self.servers[side].proc.is_some() {
                if self.servers[side].next_reclaim <= t {
                    self.servers[side].next_reclaim = t + RECLAIM_EVERY_MS;
                    self.housekeeping(side);
                } else {
                    // The daemon pumps after every loop turn.
                    self.pump(side);
                }
                if self.servers[side].next_flush <= t {
                    let srv = &mut self.servers[side];
                    srv.next_flush = t + FLUSH_EVERY_MS;
                    srv.shards.msync();
                }
            }
        }
        if self.wire.is_none()
            && t >= self.next_connect
            && self.servers.iter().all(|n| n.proc.is_some())
        {
            self.next_connect = t + 5_000;
            if !self.partitioned {
                self.connect();
            }
        }
        for ci in 0..self.clients.len() {
            if self.clients[ci].next_at <= t {
                self.client_act(ci);
            }
        }
        if self.chaos && t >= self.next_chaos {
            self.chaos_op();
            self.next_chaos = t + self.rng.range(1_000, 60_000);
        }
        self.update_flow();
        self.check_invariants();
    }

    /// Both up, communications OK, both in states where updates flow (D25).
    fn flowing(&self) -> bool {
        self.servers.iter().all(|n| {
            n.proc.as_ref().is_some_and(|p| {
                p.ep.communications_ok()
                    && !matches!(p.ep.state().name(), Startup | Recover | RecoverWait)
            })
        })
    }

    fn update_flow(&mut self) {
        if self.flowing() {
            self.flow_since.get_or_insert(self.t);
        } else {
            self.flow_since = None;
        }
    }

    // --------------------------------------------------------------------------------------
    // Invariants.

    fn check_invariants(&mut self) {
        let t = self.t;
        for ci in 0..self.clients.len() {
            for h in self.clients[ci].held.clone() {
                if h.lost.is_some() || h.hold_end <= t {
                    continue;
                }
                // 2a: some store covers it, always (a process crash keeps every write).
                let by = [self.covers(P, ci, &h), self.covers(S, ci, &h)];
                if !by[P] && !by[S] {
                    self.fail(&format!(
                        "invariant 2: client {ci}'s {:?} {} (until {}, granted by {} at {}) is \
                         covered by no server",
                        h.kind, h.addr, h.hold_end, h.granted_by, h.granted_at
                    ));
                }
                // 2b: both cover it once updates have flowed for GRACE_MS since the grant (and
                // since the server's disk was lost).
                if let Some(since) = self.flow_since {
                    for side in [P, S] {
                        let base = since
                            .max(h.granted_at)
                            .max(self.servers[side].lost_disk_at.unwrap_or(0));
                        if t >= base + GRACE_MS && !by[side] {
                            self.fail(&format!(
                                "invariant 2: updates flowed for {} ms, yet server {side} does \
                                 not cover client {ci}'s {:?} {} (until {}, granted by {} at {})",
                                t - base,
                                h.kind,
                                h.addr,
                                h.hold_end,
                                h.granted_by,
                                h.granted_at
                            ));
                        }
                    }
                }
            }
        }
        if self.quiescent() {
            self.stats.quiescent_checks += 1;
            self.check_tables_equal();
        }
    }

    /// Both NORMAL with communications OK, nothing queued, in flight or flagged.
    fn quiescent(&self) -> bool {
        self.servers.iter().all(|n| {
            n.proc.as_ref().is_some_and(|p| {
                p.ep.state().name() == Normal
                    && p.ep.communications_ok()
                    && !p.sync.busy(
                        &p.ep,
                        Now {
                            mono_ms: self.t,
                            wall: FailoverTime(0),
                        },
                    )
                    && p.sync.backlog() == 0
                    && p.ep.unacked_updates() == 0
                    && p.ep.unanswered_updates() == 0
            }) && n
                .shards
                .all()
                .all(|b| !b.flags.contains(BindingFlags::UPDATE_PENDING))
        }) && self
            .wire
            .as_ref()
            .is_some_and(|w| w.queue.iter().all(VecDeque::is_empty))
    }

    /// The ACTIVE leases (client, IA, end) one table has and the other has not.
    fn table_diff(&self) -> Vec<(usize, ActiveLease)> {
        let active = |side: usize| -> Vec<ActiveLease> {
            self.servers[side]
                .shards
                .all()
                .filter(|b| b.status == BindingStatus::ACTIVE)
                .map(|b| {
                    (
                        b.kind,
                        b.addr,
                        b.prefix_len,
                        b.duid,
                        b.iaid,
                        b.state_expiration_time,
                    )
                })
                .collect()
        };
        let (mut a, mut b) = (active(P), active(S));
        a.sort_unstable_by_key(|l| (l.0, l.1));
        b.sort_unstable_by_key(|l| (l.0, l.1));
        if a == b {
            return Vec::new();
        }
        let mut out: Vec<(usize, ActiveLease)> = a
            .iter()
            .filter(|x| !b.contains(x))
            .map(|x| (P, *x))
            .collect();
        out.extend(b.iter().filter(|x| !a.contains(x)).map(|x| (S, *x)));
        out
    }

    /// Invariant 4 while running: both NORMAL and idle, the same ACTIVE leases, except a lease
    /// a power loss set back on one side (it converges when it next changes, at the latest
    /// when it expires; counted, and the end of the run requires it converged).
    fn check_tables_equal(&mut self) {
        let diff = self.table_diff();
        let keys: std::collections::HashSet<_> = diff.iter().map(|(_, l)| key(l.0, l.1)).collect();
        self.set_back.retain(|k| keys.contains(k));
        let unexplained: Vec<_> = diff
            .iter()
            .filter(|(_, l)| !self.set_back.contains(&key(l.0, l.1)))
            .collect();
        if !unexplained.is_empty() {
            self.fail(&format!(
                "invariant 4: both NORMAL and idle, the tables differ (side, lease): \
                 {unexplained:?}"
            ));
        }
    }

    // --------------------------------------------------------------------------------------
    // A run.

    /// Chaos for `chaos_ms`, then heal everything and require both NORMAL, idle and converged
    /// within `settle_ms`, with every client lease covered by both.
    fn run(&mut self, chaos_ms: u64, settle_ms: u64) {
        while self.t < chaos_ms {
            self.step();
        }
        self.heal();
        let deadline = self.t + settle_ms;
        loop {
            if self.quiescent()
                && self.flow_since.is_some_and(|s| self.t >= s + GRACE_MS)
                && self.table_diff().is_empty()
            {
                break;
            }
            if self.t > deadline {
                let diff = self.table_diff();
                self.fail(&format!(
                    "invariant 4: not NORMAL, idle and converged {settle_ms} ms after healing \
                     (quiescent: {}, differing: {diff:?})",
                    self.quiescent()
                ));
            }
            self.step();
        }
        for ci in 0..self.clients.len() {
            for h in self.clients[ci].held.clone() {
                if h.lost.is_some() || h.hold_end <= self.t {
                    continue;
                }
                if !(self.covers(P, ci, &h) && self.covers(S, ci, &h)) {
                    self.fail(&format!(
                        "invariant 4: after healing client {ci}'s {} is not in both tables",
                        h.addr
                    ));
                }
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
            self.servers[side].skew_s = self.servers[side].skew_s.clamp(-1, 1);
            if self.servers[side].proc.is_none() && self.servers[side].restart_at.is_none() {
                self.servers[side].restart_at = Some(self.t);
            }
        }
        self.delay_ms = (1, 50);
    }
}

/// Seeds beyond the default range that long runs found failing, run every time as
/// regressions (docs/failover.md): 222 (D59), 982 (D57), 1093 and 1662 (D56), 871 and 1499
/// (a lease known to nobody counted as protected).
const REGRESSION_SEEDS: &[u64] = &[222, 871, 982, 1093, 1499, 1662];

/// The seeds to run: `TANDEM_SIM_SEED=s` (one, with its log), `TANDEM_SIM_SEEDS=n` (0..n),
/// else 0..`default`; `TANDEM_SIM_FIRST=f` shifts the range (f..f+n); and the
/// [`REGRESSION_SEEDS`] outside it.
fn seeds(default: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("TANDEM_SIM_SEED") {
        return vec![s.parse().expect("TANDEM_SIM_SEED is a number")];
    }
    let n = std::env::var("TANDEM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let first = std::env::var("TANDEM_SIM_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    let range = first..first + n;
    range
        .clone()
        .chain(
            REGRESSION_SEEDS
                .iter()
                .copied()
                .filter(|s| !range.contains(s)),
        )
        .collect()
}

/// Chaos for this long per seed, then healing.
const CHAOS_MS: u64 = 12 * 60_000;
/// After healing, both must be NORMAL, idle and converged within this long.
const SETTLE_MS: u64 = 30 * 60_000;

#[test]
fn sim_binding_sync_keeps_leases_unique_known_and_capped_under_chaos() {
    let verbose = std::env::var("TANDEM_SIM_SEED").is_ok();
    // The test reports its own run time; no simulated server sees this clock.
    let started = std::time::Instant::now();
    let seeds = seeds(200);
    // The seeds are independent: one thread per CPU, each taking every k-th seed.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut total = Stats::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut stats = Stats::default();
                    for &seed in seeds.iter().skip(k).step_by(threads) {
                        let mut sim = Sim::new(seed, verbose);
                        sim.run(CHAOS_MS, SETTLE_MS);
                        stats.add(&sim.stats);
                    }
                    stats
                })
            })
            .collect();
        for w in workers {
            match w.join() {
                Ok(stats) => total.add(&stats),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    eprintln!(
        "failover_sim: {} seeds ({threads} threads) in {:.1?}: {total:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(total.grants > seeds.len() as u64, "clients get leases");
    assert!(
        total.bndupd > seeds.len() as u64,
        "bindings go to the partner"
    );
}
