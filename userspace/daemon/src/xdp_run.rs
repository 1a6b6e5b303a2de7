//! `tandem run` on the XDP/AF_XDP datapath (`[datapath] mode = "xdp"` or `--datapath xdp`).
//!
//! * The XDP program (`tandem_datapath::xdp`) is loaded and attached once per configured
//!   interface (its XSKMAP is indexed by RX queue, so each interface gets its own copy), in the
//!   configured attach mode (`auto`: native, else generic with a warning).
//! * One worker thread per RX queue of each interface (`tandem_datapath::worker`), pinned per
//!   `[datapath] cores` / `--cores`, owning its AF_XDP socket and UMEM.
//! * The lease database has S shards ([`crate::shard`]; default S = the number of workers).
//!   Shard k, its engine and its store live on worker k mod W. A worker parses each frame,
//!   finds the shard of its client ([`tandem_proto::shard_of`]) and, if it owns the shard, runs
//!   the engine and writes the reply in place (same UMEM frame, headers from
//!   [`FrameRepr::reply_to`]). Otherwise it copies the frame into a parcel (a 2 KiB buffer from
//!   a pool allocated at startup) and pushes it to the owner's inbox (a bounded lock-free
//!   queue); the owner answers into the same parcel and sends it back to the origin's inbox,
//!   and the origin transmits it on its own TX ring, from the UMEM frame the request came in
//!   (so the reply leaves on the interface and queue the request arrived on). Nothing is
//!   allocated per packet. A sleeping worker is woken through an eventfd only when it sleeps.
//! * Housekeeping runs on each worker for the shards it owns: incremental expiry and msync,
//!   every [`HOUSEKEEPING_EVERY`].
//! * The control socket (`<state-dir>/tandem.sock`, [`crate::control`]) is served from the
//!   main thread every [`MAIN_TICK`]: `status` shows the workers, the XDP program's counters
//!   summed over the interfaces and the engine counters of every shard, as each worker last
//!   published them during its housekeeping (so at most [`HOUSEKEEPING_EVERY`] old); `tune
//!   cores` re-pins the workers.
//! * SIGINT/SIGTERM: the workers stop, each closes its stores; then `COUNTERS …` (the engine
//!   counters of every shard added up, the XDP program's `xdp_*` counters summed over the
//!   interfaces, the hand-off totals) and one `WORKER …` line per worker are printed.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use crossbeam_queue::ArrayQueue;
use tandem_config::XdpMode;
use tandem_datapath::iface;
use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::sys::eventfd::EventFd;
use tandem_datapath::worker::{self, Action, Handler, WorkerConfig, WorkerHandle};
use tandem_datapath::xdp::{AttachMode, AttachedMode, LogLevel, XdpProgram};
use tandem_lease::FailoverTime;
use tandem_proto::{Counters, Outcome, RxMeta, shard_of};
use tandem_wire::frame::ethernet::EthernetAddress;
use tandem_wire::frame::{Frame, FrameRepr};

use crate::cli::{SignalSet, emit_line, resolve_cores, resolve_queues, unix_now, worker_error};
use crate::control::{self, ControlServer, ControlTarget, StatusReport, WorkerView};
use crate::counters::{engine_counters, engine_fields, xdp_counters};
use crate::entropy::XorShift64Star;
use crate::run::{RECLAIM_BUDGET, Setup};
use crate::shard::{Shard, resolve_shards};
use crate::tune;

/// Size of a parcel: a whole request or reply frame handed between workers.
pub const PARCEL_LEN: usize = 2048;
/// Parcels allocated per worker at startup (the pool is shared).
const PARCELS_PER_WORKER: usize = 1024;
/// Most inbox parcels a worker takes per loop iteration.
const INBOX_BATCH: usize = 64;
/// How often a worker expires leases and msyncs the stores of its shards.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(200);
/// How often the main thread relays the XDP program's log and checks on the workers.
const MAIN_TICK: Duration = Duration::from_millis(50);
/// The engine's output buffer (a reply that does not fit is dropped and counted).
const SCRATCH_LEN: usize = 4096;
/// UDP port of DHCPv6 servers and relay agents (RFC 8415 §7.2).
const SERVER_PORT: u16 = 547;

/// An interface the workers serve.
#[derive(Debug)]
struct Iface {
    name: String,
    mac: EthernetAddress,
    /// Source address of replies to multicast requests.
    server_addr: Ipv6Addr,
}

/// Whether a parcel holds a request for the owner or a reply for the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParcelKind {
    Request,
    Reply,
}

/// A frame handed between workers.
#[derive(Debug)]
struct Parcel {
    kind: ParcelKind,
    /// The worker the request arrived on (which transmits the reply).
    origin: usize,
    /// The interface (index in the interface table) it arrived on.
    iface: usize,
    len: usize,
    buf: [u8; PARCEL_LEN],
}

/// One worker's inbox.
#[derive(Debug)]
struct Inbox {
    queue: ArrayQueue<Box<Parcel>>,
    /// Set while the worker may block in `poll()`: a producer then notifies `wake`.
    sleeping: AtomicBool,
    wake: EventFd,
}

impl Inbox {
    fn new(capacity: usize) -> io::Result<Self> {
        Ok(Self {
            queue: ArrayQueue::new(capacity),
            sleeping: AtomicBool::new(false),
            wake: EventFd::new()?,
        })
    }

    /// Queues `parcel` and wakes the worker if it sleeps; gives the parcel back when full.
    fn push(&self, parcel: Box<Parcel>) -> Result<(), Box<Parcel>> {
        self.queue.push(parcel)?;
        // Pairs with the fence in `ready_to_sleep`: either the sleeper sees the parcel, or we
        // see it sleeping.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake.notify();
        }
        Ok(())
    }

    /// Resets the eventfd counter.
    fn drain_wake(&self) {
        self.wake.drain();
    }
}

/// What the workers share: the parcel pool and every inbox.
#[derive(Debug)]
struct Exchange {
    pool: ArrayQueue<Box<Parcel>>,
    inboxes: Vec<Inbox>,
}

impl Exchange {
    fn new(workers: usize) -> io::Result<Self> {
        let total = workers.saturating_mul(PARCELS_PER_WORKER).max(1);
        let pool = ArrayQueue::new(total);
        for _ in 0..total {
            let _ = pool.push(Box::new(Parcel {
                kind: ParcelKind::Request,
                origin: 0,
                iface: 0,
                len: 0,
                buf: [0; PARCEL_LEN],
            }));
        }
        let inboxes = (0..workers)
            .map(|_| Inbox::new(total))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { pool, inboxes })
    }
}

/// Hand-off counters of one worker.
#[derive(Debug, Default)]
struct HandoffStats {
    /// Requests this worker passed to the owner of their shard.
    out: AtomicU64,
    /// Requests from other workers this worker answered.
    served: AtomicU64,
    /// Replies from other workers this worker transmitted.
    back: AtomicU64,
    /// Hand-offs that failed (no free parcel, full inbox, no spare frame).
    lost: AtomicU64,
}

/// What a worker leaves behind when it stops.
#[derive(Debug, Default)]
struct Final {
    counters: Counters,
    close_failed: bool,
}

/// What a worker last published about its shards, for `status` (see [`ShardWorker::publish`]).
#[derive(Debug, Default)]
struct Published {
    /// The engine counters of the owned shards, added up.
    counters: Counters,
    /// Bindings stored in the owned shards.
    bindings: usize,
}

impl Published {
    /// The snapshot of `owned` (indexed by shard, `Some` for the owned ones).
    fn of(owned: &[Option<Shard>]) -> Self {
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
struct ShardWorker {
    index: usize,
    workers: usize,
    shards: u32,
    iface: usize,
    ifaces: Arc<[Iface]>,
    /// Indexed by shard; `Some` for the shards this worker owns.
    owned: Vec<Option<Shard>>,
    exchange: Arc<Exchange>,
    rng: XorShift64Star,
    scratch: Box<[u8]>,
    last_housekeeping: Instant,
    stats: Arc<HandoffStats>,
    result: Arc<Mutex<Final>>,
    /// Refreshed by every housekeeping pass, read by the control socket.
    published: Arc<Mutex<Published>>,
}

/// `true` for a frame to answer: to port 547, from a unicast source (RFC 4291 §2.7).
fn answerable(rx: &Frame<'_>) -> bool {
    rx.dst_port() == SERVER_PORT && !rx.src_ip().is_multicast() && !rx.src_ip().is_unspecified()
}

/// Runs `shard`'s engine on the request `rx` received on `iface`; the reply payload is in
/// `scratch`: `(headers, payload length)`, `None` for no reply.
fn engine_reply(
    shard: &mut Shard,
    iface: &Iface,
    rng: &mut XorShift64Star,
    scratch: &mut [u8],
    rx: &Frame<'_>,
) -> Option<(FrameRepr, usize)> {
    let meta = RxMeta {
        interface: &iface.name,
        src: rx.src_ip(),
        dst: rx.dst_ip(),
    };
    let now = FailoverTime::from_unix(unix_now());
    match shard.handle(now, &meta, rx.payload(), rng, scratch) {
        Outcome::Reply { len } => {
            Some((FrameRepr::reply_to(rx, iface.mac, iface.server_addr), len))
        }
        Outcome::Drop(reason) => {
            tracing::debug!(
                "dropped a datagram from {} on {}: {}",
                rx.src_ip(),
                iface.name,
                reason.name()
            );
            None
        }
    }
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

    /// Answers the request frame `buf[..len]` (a parcel from another worker) that arrived on
    /// `iface`, in place; the reply frame's length. `None` if its shard is not ours.
    fn answer_in_place(&mut self, iface: usize, buf: &mut [u8], len: usize) -> Option<usize> {
        let (headers, n) = {
            let rx = Frame::parse_completing_partial(buf.get_mut(..len)?).ok()?;
            if !answerable(&rx) {
                return None;
            }
            let k = shard_of(rx.payload(), self.shards).unwrap_or(0);
            let k = usize::try_from(k).ok()?;
            let shard = self.owned.get_mut(k)?.as_mut()?;
            let info = self.ifaces.get(iface)?;
            engine_reply(shard, info, &mut self.rng, &mut self.scratch, &rx)?
        };
        write_reply(buf, &headers, self.scratch.get(..n)?)
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
            shard.flush_if_due(self.last_housekeeping);
        }
        self.publish();
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
    fn handle(&mut self, frame: &mut [u8], len: usize) -> Option<usize> {
        match self.handle_frame(frame, len) {
            Action::Reply(n) => Some(n),
            Action::Drop | Action::HandedOff => None,
        }
    }

    fn handle_frame(&mut self, frame: &mut [u8], len: usize) -> Action {
        /// What to do once the frame is parsed (the parse borrows the frame).
        enum Next {
            Reply(FrameRepr, usize),
            HandOff(usize),
            Drop,
        }
        let next = {
            // Local senders over veth leave the UDP checksum to the device (CHECKSUM_PARTIAL):
            // completed here, in the frame, so a parcel copy parses as is.
            let Some(bytes) = frame.get_mut(..len) else {
                return Action::Drop;
            };
            let Ok(rx) = Frame::parse_completing_partial(bytes) else {
                return Action::Drop;
            };
            if !answerable(&rx) {
                return Action::Drop;
            }
            let k = shard_of(rx.payload(), self.shards).unwrap_or(0);
            let owner = self.owner(k);
            if owner == self.index {
                let shard = usize::try_from(k)
                    .ok()
                    .and_then(|k| self.owned.get_mut(k))
                    .and_then(Option::as_mut);
                match (shard, self.ifaces.get(self.iface)) {
                    (Some(shard), Some(info)) => {
                        match engine_reply(shard, info, &mut self.rng, &mut self.scratch, &rx) {
                            Some((headers, n)) => Next::Reply(headers, n),
                            None => Next::Drop,
                        }
                    }
                    _ => Next::Drop,
                }
            } else {
                Next::HandOff(owner)
            }
        };
        match next {
            Next::Reply(headers, n) => {
                let payload = self.scratch.get(..n).unwrap_or_default();
                match write_reply(frame, &headers, payload) {
                    Some(total) => Action::Reply(total),
                    None => Action::Drop,
                }
            }
            Next::HandOff(owner) => {
                if self.hand_off(owner, frame.get(..len).unwrap_or_default()) {
                    self.stats.out.fetch_add(1, Ordering::Relaxed);
                    Action::HandedOff
                } else {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    Action::Drop
                }
            }
            Next::Drop => Action::Drop,
        }
    }

    fn poll_outbound(&mut self, send: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        // Called on every loop iteration: only short borrows of the shared exchange, no
        // reference-count traffic on its cache line.
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
                    let len = parcel.len;
                    let reply = self.answer_in_place(parcel.iface, &mut parcel.buf, len);
                    match (reply, self.exchange.inboxes.get(parcel.origin)) {
                        (Some(n), Some(back)) => {
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
        self.housekeeping();
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
        if inbox.queue.is_empty() {
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

/// A worker as the main thread sees it.
#[derive(Debug)]
struct Running {
    handle: WorkerHandle,
    iface: String,
    shards: Vec<u32>,
    handoff: Arc<HandoffStats>,
    published: Arc<Mutex<Published>>,
}

/// The XDP program's counters of every interface, added up, named `xdp_<name>`
/// ([`xdp_counters`]).
fn summed_xdp_counters(programs: &[XdpProgram]) -> anyhow::Result<Vec<(String, u64)>> {
    let mut sum: Vec<(String, u64)> = Vec::new();
    for p in programs {
        for (i, (name, v)) in xdp_counters(&p.counters()?).into_iter().enumerate() {
            match sum.get_mut(i) {
                Some(slot) => slot.1 = slot.1.wrapping_add(v),
                None => sum.push((name, v)),
            }
        }
    }
    Ok(sum)
}

/// [`ControlTarget`] of the XDP datapath, built from the run loop's state on every tick.
struct XdpTarget<'a> {
    interfaces: &'a [String],
    attach: &'a str,
    shards: u32,
    /// Store capacity of one shard.
    capacity: u64,
    running: &'a [Running],
    programs: &'a [XdpProgram],
}

impl ControlTarget for XdpTarget<'_> {
    fn status(&self) -> StatusReport {
        let mut engine = Counters::default();
        let mut bindings = 0usize;
        for r in self.running {
            if let Ok(p) = r.published.lock() {
                engine.merge(&p.counters);
                bindings = bindings.saturating_add(p.bindings);
            }
        }
        let xdp = summed_xdp_counters(self.programs).unwrap_or_else(|e| {
            tracing::warn!("status: reading the XDP counters: {e:#}");
            Vec::new()
        });
        StatusReport {
            datapath: "xdp".to_owned(),
            attach_mode: Some(self.attach.to_owned()),
            interfaces: self.interfaces.to_vec(),
            shards: usize::try_from(self.shards).unwrap_or(usize::MAX),
            bindings,
            capacity: self.capacity.saturating_mul(u64::from(self.shards)),
            workers: self.workers(),
            xdp,
            engine: engine_counters(&engine),
            socket: Vec::new(),
        }
    }

    fn workers(&self) -> Vec<WorkerView> {
        self.running
            .iter()
            .map(|r| WorkerView::of_handle(&r.iface, &r.handle))
            .collect()
    }

    fn set_cores(&mut self, cores: &[usize]) -> Result<Vec<(u32, usize)>, String> {
        let placed = control::pin_workers(self.running.iter().map(|r| &r.handle), cores)?;
        tracing::info!(
            "tune cores: workers moving to cores {}",
            tune::compress_list(cores)
        );
        Ok(placed)
    }
}

const fn attach_mode(mode: XdpMode) -> AttachMode {
    match mode {
        XdpMode::Auto => AttachMode::Auto,
        XdpMode::Native => AttachMode::Native,
        XdpMode::Generic => AttachMode::Generic,
    }
}

/// Runs the XDP datapath (see the module docs).
///
/// # Errors
/// Setup errors (interfaces, XDP attach, AF_XDP sockets, stores) with what to do about them.
pub(crate) fn run(setup: Setup, signals: &SignalSet) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        state_dir,
        duid,
        store,
    } = setup;
    let dp = config.datapath.clone();
    if config.interfaces.is_empty() {
        bail!("xdp datapath: the configuration declares no [[interface]] to attach to");
    }
    // Interfaces and their queues: worker w serves `slots[w]`.
    let mut ifaces = Vec::new();
    let mut slots: Vec<(usize, u32)> = Vec::new();
    for (i, name) in config.interfaces.iter().enumerate() {
        let mac = iface::interface_mac(name)?;
        let server_addr = iface::server_addr(name)?;
        let wanted = (dp.queues > 0).then_some(dp.queues);
        let queues = resolve_queues(name, wanted, "[datapath] queues")?;
        slots.extend((0..queues).map(|q| (i, q)));
        ifaces.push(Iface {
            name: name.clone(),
            mac: EthernetAddress(mac),
            server_addr,
        });
    }
    let ifaces: Arc<[Iface]> = ifaces.into();
    let workers = slots.len();
    let worker_count = u32::try_from(workers).context("too many XDP workers")?;
    if let Some(list) = dp.cores.as_deref() {
        tune::check_cores(list, &allowed_cores())
            .map_err(|e| anyhow::anyhow!("--cores / [datapath] cores: {e}"))?;
    }
    let cores = resolve_cores(dp.cores.as_deref(), "cores")?;
    let shards = resolve_shards(&state_dir, dp.shards, Some(worker_count))?;

    // Every shard's store, handed to the worker that owns it (k mod W).
    let mut owned: Vec<Vec<Option<Shard>>> = (0..workers)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect();
    for k in 0..shards {
        let shard = Shard::open(&state_dir, &config, &duid, k, shards, store)?;
        let w = usize::try_from(k).unwrap_or(0) % workers;
        if let (Some(list), Ok(k)) = (owned.get_mut(w), usize::try_from(k))
            && let Some(slot) = list.get_mut(k)
        {
            *slot = Some(shard);
        }
    }

    // The stores are locked: no other server uses this state directory.
    let mut control = ControlServer::bind(&state_dir).context("opening the control socket")?;

    let mut programs = Vec::new();
    let mut modes: Vec<AttachedMode> = Vec::new();
    for iface in ifaces.iter() {
        let mut program = XdpProgram::load(LogLevel::Info)?;
        let mode = program.attach(&iface.name, attach_mode(dp.xdp_mode))?;
        tracing::info!(
            "XDP program attached to {} in {mode} mode; server address {}",
            iface.name,
            iface.server_addr
        );
        modes.push(mode);
        programs.push(program);
    }

    let exchange = Arc::new(Exchange::new(workers).context("creating the worker inboxes")?);
    let result = Arc::new(Mutex::new(Final::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut running: Vec<Running> = Vec::new();
    let mut rng = XorShift64Star::from_os().context("seeding the random generator")?;
    let mut started = Ok(());
    for (w, ((iface_idx, queue), shard_slots)) in slots.iter().zip(owned).enumerate() {
        let Some(iface) = ifaces.get(*iface_idx) else {
            continue;
        };
        let owned_list: Vec<u32> = shard_slots
            .iter()
            .filter_map(|s| s.as_ref().map(|s| s.index))
            .collect();
        let stats = Arc::new(HandoffStats::default());
        let published = Arc::new(Mutex::new(Published::of(&shard_slots)));
        let handler = ShardWorker {
            index: w,
            workers,
            shards,
            iface: *iface_idx,
            ifaces: Arc::clone(&ifaces),
            owned: shard_slots,
            exchange: Arc::clone(&exchange),
            rng: XorShift64Star::new(tandem_proto::Entropy::next_u64(&mut rng)),
            scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
            last_housekeeping: Instant::now(),
            stats: Arc::clone(&stats),
            result: Arc::clone(&result),
            published: Arc::clone(&published),
        };
        let core = cores.get(w % cores.len().max(1)).copied().flatten();
        let mut wc = WorkerConfig::new(iface.name.clone(), *queue);
        wc.core = core;
        wc.busy_poll = dp.busy_poll;
        let handle = match worker::spawn(wc, handler, Arc::clone(&stop)) {
            Ok(h) => h,
            Err(e) => {
                started = Err(worker_error(&e));
                break;
            }
        };
        tracing::info!(
            "{} queue {queue}: AF_XDP socket fd {} ({} mode), worker {w} on core {}, shards {:?}",
            iface.name,
            handle.fd(),
            if handle.zero_copy() {
                "zero-copy"
            } else {
                "copy"
            },
            core.map_or_else(|| "any".to_owned(), |c| c.to_string()),
            owned_list,
        );
        let fd = handle.fd();
        running.push(Running {
            handle,
            iface: iface.name.clone(),
            shards: owned_list,
            handoff: stats,
            published,
        });
        if let Some(program) = programs.get_mut(*iface_idx)
            && let Err(e) = program.register_socket(*queue, fd)
        {
            started = Err(e.into());
            break;
        }
    }
    if let Err(e) = started {
        stop.store(true, Ordering::Relaxed);
        for r in running {
            let _ = r.handle.join();
        }
        return Err(e);
    }
    let attach = if modes.iter().all(|m| Some(m) == modes.first()) {
        modes.first().map_or("none", |m| m.as_str()).to_owned()
    } else {
        modes
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        "serving {} subnets on {} (xdp datapath, {workers} workers); state dir {}, {shards} \
         shard(s) of capacity {}, server DUID {}",
        config.subnets.len(),
        config.interfaces.join(", "),
        state_dir.display(),
        store.capacity,
        crate::run::hex(&duid),
    );
    emit_line(&format!(
        "READY mode=xdp attach={attach} workers={workers} shards={shards}"
    ))?;

    let mut failed = false;
    loop {
        for p in &mut programs {
            p.flush_log();
        }
        control.serve_pending(&mut XdpTarget {
            interfaces: &config.interfaces,
            attach: &attach,
            shards,
            capacity: store.capacity,
            running: &running,
            programs: &programs,
        });
        if let Some(sig) = signals.wait(MAIN_TICK).context("waiting for signals")? {
            tracing::info!("got signal {sig}, stopping");
            break;
        }
        if running.iter().any(|r| r.handle.is_finished()) {
            tracing::error!("a worker stopped unexpectedly, stopping");
            failed = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut lines = Vec::new();
    let (mut out, mut served, mut lost) = (0u64, 0u64, 0u64);
    for r in running {
        let (queue, core, stats) = (
            r.handle.queue(),
            r.handle.current_core(),
            Arc::clone(r.handle.stats()),
        );
        if let Err(e) = r.handle.join() {
            tracing::error!("worker of {} queue {queue}: {e}", r.iface);
            failed = true;
        }
        let s = stats.snapshot();
        let h = &r.handoff;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out += get(&h.out);
        served += get(&h.served);
        lost += get(&h.lost);
        let core = core.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let shard_list = r
            .shards
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        lines.push(format!(
            "WORKER iface={} queue={queue} core={core} rx={} tx={} dropped={} replies={} \
             shards={} handoff_out={} handoff_in={} handoff_back={} handoff_lost={}",
            r.iface,
            s.rx,
            s.tx,
            s.dropped
                .saturating_add(s.tx_full)
                .saturating_add(s.bad_desc)
                .saturating_add(s.outbound_dropped),
            s.replies,
            if shard_list.is_empty() {
                "-"
            } else {
                &shard_list
            },
            get(&h.out),
            get(&h.served),
            get(&h.back),
            get(&h.lost),
        ));
    }
    // Every handler has been dropped with its thread: the stores are closed.
    let fin = match Arc::try_unwrap(result) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => {
            let guard = shared
                .lock()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
            Final {
                counters: guard.counters.clone(),
                close_failed: guard.close_failed,
            }
        }
    };
    failed |= fin.close_failed;
    drop(control);
    for p in &mut programs {
        p.flush_log();
    }
    let xdp = summed_xdp_counters(&programs)?;
    let (messages, events) = engine_fields(&fin.counters);
    let mut line = format!("COUNTERS{messages}{events}");
    for (name, v) in xdp {
        line.push_str(&format!(" {name}={v}"));
    }
    line.push_str(&format!(
        " handoff_out={out} handoff_served={served} handoff_lost={lost}"
    ));
    emit_line(&line)?;
    for l in lines {
        emit_line(&l)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {

    use tandem_config::Config;
    use tandem_store::StoreOptions;
    use tandem_wire::dhcp::{MessageType, Packet};
    use tandem_wire::frame::build_udp_frame;

    use super::*;
    use crate::shard::tests::{CONFIG, TempDir, opt};

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
            }
        };
        let workers = [worker(0), worker(1)];
        (dir, workers)
    }

    /// A DUID whose shard of 2 is `k`.
    fn duid_of_shard(k: u32) -> Vec<u8> {
        (0u8..)
            .map(|n| vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n])
            .find(|d| tandem_proto::duid_hash(d) % 2 == u64::from(k))
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
        let Action::Reply(n) = w0.handle_frame(&mut frame, len) else {
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
        assert_eq!(w0.handle_frame(&mut frame, len), Action::HandedOff);
        assert_eq!(w0.stats.out.load(Ordering::Relaxed), 1);
        // The owner answers the parcel and sends it back; it transmits nothing itself.
        let mut sent_by_owner = 0;
        let done = w1.poll_outbound(&mut |_| {
            sent_by_owner += 1;
            true
        });
        assert_eq!((done, sent_by_owner), (1, 0));
        assert_eq!(w1.stats.served.load(Ordering::Relaxed), 1);
        // The origin transmits the reply frame.
        let mut sent = Vec::new();
        assert_eq!(
            w0.poll_outbound(&mut |f| {
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
        assert!(matches!(w0.handle_frame(&mut frame, len), Action::Reply(_)));
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
        assert!(matches!(w0.handle_frame(&mut frame, len), Action::Reply(_)));
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

    #[test]
    fn inbox_wakes_only_a_sleeping_worker_and_refuses_when_full() {
        let exchange = Exchange::new(1).unwrap();
        let inbox = Inbox::new(1).unwrap();
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        assert_eq!(inbox.wake.drain(), 0, "an awake worker was notified");
        let refused = inbox.push(exchange.pool.pop().unwrap());
        assert!(refused.is_err());
        let _ = inbox.queue.pop().unwrap();
        inbox.sleeping.store(true, Ordering::SeqCst);
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        assert_eq!(inbox.wake.drain(), 1, "a sleeping worker was not notified");
        let _ = inbox.queue.pop().unwrap();
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        inbox.drain_wake();
        assert_eq!(
            inbox.wake.drain(),
            0,
            "drain_wake left the eventfd readable"
        );
    }
}
