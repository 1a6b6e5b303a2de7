//! The engine: validation (RFC 8415 §16), message processing (§18.3), relays (§19) and
//! incremental expiry.

use core::ops::Range;
use std::net::Ipv6Addr;

use tandem_config::{Config, INFINITY, Subnet};
use tandem_lease::transition::{self, Applied, BindingEvent, FreeStatus};
use tandem_lease::{
    Binding, BindingStatus, ClientKey, DuidBuf, FailoverTime, LeaseKind, LeaseStore,
    MAX_FINITE_LIFETIME, Responsiveness, ServingPolicy,
};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::CodeList;
use tandem_wire::dhcp::{MessageType, StatusCode};
use tandem_wire::option::OptionCode;

use crate::Entropy;
use crate::alloc::{Lease, MAX_LEASES_PER_IA, Partition, Reservations, Site};
use crate::counters::{Counters, DropReason};
use crate::inbound::{Inbound, Parsed};
use crate::reply::{self, IaOut, LeaseOut, ReplyParts, Status};

/// How long a declined address stays ABANDONED before [`Engine::reclaim`] resets it
/// (RFC 8415 §18.3.8 leaves the period to the server), in seconds.
pub const DEFAULT_DECLINE_QUARANTINE: u32 = 86_400;

/// Most IA_NA + IA_PD options of one message the engine processes. A CPE asks for a handful
/// (one IA_NA, one IA_PD per downstream need); further IAs come back in the reply with a
/// status saying they were not processed ([`Counters::ias_over_limit`]), never silently left
/// out. The limit bounds the store work one datagram can cause.
pub const MAX_IAS: usize = 64;

/// Options that may appear at most once at the top level of a client message (RFC 8415 §21).
const SINGLETONS: [OptionCode; 7] = [
    OptionCode::CLIENTID,
    OptionCode::SERVERID,
    OptionCode::ORO,
    OptionCode::ELAPSED_TIME,
    OptionCode::RAPID_COMMIT,
    OptionCode::PREFERENCE,
    OptionCode::RECONF_ACCEPT,
];

/// Status of an IA the engine did not process because the message had too many IAs or the IA
/// named too many leases (solicit/request: as if nothing were available).
const OVER_LIMIT_TEXT: &str =
    "not processed: more than 64 IAs in the message or 32 leases in the IA";

/// Where a datagram came from.
#[derive(Clone, Copy, Debug)]
pub struct RxMeta<'a> {
    /// Name of the receiving interface (selects the subnet of direct clients).
    pub interface: &'a str,
    /// Source address (the client or the relay agent); the reply goes there.
    pub src: Ipv6Addr,
    /// Destination address (ff02::1:2 or a unicast address; both are accepted, RFC 9915).
    pub dst: Ipv6Addr,
}

/// What to do with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the first `len` bytes of the output buffer to the source address and port of the
    /// datagram.
    Reply {
        /// Bytes written.
        len: usize,
    },
    /// Send nothing.
    Drop(DropReason),
}

/// What one [`Engine::reclaim`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Bindings looked at.
    pub visited: usize,
    /// ACTIVE bindings past their valid lifetime, now EXPIRED.
    pub expired: usize,
    /// ABANDONED bindings past their quarantine, now RESET (and FREE where no partner must
    /// acknowledge it first).
    pub unquarantined: usize,
    /// RELEASED, EXPIRED or RESET bindings made FREE / FREE-BACKUP after the PARTNER-DOWN
    /// wait (`ServingPolicy::reuse_wait`), or, acknowledged, after the partner lifetimes they
    /// carry (`docs/failover.md` D46).
    pub freed: usize,
    /// Writes that failed.
    pub store_errors: usize,
    /// `true` if this call reached the end of the store (the next one starts over).
    pub wrapped: bool,
}

/// One binding change the engine committed to the store: the binding as written and its
/// status before (`None`: the lease had no record). Every change a failover partner must hear
/// about (RFC 8156 §4.3, §7.2) comes out of [`Engine::changes`] after the call that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingChange {
    /// The binding as stored.
    pub binding: Binding,
    /// Its status before the change.
    pub from: Option<BindingStatus>,
}

/// The DHCPv6 server engine (see the crate docs).
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    server_duid: Vec<u8>,
    decline_quarantine: u32,
    /// Encoded domain search list per subnet.
    domain_lists: Vec<Vec<u8>>,
    pub(crate) reservations: Reservations,
    reclaim_cursor: u64,
    pub(crate) counters: Counters,
    pub(crate) partition: Partition,
    policy: ServingPolicy,
    /// What the last `handle` / `reclaim` committed.
    pub(crate) changes: Vec<BindingChange>,
    pub(crate) work: Work,
    /// When this engine first ran [`Engine::reclaim`] under a policy with a `reuse_wait`
    /// (PARTNER-DOWN as it saw it, never earlier than the real entry); reset when the
    /// policy has none (docs/failover.md D29).
    reuse_wait_since: Option<FailoverTime>,
}

/// Per-request scratch space, kept between requests so the hot path does not allocate once
/// it has seen its largest request.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// The request's IAs, then (after processing) the reply's.
    ias: Vec<IaIn>,
    /// Leases named by the client; `IaIn::named` indexes it.
    named: Vec<Lease>,
    /// The reply's IAs; `IaOut::leases` indexes `leases`.
    out: Vec<IaOut>,
    leases: Vec<LeaseOut>,
    /// For each entry of `leases`, the commit it waits for (Request, Renew, ...).
    pending: Vec<Option<Pending>>,
    /// Bindings of one IA (scratch).
    held: Vec<Binding>,
    /// Leases already chosen in this message (scratch).
    chosen: Vec<Lease>,
    /// The FREE-BACKUP prefixes this engine may delegate as a secondary.
    pub(crate) free_backup: crate::alloc::FreeBackup,
}

/// How [`Ctx::assign`] treats an IA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Assign {
    /// Solicit: offer, commit nothing (RFC 8415 §18.3.9).
    Advertise,
    /// Rapid Commit Solicit, Rebind creating a binding: commit (§18.3.1, §18.3.5).
    Commit,
    /// Request: commit; addresses the client names off the link get NotOnLink (§18.3.2).
    Request,
}

/// A lease to commit once the reply's T1/T2 are known.
#[derive(Clone, Copy, Debug)]
struct Pending {
    key: ClientKey,
    cur: Option<Binding>,
}

/// One IA of a request.
#[derive(Clone, Debug)]
struct IaIn {
    kind: LeaseKind,
    iaid: u32,
    named: Range<usize>,
    /// More than [`MAX_LEASES_PER_IA`] named leases, or past [`MAX_IAS`]: not processed.
    over_limit: bool,
}

/// A validated client message.
#[derive(Debug)]
struct Request<'m> {
    client_id: Option<&'m [u8]>,
    duid: DuidBuf,
    oro: Option<CodeList<'m>>,
    /// Whether the Server Identifier is ours (`None`: no Server Identifier).
    ours: Option<bool>,
}

impl Request<'_> {
    fn key(&self, ia: &IaIn) -> ClientKey {
        ClientKey {
            duid: self.duid,
            iaid: ia.iaid,
            kind: ia.kind,
        }
    }
}

/// The status an IA gets when nothing can be assigned (RFC 8415 §18.3.2, §18.3.9).
const fn unavailable(kind: LeaseKind) -> Status {
    Status::of(match kind {
        LeaseKind::Address => StatusCode::NO_ADDRS_AVAIL,
        LeaseKind::Prefix => StatusCode::NO_PREFIX_AVAIL,
    })
}

/// The lifetimes a lease gets (RFC 8415 §7.7, §21.6; RFC 8156 §4.4): the subnet's, capped
/// under a failover policy so the client's expiry is at most max(now, acked partner lifetime)
/// + MCLT, and preferred never above valid.
///
/// A finite lifetime is kept within `1..=`[`MAX_FINITE_LIFETIME`] (configuration refuses
/// others; an engine built from an unchecked `Config` must still never tell a client a lease
/// outlives the server's record of it, nor record one born expired).
fn grant(
    subnet: &Subnet,
    cur: Option<&Binding>,
    now: FailoverTime,
    policy: &ServingPolicy,
) -> (u32, u32, u32) {
    let finite = |v: u32| {
        if v == INFINITY {
            v
        } else {
            v.clamp(1, MAX_FINITE_LIFETIME)
        }
    };
    let desired = finite(subnet.valid_lifetime);
    let valid = match policy.mclt {
        None => desired,
        Some(mclt) => {
            let acked_ahead = cur
                .map(|b| b.acked_partner_lifetime)
                .filter(|t| t.0 != 0)
                .map_or(0, |t| t.wrapping_sub(now).max(0).unsigned_abs());
            desired.min(acked_ahead.saturating_add(mclt).min(MAX_FINITE_LIFETIME))
        }
    };
    let preferred = if subnet.preferred_lifetime == INFINITY {
        INFINITY
    } else {
        subnet.preferred_lifetime.min(MAX_FINITE_LIFETIME)
    };
    (preferred.min(valid), valid, desired)
}

/// The partner lifetime to send for a lease granted `valid` seconds of a `desired` lifetime at
/// `now` (RFC 8156 §4.4): `now + desired + valid / 2`, the lead of the RFC's worked example
/// (T1 = half the lifetime), so that once the partner has acked it, a renewal at T1 may get
/// the full desired lifetime under the MCLT cap (`max(now, acked) + MCLT`). `0` (no timeout)
/// for an infinite lease. Never earlier than the client's own expiry.
fn partner_lifetime(now: FailoverTime, valid: u32, desired: u32) -> FailoverTime {
    if valid == INFINITY {
        return FailoverTime(0);
    }
    let lead = desired.max(valid).saturating_add(valid / 2);
    now.expiry_after(lead.min(MAX_FINITE_LIFETIME))
}

/// `true` once the PARTNER-DOWN wait of a RELEASED, EXPIRED or RESET binding `b` is over
/// (RFC 8156 §8.4.1, §4.2.2.1, §7.2 (4); docs/failover.md D29): `mclt` seconds after the latest
/// of its status's start, its end, the partner lifetime it sent, the one the partner acked,
/// the expiration time it acked to the partner, and `since` (the engine's entry into
/// PARTNER-DOWN). Times are compared the RFC 8156 §3 way; an unset (0) one is skipped.
pub(crate) fn reuse_wait_over(
    b: &Binding,
    since: FailoverTime,
    mclt: u32,
    now: FailoverTime,
) -> bool {
    if !matches!(
        b.status,
        BindingStatus::RELEASED | BindingStatus::EXPIRED | BindingStatus::RESET
    ) {
        return false;
    }
    let latest = [
        b.start_time_of_state,
        b.state_expiration_time,
        b.partner_lifetime,
        b.acked_partner_lifetime,
        b.expiration_time,
    ]
    .into_iter()
    .filter(|t| t.0 != 0)
    .fold(since, |a, t| if t.cmp_wrapping(a).is_gt() { t } else { a });
    now.cmp_wrapping(latest.wrapping_add(mclt)).is_ge()
}

/// `true` once an EXPIRED, RELEASED or RESET binding that the partner acknowledged (or that
/// the partner told us of, so it is not pending) may become available outside PARTNER-DOWN
/// (`docs/failover.md` D46): MCLT after the partner lifetimes it carries — the one we acked to
/// the partner (expiration-time) and the one we sent or were told (partner-lifetime), unset
/// ones skipped. A client of the server that got such a lifetime acked may hold the lease
/// until it plus the MCLT (RFC 8156 §4.4); the partner's ack says its client let go only if
/// the partner still knows what it granted, which a partner that lost its stable storage does
/// not (§8.5: it acks everything of an UPDREQALL).
fn acked_and_waited(b: &Binding, mclt: u32, now: FailoverTime) -> bool {
    matches!(
        b.status,
        BindingStatus::RELEASED | BindingStatus::EXPIRED | BindingStatus::RESET
    ) && !b.flags.contains(tandem_lease::BindingFlags::UPDATE_PENDING)
        && (b.expiration_time.0 != 0 || b.partner_lifetime.0 != 0)
        && ack_wait_over(b, mclt, now)
}

/// The wait of [`acked_and_waited`] (D46) alone.
pub(crate) fn ack_wait_over(b: &Binding, mclt: u32, now: FailoverTime) -> bool {
    [b.expiration_time, b.partner_lifetime]
        .into_iter()
        .filter(|t| t.0 != 0)
        .reduce(|a, t| if t.cmp_wrapping(a).is_gt() { t } else { a })
        .is_none_or(|latest| now.cmp_wrapping(latest.wrapping_add(mclt)).is_ge())
}

/// T1 and T2 for every IA of a reply (RFC 8415 §18.3.2, §18.3.4: the same in all IAs, from
/// all the client's bindings in the reply; §21.4: 0.5 and 0.8 × the shortest preferred
/// lifetime): the configured values, lowered to 0.5 / 0.8 × the shortest preferred lifetime
/// granted when that is shorter than configured (e.g. capped by the MCLT), so the client
/// always renews before its leases expire. `None` when nothing is granted.
fn timers(subnet: &Subnet, shortest_preferred: Option<u32>) -> Option<(u32, u32)> {
    let p = shortest_preferred?;
    if p == INFINITY {
        return Some((subnet.t1, subnet.t2));
    }
    let p64 = u64::from(p);
    let half = u32::try_from(p64 / 2).unwrap_or(u32::MAX);
    let four_fifths = u32::try_from(p64 * 4 / 5).unwrap_or(u32::MAX);
    let t2 = subnet.t2.min(four_fifths);
    let t1 = subnet.t1.min(half).min(t2);
    Some((t1, t2))
}

/// Per-request state the handlers share.
struct Ctx<'a> {
    site: Option<Site<'a>>,
    counters: &'a mut Counters,
    changes: &'a mut Vec<BindingChange>,
    now: FailoverTime,
    policy: ServingPolicy,
    decline_quarantine: u32,
}

impl Ctx<'_> {
    /// Writes `b` after a successful transition and records the change.
    fn put<S: LeaseStore>(
        &mut self,
        b: &Binding,
        from: Option<BindingStatus>,
        store: &mut S,
    ) -> bool {
        match store.put(b) {
            Ok(()) => {
                self.changes.push(BindingChange { binding: *b, from });
                true
            }
            Err(_) => {
                self.counters.store_errors += 1;
                false
            }
        }
    }

    /// Leases `lease` ACTIVE to `key` with the lifetimes and timers of the reply (RFC 8415
    /// §18.3.2: commit before replying). Keeps the RFC 8156 history of an existing binding.
    fn commit<S: LeaseStore>(
        &mut self,
        subnet_idx: usize,
        p: &Pending,
        out: &LeaseOut,
        timers: (u32, u32),
        store: &mut S,
    ) -> bool {
        let lease = out.lease;
        let subnet = u32::try_from(subnet_idx).unwrap_or(u32::MAX);
        let from = p.cur.map(|b| b.status);
        let mut b = p
            .cur
            .unwrap_or_else(|| Binding::free(lease.kind, lease.addr, lease.len, subnet));
        if b.status == BindingStatus::ACTIVE && !b.is_active_at(self.now) {
            // Past its lifetime but not reclaimed yet: it expires first (RFC 8156 §7.2 (8)).
            if transition::apply(&mut b, BindingEvent::Expire, self.now, FailoverTime(0)).is_err() {
                self.counters.illegal_transitions += 1;
                return false;
            }
        }
        let mut until = self.now.expiry_after(out.valid);
        if b.status == BindingStatus::ACTIVE
            && b.duid == p.key.duid
            && until.0 != 0
            && b.state_expiration_time.cmp_wrapping(until).is_gt()
        {
            // docs/failover.md D48: the record never ends a lease before an end this server
            // already gave the same client (a renewal capped by the MCLT after a grant in
            // PARTNER-DOWN): the client may not get this Reply, or may take another server's,
            // and keeps the longer one (RFC 8156 §4.4: "the lease expiration time known to a
            // DHCP client").
            until = b.state_expiration_time;
        }
        if transition::apply(&mut b, BindingEvent::Allocate, self.now, until).is_err() {
            self.counters.illegal_transitions += 1;
            return false;
        }
        b.kind = lease.kind;
        b.addr = lease.addr;
        b.prefix_len = lease.len;
        b.duid = p.key.duid;
        b.iaid = p.key.iaid;
        b.subnet = subnet;
        (b.t1, b.t2) = timers;
        b.preferred = out.preferred;
        b.valid = out.valid;
        b.partner_lifetime = partner_lifetime(self.now, out.valid, out.desired);
        if self.put(&b, from, store) {
            self.counters.committed += 1;
            true
        } else {
            false
        }
    }

    /// Adds a granted lease (to commit later if `pending`) to the IA being built.
    fn offer(
        &self,
        w: &mut Work,
        site: &Site<'_>,
        lease: Lease,
        cur: Option<Binding>,
        key: Option<ClientKey>,
    ) {
        let (preferred, valid, desired) = grant(site.subnet, cur.as_ref(), self.now, &self.policy);
        w.leases.push(LeaseOut {
            lease,
            preferred,
            valid,
            desired,
            withdrawn: false,
        });
        w.pending.push(key.map(|key| Pending { key, cur }));
        w.chosen.push(lease);
    }

    /// SOLICIT (RFC 8415 §18.3.9, tentative) and REQUEST / Rapid Commit SOLICIT (§18.3.2,
    /// §18.3.1, committed later by [`Engine::finish`]): one lease per IA.
    fn assign<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        ia: &IaIn,
        mode: Assign,
        store: &mut S,
        rng: &mut dyn Entropy,
        w: &mut Work,
    ) -> Option<Status> {
        let commit = mode != Assign::Advertise;
        let check_on_link = mode == Assign::Request;
        let named = w.named.get(ia.named.clone()).unwrap_or_default();
        let off_link = |site: Option<&Site<'_>>| {
            named.iter().any(|l| {
                !l.addr.is_unspecified() && site.is_none_or(|s| !s.subnet.prefix.contains(l.addr))
            })
        };
        if check_on_link && ia.kind == LeaseKind::Address && off_link(self.site.as_ref()) {
            // RFC 8415 §18.3.2: addresses not appropriate for the link → NotOnLink.
            return Some(Status::of(StatusCode::NOT_ON_LINK));
        }
        let Some(site) = self.site else {
            return Some(unavailable(ia.kind));
        };
        let key = req.key(ia);
        let mut held = std::mem::take(&mut w.held);
        let picked = site.choose(
            &key,
            named,
            &w.chosen,
            store,
            rng,
            &mut held,
            &mut w.free_backup,
        );
        w.held = held;
        match picked {
            Some((lease, cur)) => {
                self.offer(w, &site, lease, cur, commit.then_some(key));
                None
            }
            None => Some(unavailable(ia.kind)),
        }
    }

    /// RENEW (RFC 8415 §18.3.4) and REBIND (§18.3.5).
    ///
    /// The client's bindings for the IA (ACTIVE or EXPIRED, still naming it) that are
    /// appropriate for the link are extended; others, and leases the client names that are
    /// not its bindings, are returned with lifetimes 0. Under a policy without new leases
    /// (RFC 8156 §8.7.1) only ACTIVE bindings the client names are extended. An IA without
    /// bindings gets NoBinding, except on Rebind in a subnet with `rebind-creates-bindings`
    /// (RFC 8415 §18.3.5), where its off-link leases get lifetimes 0 and a binding is created
    /// as for a Request (NoAddrsAvail / NoPrefixAvail if none).
    fn extend<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        ia: &IaIn,
        rebind: bool,
        store: &mut S,
        rng: &mut dyn Entropy,
        w: &mut Work,
    ) -> Option<Status> {
        let key = req.key(ia);
        let named = ia.named.clone();
        let new_leases = self.policy.new_leases;
        w.held.clear();
        let mut over = false;
        {
            let held = &mut w.held;
            store.for_client(&key, &mut |b| {
                let wanted = match b.status {
                    BindingStatus::ACTIVE => true,
                    BindingStatus::EXPIRED => new_leases,
                    _ => false,
                };
                if wanted {
                    if held.len() < MAX_LEASES_PER_IA {
                        held.push(*b);
                    } else {
                        over = true;
                    }
                }
            });
        }
        if over {
            self.counters.ias_over_limit += 1;
        }
        if !new_leases {
            let names = w.named.get(named.clone()).unwrap_or_default();
            w.held.retain(|b| names.contains(&Lease::of(b)));
        }
        let site = self.site;
        // D44: a lease whose lifetime is over goes back to its client only from our share.
        if let Some(s) = &site {
            w.held.retain(|b| s.may_take_back(b));
        }
        let on_link = |l: &Lease| match (&site, l.kind) {
            (None, _) => false,
            (Some(s), LeaseKind::Address) => {
                s.subnet.prefix.contains(l.addr) && s.appropriate(l, key.duid.as_bytes())
            }
            (Some(s), LeaseKind::Prefix) => s.appropriate(l, key.duid.as_bytes()),
        };
        let mut status = None;
        if !w.held.is_empty() {
            let held = std::mem::take(&mut w.held);
            for b in &held {
                let l = Lease::of(b);
                match site.filter(|_| on_link(&l)) {
                    Some(site) => self.offer(w, &site, l, Some(*b), Some(key)),
                    None => {
                        w.leases.push(LeaseOut::zero(l));
                        w.pending.push(None);
                    }
                }
            }
            w.held = held;
            self.zero_unknown(named, w);
        } else if !rebind {
            status = Some(Status::of(StatusCode::NO_BINDING));
        } else {
            // RFC 8415 §18.3.5: leases not appropriate for the link get lifetimes 0.
            for i in named.clone() {
                if let Some(l) = w.named.get(i).copied()
                    && !l.addr.is_unspecified()
                    && !on_link(&l)
                {
                    w.leases.push(LeaseOut::zero(l));
                    w.pending.push(None);
                }
            }
            let create = new_leases && site.is_some_and(|s| s.subnet.rebind_creates_bindings);
            status = if create {
                self.assign(req, ia, Assign::Commit, store, rng, w)
            } else {
                Some(Status::of(StatusCode::NO_BINDING))
            };
        }
        status
    }

    /// Leases the client names that the IA being built does not hold get lifetimes 0
    /// (RFC 8415 §18.3.4, §18.3.5).
    fn zero_unknown(&self, named: Range<usize>, w: &mut Work) {
        let start = w.out_start();
        for i in named {
            let Some(l) = w.named.get(i).copied() else {
                continue;
            };
            if l.addr.is_unspecified() {
                continue;
            }
            let known = w
                .leases
                .get(start..)
                .unwrap_or_default()
                .iter()
                .any(|o| o.lease == l);
            if !known {
                w.leases.push(LeaseOut::zero(l));
                w.pending.push(None);
            }
        }
    }

    /// RELEASE (RFC 8415 §18.3.7) and DECLINE (§18.3.8, IA_NA only): the named leases the
    /// client holds become RELEASED or ABANDONED (quarantined). An IA in which the client
    /// holds none of them gets NoBinding; the others are left out of the reply.
    fn let_go<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        ia: &IaIn,
        decline: bool,
        store: &mut S,
        w: &Work,
    ) -> Option<Status> {
        let key = req.key(ia);
        let mut found = false;
        let mut failed = false;
        for l in w.named.get(ia.named.clone()).unwrap_or_default() {
            let Some(mut b) = store.get(l.kind, l.addr) else {
                continue;
            };
            if b.client() != key
                || !matches!(b.status, BindingStatus::ACTIVE | BindingStatus::EXPIRED)
            {
                continue;
            }
            found = true;
            let from = b.status;
            let (event, until) = if decline {
                (
                    BindingEvent::Decline,
                    self.now.expiry_after(self.decline_quarantine),
                )
            } else {
                (BindingEvent::Release, FailoverTime(0))
            };
            match transition::apply(&mut b, event, self.now, until) {
                Ok(Applied::Changed { .. }) => {
                    if self.put(&b, Some(from), store) {
                        if decline {
                            self.counters.declined += 1;
                        } else {
                            self.counters.released += 1;
                        }
                    } else {
                        failed = true;
                    }
                }
                Ok(Applied::Unchanged) => {}
                Err(_) => {
                    self.counters.illegal_transitions += 1;
                    failed = true;
                }
            }
        }
        if failed {
            // Nothing may be reported as released that was not (RFC 8415 §18.3.7).
            Some(Status {
                code: StatusCode::UNSPEC_FAIL,
                text: "could not record the release or decline; try again",
            })
        } else if found {
            None
        } else {
            Some(Status::of(StatusCode::NO_BINDING))
        }
    }
}

impl Work {
    fn clear(&mut self) {
        self.ias.clear();
        self.named.clear();
        self.out.clear();
        self.leases.clear();
        self.pending.clear();
        self.chosen.clear();
    }

    /// Where the leases of the IA being built start.
    fn out_start(&self) -> usize {
        self.out.last().map_or(0, |ia| ia.leases.end)
    }
}

impl Engine {
    /// An engine serving `config` under `server_duid` (RFC 8415 §11; generated once and
    /// persisted by the daemon), with [`ServingPolicy::STANDALONE`].
    pub fn new(config: Config, server_duid: Vec<u8>) -> Self {
        let domain_lists = config
            .subnets
            .iter()
            .map(|s| reply::encode_domain_list(&s.options.domain_search))
            .collect();
        let reservations = Reservations::new(&config);
        Self {
            config,
            server_duid,
            decline_quarantine: DEFAULT_DECLINE_QUARANTINE,
            domain_lists,
            reservations,
            reclaim_cursor: 0,
            counters: Counters::default(),
            partition: Partition::WHOLE,
            policy: ServingPolicy::STANDALONE,
            changes: Vec::with_capacity(2 * MAX_IAS),
            work: Work::default(),
            reuse_wait_since: None,
        }
    }

    /// Sets how long declined addresses stay quarantined, in seconds (at most
    /// [`MAX_FINITE_LIFETIME`]; longer is taken as that).
    #[must_use]
    pub const fn with_decline_quarantine(mut self, secs: u32) -> Self {
        self.decline_quarantine = if secs > MAX_FINITE_LIFETIME {
            MAX_FINITE_LIFETIME
        } else {
            secs
        };
        self
    }

    /// Makes this engine shard `shard` of `shards` of a sharded lease database (issue 4): it
    /// allocates only pool slots ≡ `shard` (mod `shards`) — address pairs counted from the
    /// pool's first address, prefix indexes within the PD pool — and ignores hints at other
    /// slots (the client still gets a lease of this shard). Reservations and a client's
    /// existing bindings are unaffected. Engines for every shard of the same configuration
    /// therefore never allocate the same lease; each must be given only the clients of its
    /// shard ([`crate::shard_of`]). `shards` 0 counts as 1; `shard` is taken mod `shards`.
    #[must_use]
    pub fn with_partition(mut self, shard: u32, shards: u32) -> Self {
        self.partition = Partition::new(shard, shards);
        self
    }

    /// `(shard, shards)` of this engine (`(0, 1)` unless [`Self::with_partition`] was used).
    pub fn partition(&self) -> (u32, u32) {
        self.partition.get()
    }

    /// Sets what the engine may do for clients from now on (RFC 8156 §8, set by the failover
    /// state machine; [`ServingPolicy::STANDALONE`] by default).
    pub const fn set_policy(&mut self, policy: ServingPolicy) {
        if policy.reuse_wait.is_none() {
            self.reuse_wait_since = None;
        }
        self.policy = policy;
    }

    /// The serving policy in force.
    pub const fn policy(&self) -> &ServingPolicy {
        &self.policy
    }

    /// The configuration served.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The server DUID.
    pub fn server_duid(&self) -> &[u8] {
        &self.server_duid
    }

    /// The counters.
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// `true` if the partner's acknowledgement of `b` (EXPIRED, RELEASED or RESET) may make it
    /// available now (RFC 8156 §7.2 (4)): in PARTNER-DOWN the wait of D29, otherwise once the
    /// partner lifetimes it carries plus the MCLT are over (D46); at once standalone.
    pub(crate) fn ack_may_free(&mut self, b: &Binding, now: FailoverTime) -> bool {
        match (self.policy.reuse_wait, self.policy.mclt) {
            (Some(mclt), _) => {
                let since = *self.reuse_wait_since.get_or_insert(now);
                reuse_wait_over(b, since, mclt, now)
            }
            (None, Some(mclt)) => ack_wait_over(b, mclt, now),
            (None, None) => true,
        }
    }

    /// Every binding change the last [`Engine::handle`], [`Engine::handle_inbound`] or
    /// [`Engine::reclaim`] call committed, in the order written; replaced by the next call.
    /// Each is durable in the store already; a failover driver turns them into BNDUPDs
    /// (RFC 8156 §4.3).
    pub fn changes(&self) -> &[BindingChange] {
        &self.changes
    }

    /// Handles one datagram received on port 547 and writes the answer, if any, into `out`.
    /// Leases in the answer are committed to `store` before this returns; what was committed
    /// is in [`Engine::changes`].
    pub fn handle<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        rx: &RxMeta<'_>,
        payload: &[u8],
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [u8],
    ) -> Outcome {
        self.handle_inbound(now, rx, &Inbound::parse(payload), store, rng, out)
    }

    /// [`Engine::handle`] for a datagram already parsed (by the datapath, e.g. to pick its
    /// shard): the payload is parsed once per request.
    pub fn handle_inbound<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        rx: &RxMeta<'_>,
        inbound: &Inbound<'_>,
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [u8],
    ) -> Outcome {
        self.changes.clear();
        match self.dispatch(now, rx, inbound, store, rng, out) {
            Ok((t, len)) => {
                self.counters.count_reply(t);
                Outcome::Reply { len }
            }
            Err(reason) => {
                self.counters.count_drop(reason);
                Outcome::Drop(reason)
            }
        }
    }

    fn dispatch<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        rx: &RxMeta<'_>,
        inbound: &Inbound<'_>,
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [u8],
    ) -> Result<(MessageType, usize), DropReason> {
        if let Some(t) = inbound.outer_type() {
            self.counters.count_received(t);
        }
        match inbound.parsed()? {
            Parsed::Direct(msg) => {
                let subnet = self.config.subnet_for_interface(rx.interface);
                let idx = self.index_of(subnet);
                self.process(now, *msg, idx, store, rng, out)
            }
            Parsed::Relayed(chain) => {
                // RFC 8415 §19: the client message is in the innermost Relay Message option.
                let msg = chain.inner();
                self.counters.count_received(msg.msg_type);
                // RFC 8415 §13.1, RFC 6221: innermost non-zero link-address, else the
                // innermost Interface-Id.
                let subnet = chain
                    .innermost_link_address()
                    .and_then(|a| self.config.subnet_for_link_address(a))
                    .or_else(|| {
                        chain
                            .interface_id_innermost()
                            .and_then(|id| self.config.subnet_for_interface_id(id))
                    });
                let idx = self.index_of(subnet);
                // RFC 8415 §19.3: the reply is written once, in place, after the RELAY-REPL
                // headers (one per level, Interface-Id echoed), which are filled in after.
                let header = chain.reply_header_len();
                let inner = out.get_mut(header..).ok_or(DropReason::ReplyTooLarge)?;
                let (t, len) = self.process(now, msg, idx, store, rng, inner)?;
                chain
                    .emit_reply_headers(len, out)
                    .map_err(|_| DropReason::ReplyTooLarge)?;
                Ok((t, header + len))
            }
        }
    }

    fn index_of(&self, subnet: Option<&Subnet>) -> Option<usize> {
        let s = subnet?;
        self.config.subnets.iter().position(|x| std::ptr::eq(x, s))
    }

    /// Applies the RFC 8415 §16 discard rules and decodes what the handlers need; the IAs go
    /// into `work`.
    fn validate<'m>(&mut self, msg: Message<'m>) -> Result<Request<'m>, DropReason> {
        use DropReason as D;
        if SINGLETONS.iter().any(|c| msg.count(*c) > 1) {
            return Err(D::DuplicateOption);
        }
        let client_id = msg.client_id().map_err(|_| D::Malformed)?;
        let server_id = msg.server_id().map_err(|_| D::Malformed)?;
        let oro = msg.oro().map_err(|_| D::Malformed)?;
        let ours = server_id.map(|s| s.as_bytes() == self.server_duid.as_slice());
        let has_ia = msg.count(OptionCode::IA_NA) > 0 || msg.count(OptionCode::IA_PD) > 0;
        match msg.msg_type {
            // §16.2, §16.5, §16.7.
            MessageType::SOLICIT | MessageType::CONFIRM | MessageType::REBIND => {
                if client_id.is_none() {
                    return Err(D::MissingClientId);
                }
                if server_id.is_some() {
                    return Err(D::UnexpectedServerId);
                }
            }
            // §16.4, §16.6, §16.8, §16.9.
            MessageType::REQUEST
            | MessageType::RENEW
            | MessageType::RELEASE
            | MessageType::DECLINE => {
                if client_id.is_none() {
                    return Err(D::MissingClientId);
                }
                match ours {
                    None => return Err(D::MissingServerId),
                    Some(false) => return Err(D::ForeignServerId),
                    Some(true) => {}
                }
            }
            // §16.12 (IA_TA is obsolete, RFC 9915, and treated as an unknown option).
            MessageType::INFORMATION_REQUEST => {
                if has_ia {
                    return Err(D::IaInInformationRequest);
                }
                if ours == Some(false) {
                    return Err(D::ForeignServerId);
                }
            }
            _ => return Err(D::UnknownMessageType),
        }
        let duid = match client_id {
            Some(c) => DuidBuf::new(c.as_bytes()).ok_or(D::Malformed)?,
            None => DuidBuf::EMPTY,
        };
        let w = &mut self.work;
        w.clear();
        let mut over = 0u64;
        let mut push =
            |w: &mut Work, kind, iaid, leases: &mut dyn Iterator<Item = Result<Lease, D>>| {
                let start = w.named.len();
                let mut over_limit = w.ias.len() >= MAX_IAS;
                if !over_limit {
                    for l in leases {
                        let l = l?;
                        if w.named.len() - start >= MAX_LEASES_PER_IA {
                            over_limit = true;
                            break;
                        }
                        w.named.push(l);
                    }
                } else {
                    // Still check it parses (RFC 8415 §16: a malformed option drops the message).
                    for l in leases {
                        l?;
                    }
                }
                if over_limit {
                    w.named.truncate(start);
                    over += 1;
                }
                w.ias.push(IaIn {
                    kind,
                    iaid,
                    named: start..w.named.len(),
                    over_limit,
                });
                Ok::<(), D>(())
            };
        for ia in msg.ia_nas() {
            let ia = ia.map_err(|_| D::Malformed)?;
            let mut leases = ia.addresses().map(|a| {
                a.map(|a| Lease {
                    kind: LeaseKind::Address,
                    addr: a.addr,
                    len: 128,
                })
                .map_err(|_| D::Malformed)
            });
            push(w, LeaseKind::Address, ia.iaid, &mut leases)?;
        }
        for ia in msg.ia_pds() {
            let ia = ia.map_err(|_| D::Malformed)?;
            let mut leases = ia.prefixes().map(|p| {
                p.map(|p| Lease {
                    kind: LeaseKind::Prefix,
                    addr: p.prefix,
                    len: p.prefix_len,
                })
                .map_err(|_| D::Malformed)
            });
            push(w, LeaseKind::Prefix, ia.iaid, &mut leases)?;
        }
        self.counters.ias_over_limit += over;
        Ok(Request {
            client_id: client_id.map(|c| c.as_bytes()),
            duid,
            oro,
            ours,
        })
    }

    /// Handles a client message (direct or from the innermost relay level) and writes the
    /// Advertise/Reply into `buf`.
    fn process<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        msg: Message<'_>,
        subnet_idx: Option<usize>,
        store: &mut S,
        rng: &mut dyn Entropy,
        buf: &mut [u8],
    ) -> Result<(MessageType, usize), DropReason> {
        match msg.msg_type {
            MessageType::ADVERTISE
            | MessageType::REPLY
            | MessageType::RECONFIGURE
            | MessageType::RELAY_REPL => return Err(DropReason::ServerMessage),
            _ => {}
        }
        let req = self.validate(msg)?;
        // RFC 8156 §2, §8: what the failover state lets this server answer.
        match self.policy.responsiveness {
            Responsiveness::Responsive => {}
            Responsiveness::RenewResponsive if req.ours == Some(true) => {}
            Responsiveness::RenewResponsive => return Err(DropReason::RenewResponsiveOnly),
            Responsiveness::Unresponsive => return Err(DropReason::Unresponsive),
        }
        let Self {
            config,
            server_duid,
            decline_quarantine,
            domain_lists,
            reservations,
            counters,
            partition,
            policy,
            changes,
            work,
            ..
        } = self;
        let site = subnet_idx.and_then(|i| {
            Some(Site {
                config,
                subnet: config.subnets.get(i)?,
                subnet_idx: i,
                reservations,
                now,
                partition: *partition,
                policy: *policy,
            })
        });
        let mut ctx = Ctx {
            site,
            counters,
            changes,
            now,
            policy: *policy,
            decline_quarantine: *decline_quarantine,
        };
        let mut reply_type = MessageType::REPLY;
        let mut status = None;
        let mut rapid_commit = false;
        let t = msg.msg_type;
        match t {
            MessageType::SOLICIT
            | MessageType::REQUEST
            | MessageType::RENEW
            | MessageType::REBIND
            | MessageType::RELEASE
            | MessageType::DECLINE => {
                if t == MessageType::SOLICIT {
                    // RFC 8415 §18.3.1: Rapid Commit only when the subnet allows it.
                    rapid_commit =
                        msg.rapid_commit() && site.is_some_and(|s| s.subnet.rapid_commit);
                    if !rapid_commit {
                        reply_type = MessageType::ADVERTISE;
                    }
                }
                if matches!(t, MessageType::RELEASE | MessageType::DECLINE) {
                    status = Some(Status::of(StatusCode::SUCCESS));
                }
                let ias = std::mem::take(&mut work.ias);
                for ia in &ias {
                    let start = work.out_start();
                    let mut omit = false;
                    let st = if ia.over_limit {
                        Some(match t {
                            MessageType::SOLICIT | MessageType::REQUEST => Status {
                                text: OVER_LIMIT_TEXT,
                                ..unavailable(ia.kind)
                            },
                            _ => Status {
                                code: StatusCode::UNSPEC_FAIL,
                                text: OVER_LIMIT_TEXT,
                            },
                        })
                    } else {
                        match t {
                            MessageType::SOLICIT => ctx.assign(
                                &req,
                                ia,
                                if rapid_commit {
                                    Assign::Commit
                                } else {
                                    Assign::Advertise
                                },
                                store,
                                rng,
                                work,
                            ),
                            MessageType::REQUEST => {
                                ctx.assign(&req, ia, Assign::Request, store, rng, work)
                            }
                            MessageType::RENEW => ctx.extend(&req, ia, false, store, rng, work),
                            MessageType::REBIND => ctx.extend(&req, ia, true, store, rng, work),
                            // RFC 8415 §18.3.8: Decline concerns addresses only.
                            MessageType::DECLINE if ia.kind != LeaseKind::Address => {
                                omit = true;
                                None
                            }
                            _ => {
                                let st =
                                    ctx.let_go(&req, ia, t == MessageType::DECLINE, store, work);
                                omit = st.is_none();
                                st
                            }
                        }
                    };
                    work.out.push(IaOut {
                        kind: ia.kind,
                        iaid: ia.iaid,
                        t1: 0,
                        t2: 0,
                        leases: start..work.leases.len(),
                        status: st,
                        omit,
                    });
                }
                work.ias = ias;
                if let Some(site) = site {
                    Self::finish(&mut ctx, &site, store, work);
                }
            }
            MessageType::CONFIRM => {
                // RFC 8415 §18.3.3.
                let site = site.ok_or(DropReason::ConfirmUnanswerable)?;
                let mut any = false;
                let mut all_on_link = true;
                for ia in work.ias.iter().filter(|ia| ia.kind == LeaseKind::Address) {
                    for l in work.named.get(ia.named.clone()).unwrap_or_default() {
                        any = true;
                        all_on_link &= site.subnet.prefix.contains(l.addr);
                    }
                }
                if !any {
                    return Err(DropReason::ConfirmUnanswerable);
                }
                status = Some(Status::of(if all_on_link {
                    StatusCode::SUCCESS
                } else {
                    StatusCode::NOT_ON_LINK
                }));
            }
            // INFORMATION-REQUEST (RFC 8415 §18.3.6): options only.
            _ => {}
        }
        let options = subnet_idx.and_then(|i| {
            Some((
                config.subnets.get(i)?,
                domain_lists.get(i).map_or(&[][..], Vec::as_slice),
            ))
        });
        // RFC 8415 §18.3.9, §21.8: a Preference of 0 equals no option, so it is sent only
        // when configured non-zero.
        let preference = (reply_type == MessageType::ADVERTISE && config.server.preference != 0)
            .then_some(config.server.preference);
        let parts = ReplyParts {
            msg_type: reply_type,
            transaction_id: msg.transaction_id,
            server_duid,
            client_id: req.client_id,
            preference,
            rapid_commit,
            status,
            ias: &work.out,
            leases: &work.leases,
            options,
            oro: req.oro,
            information_request: t == MessageType::INFORMATION_REQUEST,
        };
        let len = reply::write(buf, &parts).map_err(|_| DropReason::ReplyTooLarge)?;
        Ok((reply_type, len))
    }

    /// After every IA is decided: T1/T2 from the shortest preferred lifetime granted, the
    /// same in every IA that holds a lease (RFC 8415 §18.3.2, §18.3.4, §21.4); then the
    /// pending leases are committed with them. A lease whose commit fails is withdrawn from
    /// the reply, and an IA left with nothing gets NoAddrsAvail / NoPrefixAvail.
    fn finish<S: LeaseStore>(ctx: &mut Ctx<'_>, site: &Site<'_>, store: &mut S, w: &mut Work) {
        let shortest = w
            .leases
            .iter()
            .filter(|l| l.granted())
            .map(|l| l.preferred)
            .min();
        let Some(timers) = timers(site.subnet, shortest) else {
            return;
        };
        for (l, p) in w.leases.iter_mut().zip(&w.pending) {
            if let Some(p) = p
                && !ctx.commit(site.subnet_idx, p, l, timers, store)
            {
                l.withdrawn = true;
            }
        }
        for ia in &mut w.out {
            let granted = w
                .leases
                .get(ia.leases.clone())
                .unwrap_or_default()
                .iter()
                .any(LeaseOut::granted);
            if granted {
                (ia.t1, ia.t2) = timers;
            } else if ia.status.is_none()
                && w.leases
                    .get(ia.leases.clone())
                    .unwrap_or_default()
                    .iter()
                    .any(|l| l.withdrawn)
            {
                ia.status = Some(unavailable(ia.kind));
            }
        }
    }

    /// Expires leases incrementally (call it periodically): visits up to `budget` bindings
    /// from where the last call stopped. ACTIVE bindings past their valid lifetime become
    /// EXPIRED (RFC 8156 §7.2 (8)); ABANDONED bindings past their quarantine are RESET (10)
    /// and, unless the policy needs the partner to acknowledge that first (4), FREE (5),
    /// forgetting the client that declined them (the decliner should not get the address
    /// back as "its own"). RELEASED and EXPIRED bindings stay as they are: they are free for
    /// anyone (standalone), and their client gets them back first. Under a policy with a
    /// `reuse_wait` (PARTNER-DOWN), a RELEASED, EXPIRED or RESET binding becomes FREE or
    /// FREE-BACKUP (RFC 8156 §7.2 (4)–(6), §8.4.1) once that long has passed since the latest of
    /// its own times and the engine's entry into the policy (docs/failover.md D29). Under the
    /// other failover policies an acknowledged (not pending) RELEASED, EXPIRED or RESET binding
    /// that carries a partner lifetime becomes FREE or FREE-BACKUP once that lifetime plus the
    /// MCLT is over (D46). A status entered here starts at the end of the one it leaves (D41).
    /// What changed is in [`Engine::changes`].
    pub fn reclaim<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        store: &mut S,
        budget: usize,
    ) -> ReclaimReport {
        const CHUNK: usize = 64;
        self.changes.clear();
        let mut report = ReclaimReport::default();
        let free_at_once = !self.policy.reuse_needs_partner_ack;
        let wait = match self.policy.reuse_wait {
            Some(mclt) => Some((*self.reuse_wait_since.get_or_insert(now), mclt)),
            None => None,
        };
        // D46: outside PARTNER-DOWN, an acknowledged lease whose partner lifetimes were not
        // over at the ack becomes available here once they are.
        let ack_wait = if wait.is_none() {
            self.policy.mclt
        } else {
            None
        };
        while report.visited < budget {
            let max = CHUNK.min(budget - report.visited);
            let mut todo = [None::<Binding>; CHUNK];
            let mut n = 0;
            let mut seen = 0;
            let next = store.scan(self.reclaim_cursor, max, &mut |b| {
                seen += 1;
                let due = (b.has_expired_at(now)
                    && matches!(b.status, BindingStatus::ACTIVE | BindingStatus::ABANDONED))
                    || wait.is_some_and(|(since, mclt)| reuse_wait_over(b, since, mclt, now))
                    || ack_wait.is_some_and(|mclt| acked_and_waited(b, mclt, now));
                if due && let Some(slot) = todo.get_mut(n) {
                    *slot = Some(*b);
                    n += 1;
                }
            });
            report.visited += seen;
            for mut b in todo.into_iter().flatten() {
                let from = b.status;
                let was_active = from == BindingStatus::ACTIVE;
                let waited = matches!(
                    from,
                    BindingStatus::RELEASED | BindingStatus::EXPIRED | BindingStatus::RESET
                );
                // A timed status ends at its state-expiration-time, not when this pass
                // notices (RFC 8156 §7.3 start-time-of-state: "when the binding-status ...
                // was changed"): the start of EXPIRED / RESET is that end, so a partner's
                // binding from a client transaction after it still wins Figure 4's "accept"
                // (docs/failover.md D41).
                let ended = if b.state_expiration_time.cmp_wrapping(now).is_lt() {
                    b.state_expiration_time
                } else {
                    now
                };
                let applied = if was_active {
                    transition::apply(&mut b, BindingEvent::Expire, ended, FailoverTime(0))
                } else if waited {
                    // §7.2 (4) in PARTNER-DOWN, then (5) or (6) by the lease's owner.
                    let to = tandem_lease::sync::pending_free_status(b.kind, b.addr);
                    transition::apply(&mut b, BindingEvent::Free(to), now, FailoverTime(0))
                } else {
                    transition::apply(&mut b, BindingEvent::Reset, ended, FailoverTime(0)).and_then(
                        |a| {
                            if free_at_once {
                                b.duid = DuidBuf::EMPTY;
                                b.iaid = 0;
                                transition::apply(
                                    &mut b,
                                    BindingEvent::Free(FreeStatus::Free),
                                    now,
                                    FailoverTime(0),
                                )
                            } else {
                                Ok(a)
                            }
                        },
                    )
                };
                if applied.is_err() {
                    self.counters.illegal_transitions += 1;
                    continue;
                }
                match store.put(&b) {
                    Ok(()) => {
                        self.changes.push(BindingChange {
                            binding: b,
                            from: Some(from),
                        });
                        if was_active {
                            report.expired += 1;
                            self.counters.expired += 1;
                        } else if waited {
                            report.freed += 1;
                            self.counters.freed_after_wait += 1;
                        } else {
                            report.unquarantined += 1;
                            self.counters.unquarantined += 1;
                        }
                    }
                    Err(_) => {
                        report.store_errors += 1;
                        self.counters.store_errors += 1;
                    }
                }
            }
            match next {
                Some(c) => self.reclaim_cursor = c,
                None => {
                    self.reclaim_cursor = 0;
                    report.wrapped = true;
                    break;
                }
            }
            if seen == 0 {
                break;
            }
        }
        report
    }
}
