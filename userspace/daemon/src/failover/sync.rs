//! Binding synchronisation (RFC 8156 §7) between a relationship's [`Endpoint`] and the lease
//! shards: what goes out as BNDUPD, what comes in as BNDUPD and BNDREPLY, and the scans that
//! resend what the partner has not acknowledged.
//!
//! * **Out.** Every committed change of an engine ([`tandem_proto::Engine::changes`]) is
//!   handed over with [`BindingSync::changed`] after the client's Reply went out (lazy update,
//!   §4.3) and queued, one entry per lease holding its latest state (`docs/failover.md` D49:
//!   after a partition the partner gets each lease once, as it is now, not its history).
//!   [`BindingSync::pump`] encodes the queue as BNDUPDs while the endpoint's
//!   window ([`Endpoint::update_window`], the partner's MAX_UNACKED_BNDUPD) allows. The queue is
//!   bounded ([`QUEUE_CAP`]); a change that does not fit is not lost: the binding keeps its
//!   "partner needs update" flag in the store, and a scan sends it (counted as `overflow`).
//! * **Scans** walk every shard's store: for the partner's UPDREQ (flagged bindings) or
//!   UPDREQALL (all), after which the endpoint sends UPDDONE once the last BNDREPLY came
//!   (§8.5.2); whenever updates may flow again (§8.8 "upon entering NORMAL"); and every
//!   [`RESCAN_EVERY_MS`] while they flow (§7.5.4's "periodic scan", which also resends what the
//!   partner rejected as outdated).
//! * **In.** The partner's BNDUPD is decoded (`tandem_failover::bndupd`), each lease stored
//!   by the engine of the client's shard ([`tandem_proto::Engine::partner_update`], §7.5.4),
//!   the stores made durable (msync) and only then the BNDREPLY sent (§7.5.2). A BNDREPLY
//!   acknowledges our bindings in their shards ([`tandem_proto::Engine::partner_ack`], §7.7).
//!
//! The shards are reached through [`LeaseShards`]: directly on the socket datapath's one
//! thread (`ShardSet`); on the XDP datapath through the workers that own them
//! (`server::sync_queues::WorkerShards`: requests to the owning worker, answers back, within
//! a bounded wait; `docs/failover.md` D27). The partner's leases and acknowledgements are
//! handed over in batches ([`LeaseShards::partner_updates`], [`LeaseShards::partner_acks`]:
//! one round trip per worker instead of one per lease there), in the order they arrived.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::Ipv6Addr;

use tandem_failover::bndupd::{
    BndreplyMessage, BndupdMessage, CLIENT_BNDUPD_MAX, ClientBndupd, DecodedReply, DecodedUpdate,
    Reject, Verdict, decode_bndupd,
};
use tandem_failover::{BindingInput, Endpoint, Event, Now, Role};
use tandem_lease::sync::{AckInfo, LeaseUpdate, Role as SyncRole};
use tandem_lease::{Binding, BindingFlags, FailoverTime, LeaseKind};
use tandem_proto::{PartnerOutcome, duid_hash};
use tandem_wire::dhcp::StatusCode;

use super::latency::{LatencySummary, MonoUs, UpdateLatency};

/// Changes queued for the partner, at most; more wait in the store for a scan.
pub const QUEUE_CAP: usize = 65_536;
/// How often flagged bindings are looked for while updates flow (§7.5.4 periodic scan).
pub const RESCAN_EVERY_MS: u64 = 60_000;
/// How often the primary rebalances delegable prefixes besides when asked (§4.2.2 "SHOULD
/// also rebalance on its own").
pub const REBALANCE_EVERY_MS: u64 = 300_000;
/// Bindings a scan visits per pump call: at most one chunk, whatever it finds, so that a scan
/// for the few flagged bindings of a big store does not hold the event loop (a million
/// bindings take about a second to read); the driver pumps again while [`BindingSync::busy`].
pub const SCAN_CHUNK: usize = 512;
/// A message buffer: one BNDUPD of one binding, or the BNDREPLY to the partner's (a partner
/// BNDUPD is at most a frame).
const MSG_BUF: usize = 65_536;

/// The lease shards, as the binding synchronisation needs them.
pub trait LeaseShards {
    /// Number of shards.
    fn count(&self) -> u32;
    /// The shard of a lease without a client (a bare delegable prefix), by its pool slot.
    fn shard_of_lease(&self, kind: LeaseKind, addr: Ipv6Addr, len: u8) -> Option<u32>;
    /// Stores one lease of the partner's BNDUPD in shard `shard` if §7.5.4 accepts it; pushes
    /// to `out` our bindings that must go back to the partner at once.
    fn partner_update(
        &mut self,
        shard: u32,
        now: FailoverTime,
        role: SyncRole,
        upd: &LeaseUpdate,
        out: &mut dyn FnMut(&Binding),
    ) -> PartnerOutcome;
    /// Applies the partner's acknowledgement of our update of a lease in shard `shard`;
    /// pushes to `out` what changed as a result (a freed lease).
    fn partner_ack(
        &mut self,
        shard: u32,
        now: FailoverTime,
        kind: LeaseKind,
        addr: Ipv6Addr,
        info: &AckInfo,
        out: &mut dyn FnMut(&Binding),
    );
    /// Visits up to `max` bindings of shard `shard` from `cursor`; the next cursor, `None`
    /// at the end.
    fn scan(&self, shard: u32, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding))
    -> Option<u64>;
    /// RFC 8156 §4.2.2, on the primary: brings shard `shard`'s FREE-BACKUP prefixes to
    /// `share_percent` % of its available ones per PD pool, at most `cap` per pool
    /// ([`tandem_proto::Engine::rebalance_prefixes`]); pushes every moved prefix to `out`.
    /// `false` if the shard's owner did not answer in time (an XDP worker, D27): it may still
    /// move prefixes, flagged "partner needs update" in its store, which a scan then sends
    /// (D58).
    fn rebalance(
        &mut self,
        shard: u32,
        now: FailoverTime,
        share_percent: u32,
        cap: u64,
        out: &mut dyn FnMut(&Binding),
    ) -> bool;
    /// Makes every write so far durable (msync).
    ///
    /// # Errors
    /// If a store cannot be synced.
    fn make_durable(&mut self) -> io::Result<()>;

    /// [`LeaseShards::partner_update`] for each `(shard, lease)` of `batch`, in order per
    /// shard: `outcomes` gets one outcome per lease (cleared first), `out` gets what must go
    /// back to the partner, each with the index in `batch` of the lease that caused it (the
    /// caller orders them by that index). Shards owned elsewhere (the XDP workers') take the
    /// batch in one round trip per owner.
    fn partner_updates(
        &mut self,
        now: FailoverTime,
        role: SyncRole,
        batch: &[(u32, LeaseUpdate)],
        outcomes: &mut Vec<PartnerOutcome>,
        out: &mut dyn FnMut(usize, &Binding),
    ) {
        outcomes.clear();
        for (i, (shard, upd)) in batch.iter().enumerate() {
            let outcome = self.partner_update(*shard, now, role, upd, &mut |b| out(i, b));
            outcomes.push(outcome);
        }
    }

    /// [`LeaseShards::partner_ack`] for each acknowledgement of `batch`, in order per shard;
    /// `out` gets what changed as a result, each with the index in `batch` of its
    /// acknowledgement.
    fn partner_acks(
        &mut self,
        now: FailoverTime,
        batch: &[AckItem],
        out: &mut dyn FnMut(usize, &Binding),
    ) {
        for (i, a) in batch.iter().enumerate() {
            self.partner_ack(a.shard, now, a.kind, a.addr, &a.info, &mut |b| out(i, b));
        }
    }

    /// `false` once this turn has spent the time it may spend waiting for the shards: the
    /// caller starts no more optional work (scan chunks) until the next turn. Shards on the
    /// caller's own thread are always ready; the XDP workers' are not after a few ms or a
    /// worker that did not answer in time.
    fn ready(&self) -> bool {
        true
    }
}

/// One acknowledgement of a batch ([`LeaseShards::partner_acks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckItem {
    /// The shard of the binding the BNDUPD came from.
    pub shard: u32,
    /// Address or prefix.
    pub kind: LeaseKind,
    /// The address or prefix.
    pub addr: Ipv6Addr,
    /// What the partner acknowledged (§7.7).
    pub info: AckInfo,
}

/// Counters of the binding synchronisation of one relationship.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Changes handed over by the engines.
    pub changes: u64,
    /// Changes that did not fit the queue (sent by a later scan).
    pub overflow: u64,
    /// Changes that did not fit a worker's change ring on their way here (XDP, D27; sent by
    /// a later scan). Also counted in `changes`, not in `overflow`.
    pub ring_overflow: u64,
    /// Bindings that cannot be expressed as a BNDUPD (an address without a client).
    pub unencodable: u64,
    /// Leases of the partner's BNDUPDs accepted and stored.
    pub leases_accepted: u64,
    /// Leases of the partner's BNDUPDs rejected (§7.5.4).
    pub leases_rejected: u64,
    /// Leases of our BNDUPDs the partner accepted.
    pub acked: u64,
    /// Leases of our BNDUPDs the partner rejected.
    pub rejected_by_partner: u64,
    /// BNDREPLYs we could not send because the stores could not be made durable (the
    /// BNDUPD was refused, the partner resends it).
    pub durability_failures: u64,
    /// Scans completed.
    pub scans: u64,
    /// Prefix rebalancings run (primary, §4.2.2).
    pub rebalances: u64,
    /// Prefixes moved by them (given to or taken back from the secondary).
    pub prefixes_moved: u64,
}

/// The hash of the sync's maps: their keys are leases of our own stores and our own tags, not
/// values a client or the partner picks freely, so SipHash's resistance to chosen keys buys
/// nothing, and it cost ≈ 2 % of the core the worker and the plane share at the top rate
/// (`docs/failover.md` D62). A multiply-rotate mix of each word (as rustc's FxHash), with a
/// final rotation that brings the well-mixed high bits down to the bucket index.
type KeyHash = BuildHasherDefault<KeyHasher>;

#[derive(Clone, Copy, Debug, Default)]
struct KeyHasher(u64);

impl KeyHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            if let Some(w) = word.get_mut(..chunk.len()) {
                w.copy_from_slice(chunk);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// A BNDUPD in flight: where its bindings live and what identifies the state it sent of each
/// (one client's, up to [`CLIENT_BNDUPD_MAX`], D61).
#[derive(Clone, Copy, Debug)]
struct Sent {
    shard: u32,
    leases: [Option<SentLease>; CLIENT_BNDUPD_MAX],
}

impl Sent {
    /// The lease `(kind, addr)` as sent, if this BNDUPD carried it.
    fn lease(&self, key: (LeaseKind, Ipv6Addr)) -> Option<&SentLease> {
        self.leases.iter().flatten().find(|l| l.lease == key)
    }

    /// How many leases it carried.
    fn lease_count(&self) -> u64 {
        self.leases.iter().flatten().count() as u64
    }
}

/// One lease of a BNDUPD in flight.
#[derive(Clone, Copy, Debug)]
struct SentLease {
    lease: (LeaseKind, Ipv6Addr),
    start_time_of_state: FailoverTime,
    /// When the oldest change it carries was committed ([`Waiting::since`]).
    since: Option<MonoUs>,
}

/// A lease waiting to be sent: its latest state, and since when it waits (D50).
#[derive(Clone, Copy, Debug)]
struct Waiting {
    shard: u32,
    binding: Binding,
    /// When the oldest change not sent yet was committed (its client's Reply had gone out):
    /// later changes of the lease replace the binding, not this time. `None` for what only a
    /// scan, a rebalancing or the partner's messages queued: no Reply to time it from.
    since: Option<MonoUs>,
}

/// A walk over every shard's bindings.
#[derive(Clone, Copy, Debug)]
struct Scan {
    shard: u32,
    cursor: u64,
    /// Every binding (UPDREQALL), or only those flagged "partner needs update".
    all: bool,
    /// It answers the partner's UPDREQ / UPDREQALL: UPDDONE follows its end.
    request: bool,
}

/// What a BNDUPD of the partner gets: the BNDREPLY message bytes, or why it is refused as a
/// whole (UnspecFail).
type Answer = Result<Vec<u8>, &'static str>;

/// A BNDREPLY waiting for the stores to be durable.
#[derive(Debug)]
struct Reply {
    conn: u64,
    xid: u32,
    bytes: Vec<u8>,
}

/// The binding synchronisation of one relationship (module docs).
#[derive(Debug)]
pub struct BindingSync {
    role: SyncRole,
    /// §4.2.2: percent of the available prefixes for the secondary, and the most per pool.
    prefix_share: (u32, u32),
    /// The primary should rebalance prefixes when updates flow next.
    rebalance_due: bool,
    next_rebalance_ms: Option<u64>,
    /// The leases waiting to be sent, in the order of their first change since the last send;
    /// `queued` holds the latest state of each (D49: one BNDUPD per lease, however many
    /// changes it went through meanwhile).
    queue: VecDeque<(LeaseKind, Ipv6Addr)>,
    queued: HashMap<(LeaseKind, Ipv6Addr), Waiting, KeyHash>,
    /// The most leases `queue` holds ([`QUEUE_CAP`]; smaller in tests).
    queue_cap: usize,
    sent: HashMap<u64, Sent, KeyHash>,
    next_tag: u64,
    scan: Option<Scan>,
    /// A request's scan ended: tell the endpoint once the queue is empty.
    request_sent: bool,
    /// The next periodic scan (monotonic ms), while updates flow.
    next_rescan_ms: Option<u64>,
    /// A change did not fit a queue since the last scan began (D60): its binding is only
    /// flagged in the store, so a scan of the flagged bindings follows as soon as no other
    /// walk runs, not at the next periodic one.
    overflow_rescan: bool,
    inputs: VecDeque<BindingInput>,
    /// The bindings of the BNDUPD being built (`send_queued`), kept for their allocation.
    group: Vec<Binding>,
    counters: SyncCounters,
    buf: Vec<u8>,
    /// (monotonic ms, BNDUPDs sent, BNDUPDs received) once a second, the last few.
    samples: VecDeque<(u64, u64, u64)>,
    /// Commit → acknowledgement of the updates acked lately (D50).
    latency: UpdateLatency,
}

impl BindingSync {
    /// The synchronisation of a relationship in which we have `role`.
    /// The synchronisation of a relationship in which we have `role`; a primary hands
    /// `prefix_share` % of each PD pool's available prefixes, at most `prefix_share_max`, to
    /// the secondary (RFC 8156 §4.2.2).
    pub fn new(role: Role, prefix_share: u32, prefix_share_max: u32) -> Self {
        Self {
            role: match role {
                Role::Primary => SyncRole::Primary,
                Role::Secondary => SyncRole::Secondary,
            },
            prefix_share: (prefix_share, prefix_share_max),
            rebalance_due: false,
            next_rebalance_ms: None,
            queue: VecDeque::new(),
            queued: HashMap::default(),
            queue_cap: QUEUE_CAP,
            sent: HashMap::default(),
            next_tag: 1,
            scan: None,
            request_sent: false,
            next_rescan_ms: None,
            overflow_rescan: false,
            inputs: VecDeque::new(),
            group: Vec::with_capacity(CLIENT_BNDUPD_MAX),
            counters: SyncCounters::default(),
            buf: vec![0u8; MSG_BUF],
            samples: VecDeque::new(),
            latency: UpdateLatency::new(),
        }
    }

    /// The counters.
    pub const fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// Records the endpoint's BNDUPD counts at most once a second, keeping eleven samples
    /// (ten seconds) for [`BindingSync::rates`].
    pub fn sample(&mut self, ep: &Endpoint, now: Now) {
        if self
            .samples
            .back()
            .is_some_and(|&(t, _, _)| now.mono_ms < t.saturating_add(1000))
        {
            return;
        }
        let c = ep.counters();
        self.samples
            .push_back((now.mono_ms, c.bndupd_sent, c.bndupd_received));
        while self.samples.len() > 11 {
            self.samples.pop_front();
        }
    }

    /// BNDUPDs sent and received per second (rounded) over the samples (up to the last ten
    /// seconds).
    pub fn rates(&self) -> (u64, u64) {
        let (Some(&(t0, s0, r0)), Some(&(t1, s1, r1))) =
            (self.samples.front(), self.samples.back())
        else {
            return (0, 0);
        };
        if t1 <= t0 {
            return (0, 0);
        }
        let ms = t1 - t0;
        let per_s = |a: u64, b: u64| (b.saturating_sub(a).saturating_mul(1000) + ms / 2) / ms;
        (per_s(s0, s1), per_s(r0, r1))
    }

    /// Changes waiting to be sent.
    pub fn backlog(&self) -> usize {
        self.queue.len()
    }

    /// The update latency (commit → the partner's acknowledgement processed) of the updates
    /// acknowledged in the last [`super::latency::WINDOW_S`] seconds before `now` (D50).
    pub fn latency(&self, now: MonoUs) -> LatencySummary {
        self.latency.summary(now)
    }

    /// A committed change of shard `shard`'s engine, committed at `at` (its Reply has gone
    /// out; the caller's monotonic clock, the one it gives [`BindingSync::pump`]). A lease
    /// already waiting keeps the time of its oldest change (D50).
    pub fn changed(&mut self, shard: u32, b: &Binding, at: MonoUs) {
        self.counters.changes += 1;
        self.enqueue(shard, b, Some(at));
    }

    /// `n` committed changes that did not fit a queue before this one (an XDP worker's ring,
    /// `docs/failover.md` D27): not lost, their bindings keep "partner needs update" in the
    /// store and a scan sends them; counted as changes and as `ring_overflow`.
    pub fn overflowed(&mut self, n: u64) {
        self.counters.changes += n;
        self.counters.ring_overflow += n;
        self.overflow_rescan |= n > 0;
    }

    /// Queues the latest state of a lease; `since`: when this change was committed, if it
    /// followed a client's Reply (D50).
    fn enqueue(&mut self, shard: u32, b: &Binding, since: Option<MonoUs>) {
        let key = (b.kind, b.addr);
        if let Some(waiting) = self.queued.get_mut(&key) {
            // D49: the lease is waiting already; its latest state goes, in its place. D50: the
            // wait counts from its oldest change not sent yet.
            waiting.shard = shard;
            waiting.binding = *b;
            waiting.since = match (waiting.since, since) {
                (Some(older), Some(newer)) => Some(older.min(newer)),
                (kept, new) => kept.or(new),
            };
            return;
        }
        if self.queue.len() >= self.queue_cap {
            // Not lost: flagged in the store, the next scan sends it (D60).
            self.counters.overflow += 1;
            self.overflow_rescan = true;
            return;
        }
        self.queue.push_back(key);
        self.queued.insert(
            key,
            Waiting {
                shard,
                binding: *b,
                since,
            },
        );
    }

    /// An event of the endpoint.
    pub fn on_event(&mut self, e: &Event, now: Now) {
        match e {
            Event::UpdateRequested { all } => {
                // §5.3.7, §5.3.8; a new request restarts the walk.
                self.scan = Some(Scan {
                    shard: 0,
                    cursor: 0,
                    all: *all,
                    request: true,
                });
                self.request_sent = false;
            }
            Event::UpdatesMayFlow => {
                // §8.8: send what the partner has not acknowledged: every flagged binding, from
                // the first one (docs/failover.md D45: a walk begun earlier would skip what
                // lies behind its cursor). The partner's request being answered covers it.
                if !self.scan.is_some_and(|s| s.request) {
                    self.start_scan(false);
                }
                self.next_rescan_ms = Some(now.mono_ms.saturating_add(RESCAN_EVERY_MS));
                // §4.2.2: the primary balances the prefixes whenever it is in contact.
                self.rebalance_due = self.role == SyncRole::Primary;
            }
            Event::PoolRequested => {
                // §5.3.3: the secondary asks; POOLRESP went, the rebalancing follows.
                self.rebalance_due = self.role == SyncRole::Primary;
            }
            Event::LinkDown(_) => {
                // Our BNDUPDs in flight are void; their bindings stay flagged, and the next
                // flow scans them from the start (D45).
                self.sent.clear();
                self.next_rescan_ms = None;
                self.scan = None;
                self.request_sent = false;
            }
            _ => {}
        }
    }

    fn start_scan(&mut self, all: bool) {
        // Whatever overflowed so far is flagged in the store, so this walk finds it.
        self.overflow_rescan = false;
        self.scan = Some(Scan {
            shard: 0,
            cursor: 0,
            all,
            request: false,
        });
    }

    /// A binding message from the endpoint, processed by the next [`BindingSync::pump`].
    pub fn input(&mut self, b: BindingInput) {
        self.inputs.push_back(b);
    }

    /// `true` if [`BindingSync::pump`] has work at `now`, the periodic rescan included (D45:
    /// the resend of what the partner rejected as outdated waits for it, so an idle server
    /// must still run it).
    pub fn busy(&self, ep: &Endpoint, now: Now) -> bool {
        !self.inputs.is_empty()
            || (self.rebalance_due
                && ep.update_window() > 0
                && ep.state().name() == tandem_failover::StateName::Normal)
            || (ep.update_window() > 0
                && (!self.queue.is_empty() || self.scan.is_some() || self.overflow_rescan))
            || (self.request_sent && self.queue.is_empty())
            || self.next_rescan_ms.is_some_and(|at| now.mono_ms >= at)
    }

    /// Does what can be done now: answers the partner's BNDUPDs, applies its BNDREPLYs, sends
    /// queued changes within the window, advances a scan. The caller drains the endpoint
    /// afterwards. `now_us` is `now` on the clock of [`BindingSync::changed`]: the update
    /// latency of each BNDREPLY processed here ends at it (D50).
    pub fn pump(
        &mut self,
        ep: &mut Endpoint,
        shards: &mut dyn LeaseShards,
        now: Now,
        now_us: MonoUs,
    ) {
        self.take_inputs(ep, shards, now, now_us);
        if let Some(at) = self.next_rescan_ms
            && now.mono_ms >= at
        {
            if self.scan.is_none() && ep.update_window() > 0 {
                self.start_scan(false);
            }
            self.next_rescan_ms = Some(now.mono_ms.saturating_add(RESCAN_EVERY_MS));
        }
        if self.overflow_rescan && self.scan.is_none() && ep.update_window() > 0 {
            // D60: the walk advances only while the queue holds less than a chunk, so it
            // follows the backlog instead of adding to it.
            self.start_scan(false);
        }
        self.maybe_rebalance(ep, shards, now);
        let mut scanned = false;
        loop {
            self.send_queued(ep, now);
            if ep.update_window() == 0
                || self.scan.is_none()
                || self.queue.len() >= SCAN_CHUNK
                || !shards.ready()
                || scanned
            {
                break;
            }
            self.advance_scan(shards);
            scanned = true;
        }
        if self.request_sent && self.queue.is_empty() {
            self.request_sent = false;
            ep.update_stream_complete(now);
        }
    }

    fn take_inputs(
        &mut self,
        ep: &mut Endpoint,
        shards: &mut dyn LeaseShards,
        now: Now,
        now_us: MonoUs,
    ) {
        let mut replies: Vec<Reply> = Vec::new();
        let mut accepted = 0u64;
        // Consecutive inputs of one kind reach the shards as one batch, in arrival order: the
        // shards see the same operations in the same order as one by one.
        while let Some(first) = self.inputs.front() {
            if matches!(first, BindingInput::Update { .. }) {
                let mut run = Vec::new();
                while let Some(BindingInput::Update { .. }) = self.inputs.front() {
                    if let Some(BindingInput::Update { conn, xid, message }) =
                        self.inputs.pop_front()
                    {
                        run.push((conn, xid, message));
                    }
                }
                for (conn, xid, answer) in self.answer(&run, shards, now, &mut accepted) {
                    match answer {
                        Ok(bytes) => replies.push(Reply { conn, xid, bytes }),
                        Err(why) => {
                            tracing::warn!("failover: refusing a BNDUPD: {why}");
                            ep.refuse_bndupd(now, conn, xid, StatusCode::UNSPEC_FAIL, why);
                        }
                    }
                }
            } else {
                let mut run = Vec::new();
                while let Some(BindingInput::Reply { .. }) = self.inputs.front() {
                    if let Some(BindingInput::Reply { tag, reply }) = self.inputs.pop_front() {
                        run.push((tag, reply));
                    }
                }
                self.acked(&run, shards, now, now_us);
            }
        }
        if replies.is_empty() {
            return;
        }
        // §7.5.2: the BNDREPLY only once what it accepts is durable.
        if accepted > 0
            && let Err(e) = shards.make_durable()
        {
            tracing::error!(
                "failover: the lease store cannot be synced ({e}); refusing the partner's updates"
            );
            for r in replies {
                self.counters.durability_failures += 1;
                ep.refuse_bndupd(
                    now,
                    r.conn,
                    r.xid,
                    StatusCode::UNSPEC_FAIL,
                    "the lease store cannot be made durable",
                );
            }
            return;
        }
        for r in replies {
            // The options after the 8-octet header; the endpoint frames them again.
            if let Some(options) = r.bytes.get(tandem_wire::failover::FAILOVER_HEADER_LEN..) {
                ep.send_bndreply(now, r.conn, r.xid, options);
            }
        }
    }

    /// Processes a run of the partner's BNDUPDs `(conn, xid, message)`: for each, in order,
    /// the BNDREPLY message bytes or why it is refused as a whole. Every lease of the run goes
    /// to the shards in one [`LeaseShards::partner_updates`] batch.
    fn answer(
        &mut self,
        run: &[(u64, u32, Vec<u8>)],
        shards: &mut dyn LeaseShards,
        now: Now,
        accepted: &mut u64,
    ) -> Vec<(u64, u32, Answer)> {
        /// A BNDUPD after the first pass: answered already, or its leases' verdicts, each
        /// decided or the index of the lease in the batch.
        enum Pass<'a> {
            Done(Answer),
            Leases(DecodedUpdate<'a>, Vec<Result<Verdict, usize>>),
        }
        let count = shards.count().max(1);
        let mut batch: Vec<(u32, LeaseUpdate)> = Vec::new();
        let mut passes = Vec::with_capacity(run.len());
        for (_, _, message) in run {
            let upd = match decode_bndupd(message) {
                Ok(u) => u,
                Err(Reject::Whole(w)) => {
                    tracing::warn!(
                        "failover: the partner's BNDUPD refused as a whole: {}",
                        w.reason
                    );
                    self.counters.leases_rejected += 1;
                    let reply = BndreplyMessage::refusal(&w);
                    let done = reply
                        .emit(now.wall, &mut self.buf)
                        .map(|n| self.buf.get(..n).unwrap_or_default().to_vec())
                        .map_err(|_| "the refusal does not fit a message");
                    passes.push(Pass::Done(done));
                    continue;
                }
                Err(Reject::Malformed(_)) => {
                    passes.push(Pass::Done(Err("not a well-formed BNDUPD")));
                    continue;
                }
            };
            let mut slots = Vec::with_capacity(upd.lease_count());
            for lease in upd.leases() {
                let lease = match lease {
                    Ok(l) => l,
                    Err(refusal) => {
                        self.counters.leases_rejected += 1;
                        slots.push(Ok(Verdict::from(refusal)));
                        continue;
                    }
                };
                // The client's shard, where its messages go (D26); a bare prefix by its slot.
                let shard = match lease.client {
                    Some(c) => {
                        u32::try_from(duid_hash(c.duid.as_bytes()) % u64::from(count)).unwrap_or(0)
                    }
                    None => shards
                        .shard_of_lease(lease.kind, lease.addr, lease.prefix_len)
                        .unwrap_or(0),
                };
                slots.push(Err(batch.len()));
                batch.push((shard, lease));
            }
            passes.push(Pass::Leases(upd, slots));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut back: Vec<(usize, Binding)> = Vec::new();
        if !batch.is_empty() {
            shards.partner_updates(now.wall, self.role, &batch, &mut outcomes, &mut |i, b| {
                back.push((i, *b));
            });
        }
        // In batch order whatever order the owners answered in (stable: per lease as given).
        back.sort_by_key(|(i, _)| *i);
        let mut back = back.into_iter().peekable();
        let mut answers = Vec::with_capacity(run.len());
        for ((conn, xid, _), pass) in run.iter().zip(passes) {
            let (upd, slots) = match pass {
                Pass::Done(done) => {
                    answers.push((*conn, *xid, done));
                    continue;
                }
                Pass::Leases(upd, slots) => (upd, slots),
            };
            let mut verdicts = Vec::with_capacity(slots.len());
            let mut last = None;
            for slot in slots {
                let i = match slot {
                    Ok(v) => {
                        verdicts.push(v);
                        continue;
                    }
                    Err(i) => i,
                };
                last = Some(i);
                let outcome = outcomes
                    .get(i)
                    .copied()
                    .unwrap_or(PartnerOutcome::StoreError);
                verdicts.push(self.verdict(outcome, batch.get(i).map(|(_, l)| l.addr)));
                if outcome == PartnerOutcome::Accepted {
                    *accepted += 1;
                    // D57: the store now holds what the partner sent, which it knows; a
                    // snapshot of ours still waiting is older than that and would overwrite
                    // it there.
                    if let Some((_, l)) = batch.get(i) {
                        self.queued.remove(&(l.kind, l.addr));
                    }
                }
            }
            // What this BNDUPD's leases sent back (§7.5.4: ours is newer), before the next's.
            if let Some(last) = last {
                while let Some((i, b)) = back.next_if(|(i, _)| *i <= last) {
                    let shard = batch.get(i).map_or(0, |(k, _)| *k);
                    self.enqueue(shard, &b, None);
                }
            }
            let done = BndreplyMessage::new(&upd, &verdicts)
                .map_err(|_| "verdict count")
                .and_then(|reply| {
                    reply
                        .emit(now.wall, &mut self.buf)
                        .map_err(|_| "the BNDREPLY does not fit a message")
                })
                .map(|n| self.buf.get(..n).unwrap_or_default().to_vec());
            answers.push((*conn, *xid, done));
        }
        answers
    }

    /// The BNDREPLY verdict of one lease's outcome (counted; `addr` for the log).
    fn verdict(&mut self, outcome: PartnerOutcome, addr: Option<Ipv6Addr>) -> Verdict {
        if outcome == PartnerOutcome::Accepted {
            self.counters.leases_accepted += 1;
            return Verdict::Accept;
        }
        self.counters.leases_rejected += 1;
        Verdict::Reject(match outcome {
            PartnerOutcome::Outdated { .. } => StatusCode::OUTDATED_BINDING_INFORMATION,
            PartnerOutcome::AddressInUse => StatusCode::ADDRESS_IN_USE,
            PartnerOutcome::NotConfigured | PartnerOutcome::OtherShard => {
                if outcome == PartnerOutcome::OtherShard {
                    tracing::error!(
                        "failover: the partner's lease {} lies in another shard's slot than its \
                         client's: run both servers with the same number of shards \
                         (docs/failover.md D26)",
                        addr.unwrap_or(Ipv6Addr::UNSPECIFIED)
                    );
                }
                StatusCode::CONFIGURATION_CONFLICT
            }
            _ => StatusCode::UNSPEC_FAIL,
        })
    }

    /// A run of the partner's BNDREPLYs `(tag, message)` to our BNDUPDs (§7.7): every
    /// acknowledged lease goes to its shard in one [`LeaseShards::partner_acks`] batch, and
    /// the update latency of each BNDUPD with an accepted lease ends at `now_us` (D50).
    fn acked(
        &mut self,
        run: &[(u64, Result<DecodedReply, tandem_wire::Error>)],
        shards: &mut dyn LeaseShards,
        now: Now,
        now_us: MonoUs,
    ) {
        let mut batch: Vec<AckItem> = Vec::new();
        for (tag, reply) in run {
            let Some(sent) = self.sent.remove(tag) else {
                continue;
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(
                        "failover: a BNDREPLY that does not decode ({e}); the update stays pending"
                    );
                    self.counters.rejected_by_partner += sent.lease_count();
                    continue;
                }
            };
            if let Some(code) = reply.whole {
                tracing::warn!(
                    "failover: the partner refused our BNDUPD as a whole (status {}); it stays \
                     pending",
                    code.0
                );
                self.counters.rejected_by_partner += sent.lease_count();
                continue;
            }
            for ack in &reply.leases {
                // Each lease is acknowledged with the state it was sent in (§7.6 does not
                // echo the start-time-of-state); a lease the BNDUPD did not carry is not ours
                // to acknowledge.
                let Some(lease) = sent.lease((ack.kind, ack.addr)) else {
                    self.counters.rejected_by_partner += 1;
                    continue;
                };
                match ack.ack_info(lease.start_time_of_state) {
                    Some(info) => {
                        self.counters.acked += 1;
                        // Each lease timed once, at its acceptance (D50).
                        if let Some(since) = lease.since {
                            self.latency.record(now_us, now_us.since(since));
                        }
                        batch.push(AckItem {
                            shard: sent.shard,
                            kind: ack.kind,
                            addr: ack.addr,
                            info,
                        });
                    }
                    None => self.counters.rejected_by_partner += 1,
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        let mut again: Vec<(usize, Binding)> = Vec::new();
        shards.partner_acks(now.wall, &batch, &mut |i, b| again.push((i, *b)));
        again.sort_by_key(|(i, _)| *i);
        for (i, b) in again {
            let shard = batch.get(i).map_or(0, |a| a.shard);
            self.enqueue(shard, &b, None);
        }
    }

    /// §4.2.2 on the primary: when asked (POOLREQ), when updates start flowing, and every
    /// [`REBALANCE_EVERY_MS`] while they flow; the moved prefixes go out as bare IAPREFIX
    /// BNDUPDs.
    fn maybe_rebalance(&mut self, ep: &Endpoint, shards: &mut dyn LeaseShards, now: Now) {
        if self.role != SyncRole::Primary {
            return;
        }
        let flowing = ep.update_window() > 0 || ep.unacked_updates() > 0;
        // D59: only in NORMAL. In RECOVER or POTENTIAL-CONFLICT this server's database may
        // lack the partner's leases (a lost disk, a power loss, D56), and a prefix it moved to
        // FREE-BACKUP then is newer than the partner's ACTIVE lease of it: each side refuses
        // the other's as outdated, for good. A due rebalancing waits for NORMAL.
        if !flowing || ep.state().name() != tandem_failover::StateName::Normal {
            return;
        }
        if self.next_rebalance_ms.is_some_and(|at| now.mono_ms >= at) {
            self.rebalance_due = true;
        }
        if !self.rebalance_due {
            return;
        }
        self.rebalance_due = false;
        self.next_rebalance_ms = Some(now.mono_ms.saturating_add(REBALANCE_EVERY_MS));
        let (pct, max) = self.prefix_share;
        let count = shards.count().max(1);
        // The cap is per pool; each shard holds its part of the pool's slots.
        let cap = u64::from(max).div_ceil(u64::from(count));
        let mut moved: Vec<(u32, Binding)> = Vec::new();
        for shard in 0..count {
            let answered =
                shards.rebalance(shard, now.wall, pct, cap, &mut |b| moved.push((shard, *b)));
            // D58: what a late answer moved is only flagged in the store; a scan sends it.
            self.overflow_rescan |= !answered;
        }
        self.counters.rebalances += 1;
        self.counters.prefixes_moved += moved.len() as u64;
        if !moved.is_empty() {
            tracing::info!(
                "failover: {} delegable prefixes moved to balance the secondary's share \
                 (RFC 8156 §4.2.2)",
                moved.len()
            );
        }
        for (shard, b) in moved {
            self.enqueue(shard, &b, None);
        }
    }

    /// Sends the queue within the window: a lease whose BNDUPD goes in an OPTION_CLIENT_DATA
    /// takes the leases of the same client (and shard) that wait right behind it along, up to
    /// [`CLIENT_BNDUPD_MAX`], each in an IA of its own (§7.4, D61): the address and the prefix
    /// a client's Request committed together leave in one BNDUPD and come back in one BNDREPLY.
    fn send_queued(&mut self, ep: &mut Endpoint, now: Now) {
        // The message being built: its bindings, and each one's lease and wait (D50). Reused
        // (the bindings are copied once out of the queue, not once per step).
        let mut bindings = core::mem::take(&mut self.group);
        while ep.update_window() > 0 {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            let Some(first) = self.queued.remove(&key) else {
                continue;
            };
            let shard = first.shard;
            bindings.clear();
            let mut leases = [None; CLIENT_BNDUPD_MAX];
            let mut count = 0;
            let mut take = |w: &Waiting, key, bindings: &mut Vec<Binding>| {
                if let Some(slot) = leases.get_mut(count) {
                    *slot = Some(SentLease {
                        lease: key,
                        start_time_of_state: w.binding.start_time_of_state,
                        since: w.since,
                    });
                }
                count += 1;
                bindings.push(w.binding);
            };
            take(&first, key, &mut bindings);
            let n = if ClientBndupd::carries(&first.binding) {
                // The client's leases right behind it in the queue join it.
                while let Some(next) = self.queue.front().copied() {
                    // A stale entry (sent already) ends the group; `pop_front` skips it.
                    let joins = self.queued.get(&next).is_some_and(|w| {
                        w.shard == shard && ClientBndupd::admits(&bindings, &w.binding)
                    });
                    if !joins {
                        break;
                    }
                    self.queue.pop_front();
                    if let Some(w) = self.queued.remove(&next) {
                        take(&w, next, &mut bindings);
                    }
                }
                ClientBndupd::new(&bindings, now.wall)
                    .map_err(|_| ())
                    .and_then(|m| m.emit(0, &mut self.buf).map_err(|_| ()))
            } else {
                BndupdMessage::new(&first.binding, now.wall)
                    .map_err(|_| ())
                    .and_then(|m| m.emit(0, &mut self.buf).map_err(|_| ()))
            };
            let Ok(n) = n else {
                self.counters.unencodable += bindings.len() as u64;
                continue;
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            let options = self
                .buf
                .get(tandem_wire::failover::FAILOVER_HEADER_LEN..n)
                .unwrap_or_default();
            if ep.send_bndupd(now, tag, options).is_ok() {
                self.sent.insert(tag, Sent { shard, leases });
            } else {
                // Back at the front, in their order, as they waited.
                for (l, b) in leases.iter().zip(&bindings).rev() {
                    let Some(l) = l else { continue };
                    self.queue.push_front(l.lease);
                    self.queued.insert(
                        l.lease,
                        Waiting {
                            shard,
                            binding: *b,
                            since: l.since,
                        },
                    );
                }
                break;
            }
        }
        self.group = bindings;
    }

    fn advance_scan(&mut self, shards: &mut dyn LeaseShards) {
        let Some(mut scan) = self.scan else {
            return;
        };
        let mut found: Vec<Binding> = Vec::new();
        let next = shards.scan(scan.shard, scan.cursor, SCAN_CHUNK, &mut |b| {
            if scan.all || b.flags.contains(BindingFlags::UPDATE_PENDING) {
                found.push(*b);
            }
        });
        for b in &found {
            // D49: a lease whose BNDUPD is in flight is not sent twice; a change since then
            // was queued by `changed`, a rejection leaves it flagged for the next scan.
            if self
                .sent
                .values()
                .any(|s| s.lease((b.kind, b.addr)).is_some())
            {
                continue;
            }
            self.enqueue(scan.shard, b, None);
        }
        match next {
            Some(c) => {
                scan.cursor = c;
                self.scan = Some(scan);
            }
            None if scan.shard + 1 < shards.count() => {
                scan.shard += 1;
                scan.cursor = 0;
                self.scan = Some(scan);
            }
            None => {
                self.scan = None;
                self.counters.scans += 1;
                if scan.request {
                    self.request_sent = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Two real endpoints in NORMAL, each with a [`BindingSync`] over in-memory shards, driven
    //! as `FailoverPlane::pump_bindings` does (a pump only while `busy`).

    use tandem_failover::{Config, FailoverTime, Transmit};
    use tandem_lease::{BindingStatus, DuidBuf, MemStore};
    use tandem_wire::dhcp::MessageType;

    use super::*;

    const WALL0: u32 = 800_000_000;

    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall: FailoverTime(WALL0 + u32::try_from(ms / 1000).unwrap()),
        }
    }

    /// `ms` on the microsecond clock of the update latency (the same instant as `at(ms)`).
    fn us(ms: u64) -> MonoUs {
        MonoUs(ms * 1000)
    }

    /// One shard in memory; a partner's update is stored as `tandem_lease::sync` says.
    /// The second field: addresses whose updates this shard rejects as outdated; the third:
    /// a prefix the next rebalancing moves without answering in time (a late XDP worker, D58).
    #[derive(Default)]
    struct Mem(MemStore, Vec<Ipv6Addr>, Option<Binding>);

    impl LeaseShards for Mem {
        fn count(&self) -> u32 {
            1
        }
        fn shard_of_lease(&self, _: LeaseKind, _: Ipv6Addr, _: u8) -> Option<u32> {
            Some(0)
        }
        fn partner_update(
            &mut self,
            _: u32,
            now: FailoverTime,
            role: SyncRole,
            upd: &LeaseUpdate,
            _: &mut dyn FnMut(&Binding),
        ) -> PartnerOutcome {
            let ours = tandem_lease::LeaseStore::get(&self.0, upd.kind, upd.addr);
            if self.1.contains(&upd.addr)
                || !tandem_lease::sync::decide(ours.as_ref(), upd, role, now).is_accept()
            {
                return PartnerOutcome::Outdated { send_now: false };
            }
            let b = tandem_lease::sync::apply(ours.as_ref(), upd, 0);
            tandem_lease::LeaseStore::put(&mut self.0, &b).unwrap();
            PartnerOutcome::Accepted
        }
        fn partner_ack(
            &mut self,
            _: u32,
            _: FailoverTime,
            kind: LeaseKind,
            addr: Ipv6Addr,
            info: &AckInfo,
            _: &mut dyn FnMut(&Binding),
        ) {
            if let Some(mut b) = tandem_lease::LeaseStore::get(&self.0, kind, addr) {
                tandem_lease::sync::ack(&mut b, info);
                tandem_lease::LeaseStore::put(&mut self.0, &b).unwrap();
            }
        }
        fn scan(&self, _: u32, c: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
            tandem_lease::LeaseStore::scan(&self.0, c, max, f)
        }
        // A bare store without configured pools: no delegable prefix to move (§4.2.2), but
        // the late move of the third field if set.
        fn rebalance(
            &mut self,
            _: u32,
            _: FailoverTime,
            _: u32,
            _: u64,
            _: &mut dyn FnMut(&Binding),
        ) -> bool {
            match self.2.take() {
                Some(b) => {
                    tandem_lease::LeaseStore::put(&mut self.0, &b).expect("a MemStore takes it");
                    false
                }
                None => true,
            }
        }
        fn make_durable(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Side {
        ep: Endpoint,
        sync: BindingSync,
        shards: Mem,
    }

    /// A primary and a secondary (MAX_UNACKED_BNDUPD `window` each) wired back to back.
    struct Pair {
        sides: [Side; 2],
        /// BNDUPDs the primary sent, by address, in order.
        sent: Vec<Ipv6Addr>,
        up: bool,
        /// The link loses the primary's BNDUPDs (they stay in flight).
        lose_bndupds: bool,
    }

    impl Pair {
        fn new(window: u32) -> Self {
            let side = |role| {
                let mut c = Config::new(role, "t");
                c.max_unacked_bndupd = window;
                Side {
                    ep: Endpoint::new(c, None, at(0)).unwrap(),
                    sync: BindingSync::new(role, 0, 0),
                    shards: Mem::default(),
                }
            };
            let mut pair = Self {
                sides: [side(Role::Primary), side(Role::Secondary)],
                sent: Vec::new(),
                up: false,
                lose_bndupds: false,
            };
            pair.connect(0);
            pair
        }

        fn connect(&mut self, ms: u64) {
            self.up = true;
            self.sides[1].ep.handle_connected(at(ms));
            self.sides[0].ep.handle_connected(at(ms));
            self.run(ms);
            assert!(
                self.sides
                    .iter()
                    .all(|s| s.ep.state().name() == tandem_failover::StateName::Normal)
            );
        }

        fn disconnect(&mut self, ms: u64) {
            self.up = false;
            for s in &mut self.sides {
                s.ep.handle_closed(at(ms));
            }
            self.run(ms);
        }

        /// Drives both sides until nothing moves: the daemon's drive (persist, frames,
        /// events to the sync, binding messages to the sync) and its busy-gated pump.
        fn run(&mut self, ms: u64) {
            let now = at(ms);
            for _ in 0..10_000 {
                let mut moved = false;
                for i in 0..2 {
                    let mut frames = Vec::new();
                    {
                        let s = &mut self.sides[i];
                        while s.ep.poll_persist().is_some() {
                            s.ep.handle_persisted();
                        }
                        while let Some(t) = s.ep.poll_transmit() {
                            frames.push(t);
                        }
                        while let Some(e) = s.ep.poll_event() {
                            s.sync.on_event(&e, now);
                        }
                        while let Some(b) = s.ep.poll_binding() {
                            s.sync.input(b);
                            moved = true;
                        }
                        if s.sync.busy(&s.ep, now) {
                            s.sync.pump(&mut s.ep, &mut s.shards, now, us(ms));
                            moved = true;
                        }
                    }
                    for t in frames {
                        moved = true;
                        let Transmit::Frame(f) = t else { continue };
                        if !self.up {
                            continue;
                        }
                        if i == 0
                            && f.get(2) == Some(&MessageType::BNDUPD.0)
                            && let Ok(u) = decode_bndupd(&f[2..])
                        {
                            self.sent.extend(u.leases().flatten().map(|l| l.addr));
                            if self.lose_bndupds {
                                continue;
                            }
                        }
                        self.sides[1 - i].ep.handle_message(now, &f[2..]);
                    }
                }
                if !moved {
                    return;
                }
            }
            panic!("the pair does not settle");
        }
    }

    /// An ACTIVE address the partner has not acknowledged.
    fn flagged(n: u16) -> Binding {
        let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, n);
        let mut b = Binding::free(LeaseKind::Address, addr, 128, 0);
        b.status = BindingStatus::ACTIVE;
        b.duid = DuidBuf::new(&[0, 3, 0, 1, 2, 0, 0, 0, (n >> 8) as u8, n as u8]).unwrap();
        b.iaid = 1;
        b.cltt = FailoverTime(WALL0);
        b.start_time_of_state = FailoverTime(WALL0);
        b.state_expiration_time = FailoverTime(WALL0 + 86_400);
        b.valid = 86_400;
        b.preferred = 43_200;
        b.flags.set(BindingFlags::UPDATE_PENDING, true);
        b
    }

    fn put(pair: &mut Pair, b: &Binding) {
        tandem_lease::LeaseStore::put(&mut pair.sides[0].shards.0, b).unwrap();
    }

    fn pending(pair: &Pair) -> usize {
        pair.sides[0]
            .shards
            .0
            .iter()
            .filter(|b| b.flags.contains(BindingFlags::UPDATE_PENDING))
            .count()
    }

    /// D45, what the binding sync simulator found: a periodic scan was still walking the
    /// table when the link went down; the BNDUPD of a binding behind its cursor was in flight
    /// and voided; on the next connection the walk went on from its cursor, so that binding
    /// waited for a later periodic scan. Every flow now scans from the first binding.
    #[test]
    fn a_new_flow_scans_from_the_start_d45() {
        let mut pair = Pair::new(1);
        pair.disconnect(1);
        // More flagged bindings than a scan takes in one go, so the walk pauses (queue full).
        for n in 0..(2 * SCAN_CHUNK as u16 + 100) {
            put(&mut pair, &flagged(n));
        }
        // Updates flow again: the walk starts; the first BNDUPD is lost on the way (it stays
        // in flight), so with a window of one the walk stops mid-table.
        pair.lose_bndupds = true;
        pair.connect(2);
        assert_eq!(pair.sent, vec![flagged(0).addr]);
        assert!(
            pair.sides[0].sync.scan.is_some(),
            "the walk paused mid-table"
        );
        pair.disconnect(3);
        pair.lose_bndupds = false;
        pair.sent.clear();
        pair.connect(4);
        for ms in 5..200 {
            pair.run(ms);
        }
        assert!(
            pair.sent.contains(&flagged(0).addr),
            "the binding whose BNDUPD the link lost is sent again"
        );
        assert_eq!(pending(&pair), 0, "every binding acknowledged");
    }

    /// D49, what the long simulator run found: every change queued while the link was down
    /// went out in order when it came back — the history of a lease, renewed every few seconds
    /// during a partition, ahead of its present state; the partner stored each stale snapshot
    /// (and expired the already-ended ones), and the current one arrived only minutes later.
    /// One entry per lease now, with its latest state.
    #[test]
    fn changes_of_a_lease_while_the_link_is_down_go_out_once_as_its_latest_state_d49() {
        let mut pair = Pair::new(2);
        pair.disconnect(1);
        let mut b = flagged(9);
        for n in 0..50u32 {
            b.cltt = FailoverTime(WALL0 + n);
            b.state_expiration_time = FailoverTime(WALL0 + 1000 + n);
            put(&mut pair, &b);
            pair.sides[0].sync.changed(0, &b, us(1));
        }
        assert_eq!(pair.sides[0].sync.backlog(), 1);
        pair.sent.clear();
        pair.connect(2);
        pair.run(3);
        assert_eq!(pair.sent, vec![b.addr], "one BNDUPD");
        let theirs = tandem_lease::LeaseStore::get(&pair.sides[1].shards.0, b.kind, b.addr)
            .expect("stored by the partner");
        assert_eq!(theirs.state_expiration_time, b.state_expiration_time);
        assert_eq!(pending(&pair), 0);
    }

    /// D60: a change that did not fit a queue (here an XDP worker's full change ring,
    /// reported by `overflowed`) is only flagged in the store; it goes out with a scan as soon
    /// as updates can flow, not a periodic rescan (60 s) later.
    #[test]
    fn an_overflowed_change_goes_out_without_waiting_for_the_periodic_rescan_d60() {
        let mut pair = Pair::new(8);
        pair.run(1);
        put(&mut pair, &flagged(5));
        pair.run(2);
        assert!(pair.sent.is_empty(), "a flag alone is not a change");
        let scans = pair.sides[0].sync.counters().scans;
        pair.sides[0].sync.overflowed(1);
        pair.run(3);
        assert_eq!(pair.sent, vec![flagged(5).addr]);
        assert_eq!(pending(&pair), 0);
        assert_eq!(pair.sides[0].sync.counters().ring_overflow, 1);
        assert_eq!(pair.sides[0].sync.counters().scans, scans + 1, "one walk");
    }

    /// D60 with the daemon's own queue full: the change past its capacity is counted, not
    /// queued, and still reaches the partner well before the periodic rescan.
    #[test]
    fn a_change_past_a_full_queue_goes_out_once_the_queue_drains_d60() {
        const CAP: usize = 40;
        let mut pair = Pair::new(4);
        pair.sides[0].sync.queue_cap = CAP;
        pair.run(1);
        // A burst between two pumps: more changes than the queue holds.
        let mut last = flagged(0);
        for n in 0..=CAP {
            let mut b = flagged(0);
            b.addr = Ipv6Addr::from(u128::from(b.addr) + n as u128);
            put(&mut pair, &b);
            pair.sides[0].sync.changed(0, &b, us(1));
            last = b;
        }
        assert_eq!(pair.sides[0].sync.backlog(), CAP);
        assert_eq!(pair.sides[0].sync.counters().overflow, 1);
        for ms in 2..50 {
            pair.run(ms);
        }
        assert!(
            pair.sent.contains(&last.addr),
            "the overflowed change went out"
        );
        assert_eq!(pending(&pair), 0, "every binding acknowledged");
    }

    /// D58, what the XDP lab found: a rebalancing request the worker answered after the turn's
    /// limit moved prefixes to FREE-BACKUP in its store, but the answer was dropped, so they
    /// waited for the periodic rescan while the lab compared the two servers' shares. A
    /// rebalancing not answered in time now has a scan send what it flagged.
    #[test]
    fn prefixes_a_late_rebalancing_moved_go_out_with_a_scan_d58() {
        let mut pair = Pair::new(8);
        pair.run(1);
        let mut moved = flagged(40);
        moved.kind = LeaseKind::Prefix;
        moved.prefix_len = 56;
        moved.status = BindingStatus::FREE_BACKUP;
        moved.duid = DuidBuf::EMPTY;
        moved.state_expiration_time = FailoverTime(0);
        pair.sides[0].shards.2 = Some(moved);
        // The next rebalancing (due when the partner asks for a pool, §5.3.3).
        pair.sides[0]
            .sync
            .on_event(&tandem_failover::Event::PoolRequested, at(2));
        for ms in 2..20 {
            pair.run(ms);
        }
        assert!(pair.sides[0].shards.2.is_none(), "the rebalancing ran");
        assert!(
            pair.sent.contains(&moved.addr),
            "sent by a scan, not the periodic one a minute later: {:?}",
            pair.sent
        );
        assert_eq!(pending(&pair), 0);
    }

    /// D57, what the simulator found once both servers of a pair recovered at the same time
    /// (D56): each answered the other's UPDREQALL, and a lease's snapshot one had queued went
    /// out after it had accepted the partner's newer state of that lease — the partner took the
    /// stale snapshot back (an EXPIRED lease became ACTIVE again there), and the tables
    /// differed until an expiry ran. A waiting snapshot of
    /// a lease whose partner update is accepted is dropped.
    #[test]
    fn a_waiting_snapshot_is_dropped_when_the_partners_newer_state_is_accepted_d57() {
        let mut pair = Pair::new(8);
        pair.run(1);
        let ours = flagged(21);
        put(&mut pair, &ours);
        pair.sides[0].sync.changed(0, &ours, us(40_000));
        // The partner's newer state of that lease: the client renewed there since.
        let mut theirs = ours;
        theirs.cltt = FailoverTime(WALL0 + 40);
        theirs.state_expiration_time = FailoverTime(WALL0 + 86_500);
        let mut buf = vec![0u8; 1024];
        let n = BndupdMessage::new(&theirs, FailoverTime(WALL0 + 45))
            .unwrap()
            .emit(7, &mut buf)
            .unwrap();
        pair.sides[0].sync.input(BindingInput::Update {
            conn: 0,
            xid: 7,
            message: buf[..n].to_vec(),
        });
        // Before the periodic rescan (60 s), which would find the binding flagged anyway.
        pair.run(50_000);
        assert_eq!(
            pair.sides[0].sync.counters().leases_accepted,
            1,
            "{:?}",
            pair.sides[0].sync.counters()
        );
        assert!(
            !pair.sent.contains(&ours.addr),
            "our older snapshot stays home: {:?}",
            pair.sent
        );
        let stored = tandem_lease::LeaseStore::get(&pair.sides[0].shards.0, ours.kind, ours.addr);
        assert_eq!(
            stored.map(|b| b.state_expiration_time),
            Some(theirs.state_expiration_time)
        );
    }

    /// D50: the update latency of a lease runs from the commit its caller stamped (the
    /// client's Reply had gone out) to the pump that processed the partner's BNDREPLY.
    #[test]
    fn update_latency_runs_from_the_commit_to_the_processed_ack_d50() {
        let mut pair = Pair::new(8);
        let a = flagged(1);
        put(&mut pair, &a);
        pair.sides[0].sync.changed(0, &a, us(1000));
        pair.run(1250);
        let l = pair.sides[0].sync.latency(us(1250));
        assert_eq!(l.count, 1, "{l:?}");
        // Two significant figures: within 1 %.
        assert!(l.p50_us.abs_diff(250_000) <= 2_500, "{l:?}");
        assert_eq!(l.p50_us, l.max_us);
        // A second lease, acked 2 ms after its commit.
        let b = flagged(2);
        put(&mut pair, &b);
        pair.sides[0].sync.changed(0, &b, us(1300));
        pair.run(1302);
        let l = pair.sides[0].sync.latency(us(1302));
        assert_eq!(l.count, 2, "{l:?}");
        assert!(l.p50_us.abs_diff(2_000) <= 20, "the lower of two: {l:?}");
        assert!(l.max_us.abs_diff(250_000) <= 2_500, "{l:?}");
        assert_eq!(pending(&pair), 0);
        // Ten seconds later both have left the window.
        assert_eq!(pair.sides[0].sync.latency(us(11_400)).count, 0);
    }

    /// D50 with D49: a lease changed again while it waits goes out once, and its latency
    /// counts from its first change not sent, not from the latest.
    #[test]
    fn a_lease_changed_again_while_it_waits_is_timed_from_its_oldest_change_d50() {
        let mut pair = Pair::new(8);
        pair.disconnect(1);
        let mut b = flagged(3);
        put(&mut pair, &b);
        pair.sides[0].sync.changed(0, &b, us(10));
        b.cltt = FailoverTime(WALL0 + 5);
        b.state_expiration_time = FailoverTime(WALL0 + 86_405);
        put(&mut pair, &b);
        pair.sides[0].sync.changed(0, &b, us(5_000));
        assert_eq!(pair.sides[0].sync.backlog(), 1);
        pair.sent.clear();
        pair.connect(8_000);
        assert_eq!(pair.sent, vec![b.addr], "one BNDUPD");
        let l = pair.sides[0].sync.latency(us(8_000));
        assert_eq!(l.count, 1, "{l:?}");
        assert!(
            l.max_us.abs_diff(7_990_000) <= 79_900,
            "from the first change at 10 ms, not the second at 5 s: {l:?}"
        );
    }

    /// D50: what a scan sends follows no Reply the sync was told of; it is not timed.
    #[test]
    fn a_lease_sent_by_a_scan_is_not_timed_d50() {
        let mut pair = Pair::new(8);
        put(&mut pair, &flagged(4));
        pair.run(RESCAN_EVERY_MS + 10);
        assert_eq!(pair.sent, vec![flagged(4).addr]);
        assert_eq!(pending(&pair), 0, "sent and acknowledged");
        let l = pair.sides[0].sync.latency(us(RESCAN_EVERY_MS + 10));
        assert_eq!(l, LatencySummary::default());
    }

    /// D45, found reading the code the simulator drives: the periodic rescan (§7.5.4, the
    /// resend of what the partner rejected as outdated) ran only inside `pump`, and the
    /// daemon pumps only while `busy` — which did not count a due rescan, so an idle server
    /// never resent such a binding.
    #[test]
    fn an_idle_server_still_runs_the_periodic_rescan_d45() {
        let mut pair = Pair::new(8);
        pair.run(1);
        // A binding flagged without being queued (an Outdated rejection when the flag was
        // already set leaves it to the periodic scan).
        put(&mut pair, &flagged(7));
        pair.run(2);
        assert!(pair.sent.is_empty(), "nothing queued: nothing sent yet");
        pair.run(RESCAN_EVERY_MS + 10);
        assert_eq!(pair.sent, vec![flagged(7).addr]);
        assert_eq!(pending(&pair), 0);
    }

    /// A prefix delegated to the client of [`flagged`]`(n)` (IA_PD 9).
    fn flagged_prefix(n: u16) -> Binding {
        let mut p = flagged(n);
        p.kind = LeaseKind::Prefix;
        p.addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, n, 0, 0, 0, 0);
        p.prefix_len = 56;
        p.iaid = 9;
        p
    }

    /// D61 (§7.4: one client binding, "more than one" IA per OPTION_CLIENT_DATA): the address
    /// and the prefix a client's Request committed together leave in one BNDUPD, come back in
    /// one BNDREPLY, and each is acknowledged and timed on its own.
    #[test]
    fn a_clients_address_and_prefix_committed_together_go_in_one_bndupd_d61() {
        let mut pair = Pair::new(8);
        pair.run(1);
        let sent_before = pair.sides[0].ep.counters().bndupd_sent;
        let (a, p) = (flagged(11), flagged_prefix(11));
        for b in [&a, &p] {
            put(&mut pair, b);
            pair.sides[0].sync.changed(0, b, us(2));
        }
        pair.run(3);
        assert_eq!(pair.sent, vec![a.addr, p.addr]);
        assert_eq!(pair.sides[0].ep.counters().bndupd_sent, sent_before + 1);
        assert_eq!(pair.sides[0].sync.counters().acked, 2);
        assert_eq!(pending(&pair), 0, "both acknowledged");
        for b in [&a, &p] {
            let theirs = tandem_lease::LeaseStore::get(&pair.sides[1].shards.0, b.kind, b.addr)
                .expect("stored by the partner");
            assert_eq!((theirs.duid, theirs.iaid), (b.duid, b.iaid));
        }
        assert_eq!(
            pair.sides[0].sync.latency(us(3)).count,
            2,
            "each lease timed"
        );
    }

    /// D61: a lease of the BNDUPD the partner rejects stays flagged while the other one is
    /// acknowledged (§7.7, per lease); leases of other clients, or of the same IA, go in
    /// BNDUPDs of their own.
    #[test]
    fn a_shared_bndupd_is_acknowledged_per_lease_and_shared_only_by_one_clients_ias_d61() {
        let mut pair = Pair::new(8);
        pair.run(1);
        let (a, p) = (flagged(12), flagged_prefix(12));
        pair.sides[1].shards.1.push(p.addr);
        for b in [&a, &p] {
            put(&mut pair, b);
            pair.sides[0].sync.changed(0, b, us(2));
        }
        pair.run(3);
        assert_eq!(pair.sent, vec![a.addr, p.addr]);
        let c = *pair.sides[0].sync.counters();
        assert_eq!((c.acked, c.rejected_by_partner), (1, 1));
        let ours = |b: &Binding| {
            tandem_lease::LeaseStore::get(&pair.sides[0].shards.0, b.kind, b.addr).unwrap()
        };
        assert!(!ours(&a).flags.contains(BindingFlags::UPDATE_PENDING));
        assert!(ours(&p).flags.contains(BindingFlags::UPDATE_PENDING));
        // A second address in the IA of the first, then another client between the first
        // and its prefix: four BNDUPDs.
        pair.sides[1].shards.1.clear();
        pair.sent.clear();
        let sent_before = pair.sides[0].ep.counters().bndupd_sent;
        let mut second = flagged(13);
        second.addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 2, 13);
        for b in [flagged(13), second, flagged(14), flagged_prefix(13)] {
            put(&mut pair, &b);
            pair.sides[0].sync.changed(0, &b, us(4));
        }
        pair.run(5);
        assert_eq!(pair.sent.len(), 4);
        assert_eq!(pair.sides[0].ep.counters().bndupd_sent, sent_before + 4);
    }
}
