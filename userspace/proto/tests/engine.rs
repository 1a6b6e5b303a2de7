//! Golden exchanges against the engine over a `MemStore` with a fixed-seed RNG.

mod common;

use common::*;
use tandem_lease::{BindingFlags, BindingStatus, FailoverTime, LeaseKind, LeaseStore, MemStore};
use tandem_proto::{DropReason, Engine, Outcome};
use tandem_wire::dhcp::{MessageType as T, StatusCode};
use tandem_wire::option::OptionCode;

fn solicit(duid: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut o = vec![client_id(duid)];
    o.extend_from_slice(extra);
    msg(T::SOLICIT, 0x1234, &o)
}

fn with_server(t: T, duid: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut o = vec![client_id(duid), server_id()];
    o.extend_from_slice(extra);
    msg(t, 0x777, &o)
}

/// Request one address (IA_NA 1) and returns it.
fn lease_address(h: &mut Harness<MemStore>, duid: &[u8]) -> std::net::Ipv6Addr {
    let r = h.reply(&with_server(T::REQUEST, duid, &[ia_na(1, &[])]));
    let ias = ia_nas(&r);
    assert_eq!(ias[0].status, None, "{ias:?}");
    ias[0].leases[0].0
}

#[test]
fn solicit_with_na_and_pd_advertises_without_committing() {
    let mut h = Harness::new();
    let r = h.reply(&solicit(&client_duid(1), &[ia_na(1, &[]), ia_pd(2, &[])]));
    let m = parse_reply(&r);
    assert_eq!(m.msg_type, T::ADVERTISE);
    assert_eq!(m.transaction_id, 0x1234);
    assert_eq!(m.server_id().unwrap().unwrap().as_bytes(), SERVER_DUID);
    assert_eq!(m.client_id().unwrap().unwrap().as_bytes(), client_duid(1));
    assert_eq!(m.option(OptionCode::PREFERENCE).unwrap().data, [7]);
    let na = ia_nas(&r);
    assert_eq!(na.len(), 1);
    assert_eq!((na[0].iaid, na[0].t1, na[0].t2), (1, 1800, 2880));
    let (addr, _, pref, valid) = na[0].leases[0];
    assert!(u128::from(addr) >= u128::from(a("2001:db8:1::100")));
    assert!(u128::from(addr) <= u128::from(a("2001:db8:1::103")));
    assert_eq!((pref, valid), (3600, 7200));
    let pd = ia_pds(&r);
    assert_eq!(pd[0].leases[0].1, 56);
    assert!(
        tandem_config::Ipv6Prefix::new(a("2001:db8:8000::"), 40)
            .unwrap()
            .contains(pd[0].leases[0].0)
    );
    assert!(h.store.is_empty(), "Advertise must not commit");
    assert_eq!(h.engine.counters().replies(T::ADVERTISE), 1);
    assert_eq!(h.engine.counters().received(T::SOLICIT), 1);
}

#[test]
fn solicit_two_ia_nas_get_distinct_addresses() {
    let mut h = Harness::new();
    let r = h.reply(&solicit(&client_duid(1), &[ia_na(1, &[]), ia_na(2, &[])]));
    let na = ia_nas(&r);
    assert_ne!(na[0].leases[0].0, na[1].leases[0].0);
}

#[test]
fn request_commits_before_reply_and_store_holds_it() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    assert_eq!(parse_reply(&r).msg_type, T::REPLY);
    let addr = ia_nas(&r)[0].leases[0].0;
    let b = h.store.get(LeaseKind::Address, addr).unwrap();
    assert_eq!(b.status, BindingStatus::ACTIVE);
    assert_eq!(b.duid.as_bytes(), client_duid(1));
    assert_eq!(b.iaid, 1);
    assert_eq!(b.cltt, h.now);
    assert_eq!(b.start_time_of_state, h.now);
    assert_eq!(b.state_expiration_time, h.now.wrapping_add(7200));
    assert!(b.flags.contains(BindingFlags::UPDATE_PENDING));
    let (p, len, _, _) = ia_pds(&r)[0].leases[0];
    let pb = h.store.get(LeaseKind::Prefix, p).unwrap();
    assert_eq!(
        (pb.status, pb.prefix_len, pb.iaid),
        (BindingStatus::ACTIVE, len, 2)
    );
    assert_eq!(h.engine.counters().committed, 2);
}

#[test]
fn request_after_advertise_gets_the_advertised_hint() {
    let mut h = Harness::new();
    let adv = h.reply(&solicit(&client_duid(1), &[ia_na(1, &[])]));
    let offered = ia_nas(&adv)[0].leases[0].0;
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[offered])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, offered);
}

#[test]
fn request_with_off_link_address_gets_not_on_link() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[a("2001:db8:99::1")])],
    ));
    let na = ia_nas(&r);
    assert_eq!(na[0].status, Some(StatusCode::NOT_ON_LINK));
    assert!(na[0].leases.is_empty());
    assert!(h.store.is_empty());
}

#[test]
fn repeated_request_returns_the_same_lease() {
    let mut h = Harness::new();
    let first = lease_address(&mut h, &client_duid(1));
    let again = lease_address(&mut h, &client_duid(1));
    assert_eq!(first, again);
}

#[test]
fn renew_extends_lifetimes_from_now() {
    let mut h = Harness::new();
    let addr = lease_address(&mut h, &client_duid(1));
    h.now = h.now.wrapping_add(1800);
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    let na = ia_nas(&r);
    assert_eq!(na[0].leases, vec![(addr, 128, 3600, 7200)]);
    assert_eq!((na[0].t1, na[0].t2), (1800, 2880));
    let b = h.store.get(LeaseKind::Address, addr).unwrap();
    assert_eq!(b.state_expiration_time, h.now.wrapping_add(7200));
    assert_eq!(b.cltt, h.now);
    assert_eq!(
        b.start_time_of_state,
        FailoverTime(1_000_000),
        "still the same ACTIVE state"
    );
}

#[test]
fn renew_unknown_ia_gets_no_binding() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(9, &[a("2001:db8:1::100")])],
    ));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_BINDING));
    assert!(h.store.is_empty());
}

#[test]
fn renew_naming_someone_elses_address_returns_it_with_zero_lifetimes() {
    let mut h = Harness::new();
    let mine = lease_address(&mut h, &client_duid(1));
    let theirs = lease_address(&mut h, &client_duid(2));
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[mine, theirs])],
    ));
    let leases = &ia_nas(&r)[0].leases;
    assert!(leases.contains(&(mine, 128, 3600, 7200)));
    assert!(leases.contains(&(theirs, 128, 0, 0)));
    assert_eq!(
        h.store
            .get(LeaseKind::Address, theirs)
            .unwrap()
            .duid
            .as_bytes(),
        client_duid(2)
    );
}

#[test]
fn rebind_extends_known_binding() {
    let mut h = Harness::new();
    let addr = lease_address(&mut h, &client_duid(1));
    h.now = h.now.wrapping_add(3000);
    let r = h.reply(&msg(
        T::REBIND,
        5,
        &[client_id(&client_duid(1)), ia_na(1, &[addr])],
    ));
    assert_eq!(ia_nas(&r)[0].leases, vec![(addr, 128, 3600, 7200)]);
}

/// A harness whose first subnet creates bindings on Rebind (`rebind-creates-bindings`).
fn rebind_creating() -> Harness<MemStore> {
    let mut h = Harness::new();
    let mut c = config();
    c.subnets[0].rebind_creates_bindings = true;
    h.engine = Engine::new(c, SERVER_DUID.to_vec());
    h
}

#[test]
fn rebind_unknown_ia_gets_no_binding_by_default() {
    // RFC 8415 §18.3.5: without configuration to create bindings, NoBinding; nothing stored.
    let mut h = Harness::new();
    let want = a("2001:db8:1::102");
    let off = a("2001:db8:99::7");
    let r = h.reply(&msg(
        T::REBIND,
        5,
        &[client_id(&client_duid(1)), ia_na(1, &[want, off])],
    ));
    let na = ia_nas(&r);
    assert_eq!(na[0].status, Some(StatusCode::NO_BINDING));
    assert_eq!(
        na[0].leases,
        vec![(off, 128, 0, 0)],
        "off-link gets lifetimes 0"
    );
    assert!(h.store.is_empty());
    assert!(h.engine.changes().is_empty());
}

#[test]
fn rebind_unknown_off_link_address_gets_zero_lifetimes_and_a_new_lease_when_configured() {
    let mut h = rebind_creating();
    let off = a("2001:db8:99::7");
    let r = h.reply(&msg(
        T::REBIND,
        5,
        &[client_id(&client_duid(1)), ia_na(1, &[off])],
    ));
    let leases = &ia_nas(&r)[0].leases;
    assert!(leases.contains(&(off, 128, 0, 0)));
    let fresh: Vec<_> = leases.iter().filter(|l| l.3 != 0).collect();
    assert_eq!(fresh.len(), 1);
    assert!(h.store.get(LeaseKind::Address, fresh[0].0).is_some());
}

#[test]
fn rebind_unknown_on_link_address_creates_the_binding_when_configured() {
    let mut h = rebind_creating();
    let want = a("2001:db8:1::102");
    let r = h.reply(&msg(
        T::REBIND,
        5,
        &[client_id(&client_duid(1)), ia_na(1, &[want])],
    ));
    assert_eq!(ia_nas(&r)[0].leases, vec![(want, 128, 3600, 7200)]);
    assert_eq!(
        h.store.get(LeaseKind::Address, want).unwrap().status,
        BindingStatus::ACTIVE
    );
}

#[test]
fn release_frees_the_lease_and_reports_no_binding_for_unknown_ias() {
    let mut h = Harness::new();
    let addr = lease_address(&mut h, &client_duid(1));
    let r = h.reply(&with_server(
        T::RELEASE,
        &client_duid(1),
        &[ia_na(1, &[addr]), ia_na(8, &[a("2001:db8:1::103")])],
    ));
    assert_eq!(top_status(&r), Some(StatusCode::SUCCESS));
    let na = ia_nas(&r);
    assert_eq!(na.len(), 1, "only the unknown IA is listed");
    assert_eq!(
        (na[0].iaid, na[0].status),
        (8, Some(StatusCode::NO_BINDING))
    );
    assert_eq!(
        h.store.get(LeaseKind::Address, addr).unwrap().status,
        BindingStatus::RELEASED
    );
    assert_eq!(h.engine.counters().released, 1);
    // A released address is free for another client (3 usable addresses: 0x101 is reserved).
    let mut seen = std::collections::HashSet::new();
    for n in 2..5 {
        seen.insert(lease_address(&mut h, &client_duid(n)));
    }
    assert!(seen.contains(&addr));
}

#[test]
fn decline_quarantines_the_address() {
    let mut h = Harness::new();
    let addr = lease_address(&mut h, &client_duid(1));
    let r = h.reply(&with_server(
        T::DECLINE,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    assert_eq!(top_status(&r), Some(StatusCode::SUCCESS));
    assert!(ia_nas(&r).is_empty());
    let b = h.store.get(LeaseKind::Address, addr).unwrap();
    assert_eq!(b.status, BindingStatus::ABANDONED);
    assert_eq!(b.state_expiration_time, h.now.wrapping_add(86_400));
    // During the quarantine nobody gets it (3 usable addresses left: 0x101 is reserved).
    for n in 2..8 {
        let r = h.reply(&with_server(
            T::REQUEST,
            &client_duid(n),
            &[ia_na(1, &[addr])],
        ));
        for l in &ia_nas(&r)[0].leases {
            assert_ne!(l.0, addr);
        }
    }
    // After it, reclaim frees it.
    h.now = h.now.wrapping_add(86_401);
    let rep = h.engine.reclaim(h.now, &mut h.store, 100);
    assert_eq!(rep.unquarantined, 1);
    assert_eq!(
        h.store.get(LeaseKind::Address, addr).unwrap().status,
        BindingStatus::FREE
    );
}

#[test]
fn decline_of_unknown_address_gets_no_binding() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::DECLINE,
        &client_duid(1),
        &[ia_na(3, &[a("2001:db8:1::100")])],
    ));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_BINDING));
}

#[test]
fn confirm_on_link_succeeds_and_off_link_is_not_on_link() {
    let mut h = Harness::new();
    let on = h.reply(&msg(
        T::CONFIRM,
        1,
        &[client_id(&client_duid(1)), ia_na(1, &[a("2001:db8:1::55")])],
    ));
    assert_eq!(top_status(&on), Some(StatusCode::SUCCESS));
    let off = h.reply(&msg(
        T::CONFIRM,
        1,
        &[
            client_id(&client_duid(1)),
            ia_na(1, &[a("2001:db8:1::55"), a("2001:db8:7::1")]),
        ],
    ));
    assert_eq!(top_status(&off), Some(StatusCode::NOT_ON_LINK));
    let (o, _) = h.send_on(
        "eth0",
        &msg(T::CONFIRM, 1, &[client_id(&client_duid(1)), ia_na(1, &[])]),
    );
    assert_eq!(o, Outcome::Drop(DropReason::ConfirmUnanswerable));
    let (o, _) = h.send_on(
        "eth9",
        &msg(
            T::CONFIRM,
            1,
            &[client_id(&client_duid(1)), ia_na(1, &[a("2001:db8:1::55")])],
        ),
    );
    assert_eq!(
        o,
        Outcome::Drop(DropReason::ConfirmUnanswerable),
        "unknown link"
    );
}

#[test]
fn information_request_returns_requested_options() {
    let mut h = Harness::new();
    let r = h.reply(&msg(
        T::INFORMATION_REQUEST,
        9,
        &[client_id(&client_duid(1)), oro(&[23, 24, 32])],
    ));
    let m = parse_reply(&r);
    assert_eq!(m.msg_type, T::REPLY);
    assert_eq!(m.client_id().unwrap().unwrap().as_bytes(), client_duid(1));
    let dns = m.option(OptionCode::DNS_SERVERS).unwrap().data;
    let mut want = a("2001:db8::53").octets().to_vec();
    want.extend_from_slice(&a("2001:db8::54").octets());
    assert_eq!(dns, want.as_slice());
    assert_eq!(
        m.option(OptionCode::DOMAIN_LIST).unwrap().data,
        b"\x07example\x03net\x00"
    );
    assert_eq!(
        m.option(OptionCode::INFORMATION_REFRESH_TIME).unwrap().data,
        86_400u32.to_be_bytes()
    );
    assert!(!has_option(&r, OptionCode::SOL_MAX_RT), "not requested");
    // Without a Client ID, and without an ORO: still answered, no options.
    let bare = h.reply(&msg(T::INFORMATION_REQUEST, 9, &[]));
    assert!(!has_option(&bare, OptionCode::DNS_SERVERS));
    assert!(!has_option(&bare, OptionCode::CLIENTID));
    assert!(has_option(&bare, OptionCode::SERVERID));
}

#[test]
fn information_request_without_subnet_is_answered_without_options() {
    let mut h = Harness::new();
    let (o, r) = h.send_on("eth9", &msg(T::INFORMATION_REQUEST, 9, &[oro(&[23])]));
    assert!(matches!(o, Outcome::Reply { .. }));
    assert!(!has_option(&r, OptionCode::DNS_SERVERS));
}

#[test]
fn advertise_includes_sol_max_rt_when_requested() {
    let mut h = Harness::new();
    let r = h.reply(&solicit(&client_duid(1), &[oro(&[82, 32])]));
    assert_eq!(
        parse_reply(&r).option(OptionCode::SOL_MAX_RT).unwrap().data,
        3600u32.to_be_bytes()
    );
    assert!(!has_option(&r, OptionCode::INFORMATION_REFRESH_TIME));
}

#[test]
fn rapid_commit_ignored_where_the_subnet_does_not_allow_it() {
    let mut h = Harness::new();
    let r = h.reply(&solicit(&client_duid(1), &[opt(14, &[]), ia_na(1, &[])]));
    assert_eq!(parse_reply(&r).msg_type, T::ADVERTISE);
    assert!(!has_option(&r, OptionCode::RAPID_COMMIT));
    assert!(h.store.is_empty());
}

#[test]
fn rapid_commit_commits_where_the_subnet_allows_it() {
    let mut h = Harness::new();
    let inner = solicit(&client_duid(1), &[opt(14, &[]), ia_na(1, &[])]);
    let fwd = relay_forw(0, a("::"), a("fe80::99"), Some(b"relay-port-7"), &inner);
    let (o, out) = h.send_on("eth0", &fwd);
    assert!(matches!(o, Outcome::Reply { .. }));
    let (reply, _, _) = unwrap_relay(&out);
    let m = parse_reply(&reply);
    assert_eq!(m.msg_type, T::REPLY);
    assert!(has_option(&reply, OptionCode::RAPID_COMMIT));
    assert!(!has_option(&reply, OptionCode::PREFERENCE));
    let addr = ia_nas(&reply)[0].leases[0].0;
    assert!(
        tandem_config::Ipv6Prefix::new(a("2001:db8:2::"), 64)
            .unwrap()
            .contains(addr)
    );
    assert_eq!(
        h.store.get(LeaseKind::Address, addr).unwrap().status,
        BindingStatus::ACTIVE
    );
}

#[test]
fn relayed_solicit_uses_innermost_link_address_and_echoes_interface_ids() {
    let mut h = Harness::new();
    let inner = solicit(&client_duid(1), &[ia_na(1, &[])]);
    let l1 = relay_forw(
        0,
        a("2001:db8:2::1"),
        a("fe80::5"),
        Some(b"inner-id"),
        &inner,
    );
    let l2 = relay_forw(
        1,
        a("2001:db8:1::1"),
        a("2001:db8:2::1"),
        Some(b"outer-id"),
        &l1,
    );
    let (o, out) = h.send_on("eth0", &l2);
    assert!(matches!(o, Outcome::Reply { .. }));
    let (reply, ids, links) = unwrap_relay(&out);
    assert_eq!(
        ids,
        vec![Some(b"outer-id".to_vec()), Some(b"inner-id".to_vec())]
    );
    assert_eq!(links, vec![a("2001:db8:1::1"), a("2001:db8:2::1")]);
    let addr = ia_nas(&reply)[0].leases[0].0;
    assert!(
        tandem_config::Ipv6Prefix::new(a("2001:db8:2::"), 64)
            .unwrap()
            .contains(addr),
        "innermost link 2001:db8:2::1 selects subnet 2, got {addr}"
    );
    assert_eq!(h.engine.counters().received(T::RELAY_FORW), 1);

    // One level, link-address in subnet 1.
    let one = relay_forw(0, a("2001:db8:1::1"), a("fe80::5"), None, &inner);
    let (_, out) = h.send_on("eth9", &one);
    let (reply, ids, _) = unwrap_relay(&out);
    assert_eq!(ids, vec![None]);
    let addr = ia_nas(&reply)[0].leases[0].0;
    assert!(
        tandem_config::Ipv6Prefix::new(a("2001:db8:1::"), 64)
            .unwrap()
            .contains(addr)
    );
}

#[test]
fn reservation_is_honoured_and_never_given_to_others() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::REQUEST,
        RESERVED_DUID,
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, a("2001:db8:1::101"));
    assert_eq!(ia_pds(&r)[0].leases[0].0, a("2001:db8:8000:ff00::"));
    // Others asking for it explicitly do not get it; the pool then holds only 3 more.
    let mut got = Vec::new();
    for n in 1..=5 {
        let r = h.reply(&with_server(
            T::REQUEST,
            &client_duid(n),
            &[
                ia_na(1, &[a("2001:db8:1::101")]),
                ia_pd(2, &[(a("2001:db8:8000:ff00::"), 56)]),
            ],
        ));
        assert_ne!(ia_pds(&r)[0].leases[0].0, a("2001:db8:8000:ff00::"));
        for l in &ia_nas(&r)[0].leases {
            assert_ne!(l.0, a("2001:db8:1::101"));
            got.push(l.0);
        }
    }
    assert_eq!(got.len(), 3);
}

#[test]
fn reserved_address_is_not_offered_to_others_even_when_free() {
    let mut h = Harness::new();
    for n in 1..=3 {
        let addr = lease_address(&mut h, &client_duid(n));
        assert_ne!(addr, a("2001:db8:1::101"));
    }
    let r = h.reply(&with_server(T::REQUEST, &client_duid(4), &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
}

#[test]
fn valid_hint_is_honoured_and_invalid_hint_ignored() {
    let mut h = Harness::new();
    let r = h.reply(&solicit(
        &client_duid(1),
        &[ia_na(1, &[a("2001:db8:1::103")])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, a("2001:db8:1::103"));
    // Out of the pool (but on link): not offered (RFC 8415 §18.3.9).
    let r = h.reply(&solicit(
        &client_duid(1),
        &[ia_na(1, &[a("2001:db8:1::9999")])],
    ));
    let got = ia_nas(&r)[0].leases[0].0;
    assert_ne!(got, a("2001:db8:1::9999"));
    // Held by someone else: not offered.
    let taken = lease_address(&mut h, &client_duid(2));
    let r = h.reply(&solicit(&client_duid(3), &[ia_na(1, &[taken])]));
    assert_ne!(ia_nas(&r)[0].leases[0].0, taken);
    // PD hint: aligned prefix in the pool.
    let want = a("2001:db8:80aa:bb00::");
    let r = h.reply(&solicit(&client_duid(1), &[ia_pd(1, &[(want, 56)])]));
    assert_eq!(ia_pds(&r)[0].leases[0].0, want);
    // Wrong length: ignored.
    let r = h.reply(&solicit(&client_duid(1), &[ia_pd(1, &[(want, 48)])]));
    assert_eq!(ia_pds(&r)[0].leases[0].1, 56);
}

#[test]
fn prefix_length_hint_selects_the_pool_with_that_length() {
    let mut h = Harness::new();
    for (len, base) in [(60u8, "2001:db8:5000::"), (56, "2001:db8:4000::")] {
        for _ in 0..8 {
            let inner = solicit(&client_duid(1), &[ia_pd(1, &[(a("::"), len)])]);
            let fwd = relay_forw(0, a("2001:db8:2::1"), a("fe80::5"), None, &inner);
            let (_, out) = h.send_on("eth0", &fwd);
            let (reply, _, _) = unwrap_relay(&out);
            let (p, got_len, _, _) = ia_pds(&reply)[0].leases[0];
            assert_eq!(got_len, len);
            let pool_len = if len == 60 { 48 } else { 40 };
            assert!(
                tandem_config::Ipv6Prefix::new(a(base), pool_len)
                    .unwrap()
                    .contains(p)
            );
        }
    }
}

#[test]
fn pool_exhaustion_gives_no_addrs_avail() {
    let mut h = Harness::new();
    let mut got = std::collections::HashSet::new();
    for n in 1..=3 {
        assert!(got.insert(lease_address(&mut h, &client_duid(n))));
    }
    let r = h.reply(&solicit(&client_duid(9), &[ia_na(1, &[])]));
    let na = ia_nas(&r);
    assert_eq!(na[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    assert!(na[0].leases.is_empty());
    let r = h.reply(&with_server(T::REQUEST, &client_duid(9), &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
}

#[test]
fn expired_leases_are_reusable_and_reclaim_marks_them() {
    let mut h = Harness::new();
    let mut addrs = Vec::new();
    for n in 1..=3 {
        addrs.push(lease_address(&mut h, &client_duid(n)));
    }
    h.now = h.now.wrapping_add(7201);
    let rep = h.engine.reclaim(h.now, &mut h.store, 2);
    assert_eq!((rep.visited, rep.expired, rep.wrapped), (2, 2, false));
    let rep = h.engine.reclaim(h.now, &mut h.store, 10);
    assert_eq!((rep.visited, rep.expired, rep.wrapped), (1, 1, true));
    for ad in &addrs {
        assert_eq!(
            h.store.get(LeaseKind::Address, *ad).unwrap().status,
            BindingStatus::EXPIRED
        );
    }
    assert_eq!(h.engine.counters().expired, 3);
    let fresh = lease_address(&mut h, &client_duid(7));
    assert!(addrs.contains(&fresh));
}

#[test]
fn store_full_gives_no_addrs_avail() {
    let mut h = Harness::with_store(MemStore::with_capacity_limit(1));
    lease_address(&mut h, &client_duid(1));
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(2),
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    assert_eq!(ia_pds(&r)[0].status, Some(StatusCode::NO_PREFIX_AVAIL));
    assert_eq!(h.engine.counters().store_errors, 2);
}

#[test]
fn no_subnet_gives_no_addrs_avail_and_not_on_link() {
    let mut h = Harness::new();
    let (_, r) = h.send_on(
        "eth9",
        &solicit(&client_duid(1), &[ia_na(1, &[]), ia_pd(2, &[])]),
    );
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    assert_eq!(ia_pds(&r)[0].status, Some(StatusCode::NO_PREFIX_AVAIL));
    let (_, r) = h.send_on(
        "eth9",
        &with_server(
            T::REQUEST,
            &client_duid(1),
            &[ia_na(1, &[a("2001:db8:1::100")])],
        ),
    );
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NOT_ON_LINK));
}

#[test]
fn big_pools_allocate_with_few_store_lookups() {
    let mut h = Harness::with_store(CountingStore::default());
    for n in 0..200u8 {
        h.store.gets.set(0);
        let inner = msg(
            T::REQUEST,
            1,
            &[
                client_id(&client_duid(n)),
                server_id(),
                ia_na(1, &[]),
                ia_pd(2, &[]),
            ],
        );
        let fwd = relay_forw(0, a("2001:db8:2::1"), a("fe80::5"), None, &inner);
        let (o, out) = h.send_on("eth0", &fwd);
        assert!(matches!(o, Outcome::Reply { .. }));
        let (reply, _, _) = unwrap_relay(&out);
        assert_eq!(ia_nas(&reply)[0].status, None);
        assert_eq!(ia_pds(&reply)[0].status, None);
        assert!(h.store.gets.get() <= 64, "{} lookups", h.store.gets.get());
    }
    assert_eq!(h.store.inner.len(), 400);
}

fn drop_of(h: &mut Harness<MemStore>, payload: &[u8]) -> DropReason {
    match h.send_on("eth0", payload).0 {
        Outcome::Drop(r) => r,
        o => panic!("expected a drop, got {o:?}"),
    }
}

#[test]
fn every_discard_rule_has_its_drop_reason() {
    let mut h = Harness::new();
    let c = client_id(&client_duid(1));
    let foreign = opt(2, &[0, 3, 0, 1, 9, 9, 9, 9, 9, 9]);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![], DropReason::Malformed),
        (vec![1, 0], DropReason::Malformed),
        (
            msg(T::SOLICIT, 1, &[vec![0, 1, 0, 9, 1]]),
            DropReason::Malformed,
        ),
        (msg(T::SOLICIT, 1, &[opt(1, &[0])]), DropReason::Malformed),
        (
            msg(T::SOLICIT, 1, &[c.clone(), opt(3, &[0, 0])]),
            DropReason::Malformed,
        ),
        (
            msg(T::SOLICIT, 1, &[c.clone(), opt(6, &[0])]),
            DropReason::Malformed,
        ),
        (
            msg(T::SOLICIT, 1, &[c.clone(), c.clone()]),
            DropReason::DuplicateOption,
        ),
        (
            msg(
                T::SOLICIT,
                1,
                &[c.clone(), opt(8, &[0, 0]), opt(8, &[0, 0])],
            ),
            DropReason::DuplicateOption,
        ),
        (
            msg(T::SOLICIT, 1, &[c.clone(), opt(14, &[]), opt(14, &[])]),
            DropReason::DuplicateOption,
        ),
        (
            msg(T::SOLICIT, 1, &[c.clone(), oro(&[23]), oro(&[24])]),
            DropReason::DuplicateOption,
        ),
        (msg(T::SOLICIT, 1, &[]), DropReason::MissingClientId),
        (
            msg(T::SOLICIT, 1, &[c.clone(), server_id()]),
            DropReason::UnexpectedServerId,
        ),
        (msg(T::CONFIRM, 1, &[]), DropReason::MissingClientId),
        (
            msg(T::CONFIRM, 1, &[c.clone(), server_id()]),
            DropReason::UnexpectedServerId,
        ),
        (msg(T::REBIND, 1, &[]), DropReason::MissingClientId),
        (
            msg(T::REBIND, 1, &[c.clone(), server_id()]),
            DropReason::UnexpectedServerId,
        ),
        (
            msg(T::ADVERTISE, 1, std::slice::from_ref(&c)),
            DropReason::ServerMessage,
        ),
        (
            msg(T::REPLY, 1, std::slice::from_ref(&c)),
            DropReason::ServerMessage,
        ),
        (
            msg(T::RECONFIGURE, 1, std::slice::from_ref(&c)),
            DropReason::ServerMessage,
        ),
        (
            relay_forw(0, a("::"), a("::"), None, &msg(T::REPLY, 1, &[]))
                .iter()
                .enumerate()
                .map(|(i, b)| if i == 0 { 13 } else { *b })
                .collect(),
            DropReason::ServerMessage,
        ),
        (
            msg(T(40), 1, std::slice::from_ref(&c)),
            DropReason::UnknownMessageType,
        ),
        (msg(T::BNDUPD, 1, &[]), DropReason::UnknownMessageType),
        (
            msg(T::INFORMATION_REQUEST, 1, &[ia_na(1, &[])]),
            DropReason::IaInInformationRequest,
        ),
        (
            msg(T::INFORMATION_REQUEST, 1, &[ia_pd(1, &[])]),
            DropReason::IaInInformationRequest,
        ),
        (
            msg(T::INFORMATION_REQUEST, 1, std::slice::from_ref(&foreign)),
            DropReason::ForeignServerId,
        ),
        (
            relay_forw(0, a("::"), a("::"), None, &[1]),
            DropReason::Malformed,
        ),
    ];
    let mut cases = cases;
    for t in [T::REQUEST, T::RENEW, T::RELEASE, T::DECLINE] {
        cases.push((msg(t, 1, &[server_id()]), DropReason::MissingClientId));
        cases.push((
            msg(t, 1, std::slice::from_ref(&c)),
            DropReason::MissingServerId,
        ));
        cases.push((
            msg(t, 1, &[c.clone(), foreign.clone()]),
            DropReason::ForeignServerId,
        ));
        cases.push((
            msg(t, 1, &[c.clone(), server_id(), server_id()]),
            DropReason::DuplicateOption,
        ));
    }
    for (payload, want) in &cases {
        assert_eq!(drop_of(&mut h, payload), *want, "payload {payload:02x?}");
    }
    for r in DropReason::ALL {
        let n = cases.iter().filter(|(_, w)| w == r).count() as u64;
        assert_eq!(h.engine.counters().drops(*r), n, "{}", r.name());
    }
    assert!(h.store.is_empty());
    // IA_TA is obsolete (RFC 9915): ignored like an unknown option.
    let r = h.reply(&msg(T::INFORMATION_REQUEST, 1, &[opt(4, &[0, 0, 0, 1])]));
    assert_eq!(parse_reply(&r).msg_type, T::REPLY);
}

#[test]
fn drop_reason_names_are_unique_snake_case() {
    let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert!(
        names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    );
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::ALL.len());
}

#[test]
fn tiny_output_buffer_is_reply_too_large() {
    let mut e = Engine::new(config(), SERVER_DUID.to_vec());
    let mut store = MemStore::new();
    let mut rng = tandem_proto::SplitMix64::new(1);
    let rx = tandem_proto::RxMeta {
        interface: "eth0",
        src: a("fe80::1"),
        dst: a("ff02::1:2"),
    };
    let mut out = [0u8; 10];
    let o = e.handle(
        h_now(),
        &rx,
        &solicit(&client_duid(1), &[]),
        &mut store,
        &mut rng,
        &mut out,
    );
    assert_eq!(o, Outcome::Drop(DropReason::ReplyTooLarge));
}

fn h_now() -> FailoverTime {
    FailoverTime(5)
}
