//! Tandem's binding model (layer L1: pure logic; performs no I/O and reads no clock).
//!
//! A [`Binding`] is one lease (an IA_NA address or an IA_PD prefix) together with its history:
//! the most recent client, the lifetimes last sent to it, and the per-binding times RFC 8156
//! §7.3 asks a failover server to keep. Bindings are never deleted when a client lets go of them:
//! their status moves on (ACTIVE → RELEASED/EXPIRED → FREE, ACTIVE → ABANDONED on DECLINE), so a
//! returning client can get its old lease back (RFC 8415 §18.3.2) and a failover partner can be
//! told (RFC 8156 §7.2).
//!
//! [`LeaseStore`] is what the engine needs from storage; `tandem-store` implements it over
//! memory-mapped tables, [`MemStore`] in memory for tests and tools.
//!
//! Every status change goes through [`transition::apply`] (RFC 8156 §7.2 Figure 2), and what a
//! server may do for clients is a [`ServingPolicy`] (RFC 8156 §8), set by the failover state
//! machine and obeyed by the engine.
//!
//! All times are RFC 8156 §3 times ([`FailoverTime`]: seconds since 2000-01-01 UTC, modulo
//! 2^32); `FailoverTime(0)` means "not set".

use core::fmt;
use core::net::Ipv6Addr;

pub use tandem_wire::failover::option::BindingStatus;
pub use tandem_wire::failover::{FailoverTime, INFINITE_LIFETIME, MAX_FINITE_LIFETIME};

mod mem;
mod policy;
pub mod sync;
pub mod transition;

pub use mem::MemStore;
pub use policy::{AddressShare, PrefixShare, Responsiveness, ServingPolicy};
pub use transition::{Applied, BindingEvent, FreeStatus, IllegalTransition};

/// Longest DUID (RFC 8415 §11.1: a 2-octet type and up to 128 octets).
pub const MAX_DUID_LEN: usize = 130;

/// What a binding leases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LeaseKind {
    /// An address in an IA_NA (RFC 8415 §21.4).
    Address = 3,
    /// A delegated prefix in an IA_PD (RFC 8415 §21.21).
    Prefix = 25,
}

impl LeaseKind {
    /// The kind stored as `v` (the IA option code), if valid.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            3 => Some(Self::Address),
            25 => Some(Self::Prefix),
            _ => None,
        }
    }
}

/// A client DUID held inline (no allocation), compared as opaque bytes (RFC 8415 §11).
#[derive(Clone, Copy)]
pub struct DuidBuf {
    len: u8,
    bytes: [u8; MAX_DUID_LEN],
}

impl DuidBuf {
    /// The empty DUID (a binding no client has held).
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; MAX_DUID_LEN],
    };

    /// Copies `duid`; `None` if it is longer than [`MAX_DUID_LEN`].
    pub fn new(duid: &[u8]) -> Option<Self> {
        let mut bytes = [0; MAX_DUID_LEN];
        bytes.get_mut(..duid.len())?.copy_from_slice(duid);
        Some(Self {
            len: u8::try_from(duid.len()).ok()?,
            bytes,
        })
    }

    /// The DUID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// `true` for [`DuidBuf::EMPTY`].
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for DuidBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for DuidBuf {}

impl core::hash::Hash for DuidBuf {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for DuidBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Identifies one IA of one client: DUID, IAID and IA type (RFC 8415 §12: an IA is identified
/// by its IAID, unique per client and IA type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The client's DUID.
    pub duid: DuidBuf,
    /// The IAID.
    pub iaid: u32,
    /// IA_NA or IA_PD.
    pub kind: LeaseKind,
}

/// Per-binding flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BindingFlags(pub u32);

impl BindingFlags {
    /// The failover partner has not acknowledged the binding's current state yet (RFC 8156
    /// §7.3 "partner needs update"; cleared by an accepting BNDREPLY).
    pub const UPDATE_PENDING: u32 = 1;

    /// `true` if every bit of `flag` is set.
    pub const fn contains(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// Sets or clears `flag`.
    pub const fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.0 |= flag;
        } else {
            self.0 &= !flag;
        }
    }
}

/// One lease and its history. Keyed by (`kind`, `addr`): a store holds at most one binding per
/// address or prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Address (IA_NA) or delegated prefix (IA_PD).
    pub kind: LeaseKind,
    /// The address, or the prefix (host bits zero).
    pub addr: Ipv6Addr,
    /// 128 for addresses, the delegated length for prefixes.
    pub prefix_len: u8,
    /// RFC 8156 §5.5.1 binding status.
    pub status: BindingStatus,
    /// The most recent client (empty if none ever held it).
    pub duid: DuidBuf,
    /// The IAID of the most recent client's IA.
    pub iaid: u32,
    /// Which configured subnet the lease belongs to (index in the validated configuration).
    pub subnet: u32,
    /// T1 last sent to the client, seconds.
    pub t1: u32,
    /// T2 last sent to the client, seconds.
    pub t2: u32,
    /// Preferred lifetime last sent to the client, seconds.
    pub preferred: u32,
    /// Valid lifetime last sent to the client, seconds.
    pub valid: u32,
    /// Client last transaction time: when we last talked to the client about it.
    pub cltt: FailoverTime,
    /// When `status` took its current value (RFC 8156 §7.3).
    pub start_time_of_state: FailoverTime,
    /// When the current status ends: the end of the valid lifetime for ACTIVE, the end of the
    /// quarantine for ABANDONED (RFC 8156 §5.5.18); 0 if the status has no timeout.
    pub state_expiration_time: FailoverTime,
    /// The partner lifetime to send in the next BNDUPD; 0 once acknowledged (RFC 8156 §7.3).
    pub partner_lifetime: FailoverTime,
    /// The greatest partner lifetime the partner has acknowledged (RFC 8156 §4.4).
    pub acked_partner_lifetime: FailoverTime,
    /// The greatest lifetime we have acknowledged to the partner (RFC 8156 §7.3).
    pub expiration_time: FailoverTime,
    /// When the partner last talked to the client, as the partner reported it.
    pub partner_raw_clt_time: FailoverTime,
    /// Flags, e.g. [`BindingFlags::UPDATE_PENDING`].
    pub flags: BindingFlags,
}

impl Binding {
    /// A binding nobody holds yet (status FREE, all times unset).
    pub const fn free(kind: LeaseKind, addr: Ipv6Addr, prefix_len: u8, subnet: u32) -> Self {
        Self {
            kind,
            addr,
            prefix_len,
            status: BindingStatus::FREE,
            duid: DuidBuf::EMPTY,
            iaid: 0,
            subnet,
            t1: 0,
            t2: 0,
            preferred: 0,
            valid: 0,
            cltt: FailoverTime(0),
            start_time_of_state: FailoverTime(0),
            state_expiration_time: FailoverTime(0),
            partner_lifetime: FailoverTime(0),
            acked_partner_lifetime: FailoverTime(0),
            expiration_time: FailoverTime(0),
            partner_raw_clt_time: FailoverTime(0),
            flags: BindingFlags(0),
        }
    }

    /// The key of the most recent client's IA.
    pub const fn client(&self) -> ClientKey {
        ClientKey {
            duid: self.duid,
            iaid: self.iaid,
            kind: self.kind,
        }
    }

    /// `true` if the binding is ACTIVE and its valid lifetime has not ended at `now`.
    pub fn is_active_at(&self, now: FailoverTime) -> bool {
        self.status == BindingStatus::ACTIVE && !self.has_expired_at(now)
    }

    /// `true` if the status has a timeout and it has passed at `now`.
    pub fn has_expired_at(&self, now: FailoverTime) -> bool {
        self.state_expiration_time.0 != 0
            && self.state_expiration_time.cmp_wrapping(now) != core::cmp::Ordering::Greater
    }
}

/// What the engine needs from lease storage.
///
/// Implementations make [`LeaseStore::put`] durable before returning (for `tandem-store`: the
/// record is in the memory-mapped table, so it survives the process being killed), which is
/// what lets the engine send a Reply only after the lease is committed.
pub trait LeaseStore {
    /// Why a write failed (e.g. the table is full).
    type Error: fmt::Display + fmt::Debug;

    /// The binding for this address or prefix, whatever its status.
    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding>;

    /// Calls `f` with every binding whose most recent client is `key`, whatever its status.
    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding));

    /// Inserts `binding`, or replaces the one with the same (`kind`, `addr`). Durable on return.
    fn put(&mut self, binding: &Binding) -> Result<(), Self::Error>;

    /// Visits up to `max` bindings in storage order starting at `cursor` (0 = the beginning) and
    /// returns the cursor to continue from, or `None` at the end. Used for incremental expiry
    /// and for dumps; bindings written during a scan may or may not be visited.
    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64>;

    /// Number of bindings stored (any status).
    fn len(&self) -> usize;

    /// `true` if no binding is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bindings fit, if the store is bounded (`None`: it grows as needed). Work that
    /// only adds bindings ahead of need (handing prefixes to a failover secondary) leaves room
    /// for clients by it.
    fn capacity(&self) -> Option<usize> {
        None
    }
}
