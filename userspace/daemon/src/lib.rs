//! Tandem, a DHCPv6 server appliance (RFC 8415/9915 server, RFC 8156 failover, XDP/AF_XDP
//! datapath).
//!
//! Layer L3 (composition): the `tandem` program.
//!
//! * [`cli`]: the command line (`tandem check`, `run`, `leases`, `xdp-verify`, `xdp-demo`) and
//!   the process lifecycle (signals, worker threads, the final counter report).
//! * [`check`]: configuration checking, shared by `check` and `run`.
//! * [`leases`]: the `tandem leases` listing.
//! * [`run`]: `tandem run`, the server loop (socket datapath).
//! * [`shard`]: the lease database sharded by client DUID (one engine and store per shard).
//! * [`xdp_run`]: `tandem run` on the XDP/AF_XDP datapath (per-queue workers, hand-off).
//! * [`entropy`]: the engine's random source.
//! * [`timefmt`]: RFC 3339 formatting of lease times.
//! * [`control`]: the control socket of a running server (`status`, `tune`).
//! * [`counters`]: the names of the counters in `COUNTERS` lines and `status`.
//! * [`tune`]: NIC queue and IRQ affinity inspection, allowed cores.
//! * [`demo`]: the demo DHCPv6 responder the AF_XDP workers run in `xdp-demo`.
#![deny(missing_docs)]
// Every system call goes through tandem-datapath's safe APIs (the L2 crate holds the `unsafe`).
#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod control;
pub mod counters;
pub mod demo;
pub mod entropy;
pub mod leases;
pub mod run;
pub mod shard;
pub mod timefmt;
pub mod tune;
pub mod xdp_run;
