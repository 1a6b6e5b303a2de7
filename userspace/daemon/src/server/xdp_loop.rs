//! `tandem run` on the XDP/AF_XDP datapath (`[datapath] mode = "xdp"` or `--datapath xdp`).
//!
//! * The XDP program (`tandem_datapath::xdp`) is loaded and attached once per configured
//!   interface (its XSKMAP is indexed by RX queue, so each interface gets its own copy), in the
//!   configured attach mode (`auto`: native, else generic with a warning).
//! * One worker thread per RX queue of each interface (`tandem_datapath::worker`), pinned per
//!   `[datapath] cores` / `--cores`, owning its AF_XDP socket and UMEM.
//! * The lease database has S shards ([`super::shard`]; default S = the number of workers).
//!   Shard k, its engine and its store live on worker k mod W. A worker parses each frame,
//!   finds the shard of its client ([`tandem_proto::shard_of`]) and, if it owns the shard, runs
//!   the engine and writes the reply in place (same UMEM frame, headers from
//!   [`FrameRepr::reply_to`](tandem_wire::frame::FrameRepr::reply_to)). Otherwise it copies the frame into a parcel (a 2 KiB buffer from
//!   a pool allocated at startup) and pushes it to the owner's inbox (a bounded lock-free
//!   queue); the owner answers into the same parcel and sends it back to the origin's inbox,
//!   and the origin transmits it on its own TX ring, from the UMEM frame the request came in
//!   (so the reply leaves on the interface and queue the request arrived on). Nothing is
//!   allocated per packet. A sleeping worker is woken through an eventfd only when it sleeps.
//! * Housekeeping runs on each worker for the shards it owns: incremental expiry and msync,
//!   every [`HOUSEKEEPING_EVERY`](super::shard::HOUSEKEEPING_EVERY).
//! * The main thread runs the [`EventLoop`]: the stop signals and the control socket
//!   (`<state-dir>/tandem.sock`, [`crate::control`]) are its sources; timers relay the XDP
//!   programs' log records ([`LOG_RELAY_EVERY`]) and check that no worker has stopped
//!   ([`WORKER_HEALTH_EVERY`]). `status` shows the workers, the XDP program's counters summed
//!   over the interfaces and the engine counters of every shard, as each worker last
//!   published them during its housekeeping (so at most
//!   [`HOUSEKEEPING_EVERY`](super::shard::HOUSEKEEPING_EVERY) old); `tune cores` re-pins the
//!   workers.
//! * SIGHUP/SIGINT/SIGTERM: the workers stop, each closes its stores; then `COUNTERS …` (the
//!   engine counters of every shard added up, the XDP program's `xdp_*` counters summed over
//!   the interfaces, the hand-off totals) and one `WORKER …` line per worker are printed.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tandem_config::XdpMode;
use tandem_datapath::iface;
use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::worker::{self, WorkerConfig, WorkerHandle};
use tandem_datapath::xdp::{AttachMode, AttachedMode, LogLevel, XdpProgram};
use tandem_proto::Counters;
use tandem_wire::frame::ethernet::EthernetAddress;

use super::mailbox::{Exchange, HandoffStats};
use super::setup::Setup;
use super::shard::{Shard, resolve_shards};
use super::sync_queues::{BridgeCounters, CHANGES_WINDOW, STAGE_CAP, SyncQueues, WorkerShards};
use super::worker::{Final, Iface, Published, SCRATCH_LEN, ShardWorker};
use crate::control::{self, ControlKey, ControlServer, ControlTarget, StatusReport, WorkerView};
use crate::counters::{engine_counters, engine_fields, xdp_counters};
use crate::entropy::XorShift64Star;
use crate::event_loop::{EventLoop, Interest, StopSignals};
use crate::failover::policy::PolicyCell;
use crate::failover::{FailoverKey, FailoverPlane};
use crate::output::{emit_line, hex};
use crate::placement::{resolve_cores, resolve_queues, worker_error};
use crate::tune;

/// How often the main thread relays the XDP program's log records.
pub const LOG_RELAY_EVERY: Duration = Duration::from_millis(50);
/// How often the main thread checks that no worker has stopped.
pub const WORKER_HEALTH_EVERY: Duration = Duration::from_millis(50);

/// The sources and timers of the main thread's event loop in XDP mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// SIGHUP, SIGINT, SIGTERM.
    Signals,
    /// The control socket.
    Control(ControlKey),
    /// Relay of the XDP programs' log records.
    LogRelay,
    /// The check that every worker thread still runs.
    WorkerHealth,
    /// The failover plane (RFC 8156): listeners, connections, endpoint timers.
    Failover(FailoverKey),
    /// The workers' eventfd: committed changes for the partner wait in their rings.
    Changes,
    /// The next collection of the workers' changes while they keep coming
    /// ([`CHANGES_WINDOW`]).
    ChangesWindow,
    /// Binding sync has work left from a turn that ran out of time (a scan).
    SyncPump,
}

impl From<ControlKey> for Key {
    fn from(k: ControlKey) -> Self {
        Self::Control(k)
    }
}

impl From<FailoverKey> for Key {
    fn from(k: FailoverKey) -> Self {
        Self::Failover(k)
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

/// Hands the changes waiting in the workers' rings to the plane (and what full rings
/// dropped); the number taken.
fn take_changes(q: &SyncQueues, p: &mut FailoverPlane) -> u64 {
    // Each with the worker's stamp: the update latency includes the time in the ring (D50).
    let (taken, dropped) = q.take_changes(&mut |shard, b, sent| p.binding_changed(shard, b, sent));
    p.bindings_overflowed(dropped);
    taken
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
    failover: Option<&'a mut FailoverPlane>,
    /// The requests of binding sync to the workers (with failover).
    bridge: Option<BridgeCounters>,
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
            failover: self.failover.as_deref().map_or_else(Vec::new, |p| {
                let mut views = p.views();
                if let Some(b) = self.bridge {
                    for v in &mut views {
                        v.counters.extend([
                            ("worker_requests".to_owned(), b.requests),
                            ("worker_timeouts".to_owned(), b.timeouts),
                            ("worker_late_answers".to_owned(), b.late_answers),
                        ]);
                    }
                }
                views
            }),
        }
    }

    fn partner_down(&mut self, name: Option<&str>) -> Result<String, String> {
        control::partner_down(self.failover.as_deref_mut(), name)
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
pub(crate) fn run(setup: Setup, signals: &StopSignals) -> anyhow::Result<ExitCode> {
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
    // The failover plane, and the policy its state gives every worker's engines (read by the
    // workers before each frame; STARTUP's unresponsive one before the first).
    let unclean = owned
        .iter()
        .flatten()
        .flatten()
        .any(|s| !s.store.recovery().clean_shutdown);
    let mut plane = FailoverPlane::open(&config, &state_dir, unclean)?;
    let policy = Arc::new(PolicyCell::new(plane.as_mut().map_or(
        tandem_lease::ServingPolicy::STANDALONE,
        |p| {
            let _ = p.take_policy();
            p.policy()
        },
    )));

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
    // Binding sync with the partner (RFC 8156 §7, docs/failover.md D27): the workers' change
    // rings and request queues, and the shards as the plane reaches them through the workers.
    let sync = match plane {
        Some(_) => Some(Arc::new(
            SyncQueues::new(workers).context("creating the binding-sync queues")?,
        )),
        None => None,
    };
    let mut lease_shards = sync.as_ref().map(|q| {
        WorkerShards::new(
            Arc::clone(q),
            Arc::clone(&exchange),
            workers,
            shards,
            tandem_proto::Engine::new(config.clone(), duid.clone()).with_partition(0, shards),
        )
    });
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
            policy: Arc::clone(&policy),
            policy_bits: u64::MAX,
            sync: sync.clone(),
            staged: Vec::with_capacity(if sync.is_some() { STAGE_CAP } else { 0 }),
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
        hex(&duid),
    );
    emit_line(&format!(
        "READY mode=xdp attach={attach} workers={workers} shards={shards}"
    ))?;

    let mut ev = EventLoop::new().context("creating the event loop")?;
    signals
        .register(&mut ev, Key::Signals)
        .context("polling the signals")?;
    control
        .register(&mut ev)
        .context("polling the control socket")?;
    if let Some(p) = plane.as_mut() {
        p.register(&mut ev)
            .context("polling the failover sockets")?;
    }
    if let Some(q) = &sync {
        ev.register_fd(q.changes_fd(), Interest::READABLE, Key::Changes)
            .context("polling the workers' change eventfd")?;
    }
    let now = Instant::now();
    ev.set_timer(Key::LogRelay, now);
    ev.set_timer(Key::WorkerHealth, now + WORKER_HEALTH_EVERY);

    let mut failed = false;
    // Changes taken since the last `ChangesWindow` (by any wake): while there are some, the
    // workers' eventfd stays unarmed.
    let mut taken_in_window = 0u64;
    let mut wakes = Vec::new();
    'serve: loop {
        ev.turn(&mut wakes).context("waiting for events")?;
        for wake in wakes.drain(..) {
            match wake.key() {
                Key::Signals => {
                    if signals.take().context("reading signals")?.is_some() {
                        break 'serve;
                    }
                }
                Key::LogRelay => {
                    for p in &mut programs {
                        p.flush_log();
                    }
                    ev.set_timer(Key::LogRelay, Instant::now() + LOG_RELAY_EVERY);
                }
                Key::WorkerHealth => {
                    if running.iter().any(|r| r.handle.is_finished()) {
                        tracing::error!("a worker stopped unexpectedly, stopping");
                        failed = true;
                        break 'serve;
                    }
                    ev.set_timer(Key::WorkerHealth, Instant::now() + WORKER_HEALTH_EVERY);
                }
                Key::Control(k) => {
                    let mut target = XdpTarget {
                        interfaces: &config.interfaces,
                        attach: &attach,
                        shards,
                        capacity: store.capacity,
                        running: &running,
                        programs: &programs,
                        failover: plane.as_mut(),
                        bridge: lease_shards.as_ref().map(WorkerShards::counters),
                    };
                    control.handle(wake.map(|_| k), &mut ev, &mut target);
                }
                Key::Failover(k) => {
                    if let Some(p) = plane.as_mut() {
                        p.handle(wake.map(|_| k), &mut ev);
                    }
                }
                Key::Changes => {
                    // Collected below; while they keep coming, every CHANGES_WINDOW with no
                    // eventfd writes by the workers.
                    if let Some(q) = &sync {
                        let _ = q.clear_wake();
                    }
                    ev.set_timer(Key::ChangesWindow, Instant::now() + CHANGES_WINDOW);
                }
                Key::ChangesWindow => {
                    if let (Some(q), Some(p)) = (&sync, plane.as_mut()) {
                        let taken = take_changes(q, p) + std::mem::take(&mut taken_in_window);
                        if taken > 0 {
                            ev.set_timer(Key::ChangesWindow, Instant::now() + CHANGES_WINDOW);
                        } else {
                            // A window without changes: the next one wakes the loop again
                            // (what came meanwhile is taken below).
                            q.rearm();
                        }
                    }
                }
                Key::SyncPump => {}
            }
            if let Some(p) = plane.as_mut() {
                // Binding sync (RFC 8156 §7) with the shards on their workers: the changes
                // they committed first, then the partner's updates and acks and our scans,
                // each a request to the owning worker (docs/failover.md D27).
                if let (Some(q), Some(ws)) = (&sync, lease_shards.as_mut()) {
                    taken_in_window += take_changes(q, p);
                    ws.begin_turn();
                    p.pump_bindings(ws);
                    if p.bindings_pending() {
                        ev.set_timer(Key::SyncPump, Instant::now() + CHANGES_WINDOW);
                    }
                }
                p.arm(&mut ev);
                if let Some(new) = p.take_policy() {
                    policy.store(new);
                }
            }
        }
    }
    if let Some(p) = plane.as_mut() {
        p.shutdown(&mut ev, |k| match k {
            Key::Failover(f) => Some(f),
            _ => None,
        });
        if let Some(new) = p.take_policy() {
            policy.store(new);
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
