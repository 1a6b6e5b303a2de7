//! The connection protocol of RFC 8156 §6 (CONNECT / CONNECTREPLY, STATE, CONTACT,
//! DISCONNECT), §5.4 transaction-ids, §7.1 skew, §8.3 STARTUP, persistence before STATE, and
//! the binding-sync message flow (the endpoint frames, numbers and windows; the driver stores). A scripted partner on the other end.

mod common;

use common::{
    COMMUNICATED, NAME, One, STARTUP, Sent, WALL0, config, frame, params, record, state_msg,
    status_of_disconnect,
};
use tandem_failover::{
    BindingInput, Direction, DownReason, Endpoint, Event, MisbehaviorKind, Operator, Persisted,
    Phase, Role, StateName, Transmit, UpdateNotSent, connect_relationship_name,
};
use tandem_lease::Responsiveness;
use tandem_wire::dhcp::{MessageType, StatusCode, StatusCodeOption};
use tandem_wire::failover::option::{ConnectFlags, ProtocolVersion, ServerFlags};
use tandem_wire::failover::{Connectreply, Failover, FailoverTime};

use StateName::*;

fn misbehaved(one: &One, kind: MisbehaviorKind) -> u64 {
    one.ep.counters().misbehaved(kind)
}

/// A secondary that accepted CONNECT and got the primary's STATE (in `partner`).
fn secondary_up(partner: StateName) -> One {
    let mut one = One::new(
        config(Role::Secondary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    one.handshake_with(partner, COMMUNICATED);
    one
}

// ------------------------------------------------------------------------------------------
// CONNECT / CONNECTREPLY (§6.1.1–§6.1.3).

#[test]
fn primary_connect_carries_every_option_of_6_1_1() {
    let mut one = One::new(config(Role::Primary), None);
    one.ep.handle_connected(one.now());
    let t = one.ep.poll_transmit().expect("CONNECT");
    let Transmit::Frame(bytes) = t else {
        panic!("a frame")
    };
    let (msg, typed) = Failover::parse_bytes(&bytes[2..]).unwrap();
    assert_ne!(msg.transaction_id, 0);
    assert_eq!(
        msg.sent_time,
        Some(one.wall()),
        "§5.2 sent-time is our clock"
    );
    let Failover::Connect(p) = typed else {
        panic!("CONNECT, got {typed:?}")
    };
    assert_eq!(
        p.protocol_version,
        ProtocolVersion::V1_0,
        "§5.5.11 version 1.0"
    );
    assert_eq!(p.mclt.0, 60, "configured MCLT");
    assert_eq!(p.keepalive_time.0, 20, "our FO_KEEPALIVE_TIME");
    assert_eq!(p.max_unacked_bndupd.0, 64);
    assert_eq!(p.relationship_name.map(|n| n.0), Some(NAME));
    assert!(p.connect_flags.fixed_pd_length());
    assert_eq!(connect_relationship_name(&bytes[2..]), Some(Some(NAME)));
}

#[test]
fn secondary_accepts_connect_adopts_mclt_and_sends_state_6_1_2() {
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    assert!(
        one.take_sent().is_empty(),
        "the secondary waits for CONNECT"
    );
    one.recv(&Failover::Connect(params(90, Some(NAME))), 0x1234);
    let since = one.wall();
    one.recv(&state_msg(Normal, COMMUNICATED, since), 0x1235);
    let sent = one.take_sent();
    let Sent::Msg {
        msg_type,
        xid,
        mclt,
        ..
    } = &sent[0]
    else {
        panic!()
    };
    assert_eq!(*msg_type, MessageType::CONNECTREPLY);
    assert_eq!(
        *xid, 0x1234,
        "the reply carries the CONNECT's transaction-id"
    );
    assert_eq!(*mclt, Some(90), "§6.1.2 MCLT MUST equal the CONNECT's");
    assert_eq!(
        sent[1].msg_type(),
        Some(MessageType::STATE),
        "§6.1.2 then MUST send STATE"
    );
    assert_eq!(one.ep.mclt(), 90, "§6.1.2 use the primary's MCLT");
    assert_eq!(one.durable.unwrap().mclt, 90, "and remember it");
    // The adopted MCLT survives a restart (until a later CONNECT says otherwise).
    let again = Endpoint::new(config(Role::Secondary), one.durable, common::at(0)).unwrap();
    assert_eq!(again.mclt(), 90);
}

#[test]
fn secondary_accepts_connect_without_relationship_name_6_1_1() {
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    one.recv(&Failover::Connect(params(60, None)), 5);
    assert_eq!(
        one.take_sent()[0].msg_type(),
        Some(MessageType::CONNECTREPLY)
    );
    assert!(!one.closed_by_us());
}

#[test]
fn secondary_refuses_connect_with_rfc_statuses() {
    let mut variable = params(60, Some(NAME));
    variable.connect_flags = ConnectFlags(0);
    let mut v2 = params(60, Some(NAME));
    v2.protocol_version = ProtocolVersion { major: 2, minor: 0 };
    let rows: [(&str, Failover<'_>, i32, StatusCode); 5] = [
        (
            "digest gap 8: another relationship → ConfigurationConflict",
            Failover::Connect(params(60, Some("other"))),
            0,
            StatusCode::CONFIGURATION_CONFLICT,
        ),
        (
            "§6.1.2 unsupported version → NotSupported",
            Failover::Connect(v2),
            0,
            StatusCode::NOT_SUPPORTED,
        ),
        (
            "§6.1.2 sent-time more than 5 s off → ExcessiveTimeSkew",
            Failover::Connect(params(60, Some(NAME))),
            6,
            StatusCode::EXCESSIVE_TIME_SKEW,
        ),
        (
            "§1 MCLT below 30 s → ConfigurationConflict (D10)",
            Failover::Connect(params(29, Some(NAME))),
            0,
            StatusCode::CONFIGURATION_CONFLICT,
        ),
        (
            "§6.1.2 flags we cannot process → ConfigurationConflict",
            Failover::Connect(variable),
            0,
            StatusCode::CONFIGURATION_CONFLICT,
        ),
    ];
    for (rfc, msg, skew, status) in rows {
        let mut one = One::new(config(Role::Secondary), None);
        one.connected();
        one.recv_skewed(&msg, 9, skew);
        let sent = one.take_sent();
        assert_eq!(sent.len(), 2, "{rfc}: {sent:?}");
        let Sent::Msg {
            msg_type,
            xid,
            status: got,
            ..
        } = &sent[0]
        else {
            panic!()
        };
        assert_eq!(
            (*msg_type, *xid, *got),
            (MessageType::CONNECTREPLY, 9, Some(status)),
            "{rfc}"
        );
        assert_eq!(sent[1], Sent::Close, "{rfc}");
        assert!(
            matches!(one.ep.status().link, tandem_failover::LinkStatus::Down { reason: Some(DownReason::ConnectRefused(s)) } if s == status),
            "{rfc}"
        );
        assert_eq!(one.ep.counters().connects_refused, 1);
    }
    // 5 s is still "the same time" (§7.5.1).
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    one.recv_skewed(&Failover::Connect(params(60, Some(NAME))), 9, -5);
    assert!(!one.closed_by_us());
    assert_eq!(one.ep.status().skew, Some(-5), "measured skew exposed");
}

#[test]
fn primary_checks_connectreply_6_1_3() {
    let mut v2 = params(60, None);
    v2.protocol_version = ProtocolVersion { major: 2, minor: 0 };
    let mut variable = params(60, None);
    variable.connect_flags = ConnectFlags(0);
    let rows: [(&str, Connectreply<'_>, StatusCode, MisbehaviorKind); 3] = [
        (
            "§6.1.3 MCLT different → DISCONNECT",
            Connectreply::Accept(params(61, None)),
            StatusCode::CONFIGURATION_CONFLICT,
            MisbehaviorKind::Mclt,
        ),
        (
            "§6.1.3 version not supported → DISCONNECT",
            Connectreply::Accept(v2),
            StatusCode::NOT_SUPPORTED,
            MisbehaviorKind::UnsupportedVersion,
        ),
        (
            "§6.1.3 flags we cannot process → drop",
            Connectreply::Accept(variable),
            StatusCode::CONFIGURATION_CONFLICT,
            MisbehaviorKind::ConnectFlags,
        ),
    ];
    for (rfc, reply, status, kind) in rows {
        let mut one = One::new(config(Role::Primary), None);
        one.connected();
        let xid = one.take_sent()[0].xid();
        one.recv(&Failover::Connectreply(reply), xid);
        let sent = one.take_sent();
        assert_eq!(status_of_disconnect(&sent), Some(status), "{rfc}");
        assert_eq!(sent.last(), Some(&Sent::Close), "{rfc}");
        assert_eq!(misbehaved(&one, kind), 1, "{rfc}");
    }
    // A refusal: close, back off (the driver's business), reason kept.
    let mut one = One::new(config(Role::Primary), None);
    one.connected();
    let xid = one.take_sent()[0].xid();
    let reject = StatusCodeOption::new(StatusCode::EXCESSIVE_TIME_SKEW, "clock");
    one.recv(&Failover::Connectreply(Connectreply::Reject(reject)), xid);
    assert_eq!(one.take_sent(), vec![Sent::Close]);
    assert!(
        one.events
            .contains(&Event::LinkDown(DownReason::ConnectRefusedByPartner(
                StatusCode::EXCESSIVE_TIME_SKEW
            )))
    );
    // The accepting CONNECTREPLY must answer our CONNECT (§5.4).
    let mut one = One::new(config(Role::Primary), None);
    one.connected();
    let xid = one.take_sent()[0].xid();
    one.recv(
        &Failover::Connectreply(Connectreply::Accept(params(60, None))),
        xid + 1,
    );
    assert_eq!(misbehaved(&one, MisbehaviorKind::UnknownTransactionId), 1);
    // A good one: STATE next (§6.1.3 MUST).
    let mut one = One::new(config(Role::Primary), None);
    one.connected();
    let xid = one.take_sent()[0].xid();
    one.recv(
        &Failover::Connectreply(Connectreply::Accept(params(60, None))),
        xid,
    );
    assert_eq!(one.sent_types(), vec![MessageType::STATE]);
    assert_eq!(
        one.ep.status().link,
        tandem_failover::LinkStatus::Up {
            phase: Phase::AwaitState,
            since_ms: 0
        }
    );
}

// ------------------------------------------------------------------------------------------
// Refusals as the status shows them (docs/failover.md D23).

/// The text of the refusing CONNECTREPLY among `frames` (framed, as `poll_transmit` gives).
fn refusal_text_sent(frames: &[Vec<u8>]) -> Option<(StatusCode, String)> {
    frames
        .iter()
        .find_map(|f| match Failover::parse_bytes(&f[2..]).ok()?.1 {
            Failover::Connectreply(Connectreply::Reject(s)) => {
                Some((s.code, String::from_utf8_lossy(s.message).into_owned()))
            }
            _ => None,
        })
}

/// Drains `ep`'s transmits (records confirmed at once), keeping the frames.
fn frames_of(ep: &mut Endpoint) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        if ep.poll_persist().is_some() {
            ep.handle_persisted();
            continue;
        }
        match ep.poll_transmit() {
            Some(Transmit::Frame(f)) => out.push(f),
            Some(Transmit::Close { .. }) => {}
            None => return out,
        }
    }
}

#[test]
fn a_name_mismatch_refusal_says_both_names_on_both_sides_6_1_2() {
    // The secondary refuses (D10) and keeps what it sent.
    let mut s = One::new(config(Role::Secondary), None);
    s.ep.handle_connected(s.now());
    let connect = frame(&Failover::Connect(params(60, Some("dc9"))), 0x42, s.wall());
    s.ep.handle_message(s.now(), &connect);
    let (code, text) = refusal_text_sent(&frames_of(&mut s.ep)).expect("a refusal");
    assert_eq!(code, StatusCode::CONFIGURATION_CONFLICT);
    let expected = format!(
        "CONNECT names relationship \"dc9\" but this server's relationship with its peer is \
         \"{NAME}\""
    );
    assert_eq!(text, expected);
    let r = s.ep.last_refusal().expect("recorded");
    assert_eq!(
        (r.direction, r.status, r.text.as_str(), r.at),
        (
            Direction::Sent,
            StatusCode::CONFIGURATION_CONFLICT,
            expected.as_str(),
            s.wall()
        )
    );
    // The primary that gets it keeps the partner's status and text, and when.
    let mut p = One::new(config(Role::Primary), None);
    assert_eq!(p.ep.last_refusal(), None);
    p.connected();
    let xid = p.take_sent()[0].xid();
    p.mono_ms = 2_500;
    let reject = StatusCodeOption::new(StatusCode::CONFIGURATION_CONFLICT, &expected);
    p.recv(&Failover::Connectreply(Connectreply::Reject(reject)), xid);
    let r = p.ep.last_refusal().expect("recorded");
    assert_eq!(
        (r.direction, r.status, r.text.as_str(), r.at),
        (
            Direction::Received,
            StatusCode::CONFIGURATION_CONFLICT,
            expected.as_str(),
            FailoverTime(WALL0 + 2)
        )
    );
    assert_eq!(r.status_text(), "ConfigurationConflict (17)");
    assert_eq!(p.ep.counters().connects_refused_by_partner, 1);
}

#[test]
fn both_primary_the_refused_primary_shows_the_partners_text_d23() {
    // Primary A's CONNECT reaches primary B's listener; B's driver answers with the pure
    // reply; A's endpoint reads it.
    let mut a = One::new(config(Role::Primary), None);
    a.ep.handle_connected(a.now());
    let connect = frames_of(&mut a.ep).remove(0);
    let reply = tandem_failover::role_conflict_reply(&connect[2..], NAME, a.wall())
        .expect("a CONNECT gets an answer");
    a.ep.handle_message(a.now(), &reply.frame[2..]);
    a.drain();
    assert!(a.closed_by_us(), "a refusal closes (§6.1.2, D10)");
    assert!(
        a.events
            .contains(&Event::LinkDown(DownReason::ConnectRefusedByPartner(
                StatusCode::CONFIGURATION_CONFLICT
            ))),
        "{:?}",
        a.events
    );
    assert_eq!(misbehaved(&a, MisbehaviorKind::UnknownTransactionId), 0);
    let r = a.ep.last_refusal().expect("recorded");
    assert_eq!(r.direction, Direction::Received);
    assert_eq!(
        r.text,
        format!("both servers are configured as primary for relationship \"{NAME}\"")
    );
    // B's side of it: the same text, sent.
    assert_eq!(reply.refusal.direction, Direction::Sent);
    assert_eq!(reply.refusal.text, r.text);
    // A keeps trying and is refused again; the last refusal is the newest.
    a.mono_ms = 4_000;
    a.ep.handle_connected(a.now());
    let connect = frames_of(&mut a.ep).remove(0);
    let reply = tandem_failover::role_conflict_reply(&connect[2..], NAME, a.wall()).unwrap();
    a.ep.handle_message(a.now(), &reply.frame[2..]);
    a.drain();
    assert_eq!(
        a.ep.last_refusal().map(|r| r.at),
        Some(FailoverTime(WALL0 + 4))
    );
    assert_eq!(a.ep.counters().connects_refused_by_partner, 2);
}

// ------------------------------------------------------------------------------------------
// Messages in the wrong phase, hostile bytes.

#[test]
fn messages_in_the_wrong_phase_end_the_connection() {
    let since = FailoverTime(WALL0);
    let rows: Vec<(&str, Role, Vec<Failover<'static>>)> = vec![
        (
            "STATE before CONNECT",
            Role::Secondary,
            vec![state_msg(Normal, 0, since)],
        ),
        (
            "CONNECT to a primary",
            Role::Primary,
            vec![Failover::Connect(params(60, Some(NAME)))],
        ),
        (
            "CONNECTREPLY to a secondary",
            Role::Secondary,
            vec![Failover::Connectreply(Connectreply::Accept(params(
                60, None,
            )))],
        ),
        (
            "UPDREQ before CONNECT",
            Role::Secondary,
            vec![Failover::Updreq],
        ),
        (
            "a second CONNECT",
            Role::Secondary,
            vec![
                Failover::Connect(params(60, Some(NAME))),
                Failover::Connect(params(60, Some(NAME))),
            ],
        ),
        (
            "UPDREQ before the partner's STATE (§6.1: STATE is next)",
            Role::Secondary,
            vec![Failover::Connect(params(60, Some(NAME))), Failover::Updreq],
        ),
        (
            "POOLREQ to a secondary",
            Role::Secondary,
            vec![
                Failover::Connect(params(60, Some(NAME))),
                state_msg(Normal, 0, since),
                Failover::Poolreq,
            ],
        ),
        (
            "POOLRESP to a primary",
            Role::Primary,
            vec![Failover::Poolresp],
        ),
        (
            "STARTTLS after the transport is up (TLS is the driver's)",
            Role::Secondary,
            vec![Failover::StartTls],
        ),
    ];
    for (what, role, msgs) in rows {
        let mut one = One::new(config(role), None);
        one.connected();
        one.take_sent();
        for (i, m) in msgs.iter().enumerate() {
            one.recv(m, 100 + i as u32);
        }
        let sent = one.take_sent();
        assert_eq!(
            status_of_disconnect(&sent),
            Some(StatusCode::UNSPEC_FAIL),
            "{what}: {sent:?}"
        );
        assert_eq!(sent.last(), Some(&Sent::Close), "{what}");
        assert_eq!(misbehaved(&one, MisbehaviorKind::Unexpected), 1, "{what}");
        assert!(
            one.events
                .iter()
                .any(|e| matches!(e, Event::PeerMisbehaved(_))),
            "{what}"
        );
        // Stale bytes after the close are dropped and counted, not acted on.
        one.recv(&Failover::Contact, 1);
        assert!(one.take_sent().is_empty());
        assert_eq!(one.ep.counters().ignored_while_down, 1);
    }
}

#[test]
fn contact_before_state_is_tolerated() {
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
    one.recv(&Failover::Contact, 2);
    assert!(!one.closed_by_us());
}

#[test]
fn hostile_frames_are_counted_not_fatal_to_the_endpoint() {
    let mut one = secondary_up(Normal);
    one.take_sent();
    // Unknown message type (D11): dropped and counted, the connection stays.
    one.recv_bytes(&[99, 0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(one.ep.counters().unknown_message_types, 1);
    assert!(one.take_sent().is_empty());
    // Malformed: a STATE without its options.
    one.recv_bytes(&[34, 0, 0, 1, 0x31, 0x78, 0x0b, 0x80]);
    assert_eq!(misbehaved(&one, MisbehaviorKind::Malformed), 1);
    assert_eq!(one.take_sent().last(), Some(&Sent::Close));
    // Oversized.
    let mut one = secondary_up(Normal);
    let big = vec![0u8; 70_000];
    one.recv_bytes(&big);
    assert_eq!(misbehaved(&one, MisbehaviorKind::Oversized), 1);
    // Empty.
    let mut one = secondary_up(Normal);
    one.recv_bytes(&[]);
    assert_eq!(misbehaved(&one, MisbehaviorKind::Malformed), 1);
    // STATE carrying STARTUP (1) as a value (§5.5.16: never sent).
    let mut one = secondary_up(Normal);
    let bad = frame(&state_msg(Normal, 0, one.wall()), 3, one.wall());
    let mut bad = bad;
    let pos = bad.windows(4).position(|w| w == [0, 132, 0, 1]).unwrap();
    bad[pos + 4] = 1;
    one.recv_bytes(&bad);
    assert_eq!(misbehaved(&one, MisbehaviorKind::BadServerState), 1);
}

// ------------------------------------------------------------------------------------------
// STATE (§6.3, §6.4), keepalive and CONTACT (§6.5, §6.6), skew (§7.1).

#[test]
fn state_carries_partner_down_time_only_in_partner_down_6_3() {
    // A primary in PARTNER-DOWN (from its record, after the STARTUP timer) connects.
    let mut one = One::new(config(Role::Primary), Some(record(PartnerDown, 5)));
    one.advance(11_000);
    assert_eq!(one.state(), PartnerDown);
    one.ep.handle_connected(one.now());
    let Some(Transmit::Frame(c)) = one.ep.poll_transmit() else {
        panic!("CONNECT")
    };
    let cx = Failover::parse_bytes(&c[2..]).unwrap().0.transaction_id;
    let reply = Failover::Connectreply(Connectreply::Accept(params(60, None)));
    one.ep
        .handle_message(one.now(), &frame(&reply, cx, one.wall()));
    let Some(Transmit::Frame(s)) = one.ep.poll_transmit() else {
        panic!("STATE")
    };
    let Failover::State(st) = Failover::parse_bytes(&s[2..]).unwrap().1 else {
        panic!()
    };
    assert_eq!(st.server_state, PartnerDown.code());
    assert_eq!(
        st.partner_down_time.map(|t| t.0),
        Some(st.start_time_of_state.0),
        "D18"
    );
    // In any other state: absent.
    let mut one = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    one.advance(11_000);
    one.ep.handle_connected(one.now());
    let Some(Transmit::Frame(c)) = one.ep.poll_transmit() else {
        panic!("CONNECT")
    };
    let cx = Failover::parse_bytes(&c[2..]).unwrap().0.transaction_id;
    one.ep
        .handle_message(one.now(), &frame(&reply, cx, one.wall()));
    let Some(Transmit::Frame(s)) = one.ep.poll_transmit() else {
        panic!("STATE")
    };
    let Failover::State(st) = Failover::parse_bytes(&s[2..]).unwrap().1 else {
        panic!()
    };
    assert_eq!(st.server_state, CommunicationsInterrupted.code());
    assert_eq!(st.partner_down_time, None, "§6.3 only in PARTNER-DOWN");
}

#[test]
fn partner_state_is_remembered_durably_6_4() {
    let mut one = secondary_up(CommunicationsInterrupted);
    let p = one.durable.unwrap().partner.unwrap();
    assert_eq!(p.state, CommunicationsInterrupted);
    assert!(p.flags.contains(ServerFlags::COMMUNICATED));
    assert_eq!(p.partner_down_time, None);
    let since = one.wall();
    one.recv(&state_msg(PartnerDown, COMMUNICATED, since), 9);
    let p = one.durable.unwrap().partner.unwrap();
    assert_eq!((p.state, p.partner_down_time), (PartnerDown, Some(since)));
    assert!(
        one.events
            .iter()
            .any(|e| matches!(e, Event::PartnerStateChanged(r) if r.state == PartnerDown))
    );
}

#[test]
fn contact_every_partner_keepalive_over_4_and_dead_link_after_our_keepalive_6_6() {
    let mut one = secondary_up(Normal); // partner keepalive 20 s → CONTACT every 5 s
    one.take_sent();
    // The partner keeps talking every 4 s; we stay quiet except for CONTACT.
    for _ in 0..10 {
        one.advance(4_000);
        one.recv(&Failover::Contact, 0);
    }
    let contacts = one.take_sent();
    assert!(
        contacts
            .iter()
            .all(|s| s.msg_type() == Some(MessageType::CONTACT))
    );
    assert_eq!(contacts.len(), 8, "40 s / 5 s: {contacts:?}");
    assert!(one.ep.communications_ok());
    // Silence for our keepalive (20 s): the connection is dead (§6.6).
    one.advance(19_999);
    assert!(one.ep.communications_ok());
    one.advance(1);
    assert!(!one.ep.communications_ok());
    assert!(
        one.events
            .contains(&Event::LinkDown(DownReason::KeepaliveExpired))
    );
    assert_eq!(
        one.state(),
        CommunicationsInterrupted,
        "§8.8.2 communications not OK"
    );
    assert_eq!(one.take_sent().last(), Some(&Sent::Close));
    assert_eq!(one.ep.counters().keepalive_expired, 1);
}

#[test]
fn no_contact_before_the_handshake_and_a_silent_connect_times_out() {
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    one.advance(19_000);
    assert!(one.take_sent().is_empty(), "no CONTACT before CONNECT (D9)");
    one.advance(1_000);
    assert_eq!(one.take_sent().last(), Some(&Sent::Close));
    assert!(
        one.events
            .contains(&Event::LinkDown(DownReason::KeepaliveExpired))
    );
}

#[test]
fn any_message_with_excessive_skew_drops_the_connection_7_5_1() {
    let mut one = secondary_up(Normal);
    one.take_sent();
    one.recv_skewed(&Failover::Contact, 0, 4);
    assert!(!one.closed_by_us());
    assert_eq!(one.ep.status().skew, Some(4));
    one.recv_skewed(&Failover::Contact, 0, -7);
    let sent = one.take_sent();
    assert_eq!(
        status_of_disconnect(&sent),
        Some(StatusCode::EXCESSIVE_TIME_SKEW)
    );
    assert_eq!(sent.last(), Some(&Sent::Close));
    assert!(one.events.contains(&Event::ExcessiveTimeSkew(-7)));
    assert_eq!(one.ep.status().max_abs_skew, 7);
    assert_eq!(one.state(), CommunicationsInterrupted);
}

#[test]
fn transaction_ids_of_initiated_messages_are_unique_and_responses_echo_5_4() {
    let mut one = secondary_up(Normal);
    for i in 0..200 {
        one.advance(5_000);
        one.recv(&Failover::Contact, 0);
        if i % 50 == 0 {
            one.recv(&Failover::Updreq, 0x00ab_cd00 + i);
        }
    }
    let sent = one.take_sent();
    let mut xids: Vec<u32> = sent
        .iter()
        // Responses carry the request's transaction-id (§5.4); the rest are ours.
        .filter(|s| {
            !matches!(
                s.msg_type(),
                None | Some(MessageType::UPDDONE | MessageType::CONNECTREPLY)
            )
        })
        .map(Sent::xid)
        .collect();
    let n = xids.len();
    xids.sort_unstable();
    xids.dedup();
    assert_eq!(xids.len(), n);
    let dones: Vec<u32> = sent
        .iter()
        .filter(|s| s.msg_type() == Some(MessageType::UPDDONE))
        .map(Sent::xid)
        .collect();
    assert_eq!(
        dones,
        vec![0x00ab_cd00, 0x00ab_cd32, 0x00ab_cd64, 0x00ab_cd96],
        "UPDDONE echoes"
    );
    // An UPDDONE answering nothing is a violation.
    one.recv(&Failover::Upddone, 4242);
    assert_eq!(misbehaved(&one, MisbehaviorKind::UnknownTransactionId), 1);
}

// ------------------------------------------------------------------------------------------
// Persistence before STATE (§6.3, §8.1).

#[test]
fn state_is_held_until_its_record_is_durable() {
    let mut ep = Endpoint::new(config(Role::Secondary), None, common::at(0)).unwrap();
    let now = common::at(0);
    ep.handle_connected(now);
    let connect = frame(&Failover::Connect(params(60, Some(NAME))), 3, now.wall);
    ep.handle_message(now, &connect);
    // CONNECTREPLY needs no new record (fresh start: nothing recorded yet), STATE neither.
    let mut first = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        first.push(common::decode(&t));
    }
    assert_eq!(first.len(), 2);
    // The partner's STATE: communications OK, STARTUP → RECOVER, a record to write.
    ep.handle_message(
        now,
        &frame(&state_msg(Normal, COMMUNICATED, now.wall), 4, now.wall),
    );
    assert_eq!(ep.poll_transmit(), None, "STATE (RECOVER) is held");
    let rec = ep.poll_persist().expect("the new state to persist");
    assert_eq!(rec.state, Recover);
    assert_eq!(ep.poll_transmit(), None, "still held until confirmed");
    assert_eq!(ep.poll_persist(), None);
    ep.handle_persisted();
    let Some(t) = ep.poll_transmit() else {
        panic!()
    };
    let Sent::Msg { state, .. } = common::decode(&t) else {
        panic!()
    };
    assert_eq!(state.map(|s| s.0), Some(Recover));
    // A crash before confirming forgets the state: restart from the old record.
    let mut ep2 = Endpoint::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
        now,
    )
    .unwrap();
    let r0: Persisted = ep2.poll_persist().unwrap();
    ep2.handle_persisted();
    assert_eq!(r0.state, CommunicationsInterrupted);
    assert!(
        r0.operating_until.0 > WALL0,
        "operating-until bounds TIME-OF-FAILURE"
    );
}

#[test]
fn heartbeat_refreshes_operating_until() {
    let mut one = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    let t0 = one.durable.unwrap().operating_until; // written at start: now + 30 s
    one.advance(26_000); // a refresh every heartbeat / 2 = 15 s (after the entry at 10 s)
    let t1 = one.durable.unwrap().operating_until;
    assert!(t1.wrapping_sub(t0) >= 25, "{t0:?} → {t1:?}");
    assert!(t1.wrapping_sub(one.wall()) > 0, "always ahead of now");
}

// ------------------------------------------------------------------------------------------
// STARTUP (§8.3).

#[test]
fn startup_state_carries_startup_flag_and_previous_state_8_3_1() {
    let mut one = One::new(config(Role::Primary), Some(record(Normal, 5)));
    assert_eq!(one.state(), Startup);
    assert_eq!(
        one.ep.policy().responsiveness,
        Responsiveness::Unresponsive,
        "§8.3.1"
    );
    one.connected();
    let xid = one.take_sent()[0].xid();
    one.recv(
        &Failover::Connectreply(Connectreply::Accept(params(60, None))),
        xid,
    );
    let Sent::Msg {
        state: Some((s, flags, since)),
        ..
    } = one.take_sent()[0].clone()
    else {
        panic!()
    };
    assert_eq!(
        s, CommunicationsInterrupted,
        "§8.3.1 previous state, after step 2"
    );
    assert!(
        flags.contains(ServerFlags::STARTUP),
        "§8.3.1 STARTUP flag MUST be set"
    );
    assert_eq!(since, record(Normal, 5).state_since);
    // The partner (in STARTUP too) answers: we leave STARTUP (step 5), flag cleared.
    let since = one.wall();
    one.recv(
        &state_msg(CommunicationsInterrupted, STARTUP | COMMUNICATED, since),
        2,
    );
    assert_eq!(
        one.state(),
        Normal,
        "step 5: COMMUNICATIONS-INTERRUPTED, then §8.9.2 → NORMAL"
    );
    let Sent::Msg {
        state: Some((s, flags, _)),
        ..
    } = one.take_sent()[0].clone()
    else {
        panic!()
    };
    assert_eq!(s, Normal);
    assert!(!flags.contains(ServerFlags::STARTUP));
    assert!(
        flags.contains(ServerFlags::ACK_STARTUP),
        "§5.5.15 the last flags had STARTUP"
    );
}

#[test]
fn startup_step_5_partner_down_since_after_or_before_our_operation() {
    // Our record says we operated until WALL0 - 5.
    for (offset, expected) in [(1i64, Recover), (-100, PotentialConflict)] {
        let mut one = One::new(
            config(Role::Secondary),
            Some(record(CommunicationsInterrupted, 5)),
        );
        one.connected();
        one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
        let tof = record(CommunicationsInterrupted, 5).operating_until;
        let since = FailoverTime((i64::from(tof.0) + offset) as u32);
        one.recv(&state_msg(PartnerDown, COMMUNICATED, since), 2);
        assert_eq!(
            one.state(),
            expected,
            "§8.3.2 step 5, partner PARTNER-DOWN at tof{offset:+}"
        );
    }
    // No record at all: RECOVER.
    let mut one = One::new(config(Role::Secondary), None);
    one.connected();
    one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
    one.recv(&state_msg(PartnerDown, COMMUNICATED, FailoverTime(1)), 2);
    assert_eq!(one.state(), Recover);
}

#[test]
fn startup_timer_expiry_goes_to_previous_state_or_partner_down_on_first_start_8_3_2() {
    let mut one = One::new(config(Role::Primary), Some(record(PotentialConflict, 5)));
    one.advance(9_999);
    assert_eq!(one.state(), Startup);
    one.advance(1);
    assert_eq!(
        one.state(),
        ResolutionInterrupted,
        "step 6 → PREVIOUS-STATE (step 2 applied)"
    );
    // Fresh install: RECOVER (D8) …
    let mut one = One::new(config(Role::Primary), None);
    one.advance(10_000);
    assert_eq!(one.state(), Recover);
    // … or PARTNER-DOWN with the commissioning option (§8.3.2 step 1).
    let mut cfg = config(Role::Primary);
    cfg.first_start_partner_down = true;
    let mut one = One::new(cfg.clone(), None);
    one.advance(10_000);
    assert_eq!(one.state(), PartnerDown);
    assert_eq!(one.ep.policy().mclt, None, "§8.4.1 no MCLT cap");
    // The option is for a first start only.
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.advance(10_000);
    assert_eq!(one.state(), CommunicationsInterrupted);
}

// ------------------------------------------------------------------------------------------
// RECOVER, RECOVER-WAIT (§8.5, §8.6), POTENTIAL-CONFLICT (§8.10), responders.

fn recovering(persisted: Option<Persisted>, partner_flags: u8) -> One {
    let mut one = One::new(config(Role::Secondary), persisted);
    one.connected();
    one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
    let since = one.wall();
    one.recv(&state_msg(Normal, partner_flags, since), 2);
    one
}

#[test]
fn recover_sends_updreqall_only_when_we_lost_what_the_partner_remembers_8_5_2() {
    let one = recovering(None, COMMUNICATED);
    assert_eq!(one.state(), Recover);
    assert!(
        one.sent_types().contains(&MessageType::UPDREQALL),
        "{:?}",
        one.sent_types()
    );
    let one = recovering(None, 0);
    assert!(one.sent_types().contains(&MessageType::UPDREQ));
    assert!(!one.sent_types().contains(&MessageType::UPDREQALL));
    let one = recovering(Some(record(Recover, 5)), COMMUNICATED);
    assert!(one.sent_types().contains(&MessageType::UPDREQ));
}

#[test]
fn recover_wait_waits_mclt_from_time_of_failure_unless_failover_never_ran_8_6_2() {
    // Never ran failover (no record, partner never communicated): straight through.
    let mut one = recovering(None, 0);
    let xid = one
        .sent
        .iter()
        .find(|s| s.msg_type() == Some(MessageType::UPDREQ))
        .unwrap()
        .xid();
    one.recv(&Failover::Upddone, xid);
    let path: Vec<_> = one
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    // §8.6.2 MAY transition immediately; then the partner is NORMAL: §8.7.2 → NORMAL.
    assert_eq!(path, vec![Recover, RecoverWait, RecoverDone, Normal]);
    // Ran before: TIME-OF-FAILURE (WALL0 - 5) + MCLT (60) = WALL0 + 55.
    let mut one = recovering(Some(record(Recover, 5)), COMMUNICATED);
    let xid = one
        .sent
        .iter()
        .find(|s| s.msg_type() == Some(MessageType::UPDREQ))
        .unwrap()
        .xid();
    one.recv(&Failover::Upddone, xid);
    assert_eq!(one.state(), RecoverWait, "§8.5.2 UPDDONE → RECOVER-WAIT");
    one.advance(54_000);
    assert_eq!(one.state(), RecoverWait);
    // §8.6.2: a communications failure has no effect on the timer.
    one.closed();
    one.advance(1_000);
    assert_eq!(
        one.state(),
        RecoverDone,
        "§8.6.2 timer expired, even without communications"
    );
    assert_eq!(
        one.ep.policy().responsiveness,
        Responsiveness::RenewResponsive,
        "§8.7.1"
    );
    assert!(!one.ep.policy().new_leases);
}

#[test]
fn recover_reissues_its_request_after_a_reconnect_and_times_out_8_5_2() {
    let mut one = recovering(None, COMMUNICATED);
    one.closed();
    assert_eq!(one.state(), Recover, "§8.5.2 remain in RECOVER");
    one.take_sent();
    one.connected();
    one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
    let since = one.wall();
    one.recv(&state_msg(Normal, COMMUNICATED, since), 2);
    assert!(
        one.sent_types().contains(&MessageType::UPDREQALL),
        "reissued, same kind"
    );
    // No UPDDONE, no BNDUPD: the connection is dropped after the update timeout (60 s) —
    // the partner's CONTACTs keep the link itself alive.
    for _ in 0..16 {
        one.advance(4_000);
        one.recv(&Failover::Contact, 0);
    }
    assert!(
        one.events
            .contains(&Event::LinkDown(DownReason::UpdateTimeout))
    );
    assert_eq!(one.state(), Recover);
}

#[test]
fn potential_conflict_primary_sends_updreq_secondary_waits_for_conflict_done_8_10() {
    // Primary: COMMUNICATIONS-INTERRUPTED meets a PARTNER-DOWN partner → POTENTIAL-CONFLICT,
    // UPDREQ at once.
    let mut p = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    p.advance(11_000); // out of STARTUP: step 5 would send us to RECOVER instead
    p.handshake_with(PartnerDown, COMMUNICATED);
    assert_eq!(p.state(), PotentialConflict);
    let upd = p
        .sent
        .iter()
        .find(|s| s.msg_type() == Some(MessageType::UPDREQ))
        .expect("§8.10 UPDREQ")
        .xid();
    p.recv(&Failover::Upddone, upd);
    assert_eq!(p.state(), ConflictDone, "§8.10.2 primary → CONFLICT-DONE");
    assert_eq!(
        p.ep.policy().responsiveness,
        Responsiveness::Responsive,
        "§8.12.1"
    );
    let since = p.wall();
    p.recv(&state_msg(Normal, COMMUNICATED, since), 9);
    assert_eq!(p.state(), Normal, "§8.12.2");
    // Secondary: waits; the primary's CONFLICT-DONE triggers its UPDREQ.
    let mut s = One::new(
        config(Role::Secondary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    s.advance(11_000);
    s.handshake_with(PartnerDown, COMMUNICATED);
    assert_eq!(s.state(), PotentialConflict);
    assert!(
        !s.sent_types().contains(&MessageType::UPDREQ),
        "§8.10 the secondary waits"
    );
    s.recv(&Failover::Updreq, 0x55);
    assert!(
        s.sent_types().contains(&MessageType::UPDDONE),
        "answers the primary (part 1: at once)"
    );
    let since = s.wall();
    s.recv(&state_msg(ConflictDone, COMMUNICATED, since), 10);
    let upd = s
        .sent
        .iter()
        .find(|m| m.msg_type() == Some(MessageType::UPDREQ))
        .expect("§8.10.2 SHOULD send UPDREQ")
        .xid();
    s.recv(&Failover::Upddone, upd);
    assert_eq!(s.state(), Normal, "§8.10.2 secondary → NORMAL");
    assert_eq!(
        s.sent_types().last(),
        Some(&MessageType::POOLREQ),
        "§8.8 secondary POOLREQ"
    );
}

#[test]
fn updreq_is_answered_after_the_drivers_updates_and_the_last_bndreply_8_5_2() {
    // UPDREQALL: the driver is told (§5.3.8); no UPDDONE before it says it sent everything.
    let mut one = secondary_up(Normal);
    one.auto_complete_updates = false;
    one.drain();
    one.take_sent();
    one.recv(&Failover::Updreqall, 0x00_0777);
    assert!(one.events.contains(&Event::UpdateRequested { all: true }));
    assert!(one.take_sent().is_empty(), "UPDDONE waits for the updates");
    // The driver sends two BNDUPDs (the partner's window is 10, common::params).
    assert_eq!(one.ep.update_window(), 10);
    let body = &bndupd_prefix(one.wall())[8..];
    let x1 = one
        .ep
        .send_bndupd(one.now(), 41, body)
        .expect("window open");
    let x2 = one
        .ep
        .send_bndupd(one.now(), 42, body)
        .expect("window open");
    assert_ne!(x1, x2, "§5.4 unique among outstanding");
    assert_eq!((one.ep.update_window(), one.ep.unacked_updates()), (8, 2));
    one.ep.update_stream_complete(one.now());
    one.drain();
    let sent = one.take_sent();
    assert_eq!(
        sent.iter().map(Sent::msg_type).collect::<Vec<_>>(),
        [Some(MessageType::BNDUPD), Some(MessageType::BNDUPD)],
        "no UPDDONE while BNDUPDs are unacked"
    );
    // The BNDREPLYs come back to the driver with its tags; UPDDONE (the request's
    // transaction-id, §5.3.7) only after the last one.
    let refusal = Failover::Bndreply(tandem_wire::failover::Bndreply {
        payload: None,
        status: Some(StatusCodeOption::new(StatusCode::UNSPEC_FAIL, "x")),
    });
    one.recv(&refusal, x2);
    assert!(one.take_sent().is_empty());
    one.recv(&refusal, x1);
    assert_eq!(one.take_sent(), [one_msg(MessageType::UPDDONE, 0x777)]);
    let tags: Vec<u64> = std::iter::from_fn(|| one.ep.poll_binding())
        .map(|b| match b {
            BindingInput::Reply { tag, .. } => tag,
            BindingInput::Update { .. } => panic!("no BNDUPD was received"),
        })
        .collect();
    assert_eq!(tags, [42, 41]);
    assert_eq!(one.ep.counters().bndreply_received, 2);
    // A BNDREPLY answering nothing outstanding is a peer error (§5.4, D11).
    one.recv(&refusal, 0x4242);
    assert_eq!(misbehaved(&one, MisbehaviorKind::UnknownTransactionId), 1);
    assert!(one.closed_by_us());
}

#[test]
fn bndupd_goes_to_the_driver_and_its_bndreply_back_on_the_same_connection_7_5() {
    let mut cfg = config(Role::Secondary);
    cfg.max_unacked_bndupd = 2;
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.handshake_with(Normal, COMMUNICATED);
    one.take_sent();
    let msg = bndupd_prefix(one.wall());
    one.recv_bytes(&msg);
    let Some(BindingInput::Update { conn, xid, message }) = one.ep.poll_binding() else {
        panic!("the BNDUPD goes to the driver")
    };
    assert_eq!((xid, message.as_slice()), (0x102, msg.as_slice()));
    assert!(
        one.take_sent().is_empty(),
        "no BNDREPLY before the driver stored it (§7.5.2)"
    );
    assert_eq!(one.ep.unanswered_updates(), 1);
    // The driver answers with the options it encoded (§7.6); the endpoint frames them.
    assert!(one.ep.send_bndreply(one.now(), conn, xid, &msg[8..]));
    one.drain();
    let sent = one.take_sent();
    assert_eq!(
        (sent[0].msg_type(), sent[0].xid()),
        (Some(MessageType::BNDREPLY), 0x102)
    );
    assert!(
        !one.ep.send_bndreply(one.now(), conn, xid, &msg[8..]),
        "answered once"
    );
    // A refusal is a BNDREPLY with a top-level status.
    one.recv_bytes(&msg);
    let Some(BindingInput::Update { conn, xid, .. }) = one.ep.poll_binding() else {
        panic!()
    };
    assert!(
        one.ep
            .refuse_bndupd(one.now(), conn, xid, StatusCode::UNSPEC_FAIL, "disk")
    );
    one.drain();
    let Sent::Msg {
        msg_type, status, ..
    } = &one.take_sent()[0]
    else {
        panic!()
    };
    assert_eq!(
        (*msg_type, *status),
        (MessageType::BNDREPLY, Some(StatusCode::UNSPEC_FAIL))
    );
    assert_eq!(one.ep.counters().bndupd_refused, 1);
    // An answer prepared for a connection that is gone is not sent on the next one: the
    // partner resends what it did not get acked.
    one.recv_bytes(&msg);
    let Some(BindingInput::Update { conn, xid, .. }) = one.ep.poll_binding() else {
        panic!()
    };
    one.closed();
    one.handshake_with(Normal, COMMUNICATED);
    one.take_sent();
    assert!(!one.ep.send_bndreply(one.now(), conn, xid, &msg[8..]));
    assert!(one.take_sent().is_empty());
}

#[test]
fn more_bndupds_than_our_max_unacked_is_a_peer_error_6_1_1() {
    let mut cfg = config(Role::Secondary);
    cfg.max_unacked_bndupd = 2;
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.handshake_with(Normal, COMMUNICATED);
    let mut msg = bndupd_prefix(one.wall());
    for xid in [0x201u32, 0x202, 0x203] {
        msg[1..4].copy_from_slice(&xid.to_be_bytes()[1..]);
        one.recv_bytes(&msg);
    }
    assert_eq!(misbehaved(&one, MisbehaviorKind::UpdateWindowExceeded), 1);
    assert!(one.closed_by_us());
    // The same transaction-id twice while unanswered, too (§5.4).
    let mut cfg = config(Role::Secondary);
    cfg.max_unacked_bndupd = 8;
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.handshake_with(Normal, COMMUNICATED);
    let msg = bndupd_prefix(one.wall());
    one.recv_bytes(&msg);
    one.recv_bytes(&msg);
    assert_eq!(misbehaved(&one, MisbehaviorKind::UpdateWindowExceeded), 1);
}

#[test]
fn updates_flow_in_normal_not_in_recover_d25() {
    // NORMAL with communications OK: the driver is told to send its pending updates (§8.8).
    let one = secondary_up(Normal);
    assert!(one.events.contains(&Event::UpdatesMayFlow));
    assert_eq!(one.ep.update_window(), 10);
    // RECOVER (a first start): nothing flows until RECOVER-DONE — our database is what the
    // partner is rebuilding (D25) — except answers to the partner's own UPDREQ.
    let mut r = One::new(config(Role::Secondary), None);
    r.auto_complete_updates = false;
    r.handshake_with(Normal, COMMUNICATED);
    assert_eq!(r.state(), Recover);
    assert!(!r.events.contains(&Event::UpdatesMayFlow));
    assert_eq!(r.ep.update_window(), 0);
    let body = &bndupd_prefix(r.wall())[8..];
    assert_eq!(
        r.ep.send_bndupd(r.now(), 1, body),
        Err(UpdateNotSent::NoWindow)
    );
    r.recv(&Failover::Updreq, 0x55);
    assert_eq!(r.ep.update_window(), 10, "answering an UPDREQ");
    // No connection: no window.
    r.closed();
    assert_eq!(r.ep.update_window(), 0);
}

#[test]
fn poolreq_is_answered_with_poolresp_5_3_4() {
    // POOLREQ to the primary: POOLRESP with its xid.
    let mut p = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    p.handshake_with(Normal, COMMUNICATED);
    p.take_sent();
    p.recv(&Failover::Poolreq, 0x99);
    assert_eq!(p.take_sent()[0], one_msg(MessageType::POOLRESP, 0x99));
    assert!(p.events.contains(&Event::PoolRequested));
}

fn one_msg(t: MessageType, xid: u32) -> Sent {
    Sent::Msg {
        msg_type: t,
        xid,
        sent_time: FailoverTime(WALL0),
        state: None,
        status: None,
        mclt: None,
    }
}

/// BNDUPD with a bare OPTION_IAPREFIX: wire/tests/vectors/failover_bndupd_prefix.hex (hand-built
/// per RFC 8156 §7.4), with our sent-time.
fn bndupd_prefix(sent: FailoverTime) -> Vec<u8> {
    let mut v: Vec<u8> = [
        "18000102",
        "2fce5480",
        "001a0037",
        "00000000",
        "00000000",
        "30",
        "20010db8800000000000000000000000",
        "00440005",
        "00626c7565",
        "00640004",
        "2fce5480",
        "00720001",
        "06",
        "00850004",
        "2fce5462",
    ]
    .concat()
    .as_bytes()
    .chunks(2)
    .map(|h| u8::from_str_radix(std::str::from_utf8(h).expect("ascii"), 16).expect("hex"))
    .collect();
    v[4..8].copy_from_slice(&sent.0.to_be_bytes());
    v
}

// ------------------------------------------------------------------------------------------
// Shutdown (D7), replaced connections.

#[test]
fn shutdown_sends_disconnect_server_shutting_down_and_stops_serving() {
    let mut one = secondary_up(Normal);
    one.take_sent();
    assert_eq!(
        one.ep.handle_operator(one.now(), Operator::Shutdown),
        Ok(())
    );
    one.drain();
    let sent = one.take_sent();
    assert_eq!(
        status_of_disconnect(&sent),
        Some(StatusCode::SERVER_SHUTTING_DOWN),
        "§5.3.10"
    );
    assert_eq!(sent.last(), Some(&Sent::Close));
    assert_eq!(one.ep.policy().responsiveness, Responsiveness::Unresponsive);
    let rec = one.durable.unwrap();
    assert_eq!(
        rec.state, Normal,
        "D7: the state stays; the next start applies step 2"
    );
    assert_eq!(rec.operating_until, one.wall(), "stopped now");
    assert_eq!(one.ep.poll_timeout(), None);
    assert!(
        one.ep
            .handle_operator(one.now(), Operator::PartnerDown)
            .is_err()
    );
    one.connected();
    assert_eq!(one.take_sent(), vec![Sent::Close]);
    // The partner sees DISCONNECT in NORMAL → COMMUNICATIONS-INTERRUPTED (§8.8.2).
    let mut p = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    p.handshake_with(Normal, COMMUNICATED);
    let dis = StatusCodeOption::new(StatusCode::SERVER_SHUTTING_DOWN, "bye");
    p.recv(&Failover::Disconnect(Some(dis)), 7);
    assert_eq!(p.state(), CommunicationsInterrupted);
    assert!(
        p.events
            .contains(&Event::LinkDown(DownReason::PartnerDisconnected(Some(
                StatusCode::SERVER_SHUTTING_DOWN
            ))))
    );
}

#[test]
fn a_new_connection_replaces_the_old_one() {
    let mut one = secondary_up(Normal);
    one.connected();
    assert!(one.events.contains(&Event::LinkDown(DownReason::Replaced)));
    assert_eq!(one.state(), CommunicationsInterrupted);
    one.recv(&Failover::Connect(params(60, Some(NAME))), 1);
    let since = one.wall();
    one.recv(&state_msg(Normal, COMMUNICATED, since), 2);
    assert_eq!(one.state(), Normal);
}

#[test]
fn auto_partner_down_counts_only_time_without_communications_d18() {
    let mut cfg = config(Role::Primary);
    cfg.auto_partner_down = Some(30);
    // Back from a restart in COMMUNICATIONS-INTERRUPTED with a partner in RECOVER: we stay
    // (§8.9.2) and talk to it.
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.handshake_with(Recover, COMMUNICATED);
    assert_eq!(one.state(), CommunicationsInterrupted);
    for _ in 0..20 {
        one.advance(4_000);
        one.recv(&Failover::Contact, 0);
    }
    assert_eq!(
        one.state(),
        CommunicationsInterrupted,
        "the partner is not down"
    );
    assert!(
        one.ep.poll_timeout().unwrap() > one.mono_ms,
        "no timer left behind"
    );
    // Communications fail: the timer starts now.
    one.closed();
    one.advance(29_000);
    assert_eq!(one.state(), CommunicationsInterrupted);
    one.advance(1_000);
    assert_eq!(one.state(), PartnerDown, "§8.9.2 auto-partner-down");
}

#[test]
fn auto_partner_down_keeps_running_through_failed_handshakes_d18() {
    let mut cfg = config(Role::Primary);
    cfg.auto_partner_down = Some(30);
    let mut one = One::new(cfg, Some(record(CommunicationsInterrupted, 5)));
    one.advance(10_000); // STARTUP over: COMMUNICATIONS-INTERRUPTED, timer until 40 s
    assert_eq!(one.state(), CommunicationsInterrupted);
    // The partner's host accepts TCP but its server never answers CONNECT.
    one.connected();
    one.advance(20_000); // our keepalive: the connection is declared dead at 30 s
    assert!(
        one.events
            .contains(&Event::LinkDown(DownReason::KeepaliveExpired))
    );
    one.advance(9_999);
    assert_eq!(one.state(), CommunicationsInterrupted);
    one.advance(1);
    assert_eq!(
        one.state(),
        PartnerDown,
        "40 s after entering COMMUNICATIONS-INTERRUPTED"
    );
}

#[test]
fn an_unfinished_updreqall_is_asked_for_again_after_a_restart_d47() {
    // What the binding sync simulator found (docs/failover.md D47): a server that lost its
    // storage starts in RECOVER and sends UPDREQALL (§8.5.2: no record of the partner, which
    // has one of us); the first connection records COMMUNICATED. If it stops before the
    // UPDDONE, the next start finds COMMUNICATED in its record and sent only UPDREQ: the
    // partner's acknowledged bindings never came, and the server went to NORMAL without them.
    let one = recovering(None, COMMUNICATED);
    assert!(one.sent_types().contains(&MessageType::UPDREQALL));
    let record = one.durable.expect("a record");
    assert!(record.communicated && record.resync_all, "{record:?}");
    // Crash before the UPDDONE; restart from the record.
    let mut again = recovering(Some(record), COMMUNICATED);
    let sent = again.sent_types();
    assert!(sent.contains(&MessageType::UPDREQALL), "{sent:?}");
    assert!(!sent.contains(&MessageType::UPDREQ), "{sent:?}");
    // The UPDDONE of the UPDREQALL ends it: recorded, and a later RECOVER sends UPDREQ.
    let xid = again
        .sent
        .iter()
        .find(|s| s.msg_type() == Some(MessageType::UPDREQALL))
        .unwrap()
        .xid();
    again.recv(&Failover::Upddone, xid);
    let record = again.durable.expect("a record");
    assert!(!record.resync_all, "{record:?}");
    // (Restarted in RECOVER again, e.g. the partner went PARTNER-DOWN meanwhile.)
    let third = recovering(
        Some(Persisted {
            state: Recover,
            ..record
        }),
        COMMUNICATED,
    );
    assert!(third.sent_types().contains(&MessageType::UPDREQ));
    assert!(!third.sent_types().contains(&MessageType::UPDREQALL));
}

#[test]
fn a_server_without_storage_asks_for_everything_in_potential_conflict_too_d47() {
    // The long simulator run: a primary lost its disk while the secondary, declared
    // PARTNER-DOWN, had gone on to RESOLUTION-INTERRUPTED; back with an empty database, the
    // primary went RECOVER → POTENTIAL-CONFLICT (§8.5.2) and sent UPDREQ (§8.10), so the
    // secondary sent only what was unacknowledged and the primary reached NORMAL without the
    // rest. Having no record of the partner while it has one of us (§8.5.2) asks for everything
    // in POTENTIAL-CONFLICT as in RECOVER.
    let mut one = One::new(config(Role::Primary), None);
    one.handshake_with(ResolutionInterrupted, COMMUNICATED);
    assert_eq!(one.state(), PotentialConflict);
    let sent = one.sent_types();
    assert!(sent.contains(&MessageType::UPDREQALL), "{sent:?}");
    assert!(!sent.contains(&MessageType::UPDREQ), "{sent:?}");
    assert!(one.durable.is_some_and(|r| r.resync_all));
    // With its storage, UPDREQ as §8.10 says.
    let mut one = One::new(
        config(Role::Primary),
        Some(record(CommunicationsInterrupted, 5)),
    );
    one.handshake_with(ResolutionInterrupted, COMMUNICATED);
    assert_eq!(one.state(), PotentialConflict);
    assert!(one.sent_types().contains(&MessageType::UPDREQ));
    assert!(!one.sent_types().contains(&MessageType::UPDREQALL));
}

#[test]
fn stores_set_back_by_a_power_loss_recover_everything_before_allocating_d56() {
    // What the long simulator run found (docs/failover.md D56): a power loss set the primary's
    // store back to its last msync after the partner had acknowledged a grant; restarted from
    // its NORMAL record, the primary went COMMUNICATIONS-INTERRUPTED (no partner yet) or NORMAL
    // and gave that lease to another client. Told that its stores were set back, it recovers
    // the partner's whole database first, as a server without storage does (§8.3.2 step 1).
    let mut one = One::new(config(Role::Secondary), Some(record(Normal, 5)));
    one.ep.stores_set_back(one.now());
    one.drain();
    let rec = one.durable.expect("a record");
    assert_eq!(rec.state, Recover, "recorded at once: {rec:?}");
    assert!(rec.resync_all, "{rec:?}");
    // The startup timer runs out without the partner: RECOVER (unresponsive, §8.5.1), not
    // COMMUNICATIONS-INTERRUPTED, which would allocate.
    one.advance(120_000);
    assert_eq!(one.state(), Recover);
    assert!(!one.ep.policy().new_leases, "{:?}", one.ep.policy());
    // The partner comes: everything is asked for, not only what it has not sent.
    let mut one = recovering(Some(rec), COMMUNICATED);
    let sent = one.sent_types();
    assert!(sent.contains(&MessageType::UPDREQALL), "{sent:?}");
    assert!(!sent.contains(&MessageType::UPDREQ), "{sent:?}");
    assert_eq!(one.state(), Recover);
    let xid = one
        .sent
        .iter()
        .find(|s| s.msg_type() == Some(MessageType::UPDREQALL))
        .unwrap()
        .xid();
    one.recv(&Failover::Upddone, xid);
    assert!(!one.durable.expect("a record").resync_all);
    // A server whose record says PARTNER-DOWN keeps it: its partner was down and holds
    // nothing it lost.
    let mut alone = One::new(config(Role::Secondary), Some(record(PartnerDown, 5)));
    alone.ep.stores_set_back(alone.now());
    alone.drain();
    alone.advance(120_000);
    assert_eq!(alone.state(), PartnerDown);
}
