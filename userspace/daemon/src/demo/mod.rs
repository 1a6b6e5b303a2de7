//! `tandem xdp-demo`: the XDP steering demo. The XDP program on one interface, a pinned
//! AF_XDP worker per RX queue, each answering with the stateless [`DemoHandler`] (no pools,
//! no store); the main thread relays the XDP log, watches the workers and waits for a signal
//! or `--duration`, then prints the XDP counters and one `WORKER` line per queue.

mod handler;

use std::net::Ipv6Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tandem_datapath::iface;
use tandem_datapath::sys::signal::SignalSet;
use tandem_datapath::worker::{self, WorkerConfig, WorkerHandle};
use tandem_datapath::xdp::{AttachMode, LogLevel, XdpProgram};

pub use self::handler::{DEMO_STATUS_MESSAGE, DemoHandler, MAX_IAS, SERVER_PORT};
use crate::output::emit_line;
use crate::placement::{resolve_cores, resolve_queues, worker_error};

/// How often the main thread relays the XDP program's log records and checks on the workers.
const HOUSEKEEPING: Duration = Duration::from_millis(50);

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
    // Block SIGINT/SIGTERM before any thread exists: every thread inherits the mask, and the
    // main thread collects them with sigtimedwait.
    let signals =
        SignalSet::block(&[libc::SIGINT, libc::SIGTERM]).context("blocking SIGINT/SIGTERM")?;

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

    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut failed = false;
    loop {
        program.flush_log();
        if let Some(sig) = signals.wait(HOUSEKEEPING).context("waiting for signals")? {
            log::info!("got signal {sig}, stopping");
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            log::info!("--duration elapsed, stopping");
            break;
        }
        if workers.iter().any(WorkerHandle::is_finished) {
            log::error!("a worker stopped unexpectedly, stopping");
            failed = true;
            break;
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
