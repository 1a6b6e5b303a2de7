//! RFC 8156 §7.4–§7.7 end to end without I/O: a primary's engine grants leases, each committed
//! change goes out as a BNDUPD (`tandem_failover::bndupd`), the secondary's engine stores it
//! (`Engine::partner_update`), answers with a BNDREPLY, and the primary applies the ack
//! (`Engine::partner_ack`). Then the secondary, in PARTNER-DOWN, renews the primary's client
//! with the same lease (RFC 7031 req. 4: lease stability), and conflicts follow §7.5.4.

mod common;

use common::*;
use tandem_failover::StateName;
use tandem_failover::bndupd::{
    BndreplyMessage, BndupdMessage, Verdict, decode_bndreply, decode_bndupd,
};
use tandem_failover::machine::serving_policy;
use tandem_lease::sync::Role as SyncRole;
use tandem_lease::{BindingFlags, BindingStatus, FailoverTime, LeaseKind, LeaseStore, MemStore};
use tandem_proto::{Engine, PartnerOutcome, RebalanceReport};
use tandem_wire::dhcp::{MessageType as T, StatusCode};

const MCLT: u32 = 60;

/// `b` still waits for the partner's acknowledgement (RFC 8156 §7.3).
fn needs_update(b: &tandem_lease::Binding) -> bool {
    b.flags.contains(BindingFlags::UPDATE_PENDING)
}
/// The secondary's server DUID (the primary uses the harness's).
const SECONDARY_DUID: &[u8] = b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x02";

fn primary() -> Harness<MemStore> {
    let mut h = Harness::new();
    h.engine.set_policy(serving_policy(
        tandem_failover::Role::Primary,
        StateName::Normal,
        MCLT,
    ));
    h
}

fn secondary(state: StateName) -> Harness<MemStore> {
    let mut h = Harness::new();
    h.engine = Engine::new(config(), SECONDARY_DUID.to_vec());
    h.engine.set_policy(serving_policy(
        tandem_failover::Role::Secondary,
        state,
        MCLT,
    ));
    h
}

/// Sends every binding `from` changed last as a BNDUPD to `to` (role `to_role`); returns the
/// verdicts and the BNDREPLY bytes per update, and hands each reply back to `from`.
fn sync(
    from: &mut Harness<MemStore>,
    to: &mut Harness<MemStore>,
    to_role: SyncRole,
) -> Vec<Verdict> {
    let changed: Vec<_> = from.engine.changes().iter().map(|c| c.binding).collect();
    sync_these(from, to, to_role, changed)
}

/// [`sync`] for the given bindings of `from`.
fn sync_these(
    from: &mut Harness<MemStore>,
    to: &mut Harness<MemStore>,
    to_role: SyncRole,
    changed: Vec<tandem_lease::Binding>,
) -> Vec<Verdict> {
    let mut verdicts_all = Vec::new();
    for (xid, b) in (1u32..).zip(changed) {
        let mut buf = vec![0u8; 2048];
        let m = BndupdMessage::new(&b, from.now).expect("a binding with a client");
        let n = m.emit(xid, &mut buf).expect("fits");
        let upd = decode_bndupd(&buf[..n]).expect("our own BNDUPD decodes");
        let mut verdicts = Vec::new();
        for lease in upd.leases() {
            let lease = lease.expect("every lease decodes");
            let v = match to
                .engine
                .partner_update(to.now, to_role, &lease, &mut to.store)
            {
                PartnerOutcome::Accepted => Verdict::Accept,
                PartnerOutcome::Outdated { .. } => {
                    Verdict::Reject(StatusCode::OUTDATED_BINDING_INFORMATION)
                }
                PartnerOutcome::AddressInUse => Verdict::Reject(StatusCode::ADDRESS_IN_USE),
                other => panic!("unexpected {other:?}"),
            };
            verdicts.push(v);
        }
        let reply = BndreplyMessage::new(&upd, &verdicts).expect("one verdict per lease");
        let mut rbuf = vec![0u8; 2048];
        let rn = reply.emit(to.now, &mut rbuf).expect("fits");
        let acks = decode_bndreply(&rbuf[..rn]).expect("our own BNDREPLY decodes");
        for ack in &acks.leases {
            if let Some(info) = ack.ack_info(b.start_time_of_state) {
                from.engine
                    .partner_ack(from.now, ack.kind, ack.addr, &info, &mut from.store);
            }
        }
        verdicts_all.extend(verdicts);
    }
    verdicts_all
}

fn req(t: T, duid: &[u8], sid: bool) -> Vec<u8> {
    let mut o = vec![client_id(duid)];
    if sid {
        o.push(server_id());
    }
    o.push(ia_na(1, &[]));
    o.push(ia_pd(2, &[]));
    msg(t, 0x777, &o)
}

#[test]
fn a_granted_lease_reaches_the_partner_is_acked_and_survives_failover_7_5_7_7() {
    let (mut p, mut s) = (primary(), secondary(StateName::Normal));
    let duid = client_duid(7);
    let r = p.reply(&req(T::REQUEST, &duid, true));
    let na = ia_nas(&r)[0].leases[0];
    let pd = ia_pds(&r)[0].leases[0];
    assert_eq!(
        u128::from(na.0) & 1,
        1,
        "§4.2.1.1 the primary allocates odd addresses"
    );
    assert_eq!(na.3, MCLT, "§4.4 a new lease gets at most the MCLT");
    let before = p.store.get(LeaseKind::Address, na.0).unwrap();
    assert!(needs_update(&before), "§7.3 flagged until the partner acks");
    assert!(
        before
            .partner_lifetime
            .cmp_wrapping(before.state_expiration_time)
            .is_gt()
    );

    s.now = p.now;
    assert_eq!(
        sync(&mut p, &mut s, SyncRole::Secondary),
        [Verdict::Accept, Verdict::Accept]
    );
    // The secondary knows the client's leases (§7.5.5) ...
    for (kind, addr) in [(LeaseKind::Address, na.0), (LeaseKind::Prefix, pd.0)] {
        let theirs = s.store.get(kind, addr).expect("stored by the partner");
        let ours = p.store.get(kind, addr).unwrap();
        assert_eq!(theirs.status, BindingStatus::ACTIVE);
        assert_eq!(theirs.duid, ours.duid);
        assert_eq!(theirs.iaid, ours.iaid);
        assert_eq!(theirs.state_expiration_time, ours.state_expiration_time);
        // PARTNER_LIFETIME → its expiration-time; CLT_TIME → partner-raw-clt-time (Figure 5).
        // What it stored as expiration-time is what it echoed and we now hold as acked.
        assert_eq!(theirs.expiration_time, ours.acked_partner_lifetime);
        assert_eq!(theirs.partner_raw_clt_time, ours.cltt);
        // ... and the primary's ack cleared the flag and recorded the acked partner lifetime
        // (§7.7), which lets a renewal get the full lifetime under the MCLT cap (§4.4).
        assert!(
            !ours.flags.contains(BindingFlags::UPDATE_PENDING),
            "{ours:?}"
        );
        assert_eq!(ours.partner_lifetime, FailoverTime(0));
        assert!(
            ours.acked_partner_lifetime
                .cmp_wrapping(ours.state_expiration_time)
                .is_gt()
        );
    }
    assert_eq!(p.engine.counters().partner_acked, 2);
    assert_eq!(s.engine.counters().partner_accepted, 2);

    // Renewed at the primary after the ack: the full configured lifetime (not the MCLT).
    p.now = p.now.wrapping_add(20);
    let r = p.reply(&req(T::RENEW, &duid, true));
    assert!(ia_nas(&r)[0].leases[0].3 > MCLT, "{:?}", ia_nas(&r));

    // The primary dies; the secondary in PARTNER-DOWN answers the client's Rebind with the
    // same address and prefix (lease stability, RFC 7031 req. 4; RFC 8156 §8.4.1 "allow
    // renewal of all outstanding leases").
    s.engine.set_policy(serving_policy(
        tandem_failover::Role::Secondary,
        StateName::PartnerDown,
        MCLT,
    ));
    s.now = p.now.wrapping_add(30);
    let r = s.reply(&req(T::REBIND, &duid, false));
    assert_eq!(ia_nas(&r)[0].leases[0].0, na.0);
    assert_eq!(ia_pds(&r)[0].leases[0].0, pd.0);
    // A new client of the secondary gets an even address (§4.2.1.1), never the primary's.
    let new = msg(
        T::REQUEST,
        0x778,
        &[
            client_id(&client_duid(8)),
            opt(2, SECONDARY_DUID),
            ia_na(1, &[]),
            ia_pd(2, &[]),
        ],
    );
    let r = s.reply(&new);
    let other = ia_nas(&r)[0].leases[0].0;
    assert_eq!(u128::from(other) & 1, 0);
    // Delegable prefixes all start with the primary (§4.2.2): without a rebalancing
    // (POOLREQ, FREE-BACKUP prefixes) the secondary has none of its own to delegate, and it
    // never takes the primary's (docs/failover.md D16).
    assert!(ia_pds(&r)[0].leases.iter().all(|l| l.0 != pd.0 && l.3 == 0));
}

#[test]
fn a_release_acked_by_the_partner_frees_the_lease_and_tells_it_7_2() {
    let (mut p, mut s) = (primary(), secondary(StateName::Normal));
    let duid = client_duid(9);
    let r = p.reply(&req(T::REQUEST, &duid, true));
    let na = ia_nas(&r)[0].leases[0].0;
    s.now = p.now;
    sync(&mut p, &mut s, SyncRole::Secondary);
    p.now = p.now.wrapping_add(10);
    s.now = p.now;
    let mut rel = vec![client_id(&duid), server_id(), ia_na(1, &[na])];
    rel.push(ia_pd(2, &[]));
    p.reply(&msg(T::RELEASE, 0x42, &rel));
    assert_eq!(
        p.store.get(LeaseKind::Address, na).unwrap().status,
        BindingStatus::RELEASED
    );
    // RELEASED goes to the partner; its ack moves the lease on to FREE (§7.2 (4), (5): an odd
    // address is the primary's), which is a change for the partner too.
    sync(&mut p, &mut s, SyncRole::Secondary);
    let b = p.store.get(LeaseKind::Address, na).unwrap();
    assert_eq!(b.status, BindingStatus::FREE);
    assert!(needs_update(&b));
    assert_eq!(
        s.store.get(LeaseKind::Address, na).unwrap().status,
        BindingStatus::RELEASED
    );
    sync(&mut p, &mut s, SyncRole::Secondary);
    assert_eq!(
        s.store.get(LeaseKind::Address, na).unwrap().status,
        BindingStatus::FREE
    );
    assert!(!needs_update(&p.store.get(LeaseKind::Address, na).unwrap()));
}

#[test]
fn the_primary_refuses_its_active_lease_for_another_client_address_in_use_7_5_4() {
    // Both served during a partition: the secondary (PARTNER-DOWN, after the MCLT) gave a
    // prefix the primary had given to another client. The primary rejects AddressInUse
    // (accept(3), we are the primary, time(2) fails); the secondary, receiving the primary's
    // binding, accepts (accept(3): "or we are the secondary").
    let (mut p, mut s) = (primary(), secondary(StateName::PartnerDown));
    let r = p.reply(&req(T::REQUEST, &client_duid(1), true));
    let pd = ia_pds(&r)[0].leases[0].0;
    let granted: Vec<_> = p.engine.changes().iter().map(|c| c.binding).collect();
    let mut theirs = p.store.get(LeaseKind::Prefix, pd).unwrap();
    theirs.duid = tandem_lease::DuidBuf::new(&client_duid(2)).unwrap();
    theirs.cltt = FailoverTime(p.now.0 - 100);
    theirs.start_time_of_state = FailoverTime(p.now.0 - 100);
    s.store.put(&theirs).unwrap();
    s.now = p.now;
    // The secondary's binding to the primary: AddressInUse.
    let upd_bytes = {
        let mut buf = vec![0u8; 2048];
        let n = BndupdMessage::new(&theirs, s.now)
            .unwrap()
            .emit(5, &mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    };
    let upd = decode_bndupd(&upd_bytes).unwrap();
    let lease = upd.leases().next().unwrap().unwrap();
    assert_eq!(
        p.engine
            .partner_update(p.now, SyncRole::Primary, &lease, &mut p.store),
        PartnerOutcome::AddressInUse
    );
    assert_eq!(
        p.store.get(LeaseKind::Prefix, pd).unwrap().duid.as_bytes(),
        client_duid(1)
    );
    // The primary's binding to the secondary: accepted, the secondary now knows the primary's
    // client holds it.
    assert_eq!(
        sync_these(&mut p, &mut s, SyncRole::Secondary, granted),
        [Verdict::Accept, Verdict::Accept]
    );
    assert_eq!(
        s.store.get(LeaseKind::Prefix, pd).unwrap().duid.as_bytes(),
        client_duid(1)
    );
}

#[test]
fn a_lease_outside_our_pools_is_a_configuration_conflict_7_5_4() {
    let (mut p, mut s) = (primary(), secondary(StateName::Normal));
    p.reply(&req(T::REQUEST, &client_duid(3), true));
    let mut b = p.engine.changes()[0].binding;
    b.addr = "2001:db8:ffff::1".parse().unwrap();
    let mut buf = vec![0u8; 2048];
    let n = BndupdMessage::new(&b, p.now)
        .unwrap()
        .emit(9, &mut buf)
        .unwrap();
    let upd = decode_bndupd(&buf[..n]).unwrap();
    let lease = upd.leases().next().unwrap().unwrap();
    assert_eq!(
        s.engine
            .partner_update(s.now, SyncRole::Secondary, &lease, &mut s.store),
        PartnerOutcome::NotConfigured
    );
    assert!(s.store.get(LeaseKind::Address, b.addr).is_none());
}

#[test]
fn partner_down_frees_a_released_lease_only_after_the_mclt_8_4_1() {
    // RFC 8156 §8.4.1 / §7.2 (4): in PARTNER-DOWN no partner acks a RELEASED lease; it may go
    // to another client once the MCLT has passed (docs/failover.md D29).
    let mut s = secondary(StateName::PartnerDown);
    s.engine.reclaim(s.now, &mut s.store, 1000); // PARTNER-DOWN as the engine sees it
    s.now = s.now.wrapping_add(500);
    let a = client_duid(20);
    let with_sid = |t: T, duid: &[u8], na: &[std::net::Ipv6Addr]| {
        msg(
            t,
            0x99,
            &[client_id(duid), opt(2, SECONDARY_DUID), ia_na(1, na)],
        )
    };
    let r = s.reply(&with_sid(T::REQUEST, &a, &[]));
    let x = ia_nas(&r)[0].leases[0].0;
    assert_eq!(u128::from(x) & 1, 0, "the secondary's own (even) address");
    s.reply(&with_sid(T::RELEASE, &a, &[x]));
    assert_eq!(
        s.store.get(LeaseKind::Address, x).unwrap().status,
        BindingStatus::RELEASED
    );
    // The wait ends MCLT after the latest of the binding's times, here the partner lifetime
    // recorded at the grant (§4.2.2.1 "the later of ... the partner-lifetime (if any) ...").
    let b = s.store.get(LeaseKind::Address, x).unwrap();
    let end = [
        b.partner_lifetime,
        b.acked_partner_lifetime,
        b.expiration_time,
        b.start_time_of_state,
    ]
    .into_iter()
    .fold(FailoverTime(0), |a, t| if t.0 > a.0 { t } else { a })
    .wrapping_add(MCLT);
    assert!(end.cmp_wrapping(s.now.wrapping_add(MCLT)).is_gt());
    // Before it: still RELEASED, and another client does not get it.
    s.now = FailoverTime(end.0 - 5);
    let rep = s.engine.reclaim(s.now, &mut s.store, 1000);
    assert_eq!(rep.freed, 0);
    let r = s.reply(&with_sid(T::REQUEST, &client_duid(21), &[x]));
    assert!(ia_nas(&r)[0].leases.iter().all(|l| l.0 != x));
    // After it: FREE-BACKUP (an even address is the secondary's, §7.2 (6)), reported for the
    // partner, and another client may have it.
    s.now = s.now.wrapping_add(10);
    let rep = s.engine.reclaim(s.now, &mut s.store, 1000);
    assert_eq!(rep.freed, 1);
    let b = s.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(b.status, BindingStatus::FREE_BACKUP);
    assert!(s.engine.changes().iter().any(|c| c.binding.addr == x));
    let r = s.reply(&with_sid(T::REQUEST, &client_duid(22), &[x]));
    assert_eq!(ia_nas(&r)[0].leases[0].0, x);
    // Outside PARTNER-DOWN the wait does not apply: only the partner's ack frees.
    let mut n = secondary(StateName::CommunicationsInterrupted);
    let r = n.reply(&with_sid(T::REQUEST, &a, &[]));
    let y = ia_nas(&r)[0].leases[0].0;
    n.reply(&with_sid(T::RELEASE, &a, &[y]));
    n.now = n.now.wrapping_add(10 * MCLT);
    assert_eq!(n.engine.reclaim(n.now, &mut n.store, 1000).freed, 0);
    assert_eq!(
        n.store.get(LeaseKind::Address, y).unwrap().status,
        BindingStatus::RELEASED
    );
}

#[test]
fn the_primary_gives_the_secondary_its_share_of_prefixes_and_takes_surplus_back_4_2_2() {
    // RFC 8156 §4.2.2: all delegable prefixes start with the primary, which hands a share to
    // the secondary as FREE-BACKUP (bare OPTION_IAPREFIX BNDUPDs) and may take some back.
    let (mut p, mut s) = (primary(), secondary(StateName::PartnerDown));
    let rep = p.engine.rebalance_prefixes(p.now, 50, 8, &mut p.store);
    // Three PD pools in the test configuration, 8 each (the cap; 50 % is far more).
    assert_eq!(rep.given, 24);
    let given: Vec<_> = p.engine.changes().iter().map(|c| c.binding).collect();
    assert!(
        given
            .iter()
            .all(|b| b.status == BindingStatus::FREE_BACKUP && b.duid.is_empty())
    );
    // Within the hysteresis nothing moves.
    assert_eq!(
        p.engine.rebalance_prefixes(p.now, 50, 8, &mut p.store),
        RebalanceReport {
            visited: 24,
            ..RebalanceReport::default()
        }
    );
    // The secondary stores them (bare prefixes) and, in PARTNER-DOWN, delegates one.
    s.now = p.now;
    let verdicts = sync_these(&mut p, &mut s, SyncRole::Secondary, given.clone());
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Accept),
        "{verdicts:?}"
    );
    assert!(
        given
            .iter()
            .all(|b| !needs_update(&p.store.get(b.kind, b.addr).unwrap()))
    );
    let new = msg(
        T::REQUEST,
        0x779,
        &[
            client_id(&client_duid(30)),
            opt(2, SECONDARY_DUID),
            ia_pd(2, &[]),
        ],
    );
    let r = s.reply(&new);
    let delegated = ia_pds(&r)[0].leases[0].0;
    assert!(
        given.iter().any(|b| b.addr == delegated),
        "a FREE-BACKUP prefix"
    );
    // The primary never delegates what it gave away.
    for n in 40..60 {
        let r = p.reply(&req(T::REQUEST, &client_duid(n), true));
        for l in ia_pds(&r)[0].leases.iter() {
            assert!(
                given.iter().all(|b| b.addr != l.0),
                "{:?} was given away",
                l.0
            );
        }
    }
    // Taking back: with a cap of 2 the surplus becomes FREE again (§7.2 (7)); the secondary
    // accepts it except for the prefix it delegated, which it rejects (§4.2.2; Figure 4
    // time(1): ACTIVE and not expired).
    let rep = p.engine.rebalance_prefixes(p.now, 50, 2, &mut p.store);
    assert_eq!(rep.taken_back, 18);
    let back: Vec<_> = p.engine.changes().iter().map(|c| c.binding).collect();
    let verdicts = sync_these(&mut p, &mut s, SyncRole::Secondary, back.clone());
    for (b, v) in back.iter().zip(&verdicts) {
        if b.addr == delegated {
            assert_eq!(
                *v,
                Verdict::Reject(StatusCode::OUTDATED_BINDING_INFORMATION)
            );
        } else {
            assert_eq!(*v, Verdict::Accept);
            assert_eq!(
                s.store.get(b.kind, b.addr).unwrap().status,
                BindingStatus::FREE
            );
        }
    }
}

#[test]
fn an_expired_lease_of_the_partners_share_does_not_go_back_to_its_client_here_d44() {
    // What the binding sync simulator found (docs/failover.md D44): the secondary's client
    // held an even address (the secondary's share, RFC 8156 §4.2.1.1); it expired, the
    // secondary told the primary (EXPIRED), the primary acked, and the secondary freed it
    // (§7.2 (4), (6): FREE-BACKUP, its own). Then, with the link down, the client rebound at
    // the primary, which gave the address back as "the client's own binding" — while the
    // secondary gave it to another client.
    let mut s = secondary(StateName::CommunicationsInterrupted);
    let mut p = primary();
    p.engine.set_policy(serving_policy(
        tandem_failover::Role::Primary,
        StateName::CommunicationsInterrupted,
        MCLT,
    ));
    let a = client_duid(30);
    let ask = |t: T, sid: Option<&[u8]>, na: &[std::net::Ipv6Addr]| {
        let mut o = vec![client_id(&a)];
        if let Some(sid) = sid {
            o.push(opt(2, sid));
        }
        o.push(ia_na(1, na));
        msg(t, 0x31, &o)
    };
    let r = s.reply(&ask(T::REQUEST, Some(SECONDARY_DUID), &[]));
    let x = ia_nas(&r)[0].leases[0].0;
    assert_eq!(u128::from(x) & 1, 0, "the secondary's (even) address");
    p.now = s.now;
    sync(&mut s, &mut p, SyncRole::Primary);
    // The lease ends; the secondary expires it, the primary acks, the secondary frees it.
    s.now = s.now.wrapping_add(10 * MCLT);
    p.now = s.now;
    s.engine.reclaim(s.now, &mut s.store, 1000);
    sync(&mut s, &mut p, SyncRole::Primary);
    assert_eq!(
        p.store.get(LeaseKind::Address, x).unwrap().status,
        BindingStatus::EXPIRED
    );
    assert_eq!(
        s.store.get(LeaseKind::Address, x).unwrap().status,
        BindingStatus::FREE_BACKUP
    );
    // The client, at the primary: neither a Rebind nor a Request naming it gets it back.
    p.now = p.now.wrapping_add(5);
    let r = p.reply(&ask(T::REBIND, None, &[x]));
    assert!(
        ia_nas(&r)[0].leases.iter().all(|l| l.0 != x || l.3 == 0),
        "{:?}",
        ia_nas(&r)
    );
    let r = p.reply(&ask(T::REQUEST, Some(SERVER_DUID), &[x]));
    let leases = &ia_nas(&r)[0].leases;
    assert!(leases.iter().all(|l| l.0 != x || l.3 == 0), "{leases:?}");
    assert!(
        leases.iter().any(|l| u128::from(l.0) & 1 == 1 && l.3 > 0),
        "a fresh address of the primary's own share instead: {leases:?}"
    );
    // Its own share is unaffected: its expired odd address goes back to it.
    let z = leases.iter().find(|l| l.3 > 0).unwrap().0;
    p.now = p.now.wrapping_add(10 * MCLT);
    p.engine.reclaim(p.now, &mut p.store, 1000);
    assert_eq!(
        p.store.get(LeaseKind::Address, z).unwrap().status,
        BindingStatus::EXPIRED
    );
    let r = p.reply(&ask(T::REQUEST, Some(SERVER_DUID), &[z]));
    assert_eq!(ia_nas(&r)[0].leases[0].0, z);
    assert!(ia_nas(&r)[0].leases[0].3 > 0);
}

#[test]
fn a_timed_status_starts_when_its_time_ran_out_not_when_reclaim_saw_it_d41() {
    // RFC 8156 §7.3 start-time-of-state: "when the binding-status ... was changed"; an ACTIVE
    // lease is EXPIRED from the end of its valid lifetime, an ABANDONED one RESET from the end
    // of its quarantine, however late housekeeping notices (docs/failover.md D41).
    let mut p = primary();
    let a = client_duid(40);
    let r = p.reply(&req(T::REQUEST, &a, true));
    let x = ia_nas(&r)[0].leases[0].0;
    let end = p
        .store
        .get(LeaseKind::Address, x)
        .unwrap()
        .state_expiration_time;
    p.now = end.wrapping_add(300);
    p.engine.reclaim(p.now, &mut p.store, 1000);
    let b = p.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(b.status, BindingStatus::EXPIRED);
    assert_eq!(b.start_time_of_state, end);
    // Declined (after getting it back), and reset long after its quarantine.
    let r = p.reply(&req(T::REQUEST, &a, true));
    assert_eq!(ia_nas(&r)[0].leases[0].0, x);
    p.reply(&msg(
        T::DECLINE,
        0x41,
        &[client_id(&a), server_id(), ia_na(1, &[x])],
    ));
    let q = p.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(q.status, BindingStatus::ABANDONED);
    p.now = q.state_expiration_time.wrapping_add(1000);
    p.engine.reclaim(p.now, &mut p.store, 1000);
    let q2 = p.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(q2.status, BindingStatus::RESET);
    assert_eq!(q2.start_time_of_state, q.state_expiration_time);
}

#[test]
fn an_ack_frees_a_lease_only_after_the_partner_lifetime_we_acked_plus_the_mclt_d46() {
    // What the binding sync simulator found (docs/failover.md D46): the primary renewed a
    // client during a partition with a lifetime up to the partner lifetime the secondary had
    // acked plus the MCLT (RFC 8156 §4.4), then lost its disk. The client's release, taken by
    // the secondary, went to the recovering primary (UPDREQALL), which acks anything — and the
    // secondary freed the lease on that ack while the primary's client could still hold it.
    let mut p = primary();
    let mut s = secondary(StateName::CommunicationsInterrupted);
    let c = client_duid(50);
    let r = p.reply(&req(T::REQUEST, &c, true));
    let x = ia_nas(&r)[0].leases[0].0;
    s.now = p.now;
    sync(&mut p, &mut s, SyncRole::Secondary);
    let et = s.store.get(LeaseKind::Address, x).unwrap().expiration_time;
    assert!(et.0 != 0, "the secondary acked a partner lifetime");
    // The client releases at the secondary.
    s.now = s.now.wrapping_add(30);
    s.reply(&msg(
        T::RELEASE,
        0x51,
        &[
            client_id(&c),
            opt(2, SECONDARY_DUID),
            ia_na(1, &[x]),
            ia_pd(2, &[]),
        ],
    ));
    assert_eq!(
        s.store.get(LeaseKind::Address, x).unwrap().status,
        BindingStatus::RELEASED
    );
    // A primary that lost its storage acks it.
    let mut amnesiac = primary();
    amnesiac.now = s.now;
    assert_eq!(
        sync(&mut s, &mut amnesiac, SyncRole::Primary),
        [Verdict::Accept]
    );
    let b = s.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(b.status, BindingStatus::RELEASED, "not freed on that ack");
    assert!(!needs_update(&b), "but acknowledged");
    // Reclaim frees it once the partner lifetime plus the MCLT is over, and tells the partner.
    s.now = FailoverTime(et.0 + MCLT - 2);
    assert_eq!(s.engine.reclaim(s.now, &mut s.store, 1000).freed, 0);
    s.now = FailoverTime(et.0 + MCLT + 2);
    assert_eq!(s.engine.reclaim(s.now, &mut s.store, 1000).freed, 1);
    let b = s.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(
        b.status,
        BindingStatus::FREE,
        "an odd address is the primary's, §7.2 (5)"
    );
    assert!(needs_update(&b));
}

#[test]
fn a_server_that_lost_its_storage_waits_for_the_partner_lifetime_it_had_acked_d46() {
    // The other half of D46, found by the long simulator run: the primary renewed its client
    // during a partition (up to the partner lifetime the secondary had acked plus the MCLT)
    // and lost its disk. Recovering, it learns the lease from the secondary's older binding —
    // with that partner lifetime as OPTION_F_EXPIRATION_TIME (Figure 5: our partner-lifetime) —
    // expires it at the older end, and the secondary acks the EXPIRED: freeing it then gave it
    // to another client while the renewed client held it.
    let mut p = primary();
    let mut s = secondary(StateName::Normal);
    let c = client_duid(60);
    let r = p.reply(&req(T::REQUEST, &c, true));
    let x = ia_nas(&r)[0].leases[0].0;
    s.now = p.now;
    sync(&mut p, &mut s, SyncRole::Secondary);
    let theirs = s.store.get(LeaseKind::Address, x).unwrap();
    let pl = theirs.expiration_time;
    // The primary loses its disk; the secondary's binding reaches the new one (UPDREQALL).
    let mut amnesiac = primary();
    amnesiac.now = s.now;
    assert_eq!(
        sync_these(&mut s, &mut amnesiac, SyncRole::Primary, vec![theirs]),
        [Verdict::Accept]
    );
    assert_eq!(
        amnesiac
            .store
            .get(LeaseKind::Address, x)
            .unwrap()
            .partner_lifetime,
        pl
    );
    // Past the end the secondary knew of (and its MCLT): expired, sent, acked — but not free.
    amnesiac.now = theirs.state_expiration_time.wrapping_add(MCLT + 10);
    assert!(pl.cmp_wrapping(amnesiac.now).is_gt());
    s.now = amnesiac.now;
    amnesiac
        .engine
        .reclaim(amnesiac.now, &mut amnesiac.store, 1000);
    assert_eq!(
        sync(&mut amnesiac, &mut s, SyncRole::Secondary),
        [Verdict::Accept]
    );
    let b = amnesiac.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(b.status, BindingStatus::EXPIRED);
    assert!(!needs_update(&b));
    let r = amnesiac.reply(&req(T::REQUEST, &client_duid(61), true));
    assert!(ia_nas(&r)[0].leases.iter().all(|l| l.0 != x));
    // Free once that partner lifetime plus the MCLT is over.
    amnesiac.now = FailoverTime(pl.0 + MCLT + 2);
    assert_eq!(
        amnesiac
            .engine
            .reclaim(amnesiac.now, &mut amnesiac.store, 1000)
            .freed,
        1
    );
    assert_eq!(
        amnesiac.store.get(LeaseKind::Address, x).unwrap().status,
        BindingStatus::FREE
    );
}

#[test]
fn a_shorter_renewal_never_shortens_the_record_of_the_lease_d48() {
    // What the long simulator run found (docs/failover.md D48): the secondary gave a client a
    // full lifetime in PARTNER-DOWN (no MCLT cap, §8.4.1); later, in RESOLUTION-INTERRUPTED, it
    // renewed the lease capped by the MCLT and recorded the shorter end — but the client took
    // the other server's Reply and kept the longer lease, which the record no longer covered.
    let mut s = secondary(StateName::PartnerDown);
    let c = client_duid(70);
    let with_sid = |t: T| {
        msg(
            t,
            0x71,
            &[client_id(&c), opt(2, SECONDARY_DUID), ia_na(1, &[])],
        )
    };
    let r = s.reply(&with_sid(T::REQUEST));
    let (x, _, _, valid) = ia_nas(&r)[0].leases[0];
    assert!(valid > MCLT, "PARTNER-DOWN: the full lifetime");
    let end = s
        .store
        .get(LeaseKind::Address, x)
        .unwrap()
        .state_expiration_time;
    s.engine.set_policy(serving_policy(
        tandem_failover::Role::Secondary,
        StateName::ResolutionInterrupted,
        MCLT,
    ));
    s.now = s.now.wrapping_add(10);
    let r = s.reply(&msg(
        T::RENEW,
        0x72,
        &[client_id(&c), opt(2, SECONDARY_DUID), ia_na(1, &[x])],
    ));
    let renewed = ia_nas(&r)[0].leases[0];
    assert_eq!(renewed.0, x);
    assert!(renewed.3 <= MCLT, "§4.4: capped");
    let b = s.store.get(LeaseKind::Address, x).unwrap();
    assert_eq!(
        b.state_expiration_time, end,
        "the earlier, longer end is kept"
    );
    assert_eq!(b.valid, renewed.3, "what the Reply said is recorded");
}
