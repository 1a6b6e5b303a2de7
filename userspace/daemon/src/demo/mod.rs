//! `tandem xdp-demo`: the XDP steering demo. The XDP program on one interface, a pinned
//! AF_XDP worker per RX queue, each answering with the stateless [`DemoHandler`] (no pools,
//! no store); the main thread's event loop relays the XDP log and watches the workers on
//! timers until a stop signal or `--duration`, then prints the XDP counters and one `WORKER`
//! line per queue.

mod handler;

use std::net::Ipv6Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tandem_datapath::iface;
use tandem_datapath::worker::{self, WorkerConfig, WorkerHandle};
use tandem_datapath::xdp::{AttachMode, LogLevel, XdpProgram};

pub use self::handler::{DEMO_STATUS_MESSAGE, DemoHandler, MAX_IAS, SERVER_PORT};
use crate::event_loop::{EventLoop, StopSignals};
use crate::output::emit_line;
use crate::placement::{resolve_cores, resolve_queues, worker_error};

/// How often the main thread relays the XDP program's log records and checks on the workers.
const HOUSEKEEPING: Duration = Duration::from_millis(50);

/// The sources and timers of the demo's event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// SIGHUP, SIGINT, SIGTERM.
    Signals,
    /// `--duration` has elapsed.
    Duration,
    /// Relay of the XDP program's log records.
    LogRelay,
    /// The check that every worker thread still runs.
    WorkerHealth,
}

/// What `tandem xdp-demo` was asked to do (see the command's help in [`crate::cli`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Interface to serve.
    pub iface: String,
    /// RX queues to serve, 0..N (`None`: all of them).
    pub queues: Option<u32>,
    /// XDP attach mode.
    pub mode: AttachMode,
    /// Workers spin on their rings instead of sleeping in `poll()`.
    pub busy_poll: bool,
    /// Cores to pin the workers to (queue i to the (i mod len)-th); `None`: the allowed ones.
    pub cores: Option<Vec<usize>>,
    /// Source address of replies to multicast requests (`None`: from the interface).
    pub server_addr: Option<Ipv6Addr>,
    /// Stop after this long, as on SIGTERM.
    pub duration: Option<Duration>,
    /// Kernel-side log level compiled into the XDP program.
    pub log_level: LogLevel,
}

/// Runs `tandem xdp-demo` (see the command's help in [`crate::cli`]).
///
/// # Errors
/// Setup errors (interface, XDP attach, AF_XDP sockets) and fatal I/O errors.
pub fn run(args: &DemoOptions) -> anyhow::Result<ExitCode> {
    // Blocked before any thread exists: every thread inherits the mask, and the main thread's
    // event loop reads them from a signalfd.
    let signals = StopSignals::block().context("blocking SIGHUP/SIGINT/SIGTERM")?;

    let iface = args.iface.as_str();
    let mac = iface::interface_mac(iface)?;
    let server_addr = match args.server_addr {
        Some(addr) => addr,
        None => iface::server_addr(iface).map_err(|e| anyhow!("{e} or pass --server-addr"))?,
    };
    let queues = resolve_queues(iface, args.queues, "--queues")?;
    let cores = resolve_cores(args.cores.as_deref(), "--cores")?;

    let mut program = XdpProgram::load(args.log_level)?;
    let mode = program.attach(iface, args.mode)?;
    log::info!("XDP program attached to {iface} in {mode} mode; server address {server_addr}");

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers: Vec<WorkerHandle> = Vec::new();
    let started = start_workers(
        args,
        iface,
        queues,
        &cores,
        mac,
        server_addr,
        &stop,
        &mut program,
        &mut workers,
    );
    if let Err(e) = started {
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        return Err(e);
    }
    emit_line(&format!("READY iface={iface} mode={mode} queues={queues}"))?;

    let mut ev = EventLoop::new().context("creating the event loop")?;
    signals
        .register(&mut ev, Key::Signals)
        .context("polling the signals")?;
    let now = Instant::now();
    ev.set_timer(Key::LogRelay, now);
    ev.set_timer(Key::WorkerHealth, now + HOUSEKEEPING);
    if let Some(d) = args.duration {
        ev.set_timer(Key::Duration, now + d);
    }
    let mut failed = false;
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
                Key::Duration => {
                    log::info!("--duration elapsed, stopping");
                    break 'serve;
                }
                Key::LogRelay => {
                    program.flush_log();
                    ev.set_timer(Key::LogRelay, Instant::now() + HOUSEKEEPING);
                }
                Key::WorkerHealth => {
                    if workers.iter().any(WorkerHandle::is_finished) {
                        log::error!("a worker stopped unexpectedly, stopping");
                        failed = true;
                        break 'serve;
                    }
                    ev.set_timer(Key::WorkerHealth, Instant::now() + HOUSEKEEPING);
                }
            }
        }
    }

    stop.store(true, Ordering::Relaxed);
    let mut lines = Vec::with_capacity(workers.len());
    for w in workers {
        let (queue, core, stats) = (w.queue(), w.core(), Arc::clone(w.stats()));
        if let Err(e) = w.join() {
            log::error!("worker of queue {queue}: {e}");
            failed = true;
        }
        let s = stats.snapshot();
        let core = core.map_or_else(|| "-".to_owned(), |c| c.to_string());
        log::debug!("queue {queue}: {s:?}");
        lines.push(format!(
            "WORKER queue={queue} core={core} rx={} tx={} dropped={} replies={}",
            s.rx,
            s.tx,
            s.dropped
                .saturating_add(s.tx_full)
                .saturating_add(s.bad_desc),
            s.replies,
        ));
    }
    program.flush_log();
    let counters = program.counters()?;
    emit_line(&format!("COUNTERS {counters}"))?;
    for line in lines {
        emit_line(&line)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Spawns one worker per queue and steers each queue to its socket.
#[expect(
    clippy::too_many_arguments,
    reason = "a private helper of `run`, called once"
)]
fn start_workers(
    args: &DemoOptions,
    iface: &str,
    queues: u32,
    cores: &[Option<usize>],
    mac: [u8; 6],
    server_addr: Ipv6Addr,
    stop: &Arc<AtomicBool>,
    program: &mut XdpProgram,
    workers: &mut Vec<WorkerHandle>,
) -> anyhow::Result<()> {
    for queue in 0..queues {
        let core = usize::try_from(queue)
            .ok()
            .and_then(|q| cores.get(q.checked_rem(cores.len())?))
            .copied()
            .flatten();
        let mut config = WorkerConfig::new(iface, queue);
        config.core = core;
        config.busy_poll = args.busy_poll;
        let handler = DemoHandler::new(mac, server_addr);
        let worker =
            worker::spawn(config, handler, Arc::clone(stop)).map_err(|e| worker_error(&e))?;
        log::info!(
            "queue {queue}: AF_XDP socket fd {} ({} mode), worker on core {}",
            worker.fd(),
            if worker.zero_copy() {
                "zero-copy"
            } else {
                "copy"
            },
            core.map_or_else(|| "any".to_owned(), |c| c.to_string()),
        );
        let fd = worker.fd();
        workers.push(worker);
        program.register_socket(queue, fd)?;
    }
    Ok(())
}
