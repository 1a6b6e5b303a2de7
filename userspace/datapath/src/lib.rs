//! Tandem's datapath: the OS-facing layer (L2) between the kernel and the protocol code.
//!
//! * [`iface`]: interface lookups: index, MAC address, default reply source address.
//! * [`link`]: the failover link's transport: non-blocking TCP, RFC 5460 framing, STARTTLS and
//!   mutually authenticated TLS (rustls) (RFC 8156 §5.1, §6.1, §10; RFC 7653 §8.2, §9.1).
//! * [`sys`]: small safe seams: blocked signals, eventfd wake-ups, the CPU set, seed
//!   randomness.
//! * [`udp`]: the plain UDP-socket datapath: one socket on port 547 with IPV6_PKTINFO.
//! * [`xdp`]: loads the embedded XDP program (`ebpf/xdp`, built by this crate's build script),
//!   attaches it to an interface (native or generic mode), fills its `XSKS` map with AF_XDP
//!   sockets, reads its per-CPU counters, and relays its aya-log records to `log`.
//! * [`xsk`]: one AF_XDP socket with its own UMEM per RX queue (xdpilone).
//! * [`worker`]: pinned worker threads that drive the AF_XDP rings.
//!
//! This crate makes no protocol decisions: what to answer is decided by the code that drives
//! it. `unsafe` is allowed here (AF_XDP rings and mmap, and the system calls behind [`iface`],
//! [`udp`] and [`sys`]), each block with a `// SAFETY:` note; the daemon above has none.
//! Everything that touches the kernel needs root, or `CAP_BPF` + `CAP_NET_ADMIN` (+
//! `CAP_NET_RAW` for AF_XDP sockets).

pub mod iface;
pub mod link;
pub mod sys;
pub mod udp;
pub mod worker;
pub mod xdp;
pub mod xsk;
