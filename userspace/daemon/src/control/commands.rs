//! What the control socket answers: the running server as a [`ControlTarget`] (implemented by
//! each datapath's run loop) and the execution of a request against it.

use std::fmt::Write as _;
use std::time::Instant;

use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::worker::WorkerHandle;

use super::protocol::{Request, parse_request};
use super::rates::RateSampler;
use super::render::{TuneShow, status_json, status_text};
use super::report::{StatusReport, WorkerView};
use crate::tune::{self, NicReport};

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
    /// The operator's PARTNER-DOWN for relationship `name` (or the only one): what changed.
    ///
    /// # Errors
    /// No failover, no such relationship, or refused in the endpoint's state (RFC 8156 §8).
    fn partner_down(&mut self, name: Option<&str>) -> Result<String, String>;
}

/// [`ControlTarget::partner_down`] of a datapath with the failover plane `plane`.
///
/// # Errors
/// As [`ControlTarget::partner_down`].
pub fn partner_down(
    plane: Option<&mut crate::failover::FailoverPlane>,
    name: Option<&str>,
) -> Result<String, String> {
    match plane {
        Some(p) => p.partner_down(name),
        None => Err("this server runs standalone: no [[failover]] is configured".to_owned()),
    }
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
        Request::PartnerDown(name) => match target.partner_down(name.as_deref()) {
            Ok(text) => text,
            Err(e) => format!("error: {e}\n"),
        },
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
