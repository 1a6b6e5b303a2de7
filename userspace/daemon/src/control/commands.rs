//! What the control socket answers: the running server as a [`ControlTarget`] (implemented by
//! each datapath's run loop) and the execution of a request against it.

use std::fmt::Write as _;
use std::time::Instant;

use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::worker::WorkerHandle;

use super::protocol::{Request, parse_request};
use super::rates::RateSampler;
use super::render::{TuneShow, status_json, status_text};
use crate::tune::{self, NicReport};

/// One worker as the control socket shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerView {
    /// Interface served.
    pub iface: String,
    /// RX queue served.
    pub queue: u32,
    /// Core the worker runs on now (`None`: not pinned).
    pub core: Option<usize>,
    /// Frames received.
    pub rx: u64,
    /// Replies the kernel reported sent.
    pub tx: u64,
    /// Frames not answered (handler drops, TX ring full, bad descriptors).
    pub dropped: u64,
    /// Frames answered.
    pub replies: u64,
}

impl WorkerView {
    /// The view of a running AF_XDP worker of `iface`.
    pub fn of_handle(iface: &str, worker: &WorkerHandle) -> Self {
        let s = worker.stats().snapshot();
        Self {
            iface: iface.to_owned(),
            queue: worker.queue(),
            core: worker.current_core(),
            rx: s.rx,
            tx: s.tx,
            dropped: s
                .dropped
                .saturating_add(s.tx_full)
                .saturating_add(s.bad_desc)
                .saturating_add(s.outbound_dropped),
            replies: s.replies,
        }
    }
}

/// What `status` reports. Counter lists are `(name, value)` in display order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// `socket` or `xdp`.
    pub datapath: String,
    /// XDP attach mode (`native`, `generic`); `None` in socket mode.
    pub attach_mode: Option<String>,
    /// The configured interfaces.
    pub interfaces: Vec<String>,
    /// Lease database shards.
    pub shards: usize,
    /// Bindings stored, over all shards.
    pub bindings: usize,
    /// Store capacity in bindings, over all shards.
    pub capacity: u64,
    /// The AF_XDP workers (empty in socket mode).
    pub workers: Vec<WorkerView>,
    /// The XDP program's counters (see [`crate::counters::xdp_counters`]); empty in socket mode.
    pub xdp: Vec<(String, u64)>,
    /// The engine's counters (see [`engine_counters`]).
    pub engine: Vec<(String, u64)>,
    /// The socket layer's counters (see [`socket_counters`]); empty in XDP mode.
    pub socket: Vec<(String, u64)>,
}

/// The running server, as the control socket sees it. Implemented by each datapath's run
/// loop.
pub trait ControlTarget {
    /// Everything `status` shows.
    fn status(&self) -> StatusReport;
    /// The workers and their counters (for the packet rates of `tune show`).
    fn workers(&self) -> Vec<WorkerView>;
    /// Moves the workers to `cores` (already checked to be allowed for this process); returns
    /// `(queue, core)` per worker, or why it cannot.
    ///
    /// # Errors
    /// The datapath has nothing to pin, or `cores` is unusable.
    fn set_cores(&mut self, cores: &[usize]) -> Result<Vec<(u32, usize)>, String>;
}

/// Asks each of `workers` to move: worker i to `cores[i mod len]` (the placement of
/// `--cores`). Returns `(queue, core)` per worker.
///
/// # Errors
/// `cores` is empty.
pub fn pin_workers<'a>(
    workers: impl IntoIterator<Item = &'a WorkerHandle>,
    cores: &[usize],
) -> Result<Vec<(u32, usize)>, String> {
    if cores.is_empty() {
        return Err("no cores given".to_owned());
    }
    Ok(workers
        .into_iter()
        .zip(cores.iter().cycle())
        .map(|(worker, &core)| {
            worker.set_core(Some(core));
            (worker.queue(), core)
        })
        .collect())
}

/// The answer to one request line (ending in a newline), packet rates from `rates`.
pub(super) fn execute(line: &str, target: &mut dyn ControlTarget, rates: &RateSampler) -> String {
    let request = match parse_request(line) {
        Ok(r) => r,
        Err(e) => return format!("error: {e}\n"),
    };
    match request {
        Request::Status { json } => {
            let report = target.status();
            if json {
                status_json(&report)
            } else {
                status_text(&report)
            }
        }
        Request::TuneShow { json } => {
            let report = target.status();
            let (interval, rates) = rates.rates(Instant::now(), &report.workers);
            let nics: Vec<NicReport> = report
                .interfaces
                .iter()
                .map(|iface| tune::inspect(iface))
                .collect();
            let show = TuneShow {
                datapath: &report.datapath,
                workers: &report.workers,
                interval,
                rates: &rates,
                nics: &nics,
            };
            if json { show.json() } else { show.text() }
        }
        Request::TuneCores(cores) => {
            if let Err(e) = tune::check_cores(&cores, &allowed_cores()) {
                return format!("error: {e}\n");
            }
            match target.set_cores(&cores) {
                Err(e) => format!("error: {e}\n"),
                Ok(placed) => {
                    let mut out = format!(
                        "{} worker(s) moving to cores {} (applied on their next wake-up; \
                         see `tandem tune show`)\n",
                        placed.len(),
                        tune::compress_list(&cores)
                    );
                    for (queue, core) in placed {
                        let _ = writeln!(out, "  queue {queue} -> core {core}");
                    }
                    out
                }
            }
        }
    }
}
