//! The handler of one XDP worker: the shards it owns, the path from a received frame to the
//! reply written in place, the hand-off of frames whose shard another worker owns (through
//! [`super::mailbox`]), and the housekeeping of its shards (see [`super::xdp_loop`] for the
//! whole datapath).

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_datapath::worker::{Action, Handler};
use tandem_lease::{Binding, FailoverTime};
use tandem_proto::{BindingChange, Counters, Inbound, Outcome, RxMeta};
use tandem_wire::frame::ethernet::EthernetAddress;
use tandem_wire::frame::{Frame, FrameRepr};

use super::mailbox::{Exchange, HandoffStats, ParcelKind};
use super::shard::{HOUSEKEEPING_EVERY, RECLAIM_BUDGET, Shard};
use super::sync_queues::{STAGE_CAP, SyncQueues};
use crate::entropy::XorShift64Star;
use crate::failover::policy::PolicyCell;
use crate::timefmt::unix_now;

/// Most inbox parcels a worker takes per loop iteration.
const INBOX_BATCH: usize = 64;
/// The engine's output buffer (a reply that does not fit is dropped and counted).
pub(super) const SCRATCH_LEN: usize = 4096;
/// UDP port of DHCPv6 servers and relay agents (RFC 8415 §7.2).
const SERVER_PORT: u16 = 547;

/// An interface the workers serve.
#[derive(Debug)]
pub(super) struct Iface {
    pub(super) name: String,
    pub(super) mac: EthernetAddress,
    /// Source address of replies to multicast requests.
    pub(super) server_addr: Ipv6Addr,
}

/// What a worker leaves behind when it stops.
#[derive(Debug, Default)]
pub(super) struct Final {
    pub(super) counters: Counters,
    pub(super) close_failed: bool,
}

/// What a worker last published about its shards, for `status` (see [`ShardWorker::publish`]).
#[derive(Debug, Default)]
pub(super) struct Published {
    /// The engine counters of the owned shards, added up.
    pub(super) counters: Counters,
    /// Bindings stored in the owned shards.
    pub(super) bindings: usize,
}

impl Published {
    /// The snapshot of `owned` (indexed by shard, `Some` for the owned ones).
    pub(super) fn of(owned: &[Option<Shard>]) -> Self {
        let mut p = Self::default();
        for shard in owned.iter().flatten() {
            p.counters.merge(shard.engine.counters());
            p.bindings = p
                .bindings
                .saturating_add(tandem_lease::LeaseStore::len(&shard.store));
        }
        p
    }
}

/// The handler of one XDP worker (see the module docs).
pub(super) struct ShardWorker {
    pub(super) index: usize,
    pub(super) workers: usize,
    pub(super) shards: u32,
    pub(super) iface: usize,
    pub(super) ifaces: Arc<[Iface]>,
    /// Indexed by shard; `Some` for the shards this worker owns.
    pub(super) owned: Vec<Option<Shard>>,
    pub(super) exchange: Arc<Exchange>,
    pub(super) rng: XorShift64Star,
    pub(super) scratch: Box<[u8]>,
    pub(super) last_housekeeping: Instant,
    pub(super) stats: Arc<HandoffStats>,
    pub(super) result: Arc<Mutex<Final>>,
    /// Refreshed by every housekeeping pass, read by the control socket.
    pub(super) published: Arc<Mutex<Published>>,
    /// The failover serving policy the main thread publishes (RFC 8156 §8).
    pub(super) policy: Arc<PolicyCell>,
    /// Its encoding as last applied to the owned engines (`u64::MAX`: never).
    pub(super) policy_bits: u64,
    /// Binding sync with the failover partner (`None`: standalone, nothing is tracked).
    pub(super) sync: Option<Arc<SyncQueues>>,
    /// Changes committed since the last push onto the ring (capacity [`STAGE_CAP`],
    /// allocated at startup when `sync` is set).
    pub(super) staged: Vec<(u32, Binding)>,
}

/// Stages the changes shard `k`'s engine committed, for the partner; a full stage is pushed
/// onto the ring first (the stage never grows; a rare path, which reads the clock for it).
fn stage(
    staged: &mut Vec<(u32, Binding)>,
    sync: &SyncQueues,
    worker: usize,
    k: u32,
    changes: &[BindingChange],
) {
    for c in changes {
        if staged.len() >= STAGE_CAP {
            push_staged(staged, sync, worker, Instant::now());
        }
        staged.push((k, c.binding));
    }
}

/// Pushes the staged changes onto worker `worker`'s ring, each stamped `sent` (their Replies
/// had gone out by then: the update latency runs from it, docs/failover.md D50; a full ring
/// drops and counts them: they stay flagged in the store for a scan) and tells the main
/// thread.
fn push_staged(staged: &mut Vec<(u32, Binding)>, sync: &SyncQueues, worker: usize, sent: Instant) {
    if staged.is_empty() {
        return;
    }
    for (k, b) in staged.drain(..) {
        sync.push_change(worker, k, &b, sent);
    }
    sync.announce();
}

/// `true` for a frame to answer: to port 547, from a unicast source (RFC 4291 §2.7).
fn answerable(rx: &Frame<'_>) -> bool {
    rx.dst_port() == SERVER_PORT && !rx.src_ip().is_multicast() && !rx.src_ip().is_unspecified()
}

/// Where a request frame went in [`ShardWorker::serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Served {
    /// The reply frame is written over the request: its length.
    Reply(usize),
    /// The client's shard belongs to worker `.0`: the frame is left as it was (its UDP
    /// checksum completed), ready to be handed over.
    Elsewhere(usize),
    /// Nothing to send: not a request to answer, malformed, or dropped by the engine.
    Drop,
}

/// Writes the reply frame (headers, then `payload`) at the start of `buf`; its length.
fn write_reply(buf: &mut [u8], headers: &FrameRepr, payload: &[u8]) -> Option<usize> {
    buf.get_mut(headers.header_len()..)?
        .get_mut(..payload.len())?
        .copy_from_slice(payload);
    headers.emit_headers(buf, payload.len()).ok()
}

impl ShardWorker {
    fn owner(&self, shard: u32) -> usize {
        usize::try_from(shard).map_or(0, |k| k % self.workers.max(1))
    }

    /// The one path from a request frame to its reply, for frames from this worker's RX ring
    /// and parcels from other workers alike: parses `buf[..len]` (received on interface
    /// `iface`), finds the shard of its client ([`shard_of`]) and, if this worker owns it,
    /// runs the shard's engine and writes the reply frame over the request (headers from
    /// [`FrameRepr::reply_to`]: back to where it came from, VLAN tags kept).
    fn serve(&mut self, iface: usize, buf: &mut [u8], len: usize) -> Served {
        let (headers, n) = {
            // Local senders over veth leave the UDP checksum to the device (CHECKSUM_PARTIAL):
            // completed here, in the frame, so a parcel copy parses as is.
            let Some(bytes) = buf.get_mut(..len) else {
                return Served::Drop;
            };
            let Ok(rx) = Frame::parse_completing_partial(bytes) else {
                return Served::Drop;
            };
            if !answerable(&rx) {
                return Served::Drop;
            }
            // Parsed once: the shard is picked from it and the owner's engine takes it as is
            // (a frame handed to another worker is parsed again there, from its parcel).
            let inbound = Inbound::parse(rx.payload());
            let k = inbound.shard(self.shards).unwrap_or(0);
            let owner = self.owner(k);
            if owner != self.index {
                return Served::Elsewhere(owner);
            }
            let shard = usize::try_from(k)
                .ok()
                .and_then(|k| self.owned.get_mut(k))
                .and_then(Option::as_mut);
            let (Some(shard), Some(info)) = (shard, self.ifaces.get(iface)) else {
                return Served::Drop;
            };
            let meta = RxMeta {
                interface: &info.name,
                src: rx.src_ip(),
                dst: rx.dst_ip(),
            };
            let now = FailoverTime::from_unix(unix_now());
            let (engine, mut store) = shard.engine_and_store();
            let outcome = engine.handle_inbound(
                now,
                &meta,
                &inbound,
                &mut store,
                &mut self.rng,
                &mut self.scratch,
            );
            // For the partner once the Reply is out (RFC 8156 §4.3): staged now, pushed at the
            // next loop turn ([`ShardWorker::push_changes`]).
            if let Some(sync) = self.sync.as_deref() {
                stage(&mut self.staged, sync, self.index, k, engine.changes());
            }
            match outcome {
                Outcome::Reply { len } => {
                    (FrameRepr::reply_to(&rx, info.mac, info.server_addr), len)
                }
                Outcome::Drop(reason) => {
                    tracing::debug!(
                        "dropped a datagram from {} on {}: {}",
                        rx.src_ip(),
                        info.name,
                        reason.name()
                    );
                    return Served::Drop;
                }
            }
        };
        self.scratch
            .get(..n)
            .and_then(|payload| write_reply(buf, &headers, payload))
            .map_or(Served::Drop, Served::Reply)
    }

    /// Applies the published serving policy to the owned engines if it changed (one atomic
    /// load when it did not).
    fn sync_policy(&mut self) {
        let bits = self.policy.load_bits();
        if bits != self.policy_bits {
            self.policy_bits = bits;
            let policy = crate::failover::policy::decode(bits);
            for shard in self.owned.iter_mut().flatten() {
                shard.engine.set_policy(policy);
            }
        }
    }

    /// Copies the frame into a parcel for worker `owner`; `false` if that failed.
    fn hand_off(&self, owner: usize, frame: &[u8]) -> bool {
        let Some(inbox) = self.exchange.inboxes.get(owner) else {
            return false;
        };
        let Some(mut parcel) = self.exchange.pool.pop() else {
            return false;
        };
        let Some(dst) = parcel.buf.get_mut(..frame.len()) else {
            let _ = self.exchange.pool.push(parcel);
            return false;
        };
        dst.copy_from_slice(frame);
        parcel.kind = ParcelKind::Request;
        parcel.origin = self.index;
        parcel.iface = self.iface;
        parcel.len = frame.len();
        match inbox.push(parcel) {
            Ok(()) => true,
            Err(parcel) => {
                let _ = self.exchange.pool.push(parcel);
                false
            }
        }
    }

    /// Expiry and msync of the owned shards, when due.
    fn housekeeping(&mut self) {
        if self.last_housekeeping.elapsed() < HOUSEKEEPING_EVERY {
            return;
        }
        self.last_housekeeping = Instant::now();
        let now = FailoverTime::from_unix(unix_now());
        for shard in self.owned.iter_mut().flatten() {
            let report = shard.reclaim(now, RECLAIM_BUDGET);
            tracing::trace!("shard {} reclaim: {report:?}", shard.index);
            if let Some(sync) = self.sync.as_deref() {
                stage(
                    &mut self.staged,
                    sync,
                    self.index,
                    shard.index,
                    shard.engine.changes(),
                );
            }
            shard.flush_if_due(self.last_housekeeping);
        }
        self.publish();
    }

    /// Pushes the staged changes onto this worker's ring for the failover plane, stamped
    /// `sent` (D50).
    fn push_changes(&mut self, sent: Instant) {
        if let Some(sync) = self.sync.as_deref() {
            push_staged(&mut self.staged, sync, self.index, sent);
        }
    }

    /// Runs the failover plane's requests on the owned shards (bounded per turn); how many.
    fn serve_requests(&mut self) -> usize {
        match self.sync.as_deref() {
            Some(sync) => sync.serve_requests(self.index, &mut self.owned),
            None => 0,
        }
    }

    /// Publishes the engine counters and binding count of the owned shards for `status`
    /// (once per housekeeping pass, never per packet).
    fn publish(&self) {
        let snapshot = Published::of(&self.owned);
        if let Ok(mut p) = self.published.lock() {
            *p = snapshot;
        }
    }
}

impl Handler for ShardWorker {
    fn handle(&mut self, frame: &mut [u8], len: usize) -> Action {
        self.sync_policy();
        match self.serve(self.iface, frame, len) {
            Served::Reply(n) => Action::Reply(n),
            Served::Elsewhere(owner) => {
                if self.hand_off(owner, frame.get(..len).unwrap_or_default()) {
                    self.stats.out.fetch_add(1, Ordering::Relaxed);
                    Action::HandedOff
                } else {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    Action::Drop
                }
            }
            Served::Drop => Action::Drop,
        }
    }

    fn poll_outbound(&mut self, now: Instant, send: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        // Called on every loop iteration: only short borrows of the shared exchange, no
        // reference-count traffic on its cache line.
        self.sync_policy();
        // The last batch's Replies are on the TX ring: its changes go to the plane now,
        // stamped with the datapath's clock read of this turn (taken after that batch was
        // sent; no clock read of our own, D50).
        self.push_changes(now);
        let mut done = 0;
        while done < INBOX_BATCH {
            let Some(mut parcel) = self
                .exchange
                .inboxes
                .get(self.index)
                .and_then(|inbox| inbox.queue.pop())
            else {
                break;
            };
            done += 1;
            match parcel.kind {
                ParcelKind::Request => {
                    // The sender found this worker to be the owner of the shard; anything but a
                    // reply (`Elsewhere` included, which a consistent partition never gives)
                    // returns the parcel to the pool.
                    let (iface, len) = (parcel.iface, parcel.len);
                    let served = self.serve(iface, &mut parcel.buf, len);
                    match (served, self.exchange.inboxes.get(parcel.origin)) {
                        (Served::Reply(n), Some(back)) => {
                            parcel.kind = ParcelKind::Reply;
                            parcel.len = n;
                            self.stats.served.fetch_add(1, Ordering::Relaxed);
                            if let Err(parcel) = back.push(parcel) {
                                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                                let _ = self.exchange.pool.push(parcel);
                            }
                        }
                        _ => {
                            let _ = self.exchange.pool.push(parcel);
                        }
                    }
                }
                ParcelKind::Reply => {
                    let frame = parcel.buf.get(..parcel.len).unwrap_or_default();
                    if send(frame) {
                        self.stats.back.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = self.exchange.pool.push(parcel);
                }
            }
        }
        done += self.serve_requests();
        self.housekeeping();
        // Changes of handed-over requests (their replies are on the way back to the origin
        // worker, which sends them at its next turn) and of expiry: one clock read, only for
        // a turn that has some.
        if !self.staged.is_empty() {
            self.push_changes(Instant::now());
        }
        done
    }

    fn wake_fd(&self) -> Option<RawFd> {
        self.exchange
            .inboxes
            .get(self.index)
            .map(|i| i.wake.as_raw_fd())
    }

    fn ready_to_sleep(&mut self) -> bool {
        let Some(inbox) = self.exchange.inboxes.get(self.index) else {
            return true;
        };
        inbox.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let requests = self
            .sync
            .as_deref()
            .is_some_and(|s| s.has_requests(self.index));
        if inbox.queue.is_empty() && !requests {
            true
        } else {
            inbox.sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    fn woke(&mut self) {
        if let Some(inbox) = self.exchange.inboxes.get(self.index) {
            inbox.sleeping.store(false, Ordering::SeqCst);
            inbox.drain_wake();
        }
    }
}

impl Drop for ShardWorker {
    /// Closes the stores of the owned shards and leaves the engine counters for the report.
    fn drop(&mut self) {
        let mut counters = Counters::default();
        let mut failed = false;
        for shard in self.owned.iter_mut().filter_map(Option::take) {
            counters.merge(shard.engine.counters());
            let index = shard.index;
            if let Err(e) = shard.store.close() {
                tracing::error!("closing lease shard {index}: {e}");
                failed = true;
            }
        }
        if let Ok(mut fin) = self.result.lock() {
            fin.counters.merge(&counters);
            fin.close_failed |= failed;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tandem_config::Config;
    use tandem_store::StoreOptions;
    use tandem_wire::dhcp::{MessageType, Packet};
    use tandem_wire::frame::build_udp_frame;

    use super::*;
    use crate::server::mailbox::PARCELS_PER_WORKER;
    use crate::server::shard::tests::{CONFIG, TempDir, opt};

    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// A Solicit frame from a direct client with DUID `duid`, as a client sends it.
    fn solicit_frame(duid: &[u8]) -> Vec<u8> {
        let mut payload = vec![1, 0, 0, 9];
        payload.extend(opt(1, duid));
        payload.extend(opt(3, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
        let repr = FrameRepr {
            dst_mac: EthernetAddress([0x33, 0x33, 0, 1, 0, 2]),
            src_mac: EthernetAddress(CLIENT_MAC),
            vlans: Default::default(),
            src_ip: "fe80::2".parse().unwrap(),
            dst_ip: "ff02::1:2".parse().unwrap(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            src_port: 546,
            dst_port: 547,
        };
        let mut out = vec![0u8; 512];
        let n = build_udp_frame(&repr, &payload, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Two workers of one interface, shards 0 and 1 of 2, over stores in a fresh directory.
    fn pair() -> (TempDir, [ShardWorker; 2]) {
        pair_with(None)
    }

    /// [`pair`] with binding sync through `sync` (as with a `[[failover]]`).
    fn pair_with(sync: Option<Arc<SyncQueues>>) -> (TempDir, [ShardWorker; 2]) {
        let dir = TempDir::new();
        let config = Config::from_str(CONFIG, "t.toml").unwrap();
        let ifaces: Arc<[Iface]> = vec![Iface {
            name: "eth0".into(),
            mac: EthernetAddress(SERVER_MAC),
            server_addr: "fe80::1".parse().unwrap(),
        }]
        .into();
        let exchange = Arc::new(Exchange::new(2).unwrap());
        let result = Arc::new(Mutex::new(Final::default()));
        let options = StoreOptions {
            capacity: 64,
            flush_interval: Duration::from_secs(1),
        };
        let worker = |index: usize| {
            let mut owned: Vec<Option<Shard>> = vec![None, None];
            let k = u32::try_from(index).unwrap();
            owned[index] =
                Some(Shard::open(&dir.0, &config, &[0, 3, 0, 1, 9], k, 2, options).unwrap());
            ShardWorker {
                index,
                workers: 2,
                shards: 2,
                iface: 0,
                ifaces: Arc::clone(&ifaces),
                owned,
                exchange: Arc::clone(&exchange),
                rng: XorShift64Star::new(7),
                scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
                last_housekeeping: Instant::now(),
                stats: Arc::new(HandoffStats::default()),
                result: Arc::clone(&result),
                published: Arc::new(Mutex::new(Published::default())),
                policy: Arc::new(PolicyCell::new(tandem_lease::ServingPolicy::STANDALONE)),
                policy_bits: u64::MAX,
                sync: sync.clone(),
                staged: Vec::with_capacity(STAGE_CAP),
            }
        };
        let workers = [worker(0), worker(1)];
        (dir, workers)
    }

    /// A DUID whose shard of 2 is `k`.
    fn duid_of_shard(k: u32) -> Vec<u8> {
        duid_of_shard_n(k, 0)
    }

    /// The `n`th DUID (from 0) whose shard of 2 is `k`.
    fn duid_of_shard_n(k: u32, n: usize) -> Vec<u8> {
        (0u8..)
            .map(|n| vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n])
            .filter(|d| tandem_proto::duid_hash(d) % 2 == u64::from(k))
            .nth(n)
            .unwrap()
    }

    fn assert_advertise_to_client(frame: &[u8]) {
        let rx = Frame::parse(frame).unwrap();
        assert_eq!(rx.dst_ip(), "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!((rx.src_port(), rx.dst_port()), (547, 546));
        assert_eq!(rx.dst_mac(), EthernetAddress(CLIENT_MAC));
        let Packet::Client(msg) = Packet::parse(rx.payload()).unwrap() else {
            panic!("not a client-format message");
        };
        assert_eq!(msg.msg_type, MessageType::ADVERTISE);
    }

    #[test]
    fn worker_own_shard_answered_in_place() {
        let (_dir, [mut w0, _w1]) = pair();
        let mut frame = solicit_frame(&duid_of_shard(0));
        let len = frame.len();
        frame.resize(2048, 0);
        let Action::Reply(n) = w0.handle(&mut frame, len) else {
            panic!("no reply");
        };
        assert_advertise_to_client(&frame[..n]);
        assert_eq!(w0.stats.out.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn worker_other_shard_handed_off_answered_and_sent_by_origin() {
        let (_dir, [mut w0, mut w1]) = pair();
        let mut frame = solicit_frame(&duid_of_shard(1));
        let len = frame.len();
        frame.resize(2048, 0);
        assert_eq!(w0.handle(&mut frame, len), Action::HandedOff);
        assert_eq!(w0.stats.out.load(Ordering::Relaxed), 1);
        // The owner answers the parcel and sends it back; it transmits nothing itself.
        let mut sent_by_owner = 0;
        let done = w1.poll_outbound(Instant::now(), &mut |_| {
            sent_by_owner += 1;
            true
        });
        assert_eq!((done, sent_by_owner), (1, 0));
        assert_eq!(w1.stats.served.load(Ordering::Relaxed), 1);
        // The origin transmits the reply frame.
        let mut sent = Vec::new();
        assert_eq!(
            w0.poll_outbound(Instant::now(), &mut |f| {
                sent.push(f.to_vec());
                true
            }),
            1
        );
        assert_eq!(sent.len(), 1);
        assert_advertise_to_client(&sent[0]);
        assert_eq!(w0.stats.back.load(Ordering::Relaxed), 1);
        // Every parcel is back in the pool.
        assert_eq!(w0.exchange.pool.len(), 2 * PARCELS_PER_WORKER);
        drop(w0);
        drop(w1);
    }

    #[test]
    fn worker_drop_closes_stores_and_leaves_counters() {
        let (_dir, [mut w0, w1]) = pair();
        let mut frame = solicit_frame(&duid_of_shard(0));
        let len = frame.len();
        frame.resize(2048, 0);
        assert!(matches!(w0.handle(&mut frame, len), Action::Reply(_)));
        let result = Arc::clone(&w0.result);
        drop(w0);
        drop(w1);
        let fin = result.lock().unwrap();
        assert_eq!(fin.counters.replies(MessageType::ADVERTISE), 1);
        assert!(!fin.close_failed);
    }

    #[test]
    fn worker_housekeeping_publishes_engine_counters() {
        let (_dir, [mut w0, _w1]) = pair();
        let mut frame = solicit_frame(&duid_of_shard(0));
        let len = frame.len();
        frame.resize(2048, 0);
        assert!(matches!(w0.handle(&mut frame, len), Action::Reply(_)));
        assert_eq!(
            w0.published
                .lock()
                .unwrap()
                .counters
                .replies(MessageType::ADVERTISE),
            0,
            "nothing published before housekeeping"
        );
        w0.last_housekeeping = Instant::now() - HOUSEKEEPING_EVERY;
        w0.housekeeping();
        let published = w0.published.lock().unwrap();
        assert_eq!(published.counters.replies(MessageType::ADVERTISE), 1);
        assert_eq!(published.counters.received(MessageType::SOLICIT), 1);
        assert_eq!(published.bindings, 0, "an Advertise commits nothing");
    }

    /// What the worker that owns `frame`'s shard made of it: `Some(reply)` or `None` (dropped),
    /// sending it from `origin` (w0) and, for a hand-off, serving the parcel on `owner` (w1).
    fn exchange(w: &mut [ShardWorker; 2], frame: &[u8]) -> Option<Vec<u8>> {
        let [w0, w1] = w;
        let mut buf = frame.to_vec();
        buf.resize(2048, 0);
        match w0.handle(&mut buf, frame.len()) {
            Action::Reply(n) => Some(buf[..n].to_vec()),
            Action::HandedOff => {
                w1.poll_outbound(Instant::now(), &mut |_| true);
                let mut sent = None;
                w0.poll_outbound(Instant::now(), &mut |f| {
                    sent = Some(f.to_vec());
                    true
                });
                sent
            }
            _ => None,
        }
    }

    /// RFC 8156 §8 via `docs/failover.md` D16 and D22: the policy the main thread stores in the
    /// one cell every worker shares reaches each worker's engines before its next frame, for
    /// frames of its own shards and for parcels handed over by another worker alike.
    #[test]
    fn worker_engines_follow_the_shared_policy_cell_for_own_frames_and_parcels() {
        use tandem_failover::{Role, StateName, machine};
        use tandem_lease::ServingPolicy;
        use tandem_proto::DropReason;

        let (_dir, mut w) = pair();
        let cell = Arc::new(PolicyCell::new(machine::serving_policy(
            Role::Secondary,
            StateName::Startup,
            30,
        )));
        for worker in &mut w {
            worker.policy = Arc::clone(&cell);
        }
        let own = solicit_frame(&duid_of_shard(0));
        let other = solicit_frame(&duid_of_shard(1));
        let drops = |w: &[ShardWorker; 2], r: DropReason| -> u64 {
            w.iter()
                .map(|x| Published::of(&x.owned).counters.drops(r))
                .sum()
        };
        // STARTUP (§8.3.1): unresponsive.
        assert_eq!(exchange(&mut w, &own), None);
        assert_eq!(exchange(&mut w, &other), None);
        assert_eq!(drops(&w, DropReason::Unresponsive), 2);
        // NORMAL, secondary (§8.8.1): renew responsive, so a Solicit is not answered.
        cell.store(machine::serving_policy(
            Role::Secondary,
            StateName::Normal,
            30,
        ));
        assert_eq!(exchange(&mut w, &own), None);
        assert_eq!(exchange(&mut w, &other), None);
        assert_eq!(drops(&w, DropReason::RenewResponsiveOnly), 2);
        // PARTNER-DOWN (§8.4.1): responsive; both are answered.
        let partner_down = machine::serving_policy(Role::Secondary, StateName::PartnerDown, 30);
        assert_eq!(partner_down.mclt, None, "no MCLT cap in PARTNER-DOWN");
        cell.store(partner_down);
        assert_advertise_to_client(&exchange(&mut w, &own).expect("own shard answered"));
        assert_advertise_to_client(&exchange(&mut w, &other).expect("parcel answered"));
        // Back to unresponsive (a graceful shutdown, D7): nothing is answered any more.
        cell.store(ServingPolicy::UNRESPONSIVE);
        assert_eq!(exchange(&mut w, &own), None);
        assert_eq!(exchange(&mut w, &other), None);
        assert_eq!(drops(&w, DropReason::Unresponsive), 4);
    }

    // ---- Binding sync on the XDP datapath (RFC 8156 §7, docs/failover.md D27) ----

    use std::sync::atomic::AtomicBool;
    use std::thread::JoinHandle;

    use tandem_failover::bndupd::{BndupdMessage, decode_bndupd};
    use tandem_lease::sync::{LeaseUpdate, Role as SyncRole};
    use tandem_lease::{BindingFlags, LeaseKind, LeaseStore as _};
    use tandem_proto::PartnerOutcome;

    use crate::failover::sync::LeaseShards as _;
    use crate::server::sync_queues::{BridgeCounters, TURN_LIMIT, WorkerShards};

    /// The server DUID [`pair`]'s engines use.
    const PAIR_DUID: &[u8] = &[0, 3, 0, 1, 9];

    /// A REQUEST frame (RFC 8415 §18.2.2) for one IA_NA from the client with DUID `duid`,
    /// naming the server `server`.
    fn request_frame(duid: &[u8], server: &[u8]) -> Vec<u8> {
        let mut payload = vec![3, 0, 0, 9];
        payload.extend(opt(1, duid));
        payload.extend(opt(2, server));
        payload.extend(opt(3, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
        let mut frame = solicit_frame(duid);
        let rx = Frame::parse(&frame).unwrap();
        let repr = FrameRepr {
            dst_mac: rx.dst_mac(),
            src_mac: EthernetAddress(CLIENT_MAC),
            vlans: Default::default(),
            src_ip: rx.src_ip(),
            dst_ip: rx.dst_ip(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            src_port: 546,
            dst_port: 547,
        };
        frame.resize(512, 0);
        let n = build_udp_frame(&repr, &payload, &mut frame).unwrap();
        frame.truncate(n);
        frame
    }

    /// Serves `frame` on `w` as received from its own RX ring; the reply length.
    fn serve_own(w: &mut ShardWorker, frame: &[u8]) -> usize {
        let mut buf = frame.to_vec();
        buf.resize(2048, 0);
        match w.handle(&mut buf, frame.len()) {
            Action::Reply(n) => n,
            other => panic!("not answered in place: {other:?}"),
        }
    }

    /// What the partner (its own engine, shard `k` of 2) granted the client `duid` in answer
    /// to a REQUEST, as the lease of its BNDUPD (RFC 8156 §7.4) decodes here.
    fn partner_lease(k: u32, duid: &[u8]) -> LeaseUpdate {
        let dir = TempDir::new();
        let config = Config::from_str(CONFIG, "t.toml").unwrap();
        let partner_duid = [0, 3, 0, 1, 7];
        let options = StoreOptions {
            capacity: 64,
            flush_interval: Duration::from_secs(1),
        };
        let mut shard = Shard::open(&dir.0, &config, &partner_duid, k, 2, options).unwrap();
        let mut payload = vec![3, 0, 0, 9];
        payload.extend(opt(1, duid));
        payload.extend(opt(2, &partner_duid));
        payload.extend(opt(3, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
        let rx = RxMeta {
            interface: "eth0",
            src: "fe80::2".parse().unwrap(),
            dst: "ff02::1:2".parse().unwrap(),
        };
        let now = FailoverTime::from_unix(unix_now());
        let mut out = vec![0u8; SCRATCH_LEN];
        let (engine, mut store) = shard.engine_and_store();
        let mut rng = XorShift64Star::new(3);
        let o = engine.handle(now, &rx, &payload, &mut store, &mut rng, &mut out);
        assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
        let b = engine.changes().first().expect("a lease committed").binding;
        let mut buf = vec![0u8; 2048];
        let n = BndupdMessage::new(&b, now)
            .unwrap()
            .emit(1, &mut buf)
            .unwrap();
        let upd = decode_bndupd(&buf[..n]).unwrap();
        upd.leases().next().unwrap().unwrap()
    }

    /// Runs each worker's loop body on a thread of its own (sleeping on its inbox eventfd when
    /// idle, as the datapath's loop does) until `stop`; the workers come back on join.
    fn run_workers(w: [ShardWorker; 2], stop: &Arc<AtomicBool>) -> Vec<JoinHandle<ShardWorker>> {
        w.into_iter()
            .map(|mut w| {
                let stop = Arc::clone(stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if w.poll_outbound(Instant::now(), &mut |_| true) == 0 && w.ready_to_sleep()
                        {
                            let inbox = &w.exchange.inboxes[w.index];
                            let _ = inbox.wake.wait(Duration::from_millis(20));
                            w.woke();
                        }
                    }
                    w
                })
            })
            .collect()
    }

    /// The main thread's side of `w`'s shards, with the datapath's time limits.
    fn bridge(w: &[ShardWorker; 2], sync: &Arc<SyncQueues>) -> WorkerShards {
        let config = Config::from_str(CONFIG, "t.toml").unwrap();
        WorkerShards::new(
            Arc::clone(sync),
            Arc::clone(&w[0].exchange),
            2,
            2,
            tandem_proto::Engine::new(config, PAIR_DUID.to_vec()).with_partition(0, 2),
        )
    }

    /// RFC 8156 §7.5 on worker-owned shards: each of the partner's leases is stored by the
    /// worker that owns its client's shard (D26), never by the main thread; the stores are
    /// msynced through the workers before the BNDREPLY (§7.5.2), and a scan (§8.5.2's UPDREQ
    /// answer) reads them back through the owner.
    #[test]
    fn worker_partner_updates_routed_to_the_owning_worker_and_stored() {
        let sync = Arc::new(SyncQueues::new(2).unwrap());
        let (_dir, w) = pair_with(Some(Arc::clone(&sync)));
        // Generous limits: this test is about routing, not time (debug build, shared CPUs).
        let mut ws = bridge(&w, &sync);
        ws.set_limits(Duration::from_secs(10), Duration::from_secs(10));
        let (d0, d1) = (duid_of_shard(0), duid_of_shard(1));
        let (l0, l1) = (partner_lease(0, &d0), partner_lease(1, &d1));
        assert_eq!(ws.shard_of_lease(l1.kind, l1.addr, l1.prefix_len), Some(1));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = run_workers(w, &stop);

        let now = FailoverTime::from_unix(unix_now());
        ws.begin_turn();
        let one = ws.partner_update(1, now, SyncRole::Secondary, &l1, &mut |_| {
            panic!("nothing goes back for an accepted lease")
        });
        assert_eq!(one, PartnerOutcome::Accepted);
        // A batch over both workers: one request each, the outcomes in batch order.
        ws.begin_turn();
        let mut outcomes = Vec::new();
        ws.partner_updates(
            now,
            SyncRole::Secondary,
            &[(0, l0), (1, l1)],
            &mut outcomes,
            &mut |_, _| {},
        );
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0], PartnerOutcome::Accepted);
        assert_ne!(outcomes[1], PartnerOutcome::StoreError, "{outcomes:?}");
        ws.begin_turn();
        ws.make_durable().unwrap();
        ws.begin_turn();
        assert!(ws.ready());
        let mut seen = Vec::new();
        let next = ws.scan(1, 0, 512, &mut |b| seen.push(b.addr));
        assert_eq!((next, seen), (None, vec![l1.addr]));
        let c = ws.counters();
        assert_eq!((c.timeouts, c.late_answers), (0, 0), "{c:?}");
        assert_eq!(c.requests, 1 + 2 + 2 + 1);

        stop.store(true, Ordering::Relaxed);
        let back: Vec<ShardWorker> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let (w0, w1) = (&back[0], &back[1]);
        let s0 = w0.owned[0].as_ref().unwrap();
        let s1 = w1.owned[1].as_ref().unwrap();
        let got = s1
            .store
            .get(LeaseKind::Address, l1.addr)
            .expect("stored by worker 1");
        assert_eq!(got.duid.as_bytes(), &d1[..]);
        assert!(s0.store.get(LeaseKind::Address, l1.addr).is_none());
        let got = s0
            .store
            .get(LeaseKind::Address, l0.addr)
            .expect("stored by worker 0");
        assert_eq!(got.duid.as_bytes(), &d0[..]);
    }

    /// RFC 8156 §4.3 lazy update: a committed lease reaches the main thread through the
    /// worker's ring only after the batch whose Reply carried it (at the next loop turn), and
    /// the main thread is woken once, not per change.
    #[test]
    fn worker_change_pushed_after_the_reply_and_drained_by_the_main_thread() {
        let sync = Arc::new(SyncQueues::new(2).unwrap());
        let (_dir, [mut w0, _w1]) = pair_with(Some(Arc::clone(&sync)));
        let duid = duid_of_shard(0);
        serve_own(&mut w0, &request_frame(&duid, PAIR_DUID));
        let mut got = Vec::new();
        assert_eq!(
            sync.take_changes(&mut |k, b, t| got.push((k, *b, t))),
            (0, 0)
        );
        assert_eq!(w0.staged.len(), 1, "staged while the batch is served");
        // The loop turn after the batch: its clock read (after the Replies went out) is the
        // change's stamp, carried through the ring (D50), not the time the main thread takes
        // it.
        let turn = Instant::now();
        w0.poll_outbound(turn, &mut |_| true);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            sync.take_changes(&mut |k, b, t| got.push((k, *b, t))),
            (1, 0)
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(got[0].1.duid.as_bytes(), &duid[..]);
        assert!(got[0].1.flags.contains(BindingFlags::UPDATE_PENDING));
        assert_eq!(got[0].2, turn, "stamped by the worker's loop turn");
        // One wake-up until the main thread re-arms, however many changes follow.
        serve_own(&mut w0, &request_frame(&duid_of_shard_n(0, 1), PAIR_DUID));
        w0.poll_outbound(Instant::now(), &mut |_| true);
        assert_eq!(sync.take_changes(&mut |_, _, _| {}), (1, 0));
        assert_eq!(sync.clear_wake(), 1, "woken once for two pushes");
        sync.rearm();
        serve_own(&mut w0, &request_frame(&duid_of_shard_n(0, 2), PAIR_DUID));
        w0.poll_outbound(Instant::now(), &mut |_| true);
        assert_eq!(sync.take_changes(&mut |_, _, _| {}), (1, 0));
        assert_eq!(sync.clear_wake(), 1, "woken again after the re-arm");
    }

    /// A full ring never loses an update: the change is dropped and counted, and its binding
    /// keeps "partner needs update" in the store for the next scan (RFC 8156 §7.2, §8.8).
    #[test]
    fn worker_full_change_ring_counts_overflow_and_keeps_the_binding_flagged() {
        let sync = Arc::new(SyncQueues::with_ring(2, 1).unwrap());
        let (_dir, [mut w0, _w1]) = pair_with(Some(Arc::clone(&sync)));
        serve_own(&mut w0, &request_frame(&duid_of_shard(0), PAIR_DUID));
        serve_own(&mut w0, &request_frame(&duid_of_shard_n(0, 1), PAIR_DUID));
        w0.poll_outbound(Instant::now(), &mut |_| true);
        let mut got = Vec::new();
        assert_eq!(sync.take_changes(&mut |_, b, _| got.push(*b)), (1, 1));
        let mut flagged = 0;
        let store = &w0.owned[0].as_ref().unwrap().store;
        store.scan(0, 64, &mut |b| {
            if b.flags.contains(BindingFlags::UPDATE_PENDING) {
                flagged += 1;
            }
        });
        assert_eq!(flagged, 2, "the dropped change is still flagged for a scan");
        // Counted once: the main thread took it.
        assert_eq!(sync.take_changes(&mut |_, _, _| {}), (0, 0));
    }

    /// A worker that does not answer within the turn fails the request instead of blocking
    /// the main thread: the partner's lease is refused (UnspecFail; the partner resends), the
    /// turn stops starting scans, and the late answer is recognised and dropped later.
    #[test]
    fn worker_that_does_not_answer_in_time_fails_the_request_and_late_answer_is_dropped() {
        let sync = Arc::new(SyncQueues::new(2).unwrap());
        let (_dir, w) = pair_with(Some(Arc::clone(&sync)));
        let mut ws = bridge(&w, &sync);
        let l1 = partner_lease(1, &duid_of_shard(1));
        let now = FailoverTime::from_unix(unix_now());
        ws.begin_turn();
        let start = Instant::now();
        let o = ws.partner_update(1, now, SyncRole::Secondary, &l1, &mut |_| {});
        let took = start.elapsed();
        assert_eq!(o, PartnerOutcome::StoreError);
        assert!(took >= TURN_LIMIT && took < TURN_LIMIT * 40, "{took:?}");
        assert!(!ws.ready(), "a stalled turn starts no scan chunk");
        assert_eq!(
            ws.counters(),
            BridgeCounters {
                requests: 1,
                timeouts: 1,
                late_answers: 0
            }
        );
        // The request waits in worker 1's queue: it does not go to sleep on it.
        let [mut w0, mut w1] = w;
        assert!(w0.ready_to_sleep());
        w0.woke();
        assert!(!w1.ready_to_sleep());
        // The worker runs the request later; its answer is stale by then.
        let stop = Arc::new(AtomicBool::new(false));
        let threads = run_workers([w0, w1], &stop);
        ws.set_limits(Duration::from_secs(10), Duration::from_secs(10));
        ws.begin_turn();
        let mut seen = 0;
        assert_eq!(ws.scan(1, 0, 512, &mut |_| seen += 1), None);
        assert_eq!(seen, 1, "the late request was applied by the owner");
        assert_eq!(ws.counters().late_answers, 1);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }
}
