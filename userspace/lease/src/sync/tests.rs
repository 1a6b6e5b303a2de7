//! Tests of RFC 8156 §7.5.4 (Figure 4, one row per cell), §7.5.5 / Figure 5 (one test per
//! mapping row) and §7.7.

use core::net::Ipv6Addr;

use super::*;
use crate::transition::FreeStatus;

use BindingStatus as S;

const T0: FailoverTime = FailoverTime(800_000_000);
/// An odd address: the primary's by §4.2.1.1.
const ODD: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
const EVEN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

fn t(offset: i64) -> FailoverTime {
    FailoverTime((i64::from(T0.0) + offset) as u32)
}

fn duid(last: u8) -> DuidBuf {
    DuidBuf::new(&[0, 3, 0, 1, 0, 0x11, 0x22, 0x33, 0x44, last]).unwrap()
}

/// Our binding of `ODD` for client A (IAID 1): status `status` since T0, no CLTT of its own
/// (so its §7.5.4 time is the start time), ending at T0 + 1000 when the status has a timeout.
fn ours(status: BindingStatus) -> Binding {
    let mut b = Binding::free(LeaseKind::Address, ODD, 128, 7);
    b.status = status;
    b.duid = duid(0xa);
    b.iaid = 1;
    b.start_time_of_state = T0;
    if status == S::ACTIVE {
        b.state_expiration_time = t(1000);
    }
    b
}

/// An update of `ODD` for client A with `status` that started at T0 + 100, without CLT.
fn upd(status: BindingStatus) -> LeaseUpdate {
    LeaseUpdate {
        kind: LeaseKind::Address,
        addr: ODD,
        prefix_len: 128,
        client: Some(UpdateClient {
            duid: duid(0xa),
            iaid: 1,
            t1: 300,
            t2: 480,
        }),
        preferred: 600,
        valid: 900,
        status,
        start_time_of_state: t(100),
        state_expiration_time: None,
        clt_time: None,
        partner_raw_clt_time: None,
        partner_lifetime: None,
        expiration_time: None,
    }
}

fn accepted(rule: Rule) -> Decision {
    Decision::Accept { rule }
}

fn outdated(rule: Rule) -> Decision {
    Decision::Outdated {
        rule,
        send_now: true,
    }
}

/// Checks that `rule` behaves as its paragraph under Figure 4 says, for our status `o` and the
/// received status `r` (a scenario that accepts and one that rejects, each way the rule can
/// go).
fn exercise(rule: Rule, o: BindingStatus, r: BindingStatus, why: &str) {
    let both = [Role::Primary, Role::Secondary];
    match rule {
        // "If the time value in the OPTION_CLIENT_DATA ... is later than the time value in the
        // server's binding database, accept it, else reject it."
        Rule::Accept => {
            for role in both {
                let mut u = upd(r);
                u.start_time_of_state = t(100);
                assert_eq!(
                    decide(Some(&ours(o)), &u, role, t(0)),
                    accepted(rule),
                    "{why}"
                );
                u.start_time_of_state = t(-100);
                assert_eq!(
                    decide(Some(&ours(o)), &u, role, t(0)),
                    outdated(rule),
                    "{why}"
                );
            }
        }
        // "If the current time is later than the receiving server's state-expiration-time,
        // accept it, else reject it."
        Rule::Time1 => {
            for role in both {
                let u = upd(r);
                let b = ours(o);
                assert_eq!(decide(Some(&b), &u, role, t(2000)), accepted(rule), "{why}");
                assert_eq!(decide(Some(&b), &u, role, t(500)), outdated(rule), "{why}");
            }
        }
        // "If the OPTION_CLT_TIME value (if it appears) in the OPTION_CLIENT_DATA is later than
        // the start-time-of-state in the receiving server's binding, accept it, else reject."
        Rule::Time2 => {
            for role in both {
                let mut u = upd(r);
                u.start_time_of_state = t(-500); // the update's start time plays no part
                u.clt_time = Some(t(100));
                assert_eq!(
                    decide(Some(&ours(o)), &u, role, t(0)),
                    accepted(rule),
                    "{why}"
                );
                u.clt_time = Some(t(-100));
                assert_eq!(
                    decide(Some(&ours(o)), &u, role, t(0)),
                    outdated(rule),
                    "{why}"
                );
                u.clt_time = None; // "(if it appears)"
                u.start_time_of_state = t(500);
                assert_eq!(
                    decide(Some(&ours(o)), &u, role, t(0)),
                    outdated(rule),
                    "{why}"
                );
            }
        }
        // "If the clients ... differ, then if time(2) or the receiving server is a secondary
        // accept it, else reject it with a status-code of "AddressInUse". If the clients
        // match, accept the update" — unless it is older than ours (D40).
        Rule::Accept3 => {
            let mut same = upd(r);
            same.clt_time = Some(t(-100));
            same.state_expiration_time = Some(t(1100)); // ours ends at T0 + 1000
            for role in both {
                assert_eq!(
                    decide(Some(&ours(o)), &same, role, t(0)),
                    accepted(rule),
                    "{why}: same client, a later end"
                );
            }
            same.state_expiration_time = Some(t(900));
            for role in both {
                assert_eq!(
                    decide(Some(&ours(o)), &same, role, t(0)),
                    outdated(rule),
                    "{why}: same client, an earlier end (D40)"
                );
            }
            let mut other = same;
            other.client = Some(UpdateClient {
                duid: duid(0xb),
                ..same.client.unwrap()
            });
            let b = ours(o);
            assert_eq!(
                decide(Some(&b), &other, Role::Primary, t(0)),
                Decision::AddressInUse,
                "{why}: primary, time(2) fails"
            );
            assert_eq!(
                decide(Some(&b), &other, Role::Secondary, t(0)),
                accepted(rule),
                "{why}: secondary"
            );
            other.clt_time = Some(t(100));
            assert_eq!(
                decide(Some(&b), &other, Role::Primary, t(0)),
                accepted(rule),
                "{why}: primary, time(2) holds"
            );
        }
        Rule::NoBinding | Rule::Consistent => unreachable!("not a Figure 4 cell"),
    }
}

/// RFC 8156 §7.5.4 Figure 4, one row per cell: (statuses of the row, statuses of the column,
/// the rule in the cell).
#[test]
fn figure4_one_row_per_cell_7_5_4() {
    const FREE: &[S] = &[S::FREE, S::FREE_BACKUP];
    const FREE_COL: &[S] = &[S::FREE, S::FREE_BACKUP, S::PENDING_FREE];
    const RESET_ABANDONED: &[S] = &[S::RESET, S::ABANDONED];
    #[rustfmt::skip]
    let cells: &[(&[S], &[S], Rule, &str)] = &[
        (&[S::ACTIVE], &[S::ACTIVE], Rule::Accept3, "§7.5.4 Fig. 4 ACTIVE / ACTIVE: accept(3)"),
        (&[S::ACTIVE], &[S::EXPIRED], Rule::Time1, "§7.5.4 Fig. 4 ACTIVE / EXPIRED: time(1)"),
        (&[S::ACTIVE], &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 ACTIVE / RELEASED: accept"),
        (&[S::ACTIVE], FREE_COL, Rule::Time1, "§7.5.4 Fig. 4 ACTIVE / FREE, FREE-BACKUP: time(1)"),
        (&[S::ACTIVE], RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 ACTIVE / RESET, ABANDONED: accept"),
        (&[S::EXPIRED], &[S::ACTIVE], Rule::Accept, "§7.5.4 Fig. 4 EXPIRED / ACTIVE: accept"),
        (&[S::EXPIRED], &[S::EXPIRED], Rule::Accept, "§7.5.4 Fig. 4 EXPIRED / EXPIRED: accept"),
        (&[S::EXPIRED], &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 EXPIRED / RELEASED: accept"),
        (&[S::EXPIRED], FREE_COL, Rule::Accept, "§7.5.4 Fig. 4 EXPIRED / FREE, FREE-BACKUP: accept"),
        (&[S::EXPIRED], RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 EXPIRED / RESET, ABANDONED: accept"),
        (&[S::RELEASED], &[S::ACTIVE], Rule::Accept, "§7.5.4 Fig. 4 RELEASED / ACTIVE: accept"),
        (&[S::RELEASED], &[S::EXPIRED], Rule::Accept, "§7.5.4 Fig. 4 RELEASED / EXPIRED: accept"),
        (&[S::RELEASED], &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 RELEASED / RELEASED: accept"),
        (&[S::RELEASED], FREE_COL, Rule::Accept, "§7.5.4 Fig. 4 RELEASED / FREE, FREE-BACKUP: accept"),
        (&[S::RELEASED], RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 RELEASED / RESET, ABANDONED: accept"),
        (FREE, &[S::ACTIVE], Rule::Accept, "§7.5.4 Fig. 4 FREE, FREE-BACKUP / ACTIVE: accept"),
        (FREE, &[S::EXPIRED], Rule::Accept, "§7.5.4 Fig. 4 FREE, FREE-BACKUP / EXPIRED: accept"),
        (FREE, &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 FREE, FREE-BACKUP / RELEASED: accept"),
        (FREE, FREE_COL, Rule::Accept, "§7.5.4 Fig. 4 FREE, FREE-BACKUP / FREE, FREE-BACKUP: accept"),
        (FREE, RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 FREE, FREE-BACKUP / RESET, ABANDONED: accept"),
        (&[S::RESET], &[S::ACTIVE], Rule::Time2, "§7.5.4 Fig. 4 RESET / ACTIVE: time(2)"),
        (&[S::RESET], &[S::EXPIRED], Rule::Accept, "§7.5.4 Fig. 4 RESET / EXPIRED: accept"),
        (&[S::RESET], &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 RESET / RELEASED: accept"),
        (&[S::RESET], FREE_COL, Rule::Accept, "§7.5.4 Fig. 4 RESET / FREE, FREE-BACKUP: accept"),
        (&[S::RESET], RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 RESET / RESET, ABANDONED: accept"),
        (&[S::ABANDONED], &[S::ACTIVE], Rule::Accept, "§7.5.4 Fig. 4 ABANDONED / ACTIVE: accept"),
        (&[S::ABANDONED], &[S::EXPIRED], Rule::Accept, "§7.5.4 Fig. 4 ABANDONED / EXPIRED: accept"),
        (&[S::ABANDONED], &[S::RELEASED], Rule::Accept, "§7.5.4 Fig. 4 ABANDONED / RELEASED: accept"),
        (&[S::ABANDONED], FREE_COL, Rule::Accept, "§7.5.4 Fig. 4 ABANDONED / FREE, FREE-BACKUP: accept"),
        (&[S::ABANDONED], RESET_ABANDONED, Rule::Accept, "§7.5.4 Fig. 4 ABANDONED / RESET, ABANDONED: accept"),
    ];
    assert_eq!(cells.len(), 6 * 5, "Figure 4 has 6 rows and 5 columns");
    for (rows, cols, rule, why) in cells {
        for &o in *rows {
            for &r in *cols {
                assert_eq!(figure4_rule(o, r), *rule, "{why} ({o} / {r})");
                exercise(*rule, o, r, why);
            }
        }
    }
    // Every pair of the eight statuses is in exactly one cell (our PENDING-FREE, never stored,
    // reads as the FREE row).
    let all = [
        S::ACTIVE,
        S::EXPIRED,
        S::RELEASED,
        S::PENDING_FREE,
        S::FREE,
        S::FREE_BACKUP,
        S::ABANDONED,
        S::RESET,
    ];
    for o in all {
        for r in all {
            let row = if o == S::PENDING_FREE { S::FREE } else { o };
            let hits: usize = cells
                .iter()
                .filter(|(rows, cols, ..)| rows.contains(&row) && cols.contains(&r))
                .count();
            assert_eq!(hits, 1, "{o} / {r}");
        }
    }
}

/// §7.5.1: "Any time that ends up being +/- 5 seconds of another time SHOULD be considered to
/// be representing the same time"; D24: for "accept" a tie goes to the primary's information.
/// D40: accept(3) with the same client on both sides. RFC 8156 §7.5.4 says "If the clients
/// match, accept the update", but an old snapshot of the client's lease (queued by the partner
/// before the client renewed here, and sent when the link came back) would then shorten the
/// lease the client holds now: this server would expire it early and, once the partner acks
/// the expiry, give it to another client. The later end wins, whatever the CLTs say (the
/// client's latest Reply may be one a server lost or has not sent yet); an equal end goes to
/// the primary's information.
#[test]
fn accept3_same_client_never_shortens_the_lease_d40() {
    let mut b = ours(S::ACTIVE);
    b.cltt = t(400);
    b.state_expiration_time = t(800);
    for role in [Role::Primary, Role::Secondary] {
        let mut u = upd(S::ACTIVE);
        // What the simulator found first: the partner's older Rebind (300), a shorter end.
        u.clt_time = Some(t(300));
        u.state_expiration_time = Some(t(366));
        assert_eq!(
            decide(Some(&b), &u, role, t(410)),
            outdated(Rule::Accept3),
            "{role:?}"
        );
        // And second: a later transaction (the partner's MCLT-capped renewal at 445, after
        // ours at 400) with an earlier end than ours; the client's latest (at 505, end 610)
        // was lost in the partner's power loss. Ours (800) still covers the client.
        u.clt_time = Some(t(445));
        u.state_expiration_time = Some(t(548));
        assert_eq!(
            decide(Some(&b), &u, role, t(532)),
            outdated(Rule::Accept3),
            "{role:?}"
        );
        // A later end is taken, older or not.
        u.clt_time = Some(t(300));
        u.state_expiration_time = Some(t(900));
        assert_eq!(
            decide(Some(&b), &u, role, t(410)),
            accepted(Rule::Accept3),
            "{role:?}"
        );
        // No timeout is the latest end of all.
        u.state_expiration_time = None;
        assert_eq!(
            decide(Some(&b), &u, role, t(410)),
            accepted(Rule::Accept3),
            "{role:?}"
        );
    }
    // The same end: the primary's information.
    let mut u = upd(S::ACTIVE);
    u.clt_time = Some(t(450));
    u.state_expiration_time = Some(t(800));
    assert!(!decide(Some(&b), &u, Role::Primary, t(410)).is_accept());
    assert!(decide(Some(&b), &u, Role::Secondary, t(410)).is_accept());
}

#[test]
fn accept_rule_ties_within_5s_go_to_the_primarys_information_7_5_1() {
    let b = ours(S::EXPIRED); // its time: start T0
    for (offset, primary, secondary) in [
        (6, true, true),
        (5, false, true),
        (0, false, true),
        (-5, false, true),
        (-6, false, false),
    ] {
        let mut u = upd(S::RELEASED);
        u.start_time_of_state = t(offset);
        let p = decide(Some(&b), &u, Role::Primary, t(0)).is_accept();
        let s = decide(Some(&b), &u, Role::Secondary, t(0)).is_accept();
        assert_eq!(
            (p, s),
            (primary, secondary),
            "update {offset:+} s from ours"
        );
    }
}

/// time(1) compares the clock with our own expiry: "later" is clearly later, a tie is not
/// (D24), for either role.
#[test]
fn time1_needs_the_expiry_clearly_past_7_5_4() {
    let b = ours(S::ACTIVE); // ends at T0 + 1000
    for (now, accept) in [(1006, true), (1005, false), (1000, false), (995, false)] {
        for role in [Role::Primary, Role::Secondary] {
            let d = decide(Some(&b), &upd(S::EXPIRED), role, t(now));
            assert_eq!(d.is_accept(), accept, "now = end {:+} s", now - 1000);
        }
    }
    // An ACTIVE lease without a timeout (infinite lifetime) never ends.
    let mut forever = b;
    forever.state_expiration_time = FailoverTime(0);
    let d = decide(Some(&forever), &upd(S::FREE), Role::Secondary, t(1 << 30));
    assert_eq!(d, outdated(Rule::Time1));
}

#[test]
fn time2_ties_within_5s_go_to_the_active_binding_d43() {
    // D43 (it was D24's tie to the primary's information): at the same time the ACTIVE
    // binding wins, for either role.
    let b = ours(S::RESET); // since T0
    for (offset, primary, secondary) in [
        (6, true, true),
        (5, true, true),
        (-5, true, true),
        (-6, false, false),
    ] {
        let mut u = upd(S::ACTIVE);
        u.clt_time = Some(t(offset));
        let p = decide(Some(&b), &u, Role::Primary, t(0)).is_accept();
        let s = decide(Some(&b), &u, Role::Secondary, t(0)).is_accept();
        assert_eq!(
            (p, s),
            (primary, secondary),
            "CLT {offset:+} s from our start"
        );
    }
    // accept(3) for another client: the primary needs time(2), so a tie is AddressInUse.
    let b = ours(S::ACTIVE);
    let mut u = upd(S::ACTIVE);
    u.client = Some(UpdateClient {
        duid: duid(0xb),
        ..u.client.unwrap()
    });
    u.clt_time = Some(t(5));
    assert_eq!(
        decide(Some(&b), &u, Role::Primary, t(0)),
        Decision::AddressInUse
    );
    u.clt_time = Some(t(6));
    assert!(decide(Some(&b), &u, Role::Primary, t(0)).is_accept());
}

/// §7.5.4: "The time for the BNDUPD message where the OPTION_F_BINDING_STATUS is ACTIVE,
/// EXPIRED, or RELEASED is the OPTION_CLT_TIME if one appears, or the
/// OPTION_F_START_TIME_OF_STATE if one does not. For other binding-status values, ... the later
/// of".
#[test]
fn update_time_per_status_7_5_4() {
    for status in [S::ACTIVE, S::EXPIRED, S::RELEASED] {
        let mut u = upd(status);
        u.start_time_of_state = t(50);
        assert_eq!(u.update_time(), t(50), "{status} without CLT");
        u.clt_time = Some(t(-50));
        assert_eq!(u.update_time(), t(-50), "{status}: the CLT even if earlier");
    }
    for status in [
        S::FREE,
        S::FREE_BACKUP,
        S::ABANDONED,
        S::RESET,
        S::PENDING_FREE,
    ] {
        let mut u = upd(status);
        u.start_time_of_state = t(50);
        assert_eq!(u.update_time(), t(50), "{status} without CLT");
        u.clt_time = Some(t(-50));
        assert_eq!(u.update_time(), t(50), "{status}: start is later");
        u.clt_time = Some(t(70));
        assert_eq!(u.update_time(), t(70), "{status}: CLT is later");
    }
}

/// §7.5.4: "The time for the lease in the server's binding database is the
/// client-last-transaction-time if one appears, or the start-time-of-state if one does not."
#[test]
fn our_time_is_the_cltt_if_any_else_the_start_7_5_4() {
    let mut b = ours(S::RELEASED); // start T0
    b.cltt = t(300);
    let mut u = upd(S::EXPIRED);
    u.start_time_of_state = t(200); // later than our start, earlier than our CLTT
    assert_eq!(
        decide(Some(&b), &u, Role::Secondary, t(0)),
        outdated(Rule::Accept)
    );
    b.cltt = FailoverTime(0);
    assert!(decide(Some(&b), &u, Role::Secondary, t(0)).is_accept());
    // Neither set: nothing to defend.
    b.start_time_of_state = FailoverTime(0);
    u.start_time_of_state = FailoverTime(5);
    assert!(decide(Some(&b), &u, Role::Primary, t(0)).is_accept());
}

/// D42: for FREE, FREE-BACKUP, RESET and ABANDONED our time is the later of our CLTT and our
/// start, as the update's is. What the simulator found: both servers reset a declined address
/// at the end of its quarantine and free it, each sends its FREE, and with "our CLTT" against
/// "their start" each found the other's later, accepted it, swapped start times with the
/// partner, so neither ack matched what was sent and the flags never cleared: the same
/// crossing on every periodic resend, forever.
#[test]
fn crossing_updates_of_a_free_lease_are_not_both_accepted_d42() {
    let mut p = ours(S::FREE);
    p.cltt = t(317);
    p.start_time_of_state = t(1101);
    let mut s = ours(S::FREE);
    s.cltt = t(488);
    s.start_time_of_state = t(1202);
    let as_update = |b: &Binding| {
        let mut u = upd(b.status);
        u.start_time_of_state = b.start_time_of_state;
        u.clt_time = Some(b.cltt);
        u
    };
    for (role_p, role_s) in [
        (Role::Primary, Role::Secondary),
        (Role::Secondary, Role::Primary),
    ] {
        let p_takes = decide(Some(&p), &as_update(&s), role_p, t(1300)).is_accept();
        let s_takes = decide(Some(&s), &as_update(&p), role_s, t(1300)).is_accept();
        assert!(
            p_takes != s_takes,
            "exactly one side adopts the other's state"
        );
        assert!(p_takes, "the later FREE wins");
    }
    // The same for a RESET crossing a FREE.
    let mut r = ours(S::RESET);
    r.cltt = t(300);
    r.start_time_of_state = t(1000);
    let mut f = ours(S::FREE);
    f.cltt = t(300);
    f.start_time_of_state = t(1010);
    let both = decide(Some(&r), &as_update(&f), Role::Primary, t(1100)).is_accept()
        && decide(Some(&f), &as_update(&r), Role::Secondary, t(1100)).is_accept();
    assert!(!both);
}

/// D42: after the same client transaction, the status a server moved on to wins. What the long
/// simulator run found: the secondary's RELEASED was acked by the primary, the secondary freed
/// the address (FREE-BACKUP, its own) and told the primary, which refused it (the same client
/// time, the primary's information) and sent its RELEASED back, which the secondary took: the
/// same round on every periodic resend, forever.
#[test]
fn a_free_after_the_same_release_wins_over_the_release_d42() {
    let mut released = ours(S::RELEASED);
    released.cltt = t(1926);
    released.start_time_of_state = t(1926);
    let mut free = ours(S::FREE_BACKUP);
    free.cltt = t(1926);
    free.start_time_of_state = t(2514);
    let as_update = |b: &Binding| {
        let mut u = upd(b.status);
        u.start_time_of_state = b.start_time_of_state;
        u.clt_time = Some(b.cltt);
        u
    };
    for role in [Role::Primary, Role::Secondary] {
        assert!(
            decide(Some(&released), &as_update(&free), role, t(2515)).is_accept(),
            "{role:?}"
        );
        assert!(
            !decide(Some(&free), &as_update(&released), role, t(2515)).is_accept(),
            "{role:?}"
        );
    }
}

/// D42: a binding we only know from the partner is timed by the partner's client transaction.
/// (Within 5 s of it, D43 gives the tie to the ACTIVE binding.)
/// What the simulator found: the primary learnt the secondary's lease (CLT 221, end 294) late,
/// after a partition, and expired it at once (EXPIRED since 294); the secondary's renewal at
/// 290, sent next, was "outdated" against the start of EXPIRED (a tie the primary wins), so the
/// primary kept expired a lease its client held until 690.
#[test]
fn an_expiry_of_what_the_partner_told_us_yields_to_its_later_renewal_d42() {
    let mut b = ours(S::EXPIRED);
    b.cltt = FailoverTime(0);
    b.partner_raw_clt_time = t(221);
    b.start_time_of_state = t(294);
    let mut u = upd(S::ACTIVE);
    u.clt_time = Some(t(290));
    u.start_time_of_state = t(290);
    u.state_expiration_time = Some(t(690));
    for role in [Role::Primary, Role::Secondary] {
        assert_eq!(
            decide(Some(&b), &u, role, t(300)),
            accepted(Rule::Accept),
            "{role:?}"
        );
    }
    // Our own client transaction still comes first: a renewal clearly older is outdated.
    b.cltt = t(300);
    assert!(!decide(Some(&b), &u, Role::Primary, t(300)).is_accept());
}

/// D42: the client time of our binding is the later of ours and the partner's. What the
/// simulator found: the secondary renewed a lease at 505 and told the primary (which stored
/// CLT 505 as partner-raw-clt-time, end 600), then lost that renewal in a power loss; back up,
/// it sent its older binding (CLT 445, end 548), which the primary took as newer than its own
/// last transaction (277) and so forgot the end the client holds.
#[test]
fn an_older_partner_binding_never_replaces_the_partners_later_renewal_d42() {
    let mut b = ours(S::ACTIVE);
    b.cltt = t(277);
    b.partner_raw_clt_time = t(505);
    b.state_expiration_time = t(600);
    let mut u = upd(S::ACTIVE);
    u.clt_time = Some(t(445));
    u.partner_raw_clt_time = Some(t(277));
    u.state_expiration_time = Some(t(548));
    for role in [Role::Primary, Role::Secondary] {
        assert_eq!(
            decide(Some(&b), &u, role, t(532)),
            outdated(Rule::Accept3),
            "{role:?}"
        );
    }
    // Its renewal after ours and after the one it lost is taken.
    u.clt_time = Some(t(520));
    u.state_expiration_time = Some(t(620));
    assert!(decide(Some(&b), &u, Role::Primary, t(532)).is_accept());
}

/// D43: a release and a new Request within 5 s. What the simulator found: the secondary's
/// client released at 471 and asked again at 476; its two updates reached the primary, which
/// took the RELEASED and refused the ACTIVE (the same time, the primary's information wins),
/// then sent its RELEASED back, which the secondary took (the same time, the secondary
/// accepts): both servers held the lease released while the client held it.
#[test]
fn a_release_and_a_new_grant_within_5s_keep_the_lease_active_on_both_sides_d43() {
    let mut released = ours(S::RELEASED);
    released.cltt = FailoverTime(0);
    released.partner_raw_clt_time = t(471);
    released.start_time_of_state = t(471);
    let mut active = ours(S::ACTIVE);
    active.cltt = t(476);
    active.start_time_of_state = t(476);
    active.state_expiration_time = t(876);
    let mut u_active = upd(S::ACTIVE);
    u_active.clt_time = Some(t(476));
    u_active.start_time_of_state = t(476);
    u_active.state_expiration_time = Some(t(876));
    let mut u_released = upd(S::RELEASED);
    u_released.clt_time = Some(t(160));
    u_released.partner_raw_clt_time = Some(t(471));
    u_released.start_time_of_state = t(471);
    for role in [Role::Primary, Role::Secondary] {
        assert!(
            decide(Some(&released), &u_active, role, t(480)).is_accept(),
            "{role:?}: the RELEASED side takes the ACTIVE"
        );
        assert!(
            !decide(Some(&active), &u_released, role, t(480)).is_accept(),
            "{role:?}: the ACTIVE side keeps it"
        );
    }
}

/// D42: a RESET at the end of a decline's quarantine is as recent as the decline, not as its
/// own start. What the simulator found: the client declined at the primary (209) during a
/// partition, got the address back from the secondary (its own binding there) and renewed it
/// there until 572; the primary's quarantine ended at 584 (RESET); on reconnection the
/// primary's RESET replaced the secondary's ACTIVE (584 later than 572) and the primary
/// refused the ACTIVE (time(2) against its RESET start): the client's lease, known nowhere.
#[test]
fn a_reset_at_the_quarantine_end_does_not_outrank_a_later_renewal_d42() {
    let mut reset = ours(S::RESET);
    reset.cltt = t(209);
    reset.start_time_of_state = t(584);
    let mut active = ours(S::ACTIVE);
    active.cltt = t(572);
    active.start_time_of_state = t(340);
    active.state_expiration_time = t(647);
    let as_update = |b: &Binding| {
        let mut u = upd(b.status);
        u.start_time_of_state = b.start_time_of_state;
        u.clt_time = Some(b.cltt);
        u.state_expiration_time = nonzero(b.state_expiration_time);
        u
    };
    for role in [Role::Primary, Role::Secondary] {
        // The RESET side takes the renewal (time(2) against its client time) ...
        assert_eq!(
            decide(Some(&reset), &as_update(&active), role, t(598)),
            accepted(Rule::Time2),
            "{role:?}"
        );
        // ... and the ACTIVE side refuses the RESET ("accept": 209 is before 572).
        assert_eq!(
            decide(Some(&active), &as_update(&reset), role, t(598)),
            outdated(Rule::Accept),
            "{role:?}"
        );
    }
    // A decline after the renewal still ends it.
    let mut abandoned = reset;
    abandoned.status = S::ABANDONED;
    abandoned.cltt = t(590);
    abandoned.start_time_of_state = t(590);
    assert!(decide(Some(&active), &as_update(&abandoned), Role::Primary, t(598)).is_accept());
}

#[test]
fn no_binding_of_ours_is_accepted_7_5_4() {
    for status in [S::ACTIVE, S::EXPIRED, S::FREE_BACKUP, S::ABANDONED] {
        for role in [Role::Primary, Role::Secondary] {
            assert_eq!(
                decide(None, &upd(status), role, t(0)),
                accepted(Rule::NoBinding)
            );
        }
    }
}

/// §7.5.3: the receiver decides only if the update "is not consistent with the server's
/// already-known state". A resend of what we hold is accepted even where Figure 4's time
/// comparison would reject it: an EXPIRED lease's update time is its CLT, before its start.
#[test]
fn an_update_we_already_hold_is_accepted_7_5_3() {
    let mut b = ours(S::EXPIRED);
    b.start_time_of_state = t(7200);
    let mut u = upd(S::EXPIRED);
    u.start_time_of_state = t(7200);
    u.clt_time = Some(t(0));
    for role in [Role::Primary, Role::Secondary] {
        assert_eq!(
            decide(Some(&b), &u, role, t(7300)),
            accepted(Rule::Consistent)
        );
    }
    // The same update for another client (or another start) is judged by Figure 4.
    let mut other = u;
    other.client = Some(UpdateClient {
        iaid: 2,
        ..u.client.unwrap()
    });
    assert_eq!(
        decide(Some(&b), &other, Role::Primary, t(7300)),
        outdated(Rule::Accept)
    );
    let mut later_start = u;
    later_start.start_time_of_state = t(7201);
    assert_eq!(
        decide(Some(&b), &later_start, Role::Primary, t(7300)),
        outdated(Rule::Accept)
    );
}

/// §7.5.4: "If this flag was previously not set, then an update MAY be transmitted
/// immediately ... If this flag was previously set, an update SHOULD NOT be transmitted
/// immediately".
#[test]
fn outdated_says_whether_to_send_ours_now_7_5_4() {
    let mut b = ours(S::RELEASED);
    let mut u = upd(S::FREE);
    u.start_time_of_state = t(-100);
    let d = decide(Some(&b), &u, Role::Secondary, t(0));
    assert_eq!(
        d,
        Decision::Outdated {
            rule: Rule::Accept,
            send_now: true
        }
    );
    assert!(d.sets_update_pending());
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    let d = decide(Some(&b), &u, Role::Secondary, t(0));
    assert_eq!(
        d,
        Decision::Outdated {
            rule: Rule::Accept,
            send_now: false
        }
    );
    assert!(!Decision::AddressInUse.sets_update_pending());
}

#[test]
fn times_compare_across_the_2_32_wrap() {
    let mut b = ours(S::RELEASED);
    b.start_time_of_state = FailoverTime(u32::MAX - 10);
    let mut u = upd(S::FREE);
    u.start_time_of_state = FailoverTime(20);
    assert!(decide(Some(&b), &u, Role::Primary, FailoverTime(30)).is_accept());
    b.start_time_of_state = FailoverTime(20);
    u.start_time_of_state = FailoverTime(u32::MAX - 10);
    assert!(!decide(Some(&b), &u, Role::Secondary, FailoverTime(30)).is_accept());
}

// ---- §7.5.5 / Figure 5: one test per mapping row ----

/// A fully populated update for the mapping tests.
fn full_update() -> LeaseUpdate {
    LeaseUpdate {
        kind: LeaseKind::Address,
        addr: ODD,
        prefix_len: 128,
        client: Some(UpdateClient {
            duid: duid(0xb),
            iaid: 9,
            t1: 1800,
            t2: 2880,
        }),
        preferred: 3600,
        valid: 7200,
        status: S::ACTIVE,
        start_time_of_state: t(10),
        state_expiration_time: Some(t(7210)),
        clt_time: Some(t(5)),
        partner_lifetime: Some(t(9000)),
        partner_raw_clt_time: Some(t(-20)),
        expiration_time: Some(t(8000)),
    }
}

/// Figure 5 "[always update]": BINDING_STATUS → binding-status, START_TIME_OF_STATE →
/// start-time-of-state, STATE_EXPIRATION_TIME → state-expiration-time (§7.5.5 3a, 3c).
#[test]
fn apply_stores_status_start_and_state_expiration_7_5_5() {
    let b = apply(Some(&ours(S::FREE)), &full_update(), 7);
    assert_eq!(b.status, S::ACTIVE);
    assert_eq!(b.start_time_of_state, t(10));
    assert_eq!(b.state_expiration_time, t(7210));
    // A status without a timeout (§7.2: no STATE_EXPIRATION_TIME) clears ours.
    let mut u = full_update();
    u.status = S::RELEASED;
    u.state_expiration_time = None;
    let b = apply(Some(&ours(S::ACTIVE)), &u, 7);
    assert_eq!(b.status, S::RELEASED);
    assert_eq!(b.state_expiration_time, FailoverTime(0));
}

/// §7.2: PENDING-FREE "immediately transitions to either FREE or FREE-BACKUP" — by (5) / (6),
/// not by Figure 3.
#[test]
fn apply_resolves_pending_free_by_owner_7_2() {
    let mut u = full_update();
    u.status = S::PENDING_FREE;
    u.state_expiration_time = None;
    assert_eq!(apply(None, &u, 0).status, S::FREE, "odd address: primary's");
    u.addr = EVEN;
    assert_eq!(
        apply(None, &u, 0).status,
        S::FREE_BACKUP,
        "even: secondary's"
    );
    u.kind = LeaseKind::Prefix;
    u.prefix_len = 56;
    assert_eq!(
        apply(None, &u, 0).status,
        S::FREE,
        "proportional: primary's"
    );
    assert_eq!(
        pending_free_status(LeaseKind::Address, ODD),
        FreeStatus::Free
    );
    assert_eq!(
        pending_free_status(LeaseKind::Address, EVEN),
        FreeStatus::FreeBackup
    );
}

/// Figure 5: PARTNER_LIFETIME → expiration-time, always (§7.5.5 3b) — also when earlier than
/// the value held (D24); absent, nothing changes.
#[test]
fn apply_stores_partner_lifetime_as_expiration_time_7_5_5() {
    let mut o = ours(S::ACTIVE);
    o.expiration_time = t(20_000);
    let b = apply(Some(&o), &full_update(), 7);
    assert_eq!(b.expiration_time, t(9000));
    let mut u = full_update();
    u.partner_lifetime = None;
    assert_eq!(apply(Some(&o), &u, 7).expiration_time, t(20_000));
}

/// Figure 5: CLT_TIME → partner-raw-clt-time, always (§7.5.5 3d), as the absolute time.
#[test]
fn apply_stores_clt_time_as_partner_raw_clt_time_7_5_5() {
    let mut o = ours(S::ACTIVE);
    o.partner_raw_clt_time = t(500);
    assert_eq!(
        apply(Some(&o), &full_update(), 7).partner_raw_clt_time,
        t(5)
    );
    let mut u = full_update();
    u.clt_time = None;
    assert_eq!(apply(Some(&o), &u, 7).partner_raw_clt_time, t(500));
}

/// Figure 5 "[update only if received > current]": EXPIRATION_TIME → partner-lifetime
/// (§7.5.5 3f).
#[test]
fn apply_takes_expiration_time_as_partner_lifetime_only_if_later_7_5_5() {
    let mut o = ours(S::ACTIVE);
    for (current, received, stored) in [
        (FailoverTime(0), t(8000), t(8000)),
        (t(7000), t(8000), t(8000)),
        (t(9000), t(8000), t(9000)),
    ] {
        o.partner_lifetime = current;
        let mut u = full_update();
        u.expiration_time = Some(received);
        assert_eq!(apply(Some(&o), &u, 7).partner_lifetime, stored);
    }
    o.partner_lifetime = t(1);
    let mut u = full_update();
    u.expiration_time = None;
    assert_eq!(apply(Some(&o), &u, 7).partner_lifetime, t(1));
}

/// Figure 5 "[update only if received > current]": PARTNER_RAW_CLT_TIME →
/// client-last-transaction-time (§7.5.5 3e).
#[test]
fn apply_takes_partner_raw_clt_time_as_cltt_only_if_later_7_5_5() {
    let mut o = ours(S::ACTIVE);
    for (current, received, stored) in [
        (FailoverTime(0), t(-20), t(-20)),
        (t(-30), t(-20), t(-20)),
        (t(-10), t(-20), t(-10)),
    ] {
        o.cltt = current;
        let mut u = full_update();
        u.partner_raw_clt_time = Some(received);
        assert_eq!(apply(Some(&o), &u, 7).cltt, stored);
    }
}

/// §7.5.5 1–2: the client found by OPTION_CLIENTID, with the IA's data, is stored with the
/// lease.
#[test]
fn apply_stores_the_client_and_its_lifetimes_7_5_5() {
    let b = apply(Some(&ours(S::FREE)), &full_update(), 7);
    assert_eq!(
        (b.duid, b.iaid, b.t1, b.t2, b.preferred, b.valid),
        (duid(0xb), 9, 1800, 2880, 3600, 7200)
    );
    assert_eq!(
        (b.kind, b.addr, b.prefix_len, b.subnet),
        (LeaseKind::Address, ODD, 128, 7)
    );
    // A new binding starts from a never-leased one in the given subnet.
    let b = apply(None, &full_update(), 3);
    assert_eq!(b.subnet, 3);
    assert_eq!(b.acked_partner_lifetime, FailoverTime(0));
    assert_eq!(b.cltt, t(-20));
}

/// §7.5.5, bare OPTION_IAPREFIX: only status, expiration-time (from PARTNER_LIFETIME),
/// state-expiration-time and partner-lifetime (from EXPIRATION_TIME, if later).
#[test]
fn apply_bare_prefix_stores_only_what_7_5_5_lists() {
    let pfx = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
    let mut o = Binding::free(LeaseKind::Prefix, pfx, 56, 2);
    o.status = S::FREE;
    o.duid = duid(0xa);
    o.iaid = 4;
    o.valid = 100;
    o.cltt = t(-1000);
    o.partner_raw_clt_time = t(-900);
    let u = LeaseUpdate {
        kind: LeaseKind::Prefix,
        addr: pfx,
        prefix_len: 56,
        client: None,
        preferred: 0,
        valid: 0,
        status: S::FREE_BACKUP,
        start_time_of_state: t(30),
        state_expiration_time: Some(t(40)),
        clt_time: Some(t(1)),
        partner_lifetime: Some(t(50)),
        partner_raw_clt_time: Some(t(2)),
        expiration_time: Some(t(60)),
    };
    let b = apply(Some(&o), &u, 2);
    assert_eq!(b.status, S::FREE_BACKUP);
    assert_eq!(b.start_time_of_state, t(30));
    assert_eq!(b.state_expiration_time, t(40));
    assert_eq!(b.expiration_time, t(50));
    assert_eq!(b.partner_lifetime, t(60));
    // Untouched: the last client, its lifetimes, both CLT times.
    assert_eq!((b.duid, b.iaid, b.valid), (duid(0xa), 4, 100));
    assert_eq!((b.cltt, b.partner_raw_clt_time), (t(-1000), t(-900)));
}

/// §7.5.4: the partner-needs-update flag "SHOULD NOT be changed" except on an Outdated
/// rejection; accepting leaves it as it was.
#[test]
fn apply_leaves_the_update_flag_as_it_was_7_5_4() {
    let mut o = ours(S::FREE);
    assert!(
        !apply(Some(&o), &full_update(), 7)
            .flags
            .contains(BindingFlags::UPDATE_PENDING)
    );
    o.flags.set(BindingFlags::UPDATE_PENDING, true);
    assert!(
        apply(Some(&o), &full_update(), 7)
            .flags
            .contains(BindingFlags::UPDATE_PENDING)
    );
    assert!(
        !apply(None, &full_update(), 7)
            .flags
            .contains(BindingFlags::UPDATE_PENDING)
    );
}

// ---- §7.4 partner lifetime, §7.7 acks ----

#[test]
fn partner_lifetime_to_send_7_4() {
    let mut b = ours(S::RELEASED);
    b.partner_lifetime = t(5000);
    assert_eq!(
        partner_lifetime_to_send(&b),
        None,
        "no timeout: MUST NOT appear"
    );
    let mut b = ours(S::ACTIVE); // ends T0 + 1000
    b.partner_lifetime = t(5000);
    assert_eq!(partner_lifetime_to_send(&b), Some(t(5000)));
    b.partner_lifetime = FailoverTime(0);
    assert_eq!(
        partner_lifetime_to_send(&b),
        Some(t(1000)),
        "nothing acked: the lease's end"
    );
    b.acked_partner_lifetime = t(4000);
    assert_eq!(
        partner_lifetime_to_send(&b),
        Some(t(4000)),
        "acked before: that"
    );
    b.acked_partner_lifetime = t(500);
    assert_eq!(
        partner_lifetime_to_send(&b),
        Some(t(1000)),
        "never below the lease's end"
    );
}

/// What a BNDREPLY accepting the BNDUPD of `b` (as encoded now) echoes.
fn echo_of(b: &Binding) -> AckInfo {
    AckInfo {
        status: b.status,
        start_time_of_state: b.start_time_of_state,
        state_expiration_time: nonzero(b.state_expiration_time),
        partner_lifetime_sent: partner_lifetime_to_send(b),
        client: Some(b.duid),
    }
}

/// §7.7: "OPTION_F_PARTNER_LIFETIME_SENT is stored in the acked-partner-lifetime", "The
/// partner-lifetime is set to 0", and the update flag is cleared.
#[test]
fn ack_of_the_current_state_clears_the_update_7_7() {
    let mut b = ours(S::ACTIVE);
    b.partner_lifetime = t(5000);
    b.acked_partner_lifetime = t(3000);
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    let a = echo_of(&b);
    assert!(ack(&mut b, &a));
    assert_eq!(b.acked_partner_lifetime, t(5000));
    assert_eq!(b.partner_lifetime, FailoverTime(0));
    assert!(!b.flags.contains(BindingFlags::UPDATE_PENDING));
    // Sent again (UPDREQALL) and acked again: still current, nothing lost.
    let again = echo_of(&b);
    assert_eq!(again.partner_lifetime_sent, Some(t(5000)));
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    assert!(ack(&mut b, &again));
    assert_eq!(b.acked_partner_lifetime, t(5000));
    assert!(!b.flags.contains(BindingFlags::UPDATE_PENDING));
}

/// A binding that changed after its BNDUPD went out stays pending; the partner's ack of the
/// lifetime it did receive still counts (D24).
#[test]
fn ack_of_an_older_state_keeps_the_binding_pending_7_7() {
    let mut sent = ours(S::ACTIVE);
    sent.partner_lifetime = t(5000);
    sent.flags.set(BindingFlags::UPDATE_PENDING, true);
    let a = echo_of(&sent);
    type Change = (&'static str, fn(&mut Binding));
    let changes: [Change; 5] = [
        ("status", |b| b.status = S::RELEASED),
        ("start", |b| b.start_time_of_state = t(1)),
        ("state expiration", |b| b.state_expiration_time = t(2000)),
        ("partner lifetime", |b| b.partner_lifetime = t(6000)),
        ("client", |b| b.duid = duid(0xc)),
    ];
    for (what, change) in changes {
        let mut b = sent;
        change(&mut b);
        let pl = b.partner_lifetime;
        assert!(!ack(&mut b, &a), "{what} changed");
        assert!(b.flags.contains(BindingFlags::UPDATE_PENDING), "{what}");
        assert_eq!(b.partner_lifetime, pl, "{what}: still to be sent");
        assert_eq!(
            b.acked_partner_lifetime,
            t(5000),
            "{what}: the partner holds it"
        );
    }
}

/// Figure 5 "[always update]" and §8.4.1's "most recently received ack": the acked partner
/// lifetime follows the partner, also downwards (D24).
#[test]
fn ack_overwrites_a_larger_acked_partner_lifetime_7_7() {
    let mut b = ours(S::ACTIVE);
    b.acked_partner_lifetime = t(90_000);
    b.partner_lifetime = t(2000);
    let a = echo_of(&b);
    assert!(ack(&mut b, &a));
    assert_eq!(b.acked_partner_lifetime, t(2000));
}

/// Without a timeout there is no PARTNER_LIFETIME_SENT: the acked partner lifetime stays.
#[test]
fn ack_without_partner_lifetime_keeps_the_acked_one_7_7() {
    let mut b = ours(S::RELEASED);
    b.acked_partner_lifetime = t(4000);
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    let a = echo_of(&b);
    assert_eq!(a.partner_lifetime_sent, None);
    assert!(ack(&mut b, &a));
    assert_eq!(b.acked_partner_lifetime, t(4000));
    assert!(!b.flags.contains(BindingFlags::UPDATE_PENDING));
    // A bare prefix's ack has no client to compare.
    let mut a = a;
    a.client = None;
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    assert!(ack(&mut b, &a));
}
