//! Which shard of a sharded lease database serves a datagram (issue 4).
//!
//! The shard of a request is a hash of the client's DUID (the Client Identifier of the client
//! message, RFC 8415 §21.2; for relayed requests the innermost client message, §19) modulo
//! the shard count. Every message of a client (Solicit, Request, Renew, Rebind, Release,
//! Decline, Confirm) carries the same DUID, so all of them reach the shard that holds its
//! bindings.
//!
//! The hash is FNV-1a 64 over the DUID bytes, finished with the MurmurHash3 `fmix64`
//! finaliser ([`duid_hash`]): FNV-1a alone has weak low bits (its lowest bit is the parity of
//! the bytes' lowest bits, so DUID-LLTs a few seconds apart would all land on one of two
//! shards), and the shard is taken from the low bits (`mod S`). It decides which lease file a
//! binding lives in, so it is part of the state-directory format and must never change.

use crate::inbound::Inbound;

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `duid` followed by MurmurHash3's `fmix64` (stable across releases: it picks
/// the lease file of a client).
pub fn duid_hash(duid: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in duid {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The shard (`0..shards`) of the DHCPv6 datagram `payload` (a UDP payload received on port
/// 547): [`duid_hash`] of the Client ID of the (innermost) client message, mod `shards`.
///
/// `None` when the payload does not parse or carries no Client ID: the caller gives such
/// datagrams to shard 0, whose engine answers what needs no client state (an
/// Information-Request without Client ID, RFC 8415 §18.3.6) and drops and counts the rest.
/// With `shards` ≤ 1 the answer is `Some(0)` without parsing.
pub fn shard_of(payload: &[u8], shards: u32) -> Option<u32> {
    if shards <= 1 {
        return Some(0);
    }
    Inbound::parse(payload).shard(shards)
}
