//! Fuzz target: RFC 8156 binding updates (§7.4–§7.7), `tandem_failover::bndupd` and
//! `tandem_lease::sync`.
//!
//! Input: one byte choosing the clock, then the body of one message (the bytes inside a
//! RFC 5460 §5.1 frame), read both as a BNDUPD and as a BNDREPLY.
//!
//! * As a BNDUPD: a whole refusal must be answerable (its BNDREPLY emits into exactly
//!   `buffer_len()` bytes and decodes as a whole rejection with the same code and
//!   transaction-id). A decoded update is run through `decide` / `apply` three times (no
//!   bindings held, then the bindings the first pass stored, then bindings of another status
//!   and time), checking what `apply` stores and that every stored binding encodes as a BNDUPD
//!   that decodes back to it; the BNDREPLY for the verdicts must be no longer than the BNDUPD
//!   and decode to exactly those verdicts, lease by lease.
//! * As a BNDREPLY: every accepted lease is acked against a binding made to match it, and
//!   `ack` must keep its contract.
#![no_main]

use tandem_failover::bndupd::{
    AckResult, BndreplyMessage, BndupdMessage, Reject, Verdict, decode_bndreply, decode_bndupd,
};
use tandem_lease::sync::{self, Decision, LeaseUpdate, Role};
use tandem_lease::{Binding, BindingFlags, BindingStatus, FailoverTime};
use tandem_wire::failover::Failover;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&clock, body)) = data.split_first() else {
        return;
    };
    let now = FailoverTime(0x2fce_5480u32.wrapping_add(u32::from(clock).wrapping_mul(1009)));
    as_bndupd(body, now, clock);
    as_bndreply(body, now);
});

fn emit_reply(m: &BndreplyMessage<'_>, now: FailoverTime) -> Vec<u8> {
    let len = m.buffer_len();
    let mut out = vec![0xa5; len];
    assert_eq!(m.emit(now, &mut out), Ok(len));
    assert!(Failover::parse_bytes(&out).is_ok(), "our BNDREPLY parses");
    out
}

fn as_bndupd(body: &[u8], now: FailoverTime, clock: u8) {
    let update = match decode_bndupd(body) {
        Err(Reject::Malformed(_)) => return,
        Err(Reject::Whole(r)) => {
            let reply = emit_reply(&BndreplyMessage::refusal(&r), now);
            let decoded = decode_bndreply(&reply).expect("our refusal decodes");
            assert_eq!(decoded.transaction_id, r.transaction_id);
            assert_eq!(decoded.whole, Some(r.code));
            return;
        }
        Ok(u) => u,
    };
    let mut store: Vec<Binding> = Vec::new();
    for pass in 0..3 {
        if pass == 2 {
            // Bindings of another status and time than the first pass stored.
            for b in &mut store {
                b.status = BindingStatus(clock % 8 + 1);
                b.start_time_of_state = b.start_time_of_state.wrapping_add(u32::from(clock) * 7);
                b.cltt = FailoverTime(u32::from(clock) << 20);
                b.duid = tandem_lease::DuidBuf::new(&[0, 3, 0, 1, clock]).expect("short DUID");
            }
        }
        for role in [Role::Primary, Role::Secondary] {
            let mut held = store.clone();
            let verdicts: Vec<Verdict> = update
                .leases()
                .map(|lease| match lease {
                    Err(refusal) => Verdict::from(refusal),
                    Ok(u) => decide_and_apply(&mut held, &u, role, now),
                })
                .collect();
            let reply = emit_reply(
                &BndreplyMessage::new(&update, &verdicts).expect("one verdict per lease"),
                now,
            );
            assert!(
                reply.len() <= body.len(),
                "a BNDREPLY is never longer than its BNDUPD"
            );
            let acks = decode_bndreply(&reply).expect("our BNDREPLY decodes");
            assert_eq!(acks.transaction_id, update.transaction_id);
            // A bare IAPREFIX is its own outermost block: its rejection is the whole one (§7.7).
            let whole = match verdicts.as_slice() {
                [Verdict::Reject(code)] if update.is_bare_prefix() => Some(*code),
                _ => None,
            };
            assert_eq!(acks.whole, whole);
            assert_eq!(acks.leases.len(), verdicts.len());
            for (ack, verdict) in acks.leases.iter().zip(&verdicts) {
                match (verdict, ack.result) {
                    (Verdict::Accept, AckResult::Accepted(echo)) => assert!(echo.status.is_some()),
                    (Verdict::Reject(code), AckResult::Rejected(got)) => assert_eq!(*code, got),
                    (v, r) => panic!("verdict {v:?} came back as {r:?}"),
                }
            }
            if pass == 0 && role == Role::Secondary {
                store = held;
            }
        }
    }
}

/// One lease through §7.5.4 and §7.5.5 against the bindings `held`.
fn decide_and_apply(
    held: &mut Vec<Binding>,
    u: &LeaseUpdate,
    role: Role,
    now: FailoverTime,
) -> Verdict {
    let at = held
        .iter()
        .position(|b| b.kind == u.kind && b.addr == u.addr);
    let ours = at.and_then(|i| held.get(i)).copied();
    let decision = sync::decide(ours.as_ref(), u, role, now);
    match decision {
        Decision::Accept { .. } => {
            let b = sync::apply(ours.as_ref(), u, 0);
            if u.status != BindingStatus::PENDING_FREE {
                assert_eq!(b.status, u.status);
            }
            assert_eq!(b.start_time_of_state, u.start_time_of_state);
            assert_eq!(
                b.state_expiration_time,
                u.state_expiration_time.unwrap_or_default()
            );
            assert_eq!(
                (b.kind, b.addr, b.prefix_len),
                (u.kind, u.addr, u.prefix_len)
            );
            let was_pending = ours.is_some_and(|o| o.flags.contains(BindingFlags::UPDATE_PENDING));
            assert_eq!(b.flags.contains(BindingFlags::UPDATE_PENDING), was_pending);
            reencode(&b, now);
            match at {
                Some(i) => held[i] = b,
                None => held.push(b),
            }
        }
        Decision::Outdated { send_now, .. } => {
            let i = at.expect("outdated against a binding we hold");
            assert_eq!(
                send_now,
                !held[i].flags.contains(BindingFlags::UPDATE_PENDING)
            );
            held[i].flags.set(BindingFlags::UPDATE_PENDING, true);
        }
        Decision::AddressInUse => {
            assert_eq!(role, Role::Primary);
            assert_eq!(ours.map(|o| o.status), Some(BindingStatus::ACTIVE));
        }
    }
    Verdict::from(decision)
}

/// A binding stored from an update goes back out as a BNDUPD that decodes to it.
fn reencode(b: &Binding, now: FailoverTime) {
    let Ok(m) = BndupdMessage::new(b, now) else {
        return;
    };
    let len = m.buffer_len();
    let mut out = vec![0xa5; len];
    let Ok(n) = m.emit(1, &mut out) else {
        // Only a message over 65535 octets could fail, and one lease is far from it.
        panic!("a stored binding must encode");
    };
    assert_eq!(n, len);
    let d = decode_bndupd(&out).expect("our BNDUPD decodes");
    let mut leases = d.leases();
    let u = leases
        .next()
        .expect("one lease")
        .expect("our lease is usable");
    assert!(leases.next().is_none());
    assert_eq!(
        (u.kind, u.addr, u.prefix_len),
        (b.kind, b.addr, b.prefix_len)
    );
    assert_eq!(u.status, b.status);
    assert_eq!(u.start_time_of_state, b.start_time_of_state);
}

fn as_bndreply(body: &[u8], now: FailoverTime) {
    let Ok(reply) = decode_bndreply(body) else {
        return;
    };
    for ack in &reply.leases {
        let start = now.wrapping_add(3);
        let Some(info) = ack.ack_info(start) else {
            continue;
        };
        // The binding the BNDUPD was about, as we would hold it.
        let mut b = Binding::free(ack.kind, ack.addr, ack.prefix_len, 0);
        b.status = info.status;
        b.start_time_of_state = start;
        b.state_expiration_time = info.state_expiration_time.unwrap_or_default();
        b.partner_lifetime = info.partner_lifetime_sent.unwrap_or_default();
        if let Some((duid, iaid)) = ack.client {
            b.duid = duid;
            b.iaid = iaid;
        }
        b.flags.set(BindingFlags::UPDATE_PENDING, true);
        let before = b;
        let current = sync::ack(&mut b, &info);
        if let Some(pls) = info.partner_lifetime_sent {
            assert_eq!(b.acked_partner_lifetime, pls);
        }
        assert_eq!(!b.flags.contains(BindingFlags::UPDATE_PENDING), current);
        if current {
            assert_eq!(b.partner_lifetime, FailoverTime(0));
        } else {
            assert_eq!(b.partner_lifetime, before.partner_lifetime);
        }
    }
}
