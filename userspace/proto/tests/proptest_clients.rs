//! Random sequences of client messages from ~20 clients against one small pool: no lease is
//! ever held by two clients at once, and every answer parses.

mod common;

use std::collections::HashMap;
use std::net::Ipv6Addr;

use common::*;
use proptest::prelude::*;
use tandem_lease::{BindingStatus, LeaseKind, LeaseStore, MemStore};
use tandem_proto::Outcome;
use tandem_wire::dhcp::MessageType as T;
use tandem_wire::dhcp::message::Message;

#[derive(Clone, Debug)]
enum Op {
    Solicit(u8, bool),
    Request(u8, Option<u8>),
    Renew(u8),
    Rebind(u8),
    Release(u8),
    Decline(u8),
    Confirm(u8),
    Advance(u32),
    Garbage(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0u8..20;
    prop_oneof![
        (c.clone(), any::<bool>()).prop_map(|(c, pd)| Op::Solicit(c, pd)),
        (c.clone(), proptest::option::of(0u8..8)).prop_map(|(c, h)| Op::Request(c, h)),
        c.clone().prop_map(Op::Renew),
        c.clone().prop_map(Op::Rebind),
        c.clone().prop_map(Op::Release),
        c.clone().prop_map(Op::Decline),
        c.prop_map(Op::Confirm),
        (0u32..9000).prop_map(Op::Advance),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
    ]
}

fn duid_of(c: u8) -> Vec<u8> {
    if c == 0 {
        RESERVED_DUID.to_vec()
    } else {
        client_duid(c)
    }
}

/// Checks that a reply (possibly none) parses down to the leases.
fn check_parses(bytes: &[u8]) {
    let m = Message::parse(bytes).expect("valid test data");
    assert!(matches!(m.msg_type, T::ADVERTISE | T::REPLY));
    assert_eq!(
        m.server_id()
            .expect("valid test data")
            .expect("valid test data")
            .as_bytes(),
        SERVER_DUID
    );
    for ia in m.ia_nas() {
        for x in ia.expect("valid test data").addresses() {
            let x = x.expect("valid test data");
            assert!(x.preferred <= x.valid);
        }
    }
    for ia in m.ia_pds() {
        for x in ia.expect("valid test data").prefixes() {
            x.expect("valid test data");
        }
    }
    m.status().expect("valid test data");
}

struct Model {
    /// Lease → (client, end of valid lifetime) for leases a Reply granted.
    granted: HashMap<(LeaseKind, Ipv6Addr), (u8, u32)>,
}

impl Model {
    fn held_by(&self, c: u8, kind: LeaseKind, now: u32) -> Vec<Ipv6Addr> {
        self.granted
            .iter()
            .filter(|(k, v)| k.0 == kind && v.0 == c && v.1 > now)
            .map(|(k, _)| k.1)
            .collect()
    }

    fn apply_reply(&mut self, c: u8, now: u32, bytes: &[u8]) {
        for ia in ia_nas(bytes) {
            self.apply(c, now, LeaseKind::Address, &ia);
        }
        for ia in ia_pds(bytes) {
            self.apply(c, now, LeaseKind::Prefix, &ia);
        }
    }

    fn apply(&mut self, c: u8, now: u32, kind: LeaseKind, ia: &IaView) {
        for (addr, _, _, valid) in &ia.leases {
            let key = (kind, *addr);
            if *valid == 0 {
                if self.granted.get(&key).is_some_and(|g| g.0 == c) {
                    self.granted.remove(&key);
                }
                continue;
            }
            if let Some((other, until)) = self.granted.get(&key) {
                assert!(
                    *other == c || *until <= now,
                    "{addr} granted to client {c} while client {other} holds it until {until} (now {now})"
                );
            }
            self.granted.insert(key, (c, now.wrapping_add(*valid)));
        }
    }
}

fn run(ops: &[Op]) {
    let mut h = Harness::new();
    let mut model = Model {
        granted: HashMap::new(),
    };
    for op in ops {
        let now = h.now.0;
        let (c, payload, commits) = match op {
            Op::Advance(s) => {
                h.now = h.now.wrapping_add(*s);
                h.engine.reclaim(h.now, &mut h.store, 8);
                continue;
            }
            Op::Garbage(bytes) => {
                let (o, out) = h.send_on("eth0", bytes);
                if matches!(o, Outcome::Reply { .. }) {
                    check_parses(&out);
                }
                continue;
            }
            Op::Solicit(c, pd) => {
                let mut o = vec![client_id(&duid_of(*c)), ia_na(1, &[])];
                if *pd {
                    o.push(ia_pd(2, &[]));
                }
                (*c, msg(T::SOLICIT, 1, &o), false)
            }
            Op::Request(c, hint) => {
                let hints: Vec<Ipv6Addr> = hint
                    .map(|i| Ipv6Addr::from(u128::from(a("2001:db8:1::100")) + u128::from(i)))
                    .into_iter()
                    .collect();
                let o = vec![
                    client_id(&duid_of(*c)),
                    server_id(),
                    ia_na(1, &hints),
                    ia_pd(2, &[]),
                ];
                (*c, msg(T::REQUEST, 1, &o), true)
            }
            Op::Renew(c) | Op::Rebind(c) | Op::Release(c) | Op::Decline(c) | Op::Confirm(c) => {
                let addrs = model.held_by(*c, LeaseKind::Address, now);
                let prefixes: Vec<_> = model
                    .held_by(*c, LeaseKind::Prefix, now)
                    .into_iter()
                    .map(|p| (p, 56))
                    .collect();
                let mut o = vec![client_id(&duid_of(*c)), ia_na(1, &addrs)];
                let t = match op {
                    Op::Renew(_) => T::RENEW,
                    Op::Rebind(_) => T::REBIND,
                    Op::Release(_) => T::RELEASE,
                    Op::Decline(_) => T::DECLINE,
                    _ => T::CONFIRM,
                };
                if t != T::CONFIRM {
                    o.push(ia_pd(2, &prefixes));
                }
                if matches!(t, T::RENEW | T::RELEASE | T::DECLINE) {
                    o.push(server_id());
                }
                if matches!(t, T::RELEASE | T::DECLINE) {
                    for ad in &addrs {
                        model.granted.remove(&(LeaseKind::Address, *ad));
                    }
                }
                if t == T::RELEASE {
                    for (p, _) in &prefixes {
                        model.granted.remove(&(LeaseKind::Prefix, *p));
                    }
                }
                (*c, msg(t, 1, &o), matches!(t, T::RENEW | T::REBIND))
            }
        };
        let (o, out) = h.send_on("eth0", &payload);
        if let Outcome::Reply { .. } = o {
            check_parses(&out);
            let m = Message::parse(&out).expect("valid test data");
            if commits || (m.msg_type == T::REPLY && m.rapid_commit()) {
                model.apply_reply(c, now, &out);
            }
        }
        // Every lease the model says is held is ACTIVE in the store for that client.
        for ((kind, addr), (holder, until)) in &model.granted {
            if *until > h.now.0 {
                let b = h.store.get(*kind, *addr).expect("valid test data");
                assert_eq!(b.status, BindingStatus::ACTIVE, "{addr}");
                assert_eq!(b.duid.as_bytes(), duid_of(*holder).as_slice(), "{addr}");
            }
        }
        // The reserved address only ever goes to its client.
        if let Some(b) = h.store.get(LeaseKind::Address, a("2001:db8:1::101")) {
            assert_eq!(b.duid.as_bytes(), RESERVED_DUID);
        }
    }
    let _: &MemStore = &h.store;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn clients_never_share_a_lease_and_replies_parse(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}
