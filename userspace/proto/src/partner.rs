//! The failover partner's side of the lease database (RFC 8156 §7.5, §7.7): storing the
//! partner's binding updates in this engine's shard and applying the partner's
//! acknowledgements of ours. The decisions are `tandem_lease::sync`'s; this module finds the
//! lease in the configuration, reads and writes the store, and says what changed.
//!
//! Which shard: a client's bindings live in the shard of its DUID ([`crate::duid_hash`]), the
//! one its messages reach. A lease the partner allocated lies in a pool slot of that same shard
//! when both servers run the same number of shards over the same pools (both pick fresh leases
//! from the slots of the client's shard, [`crate::Engine::with_partition`]), so no lease is
//! ever known to two shards. [`Engine::partner_update`] refuses a lease whose slot belongs to
//! another shard ([`PartnerOutcome::OtherShard`], answered ConfigurationConflict): storing it
//! would let that shard hand the lease to another client (`docs/failover.md` D26).

use tandem_lease::sync::{self, AckInfo, Decision, LeaseUpdate, Role};
use tandem_lease::{
    Binding, BindingEvent, BindingFlags, BindingStatus, FailoverTime, LeaseKind, LeaseStore,
    transition,
};

use crate::alloc::Lease;
use crate::engine::{BindingChange, Engine};

/// What became of one lease of the partner's BNDUPD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerOutcome {
    /// Accepted and written to the store (RFC 8156 §7.5.5).
    Accepted,
    /// Rejected, OutdatedBindingInformation: ours is newer (§7.5.4). Our binding is flagged
    /// "partner needs update"; with `send_now` it is in [`Engine::changes`] to go to the
    /// partner at once, otherwise the periodic scan sends it.
    Outdated {
        /// The flag was clear before.
        send_now: bool,
    },
    /// Rejected, AddressInUse (§7.5.4 accept(3): ACTIVE here for another client, we are the
    /// primary).
    AddressInUse,
    /// Rejected, ConfigurationConflict: the lease is in none of our pools or reservations
    /// (§7.5.4 "not part of this endpoint's configuration").
    NotConfigured,
    /// Rejected, ConfigurationConflict: the lease's pool slot belongs to another shard than
    /// the client's (the partners run different shard counts, D26).
    OtherShard,
    /// Rejected, UnspecFail: the store refused the write; nothing was stored.
    StoreError,
}

impl Engine {
    /// Stores one lease of the partner's BNDUPD if RFC 8156 §7.5.4 accepts it, as
    /// `tandem_lease::sync::apply` maps it (§7.5.5). The store's durability (msync) before the
    /// BNDREPLY is the caller's (§7.5.2). [`Engine::changes`] holds our binding when it must
    /// go back to the partner at once (an Outdated rejection, §7.5.4).
    pub fn partner_update<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        role: Role,
        upd: &LeaseUpdate,
        store: &mut S,
    ) -> PartnerOutcome {
        self.changes.clear();
        let lease = Lease {
            kind: upd.kind,
            addr: upd.addr,
            len: upd.prefix_len,
        };
        let Some((subnet, slot_shard)) = self.place(&lease) else {
            self.counters.partner_refused += 1;
            return PartnerOutcome::NotConfigured;
        };
        if let Some(k) = slot_shard
            && k != self.partition.get().0
        {
            self.counters.partner_refused += 1;
            return PartnerOutcome::OtherShard;
        }
        let ours = store.get(upd.kind, upd.addr);
        match sync::decide(ours.as_ref(), upd, role, now) {
            Decision::Accept { .. } => {
                let b = sync::apply(ours.as_ref(), upd, subnet);
                if store.put(&b).is_err() {
                    self.counters.store_errors += 1;
                    return PartnerOutcome::StoreError;
                }
                self.counters.partner_accepted += 1;
                PartnerOutcome::Accepted
            }
            Decision::Outdated { send_now, .. } => {
                self.counters.partner_refused += 1;
                if let Some(mut b) = ours {
                    b.flags.set(BindingFlags::UPDATE_PENDING, true);
                    if store.put(&b).is_err() {
                        self.counters.store_errors += 1;
                    } else if send_now {
                        self.changes.push(BindingChange {
                            binding: b,
                            from: Some(b.status),
                        });
                    }
                }
                PartnerOutcome::Outdated { send_now }
            }
            Decision::AddressInUse => {
                self.counters.partner_refused += 1;
                PartnerOutcome::AddressInUse
            }
        }
    }

    /// The partner accepted our update of a lease (RFC 8156 §7.7): stores the acknowledged
    /// partner lifetime and, when the update is still the binding's state, clears "partner
    /// needs update". An acknowledged EXPIRED, RELEASED or RESET lease then becomes available
    /// again (§7.2 transition 4, then 5 or 6: FREE or FREE-BACKUP by the address's owner,
    /// prefixes to the primary), which is itself a change for the partner
    /// ([`Engine::changes`]) — at once, or, while a partner lifetime it carries plus the MCLT
    /// is not over, when [`Engine::reclaim`] finds it over (`docs/failover.md` D46; in
    /// PARTNER-DOWN the wait of D29). Returns whether the binding was current.
    pub fn partner_ack<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        kind: LeaseKind,
        addr: core::net::Ipv6Addr,
        info: &AckInfo,
        store: &mut S,
    ) -> bool {
        self.changes.clear();
        let Some(mut b) = store.get(kind, addr) else {
            return false;
        };
        let before = b;
        let current = sync::ack(&mut b, info);
        let freeable = matches!(
            b.status,
            BindingStatus::EXPIRED | BindingStatus::RELEASED | BindingStatus::RESET
        );
        if current && freeable && !self.ack_may_free(&before, now) {
            // D46: not yet. The ack cleared the partner lifetime it answers; keep it as the
            // end of the wait (an EXPIRED / RELEASED / RESET BNDUPD never carries one), for
            // reclaim to free the lease when it is over.
            b.partner_lifetime = before.partner_lifetime;
        } else if current && freeable {
            let to = sync::pending_free_status(b.kind, b.addr);
            let from = b.status;
            if transition::apply(&mut b, BindingEvent::Free(to), now, FailoverTime(0)).is_ok() {
                self.changes.push(BindingChange {
                    binding: b,
                    from: Some(from),
                });
            } else {
                self.counters.illegal_transitions += 1;
            }
        }
        if store.put(&b).is_err() {
            self.counters.store_errors += 1;
            self.changes.clear();
            return false;
        }
        self.counters.partner_acked += u64::from(current);
        current
    }

    /// The shard whose pool slot holds the lease (`None`: in no pool, or reserved and so
    /// living with its client): where a binding without a client (a bare delegable prefix,
    /// RFC 8156 §7.4) belongs.
    pub fn lease_shard(&self, kind: LeaseKind, addr: core::net::Ipv6Addr, len: u8) -> Option<u32> {
        self.place(&Lease { kind, addr, len }).and_then(|(_, k)| k)
    }

    /// The subnet of `lease` (in a pool, or reserved), and the shard owning its pool slot
    /// (`None` for a reserved lease outside the pools: it lives with its client).
    fn place(&self, lease: &Lease) -> Option<(u32, Option<u32>)> {
        let (_, shards) = self.partition.get();
        for (i, subnet) in self.config.subnets.iter().enumerate() {
            let idx = u32::try_from(i).ok()?;
            // A reserved lease lives with its client wherever its slot is (as our own
            // engines store reservations, crate::alloc).
            let reserved = subnet.reservations.iter().any(|r| match lease.kind {
                LeaseKind::Address => r.address == Some(lease.addr),
                LeaseKind::Prefix => r
                    .prefix
                    .is_some_and(|p| p.addr() == lease.addr && p.prefix_len() == lease.len),
            });
            if reserved {
                return Some((idx, None));
            }
            if let Some(slot) = crate::alloc::pool_slot(subnet, lease) {
                let k = u32::try_from(slot % u128::from(shards.max(1))).ok()?;
                return Some((idx, Some(k)));
            }
        }
        None
    }
}

/// `true` if `b` still waits for the partner's acknowledgement.
pub fn needs_update(b: &Binding) -> bool {
    b.flags.contains(BindingFlags::UPDATE_PENDING)
}
