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
//! hints are limited to the pool *slots* of the engine's shard: a slot is a pair of adjacent
//! addresses (offsets 2m and 2m + 1 from the pool's first address) or one delegated prefix, and
//! shard k of S owns the slots ≡ k (mod S). Random candidates are drawn directly among the
//! shard's slots and the probe steps by S, so the cost stays bounded. Pairing the addresses
//! keeps the shard partition independent of the failover address parity (RFC 8156 §4.2.1.1:
//! primary odd, secondary even): every slot holds one address of each parity, so every shard
//! has addresses of both servers' halves whatever S and the pool's first address.
//! Reservations and a client's own bindings are not limited.
//!
//! The [`ServingPolicy`] decides the rest: with `new_leases` off only a client's ACTIVE
//! leases are given back; fresh addresses come only from the policy's [`AddressShare`] and
//! fresh prefixes only from its [`PrefixShare`]; and with `reuse_needs_partner_ack` a lease
//! that was another client's (RELEASED, EXPIRED, RESET) is not handed out until the failover
//! partner has acknowledged it (RFC 8156 §4.2.2.1, §7.2 transition 4).
//!
//! A lease is free for a client when nobody else holds it (no binding; FREE or PENDING-FREE;
//! RELEASED, EXPIRED or RESET as above; ACTIVE past its valid lifetime), it is not reserved for
//! another DUID, and (addresses) it is not the Subnet-Router anycast address of the subnet
//! prefix (RFC 4291 §2.6.1). ABANDONED leases are never handed out: [`crate::Engine::reclaim`]
//! resets them when their quarantine ends (RFC 8156 §7.2 transition 10). FREE-BACKUP prefixes
//! belong to the failover secondary ([`PrefixShare`]).

use std::collections::HashMap;
use std::net::Ipv6Addr;

use tandem_config::{Config, Ipv6Prefix, Subnet};
use tandem_lease::{
    AddressShare, Binding, BindingStatus, ClientKey, FailoverTime, LeaseKind, LeaseStore,
    PrefixShare, ServingPolicy,
};

use crate::Entropy;

/// Random candidates tried before probing sequentially.
pub const RANDOM_TRIES: usize = 32;
/// Most candidates probed sequentially after the random tries failed.
pub const PROBE_LIMIT: usize = 256;
/// Most leases of one IA the engine handles: leases a client names in one IA, and bindings it
/// holds for one IA. An IA naming more is answered with a status and not processed
/// (`Counters::ias_over_limit`); a client never holds more (one lease per IA is allocated).
pub const MAX_LEASES_PER_IA: usize = 32;

/// The FREE-BACKUP prefixes a secondary may delegate (RFC 8156 §4.2.2): the primary hands
/// them over one by one, so they are a few among a pool's millions and random picks would not
/// find them. Built by one walk of the store at the first need, then kept up to date by
/// [`crate::Engine::partner_update`]; entries no longer FREE-BACKUP are dropped when met.
#[derive(Clone, Debug, Default)]
pub(crate) struct FreeBackup {
    pub(crate) list: Vec<Lease>,
    pub(crate) built: bool,
}

/// Most FREE-BACKUP candidates looked at for one IA.
const FREE_BACKUP_LOOKS: usize = 256;

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

/// The pool slots one engine may allocate dynamically: those ≡ `shard` (mod `shards`).
///
/// A slot is a pair of addresses (offsets 2m, 2m + 1 from the pool's first address: slot m)
/// or one delegated prefix (its index within its PD pool). Engines of different shards thus
/// never allocate the same lease (issue 4: the lease database is sharded by client DUID, one
/// engine and store per shard), and each slot holds addresses of both parities (module docs).
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

    /// How many slots of `0..size` belong to this shard.
    pub(crate) fn class_len(self, size: u128) -> u128 {
        if size <= self.shard {
            0
        } else {
            (size - self.shard - 1) / self.shards + 1
        }
    }

    /// The `j`th slot of this shard (`j < class_len(size)` gives a slot `< size`).
    pub(crate) fn offset(self, j: u128) -> u128 {
        j.saturating_mul(self.shards).saturating_add(self.shard)
    }

    /// `true` if `slot` belongs to this shard.
    fn owns(self, slot: u128) -> bool {
        slot % self.shards == self.shard
    }
}

/// Where an allocation happens: the subnet, its index, the reservations, the time, the
/// engine's shard of the pools and the serving policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site<'a> {
    pub(crate) config: &'a Config,
    pub(crate) subnet: &'a Subnet,
    pub(crate) subnet_idx: usize,
    pub(crate) reservations: &'a Reservations,
    pub(crate) now: FailoverTime,
    pub(crate) partition: Partition,
    pub(crate) policy: ServingPolicy,
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

    /// `true` if `lease` lies in a pool at a slot of this engine's shard (see
    /// [`Partition`]).
    fn in_own_class(&self, lease: &Lease) -> bool {
        pool_slot(self.subnet, lease).is_some_and(|o| self.partition.owns(o))
    }
}

/// The pool slot of `lease` in `subnet` (module docs: an address pair, or one delegated
/// prefix), `None` outside its pools.
pub(crate) fn pool_slot(subnet: &Subnet, lease: &Lease) -> Option<u128> {
    match lease.kind {
        LeaseKind::Address => subnet
            .pools
            .iter()
            .find(|p| p.contains(lease.addr))
            .map(|p| (u128::from(lease.addr) - u128::from(p.first)) >> 1),
        LeaseKind::Prefix => subnet
            .pd_pools
            .iter()
            .find(|p| {
                p.delegated_len == lease.len
                    && p.prefix.contains(lease.addr)
                    && u128::from(lease.addr) & !Ipv6Prefix::mask(lease.len) == 0
            })
            .map(|p| {
                let shift = 128 - u32::from(p.delegated_len.min(128));
                (u128::from(lease.addr) - u128::from(p.prefix.addr()))
                    .checked_shr(shift)
                    .unwrap_or(0)
            }),
    }
}

impl Site<'_> {
    /// `true` if the policy lets this server newly allocate `lease` with current binding `b`
    /// (RFC 8156 §4.2.1.1 address parity, §4.2.2 prefix ownership).
    fn in_share(&self, lease: &Lease, b: Option<&Binding>) -> bool {
        match lease.kind {
            LeaseKind::Address => self.policy.addresses.owns(u128::from(lease.addr)),
            LeaseKind::Prefix => {
                let backup = b.is_some_and(|b| b.status == BindingStatus::FREE_BACKUP);
                match self.policy.prefixes {
                    PrefixShare::All => true,
                    PrefixShare::Free => !backup,
                    PrefixShare::FreeBackup => backup,
                }
            }
        }
    }

    /// `true` if the client of `b` may have it back once its lifetime is over (EXPIRED,
    /// RELEASED, or ACTIVE past its valid lifetime; RFC 8415 §18.3.2 "the server SHOULD assign
    /// the same addresses"): always standalone; under a failover policy only a lease of our own
    /// share (`docs/failover.md` D44). The partner owns the others (§4.2.1.1, §4.2.2): once we
    /// acked its EXPIRED / RELEASED (or in PARTNER-DOWN after the MCLT) it may free the lease
    /// and give it to another client, so handing it back here, unknown to the partner while
    /// the link is down, would give one lease to two clients.
    pub(crate) fn may_take_back(&self, b: &Binding) -> bool {
        (b.status == BindingStatus::ACTIVE && b.is_active_at(self.now))
            || !self.policy.reuse_needs_partner_ack
            || self.in_share(&Lease::of(b), Some(b))
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
        let b = store.get(lease.kind, lease.addr);
        let Some(b) = b else {
            return (self.policy.new_leases && self.in_share(lease, None)).then_some(None);
        };
        let own = b.client() == *key && !b.duid.is_empty() && self.may_take_back(&b);
        // A lease that was someone else's: reusable once acknowledged (or standalone).
        let other_ok = self.policy.new_leases
            && !self.policy.reuse_needs_partner_ack
            && self.in_share(lease, Some(&b));
        let free = match b.status {
            BindingStatus::ACTIVE if b.is_active_at(self.now) => own,
            // Past its valid lifetime, not yet reclaimed: as EXPIRED.
            BindingStatus::ACTIVE | BindingStatus::EXPIRED | BindingStatus::RELEASED => {
                (own && self.policy.new_leases) || other_ok
            }
            BindingStatus::RESET => other_ok,
            BindingStatus::FREE | BindingStatus::PENDING_FREE | BindingStatus::FREE_BACKUP => {
                self.policy.new_leases && self.in_share(lease, Some(&b))
            }
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

    /// The `n`th eligible pool.
    fn pool(&self, kind: LeaseKind, want_len: Option<u8>, n: usize) -> Option<PoolRef> {
        match kind {
            LeaseKind::Address => {
                let p = self.subnet.pools.get(n)?;
                Some(PoolRef::Addr {
                    first: u128::from(p.first),
                    size: p.len(),
                })
            }
            LeaseKind::Prefix => {
                let p = self
                    .subnet
                    .pd_pools
                    .iter()
                    .filter(|p| want_len.is_none_or(|l| p.delegated_len == l))
                    .nth(n)?;
                let shift = 128 - u32::from(p.delegated_len.min(128));
                Some(PoolRef::Prefix {
                    base: u128::from(p.prefix.addr()),
                    shift,
                    len: p.delegated_len,
                    count: p.count(),
                })
            }
        }
    }

    /// Picks the lease for one IA (see the module docs). `hints` are the client's leases in
    /// the IA; `exclude` the leases already chosen for other IAs of the same message; `held`
    /// is scratch space.
    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's scratch and caches, passed apart to keep borrows disjoint"
    )]
    pub(crate) fn choose<S: LeaseStore>(
        &self,
        key: &ClientKey,
        hints: &[Lease],
        exclude: &[Lease],
        store: &S,
        rng: &mut dyn Entropy,
        held: &mut Vec<Binding>,
        free_backup: &mut FreeBackup,
    ) -> Option<(Lease, Option<Binding>)> {
        let duid = key.duid.as_bytes();
        let usable = |l: &Lease| -> Option<Option<Binding>> {
            if exclude.contains(l) {
                return None;
            }
            self.available(l, key, store)
        };
        // 1. The client's own binding(s) for this IA, ACTIVE first (RFC 8415 §18.3.2).
        held.clear();
        store.for_client(key, &mut |b| {
            if reusable_by_owner(b.status) && held.len() < MAX_LEASES_PER_IA {
                held.push(*b);
            }
        });
        held.sort_by_key(|b| b.status != BindingStatus::ACTIVE);
        for b in held.iter() {
            let l = Lease::of(b);
            if self.appropriate(&l, duid)
                && let Some(cur) = usable(&l)
            {
                return Some((l, cur));
            }
        }
        if !self.policy.new_leases {
            // RFC 8156 §8.7.1, §8.8.1: no lease beyond the client's own.
            return None;
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
            // Issue 4: a hint at another shard's slot is ignored (that shard may give it).
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
        // 3b. A secondary delegates only the FREE-BACKUP prefixes the primary gave it
        // (RFC 8156 §4.2.2): look among those, not at random in the pools.
        if key.kind == LeaseKind::Prefix && self.policy.prefixes == PrefixShare::FreeBackup {
            if !free_backup.built {
                let mut cursor = Some(0);
                while let Some(c) = cursor {
                    cursor = store.scan(c, 1024, &mut |b| {
                        if b.kind == LeaseKind::Prefix && b.status == BindingStatus::FREE_BACKUP {
                            free_backup.list.push(Lease::of(b));
                        }
                    });
                }
                free_backup.built = true;
            }
            let mut i = free_backup.list.len();
            let mut looked = 0;
            while i > 0 && looked < FREE_BACKUP_LOOKS {
                i -= 1;
                looked += 1;
                let Some(l) = free_backup.list.get(i).copied() else {
                    break;
                };
                let still = store
                    .get(l.kind, l.addr)
                    .is_some_and(|b| b.status == BindingStatus::FREE_BACKUP);
                if !still {
                    free_backup.list.swap_remove(i);
                    continue;
                }
                if want_len.is_some_and(|w| w != l.len) || !self.in_pools(&l) {
                    continue;
                }
                if let Some(cur) = usable(&l) {
                    return Some((l, cur));
                }
            }
            return None;
        }
        // 4. Random picks, then a bounded probe from a random start, both only among the
        // slots of this engine's shard and the addresses of the policy's share.
        let pools = self.pool_count(key.kind, want_len);
        if pools == 0 {
            return None;
        }
        let part = self.partition;
        let share = self.policy.addresses;
        let rand_pool =
            |rng: &mut dyn Entropy| usize::try_from(rng.next_u64() % pools as u64).unwrap_or(0);
        let rand_index = |rng: &mut dyn Entropy, size: u128| {
            let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            if size == 0 { 0 } else { r % size }
        };
        let mut tries = 0;
        while tries < RANDOM_TRIES {
            let pool = self.pool(key.kind, want_len, rand_pool(rng))?;
            let class = part.class_len(pool.slots());
            if class == 0 {
                tries += 1;
                continue;
            }
            let flip = rng.next_u64() & 1 == 1;
            for l in pool.candidates(part.offset(rand_index(rng, class)), share, flip) {
                tries += 1;
                if let Some(cur) = usable(&l) {
                    return Some((l, cur));
                }
            }
        }
        let mut p = rand_pool(rng);
        let mut pool = self.pool(key.kind, want_len, p)?;
        let mut class = part.class_len(pool.slots());
        let mut j = rand_index(rng, class);
        let mut left = class;
        let mut probed = 0;
        let mut skipped_pools = 0;
        while probed < PROBE_LIMIT {
            if left == 0 {
                skipped_pools += 1;
                if skipped_pools > pools {
                    return None;
                }
                p = (p + 1) % pools;
                pool = self.pool(key.kind, want_len, p)?;
                class = part.class_len(pool.slots());
                j = 0;
                left = class;
                continue;
            }
            for l in pool.candidates(part.offset(j), share, false) {
                probed += 1;
                if let Some(cur) = usable(&l) {
                    return Some((l, cur));
                }
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

/// A pool seen as an indexable range of slots (module docs: address pairs, or prefixes).
#[derive(Clone, Copy, Debug)]
enum PoolRef {
    /// First address and number of addresses.
    Addr { first: u128, size: u128 },
    /// Pool prefix, shift of one delegated prefix, delegated length, number of prefixes.
    Prefix {
        base: u128,
        shift: u32,
        len: u8,
        count: u128,
    },
}

impl PoolRef {
    /// Number of slots.
    const fn slots(self) -> u128 {
        match self {
            Self::Addr { size, .. } => size / 2 + size % 2,
            Self::Prefix { count, .. } => count,
        }
    }

    /// The leases of slot `slot` this server may hand out: for addresses the one or two of
    /// the pair (inside the pool) whose parity is in `share`, in random order (`flip`); for
    /// prefixes the prefix itself.
    fn candidates(
        self,
        slot: u128,
        share: AddressShare,
        flip: bool,
    ) -> impl Iterator<Item = Lease> {
        let mut out = [None, None];
        match self {
            Self::Addr { first, size } => {
                let order = if flip { [1u128, 0] } else { [0, 1] };
                for (o, b) in out.iter_mut().zip(order) {
                    let offset = slot.saturating_mul(2).saturating_add(b);
                    let addr = first.wrapping_add(offset);
                    if offset < size && share.owns(addr) {
                        *o = Some(Lease {
                            kind: LeaseKind::Address,
                            addr: Ipv6Addr::from(addr),
                            len: 128,
                        });
                    }
                }
            }
            Self::Prefix {
                base,
                shift,
                len,
                count,
            } => {
                if slot < count {
                    out[0] = Some(Lease {
                        kind: LeaseKind::Prefix,
                        addr: Ipv6Addr::from(base | slot.checked_shl(shift).unwrap_or(0)),
                        len,
                    });
                }
            }
        }
        out.into_iter().flatten()
    }
}
