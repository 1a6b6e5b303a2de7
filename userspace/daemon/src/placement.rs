//! Where the AF_XDP workers go: the RX queues of an interface to serve and the cores to pin
//! the workers to (shared by `tandem run --datapath xdp` and `tandem xdp-demo`).

use anyhow::{Context as _, anyhow, bail};
use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::worker;
use tandem_datapath::xdp;

/// Entries in the XDP program's XSKS map: the highest steerable queue is one less.
pub const MAX_QUEUES: u32 = 64;

/// The RX queues to serve on `iface`: `wanted` (checked against what the interface has), else
/// all of them. `flag` names the setting in errors (`--queues`, `[datapath] queues`).
///
/// # Errors
/// The interface's queues cannot be counted, or it has fewer than asked for (or none).
pub fn resolve_queues(iface: &str, wanted: Option<u32>, flag: &str) -> anyhow::Result<u32> {
    let available =
        xdp::rx_queue_count(iface).with_context(|| format!("counting the RX queues of {iface}"))?;
    Ok(match wanted {
        Some(n) if n > available => bail!(
            "{iface} has {available} RX queue(s), {flag} {n} asks for more (see `ethtool -l {iface}`)"
        ),
        Some(n) => n,
        None if available == 0 => bail!("{iface} reports no RX queues"),
        None if available > MAX_QUEUES => bail!(
            "{iface} has {available} RX queues but the XDP program steers at most {MAX_QUEUES}: \
             set {flag} N or reduce them with `ethtool -L {iface} combined N`"
        ),
        None => available,
    })
}

/// The worker cores: `list` (each checked against the cores this process may run on), else
/// the allowed cores in turn. `flag` names the setting in errors.
///
/// # Errors
/// A core of `list` is not one this process may run on.
pub fn resolve_cores(list: Option<&[usize]>, flag: &str) -> anyhow::Result<Vec<Option<usize>>> {
    let allowed = default_cores();
    let Some(list) = list else {
        return Ok(allowed);
    };
    let known = |c: &usize| allowed.iter().flatten().any(|a| a == c) || allowed == [None];
    if let Some(bad) = list.iter().find(|c| !known(c)) {
        bail!(
            "{flag}: core {bad} is not one this process may run on (allowed: {})",
            allowed
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    Ok(list.iter().copied().map(Some).collect())
}

/// A worker setup error with the AF_XDP hint (what to do), if there is one.
pub fn worker_error(e: &worker::WorkerError) -> anyhow::Error {
    let hint = match e {
        worker::WorkerError::Xsk(x) => x.hint(),
        _ => None,
    };
    match hint {
        Some(hint) => anyhow!("{e} ({hint})"),
        None => anyhow!("{e}"),
    }
}

/// The cores this process may run on, as the default worker placement; unpinned if unknown.
fn default_cores() -> Vec<Option<usize>> {
    let cores: Vec<_> = allowed_cores().into_iter().map(Some).collect();
    if cores.is_empty() { vec![None] } else { cores }
}
