//! The one place a binding's status changes: RFC 8156 §7.2, Figure 2.
//!
//! Every status change of a [`Binding`] — a client allocating or renewing, releasing,
//! declining, a lease expiring, a quarantine ending, a partner acknowledging — goes through
//! [`apply`]. It refuses a change Figure 2 does not allow ([`IllegalTransition`]), stamps the
//! RFC 8156 §7.3 times, and marks the binding [`BindingFlags::UPDATE_PENDING`]: every change is
//! something the failover partner must be told about in a BNDUPD (RFC 8156 §4.3, §7.2).
//!
//! Figure 2's events, and how they map to [`BindingEvent`]:
//!
//! | event (RFC 8156 §7.2) | [`BindingEvent`] | from → to |
//! |---|---|---|
//! | (1) primary allocates, (2) secondary allocates | [`BindingEvent::Allocate`] | FREE / FREE-BACKUP → ACTIVE |
//! | renewal (RFC 8415 §18.3.4, §18.3.5) | [`BindingEvent::Allocate`] | ACTIVE → ACTIVE |
//! | (3) client sends RELEASE | [`BindingEvent::Release`] | ACTIVE → RELEASED |
//! | (8) the lease expired | [`BindingEvent::Expire`] | ACTIVE → EXPIRED |
//! | (9) DECLINE, or deemed unusable | [`BindingEvent::Decline`] | ACTIVE / EXPIRED → ABANDONED |
//! | (10) restored (quarantine over, operator) | [`BindingEvent::Reset`] | ABANDONED → RESET |
//! | (4) acked, then (5) / (6) | [`BindingEvent::Free`] | EXPIRED / RELEASED / RESET / PENDING-FREE → FREE or FREE-BACKUP |
//! | (7) pool rebalance | [`BindingEvent::Rebalance`] | FREE ↔ FREE-BACKUP |
//!
//! Decisions where Figure 2 is silent (also listed in `docs/failover.md`):
//!
//! * **Reuse without the PENDING-FREE detour.** RFC 8156 §4.2.2.1 and §8.8.1 let a lease that
//!   was RELEASED or EXPIRED go back to the *same* client at once, and to another client once
//!   the partner has acknowledged it (transition 4). A server with no partner (standalone) has
//!   nobody to wait for, so for it transitions (4) + (5) collapse into the allocation. [`apply`]
//!   therefore allows [`BindingEvent::Allocate`] from EXPIRED, RELEASED and RESET; *whether* a
//!   given lease may be reused for a given client is the allocator's decision
//!   ([`crate::ServingPolicy::reuse_needs_partner_ack`]), not the state table's.
//! * **No allocation from ABANDONED.** An abandoned lease becomes usable only through (10)
//!   RESET (Tandem does this when the decline quarantine ends) and then (4).
//! * **Decline of an EXPIRED lease** is (9)'s "deemed unusable for other reasons": the client
//!   that just held the address saw it in use (RFC 8415 §18.2.8), so it is quarantined too.
//! * **Release of an EXPIRED lease** changes nothing: the lease is already not bound to the
//!   client, and Figure 2 has no EXPIRED → RELEASED edge. [`BindingEvent::Release`] from
//!   EXPIRED is reported as [`Applied::Unchanged`], not as an error.
//! * **PENDING-FREE is never stored.** It is transient (§5.5.1: "immediately transitions to
//!   FREE or FREE-BACKUP"); [`BindingEvent::Free`] goes straight to the final status. A
//!   PENDING-FREE received from a partner is accepted as a source of (5)/(6).

use core::fmt;

use tandem_wire::failover::option::BindingStatus;

use crate::{Binding, BindingFlags, FailoverTime};

/// What happens to a binding (RFC 8156 §7.2 Figure 2's numbered events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingEvent {
    /// A server leases it to a client, or extends the lease (events 1, 2; renewals).
    Allocate,
    /// The client released it (event 3).
    Release,
    /// Its valid lifetime ended (event 8).
    Expire,
    /// The client declined it, or it is unusable (event 9).
    Decline,
    /// An abandoned lease is made usable again (event 10): quarantine over, or an operator.
    Reset,
    /// The partner acknowledged the EXPIRED / RELEASED / RESET state, or no acknowledgement is
    /// needed (standalone; PARTNER-DOWN after the MCLT): event 4 and then 5 or 6.
    Free(FreeStatus),
    /// A pool rebalance moved a free prefix between the servers (event 7).
    Rebalance,
}

/// Which of the two available statuses a lease settles in (RFC 8156 §7.2 events 5 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeStatus {
    /// FREE: available to the primary (proportional pools, primary-owned addresses).
    Free,
    /// FREE-BACKUP: available to the secondary.
    FreeBackup,
}

impl FreeStatus {
    const fn status(self) -> BindingStatus {
        match self {
            Self::Free => BindingStatus::FREE,
            Self::FreeBackup => BindingStatus::FREE_BACKUP,
        }
    }
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The status (or, for a renewal, the lease's times) changed from `from`: the binding was
    /// updated and marked for the partner.
    Changed {
        /// The status before.
        from: BindingStatus,
    },
    /// Nothing to do (see the module docs: a Release of an EXPIRED lease). The binding is
    /// untouched.
    Unchanged,
}

/// A status change RFC 8156 §7.2 Figure 2 does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The binding's status.
    pub from: BindingStatus,
    /// The event refused.
    pub event: BindingEvent,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not allowed from {} (RFC 8156 §7.2 Figure 2)",
            self.event, self.from
        )
    }
}

/// The status `event` leads to from `from`, or `None` if Figure 2 has no such edge.
/// `Some(from)` with `from` ≠ ACTIVE means "nothing to do" (see the module docs).
#[must_use]
pub const fn next_status(from: BindingStatus, event: BindingEvent) -> Option<BindingStatus> {
    use BindingStatus as S;
    let to = match (from, event) {
        // (1), (2); renewals; reuse with (4)+(5) collapsed (module docs).
        (
            S::FREE | S::FREE_BACKUP | S::ACTIVE | S::EXPIRED | S::RELEASED | S::RESET,
            BindingEvent::Allocate,
        ) => S::ACTIVE,
        (S::ACTIVE, BindingEvent::Release) => S::RELEASED,
        // Already unbound (module docs).
        (S::EXPIRED, BindingEvent::Release) => S::EXPIRED,
        (S::ACTIVE, BindingEvent::Expire) => S::EXPIRED,
        (S::ACTIVE | S::EXPIRED, BindingEvent::Decline) => S::ABANDONED,
        (S::ABANDONED, BindingEvent::Reset) => S::RESET,
        (S::EXPIRED | S::RELEASED | S::RESET | S::PENDING_FREE, BindingEvent::Free(to)) => {
            to.status()
        }
        (S::FREE, BindingEvent::Rebalance) => S::FREE_BACKUP,
        (S::FREE_BACKUP, BindingEvent::Rebalance) => S::FREE,
        _ => return None,
    };
    Some(to)
}

/// Applies `event` to `b` at `now`: checks it against Figure 2, sets the status,
/// start-time-of-state (unless a renewal keeps the status), the state-expiration-time
/// (`until`; [`FailoverTime`]`(0)` for a status without a timeout), and marks the binding
/// [`BindingFlags::UPDATE_PENDING`]. Client-driven events (allocate, release, decline) also set
/// the client last transaction time. Fields that depend on the event (the client, lifetimes)
/// are the caller's.
///
/// # Errors
/// [`IllegalTransition`] if Figure 2 does not allow `event` from the binding's status; the
/// binding is left untouched.
pub fn apply(
    b: &mut Binding,
    event: BindingEvent,
    now: FailoverTime,
    until: FailoverTime,
) -> Result<Applied, IllegalTransition> {
    let from = b.status;
    let to = next_status(from, event).ok_or(IllegalTransition { from, event })?;
    if to == from && to != BindingStatus::ACTIVE {
        return Ok(Applied::Unchanged);
    }
    if to != from {
        b.start_time_of_state = now;
    }
    b.status = to;
    b.state_expiration_time = until;
    if matches!(
        event,
        BindingEvent::Allocate | BindingEvent::Release | BindingEvent::Decline
    ) {
        b.cltt = now;
    }
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    Ok(Applied::Changed { from })
}

#[cfg(test)]
mod tests {
    use core::net::Ipv6Addr;

    use super::*;
    use crate::LeaseKind;

    use BindingEvent as E;
    use BindingStatus as S;

    const ALL_STATUSES: [S; 8] = [
        S::ACTIVE,
        S::EXPIRED,
        S::RELEASED,
        S::PENDING_FREE,
        S::FREE,
        S::FREE_BACKUP,
        S::ABANDONED,
        S::RESET,
    ];

    const ALL_EVENTS: [E; 8] = [
        E::Allocate,
        E::Release,
        E::Expire,
        E::Decline,
        E::Reset,
        E::Free(FreeStatus::Free),
        E::Free(FreeStatus::FreeBackup),
        E::Rebalance,
    ];

    /// Every allowed (from, event) → to, one row per sentence of RFC 8156 §7.2 (or per
    /// decision in the module docs). Anything not listed must be refused.
    const TABLE: &[(S, E, S, &str)] = &[
        (
            S::FREE,
            E::Allocate,
            S::ACTIVE,
            "(1) The primary server allocates a lease.",
        ),
        (
            S::FREE_BACKUP,
            E::Allocate,
            S::ACTIVE,
            "(2) The secondary server allocates a lease.",
        ),
        (
            S::ACTIVE,
            E::Allocate,
            S::ACTIVE,
            "RFC 8415 §18.3.4: renewal extends the lease",
        ),
        (
            S::EXPIRED,
            E::Allocate,
            S::ACTIVE,
            "§4.2.2.1: back to the same client / (4)+(1) collapsed",
        ),
        (
            S::RELEASED,
            E::Allocate,
            S::ACTIVE,
            "§4.2.2.1: back to the same client / (4)+(1) collapsed",
        ),
        (
            S::RESET,
            E::Allocate,
            S::ACTIVE,
            "(4)+(1) collapsed where no ack is needed",
        ),
        (
            S::ACTIVE,
            E::Release,
            S::RELEASED,
            "(3) The client sends RELEASE, and the lease is released.",
        ),
        (
            S::EXPIRED,
            E::Release,
            S::EXPIRED,
            "decision: already unbound, nothing changes",
        ),
        (
            S::ACTIVE,
            E::Expire,
            S::EXPIRED,
            "(8) The lease has expired.",
        ),
        (
            S::ACTIVE,
            E::Decline,
            S::ABANDONED,
            "(9) A DECLINE message is received",
        ),
        (
            S::EXPIRED,
            E::Decline,
            S::ABANDONED,
            "(9) ... or a lease is deemed unusable for other reasons.",
        ),
        (
            S::ABANDONED,
            E::Reset,
            S::RESET,
            "(10) An administrative action is taken to restore an abandoned lease",
        ),
        (
            S::EXPIRED,
            E::Free(FreeStatus::Free),
            S::FREE,
            "(4) partner acknowledges, (5) primary's pool",
        ),
        (
            S::RELEASED,
            E::Free(FreeStatus::Free),
            S::FREE,
            "(4) partner acknowledges, (5) primary's pool",
        ),
        (
            S::RESET,
            E::Free(FreeStatus::Free),
            S::FREE,
            "(4) partner acknowledges, (5) primary's pool",
        ),
        (
            S::PENDING_FREE,
            E::Free(FreeStatus::Free),
            S::FREE,
            "(5) PENDING-FREE resolves to FREE",
        ),
        (
            S::EXPIRED,
            E::Free(FreeStatus::FreeBackup),
            S::FREE_BACKUP,
            "(4), (6) secondary's pool",
        ),
        (
            S::RELEASED,
            E::Free(FreeStatus::FreeBackup),
            S::FREE_BACKUP,
            "(4), (6) secondary's pool",
        ),
        (
            S::RESET,
            E::Free(FreeStatus::FreeBackup),
            S::FREE_BACKUP,
            "(4), (6) secondary's pool",
        ),
        (
            S::PENDING_FREE,
            E::Free(FreeStatus::FreeBackup),
            S::FREE_BACKUP,
            "(6) PENDING-FREE resolves to FREE-BACKUP",
        ),
        (
            S::FREE,
            E::Rebalance,
            S::FREE_BACKUP,
            "(7) A pool rebalance event occurs",
        ),
        (
            S::FREE_BACKUP,
            E::Rebalance,
            S::FREE,
            "(7) ... or vice versa",
        ),
    ];

    fn binding(status: S) -> Binding {
        let mut b = Binding::free(LeaseKind::Address, Ipv6Addr::LOCALHOST, 128, 0);
        b.status = status;
        b.start_time_of_state = FailoverTime(100);
        b
    }

    #[test]
    fn transition_table_matches_rfc8156_figure2_exactly() {
        for from in ALL_STATUSES {
            for event in ALL_EVENTS {
                let row = TABLE.iter().find(|(f, e, _, _)| *f == from && *e == event);
                let got = next_status(from, event);
                match row {
                    Some((_, _, to, why)) => assert_eq!(got, Some(*to), "{from} {event:?}: {why}"),
                    None => assert_eq!(got, None, "{from} {event:?} must be refused"),
                }
            }
        }
    }

    #[test]
    fn apply_stamps_times_and_marks_the_partner_update() {
        for (from, event, to, why) in TABLE {
            let mut b = binding(*from);
            let r = apply(&mut b, *event, FailoverTime(500), FailoverTime(900));
            if from == to && *to != S::ACTIVE {
                assert_eq!(r, Ok(Applied::Unchanged), "{why}");
                assert_eq!(b, binding(*from), "unchanged binding touched: {why}");
                continue;
            }
            assert_eq!(r, Ok(Applied::Changed { from: *from }), "{why}");
            assert_eq!(b.status, *to, "{why}");
            assert!(b.flags.contains(BindingFlags::UPDATE_PENDING), "{why}");
            assert_eq!(b.state_expiration_time, FailoverTime(900), "{why}");
            let expect_start = if from == to { 100 } else { 500 };
            assert_eq!(b.start_time_of_state, FailoverTime(expect_start), "{why}");
            let client_event = matches!(event, E::Allocate | E::Release | E::Decline);
            assert_eq!(b.cltt == FailoverTime(500), client_event, "{why}");
        }
    }

    #[test]
    fn apply_refuses_what_figure2_does_not_allow_and_leaves_the_binding() {
        let refused = [
            (S::ABANDONED, E::Allocate),
            (S::FREE, E::Release),
            (S::RELEASED, E::Expire),
            (S::FREE, E::Decline),
            (S::ACTIVE, E::Reset),
            (S::ACTIVE, E::Free(FreeStatus::Free)),
            (S::ABANDONED, E::Free(FreeStatus::Free)),
            (S::RELEASED, E::Rebalance),
        ];
        for (from, event) in refused {
            let mut b = binding(from);
            let err = apply(&mut b, event, FailoverTime(5), FailoverTime(0)).unwrap_err();
            assert_eq!(err, IllegalTransition { from, event });
            assert_eq!(b, binding(from));
            assert!(err.to_string().contains("RFC 8156 §7.2"));
        }
    }
}
