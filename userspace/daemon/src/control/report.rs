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
    /// The failover relationships (empty: standalone).
    pub failover: Vec<FailoverView>,
}

/// One failover relationship as `status` shows it (RFC 8156; `tandem partner-down`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverView {
    /// The relationship name.
    pub name: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// Our state (RFC 8156 §8 name, e.g. `COMMUNICATIONS-INTERRUPTED`).
    pub state: String,
    /// When it began (Unix seconds).
    pub state_since: u64,
    /// The state before it.
    pub previous: Option<String>,
    /// Whether our STATE carries the STARTUP flag (we are in STARTUP).
    pub startup: bool,
    /// The partner's state as last heard (while it is in STARTUP: its previous state).
    pub partner_state: Option<String>,
    /// Since when (Unix seconds), by the partner's clock.
    pub partner_since: Option<u64>,
    /// The partner's last flags had STARTUP.
    pub partner_startup: bool,
    /// The link: `up` or `down`.
    pub link: String,
    /// Details: the phase when up, why it went down otherwise.
    pub link_detail: String,
    /// Communications OK (RFC 8156 §6.1).
    pub communications_ok: bool,
    /// `tls` or `insecure`.
    pub security: String,
    /// The partner's certificate (matched name, subject CN, DNS names, TLS version).
    pub tls_peer: Option<String>,
    /// When the last message came from the partner (Unix seconds).
    pub last_contact: Option<u64>,
    /// The partner's clock minus ours at the last message, seconds.
    pub skew: Option<i64>,
    /// The largest absolute skew seen.
    pub max_abs_skew: u64,
    /// BNDUPDs sent and not acknowledged (at most the partner's MAX_UNACKED_BNDUPD).
    pub unacked: u64,
    /// Binding changes waiting for the window (RFC 8156 §7, docs/failover.md D28).
    pub update_backlog: u64,
    /// BNDUPDs sent per second (rounded), over the last ten seconds.
    pub bndupd_sent_per_s: u64,
    /// BNDUPDs received per second (rounded), over the last ten seconds.
    pub bndupd_received_per_s: u64,
    /// Our updates the partner acknowledged in the last ten seconds whose commit was timed
    /// (docs/failover.md D50): the population of the three latencies below.
    pub update_latency_count: u64,
    /// Update latency, median, µs: from the committed change (its client's Reply had gone
    /// out) to the partner's BNDREPLY acknowledging that lease, processed (0: none timed).
    pub update_latency_p50_us: u64,
    /// Update latency, 99th percentile, µs.
    pub update_latency_p99_us: u64,
    /// Update latency, the longest, µs.
    pub update_latency_max_us: u64,
    /// The MCLT in use, seconds.
    pub mclt: u32,
    /// What the engine may do (responsiveness, pool, MCLT cap).
    pub policy: String,
    /// What is wrong now, in one sentence, when the plane can tell: both servers configured as
    /// primary, a refused CONNECT (either way), no connection from the primary for longer
    /// than the startup time (docs/failover.md D23). `None`: nothing known to be wrong.
    pub problem: Option<String>,
    /// The last refusal of our CONNECT by the partner, with its words (kept after the problem
    /// is gone).
    pub last_refusal_received: Option<RefusalView>,
    /// The last refusal of the partner's CONNECT by us (kept after the problem is gone).
    pub last_refusal_sent: Option<RefusalView>,
    /// Counters: the endpoint's and the link's, by name.
    pub counters: Vec<(String, u64)>,
}

/// A refused CONNECT as `status` shows it (RFC 8156 §6.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefusalView {
    /// The Status Code's RFC name (`ConfigurationConflict`), or its number.
    pub status: String,
    /// The Status Code.
    pub code: u16,
    /// The status message (the partner's words when received), made safe to show.
    pub text: String,
    /// When (Unix seconds).
    pub at: u64,
}
