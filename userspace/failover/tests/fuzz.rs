//! Hostile input: arbitrary frames, mutated valid messages and arbitrary times into
//! `handle_message`, in every phase, for both roles. Nothing may panic, and afterwards the
//! endpoint must still connect to an honest partner and reach communications OK.

mod common;

use common::{COMMUNICATED, NAME, at, config, frame, params, state_msg};
use proptest::prelude::*;
use tandem_failover::{Endpoint, Event, Now, Persisted, Role, StateName, Transmit};
use tandem_wire::dhcp::{StatusCode, StatusCodeOption};
use tandem_wire::failover::{Connectreply, Failover, FailoverTime};

/// Valid messages of every type, as mutation seeds.
fn seeds(wall: FailoverTime) -> Vec<Vec<u8>> {
    let mut v = vec![
        frame(&Failover::Connect(params(60, Some(NAME))), 1, wall),
        frame(&Failover::Connect(params(60, None)), 1, wall),
        frame(
            &Failover::Connectreply(Connectreply::Accept(params(60, None))),
            1,
            wall,
        ),
        frame(
            &Failover::Connectreply(Connectreply::Reject(StatusCodeOption::new(
                StatusCode::NOT_SUPPORTED,
                "no",
            ))),
            1,
            wall,
        ),
        frame(&Failover::Contact, 2, wall),
        frame(&Failover::Updreq, 3, wall),
        frame(&Failover::Updreqall, 3, wall),
        frame(&Failover::Upddone, 3, wall),
        frame(&Failover::Poolreq, 4, wall),
        frame(&Failover::Poolresp, 4, wall),
        frame(&Failover::Disconnect(None), 5, wall),
        frame(&Failover::StartTls, 6, wall),
    ];
    for s in StateName::ALL {
        if s != StateName::Startup {
            v.push(frame(&state_msg(s, COMMUNICATED, wall), 7, wall));
            v.push(frame(&state_msg(s, common::STARTUP, wall), 7, wall));
        }
    }
    v
}

#[derive(Clone, Debug)]
enum Op {
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Seed `i`, with its sent-time set to now, then `flips` (offset, xor) applied and cut to
    /// `cut` bytes if shorter.
    Mutated {
        seed: usize,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
    },
    Advance(u32),
    Connected,
    Closed,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(Op::Bytes),
        6 => (0usize..40, proptest::collection::vec((0usize..64, any::<u8>()), 0..4), proptest::option::of(0usize..64))
            .prop_map(|(seed, flips, cut)| Op::Mutated { seed, flips, cut }),
        3 => (0u32..40_000).prop_map(Op::Advance),
        1 => Just(Op::Connected),
        1 => Just(Op::Closed),
    ]
}

/// Persist at once, drop what is sent.
fn drain(ep: &mut Endpoint) {
    loop {
        if ep.poll_persist().is_some() {
            ep.handle_persisted();
            continue;
        }
        if ep.poll_transmit().is_none() {
            break;
        }
    }
    while ep.poll_event().is_some() {}
}

fn run(ep: &mut Endpoint, ops: &[Op]) -> u64 {
    let mut t = 0u64;
    for op in ops {
        let now = at(t);
        match op {
            Op::Bytes(b) => ep.handle_message(now, b),
            Op::Mutated { seed, flips, cut } => {
                let all = seeds(now.wall);
                let mut b = all[seed % all.len()].clone();
                for (off, x) in flips {
                    if let Some(byte) = b.get_mut(*off) {
                        *byte ^= x;
                    }
                }
                if let Some(c) = cut {
                    b.truncate(*c);
                }
                ep.handle_message(now, &b);
            }
            Op::Advance(ms) => {
                t += u64::from(*ms);
                ep.handle_timeout(at(t));
                drain(ep);
                // Every timer due was handled: none is left in the past (no stall).
                let next = ep.poll_timeout();
                assert!(
                    next.is_none_or(|d| d > t),
                    "timer {next:?} still due at {t}"
                );
            }
            Op::Connected => ep.handle_connected(now),
            Op::Closed => ep.handle_closed(now),
        }
        drain(ep);
    }
    t
}

/// Connects `ep` to an honest partner at time `t` and shuttles frames until both have
/// communications OK; `false` if that does not happen.
fn handshake_with_honest_partner(ep: &mut Endpoint, t: u64) -> bool {
    let role = ep.config().role;
    let partner_role = match role {
        Role::Primary => Role::Secondary,
        Role::Secondary => Role::Primary,
    };
    let mut partner = Endpoint::new(config(partner_role), None, at(t)).expect("config");
    let now = at(t + 1);
    ep.handle_closed(now);
    drain(ep);
    let (mut a, mut b): (&mut Endpoint, &mut Endpoint) = (ep, &mut partner);
    // The secondary accepts first, then the primary connects.
    if role == Role::Primary {
        b.handle_connected(now);
        a.handle_connected(now);
    } else {
        a.handle_connected(now);
        b.handle_connected(now);
    }
    for _ in 0..50 {
        for _ in 0..2 {
            pump(a, b, now);
            std::mem::swap(&mut a, &mut b);
        }
        if a.communications_ok() && b.communications_ok() {
            return true;
        }
    }
    false
}

/// Moves everything `from` sends into `to`.
fn pump(from: &mut Endpoint, to: &mut Endpoint, now: Now) {
    loop {
        if from.poll_persist().is_some() {
            from.handle_persisted();
            continue;
        }
        match from.poll_transmit() {
            Some(Transmit::Frame(f)) => to.handle_message(now, &f[2..]),
            Some(Transmit::Close { .. }) => to.handle_closed(now),
            None => break,
        }
    }
    while let Some(e) = from.poll_event() {
        if let Event::UpdateRequested { .. } = e {
            from.update_stream_complete(now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic_and_the_endpoint_stays_usable(
        primary in any::<bool>(),
        persisted in proptest::option::of(0usize..10),
        auto_partner_down in proptest::option::of(1u32..200),
        first_start_partner_down in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let role = if primary { Role::Primary } else { Role::Secondary };
        let mut cfg = config(role);
        cfg.auto_partner_down = auto_partner_down;
        cfg.first_start_partner_down = first_start_partner_down;
        let record = persisted.map(|i| {
            let state = StateName::ALL[i];
            common::record(if state == StateName::Startup { StateName::Recover } else { state }, 5)
        });
        let mut ep = Endpoint::new(cfg, record, at(0)).expect("config");
        drain(&mut ep);
        // Start connected most of the time so the phases past CONNECT get exercised.
        ep.handle_connected(at(0));
        drain(&mut ep);
        let t = run(&mut ep, &ops);
        // The status snapshot is always available, and the policy matches the state.
        let st = ep.status();
        prop_assert_eq!(
            ep.policy(),
            tandem_failover::machine::serving_policy(role, st.state, ep.mclt())
        );
        prop_assert!(handshake_with_honest_partner(&mut ep, t), "no longer connects: {:?}", ep.status());
    }

    #[test]
    fn persisted_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(p) = Persisted::from_bytes(&bytes) {
            prop_assert_eq!(Persisted::from_bytes(&p.to_bytes()), Ok(p));
            let ep = Endpoint::new(config(Role::Secondary), Some(p), at(0));
            prop_assert!(ep.is_ok());
        }
    }
}

#[test]
fn every_message_type_in_every_phase_never_panics() {
    let wall = at(0).wall;
    let mut bodies: Vec<Vec<u8>> = seeds(wall);
    for t in 0..=255u8 {
        bodies.push(vec![t, 0, 0, 9, 0, 0, 0, 0]);
        bodies.push(vec![t, 0, 0, 9]);
        bodies.push(vec![t]);
    }
    for role in [Role::Primary, Role::Secondary] {
        // Phase 0: awaiting CONNECT / CONNECTREPLY; 1: awaiting STATE; 2: established.
        for phase in 0..3 {
            for body in &bodies {
                let mut ep = Endpoint::new(config(role), None, at(0)).expect("config");
                ep.handle_connected(at(0));
                drain(&mut ep);
                if phase >= 1 {
                    match role {
                        Role::Primary => {
                            // Our CONNECT was xid 1 (the first transaction-id).
                            let reply =
                                Failover::Connectreply(Connectreply::Accept(params(60, None)));
                            ep.handle_message(at(0), &frame(&reply, 1, wall));
                        }
                        Role::Secondary => {
                            let c = Failover::Connect(params(60, Some(NAME)));
                            ep.handle_message(at(0), &frame(&c, 1, wall));
                        }
                    }
                    drain(&mut ep);
                }
                if phase >= 2 {
                    ep.handle_message(
                        at(0),
                        &frame(&state_msg(StateName::Normal, COMMUNICATED, wall), 2, wall),
                    );
                    drain(&mut ep);
                    assert!(ep.communications_ok(), "{role:?} set up");
                }
                ep.handle_message(at(0), body);
                drain(&mut ep);
                ep.handle_timeout(at(100_000));
                drain(&mut ep);
                assert!(
                    handshake_with_honest_partner(&mut ep, 100_000),
                    "{role:?} phase {phase} {body:?}"
                );
            }
        }
    }
}
