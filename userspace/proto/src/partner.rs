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
    BindingEvent, BindingFlags, BindingStatus, FailoverTime, LeaseKind, LeaseStore, transition,
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
                if b.kind == LeaseKind::Prefix
                    && b.status == BindingStatus::FREE_BACKUP
                    && self.work.free_backup.built
                {
                    self.work.free_backup.list.push(lease);
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
    /// PARTNER-DOWN the wait of D29). Returns whether the binding was current. An
    /// acknowledgement that leaves the stored binding as it was (a resend of what the partner
    /// had acknowledged already, e.g. every binding of an UPDREQALL stream, §8.5.2) writes
    /// nothing.
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
        if b != before && store.put(&b).is_err() {
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

/// What [`Engine::rebalance_prefixes`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebalanceReport {
    /// Prefixes handed to the secondary (FREE → FREE-BACKUP).
    pub given: usize,
    /// Prefixes taken back (FREE-BACKUP → FREE).
    pub taken_back: usize,
    /// Bindings looked at to count the pools.
    pub visited: usize,
}

impl Engine {
    /// RFC 8156 §4.2.2 proportional allocation, on the primary: brings the number of this
    /// shard's delegable prefixes held by the secondary (FREE-BACKUP) in each PD pool to
    /// `share_percent` % of the shard's prefixes there that could be delegated (not leased),
    /// at most `cap_per_pool` per shard, with hysteresis (nothing moves while it is within a
    /// quarter of the target, at least one prefix), and never filling a bounded store past
    /// three quarters of its capacity (the rest stays for clients). Fresh prefixes become FREE-BACKUP
    /// (§7.2 transition 7), surplus ones FREE again (the secondary rejects that for a prefix it
    /// already delegated, §4.2.2, Figure 4 time(1)). Every moved prefix is in
    /// [`Engine::changes`], to go to the secondary as a bare OPTION_IAPREFIX BNDUPD (§7.4).
    /// The cost is one walk of the store (to count) plus the prefixes moved; call it when the
    /// secondary asks (POOLREQ, §5.3.3) and now and then (docs/failover.md D30).
    pub fn rebalance_prefixes<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        share_percent: u32,
        cap_per_pool: u64,
        store: &mut S,
    ) -> RebalanceReport {
        self.changes.clear();
        let mut report = RebalanceReport::default();
        // Per (subnet, PD pool): prefixes in use (not FREE / FREE-BACKUP), and the
        // FREE-BACKUP ones, among this shard's slots.
        let pools: Vec<(usize, usize)> = self
            .config
            .subnets
            .iter()
            .enumerate()
            .flat_map(|(si, s)| (0..s.pd_pools.len()).map(move |pi| (si, pi)))
            .collect();
        if pools.is_empty() {
            return report;
        }
        let mut used = vec![0u128; pools.len()];
        let mut backup: Vec<Vec<tandem_lease::Binding>> = vec![Vec::new(); pools.len()];
        let (shard, _) = self.partition.get();
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            cursor = store.scan(c, 1024, &mut |b| {
                report.visited += 1;
                if b.kind != LeaseKind::Prefix {
                    return;
                }
                let lease = Lease::of(b);
                let Some(i) = pools.iter().position(|&(si, pi)| {
                    self.config.subnets.get(si).is_some_and(|s| {
                        s.pd_pools.get(pi).is_some_and(|p| {
                            p.delegated_len == lease.len && p.prefix.contains(lease.addr)
                        })
                    })
                }) else {
                    return;
                };
                let in_shard = self.place(&lease).and_then(|(_, k)| k) == Some(shard);
                if !in_shard {
                    return;
                }
                match b.status {
                    BindingStatus::FREE_BACKUP => {
                        if let Some(v) = backup.get_mut(i) {
                            v.push(*b);
                        }
                    }
                    BindingStatus::FREE | BindingStatus::PENDING_FREE => {}
                    _ => {
                        if let Some(u) = used.get_mut(i) {
                            *u += 1;
                        }
                    }
                }
            });
        }
        for (i, &(si, pi)) in pools.iter().enumerate() {
            let Some(pool) = self
                .config
                .subnets
                .get(si)
                .and_then(|s| s.pd_pools.get(pi))
                .cloned()
            else {
                continue;
            };
            let slots = self.partition.class_len(pool.count());
            let available = slots.saturating_sub(used.get(i).copied().unwrap_or(0));
            let target = (available.saturating_mul(u128::from(share_percent)) / 100)
                .min(u128::from(cap_per_pool));
            let held = backup.get(i).map_or(0, Vec::len) as u128;
            let slack = (target / 4).max(1);
            let subnet = u32::try_from(si).unwrap_or(u32::MAX);
            if held + slack <= target {
                report.given += self.give_prefixes(now, &pool, subnet, target - held, slots, store);
            } else if held > target + slack {
                let surplus = usize::try_from(held - target).unwrap_or(usize::MAX);
                for mut b in backup.get(i).into_iter().flatten().copied().take(surplus) {
                    let from = b.status;
                    if transition::apply(&mut b, BindingEvent::Rebalance, now, FailoverTime(0))
                        .is_ok()
                        && store.put(&b).is_ok()
                    {
                        self.changes.push(BindingChange {
                            binding: b,
                            from: Some(from),
                        });
                        report.taken_back += 1;
                    }
                }
            }
        }
        report
    }

    /// Makes up to `want` available prefixes of `pool` in this shard's slots FREE-BACKUP,
    /// from the start of the pool (the primary allocates randomly, so the low slots are as
    /// good as any). Visits at most `slots` candidates.
    fn give_prefixes<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        pool: &tandem_config::PdPool,
        subnet: u32,
        want: u128,
        slots: u128,
        store: &mut S,
    ) -> usize {
        // D30: a bounded store keeps a quarter of its room for clients.
        let room = store
            .capacity()
            .map_or(usize::MAX, |c| (c / 4 * 3).saturating_sub(store.len()));
        let want = want.min(room as u128);
        let mut given = 0usize;
        let shift = 128 - u32::from(pool.delegated_len.min(128));
        let base = u128::from(pool.prefix.addr());
        let mut j = 0u128;
        while (given as u128) < want && j < slots {
            let slot = self.partition.offset(j);
            j += 1;
            let Some(addr) = slot.checked_shl(shift).map(|o| base.wrapping_add(o)) else {
                break;
            };
            let addr = core::net::Ipv6Addr::from(addr);
            let lease = Lease {
                kind: LeaseKind::Prefix,
                addr,
                len: pool.delegated_len,
            };
            if self.reservations.reserved_for_other(&lease, &[]) {
                continue;
            }
            let mut b = match store.get(LeaseKind::Prefix, addr) {
                None => {
                    tandem_lease::Binding::free(LeaseKind::Prefix, addr, pool.delegated_len, subnet)
                }
                Some(b) if b.status == BindingStatus::FREE => b,
                Some(_) => continue,
            };
            let from = store.get(LeaseKind::Prefix, addr).map(|b| b.status);
            if transition::apply(&mut b, BindingEvent::Rebalance, now, FailoverTime(0)).is_err() {
                self.counters.illegal_transitions += 1;
                continue;
            }
            if store.put(&b).is_err() {
                self.counters.store_errors += 1;
                break;
            }
            self.changes.push(BindingChange { binding: b, from });
            given += 1;
        }
        given
    }
}
