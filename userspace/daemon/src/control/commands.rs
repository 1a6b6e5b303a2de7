//! What the control socket answers: the running server as a [`ControlTarget`] (implemented by
//! each datapath's run loop) and the execution of a request against it.

use std::fmt::Write as _;
use std::time::Instant;

use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::udp::SocketCounters;
use tandem_datapath::worker::WorkerHandle;
use tandem_proto::Counters;

use super::protocol::{Request, parse_request};
use super::rates::RateSampler;
use super::render::{TuneShow, status_json, status_text};
use crate::counters::{engine_counters, socket_counters};
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
/// loop (see [`SocketModeTarget`]).
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

/// [`ControlTarget`] of the socket datapath: one thread, no workers. Build it from the run
/// loop's state right before [`ControlServer::serve_pending`](super::ControlServer::serve_pending) (with several shard engines,
/// [`Counters::merge`] them into one first).
///
/// `tune cores` is refused: the socket datapath has no per-queue workers to pin.
#[derive(Debug)]
pub struct SocketModeTarget<'a> {
    /// The configured interfaces.
    pub interfaces: &'a [String],
    /// The engine's counters.
    pub engine: &'a Counters,
    /// The socket layer's counters.
    pub socket: &'a SocketCounters,
    /// Lease database shards.
    pub shards: usize,
    /// Bindings stored, over all shards.
    pub bindings: usize,
    /// Store capacity, over all shards.
    pub capacity: u64,
}

impl ControlTarget for SocketModeTarget<'_> {
    fn status(&self) -> StatusReport {
        StatusReport {
            datapath: "socket".to_owned(),
            attach_mode: None,
            interfaces: self.interfaces.to_vec(),
            shards: self.shards,
            bindings: self.bindings,
            capacity: self.capacity,
            workers: Vec::new(),
            xdp: Vec::new(),
            engine: engine_counters(self.engine),
            socket: socket_counters(self.socket),
        }
    }

    fn workers(&self) -> Vec<WorkerView> {
        Vec::new()
    }

    fn set_cores(&mut self, _cores: &[usize]) -> Result<Vec<(u32, usize)>, String> {
        Err(
            "the socket datapath has no workers to pin (per-queue workers run with \
             `[datapath] mode = \"xdp\"` or `tandem run --datapath xdp`)"
                .to_owned(),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_mode_target_reports_counters_and_refuses_pinning() {
        let interfaces = vec!["eth0".to_owned()];
        let engine = Counters::default();
        let socket = SocketCounters {
            unknown_interface: 4,
            no_pktinfo: 0,
            truncated: 1,
        };
        let mut target = SocketModeTarget {
            interfaces: &interfaces,
            engine: &engine,
            socket: &socket,
            shards: 1,
            bindings: 3,
            capacity: 10,
        };
        let status = target.status();
        assert_eq!(status.datapath, "socket");
        assert_eq!(status.attach_mode, None);
        assert!(status.workers.is_empty());
        assert_eq!(status.socket[0], ("drop_unknown_interface".to_owned(), 4));
        assert_eq!(status.engine.last(), Some(&("store_errors".to_owned(), 0)));
        let text = status_text(&status);
        assert!(
            text.starts_with("datapath: socket\ninterfaces: eth0\n"),
            "{text}"
        );
        assert!(text.contains("workers: none\n"), "{text}");
        assert!(
            text.contains("socket: drop_unknown_interface=4 drop_no_pktinfo=0 drop_truncated=1\n")
        );
        let err = target.set_cores(&[0]).unwrap_err();
        assert!(
            err.contains("socket datapath has no workers to pin"),
            "{err}"
        );
    }
}
