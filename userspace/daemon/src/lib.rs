//! Tandem, a DHCPv6 server appliance (RFC 8415/9915 server, RFC 8156 failover, XDP/AF_XDP
//! datapath).
//!
//! Layer L3 (composition): the `tandem` program.
//!
//! * [`cli`]: the command line (`tandem check`, `run`, `leases`, `status`, `tune`,
//!   `xdp-verify`, `xdp-demo`): parses the arguments and dispatches.
//! * [`server`]: `tandem run`: setup, the sharded lease database, the socket and XDP
//!   datapaths' loops, the XDP shard workers and their hand-off mailbox.
//! * [`demo`]: `tandem xdp-demo` and the demo DHCPv6 responder its AF_XDP workers run.
//! * [`event_loop`]: the main thread's event loop: mio sources and timers by key.
//! * [`failover`]: the RFC 8156 control plane: an endpoint per `[[failover]]`, its link to the
//!   partner (TCP 647, STARTTLS/TLS), its state file, the serving policy it gives the engines.
//! * [`control`]: the control socket of a running server (`status`, `tune`).
//! * [`check`]: configuration checking, shared by `check` and `run`.
//! * [`leases`]: the `tandem leases` listing.
//! * [`placement`]: RX queues and cores of the AF_XDP workers.
//! * [`tune`]: NIC queue and IRQ affinity inspection, core list checks.
//! * [`counters`]: the names of the counters in `COUNTERS` lines and `status`.
//! * [`output`]: the result lines on stdout.
//! * [`entropy`]: the engine's random source.
//! * [`timefmt`]: the clock in Unix seconds and RFC 3339 formatting of lease times.
#![deny(missing_docs)]
// Every system call goes through tandem-datapath's safe APIs (the L2 crate holds the `unsafe`).
#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod control;
pub mod counters;
pub mod demo;
pub mod entropy;
pub mod event_loop;
pub mod failover;
pub mod leases;
pub mod output;
pub mod placement;
pub mod server;
pub mod timefmt;
pub mod tune;
