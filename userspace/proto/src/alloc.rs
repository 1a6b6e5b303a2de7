//! Lease selection: which address (IA_NA) or prefix (IA_PD) a client's IA gets.
//!
//! Order (RFC 8415 §18.3.2: a returning client should get its lease back; §18.3.9: hints MAY
//! be used): the client's own binding for this IA (ACTIVE, or RELEASED/EXPIRED/FREE and still
//! naming this client), its reservation, a valid hint, then a fresh lease: [`RANDOM_TRIES`]
//! random picks, then a probe of at most [`PROBE_LIMIT`] consecutive candidates from a random
//! start. The cost per IA is bounded whatever the pool size: a /64 address pool or a /40→/56
//! PD pool is never scanned.
//!
//! With a partition ([`crate::Engine::with_partition`], issue 4 sharding) fresh leases and
//! hints are limited to the pool offsets of the engine's shard: random candidates are drawn
//! directly in that residue class and the probe steps by the shard count, so the cost stays
//! bounded. Reservations and a client's own bindings are not limited.
//!
//! A lease is free for a client when nobody else holds it (no binding; FREE, RELEASED or
//! EXPIRED; ACTIVE past its valid lifetime; ABANDONED past its quarantine), it is not reserved
//! for another DUID, and (addresses) it is not the Subnet-Router anycast address of the subnet
//! prefix (RFC 4291 §2.6.1). FREE_BACKUP, PENDING_FREE and RESET (RFC 8156 states the
//! standalone server never produces) count as held.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use tandem_config::{Config, Ipv6Prefix, Subnet};
use tandem_lease::{Binding, BindingStatus, ClientKey, FailoverTime, LeaseKind, LeaseStore};

use crate::Entropy;

/// Random candidates tried before probing sequentially.
pub const RANDOM_TRIES: usize = 32;
/// Most candidates probed sequentially after the random tries failed.
pub const PROBE_LIMIT: usize = 256;
/// Most bindings of one IA the engine considers (and most leases per IA in a reply).
pub const MAX_LEASES_PER_IA: usize = 8;

/// One address (length 128) or delegated prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) kind: LeaseKind,
    pub(crate) addr: Ipv6Addr,
    pub(crate) len: u8,
}

impl Lease {
    pub(crate) const fn of(b: &Binding) -> Self {
        Self {
            kind: b.kind,
            addr: b.addr,
            len: b.prefix_len,
        }
    }
}

/// Reservations indexed for O(1) lookups (built once from the configuration).
#[derive(Clone, Debug, Default)]
pub(crate) struct Reservations {
    /// Reserved address / prefix → the DUID it is reserved for.
    by_lease: HashMap<(LeaseKind, u128), Vec<u8>>,
    /// DUID → (subnet index, reservation index) pairs.
    by_duid: HashMap<Vec<u8>, Vec<(usize, usize)>>,
}

impl Reservations {
    pub(crate) fn new(config: &Config) -> Self {
        let mut r = Self::default();
        for (si, subnet) in config.subnets.iter().enumerate() {
            for (ri, res) in subnet.reservations.iter().enumerate() {
                if let Some(a) = res.address {
                    r.by_lease
                        .insert((LeaseKind::Address, u128::from(a)), res.duid.clone());
                }
                if let Some(p) = res.prefix {
                    r.by_lease
                        .insert((LeaseKind::Prefix, u128::from(p.addr())), res.duid.clone());
                }
                r.by_duid
                    .entry(res.duid.clone())
                    .or_default()
                    .push((si, ri));
            }
        }
        r
    }

    /// `true` if `lease` is reserved for a DUID other than `duid`.
    pub(crate) fn reserved_for_other(&self, lease: &Lease, duid: &[u8]) -> bool {
        self.by_lease
            .get(&(lease.kind, u128::from(lease.addr)))
            .is_some_and(|d| d.as_slice() != duid)
    }

    /// The lease of `kind` reserved for `duid` in subnet `subnet_idx`.
    pub(crate) fn reserved_lease(
        &self,
        config: &Config,
        subnet_idx: usize,
        duid: &[u8],
        kind: LeaseKind,
    ) -> Option<Lease> {
        let list = self.by_duid.get(duid)?;
        let &(_, ri) = list.iter().find(|(si, _)| *si == subnet_idx)?;
        let res = config.subnets.get(subnet_idx)?.reservations.get(ri)?;
        match kind {
            LeaseKind::Address => res.address.map(|addr| Lease {
                kind,
                addr,
                len: 128,
            }),
            LeaseKind::Prefix => res.prefix.map(|p| Lease {
                kind,
                addr: p.addr(),
                len: p.prefix_len(),
            }),
        }
    }
}

/// The pool offsets one engine may allocate dynamically: those ≡ `shard` (mod `shards`).
///
/// An offset is an address's distance from its pool's first address, or a delegated prefix's
/// index within its PD pool. Engines of different shards thus never allocate the same lease
/// (issue 4: the lease database is sharded by client DUID, one engine and store per shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Partition {
    shard: u128,
    shards: u128,
}

impl Partition {
    /// The whole pool (one shard).
    pub(crate) const WHOLE: Self = Self {
        shard: 0,
        shards: 1,
    };

    /// Shard `shard` of `shards` (`shards` 0 counts as 1; `shard` is taken mod `shards`).
    pub(crate) fn new(shard: u32, shards: u32) -> Self {
        let shards = u128::from(shards.max(1));
        Self {
            shard: u128::from(shard) % shards,
            shards,
        }
    }

    /// `(shard, shards)`.
    pub(crate) fn get(self) -> (u32, u32) {
        (
            u32::try_from(self.shard).unwrap_or(0),
            u32::try_from(self.shards).unwrap_or(1),
        )
    }

    /// How many offsets of `0..size` belong to this shard.
    fn class_len(self, size: u128) -> u128 {
        if size <= self.shard {
            0
        } else {
            (size - self.shard - 1) / self.shards + 1
        }
    }

    /// The `j`th offset of this shard (`j < class_len(size)` gives an offset `< size`).
    fn offset(self, j: u128) -> u128 {
        j.saturating_mul(self.shards).saturating_add(self.shard)
    }

    /// `true` if `offset` belongs to this shard.
    fn owns(self, offset: u128) -> bool {
        offset % self.shards == self.shard
    }
}

/// Where an allocation happens: the subnet, its index, the reservations, the time and the
/// engine's share of the pools.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site<'a> {
    pub(crate) config: &'a Config,
    pub(crate) subnet: &'a Subnet,
    pub(crate) subnet_idx: usize,
    pub(crate) reservations: &'a Reservations,
    pub(crate) now: FailoverTime,
    pub(crate) partition: Partition,
}

/// `true` for the statuses a binding keeps while its client may get it back.
pub(crate) fn reusable_by_owner(status: BindingStatus) -> bool {
    matches!(
        status,
        BindingStatus::ACTIVE
            | BindingStatus::RELEASED
            | BindingStatus::EXPIRED
            | BindingStatus::FREE
    )
}

impl Site<'_> {
    /// `true` if `lease` lies in one of the subnet's pools of its kind (prefixes: aligned,
    /// with the pool's delegated length).
    pub(crate) fn in_pools(&self, lease: &Lease) -> bool {
        match lease.kind {
            LeaseKind::Address => {
                lease.len == 128 && self.subnet.pools.iter().any(|p| p.contains(lease.addr))
            }
            LeaseKind::Prefix => {
                u128::from(lease.addr) & !Ipv6Prefix::mask(lease.len) == 0
                    && self
                        .subnet
                        .pd_pools
                        .iter()
                        .any(|p| p.delegated_len == lease.len && p.prefix.contains(lease.addr))
            }
        }
    }

    /// `true` if `lease` lies in a pool at an offset of this engine's shard (see
    /// [`Partition`]).
    fn in_own_class(&self, lease: &Lease) -> bool {
        let offset = match lease.kind {
            LeaseKind::Address => self
                .subnet
                .pools
                .iter()
                .find(|p| p.contains(lease.addr))
                .map(|p| u128::from(lease.addr) - u128::from(p.first)),
            LeaseKind::Prefix => self
                .subnet
                .pd_pools
                .iter()
                .find(|p| p.delegated_len == lease.len && p.prefix.contains(lease.addr))
                .map(|p| {
                    let shift = 128 - u32::from(p.delegated_len.min(128));
                    (u128::from(lease.addr) - u128::from(p.prefix.addr()))
                        .checked_shr(shift)
                        .unwrap_or(0)
                }),
        };
        offset.is_some_and(|o| self.partition.owns(o))
    }

    /// `true` if `lease` may be held by `duid` on this link: in a pool, or its reservation.
    pub(crate) fn appropriate(&self, lease: &Lease, duid: &[u8]) -> bool {
        if self.reservations.reserved_for_other(lease, duid) {
            return false;
        }
        self.in_pools(lease)
            || self
                .reservations
                .reserved_lease(self.config, self.subnet_idx, duid, lease.kind)
                == Some(*lease)
    }

    /// If `lease` is free for `key`'s client: `Some(current binding, if any)`.
    pub(crate) fn available<S: LeaseStore>(
        &self,
        lease: &Lease,
        key: &ClientKey,
        store: &S,
    ) -> Option<Option<Binding>> {
        if self
            .reservations
            .reserved_for_other(lease, key.duid.as_bytes())
        {
            return None;
        }
        if lease.kind == LeaseKind::Address
            && self.subnet.prefix.prefix_len() < 128
            && lease.addr == self.subnet.prefix.addr()
        {
            return None;
        }
        let Some(b) = store.get(lease.kind, lease.addr) else {
            return Some(None);
        };
        let free = match b.status {
            BindingStatus::FREE | BindingStatus::RELEASED | BindingStatus::EXPIRED => true,
            BindingStatus::ACTIVE => b.client() == *key || !b.is_active_at(self.now),
            BindingStatus::ABANDONED => b.has_expired_at(self.now),
            _ => false,
        };
        free.then_some(Some(b))
    }

    fn pool_count(&self, kind: LeaseKind, want_len: Option<u8>) -> usize {
        match kind {
            LeaseKind::Address => self.subnet.pools.len(),
            LeaseKind::Prefix => self
                .subnet
                .pd_pools
                .iter()
                .filter(|p| want_len.is_none_or(|l| p.delegated_len == l))
                .count(),
        }
    }

    /// Size of the `n`th eligible pool and a function from index to lease.
    fn pool(&self, kind: LeaseKind, want_len: Option<u8>, n: usize) -> Option<(u128, PoolRef)> {
        match kind {
            LeaseKind::Address => {
                let p = self.subnet.pools.get(n)?;
                Some((p.len(), PoolRef::Addr(u128::from(p.first))))
            }
            LeaseKind::Prefix => {
                let p = self
                    .subnet
                    .pd_pools
                    .iter()
                    .filter(|p| want_len.is_none_or(|l| p.delegated_len == l))
                    .nth(n)?;
                let shift = 128 - u32::from(p.delegated_len.min(128));
                Some((
                    p.count(),
                    PoolRef::Prefix(u128::from(p.prefix.addr()), shift, p.delegated_len),
                ))
            }
        }
    }

    /// Picks the lease for one IA (see the module docs). `hints` are the client's leases in
    /// the IA; `exclude` the leases already chosen for other IAs of the same message.
    pub(crate) fn choose<S: LeaseStore>(
        &self,
        key: &ClientKey,
        hints: &[Lease],
        exclude: &[Lease],
        store: &S,
        rng: &mut dyn Entropy,
    ) -> Option<(Lease, Option<Binding>)> {
        let duid = key.duid.as_bytes();
        let usable = |l: &Lease| -> Option<Option<Binding>> {
            if exclude.contains(l) {
                return None;
            }
            self.available(l, key, store)
        };
        // 1. The client's own binding(s) for this IA, ACTIVE first (RFC 8415 §18.3.2).
        let mut held = [None::<Binding>; MAX_LEASES_PER_IA];
        let mut n = 0;
        store.for_client(key, &mut |b| {
            if reusable_by_owner(b.status)
                && let Some(slot) = held.get_mut(n)
            {
                *slot = Some(*b);
                n += 1;
            }
        });
        held.sort_by_key(|b| b.map(|b| b.status != BindingStatus::ACTIVE));
        for b in held.iter().flatten() {
            let l = Lease::of(b);
            if self.appropriate(&l, duid)
                && let Some(cur) = usable(&l)
            {
                return Some((l, cur));
            }
        }
        // 2. A reservation for the DUID.
        if let Some(l) =
            self.reservations
                .reserved_lease(self.config, self.subnet_idx, duid, key.kind)
            && let Some(cur) = usable(&l)
        {
            return Some((l, cur));
        }
        // 3. A hint that is in a pool and free (RFC 8415 §18.3.9; RFC 8168 length hints).
        let mut want_len = None;
        for h in hints {
            if h.kind == LeaseKind::Prefix && h.addr.is_unspecified() {
                want_len = want_len.or(Some(h.len));
                continue;
            }
            // Issue 4: a hint at another shard's offset is ignored (that shard may give it).
            if self.in_pools(h)
                && self.in_own_class(h)
                && let Some(cur) = usable(h)
            {
                return Some((*h, cur));
            }
        }
        if want_len.is_some_and(|l| self.pool_count(key.kind, Some(l)) == 0) {
            want_len = None;
        }
        // 4. Random picks, then a bounded probe from a random start, both only among the
        // offsets of this engine's shard.
        let pools = self.pool_count(key.kind, want_len);
        if pools == 0 {
            return None;
        }
        let part = self.partition;
        let rand_pool =
            |rng: &mut dyn Entropy| usize::try_from(rng.next_u64() % pools as u64).unwrap_or(0);
        let rand_index = |rng: &mut dyn Entropy, size: u128| {
            let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            if size == 0 { 0 } else { r % size }
        };
        for _ in 0..RANDOM_TRIES {
            let (size, pool) = self.pool(key.kind, want_len, rand_pool(rng))?;
            let class = part.class_len(size);
            if class == 0 {
                continue;
            }
            let l = pool.nth(part.offset(rand_index(rng, class)));
            if let Some(cur) = usable(&l) {
                return Some((l, cur));
            }
        }
        let mut p = rand_pool(rng);
        let (size, mut pool) = self.pool(key.kind, want_len, p)?;
        let mut class = part.class_len(size);
        let mut j = rand_index(rng, class);
        let mut left = class;
        for _ in 0..PROBE_LIMIT {
            if left == 0 {
                p = (p + 1) % pools;
                let (size, next) = self.pool(key.kind, want_len, p)?;
                pool = next;
                class = part.class_len(size);
                j = 0;
                left = class;
                if left == 0 {
                    continue;
                }
            }
            let l = pool.nth(part.offset(j));
            if let Some(cur) = usable(&l) {
                return Some((l, cur));
            }
            j = if j.saturating_add(1) >= class {
                0
            } else {
                j + 1
            };
            left -= 1;
        }
        None
    }
}

/// A pool seen as an indexable range of leases.
#[derive(Clone, Copy, Debug)]
enum PoolRef {
    /// First address.
    Addr(u128),
    /// Pool prefix, shift of one delegated prefix, delegated length.
    Prefix(u128, u32, u8),
}

impl PoolRef {
    fn nth(self, idx: u128) -> Lease {
        match self {
            Self::Addr(first) => Lease {
                kind: LeaseKind::Address,
                addr: Ipv6Addr::from(first.wrapping_add(idx)),
                len: 128,
            },
            Self::Prefix(base, shift, len) => Lease {
                kind: LeaseKind::Prefix,
                addr: Ipv6Addr::from(base | idx.checked_shl(shift).unwrap_or(0)),
                len,
            },
        }
    }
}
