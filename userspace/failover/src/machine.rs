//! The RFC 8156 §8 state machine as pure functions: which state follows from the current one,
//! the communications status and the partner's state, and what each state lets a server do for
//! clients. [`crate::Endpoint`] calls these and nothing else decides a transition, so the tables
//! in the tests (one row per RFC sentence) are the whole machine.
//!
//! The functions answer `None` for "stay". Where the RFC is silent they follow the decisions of
//! `docs/failover.md` (D12–D16), cited next to the arm.

use tandem_lease::{AddressShare, PrefixShare, Responsiveness, ServingPolicy};
use tandem_wire::failover::FailoverTime;
use tandem_wire::failover::option::ServerState;

use crate::config::Role;

/// The name of an RFC 8156 §8 endpoint state, in the order of the OPTION_F_SERVER_STATE values
/// (§5.5.16). [`crate::State`] is the same list with the data each state needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateName {
    /// STARTUP (§8.3): probing the partner before serving. Never sent (§5.5.16 note 1).
    Startup,
    /// NORMAL (§8.8).
    Normal,
    /// COMMUNICATIONS-INTERRUPTED (§8.9).
    CommunicationsInterrupted,
    /// PARTNER-DOWN (§8.4).
    PartnerDown,
    /// POTENTIAL-CONFLICT (§8.10).
    PotentialConflict,
    /// RECOVER (§8.5).
    Recover,
    /// RECOVER-WAIT (§8.6).
    RecoverWait,
    /// RECOVER-DONE (§8.7).
    RecoverDone,
    /// RESOLUTION-INTERRUPTED (§8.11).
    ResolutionInterrupted,
    /// CONFLICT-DONE (§8.12).
    ConflictDone,
}

impl StateName {
    /// Every state, in §5.5.16 order.
    pub const ALL: [Self; 10] = [
        Self::Startup,
        Self::Normal,
        Self::CommunicationsInterrupted,
        Self::PartnerDown,
        Self::PotentialConflict,
        Self::Recover,
        Self::RecoverWait,
        Self::RecoverDone,
        Self::ResolutionInterrupted,
        Self::ConflictDone,
    ];

    /// The OPTION_F_SERVER_STATE value (§5.5.16).
    pub const fn code(self) -> ServerState {
        match self {
            Self::Startup => ServerState::STARTUP,
            Self::Normal => ServerState::NORMAL,
            Self::CommunicationsInterrupted => ServerState::COMMUNICATIONS_INTERRUPTED,
            Self::PartnerDown => ServerState::PARTNER_DOWN,
            Self::PotentialConflict => ServerState::POTENTIAL_CONFLICT,
            Self::Recover => ServerState::RECOVER,
            Self::RecoverWait => ServerState::RECOVER_WAIT,
            Self::RecoverDone => ServerState::RECOVER_DONE,
            Self::ResolutionInterrupted => ServerState::RESOLUTION_INTERRUPTED,
            Self::ConflictDone => ServerState::CONFLICT_DONE,
        }
    }

    /// The state of an OPTION_F_SERVER_STATE value; `None` for 0 (reserved) and unassigned
    /// values.
    pub const fn from_code(code: ServerState) -> Option<Self> {
        Some(match code.0 {
            1 => Self::Startup,
            2 => Self::Normal,
            3 => Self::CommunicationsInterrupted,
            4 => Self::PartnerDown,
            5 => Self::PotentialConflict,
            6 => Self::Recover,
            7 => Self::RecoverWait,
            8 => Self::RecoverDone,
            9 => Self::ResolutionInterrupted,
            10 => Self::ConflictDone,
            _ => return None,
        })
    }
}

use StateName::{
    CommunicationsInterrupted, ConflictDone, Normal, PartnerDown, PotentialConflict, Recover,
    RecoverDone, RecoverWait, ResolutionInterrupted, Startup,
};

/// The "communications failed" transition of `state` (§8.1: the machine runs whenever the
/// communications status changes), or `None` where the state allows both statuses.
///
/// * NORMAL → COMMUNICATIONS-INTERRUPTED (§8.8.2 "If it is determined that communications are
///   not OK … transition into COMMUNICATIONS-INTERRUPTED"; DISCONNECT received, same).
/// * POTENTIAL-CONFLICT → RESOLUTION-INTERRUPTED (§8.10.2 "If communication with the partner
///   fails while in POTENTIAL-CONFLICT state").
/// * RECOVER stays (§8.5.2), RECOVER-WAIT stays (§8.6.2), RECOVER-DONE stays (§8.7.2),
///   CONFLICT-DONE stays (§8.12.2); COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN and
///   RESOLUTION-INTERRUPTED are already "communications not OK" states; STARTUP waits for its
///   timer (§8.3.2 step 6).
pub const fn after_communications_failed(state: StateName) -> Option<StateName> {
    match state {
        Normal => Some(CommunicationsInterrupted),
        PotentialConflict => Some(ResolutionInterrupted),
        Startup
        | CommunicationsInterrupted
        | PartnerDown
        | Recover
        | RecoverWait
        | RecoverDone
        | ResolutionInterrupted
        | ConflictDone => None,
    }
}

/// §8.3.2 step 2: a PREVIOUS-STATE in which communications were OK is replaced by the result
/// of its "communications failed" transition (NORMAL → COMMUNICATIONS-INTERRUPTED,
/// POTENTIAL-CONFLICT → RESOLUTION-INTERRUPTED); the others stay. A recorded STARTUP (never
/// written by this crate) reads as RECOVER, the state that resynchronises (D15).
pub const fn startup_previous_state(recorded: StateName) -> StateName {
    match recorded {
        Startup => Recover,
        other => match after_communications_failed(other) {
            Some(next) => next,
            None => other,
        },
    }
}

/// §8.3.2 step 5, when communications become OK in STARTUP: CURRENT-STATE := PREVIOUS-STATE,
/// except that a partner in PARTNER-DOWN since *after* our last recorded operating time
/// (`time_of_failure`) sends us to RECOVER, and one in PARTNER-DOWN since *before* it to
/// POTENTIAL-CONFLICT. Without any record (`None`: nothing was persisted) the partner's
/// PARTNER-DOWN is taken as later (RECOVER). Equal times read as "not later": the
/// conservative POTENTIAL-CONFLICT (D15). The caller then takes the "communications OK"
/// transition of the result with the partner's state ([`after_partner_state`]).
pub fn startup_resume(
    previous: StateName,
    time_of_failure: Option<FailoverTime>,
    partner: StateName,
    partner_since: FailoverTime,
) -> StateName {
    if partner != PartnerDown {
        return previous;
    }
    match time_of_failure {
        None => Recover,
        Some(tof) if partner_since.cmp_wrapping(tof).is_gt() => Recover,
        Some(_) => PotentialConflict,
    }
}

/// The transition of `state` when communications are OK and the partner is in `partner`
/// (§8.1: run when communications become OK and whenever the partner's state changes).
/// `partner_startup` is the STARTUP bit of the partner's OPTION_F_SERVER_FLAGS: the partner
/// is still in STARTUP and `partner` is its previous state (§8.3.1).
///
/// STARTUP is not handled here (see [`startup_resume`]); POTENTIAL-CONFLICT leaves only on
/// UPDDONE ([`after_upddone`]); RECOVER-WAIT only on its timer.
pub const fn after_partner_state(
    role: Role,
    state: StateName,
    partner: StateName,
    partner_startup: bool,
) -> Option<StateName> {
    let _ = role; // Same rules for both roles (§8); kept for the table's shape.
    match state {
        // §8.4.2: "a server in PARTNER-DOWN state ... ignores all STATE messages from its
        // partner that have the STARTUP bit set".
        PartnerDown if partner_startup => None,
        PartnerDown => match partner {
            // §8.4.2 "NORMAL, COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN, POTENTIAL-CONFLICT,
            // RESOLUTION-INTERRUPTED, or CONFLICT-DONE state, then transition to
            // POTENTIAL-CONFLICT".
            Normal
            | CommunicationsInterrupted
            | PartnerDown
            | PotentialConflict
            | ResolutionInterrupted
            | ConflictDone => Some(PotentialConflict),
            // "RECOVER or RECOVER-WAIT state, then stay in PARTNER-DOWN".
            Recover | RecoverWait => None,
            // "RECOVER-DONE state, then transition to NORMAL".
            RecoverDone => Some(Normal),
            Startup => None,
        },
        // §8.5.2: "POTENTIAL-CONFLICT, RESOLUTION-INTERRUPTED, or CONFLICT-DONE ... move itself
        // to POTENTIAL-CONFLICT"; any other state: stay and send UPDREQ / UPDREQALL.
        Recover => match partner {
            PotentialConflict | ResolutionInterrupted | ConflictDone => Some(PotentialConflict),
            _ => None,
        },
        // §8.6.2: only the timer ends RECOVER-WAIT.
        RecoverWait => None,
        RecoverDone => match partner {
            // §8.7.2 "partner server has entered NORMAL or RECOVER-DONE state, it will
            // transition into NORMAL".
            Normal | RecoverDone => Some(Normal),
            // "If the partner server enters RECOVER or RECOVER-WAIT state, this server
            // transitions to COMMUNICATIONS-INTERRUPTED."
            Recover | RecoverWait => Some(CommunicationsInterrupted),
            // "If the partner server enters POTENTIAL-CONFLICT state, this server enters
            // POTENTIAL-CONFLICT state as well."
            PotentialConflict => Some(PotentialConflict),
            // Not in the RFC: a primary in CONFLICT-DONE waits for NORMAL (§8.12.2) and we
            // would wait for NORMAL or RECOVER-DONE: a deadlock. CONFLICT-DONE means the
            // primary finished its half of a conflict resolution; we do ours (D14).
            ConflictDone => Some(PotentialConflict),
            // Figure 6: "All Others: Wait for Other State".
            CommunicationsInterrupted | PartnerDown | ResolutionInterrupted | Startup => None,
        },
        Normal => {
            if expected_in_normal(partner) {
                None
            } else {
                // §8.8.2 "receives any messages from its partner where the partner has changed
                // state from that expected ... transition into COMMUNICATIONS-INTERRUPTED
                // state and take the appropriate state transition from there".
                Some(CommunicationsInterrupted)
            }
        }
        CommunicationsInterrupted => match partner {
            // §8.9.2 "NORMAL or COMMUNICATIONS-INTERRUPTED: Transition into NORMAL state."
            // "RECOVER-DONE: Transition into NORMAL state."
            Normal | CommunicationsInterrupted | RecoverDone => Some(Normal),
            // "RECOVER: Stay in COMMUNICATIONS-INTERRUPTED state." RECOVER-WAIT is not in
            // the text; Figure 6 draws it with RECOVER (digest §14 item 9).
            Recover | RecoverWait | Startup => None,
            // "PARTNER-DOWN, POTENTIAL-CONFLICT, CONFLICT-DONE, or RESOLUTION-INTERRUPTED:
            // Transition into POTENTIAL-CONFLICT state."
            PartnerDown | PotentialConflict | ConflictDone | ResolutionInterrupted => {
                Some(PotentialConflict)
            }
        },
        // §8.10.2: only UPDDONE (or a communications failure) ends POTENTIAL-CONFLICT.
        PotentialConflict => None,
        // §8.11.2 "If communications with the other server are restored, then the server in
        // RESOLUTION-INTERRUPTED state will transition into POTENTIAL-CONFLICT state."
        ResolutionInterrupted => Some(PotentialConflict),
        // §8.12.2 "When a primary server determines that the secondary server has made a
        // transition into NORMAL state, the primary server will also transition into NORMAL".
        ConflictDone => match partner {
            Normal => Some(Normal),
            _ => None,
        },
        Startup => None,
    }
}

/// The partner states a server in NORMAL expects while communications are OK (§8.8.2: "it
/// would be expected that the partner would transition from POTENTIAL-CONFLICT state into
/// NORMAL state but not … from NORMAL state into POTENTIAL-CONFLICT"). NORMAL itself; the
/// states a partner passes through on its way to NORMAL while we are already there:
/// COMMUNICATIONS-INTERRUPTED (reconnecting, §8.9.2), RECOVER-DONE (§8.7.2, Figure 7) and
/// CONFLICT-DONE (the primary after the secondary's UPDDONE, §8.10.2, Figure 9). Any other
/// partner state sends NORMAL to COMMUNICATIONS-INTERRUPTED (D14).
pub const fn expected_in_normal(partner: StateName) -> bool {
    matches!(
        partner,
        Normal | CommunicationsInterrupted | RecoverDone | ConflictDone
    )
}

/// The transition on receiving the UPDDONE that answers our UPDREQ / UPDREQALL.
///
/// * RECOVER → RECOVER-WAIT (§8.5.2 "upon receipt of that message it will transition to
///   RECOVER-WAIT state").
/// * POTENTIAL-CONFLICT → CONFLICT-DONE for the primary, NORMAL for the secondary (§8.10.2
///   "The primary MUST transition to CONFLICT-DONE state, and the secondary MUST transition to
///   NORMAL state").
pub const fn after_upddone(role: Role, state: StateName) -> Option<StateName> {
    match (state, role) {
        (Recover, _) => Some(RecoverWait),
        (PotentialConflict, Role::Primary) => Some(ConflictDone),
        (PotentialConflict, Role::Secondary) => Some(Normal),
        _ => None,
    }
}

/// Whether an operator's "partner is down" command may move `state` to PARTNER-DOWN: from
/// NORMAL (§8.8.2), COMMUNICATIONS-INTERRUPTED (§8.9.2) and RESOLUTION-INTERRUPTED (§8.11.2),
/// the three states with an "external command" arc in Figure 6. Refused elsewhere.
pub const fn operator_partner_down_allowed(state: StateName) -> bool {
    matches!(
        state,
        Normal | CommunicationsInterrupted | ResolutionInterrupted
    )
}

/// What `role` may do for clients in `state` (RFC 8156 §8; the table in `docs/failover.md`
/// D16). `mclt` is the MCLT in use.
///
/// | state | responsiveness | new leases | MCLT cap |
/// |---|---|---|---|
/// | STARTUP, POTENTIAL-CONFLICT, RECOVER, RECOVER-WAIT | unresponsive (§8.3.1, §8.10.1, §8.5.1, §8.6.1) | no | yes |
/// | NORMAL, CONFLICT-DONE | primary responsive, secondary renew responsive (§8.8.1, §8.12.1) | primary only | yes |
/// | COMMUNICATIONS-INTERRUPTED, RESOLUTION-INTERRUPTED | responsive (§8.9.1, §8.11.1) | own pool | yes |
/// | PARTNER-DOWN | responsive (§8.4.1) | own pool | **no** (§8.4.1) |
/// | RECOVER-DONE | renew responsive (§8.7.1 text, not Figure 6) | no (§8.7.1) | yes |
///
/// The pool is always the role's own: odd addresses and FREE prefixes for the primary, even
/// addresses and FREE-BACKUP prefixes for the secondary (§4.2.1.1, §4.2.2, §8.9.1). A lease
/// that was another client's is reused only once FREE / FREE-BACKUP, in every state: outside
/// PARTNER-DOWN that takes the partner's ack (§4.2.2.1), in PARTNER-DOWN the MCLT wait of
/// §8.4.1 / §7.2 transition 4 (`reuse_wait`, D29).
pub const fn serving_policy(role: Role, state: StateName, mclt: u32) -> ServingPolicy {
    let (addresses, prefixes) = match role {
        Role::Primary => (AddressShare::Odd, PrefixShare::Free),
        Role::Secondary => (AddressShare::Even, PrefixShare::FreeBackup),
    };
    let (responsiveness, new_leases) = match state {
        Startup | PotentialConflict | Recover | RecoverWait => {
            (Responsiveness::Unresponsive, false)
        }
        Normal | ConflictDone => match role {
            Role::Primary => (Responsiveness::Responsive, true),
            Role::Secondary => (Responsiveness::RenewResponsive, false),
        },
        CommunicationsInterrupted | ResolutionInterrupted | PartnerDown => {
            (Responsiveness::Responsive, true)
        }
        RecoverDone => (Responsiveness::RenewResponsive, false),
    };
    // §8.4.1: no cap in PARTNER-DOWN, but the MCLT wait before reusing a lease instead.
    let (cap, reuse_wait) = match state {
        PartnerDown => (None, Some(mclt)),
        _ => (Some(mclt), None),
    };
    ServingPolicy {
        responsiveness,
        new_leases,
        addresses,
        prefixes,
        reuse_wait,
        mclt: cap,
        reuse_needs_partner_ack: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_round_trip_and_follow_5_5_16() {
        for (i, s) in StateName::ALL.iter().enumerate() {
            assert_eq!(usize::from(s.code().0), i + 1);
            assert_eq!(StateName::from_code(s.code()), Some(*s));
        }
        assert_eq!(StateName::from_code(ServerState(0)), None);
        assert_eq!(StateName::from_code(ServerState(11)), None);
    }

    #[test]
    fn no_partner_state_leads_to_a_cycle() {
        // Re-running the machine after each transition (D13) must reach a fixpoint.
        for role in [Role::Primary, Role::Secondary] {
            for start in StateName::ALL {
                for partner in StateName::ALL {
                    for startup in [false, true] {
                        let mut s = start;
                        let mut steps = 0;
                        while let Some(next) = after_partner_state(role, s, partner, startup) {
                            s = next;
                            steps += 1;
                            assert!(steps < 4, "{role:?} {start:?} with {partner:?} cycles");
                        }
                    }
                }
            }
        }
    }
}
