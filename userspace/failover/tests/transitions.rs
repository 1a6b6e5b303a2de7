//! RFC 8156 §8 as tables: one row per RFC sentence, citing it. The first half checks the pure
//! transition functions of `tandem_failover::machine`; the second drives a real `Endpoint`
//! through the same sentences (a scripted partner on the other end).

mod common;

use common::{COMMUNICATED, One, STARTUP, config, record};
use tandem_failover::machine::{
    after_communications_failed, after_partner_state, after_upddone, expected_in_normal,
    operator_partner_down_allowed, serving_policy, startup_previous_state, startup_resume,
};
use tandem_failover::{Operator, Refused, Role, StateName};
use tandem_lease::{AddressShare, PrefixShare, Responsiveness};
use tandem_wire::failover::FailoverTime;

use StateName::*;

const BOTH: [Role; 2] = [Role::Primary, Role::Secondary];

/// Partner states a STATE can carry (STARTUP is a flag, never a value, §5.5.16).
const SENDABLE: [StateName; 9] = [
    Normal,
    CommunicationsInterrupted,
    PartnerDown,
    PotentialConflict,
    Recover,
    RecoverWait,
    RecoverDone,
    ResolutionInterrupted,
    ConflictDone,
];

fn check_partner_rows(state: StateName, rows: &[(&str, StateName, Option<StateName>)]) {
    for role in BOTH {
        for (rfc, partner, expected) in rows {
            assert_eq!(
                after_partner_state(role, state, *partner, false),
                *expected,
                "{rfc}: {role:?} in {state:?}, partner in {partner:?}"
            );
        }
    }
    // Every sendable partner state has a row: the table is the whole rule.
    for p in SENDABLE {
        assert!(
            rows.iter().any(|(_, q, _)| *q == p),
            "{state:?}: no row for partner {p:?}"
        );
    }
}

#[test]
fn partner_down_follows_partner_state_8_4_2() {
    let pc = Some(PotentialConflict);
    check_partner_rows(
        PartnerDown,
        &[
            ("§8.4.2 partner NORMAL → POTENTIAL-CONFLICT", Normal, pc),
            (
                "§8.4.2 partner COMMUNICATIONS-INTERRUPTED → POTENTIAL-CONFLICT",
                CommunicationsInterrupted,
                pc,
            ),
            (
                "§8.4.2 partner PARTNER-DOWN → POTENTIAL-CONFLICT",
                PartnerDown,
                pc,
            ),
            (
                "§8.4.2 partner POTENTIAL-CONFLICT → POTENTIAL-CONFLICT",
                PotentialConflict,
                pc,
            ),
            (
                "§8.4.2 partner RESOLUTION-INTERRUPTED → POTENTIAL-CONFLICT",
                ResolutionInterrupted,
                pc,
            ),
            (
                "§8.4.2 partner CONFLICT-DONE → POTENTIAL-CONFLICT",
                ConflictDone,
                pc,
            ),
            (
                "§8.4.2 partner RECOVER → stay in PARTNER-DOWN",
                Recover,
                None,
            ),
            (
                "§8.4.2 partner RECOVER-WAIT → stay in PARTNER-DOWN",
                RecoverWait,
                None,
            ),
            (
                "§8.4.2 partner RECOVER-DONE → NORMAL",
                RecoverDone,
                Some(Normal),
            ),
        ],
    );
}

#[test]
fn partner_down_ignores_state_with_startup_bit_8_4_2() {
    // §8.4.2 "it ignores all STATE messages from its partner that have the STARTUP bit set".
    for role in BOTH {
        for p in SENDABLE {
            assert_eq!(
                after_partner_state(role, PartnerDown, p, true),
                None,
                "{p:?}"
            );
        }
    }
}

#[test]
fn recover_follows_partner_state_8_5_2() {
    let pc = Some(PotentialConflict);
    check_partner_rows(
        Recover,
        &[
            (
                "§8.5.2 other server POTENTIAL-CONFLICT → POTENTIAL-CONFLICT",
                PotentialConflict,
                pc,
            ),
            (
                "§8.5.2 other server RESOLUTION-INTERRUPTED → POTENTIAL-CONFLICT",
                ResolutionInterrupted,
                pc,
            ),
            (
                "§8.5.2 other server CONFLICT-DONE → POTENTIAL-CONFLICT",
                ConflictDone,
                pc,
            ),
            (
                "§8.5.2 any other state: stay, send UPDREQ (NORMAL)",
                Normal,
                None,
            ),
            (
                "§8.5.2 any other state (COMMUNICATIONS-INTERRUPTED)",
                CommunicationsInterrupted,
                None,
            ),
            ("§8.5.2 any other state (PARTNER-DOWN)", PartnerDown, None),
            ("§8.5.2 any other state (RECOVER)", Recover, None),
            ("§8.5.2 any other state (RECOVER-WAIT)", RecoverWait, None),
            ("§8.5.2 any other state (RECOVER-DONE)", RecoverDone, None),
        ],
    );
}

#[test]
fn recover_wait_leaves_only_on_its_timer_8_6_2() {
    let rows: Vec<_> = SENDABLE
        .iter()
        .map(|p| ("§8.6.2 the timer alone ends RECOVER-WAIT", *p, None))
        .collect();
    check_partner_rows(RecoverWait, &rows);
    assert_eq!(
        after_communications_failed(RecoverWait),
        None,
        "§8.6.2 communication failure has no effect on RECOVER-WAIT"
    );
}

#[test]
fn recover_done_follows_partner_state_8_7_2() {
    check_partner_rows(
        RecoverDone,
        &[
            (
                "§8.7.2 partner entered NORMAL → NORMAL",
                Normal,
                Some(Normal),
            ),
            (
                "§8.7.2 partner entered RECOVER-DONE → NORMAL",
                RecoverDone,
                Some(Normal),
            ),
            (
                "§8.7.2 partner enters RECOVER → COMMUNICATIONS-INTERRUPTED",
                Recover,
                Some(CommunicationsInterrupted),
            ),
            (
                "§8.7.2 partner enters RECOVER-WAIT → COMMUNICATIONS-INTERRUPTED",
                RecoverWait,
                Some(CommunicationsInterrupted),
            ),
            (
                "§8.7.2 partner enters POTENTIAL-CONFLICT → POTENTIAL-CONFLICT",
                PotentialConflict,
                Some(PotentialConflict),
            ),
            (
                "D14: partner CONFLICT-DONE → POTENTIAL-CONFLICT (else both wait)",
                ConflictDone,
                Some(PotentialConflict),
            ),
            (
                "Figure 6 'All Others: Wait' (COMMUNICATIONS-INTERRUPTED)",
                CommunicationsInterrupted,
                None,
            ),
            (
                "Figure 6 'All Others: Wait' (PARTNER-DOWN)",
                PartnerDown,
                None,
            ),
            (
                "Figure 6 'All Others: Wait' (RESOLUTION-INTERRUPTED)",
                ResolutionInterrupted,
                None,
            ),
        ],
    );
}

#[test]
fn normal_leaves_on_unexpected_partner_state_8_8_2() {
    let ci = Some(CommunicationsInterrupted);
    check_partner_rows(
        Normal,
        &[
            ("§8.8.2 expected: partner NORMAL", Normal, None),
            (
                "§8.8.2/§8.9.2 expected: partner reconnecting from COMMUNICATIONS-INTERRUPTED",
                CommunicationsInterrupted,
                None,
            ),
            (
                "§8.8.2/§8.7.2 expected: partner RECOVER-DONE on its way to NORMAL",
                RecoverDone,
                None,
            ),
            (
                "§8.8.2/§8.10.2 expected: primary CONFLICT-DONE after the secondary's UPDDONE",
                ConflictDone,
                None,
            ),
            (
                "§8.8.2 'NORMAL into POTENTIAL-CONFLICT' is unexpected → COMMUNICATIONS-INTERRUPTED",
                PotentialConflict,
                ci,
            ),
            (
                "§8.8.2 unexpected PARTNER-DOWN → COMMUNICATIONS-INTERRUPTED",
                PartnerDown,
                ci,
            ),
            (
                "§8.8.2 unexpected RESOLUTION-INTERRUPTED → COMMUNICATIONS-INTERRUPTED",
                ResolutionInterrupted,
                ci,
            ),
            (
                "§8.8.2 unexpected RECOVER → COMMUNICATIONS-INTERRUPTED",
                Recover,
                ci,
            ),
            (
                "§8.8.2 unexpected RECOVER-WAIT → COMMUNICATIONS-INTERRUPTED",
                RecoverWait,
                ci,
            ),
        ],
    );
    for p in SENDABLE {
        assert_eq!(
            expected_in_normal(p),
            after_partner_state(Role::Primary, Normal, p, false).is_none()
        );
    }
}

#[test]
fn communications_interrupted_reconnect_follows_partner_state_8_9_2() {
    let pc = Some(PotentialConflict);
    check_partner_rows(
        CommunicationsInterrupted,
        &[
            ("§8.9.2 NORMAL → NORMAL", Normal, Some(Normal)),
            (
                "§8.9.2 COMMUNICATIONS-INTERRUPTED → NORMAL",
                CommunicationsInterrupted,
                Some(Normal),
            ),
            (
                "§8.9.2 RECOVER: stay in COMMUNICATIONS-INTERRUPTED",
                Recover,
                None,
            ),
            ("§8.9.2 RECOVER-DONE → NORMAL", RecoverDone, Some(Normal)),
            ("§8.9.2 PARTNER-DOWN → POTENTIAL-CONFLICT", PartnerDown, pc),
            (
                "§8.9.2 POTENTIAL-CONFLICT → POTENTIAL-CONFLICT",
                PotentialConflict,
                pc,
            ),
            (
                "§8.9.2 CONFLICT-DONE → POTENTIAL-CONFLICT",
                ConflictDone,
                pc,
            ),
            (
                "§8.9.2 RESOLUTION-INTERRUPTED → POTENTIAL-CONFLICT",
                ResolutionInterrupted,
                pc,
            ),
            (
                "digest §14 item 9 / Figure 6: RECOVER-WAIT → stay",
                RecoverWait,
                None,
            ),
        ],
    );
}

#[test]
fn potential_conflict_leaves_only_on_upddone_or_failure_8_10_2() {
    let rows: Vec<_> = SENDABLE
        .iter()
        .map(|p| ("§8.10.2 only UPDDONE or a communications failure", *p, None))
        .collect();
    check_partner_rows(PotentialConflict, &rows);
}

#[test]
fn resolution_interrupted_goes_to_potential_conflict_when_restored_8_11_2() {
    let rows: Vec<_> = SENDABLE
        .iter()
        .map(|p| {
            (
                "§8.11.2 communications restored → POTENTIAL-CONFLICT",
                *p,
                Some(PotentialConflict),
            )
        })
        .collect();
    check_partner_rows(ResolutionInterrupted, &rows);
}

#[test]
fn conflict_done_waits_for_partner_normal_8_12_2() {
    let mut rows = vec![(
        "§8.12.2 secondary entered NORMAL → NORMAL",
        Normal,
        Some(Normal),
    )];
    rows.extend(SENDABLE.iter().filter(|p| **p != Normal).map(|p| {
        (
            "§8.12.1 remain in CONFLICT-DONE until the conditions are met",
            *p,
            None,
        )
    }));
    check_partner_rows(ConflictDone, &rows);
}

#[test]
fn communications_failure_transitions_8() {
    let rows = [
        (
            "§8.8.2 NORMAL, communications not OK → COMMUNICATIONS-INTERRUPTED",
            Normal,
            Some(CommunicationsInterrupted),
        ),
        (
            "§8.10.2 POTENTIAL-CONFLICT, communication fails → RESOLUTION-INTERRUPTED",
            PotentialConflict,
            Some(ResolutionInterrupted),
        ),
        (
            "§8.5.2 RECOVER: communication fails → remain in RECOVER",
            Recover,
            None,
        ),
        ("§8.6.2 RECOVER-WAIT: no effect", RecoverWait, None),
        ("§8.7.2 RECOVER-DONE: stay", RecoverDone, None),
        ("§8.12.2 CONFLICT-DONE: remain", ConflictDone, None),
        (
            "§8.9 COMMUNICATIONS-INTERRUPTED is the failed state",
            CommunicationsInterrupted,
            None,
        ),
        (
            "§8.4 PARTNER-DOWN has no failure transition",
            PartnerDown,
            None,
        ),
        (
            "§8.11 RESOLUTION-INTERRUPTED is the failed state",
            ResolutionInterrupted,
            None,
        ),
        ("§8.3.2 step 6: STARTUP waits for its timer", Startup, None),
    ];
    for (rfc, s, expected) in rows {
        assert_eq!(after_communications_failed(s), expected, "{rfc}");
    }
}

#[test]
fn upddone_transitions_8_5_2_and_8_10_2() {
    let rows = [
        (
            "§8.5.2 RECOVER, UPDDONE → RECOVER-WAIT",
            Role::Primary,
            Recover,
            Some(RecoverWait),
        ),
        (
            "§8.5.2 RECOVER, UPDDONE → RECOVER-WAIT",
            Role::Secondary,
            Recover,
            Some(RecoverWait),
        ),
        (
            "§8.10.2 primary MUST transition to CONFLICT-DONE",
            Role::Primary,
            PotentialConflict,
            Some(ConflictDone),
        ),
        (
            "§8.10.2 secondary MUST transition to NORMAL",
            Role::Secondary,
            PotentialConflict,
            Some(Normal),
        ),
        (
            "UPDDONE answers nothing in NORMAL",
            Role::Primary,
            Normal,
            None,
        ),
    ];
    for (rfc, role, s, expected) in rows {
        assert_eq!(after_upddone(role, s), expected, "{rfc}");
    }
}

#[test]
fn operator_partner_down_only_from_the_external_command_states() {
    let rows = [
        (
            "§8.8.2 NORMAL: external command → PARTNER-DOWN",
            Normal,
            true,
        ),
        (
            "§8.9.2 COMMUNICATIONS-INTERRUPTED: external command → PARTNER-DOWN",
            CommunicationsInterrupted,
            true,
        ),
        (
            "§8.11.2 RESOLUTION-INTERRUPTED: external command → PARTNER-DOWN",
            ResolutionInterrupted,
            true,
        ),
        ("no external-command arc from STARTUP", Startup, false),
        ("already PARTNER-DOWN", PartnerDown, false),
        (
            "no arc from POTENTIAL-CONFLICT (Figure 6)",
            PotentialConflict,
            false,
        ),
        ("no arc from RECOVER", Recover, false),
        ("no arc from RECOVER-WAIT", RecoverWait, false),
        ("no arc from RECOVER-DONE", RecoverDone, false),
        ("no arc from CONFLICT-DONE", ConflictDone, false),
    ];
    for (rfc, s, allowed) in rows {
        assert_eq!(operator_partner_down_allowed(s), allowed, "{rfc}");
    }
}

#[test]
fn startup_step_2_replaces_communications_ok_states_8_3_2() {
    let rows = [
        (
            "§8.3.2 step 2: NORMAL → its comm-failed result",
            Normal,
            CommunicationsInterrupted,
        ),
        (
            "§8.3.2 step 2: POTENTIAL-CONFLICT → RESOLUTION-INTERRUPTED",
            PotentialConflict,
            ResolutionInterrupted,
        ),
        (
            "§8.3.2 step 2: no comm-failed transition: COMMUNICATIONS-INTERRUPTED",
            CommunicationsInterrupted,
            CommunicationsInterrupted,
        ),
        ("… PARTNER-DOWN", PartnerDown, PartnerDown),
        ("… RECOVER", Recover, Recover),
        ("… RECOVER-WAIT", RecoverWait, RecoverWait),
        ("… RECOVER-DONE", RecoverDone, RecoverDone),
        (
            "… RESOLUTION-INTERRUPTED",
            ResolutionInterrupted,
            ResolutionInterrupted,
        ),
        ("… CONFLICT-DONE", ConflictDone, ConflictDone),
        ("D15: a recorded STARTUP reads as RECOVER", Startup, Recover),
    ];
    for (rfc, recorded, previous) in rows {
        assert_eq!(startup_previous_state(recorded), previous, "{rfc}");
    }
}

#[test]
fn startup_step_5_partner_down_time_decides_8_3_2() {
    let tof = Some(FailoverTime(1000));
    let rows = [
        (
            "§8.3.2 step 5: partner not PARTNER-DOWN → PREVIOUS-STATE",
            CommunicationsInterrupted,
            tof,
            Normal,
            FailoverTime(5000),
            CommunicationsInterrupted,
        ),
        (
            "§8.3.2 step 5: PARTNER-DOWN since after our last operation → RECOVER",
            CommunicationsInterrupted,
            tof,
            PartnerDown,
            FailoverTime(1001),
            Recover,
        ),
        (
            "§8.3.2 step 5: PARTNER-DOWN since before our last operation → POTENTIAL-CONFLICT",
            CommunicationsInterrupted,
            tof,
            PartnerDown,
            FailoverTime(999),
            PotentialConflict,
        ),
        (
            "D15: the same second counts as 'not later' → POTENTIAL-CONFLICT",
            PartnerDown,
            tof,
            PartnerDown,
            FailoverTime(1000),
            PotentialConflict,
        ),
        (
            "§8.3.2 step 1: no record, TIME-OF-FAILURE 0 → partner's PARTNER-DOWN is later → RECOVER",
            Recover,
            None,
            PartnerDown,
            FailoverTime(1),
            Recover,
        ),
    ];
    for (rfc, previous, tof, partner, since, expected) in rows {
        assert_eq!(
            startup_resume(previous, tof, partner, since),
            expected,
            "{rfc}"
        );
    }
}

#[test]
fn serving_policy_per_state_and_role_8() {
    use Responsiveness::*;
    // (RFC, state, primary responsiveness, primary new leases, secondary responsiveness,
    //  secondary new leases, MCLT cap)
    let rows = [
        (
            "§8.3.1 MUST NOT be responsive in STARTUP",
            Startup,
            Unresponsive,
            false,
            Unresponsive,
            false,
            true,
        ),
        (
            "§8.8.1 primary responsive, secondary renew responsive",
            Normal,
            Responsive,
            true,
            RenewResponsive,
            false,
            true,
        ),
        (
            "§8.9.1 MUST respond to all; own pool; MCLT",
            CommunicationsInterrupted,
            Responsive,
            true,
            Responsive,
            true,
            true,
        ),
        (
            "§8.4.1 MUST be responsive; not restricted by the MCLT",
            PartnerDown,
            Responsive,
            true,
            Responsive,
            true,
            false,
        ),
        (
            "§8.10.1 MUST NOT process any incoming DHCP requests",
            PotentialConflict,
            Unresponsive,
            false,
            Unresponsive,
            false,
            true,
        ),
        (
            "§8.5.1 MUST NOT be responsive in RECOVER",
            Recover,
            Unresponsive,
            false,
            Unresponsive,
            false,
            true,
        ),
        (
            "§8.6.1 MUST NOT be responsive in RECOVER-WAIT",
            RecoverWait,
            Unresponsive,
            false,
            Unresponsive,
            false,
            true,
        ),
        (
            "§8.7.1 SHOULD be renew responsive; MUST NOT allocate",
            RecoverDone,
            RenewResponsive,
            false,
            RenewResponsive,
            false,
            true,
        ),
        (
            "§8.11.1 MUST respond to all; own pool; MCLT",
            ResolutionInterrupted,
            Responsive,
            true,
            Responsive,
            true,
            true,
        ),
        (
            "§8.12.1 primary fully responsive (secondary never here)",
            ConflictDone,
            Responsive,
            true,
            RenewResponsive,
            false,
            true,
        ),
    ];
    for (rfc, s, p_resp, p_new, s_resp, s_new, capped) in rows {
        let p = serving_policy(Role::Primary, s, 600);
        let q = serving_policy(Role::Secondary, s, 600);
        assert_eq!(
            (p.responsiveness, p.new_leases),
            (p_resp, p_new),
            "{rfc}: primary"
        );
        assert_eq!(
            (q.responsiveness, q.new_leases),
            (s_resp, s_new),
            "{rfc}: secondary"
        );
        let cap = capped.then_some(600);
        assert_eq!((p.mclt, q.mclt), (cap, cap), "{rfc}: MCLT");
        // §4.2.1.1 primary odd / secondary even; §4.2.2 FREE / FREE-BACKUP; §8.9.1 own pool.
        assert_eq!(
            (p.addresses, p.prefixes),
            (AddressShare::Odd, PrefixShare::Free),
            "{rfc}"
        );
        assert_eq!(
            (q.addresses, q.prefixes),
            (AddressShare::Even, PrefixShare::FreeBackup),
            "{rfc}"
        );
        // §4.2.2.1 / §8.4.1: reuse by another client only once FREE (D16).
        assert!(
            p.reuse_needs_partner_ack && q.reuse_needs_partner_ack,
            "{rfc}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// The same sentences through a real endpoint.

/// An endpoint whose stable storage says `state`, after its STARTUP timer ran out without a
/// partner (§8.3.2 step 6): in PREVIOUS-STATE.
fn endpoint_in(role: Role, state: StateName) -> One {
    let mut one = One::new(config(role), Some(record(state, 5)));
    one.advance(11_000);
    assert_eq!(
        one.state(),
        startup_previous_state(state),
        "step 6 → PREVIOUS-STATE"
    );
    one.take_sent();
    one
}

#[test]
fn endpoint_communications_interrupted_reconnect_follows_partner_state() {
    let rows = [
        ("§8.9.2", Normal, Normal),
        ("§8.9.2", CommunicationsInterrupted, Normal),
        ("§8.9.2", Recover, CommunicationsInterrupted),
        ("§8.9.2", RecoverDone, Normal),
        ("§8.9.2", PartnerDown, PotentialConflict),
        ("§8.9.2", PotentialConflict, PotentialConflict),
        ("§8.9.2", ConflictDone, PotentialConflict),
        ("§8.9.2", ResolutionInterrupted, PotentialConflict),
    ];
    for role in BOTH {
        for (rfc, partner, expected) in rows {
            let mut one = endpoint_in(role, CommunicationsInterrupted);
            one.handshake_with(partner, COMMUNICATED);
            assert_eq!(
                one.state(),
                expected,
                "{rfc} {role:?}: partner in {partner:?}"
            );
            // §8.1: the new state goes to the partner in a STATE.
            assert_eq!(
                one.states_sent().last(),
                Some(&expected),
                "{rfc}: STATE announces it"
            );
        }
    }
}

#[test]
fn endpoint_partner_down_reconnect_follows_partner_state() {
    let rows = [
        ("§8.4.2", Normal, PotentialConflict),
        ("§8.4.2", CommunicationsInterrupted, PotentialConflict),
        ("§8.4.2", PartnerDown, PotentialConflict),
        ("§8.4.2", PotentialConflict, PotentialConflict),
        ("§8.4.2", ResolutionInterrupted, PotentialConflict),
        ("§8.4.2", ConflictDone, PotentialConflict),
        ("§8.4.2", Recover, PartnerDown),
        ("§8.4.2", RecoverWait, PartnerDown),
        ("§8.4.2", RecoverDone, Normal),
    ];
    for role in BOTH {
        for (rfc, partner, expected) in rows {
            let mut one = endpoint_in(role, PartnerDown);
            one.handshake_with(partner, COMMUNICATED);
            assert_eq!(
                one.state(),
                expected,
                "{rfc} {role:?}: partner in {partner:?}"
            );
        }
        // §8.4.2: STARTUP bit set → no transition, whatever the state.
        let mut one = endpoint_in(role, PartnerDown);
        one.handshake_with(Normal, STARTUP | COMMUNICATED);
        assert_eq!(one.state(), PartnerDown, "§8.4.2 STARTUP bit ignored");
        assert!(one.ep.communications_ok());
        // … and the partner's next STATE without it is acted on.
        let since = one.wall();
        one.recv(&common::state_msg(Normal, COMMUNICATED, since), 1001);
        assert_eq!(one.state(), PotentialConflict, "§8.4.2 'at any time later'");
    }
}

#[test]
fn endpoint_recover_done_follows_partner_state() {
    let rows = [
        ("§8.7.2", Normal, Normal),
        ("§8.7.2", RecoverDone, Normal),
        (
            "§8.7.2 RECOVER → COMMUNICATIONS-INTERRUPTED (and stays, §8.9.2)",
            Recover,
            CommunicationsInterrupted,
        ),
        (
            "§8.7.2 RECOVER-WAIT → COMMUNICATIONS-INTERRUPTED (and stays)",
            RecoverWait,
            CommunicationsInterrupted,
        ),
        ("§8.7.2", PotentialConflict, PotentialConflict),
        ("Figure 6 wait", CommunicationsInterrupted, RecoverDone),
        ("Figure 6 wait", PartnerDown, RecoverDone),
        ("D14", ConflictDone, PotentialConflict),
    ];
    for role in BOTH {
        for (rfc, partner, expected) in rows {
            let mut one = endpoint_in(role, RecoverDone);
            one.handshake_with(partner, COMMUNICATED);
            assert_eq!(
                one.state(),
                expected,
                "{rfc} {role:?}: partner in {partner:?}"
            );
        }
    }
}

#[test]
fn endpoint_resolution_interrupted_restored_goes_to_potential_conflict() {
    for role in BOTH {
        for partner in SENDABLE {
            let mut one = endpoint_in(role, ResolutionInterrupted);
            one.handshake_with(partner, COMMUNICATED);
            assert_eq!(
                one.state(),
                PotentialConflict,
                "§8.11.2 {role:?} partner {partner:?}"
            );
        }
    }
}

#[test]
fn endpoint_conflict_done_leaves_for_normal_only_when_partner_is_normal() {
    for partner in SENDABLE {
        let mut one = endpoint_in(Role::Primary, ConflictDone);
        one.handshake_with(partner, COMMUNICATED);
        let expected = if partner == Normal {
            Normal
        } else {
            ConflictDone
        };
        assert_eq!(one.state(), expected, "§8.12.2 partner {partner:?}");
    }
}

#[test]
fn endpoint_communications_failure_moves_normal_and_potential_conflict() {
    // NORMAL: reached from COMMUNICATIONS-INTERRUPTED with a NORMAL partner (§8.9.2).
    let mut one = endpoint_in(Role::Primary, CommunicationsInterrupted);
    one.handshake_with(Normal, COMMUNICATED);
    assert_eq!(one.state(), Normal);
    one.closed();
    assert_eq!(one.state(), CommunicationsInterrupted, "§8.8.2");
    assert!(
        one.events
            .iter()
            .any(|e| matches!(e, tandem_failover::Event::Alarm(CommunicationsInterrupted))),
        "§8.9 alarm"
    );
    // POTENTIAL-CONFLICT → RESOLUTION-INTERRUPTED (§8.10.2).
    let mut one = endpoint_in(Role::Primary, CommunicationsInterrupted);
    one.handshake_with(PartnerDown, COMMUNICATED);
    assert_eq!(one.state(), PotentialConflict);
    one.closed();
    assert_eq!(one.state(), ResolutionInterrupted, "§8.10.2");
    // DISCONNECT received in NORMAL (§8.8.2).
    let mut one = endpoint_in(Role::Secondary, CommunicationsInterrupted);
    one.handshake_with(Normal, COMMUNICATED);
    assert_eq!(one.state(), Normal);
    one.recv(&tandem_wire::failover::Failover::Disconnect(None), 5);
    assert_eq!(one.state(), CommunicationsInterrupted, "§8.8.2 DISCONNECT");
    assert!(one.closed_by_us());
}

#[test]
fn endpoint_operator_partner_down_allowed_states_only() {
    for role in BOTH {
        // §8.9.2 from COMMUNICATIONS-INTERRUPTED.
        let mut one = endpoint_in(role, CommunicationsInterrupted);
        assert_eq!(
            one.ep.handle_operator(one.now(), Operator::PartnerDown),
            Ok(())
        );
        assert_eq!(one.state(), PartnerDown);
        // §8.11.2 from RESOLUTION-INTERRUPTED.
        let mut one = endpoint_in(role, ResolutionInterrupted);
        assert_eq!(
            one.ep.handle_operator(one.now(), Operator::PartnerDown),
            Ok(())
        );
        assert_eq!(one.state(), PartnerDown);
        // §8.8.2 from NORMAL, with the partner still connected: PARTNER-DOWN, announced.
        let mut one = endpoint_in(role, CommunicationsInterrupted);
        one.handshake_with(Normal, COMMUNICATED);
        one.take_sent();
        assert_eq!(
            one.ep.handle_operator(one.now(), Operator::PartnerDown),
            Ok(())
        );
        one.drain();
        assert_eq!(one.state(), PartnerDown);
        assert_eq!(
            one.states_sent(),
            vec![PartnerDown],
            "§8.1 STATE on the change"
        );
        // Refused elsewhere.
        for s in [Recover, RecoverWait, RecoverDone, PartnerDown] {
            let mut one = endpoint_in(role, s);
            assert_eq!(
                one.ep.handle_operator(one.now(), Operator::PartnerDown),
                Err(Refused::NotFromState(s)),
                "{s:?}"
            );
        }
    }
    let mut one = One::new(config(Role::Primary), None);
    assert_eq!(
        one.ep.handle_operator(one.now(), Operator::PartnerDown),
        Err(Refused::NotFromState(Startup)),
    );
    one.drain();
}

#[test]
fn endpoint_auto_partner_down_fires_after_the_configured_time_8_9_2() {
    let mut cfg = config(Role::Secondary);
    cfg.auto_partner_down = Some(120);
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.advance(11_000); // STARTUP ends at 10 s: COMMUNICATIONS-INTERRUPTED since then
    assert_eq!(one.state(), CommunicationsInterrupted);
    one.advance(118_000);
    assert_eq!(
        one.state(),
        CommunicationsInterrupted,
        "not before 120 s in the state"
    );
    one.advance(1_000);
    assert_eq!(
        one.state(),
        PartnerDown,
        "§8.9.2 auto-partner-down timer expired"
    );
    // Off by default.
    let mut one = endpoint_in(Role::Secondary, CommunicationsInterrupted);
    one.advance(10 * 86_400_000);
    assert_eq!(one.state(), CommunicationsInterrupted);
}
