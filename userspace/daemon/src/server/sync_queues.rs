//! Binding synchronisation on the XDP datapath (RFC 8156 §7, `docs/failover.md` D27): how
//! the committed changes of the workers' engines reach the failover plane on the main thread,
//! and how the plane's operations on the lease shards run on the worker that owns the shard
//! (the main thread never touches a worker's store).
//!
//! * **Changes, worker → main.** Each worker has a bounded lock-free ring of
//!   `(shard, Binding, Instant)` ([`CHANGE_RING`] entries, allocated at startup). The worker
//!   stages what its engines committed while it serves a batch of frames and pushes it onto
//!   the ring at its next loop turn, after the batch's Replies went onto the TX ring (lazy
//!   update, §4.3), stamped with the time that loop turn began (read once per turn by the
//!   datapath, after the Replies were sent: the update latency runs from it, D50); changes of
//!   handed-over requests and of expiry follow at the end of the turn, stamped then. A
//!   full ring drops the change and counts it (`overflow`): the binding keeps its "partner
//!   needs update" flag in the store and a scan sends it, so no update is lost. The first push
//!   after the main thread re-armed writes an eventfd registered in the main loop; while
//!   changes keep coming the main thread collects them every [`CHANGES_WINDOW`] instead, and
//!   workers write nothing (one atomic swap per loop turn with changes).
//! * **Requests, main → worker → main.** `WorkerShards` is the XDP datapath's
//!   [`LeaseShards`]: each operation (a batch of the partner's leases, a batch of its acks, a
//!   scan chunk, msync) becomes a `Request` for the owning worker's request queue (its inbox
//!   eventfd wakes it when it sleeps). The worker runs up to [`REQUESTS_PER_TURN`] of them
//!   between frames and puts each back on its answer queue; the main thread waits for the
//!   answers on an eventfd, at most until [`TURN_LIMIT`] after the turn began (an msync
//!   before a BNDREPLY at most [`DURABLE_LIMIT`], the time a disk may take). A request not
//!   answered in time fails: the partner's leases are refused UnspecFail (it resends them),
//!   acks are not applied (the binding stays flagged, a scan resends it and the partner acks
//!   again), msync failure refuses the BNDREPLYs, and a scan chunk is tried again next turn.
//!   A late answer is recognised by its sequence number and dropped.
//!
//! Nothing on a worker blocks or takes a lock here; the buffers a request fills are sized by
//! the main thread before it is sent, so the worker does not allocate either.

use std::cell::Cell;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use tandem_datapath::sys::eventfd::EventFd;
use tandem_lease::sync::{LeaseUpdate, Role as SyncRole};
use tandem_lease::{Binding, FailoverTime, LeaseKind};
use tandem_proto::{Engine, PartnerOutcome};

use super::mailbox::Exchange;
use super::shard::{LoggingStore, Shard};
use crate::failover::sync::{AckItem, LeaseShards};

/// Entries of one worker's change ring (each a shard number, a binding and when it was
/// pushed, ~270 octets).
pub const CHANGE_RING: usize = 4096;
/// Changes a worker stages between two pushes onto its ring (a full stage is pushed at once).
pub const STAGE_CAP: usize = 1024;
/// Requests (and answers) that may wait in one worker's queues.
pub const REQUEST_QUEUE: usize = 16;
/// Requests a worker runs per loop turn.
pub const REQUESTS_PER_TURN: usize = 4;
/// Longest the main thread waits for the workers' answers in one turn of binding sync.
pub const TURN_LIMIT: Duration = Duration::from_millis(5);
/// Longest the main thread waits for the workers' msync before a BNDREPLY (§7.5.2), whatever
/// is left of the turn: the time a disk may take to write the updates back (the socket
/// datapath's main thread waits for its own msync as long as it takes).
pub const DURABLE_LIMIT: Duration = Duration::from_millis(100);
/// Scan chunks are started only within this much of a turn.
pub const SCAN_SHARE: Duration = Duration::from_millis(2);
/// While changes keep coming, the main thread collects them this often (no eventfd writes).
pub const CHANGES_WINDOW: Duration = Duration::from_millis(1);

/// One operation on the shards of one worker, and its answer.
#[derive(Debug)]
enum Op {
    /// The partner's leases `(index in the caller's batch, shard, lease)` (§7.5.4); the
    /// outcomes in the same order and what goes back to the partner.
    Update {
        now: FailoverTime,
        role: SyncRole,
        items: Vec<(usize, u32, LeaseUpdate)>,
        outcomes: Vec<PartnerOutcome>,
        back: Vec<(usize, Binding)>,
    },
    /// The partner's acknowledgements `(index in the caller's batch, ack)` (§7.7) and what
    /// changed as a result.
    Ack {
        now: FailoverTime,
        items: Vec<(usize, AckItem)>,
        back: Vec<(usize, Binding)>,
    },
    /// Up to `max` bindings of `shard` from `cursor`, and the next cursor.
    Scan {
        shard: u32,
        cursor: u64,
        max: usize,
        found: Vec<Binding>,
        next: Option<u64>,
    },
    /// msync of the records of every store the worker owns (`Store::sync_records`); the
    /// first error.
    Durable { error: Option<String> },
    /// RFC 8156 §4.2.2 on the primary: `shard`'s FREE-BACKUP share
    /// ([`tandem_proto::Engine::rebalance_prefixes`]) and the prefixes it moved.
    Rebalance {
        shard: u32,
        now: FailoverTime,
        share_percent: u32,
        cap: u64,
        moved: Vec<Binding>,
    },
}

/// A request for a worker, answered in place (see the module docs).
#[derive(Debug)]
pub(super) struct Request {
    seq: u64,
    op: Op,
}

fn shard_mut(owned: &mut [Option<Shard>], k: u32) -> Option<&mut Shard> {
    usize::try_from(k)
        .ok()
        .and_then(|k| owned.get_mut(k))
        .and_then(Option::as_mut)
}

impl Request {
    /// Runs the operation on the shards the worker owns (`owned`, indexed by shard).
    fn run(&mut self, owned: &mut [Option<Shard>]) {
        match &mut self.op {
            Op::Update {
                now,
                role,
                items,
                outcomes,
                back,
            } => {
                for (i, shard, upd) in items.iter() {
                    let outcome = match shard_mut(owned, *shard) {
                        Some(s) => {
                            let o = s.engine.partner_update(
                                *now,
                                *role,
                                upd,
                                &mut LoggingStore(&mut s.store),
                            );
                            back.extend(s.engine.changes().iter().map(|c| (*i, c.binding)));
                            o
                        }
                        None => PartnerOutcome::OtherShard,
                    };
                    outcomes.push(outcome);
                }
            }
            Op::Ack { now, items, back } => {
                for (i, a) in items.iter() {
                    if let Some(s) = shard_mut(owned, a.shard) {
                        s.engine.partner_ack(
                            *now,
                            a.kind,
                            a.addr,
                            &a.info,
                            &mut LoggingStore(&mut s.store),
                        );
                        back.extend(s.engine.changes().iter().map(|c| (*i, c.binding)));
                    }
                }
            }
            Op::Scan {
                shard,
                cursor,
                max,
                found,
                next,
            } => {
                *next = shard_mut(owned, *shard).and_then(|s| {
                    tandem_lease::LeaseStore::scan(&s.store, *cursor, *max, &mut |b| {
                        found.push(*b);
                    })
                });
            }
            Op::Rebalance {
                shard,
                now,
                share_percent,
                cap,
                moved,
            } => {
                if let Some(s) = shard_mut(owned, *shard) {
                    s.engine.rebalance_prefixes(
                        *now,
                        *share_percent,
                        *cap,
                        &mut LoggingStore(&mut s.store),
                    );
                    moved.extend(s.engine.changes().iter().map(|c| c.binding));
                }
            }
            Op::Durable { error } => {
                // The records, not the indexes, as on the socket datapath (`ShardSet`'s
                // `make_durable`, docs/failover.md D38): the worker's periodic flush writes the
                // indexes, and an open after a stop before it rebuilds them.
                for s in owned.iter_mut().flatten() {
                    if let Err(e) = s.store.sync_records() {
                        *error = Some(format!("lease shard {}: {e}", s.index));
                        break;
                    }
                }
            }
        }
    }
}

/// The queues of one worker.
#[derive(Debug)]
struct Port {
    /// Committed changes for the partner (worker → main), with when their Replies had gone
    /// out.
    changes: ArrayQueue<(u32, Binding, Instant)>,
    /// Changes dropped because `changes` was full (taken by the main thread).
    overflow: AtomicU64,
    /// Requests for the worker (main → worker).
    requests: ArrayQueue<Box<Request>>,
    /// Answered requests (worker → main).
    answers: ArrayQueue<Box<Request>>,
}

/// What the workers and the main thread share for binding sync (see the module docs).
#[derive(Debug)]
pub(super) struct SyncQueues {
    ports: Vec<Port>,
    /// Readable when a worker pushed changes after the main thread re-armed.
    changes_wake: EventFd,
    /// Set by the first push after a re-arm; while set, workers write no eventfd.
    announced: AtomicBool,
    /// Readable when a worker answered a request.
    answers_wake: EventFd,
}

impl SyncQueues {
    /// The queues of `workers` workers, with change rings of [`CHANGE_RING`] entries.
    ///
    /// # Errors
    /// If an eventfd cannot be created.
    pub(super) fn new(workers: usize) -> io::Result<Self> {
        Self::with_ring(workers, CHANGE_RING)
    }

    /// The queues of `workers` workers, with change rings of `ring` entries.
    pub(super) fn with_ring(workers: usize, ring: usize) -> io::Result<Self> {
        Ok(Self {
            ports: (0..workers)
                .map(|_| Port {
                    changes: ArrayQueue::new(ring.max(1)),
                    overflow: AtomicU64::new(0),
                    requests: ArrayQueue::new(REQUEST_QUEUE),
                    answers: ArrayQueue::new(REQUEST_QUEUE),
                })
                .collect(),
            changes_wake: EventFd::new()?,
            announced: AtomicBool::new(false),
            answers_wake: EventFd::new()?,
        })
    }

    // --- worker side ---

    /// Worker `worker` pushes a committed change whose Reply had gone out at `sent` (D50);
    /// `false` (counted as overflow) if its ring is full: the binding stays flagged in the
    /// store and a scan sends it.
    pub(super) fn push_change(
        &self,
        worker: usize,
        shard: u32,
        b: &Binding,
        sent: Instant,
    ) -> bool {
        let Some(port) = self.ports.get(worker) else {
            return false;
        };
        if port.changes.push((shard, *b, sent)).is_err() {
            port.overflow.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// After pushing changes: wakes the main thread unless it was told already since it
    /// last re-armed.
    pub(super) fn announce(&self) {
        if !self.announced.swap(true, Ordering::AcqRel) {
            self.changes_wake.notify();
        }
    }

    /// `true` if requests wait for worker `worker` (checked before it sleeps).
    pub(super) fn has_requests(&self, worker: usize) -> bool {
        self.ports
            .get(worker)
            .is_some_and(|p| !p.requests.is_empty())
    }

    /// Worker `worker` runs up to [`REQUESTS_PER_TURN`] waiting requests on the shards it
    /// owns and answers them; the number run.
    pub(super) fn serve_requests(&self, worker: usize, owned: &mut [Option<Shard>]) -> usize {
        let Some(port) = self.ports.get(worker) else {
            return 0;
        };
        let mut n = 0;
        while n < REQUESTS_PER_TURN {
            let Some(mut req) = port.requests.pop() else {
                break;
            };
            req.run(owned);
            n += 1;
            // A full answer queue means the main thread stopped collecting: the request
            // has timed out there anyway.
            let _ = port.answers.push(req);
        }
        if n > 0 {
            self.answers_wake.notify();
        }
        n
    }

    // --- main side ---

    /// The eventfd the main loop watches for changes.
    pub(super) fn changes_fd(&self) -> RawFd {
        self.changes_wake.as_raw_fd()
    }

    /// Resets the changes eventfd (after it woke the loop); how often it was written.
    pub(super) fn clear_wake(&self) -> u64 {
        self.changes_wake.drain()
    }

    /// Back to waking the main thread on the next change (after a window without changes).
    pub(super) fn rearm(&self) {
        self.changes_wake.drain();
        // AcqRel: every push before a worker's `announce` that set the flag is visible to
        // the `take_changes` that follows.
        self.announced.swap(false, Ordering::AcqRel);
    }

    /// Hands every waiting change to `f` with the worker's stamp (at most one ring's worth
    /// per worker per call) and returns `(changes taken, changes dropped by full rings since
    /// the last call)`.
    pub(super) fn take_changes(&self, f: &mut dyn FnMut(u32, &Binding, Instant)) -> (u64, u64) {
        let (mut taken, mut dropped) = (0u64, 0u64);
        for port in &self.ports {
            for _ in 0..port.changes.capacity() {
                let Some((shard, b, sent)) = port.changes.pop() else {
                    break;
                };
                f(shard, &b, sent);
                taken += 1;
            }
            dropped += port.overflow.swap(0, Ordering::Relaxed);
        }
        (taken, dropped)
    }
}

/// Counters of `WorkerShards` (the XDP datapath's `LeaseShards`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeCounters {
    /// Requests sent to workers.
    pub requests: u64,
    /// Requests not answered within the turn (or not sent: queue full, turn over).
    pub timeouts: u64,
    /// Answers that came after their request had timed out (dropped).
    pub late_answers: u64,
}

/// The XDP datapath's [`LeaseShards`]: every operation runs on the worker that owns the
/// shard (see the module docs). Call [`WorkerShards::begin_turn`] before each
/// `FailoverPlane::pump_bindings`.
#[derive(Debug)]
pub(super) struct WorkerShards {
    queues: Arc<SyncQueues>,
    exchange: Arc<Exchange>,
    workers: usize,
    shards: u32,
    /// An engine over the configuration, for [`LeaseShards::shard_of_lease`] only (it never
    /// touches a store).
    engine: Engine,
    /// [`TURN_LIMIT`] and [`SCAN_SHARE`] (tests may allow more).
    turn_limit: Duration,
    scan_share: Duration,
    /// [`DURABLE_LIMIT`].
    durable_limit: Duration,
    next_seq: Cell<u64>,
    turn_start: Cell<Instant>,
    /// A worker did not answer in time this turn.
    stalled: Cell<bool>,
    counters: Cell<BridgeCounters>,
}

impl WorkerShards {
    /// The shards `0..shards` of `workers` workers (shard k on worker k mod workers).
    /// `engine` is built from the configuration with the partition `(0, shards)`.
    pub(super) fn new(
        queues: Arc<SyncQueues>,
        exchange: Arc<Exchange>,
        workers: usize,
        shards: u32,
        engine: Engine,
    ) -> Self {
        Self {
            queues,
            exchange,
            workers: workers.max(1),
            shards: shards.max(1),
            engine,
            turn_limit: TURN_LIMIT,
            scan_share: SCAN_SHARE,
            durable_limit: DURABLE_LIMIT,
            next_seq: Cell::new(1),
            turn_start: Cell::new(Instant::now()),
            stalled: Cell::new(false),
            counters: Cell::new(BridgeCounters::default()),
        }
    }

    /// Other time limits (a test on a loaded machine allows more).
    #[cfg(test)]
    pub(super) fn set_limits(&mut self, turn_limit: Duration, scan_share: Duration) {
        self.turn_limit = turn_limit;
        self.scan_share = scan_share;
    }

    /// Starts a turn: the workers' answers are awaited until [`TURN_LIMIT`] from now.
    pub(super) fn begin_turn(&mut self) {
        self.turn_start.set(Instant::now());
        self.stalled.set(false);
    }

    /// The counters.
    pub(super) fn counters(&self) -> BridgeCounters {
        self.counters.get()
    }

    fn count(&self, f: impl FnOnce(&mut BridgeCounters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    fn owner(&self, shard: u32) -> usize {
        usize::try_from(shard).map_or(0, |k| k % self.workers)
    }

    /// Sends each `(worker, op)` and waits for the answers until the turn's deadline: the
    /// answered operations, `None` where a worker did not answer in time.
    /// How long a batch of the partner's updates or acknowledgements may wait for the
    /// workers: like the msync before a BNDREPLY, the time a store takes (docs/failover.md
    /// D27), not the few ms of optional work — a refused update comes back only with the next
    /// scan of the partner, a minute later.
    fn store_deadline(&self) -> Instant {
        Instant::now() + self.turn_limit.max(self.durable_limit)
    }

    fn round_trip(&self, ops: Vec<(usize, Op)>) -> Vec<Option<Op>> {
        self.round_trip_until(ops, self.turn_start.get() + self.turn_limit)
    }

    /// [`WorkerShards::round_trip`] with its own deadline.
    fn round_trip_until(&self, ops: Vec<(usize, Op)>, deadline: Instant) -> Vec<Option<Op>> {
        let mut results: Vec<Option<Op>> = Vec::with_capacity(ops.len());
        let mut waiting: Vec<Option<(usize, u64)>> = Vec::with_capacity(ops.len());
        for (w, op) in ops {
            results.push(None);
            let (Some(port), Some(inbox)) =
                (self.queues.ports.get(w), self.exchange.inboxes.get(w))
            else {
                waiting.push(None);
                self.count(|c| c.timeouts += 1);
                continue;
            };
            if Instant::now() >= deadline {
                waiting.push(None);
                self.count(|c| c.timeouts += 1);
                self.stalled.set(true);
                continue;
            }
            let seq = self.next_seq.get();
            self.next_seq.set(seq + 1);
            match port.requests.push(Box::new(Request { seq, op })) {
                Ok(()) => {
                    inbox.wake_if_sleeping();
                    waiting.push(Some((w, seq)));
                    self.count(|c| c.requests += 1);
                }
                Err(_) => {
                    // Its queue is full of requests it has not run: as good as a timeout.
                    waiting.push(None);
                    self.count(|c| c.timeouts += 1);
                    self.stalled.set(true);
                }
            }
        }
        loop {
            // Reset before looking, so an answer pushed after the look makes it readable.
            self.queues.answers_wake.drain();
            for w in 0..self.queues.ports.len() {
                if !waiting.iter().flatten().any(|(x, _)| *x == w) {
                    continue;
                }
                let Some(port) = self.queues.ports.get(w) else {
                    continue;
                };
                while let Some(answer) = port.answers.pop() {
                    let slot = waiting.iter().position(|x| *x == Some((w, answer.seq)));
                    match slot {
                        Some(i) => {
                            if let (Some(r), Some(wt)) = (results.get_mut(i), waiting.get_mut(i)) {
                                *r = Some(answer.op);
                                *wt = None;
                            }
                        }
                        None => self.count(|c| c.late_answers += 1),
                    }
                }
            }
            let left = waiting.iter().flatten().count();
            if left == 0 {
                break;
            }
            let now = Instant::now();
            let waited = if now < deadline {
                self.queues
                    .answers_wake
                    .wait(deadline.saturating_duration_since(now))
            } else {
                Ok(false)
            };
            if let Err(e) = &waited {
                tracing::warn!("failover: waiting for the XDP workers' answers: {e}");
            }
            if waited.is_err() || Instant::now() >= deadline {
                self.count(|c| c.timeouts += left as u64);
                self.stalled.set(true);
                tracing::warn!(
                    "failover: {left} request(s) to the XDP workers not answered within \
                     {:?} of the turn (docs/failover.md D27): failed, tried again later",
                    self.turn_limit
                );
                break;
            }
        }
        results
    }
}

impl LeaseShards for WorkerShards {
    fn count(&self) -> u32 {
        self.shards
    }

    fn shard_of_lease(&self, kind: LeaseKind, addr: Ipv6Addr, len: u8) -> Option<u32> {
        self.engine.lease_shard(kind, addr, len)
    }

    fn partner_update(
        &mut self,
        shard: u32,
        now: FailoverTime,
        role: SyncRole,
        upd: &LeaseUpdate,
        out: &mut dyn FnMut(&Binding),
    ) -> PartnerOutcome {
        let mut outcomes = Vec::with_capacity(1);
        self.partner_updates(now, role, &[(shard, *upd)], &mut outcomes, &mut |_, b| {
            out(b)
        });
        outcomes
            .first()
            .copied()
            .unwrap_or(PartnerOutcome::StoreError)
    }

    fn partner_ack(
        &mut self,
        shard: u32,
        now: FailoverTime,
        kind: LeaseKind,
        addr: Ipv6Addr,
        info: &tandem_lease::sync::AckInfo,
        out: &mut dyn FnMut(&Binding),
    ) {
        let item = AckItem {
            shard,
            kind,
            addr,
            info: *info,
        };
        self.partner_acks(now, &[item], &mut |_, b| out(b));
    }

    fn scan(
        &self,
        shard: u32,
        cursor: u64,
        max: usize,
        f: &mut dyn FnMut(&Binding),
    ) -> Option<u64> {
        let op = Op::Scan {
            shard,
            cursor,
            max,
            found: Vec::with_capacity(max),
            next: None,
        };
        let answer = self
            .round_trip(vec![(self.owner(shard), op)])
            .into_iter()
            .next()
            .flatten();
        match answer {
            Some(Op::Scan { found, next, .. }) => {
                for b in &found {
                    f(b);
                }
                next
            }
            // Not answered: the same chunk again next turn (`ready` is false now).
            _ => Some(cursor),
        }
    }

    fn rebalance(
        &mut self,
        shard: u32,
        now: FailoverTime,
        share_percent: u32,
        cap: u64,
        out: &mut dyn FnMut(&Binding),
    ) -> bool {
        let op = Op::Rebalance {
            shard,
            now,
            share_percent,
            cap,
            moved: Vec::new(),
        };
        // It changes the store (D58): the time a store takes, like a batch of updates.
        let answer = self
            .round_trip_until(vec![(self.owner(shard), op)], self.store_deadline())
            .into_iter()
            .next()
            .flatten();
        // Not answered in time: the worker may still move prefixes, flagged in its store; the
        // caller has a scan send them (and the next rebalancing counts them).
        let Some(Op::Rebalance { moved, .. }) = answer else {
            return false;
        };
        for b in &moved {
            out(b);
        }
        true
    }

    fn make_durable(&mut self) -> io::Result<()> {
        let ops = (0..self.workers)
            .map(|w| (w, Op::Durable { error: None }))
            .collect();
        let limit = self.turn_limit.max(self.durable_limit);
        for answer in self.round_trip_until(ops, Instant::now() + limit) {
            match answer {
                Some(Op::Durable { error: None }) => {}
                Some(Op::Durable { error: Some(e) }) => return Err(io::Error::other(e)),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("an XDP worker did not msync its stores within {limit:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn partner_updates(
        &mut self,
        now: FailoverTime,
        role: SyncRole,
        batch: &[(u32, LeaseUpdate)],
        outcomes: &mut Vec<PartnerOutcome>,
        out: &mut dyn FnMut(usize, &Binding),
    ) {
        outcomes.clear();
        // Not answered in time: UnspecFail, the partner keeps the lease pending and resends.
        outcomes.resize(batch.len(), PartnerOutcome::StoreError);
        let mut per_worker: Vec<Vec<(usize, u32, LeaseUpdate)>> = vec![Vec::new(); self.workers];
        for (i, (shard, upd)) in batch.iter().enumerate() {
            if let Some(list) = per_worker.get_mut(self.owner(*shard)) {
                list.push((i, *shard, *upd));
            }
        }
        let ops = per_worker
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(w, items)| {
                let n = items.len();
                (
                    w,
                    Op::Update {
                        now,
                        role,
                        items,
                        outcomes: Vec::with_capacity(n),
                        back: Vec::with_capacity(n),
                    },
                )
            })
            .collect();
        for answer in self
            .round_trip_until(ops, self.store_deadline())
            .into_iter()
            .flatten()
        {
            if let Op::Update {
                items,
                outcomes: got,
                back,
                ..
            } = answer
            {
                for ((i, _, _), o) in items.iter().zip(got) {
                    if let Some(slot) = outcomes.get_mut(*i) {
                        *slot = o;
                    }
                }
                for (i, b) in &back {
                    out(*i, b);
                }
            }
        }
    }

    fn partner_acks(
        &mut self,
        now: FailoverTime,
        batch: &[AckItem],
        out: &mut dyn FnMut(usize, &Binding),
    ) {
        let mut per_worker: Vec<Vec<(usize, AckItem)>> = vec![Vec::new(); self.workers];
        for (i, a) in batch.iter().enumerate() {
            if let Some(list) = per_worker.get_mut(self.owner(a.shard)) {
                list.push((i, *a));
            }
        }
        let ops = per_worker
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(w, items)| {
                let n = items.len();
                (
                    w,
                    Op::Ack {
                        now,
                        items,
                        back: Vec::with_capacity(n),
                    },
                )
            })
            .collect();
        // Not answered in time: the bindings stay flagged; a scan resends them and the
        // partner acknowledges again.
        for answer in self
            .round_trip_until(ops, self.store_deadline())
            .into_iter()
            .flatten()
        {
            if let Op::Ack { back, .. } = answer {
                for (i, b) in &back {
                    out(*i, b);
                }
            }
        }
    }

    fn ready(&self) -> bool {
        !self.stalled.get() && self.turn_start.get().elapsed() < self.scan_share
    }
}
