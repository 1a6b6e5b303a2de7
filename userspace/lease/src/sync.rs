//! Binding updates between failover partners, as pure functions over [`Binding`]s:
//! RFC 8156 §7.5 (receiving a BNDUPD) and §7.7 (receiving a BNDREPLY). The wire side (decoding
//! a BNDUPD into [`LeaseUpdate`]s, encoding a BNDREPLY) is `tandem_failover::bndupd`.
//!
//! * [`LeaseUpdate`]: one lease as a BNDUPD carries it (one IAADDR / IAPREFIX), owned and
//!   `Copy`.
//! * [`decide`]: accept or reject it (§7.5.3, §7.5.4 Figure 4).
//! * [`apply`]: the binding to store once it is accepted (§7.5.5, §7.8 Figure 5).
//! * [`ack`]: the partner accepted one of *our* updates (§7.7).
//! * [`partner_lifetime_to_send`]: the OPTION_F_PARTNER_LIFETIME our BNDUPD carries, which
//!   [`ack`] compares with the echo.
//! * [`pending_free_status`]: where a lease that is PENDING-FREE goes (§7.2 (5), (6)).
//!
//! A receiver runs, for each lease of a BNDUPD: look the binding up (kind and address), check
//! that the lease belongs to this relationship's configuration (ConfigurationConflict
//! otherwise, §7.5.4 — the caller's, it knows the configuration), [`decide`], and on
//! [`Decision::Accept`] store [`apply`]'s binding; on [`Decision::Outdated`] set
//! [`BindingFlags::UPDATE_PENDING`] on its own binding and store that. Only once every
//! binding is durable does the BNDREPLY go out (§7.5.2).
//!
//! Decisions where the RFC is silent or ambiguous are `docs/failover.md` D24; the main ones:
//! "the same time" (±5 s) never counts as later when comparing the current time with a
//! state-expiration-time (time(1)), and gives the tie to the primary's information when two
//! servers' times are compared ("accept", time(2)): the secondary accepts, the primary rejects
//! with OutdatedBindingInformation; an update identical to what we hold is accepted without
//! consulting Figure 4 (§7.5.3 "consistent with the server's already-known state").
//!
//! The binding sync simulator (`docs/failover.md`, "Binding sync simulator") found where
//! Figure 4 read literally loses a lease a client holds; the corrections are D40 (accept(3)
//! for the same client keeps the later end), D42 (a binding is as recent as the last client
//! transaction it reflects, at either server; time(2) compares with that too) and D43 (at the
//! same time an ACTIVE binding wins).

use core::net::Ipv6Addr;

use crate::transition::FreeStatus;
use crate::{Binding, BindingFlags, BindingStatus, DuidBuf, FailoverTime, LeaseKind};

/// Which side of the relationship this server is (RFC 8156 §4.1): Figure 4's accept(3) and
/// the tie rule of `docs/failover.md` D24 depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The primary server.
    Primary,
    /// The secondary server.
    Secondary,
}

/// The client of a [`LeaseUpdate`]: OPTION_CLIENTID of the OPTION_CLIENT_DATA and the IA the
/// lease is in (RFC 8156 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateClient {
    /// The DUID of the client most recently associated with the lease.
    pub duid: DuidBuf,
    /// The IAID of the IA_NA / IA_PD.
    pub iaid: u32,
    /// T1 sent to the client.
    pub t1: u32,
    /// T2 sent to the client.
    pub t2: u32,
}

/// One lease (one OPTION_IAADDR or OPTION_IAPREFIX) as received in a BNDUPD (RFC 8156 §7.4),
/// decoded into our types: fixed-size, owned and `Copy`, so it outlives the message.
///
/// All times are absolute (RFC 8156 §3). OPTION_CLT_TIME is relative on the wire (RFC 5007
/// §4.1.2.3: seconds before the OPTION_LQ_BASE_TIME of the enclosing OPTION_CLIENT_DATA or
/// OPTION_IAPREFIX); the codec stores `LQ_BASE_TIME − CLT_TIME` (modulo 2^32), in the sender's
/// clock, with no skew correction (§7.3: partner-raw-clt-time "MUST NOT be adjusted in any
/// way"; `docs/failover.md` D24).
///
/// The three values §7.6 echoes in the BNDREPLY (binding status, state-expiration-time,
/// partner lifetime) are fixed-size fields whose value *is* their bytes, so they are held here
/// losslessly; the BNDREPLY itself echoes them from the received message, byte for byte
/// (`tandem_failover::bndupd::BndreplyMessage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseUpdate {
    /// Address (IAADDR in an IA_NA) or prefix (IAPREFIX, in an IA_PD or bare).
    pub kind: LeaseKind,
    /// The address or the prefix.
    pub addr: Ipv6Addr,
    /// 128 for an address, the prefix length for a prefix.
    pub prefix_len: u8,
    /// The client and IA; `None` for a bare OPTION_IAPREFIX (a delegable prefix "currently not
    /// associated with any clients", §7.4).
    pub client: Option<UpdateClient>,
    /// Preferred lifetime sent to the client.
    pub preferred: u32,
    /// Valid lifetime sent to the client.
    pub valid: u32,
    /// OPTION_F_BINDING_STATUS (one of the eight values of §5.5.1).
    pub status: BindingStatus,
    /// OPTION_F_START_TIME_OF_STATE.
    pub start_time_of_state: FailoverTime,
    /// OPTION_F_STATE_EXPIRATION_TIME: present iff the status has a timeout (§7.2).
    pub state_expiration_time: Option<FailoverTime>,
    /// OPTION_CLT_TIME made absolute: when the partner last talked to the client.
    pub clt_time: Option<FailoverTime>,
    /// OPTION_F_PARTNER_LIFETIME: when we may consider the lease expired (§4.4).
    pub partner_lifetime: Option<FailoverTime>,
    /// OPTION_F_PARTNER_RAW_CLT_TIME: when *we* last talked to the client, as the partner
    /// recorded it.
    pub partner_raw_clt_time: Option<FailoverTime>,
    /// OPTION_F_EXPIRATION_TIME: the greatest lifetime the partner acked to us.
    pub expiration_time: Option<FailoverTime>,
}

impl LeaseUpdate {
    /// The time of the update that RFC 8156 §7.5.4 compares: for ACTIVE, EXPIRED and RELEASED
    /// the OPTION_CLT_TIME if one appears, else OPTION_F_START_TIME_OF_STATE; for the other
    /// statuses the later of the two. [`decide`] compares otherwise, the same way on both
    /// sides (`docs/failover.md` D42); this is §7.5.4's definition, for reference.
    pub fn update_time(&self) -> FailoverTime {
        let start = self.start_time_of_state;
        match self.clt_time {
            None => start,
            Some(clt)
                if matches!(
                    self.status,
                    BindingStatus::ACTIVE | BindingStatus::EXPIRED | BindingStatus::RELEASED
                ) =>
            {
                clt
            }
            Some(clt) => later_of(clt, start),
        }
    }
}

/// Which rule of RFC 8156 §7.5.4 decided (Figure 4's cells, plus the two cases before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// We hold no binding for the lease: nothing to conflict with, accept.
    NoBinding,
    /// The update says what we already hold (same status, start time, state-expiration-time,
    /// client): §7.5.3 decides only when the update is *not* "consistent with the server's
    /// already-known state"; accept (`docs/failover.md` D24).
    Consistent,
    /// "accept": accept if the update's time is later than ours, else reject.
    Accept,
    /// "time(1)": accept if the current time is later than our state-expiration-time.
    Time1,
    /// "time(2)": accept if the update's OPTION_CLT_TIME is later than our
    /// start-time-of-state — compared as D42 says (our client time, else our start).
    Time2,
    /// "accept(3)": same client: accept unless the update ends the lease earlier than ours
    /// (D40); another client: accept if time(2) holds or we are the secondary, else
    /// AddressInUse.
    Accept3,
}

/// The Figure 4 cell for our binding's status (row) and the received one (column).
///
/// PENDING-FREE and unknown statuses of our own are read as the FREE / FREE-BACKUP row (we
/// never store PENDING-FREE, `docs/failover.md` D5; an unknown value is no state to defend); a
/// received PENDING-FREE is the FREE / FREE-BACKUP column (it "may mean either", §7.2).
/// Received unknown statuses never get here (the codec refuses them).
#[must_use]
pub fn figure4_rule(ours: BindingStatus, received: BindingStatus) -> Rule {
    use BindingStatus as S;
    match (ours, received) {
        (S::ACTIVE, S::ACTIVE) => Rule::Accept3,
        (S::ACTIVE, S::EXPIRED | S::FREE | S::FREE_BACKUP | S::PENDING_FREE) => Rule::Time1,
        (S::RESET, S::ACTIVE) => Rule::Time2,
        _ => Rule::Accept,
    }
}

/// Why an update is rejected (RFC 8156 §7.5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept: store [`apply`]'s binding.
    Accept {
        /// The rule that accepted.
        rule: Rule,
    },
    /// Reject with OutdatedBindingInformation: our binding is more recent. "The flag in the
    /// lease that indicates that the partner should be updated ... SHOULD be set" on ours:
    /// the caller sets [`BindingFlags::UPDATE_PENDING`] and stores it.
    Outdated {
        /// The rule that rejected ("accept", time(1) or time(2)).
        rule: Rule,
        /// The flag was clear before: our binding MAY go to the partner at once (after this
        /// BNDREPLY). `false`: it was already set, so it waits for the periodic scan, which
        /// keeps two servers that disagree from an update storm (§7.5.4).
        send_now: bool,
    },
    /// Reject with AddressInUse: the lease is ACTIVE here for another client, we are the
    /// primary and time(2) does not hold (accept(3)). Our flag is left as it is (§7.5.4: "it
    /// SHOULD NOT be changed").
    AddressInUse,
}

impl Decision {
    /// `true` for [`Decision::Accept`].
    #[must_use]
    pub const fn is_accept(&self) -> bool {
        matches!(self, Self::Accept { .. })
    }

    /// `true` when our own binding must get [`BindingFlags::UPDATE_PENDING`]
    /// ([`Decision::Outdated`]).
    #[must_use]
    pub const fn sets_update_pending(&self) -> bool {
        matches!(self, Self::Outdated { .. })
    }
}

/// `0` means "not set" in a [`Binding`]: `None` for it.
const fn nonzero(t: FailoverTime) -> Option<FailoverTime> {
    if t.0 == 0 { None } else { Some(t) }
}

/// The later of two times (the wrapping order of RFC 8156 §3); an unset (0) one loses.
fn later_of(a: FailoverTime, b: FailoverTime) -> FailoverTime {
    match (nonzero(a), nonzero(b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(a), Some(b)) => {
            if b.cmp_wrapping(a) == core::cmp::Ordering::Greater {
                b
            } else {
                a
            }
        }
    }
}

/// How recent the information of an update is against ours (`docs/failover.md` D42).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recency {
    /// The update's information is clearly later.
    Later,
    /// Clearly earlier.
    Earlier,
    /// "The same time" (±5 s, §7.5.1), or no time on either side to tell.
    Same,
}

/// Our binding's client time (`docs/failover.md` D42): the later of our
/// client-last-transaction-time and the partner's (its OPTION_CLT_TIME, which we keep as
/// partner-raw-clt-time): the last transaction with the client that this binding reflects,
/// at either server.
fn our_client_time(ours: &Binding) -> Option<FailoverTime> {
    nonzero(later_of(ours.cltt, ours.partner_raw_clt_time))
}

/// The update's client time, the same way: the later of its OPTION_CLT_TIME (the partner's
/// client-last-transaction-time) and its OPTION_F_PARTNER_RAW_CLT_TIME (ours, as the partner
/// holds it).
fn update_client_time(upd: &LeaseUpdate) -> Option<FailoverTime> {
    let clt = upd.clt_time.unwrap_or(FailoverTime(0));
    let raw = upd.partner_raw_clt_time.unwrap_or(FailoverTime(0));
    nonzero(later_of(clt, raw))
}

/// Compares two optional times with the ±5 s of §7.5.1 (an unset time is earlier than any).
fn recency(theirs: Option<FailoverTime>, mine: Option<FailoverTime>) -> Recency {
    match (theirs, mine) {
        (None, None) => Recency::Same,
        (Some(_), None) => Recency::Later,
        (None, Some(_)) => Recency::Earlier,
        (Some(t), Some(m)) if t.is_clearly_after(m) => Recency::Later,
        (Some(t), Some(m)) if t.is_clearly_before(m) => Recency::Earlier,
        (Some(_), Some(_)) => Recency::Same,
    }
}

/// The times §7.5.4 compares, `docs/failover.md` D42: a binding's information is as recent as
/// the last client transaction it reflects, at either server — [`update_client_time`] against
/// [`our_client_time`], the same function of the same fields on both sides, so that of two
/// crossing updates at most one is taken (with the ties of D43 and D24) — and each side's
/// start-time-of-state where it has none. A status a server entered by itself after that
/// transaction — EXPIRED at the lease's end, RESET at the end of the quarantine, FREE /
/// FREE-BACKUP on the partner's ack — tells nothing newer about the client, so it does not
/// count as later than the partner's later client transaction.
///
/// §7.5.4 times an update of FREE, FREE-BACKUP, RESET or ABANDONED by the later of its CLT and
/// its start, and ours always by our client-last-transaction-time; time(2) compares with our
/// start-time-of-state. Read so, (1) a RESET at the end of a quarantine, or an EXPIRED we
/// derived from what the partner told us, outranks the partner's renewal of the lease to its
/// client in between: we keep the lease unused while the client holds it, and a RESET sent
/// back makes the partner drop the client's lease too; (2) two servers crossing updates of a
/// FREE lease each find the other's later, both accept, swap their states and do it again on
/// every resend, forever.
fn update_recency(ours: &Binding, upd: &LeaseUpdate) -> Recency {
    let theirs = update_client_time(upd).or(nonzero(upd.start_time_of_state));
    let mine = our_client_time(ours).or(nonzero(ours.start_time_of_state));
    recency(theirs, mine)
}

/// "accept": the update's information is later than ours (D42). At the same time an ACTIVE
/// binding wins over any other status, on both sides (`docs/failover.md` D43: a client that
/// released and asked again within 5 s holds the lease); of two statuses neither of which is
/// ACTIVE the later start-time-of-state wins (the one a server moved on to after the same
/// client transaction: FREE after RELEASED, RESET after ABANDONED — D42); otherwise the tie
/// goes to the primary's information (D24): the secondary accepts, the primary rejects.
fn accept_rule(ours: &Binding, upd: &LeaseUpdate, role: Role) -> bool {
    let tie = || role == Role::Secondary;
    match update_recency(ours, upd) {
        Recency::Later => true,
        Recency::Earlier => false,
        Recency::Same => match (
            upd.status == BindingStatus::ACTIVE,
            ours.status == BindingStatus::ACTIVE,
        ) {
            (true, false) => true,
            (false, true) => false,
            (true, true) => tie(),
            (false, false) => match recency(
                nonzero(upd.start_time_of_state),
                nonzero(ours.start_time_of_state),
            ) {
                Recency::Later => true,
                Recency::Earlier => false,
                Recency::Same => tie(),
            },
        },
    }
}

/// time(2): the update's OPTION_CLT_TIME, if it appears, is later than our binding's time
/// (D42: our client time, else our start-time-of-state); a tie as in "accept" (D43, D24).
fn time2(ours: &Binding, upd: &LeaseUpdate, role: Role) -> bool {
    upd.clt_time.is_some() && accept_rule(ours, upd, role)
}

/// accept(3) for the same client on both sides (`docs/failover.md` D40): the update is taken
/// if it ends the lease later than ours (no timeout being the latest), refused if earlier; an
/// equal end goes to the primary's information (D24: the secondary accepts, the primary
/// rejects). Which of the two is the client's latest Reply neither server can know for sure
/// (a server may have lost its latest to a power loss, or not have sent it yet), so both keep
/// the longer: a server never ends a client's lease before the client does.
fn same_client_newer(ours: &Binding, upd: &LeaseUpdate, role: Role) -> bool {
    match (
        upd.state_expiration_time.and_then(nonzero),
        nonzero(ours.state_expiration_time),
    ) {
        (None, None) => role == Role::Secondary,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(u), Some(o)) => match u.cmp_wrapping(o) {
            core::cmp::Ordering::Greater => true,
            core::cmp::Ordering::Less => false,
            core::cmp::Ordering::Equal => role == Role::Secondary,
        },
    }
}

/// §7.5.3: the update carries the state we already hold for the lease.
fn consistent(ours: &Binding, upd: &LeaseUpdate) -> bool {
    ours.status == upd.status
        && ours.prefix_len == upd.prefix_len
        && ours.start_time_of_state == upd.start_time_of_state
        && ours.state_expiration_time == upd.state_expiration_time.unwrap_or_default()
        && upd
            .client
            .is_none_or(|c| c.duid == ours.duid && c.iaid == ours.iaid)
}

/// Accept or reject one lease of a BNDUPD: RFC 8156 §7.5.4 (Figure 4 and the rules under it),
/// for the binding we hold for that lease (`ours`, `None` if none) and the current time.
///
/// Compared times are "the same" within ±5 s (§7.5.1); how a tie decides is
/// `docs/failover.md` D24 (time(1): not later; "accept" and time(2): the primary's
/// information wins). The VSS and configuration checks of §7.5.4 come before this and are the
/// caller's (ConfigurationConflict).
#[must_use]
pub fn decide(
    ours: Option<&Binding>,
    upd: &LeaseUpdate,
    role: Role,
    now: FailoverTime,
) -> Decision {
    let Some(ours) = ours else {
        return Decision::Accept {
            rule: Rule::NoBinding,
        };
    };
    if consistent(ours, upd) {
        return Decision::Accept {
            rule: Rule::Consistent,
        };
    }
    let rule = figure4_rule(ours.status, upd.status);
    let accept = match rule {
        Rule::NoBinding | Rule::Consistent => true,
        Rule::Accept => accept_rule(ours, upd, role),
        // "If the current time is later than the receiving server's state-expiration-time":
        // no timeout (0) never ends; within 5 s is not later (D24: it resolves itself, the
        // periodic scan resends once the clock has moved on).
        Rule::Time1 => {
            nonzero(ours.state_expiration_time).is_some_and(|end| now.is_clearly_after(end))
        }
        Rule::Time2 => time2(ours, upd, role),
        Rule::Accept3 => {
            let same_client = upd.client.is_some_and(|c| c.duid == ours.duid);
            if same_client {
                // docs/failover.md D40: "accept the update" only if it does not end the
                // lease earlier than ours, so an old snapshot of the same client's lease never
                // shortens the lease it renewed since.
                same_client_newer(ours, upd, role)
            } else if role == Role::Secondary || time2(ours, upd, role) {
                true
            } else {
                return Decision::AddressInUse;
            }
        }
    };
    if accept {
        Decision::Accept { rule }
    } else {
        Decision::Outdated {
            rule,
            send_now: !ours.flags.contains(BindingFlags::UPDATE_PENDING),
        }
    }
}

/// Where a PENDING-FREE lease goes, RFC 8156 §7.2 transitions (5) and (6): a delegable prefix
/// (proportional allocation) to FREE, the primary's; an address (independent allocation) to
/// the pool of the server that owns it, FREE for an odd address (the primary's, §4.2.1.1) and
/// FREE-BACKUP for an even one. This is the text, not Figure 3, which contradicts it
/// (protocol digest §6.2).
#[must_use]
pub fn pending_free_status(kind: LeaseKind, addr: Ipv6Addr) -> FreeStatus {
    match kind {
        LeaseKind::Prefix => FreeStatus::Free,
        LeaseKind::Address if u128::from(addr) & 1 == 1 => FreeStatus::Free,
        LeaseKind::Address => FreeStatus::FreeBackup,
    }
}

/// The binding to store once `upd` is accepted, from the one we held (`ours`; `None`: a new
/// binding in `subnet`): RFC 8156 §7.5.5 and Figure 5 (§7.8).
///
/// | received | stored in | rule |
/// |---|---|---|
/// | OPTION_F_BINDING_STATUS | status | always (PENDING-FREE resolved by [`pending_free_status`], `docs/failover.md` D5) |
/// | OPTION_F_START_TIME_OF_STATE | start-time-of-state | always |
/// | OPTION_F_STATE_EXPIRATION_TIME | state-expiration-time | always; absent = the status has no timeout (§7.2), stored as 0 |
/// | OPTION_F_PARTNER_LIFETIME | expiration-time | when present (overwrites, D24) |
/// | OPTION_CLT_TIME (made absolute) | partner-raw-clt-time | when present |
/// | OPTION_F_EXPIRATION_TIME | partner-lifetime | only if later than the current one |
/// | OPTION_F_PARTNER_RAW_CLT_TIME | client-last-transaction-time | only if later than the current one |
/// | OPTION_CLIENTID, IAID, T1, T2, lifetimes | client, IAID, T1, T2, lifetimes | OPTION_CLIENT_DATA only |
///
/// A bare OPTION_IAPREFIX stores only what §7.5.5's second list names (status, the three
/// timeout-dependent times); our record of the prefix's last client and the CLT times stay.
///
/// [`BindingFlags::UPDATE_PENDING`] is left as it was: §7.5.4 says the flag "SHOULD NOT be
/// changed" unless the update is rejected as outdated. A binding still flagged is sent back
/// to the partner, which finds it consistent with what it holds and accepts it (§7.5.3).
#[must_use]
pub fn apply(ours: Option<&Binding>, upd: &LeaseUpdate, subnet: u32) -> Binding {
    let mut b = ours
        .copied()
        .unwrap_or(Binding::free(upd.kind, upd.addr, upd.prefix_len, subnet));
    b.kind = upd.kind;
    b.addr = upd.addr;
    b.prefix_len = upd.prefix_len;
    b.subnet = subnet;
    b.status = if upd.status == BindingStatus::PENDING_FREE {
        match pending_free_status(upd.kind, upd.addr) {
            FreeStatus::Free => BindingStatus::FREE,
            FreeStatus::FreeBackup => BindingStatus::FREE_BACKUP,
        }
    } else {
        upd.status
    };
    b.start_time_of_state = upd.start_time_of_state;
    b.state_expiration_time = upd.state_expiration_time.unwrap_or_default();
    if let Some(pl) = upd.partner_lifetime {
        b.expiration_time = pl;
    }
    if let Some(et) = upd.expiration_time {
        b.partner_lifetime = later_of(b.partner_lifetime, et);
    }
    if let Some(c) = upd.client {
        b.duid = c.duid;
        b.iaid = c.iaid;
        b.t1 = c.t1;
        b.t2 = c.t2;
        b.preferred = upd.preferred;
        b.valid = upd.valid;
        if let Some(clt) = upd.clt_time {
            b.partner_raw_clt_time = clt;
        }
        if let Some(raw) = upd.partner_raw_clt_time {
            b.cltt = later_of(b.cltt, raw);
        }
    }
    b
}

/// The OPTION_F_PARTNER_LIFETIME a BNDUPD of `b` carries (RFC 8156 §7.4): `None` when the
/// status has no timeout (no state-expiration-time, §7.2: the option "MUST NOT appear");
/// otherwise the pending partner-lifetime, or — when it is 0, "no more information needs to be
/// sent" (§7.7), yet the binding is sent again (UPDREQALL, a resend after a rejection) — the
/// later of what the partner already acked and the lease's own end, so a resend never tells the
/// partner less than it knows and never less than the client holds (`docs/failover.md` D24).
#[must_use]
pub fn partner_lifetime_to_send(b: &Binding) -> Option<FailoverTime> {
    let end = nonzero(b.state_expiration_time)?;
    Some(match nonzero(b.partner_lifetime) {
        Some(pl) => pl,
        None => later_of(b.acked_partner_lifetime, end),
    })
}

/// What a BNDREPLY accepting one lease says, with what the BNDUPD it answers carried (RFC 8156
/// §7.7): the echoed OPTION_F_BINDING_STATUS, OPTION_F_STATE_EXPIRATION_TIME and
/// OPTION_F_PARTNER_LIFETIME_SENT and, for a client's lease, the echoed OPTION_CLIENTID; plus
/// the start-time-of-state the BNDUPD carried, which §7.6 does not echo (the sender keeps it
/// with the transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckInfo {
    /// The binding status echoed.
    pub status: BindingStatus,
    /// The start-time-of-state of the BNDUPD (from the sender's record of it).
    pub start_time_of_state: FailoverTime,
    /// The state-expiration-time echoed.
    pub state_expiration_time: Option<FailoverTime>,
    /// OPTION_F_PARTNER_LIFETIME_SENT: the partner lifetime the partner now holds as our lease's
    /// expiration-time.
    pub partner_lifetime_sent: Option<FailoverTime>,
    /// The client echoed (OPTION_CLIENTID of the OPTION_CLIENT_DATA); `None` for a bare
    /// OPTION_IAPREFIX.
    pub client: Option<DuidBuf>,
}

/// The partner accepted our update of `b` (RFC 8156 §7.7); returns `true` if that update is
/// still `b`'s state, i.e. the partner now knows everything about `b`.
///
/// * OPTION_F_PARTNER_LIFETIME_SENT is stored as the acked-partner-lifetime whenever it is
///   echoed: the partner holds exactly that value now (it stores a received partner lifetime
///   as its expiration-time, §7.5.5, Figure 5 "always update"), whether or not `b` changed
///   since. Overwriting, never keeping a larger old value, is what keeps our MCLT cap (§4.4)
///   within what the partner knows (`docs/failover.md` D24).
/// * Only if `b` still is what was sent — same status, start-time-of-state,
///   state-expiration-time, partner lifetime ([`partner_lifetime_to_send`]) and client — is
///   the partner-lifetime set to 0 ("no more information needs to be sent") and
///   [`BindingFlags::UPDATE_PENDING`] cleared. A binding that changed after the BNDUPD left
///   stays pending: its newer state still has to reach the partner.
///
/// For a bare OPTION_IAPREFIX §7.7 also "stores" the echoed status and state-expiration-time;
/// they are ours echoed, so for a current binding that is what it holds, and a binding that
/// moved on must not be set back. After a current ack of an EXPIRED, RELEASED or RESET lease
/// the caller may take transition (4) ([`crate::transition::BindingEvent::Free`] with
/// [`pending_free_status`]).
pub fn ack(b: &mut Binding, acked: &AckInfo) -> bool {
    let current = b.status == acked.status
        && b.start_time_of_state == acked.start_time_of_state
        && nonzero(b.state_expiration_time) == acked.state_expiration_time
        && partner_lifetime_to_send(b) == acked.partner_lifetime_sent
        && acked.client.is_none_or(|duid| duid == b.duid);
    if let Some(pls) = acked.partner_lifetime_sent {
        b.acked_partner_lifetime = pls;
    }
    if current {
        b.partner_lifetime = FailoverTime(0);
        b.flags.set(BindingFlags::UPDATE_PENDING, false);
    }
    current
}

#[cfg(test)]
mod tests;
