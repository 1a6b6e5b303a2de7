//! The engine's contract for failover (issue "Before failover" §2, §3): every IA answered,
//! T1/T2 derived from what was granted, the serving policy obeyed, every committed change
//! reported, and no lease ever born expired.

mod common;

use std::collections::HashSet;
use std::net::Ipv6Addr;

use common::*;
use proptest::prelude::*;
use tandem_lease::{
    AddressShare, BindingStatus, FailoverTime, LeaseKind, LeaseStore, MemStore, PrefixShare,
    Responsiveness, ServingPolicy,
};
use tandem_proto::{DropReason, Engine, MAX_IAS, MAX_LEASES_PER_IA, Outcome};
use tandem_wire::dhcp::{MessageType as T, StatusCode};

fn with_server(t: T, duid: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut o = vec![client_id(duid), server_id()];
    o.extend_from_slice(extra);
    msg(t, 0x777, &o)
}

/// A relayed message on subnet 2 (a /64 address pool, two PD pools: room for many IAs).
fn relayed(t: T, duid: &[u8], extra: &[Vec<u8>], with_sid: bool) -> Vec<u8> {
    let mut o = vec![client_id(duid)];
    if with_sid {
        o.push(server_id());
    }
    o.extend_from_slice(extra);
    let inner = msg(t, 0x55, &o);
    relay_forw(0, a("2001:db8:2::1"), a("fe80::5"), None, &inner)
}

fn send_relayed(h: &mut Harness<MemStore>, payload: &[u8]) -> Vec<u8> {
    let (o, out) = h.send_on("eth0", payload);
    assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
    unwrap_relay(&out).0
}

#[test]
fn request_with_twenty_ia_nas_and_three_ia_pds_gets_every_ia_back() {
    // RFC 8415 §18.3.2: every IA of the request is answered (the old limit was 16).
    let mut h = Harness::new();
    let mut ias: Vec<Vec<u8>> = (0..20).map(|i| ia_na(100 + i, &[])).collect();
    ias.extend((0..3).map(|i| ia_pd(200 + i, &[])));
    let r = send_relayed(&mut h, &relayed(T::REQUEST, &client_duid(1), &ias, true));
    let na = ia_nas(&r);
    let pd = ia_pds(&r);
    assert_eq!(na.len(), 20);
    assert_eq!(pd.len(), 3);
    let mut leases = HashSet::new();
    for ia in na.iter().chain(&pd) {
        assert_eq!(ia.status, None, "{ia:?}");
        assert_eq!(ia.leases.len(), 1);
        assert!(
            leases.insert(ia.leases[0].0),
            "one lease per IA, all distinct"
        );
    }
    assert_eq!(h.store.len(), 23);
    assert_eq!(h.engine.changes().len(), 23);
    assert_eq!(h.engine.counters().ias_over_limit, 0);
}

#[test]
fn ias_past_the_limit_come_back_with_a_status_and_are_counted() {
    let mut h = Harness::new();
    let ias: Vec<Vec<u8>> = (0..MAX_IAS as u32 + 6).map(|i| ia_na(i, &[])).collect();
    let r = send_relayed(&mut h, &relayed(T::REQUEST, &client_duid(1), &ias, true));
    let na = ia_nas(&r);
    assert_eq!(na.len(), MAX_IAS + 6, "every IA is in the reply");
    assert!(na[..MAX_IAS].iter().all(|ia| ia.status.is_none()));
    assert!(
        na[MAX_IAS..]
            .iter()
            .all(|ia| ia.status == Some(StatusCode::NO_ADDRS_AVAIL) && ia.leases.is_empty())
    );
    assert_eq!(h.store.len(), MAX_IAS);
    assert_eq!(h.engine.counters().ias_over_limit, 6);
}

#[test]
fn release_past_the_limit_never_reports_success_for_what_it_did_not_release() {
    let mut h = Harness::new();
    let ias: Vec<Vec<u8>> = (0..MAX_IAS as u32 + 2).map(|i| ia_na(i, &[])).collect();
    send_relayed(&mut h, &relayed(T::REQUEST, &client_duid(1), &ias, true));
    let held: Vec<Ipv6Addr> = {
        let mut v = Vec::new();
        h.store.scan(0, 1000, &mut |b| v.push((b.iaid, b.addr)));
        v.sort();
        v.into_iter().map(|(_, a)| a).collect()
    };
    assert_eq!(held.len(), MAX_IAS);
    let release: Vec<Vec<u8>> = (0..MAX_IAS as u32 + 2)
        .map(|i| {
            ia_na(
                i,
                &held
                    .get(i as usize)
                    .copied()
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let r = send_relayed(
        &mut h,
        &relayed(T::RELEASE, &client_duid(1), &release, true),
    );
    let na = ia_nas(&r);
    // Released IAs are left out (RFC 8415 §18.3.7); the unprocessed ones say so.
    assert_eq!(na.len(), 2);
    assert!(
        na.iter()
            .all(|ia| ia.status == Some(StatusCode::UNSPEC_FAIL))
    );
    let mut released = 0;
    h.store.scan(0, 1000, &mut |b| {
        released += usize::from(b.status == BindingStatus::RELEASED);
    });
    assert_eq!(released, MAX_IAS);
}

#[test]
fn release_naming_many_addresses_releases_the_one_held_past_the_old_limit_of_eight() {
    let mut h = Harness::new();
    let r = send_relayed(
        &mut h,
        &relayed(T::REQUEST, &client_duid(1), &[ia_na(1, &[])], true),
    );
    let held = ia_nas(&r)[0].leases[0].0;
    let mut named: Vec<Ipv6Addr> = (1..12u128)
        .map(|i| Ipv6Addr::from(u128::from(held) ^ (i << 8)))
        .collect();
    named.push(held);
    assert!(named.len() > 8 && named.len() <= MAX_LEASES_PER_IA);
    let r = send_relayed(
        &mut h,
        &relayed(T::RELEASE, &client_duid(1), &[ia_na(1, &named)], true),
    );
    assert_eq!(top_status(&r), Some(StatusCode::SUCCESS));
    assert!(ia_nas(&r).is_empty(), "released IA left out");
    assert_eq!(
        h.store.get(LeaseKind::Address, held).unwrap().status,
        BindingStatus::RELEASED
    );
    // Past MAX_LEASES_PER_IA the IA is not processed and says so.
    let many: Vec<Ipv6Addr> = (0..=MAX_LEASES_PER_IA as u128)
        .map(|i| Ipv6Addr::from(u128::from(held) + i))
        .collect();
    let r = send_relayed(
        &mut h,
        &relayed(T::DECLINE, &client_duid(1), &[ia_na(1, &many)], true),
    );
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::UNSPEC_FAIL));
    assert_eq!(
        h.store.get(LeaseKind::Address, held).unwrap().status,
        BindingStatus::RELEASED,
        "nothing declined"
    );
}

#[test]
fn t1_t2_follow_the_configured_values_when_lifetimes_are_not_capped() {
    let mut h = Harness::new();
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    let na = &ia_nas(&r)[0];
    let pd = &ia_pds(&r)[0];
    assert_eq!((na.t1, na.t2), (1800, 2880));
    assert_eq!((pd.t1, pd.t2), (1800, 2880));
    let b = h.store.get(LeaseKind::Address, na.leases[0].0).unwrap();
    assert_eq!((b.t1, b.t2, b.preferred, b.valid), (1800, 2880, 3600, 7200));
}

fn failover_policy(mclt: u32) -> ServingPolicy {
    ServingPolicy {
        mclt: Some(mclt),
        reuse_needs_partner_ack: true,
        ..ServingPolicy::STANDALONE
    }
}

#[test]
fn mclt_capped_lifetimes_give_t1_t2_below_the_shortest_preferred_lifetime() {
    // RFC 8156 §4.4: a new client gets at most the MCLT; RFC 8415 §21.4: T1/T2 0.5/0.8 of the
    // shortest preferred lifetime, the same in every IA (§18.3.2).
    let mut h = Harness::new();
    h.engine.set_policy(failover_policy(600));
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    for ia in ia_nas(&r).iter().chain(&ia_pds(&r)) {
        assert_eq!(ia.leases[0].2, 600, "preferred capped to valid");
        assert_eq!(ia.leases[0].3, 600, "valid capped to the MCLT");
        assert_eq!((ia.t1, ia.t2), (300, 480));
        assert!(ia.t1 <= ia.t2 && ia.t2 <= ia.leases[0].2);
    }
    // Once the partner acked a lifetime ahead, renewals get more (up to the desired 7200).
    let addr = ia_nas(&r)[0].leases[0].0;
    let mut b = h.store.get(LeaseKind::Address, addr).unwrap();
    b.acked_partner_lifetime = h.now.wrapping_add(3000);
    h.store.put(&b).unwrap();
    h.now = h.now.wrapping_add(300);
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    let na = &ia_nas(&r)[0];
    assert_eq!(na.leases[0].3, 2700 + 600);
    assert_eq!(na.leases[0].2, 3300);
    assert_eq!((na.t1, na.t2), (1650, 2640));
}

#[test]
fn infinite_configured_lifetimes_become_finite_under_the_mclt() {
    let mut h = Harness::new();
    let mut c = config();
    c.subnets[0].preferred_lifetime = u32::MAX;
    c.subnets[0].valid_lifetime = u32::MAX;
    c.subnets[0].t1 = u32::MAX;
    c.subnets[0].t2 = u32::MAX;
    h.engine = Engine::new(c, SERVER_DUID.to_vec());
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
    let na = &ia_nas(&r)[0];
    assert_eq!(na.leases[0].2..=na.leases[0].3, u32::MAX..=u32::MAX);
    assert_eq!((na.t1, na.t2), (u32::MAX, u32::MAX));
    h.engine.set_policy(failover_policy(3600));
    let r = h.reply(&with_server(T::REQUEST, &client_duid(2), &[ia_na(1, &[])]));
    let na = &ia_nas(&r)[0];
    assert_eq!((na.leases[0].2, na.leases[0].3), (3600, 3600));
    assert_eq!((na.t1, na.t2), (1800, 2880));
}

#[test]
fn unresponsive_policy_answers_nothing() {
    let mut h = Harness::new();
    h.engine.set_policy(ServingPolicy::UNRESPONSIVE);
    let cases = [
        msg(T::SOLICIT, 1, &[client_id(&client_duid(1)), ia_na(1, &[])]),
        with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]),
        msg(T::INFORMATION_REQUEST, 1, &[]),
    ];
    for c in cases {
        assert_eq!(
            h.send_on("eth0", &c).0,
            Outcome::Drop(DropReason::Unresponsive)
        );
    }
    assert!(h.store.is_empty());
}

#[test]
fn renew_responsive_policy_answers_only_messages_naming_this_server() {
    // RFC 8156 §2 "renew responsive"; §8.8.1: the secondary in NORMAL.
    let mut h = Harness::new();
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
    let addr = ia_nas(&r)[0].leases[0].0;
    h.engine.set_policy(ServingPolicy {
        responsiveness: Responsiveness::RenewResponsive,
        new_leases: false,
        ..ServingPolicy::STANDALONE
    });
    for m in [
        msg(T::SOLICIT, 1, &[client_id(&client_duid(2)), ia_na(1, &[])]),
        msg(
            T::REBIND,
            1,
            &[client_id(&client_duid(1)), ia_na(1, &[addr])],
        ),
        msg(T::INFORMATION_REQUEST, 1, &[]),
    ] {
        assert_eq!(
            h.send_on("eth0", &m).0,
            Outcome::Drop(DropReason::RenewResponsiveOnly)
        );
    }
    h.now = h.now.wrapping_add(100);
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    assert_eq!(ia_nas(&r)[0].leases, vec![(addr, 128, 3600, 7200)]);
    // No new leases: a Request from a client without a binding gets nothing.
    let r = h.reply(&with_server(T::REQUEST, &client_duid(3), &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    assert_eq!(
        h.engine.counters().drops(DropReason::RenewResponsiveOnly),
        3
    );
}

#[test]
fn without_new_leases_renew_extends_only_named_active_leases() {
    // RFC 8156 §8.7.1: RECOVER-DONE "MUST only change the state of a lease that appears in
    // the RENEW request".
    let mut h = Harness::new();
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
    let addr = ia_nas(&r)[0].leases[0].0;
    h.engine.set_policy(ServingPolicy {
        new_leases: false,
        ..ServingPolicy::STANDALONE
    });
    let r = h.reply(&with_server(T::RENEW, &client_duid(1), &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_BINDING));
    let r = h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, addr);
}

#[test]
fn address_share_limits_fresh_addresses_to_one_parity_in_every_shard() {
    // RFC 8156 §4.2.1.1: primary odd, secondary even; independent of the shard partition.
    for shards in 1..=4u32 {
        for (share, parity) in [(AddressShare::Odd, 1u8), (AddressShare::Even, 0)] {
            for shard in 0..shards {
                let mut h = Harness::new();
                h.engine =
                    Engine::new(config(), SERVER_DUID.to_vec()).with_partition(shard, shards);
                h.engine.set_policy(ServingPolicy {
                    addresses: share,
                    ..ServingPolicy::STANDALONE
                });
                for n in 0..20u8 {
                    let r = send_relayed(
                        &mut h,
                        &relayed(T::REQUEST, &[9, 9, shard as u8, n], &[ia_na(1, &[])], true),
                    );
                    let na = &ia_nas(&r)[0];
                    assert_eq!(na.status, None, "S={shards} shard {shard} {share:?}");
                    let a = na.leases[0].0;
                    assert_eq!(a.octets()[15] & 1, parity, "{a} S={shards} shard {shard}");
                }
            }
        }
    }
}

#[test]
fn address_share_is_honoured_for_hints_and_small_pools() {
    // Subnet 1: ::100-::103 with ::101 reserved. Odd share: only ::103 is dynamic.
    let mut h = Harness::new();
    h.engine.set_policy(ServingPolicy {
        addresses: AddressShare::Odd,
        ..ServingPolicy::STANDALONE
    });
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[a("2001:db8:1::102")])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, a("2001:db8:1::103"));
    let r = h.reply(&with_server(T::REQUEST, &client_duid(2), &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    // The reservation is not subject to the share.
    let r = h.reply(&with_server(T::REQUEST, RESERVED_DUID, &[ia_na(1, &[])]));
    assert_eq!(ia_nas(&r)[0].leases[0].0, a("2001:db8:1::101"));
}

#[test]
fn prefix_share_free_backup_delegates_only_prefixes_handed_to_the_secondary() {
    let mut h = Harness::new();
    h.engine.set_policy(ServingPolicy {
        prefixes: PrefixShare::FreeBackup,
        ..ServingPolicy::STANDALONE
    });
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_pd(2, &[])]));
    assert_eq!(ia_pds(&r)[0].status, Some(StatusCode::NO_PREFIX_AVAIL));
    // The primary hands one prefix over (RFC 8156 §4.2.2: a FREE-BACKUP binding); a hint finds it.
    let p = a("2001:db8:8000:4200::");
    let mut b = tandem_lease::Binding::free(LeaseKind::Prefix, p, 56, 0);
    b.status = BindingStatus::FREE_BACKUP;
    h.store.put(&b).unwrap();
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_pd(2, &[(p, 56)])],
    ));
    assert_eq!(ia_pds(&r)[0].leases[0].0, p);
    // The primary's share never takes a FREE-BACKUP prefix.
    let mut h2 = Harness::new();
    h2.engine.set_policy(ServingPolicy {
        prefixes: PrefixShare::Free,
        ..ServingPolicy::STANDALONE
    });
    h2.store.put(&b).unwrap();
    let r = h2.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_pd(2, &[(p, 56)])],
    ));
    assert_ne!(ia_pds(&r)[0].leases[0].0, p);
}

#[test]
fn released_lease_waits_for_the_partner_ack_before_another_client_gets_it() {
    // RFC 8156 §4.2.2.1: another client only after the partner acked (PENDING-FREE → FREE);
    // the same client at once.
    let mut h = Harness::new();
    h.engine.set_policy(failover_policy(3600));
    let mut got = Vec::new();
    for n in 1..=3 {
        let r = h.reply(&with_server(T::REQUEST, &client_duid(n), &[ia_na(1, &[])]));
        got.push(ia_nas(&r)[0].leases[0].0);
    }
    let addr = got[0];
    h.reply(&with_server(
        T::RELEASE,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(9),
        &[ia_na(1, &[addr])],
    ));
    assert_eq!(ia_nas(&r)[0].status, Some(StatusCode::NO_ADDRS_AVAIL));
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
    assert_eq!(
        ia_nas(&r)[0].leases[0].0,
        addr,
        "the same client gets it back"
    );
}

#[test]
fn every_committed_change_is_reported_once_with_its_previous_status() {
    let mut h = Harness::new();
    h.reply(&msg(
        T::SOLICIT,
        1,
        &[client_id(&client_duid(1)), ia_na(1, &[])],
    ));
    assert!(
        h.engine.changes().is_empty(),
        "an Advertise commits nothing"
    );
    let r = h.reply(&with_server(
        T::REQUEST,
        &client_duid(1),
        &[ia_na(1, &[]), ia_pd(2, &[])],
    ));
    let addr = ia_nas(&r)[0].leases[0].0;
    let ch = h.engine.changes().to_vec();
    assert_eq!(ch.len(), 2);
    assert!(
        ch.iter()
            .all(|c| c.from.is_none() && c.binding.status == BindingStatus::ACTIVE)
    );
    for c in &ch {
        assert_eq!(h.store.get(c.binding.kind, c.binding.addr), Some(c.binding));
    }
    h.now = h.now.wrapping_add(60);
    h.reply(&with_server(
        T::RENEW,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    let ch = h.engine.changes();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].from, Some(BindingStatus::ACTIVE));
    h.reply(&with_server(
        T::DECLINE,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    let ch = h.engine.changes();
    assert_eq!(ch.len(), 1);
    assert_eq!(
        (ch[0].from, ch[0].binding.status),
        (Some(BindingStatus::ACTIVE), BindingStatus::ABANDONED)
    );
    h.now = h.now.wrapping_add(86_400 * 2);
    h.engine.reclaim(h.now, &mut h.store, 100);
    let ch = h.engine.changes();
    assert_eq!(
        ch.len(),
        2,
        "the prefix expired, the address left quarantine: {ch:?}"
    );
    let statuses: HashSet<_> = ch.iter().map(|c| (c.from, c.binding.status)).collect();
    assert!(statuses.contains(&(Some(BindingStatus::ACTIVE), BindingStatus::EXPIRED)));
    assert!(statuses.contains(&(Some(BindingStatus::ABANDONED), BindingStatus::FREE)));
    // Under a failover policy the quarantine ends in RESET, awaiting the partner's ack.
    h.engine.reclaim(h.now, &mut h.store, 100);
    assert!(h.engine.changes().is_empty());
}

#[test]
fn quarantine_end_stops_at_reset_when_the_partner_must_acknowledge() {
    let mut h = Harness::new();
    h.engine.set_policy(failover_policy(3600));
    let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
    let addr = ia_nas(&r)[0].leases[0].0;
    h.reply(&with_server(
        T::DECLINE,
        &client_duid(1),
        &[ia_na(1, &[addr])],
    ));
    h.now = h.now.wrapping_add(86_401);
    let rep = h.engine.reclaim(h.now, &mut h.store, 100);
    assert_eq!(rep.unquarantined, 1);
    assert_eq!(
        h.store.get(LeaseKind::Address, addr).unwrap().status,
        BindingStatus::RESET
    );
}

/// An engine whose subnet 1 has these lifetimes, bypassing config validation (the engine must
/// be safe with whatever it is given).
fn engine_with_lifetimes(preferred: u32, valid: u32) -> Engine {
    let mut c = config();
    c.subnets[0].preferred_lifetime = preferred;
    c.subnets[0].valid_lifetime = valid;
    Engine::new(c, SERVER_DUID.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Issue "Before failover" §2: no lease is ever born expired, whatever the lifetime
    /// (0xffffffff infinity included) and the time, so it can never go to a second client.
    #[test]
    fn no_lease_is_born_expired(
        valid in prop_oneof![
            Just(u32::MAX), Just(0u32), Just(1u32), Just(1u32 << 30), Just(1u32 << 31),
            Just(u32::MAX - 1), any::<u32>()
        ],
        now in any::<u32>(),
        mclt in prop::option::of(30u32..100_000),
    ) {
        let mut h = Harness::new();
        h.engine = engine_with_lifetimes(valid / 2, valid);
        if let Some(m) = mclt {
            h.engine.set_policy(failover_policy(m));
        }
        h.now = FailoverTime(now);
        let r = h.reply(&with_server(T::REQUEST, &client_duid(1), &[ia_na(1, &[])]));
        let na = ia_nas(&r);
        let addr = na[0].leases[0].0;
        let b = h.store.get(LeaseKind::Address, addr).unwrap();
        prop_assert!(b.is_active_at(h.now), "{b:?}");
        // The server's record ends exactly when the client's lease does (never earlier).
        let told = na[0].leases[0].3;
        prop_assert_eq!(b.valid, told);
        if told == u32::MAX {
            prop_assert_eq!(b.state_expiration_time, FailoverTime(0));
        } else {
            prop_assert!(told <= tandem_lease::MAX_FINITE_LIFETIME);
            let ends = b.state_expiration_time.wrapping_sub(h.now);
            prop_assert!(ends == told as i32 || (ends == told as i32 + 1 && now.wrapping_add(told) == 0));
        }
        prop_assert!(na[0].t1 <= na[0].t2);
        prop_assert!(na[0].t2 <= na[0].leases[0].2 || na[0].leases[0].2 == 0 || na[0].t2 == u32::MAX);
        // Nobody else gets it now.
        let r = h.reply(&with_server(T::REQUEST, &client_duid(2), &[ia_na(1, &[addr])]));
        prop_assert!(ia_nas(&r)[0].leases.iter().all(|l| l.0 != addr));
        // Reclaim at the same instant leaves it alone.
        let rep = h.engine.reclaim(h.now, &mut h.store, 100);
        prop_assert_eq!(rep.expired, 0);
    }
}

/// One step of [`mclt_cap_holds_over_random_sequences`].
#[derive(Clone, Debug)]
enum CapStep {
    /// Client `n` sends Request (new or returning) or Renew for its IA_NA and IA_PD.
    Client { n: u8, renew: bool },
    /// Time passes.
    Wait(u32),
    /// The partner acks every binding's pending partner lifetime (RFC 8156 §7.7: it becomes
    /// the acked-partner-lifetime), as a BNDREPLY would.
    PartnerAcks,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// RFC 8156 §4.4 over random sequences of new clients, returning clients, renewals, time and
    /// partner acks: every lease a client is told expires no later than
    /// max(now, acked partner lifetime) + MCLT, and the partner lifetime recorded for the next
    /// BNDUPD never ends before the client's lease (so an acked partner knows at least as much
    /// as the client holds). Once acked, a renewal gets the full desired lifetime.
    #[test]
    fn mclt_cap_holds_over_random_sequences(
        mclt in 30u32..4000,
        valid in 60u32..20_000,
        steps in prop::collection::vec(prop_oneof![
            (0u8..6, any::<bool>()).prop_map(|(n, renew)| CapStep::Client { n, renew }),
            (0u32..30_000).prop_map(CapStep::Wait),
            Just(CapStep::PartnerAcks),
        ], 1..40),
    ) {
        let mut h = Harness::new();
        h.engine = engine_with_lifetimes(valid / 2, valid);
        h.engine.set_policy(failover_policy(mclt));
        h.now = FailoverTime(900_000_000);
        for step in steps {
            match step {
                CapStep::Wait(s) => h.now = h.now.wrapping_add(s),
                CapStep::PartnerAcks => {
                    let mut all = Vec::new();
                    h.store.scan(0, usize::MAX, &mut |b| all.push(*b));
                    for mut b in all {
                        if b.partner_lifetime.0 != 0 {
                            b.acked_partner_lifetime = b.partner_lifetime;
                            b.partner_lifetime = FailoverTime(0);
                            h.store.put(&b).unwrap();
                        }
                    }
                }
                CapStep::Client { n, renew } => {
                    let duid = client_duid(n);
                    // What the partner had acked for this client's leases before the reply.
                    let mut acked = Vec::new();
                    h.store.scan(0, usize::MAX, &mut |b| {
                        if b.duid.as_bytes() == duid.as_slice() {
                            acked.push((b.addr, b.acked_partner_lifetime));
                        }
                    });
                    let t = if renew { T::RENEW } else { T::REQUEST };
                    let r = h.reply(&with_server(t, &duid, &[ia_na(1, &[]), ia_pd(2, &[])]));
                    let ias = ia_nas(&r)
                        .into_iter()
                        .map(|ia| (LeaseKind::Address, ia))
                        .chain(ia_pds(&r).into_iter().map(|ia| (LeaseKind::Prefix, ia)));
                    for (kind, ia) in ias {
                        for l in &ia.leases {
                            let told = l.3;
                            if told == 0 {
                                continue;
                            }
                            let ack = acked
                                .iter()
                                .find(|(a, _)| *a == l.0)
                                .map_or(0, |(_, t)| t.wrapping_sub(h.now).max(0).unsigned_abs());
                            // §4.4: the cap, and the preferred lifetime under the valid one.
                            prop_assert!(told <= ack.saturating_add(mclt), "told {told}, acked ahead {ack}, MCLT {mclt}");
                            prop_assert!(l.2 <= told);
                            let b = h.store.get(kind, l.0).expect("committed");
                            let expiry = b.state_expiration_time;
                            prop_assert!(
                                b.partner_lifetime.cmp_wrapping(expiry).is_ge(),
                                "partner lifetime {:?} before the client's expiry {:?}",
                                b.partner_lifetime, expiry
                            );
                            // Acked far enough ahead: the full desired lifetime.
                            if ack >= valid {
                                prop_assert_eq!(told, valid);
                            }
                        }
                    }
                }
            }
        }
    }
}
