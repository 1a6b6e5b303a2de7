//! Tandem, a DHCPv6 server appliance (RFC 8415/9915 server, RFC 8156 failover, XDP/AF_XDP
//! datapath).
//!
//! Layer L3 (composition). Until the real server exists this crate holds the `tandem` program:
//!
//! * [`cli`]: the command line (`tandem xdp-verify`, `tandem xdp-demo`) and the process
//!   lifecycle (signals, worker threads, the final counter report).
//! * [`demo`]: the demo DHCPv6 responder the AF_XDP workers run in `xdp-demo`.
#![deny(missing_docs)]

pub mod cli;
pub mod demo;
