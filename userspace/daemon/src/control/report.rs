//! What the control socket reports about a running server: plain data, filled in by the
//! datapath's [`ControlTarget`](super::ControlTarget) and rendered by [`super::render`].

use tandem_datapath::worker::WorkerHandle;

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
    /// The engine's counters (see [`crate::counters::engine_counters`]).
    pub engine: Vec<(String, u64)>,
    /// The socket layer's counters (see [`crate::counters::socket_counters`]); empty in XDP
    /// mode.
    pub socket: Vec<(String, u64)>,
}
