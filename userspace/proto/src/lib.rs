//! Tandem's DHCPv6 server engine (layer L1: sans-IO).
//!
//! [`Engine::handle`] takes one datagram received on UDP port 547 and, when the RFC asks for an
//! answer, writes the Advertise or Reply (wrapped in RELAY-REPL messages for relayed requests)
//! into the caller's buffer; the caller sends it to the source address and port of the
//! datagram (RFC 8415 §18.3.10, §19.3). The engine performs no I/O: time comes in as a
//! [`FailoverTime`], randomness through [`Entropy`], and leases live in a [`LeaseStore`] whose
//! `put` is durable on return, so every lease in a Reply is committed before the Reply exists
//! (RFC 8415 §18.3.1, §18.3.2).
//!
//! Behaviour, with the choices the RFC leaves open:
//!
//! * Messages (RFC 8415 §16, §18.3): SOLICIT → ADVERTISE, or REPLY with Rapid Commit when the
//!   client asks and the subnet allows it; REQUEST, RENEW, REBIND, CONFIRM, RELEASE, DECLINE,
//!   INFORMATION-REQUEST → REPLY. ADVERTISE, REPLY, RECONFIGURE and RELAY-REPL are server
//!   messages and are dropped; any other type is dropped as unknown. Each discard rule of
//!   §16 has its own [`DropReason`] and counter. Unicast is accepted like multicast (RFC 9915
//!   removed Server Unicast / UseMulticast); IA_TA is obsolete and treated as an unknown option.
//! * Link selection (RFC 8415 §13.1, §18.3.10): relayed requests by the innermost non-zero relay
//!   link-address, else by the innermost Interface-Id; direct requests by the receiving
//!   interface. Without a subnet the client still gets Information-Request replies (without
//!   configuration options); IAs get NoAddrsAvail / NoPrefixAvail (NotOnLink when a Request
//!   names addresses), Renew/Rebind leases get lifetimes 0, Confirm is not answered.
//! * Allocation: the client's own binding first, then its reservation, then a valid
//!   hint, then a random free lease (bounded random tries, then a bounded probe): never a scan
//!   of the pool.
//! * Lifetimes and timers (RFC 8415 §21.4, RFC 8156 §4.4): the subnet's lifetimes, capped by
//!   the policy's MCLT; T1/T2 the same in every IA of a Reply, at most 0.5 / 0.8 × the shortest
//!   preferred lifetime granted; leases are committed only after that, with the values sent.
//! * Limits: up to [`MAX_IAS`] IAs per message and [`MAX_LEASES_PER_IA`] leases named per IA;
//!   an IA beyond is answered with a status, never left out (`docs/failover.md` D4).
//! * Expiry: [`Engine::reclaim`] walks the store incrementally.
//! * Sharding (issue 4): [`Inbound::shard`] / [`shard_of`] route a datagram to a shard by client
//!   DUID and [`Engine::with_partition`] limits an engine to its shard's pool slots.
//!
//! For failover the engine takes a [`ServingPolicy`] ([`Engine::set_policy`]: which messages
//! it answers, which leases it may allocate, the MCLT cap) and reports every binding it
//! committed ([`Engine::changes`], a [`BindingChange`] each). Every status change goes through
//! [`tandem_lease::transition::apply`] (RFC 8156 §7.2). A datapath that parsed a datagram to
//! pick its shard hands the [`Inbound`] to [`Engine::handle_inbound`], so nothing is parsed
//! twice; a relayed reply is written once, in place behind its RELAY-REPL headers.
//!
//! [`FailoverTime`]: tandem_lease::FailoverTime
//! [`LeaseStore`]: tandem_lease::LeaseStore

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod alloc;
mod counters;
mod engine;
mod inbound;
mod partner;
mod reply;
mod shard;

pub use alloc::{MAX_LEASES_PER_IA, PROBE_LIMIT, RANDOM_TRIES};
pub use counters::{Counters, DropReason};
pub use engine::{
    BindingChange, DEFAULT_DECLINE_QUARANTINE, Engine, MAX_IAS, Outcome, ReclaimReport, RxMeta,
};
pub use inbound::Inbound;
pub use partner::{PartnerOutcome, RebalanceReport};
pub use shard::{duid_hash, shard_of};
pub use tandem_lease::ServingPolicy;

/// A source of randomness for lease selection (random probing of pools). The daemon seeds one
/// from the OS; tests use a fixed seed.
pub trait Entropy {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64: a small, fast, deterministic [`Entropy`] (not cryptographic; lease selection
/// only needs spread, not secrecy).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl Entropy for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
