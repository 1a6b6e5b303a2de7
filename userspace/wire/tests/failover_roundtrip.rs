//! Property tests: generated typed failover messages emit into exact (0xa5-poisoned) buffers,
//! parse back equal, and re-emit byte for byte; failover time un-wraps around a reference.

use std::net::Ipv6Addr;
use std::vec::Vec;

use proptest::prelude::*;
use tandem_wire::Error;
use tandem_wire::dhcp::{IaAddr, IaNa, IaPd, IaPrefix, IaTa, StatusCode, StatusCodeOption};
use tandem_wire::failover::option::{
    BindingStatus, CltTime, ConnectFlags, ExpirationTime, KeepaliveTime, LqBaseTime,
    MaxUnackedBndupd, Mclt, OptionList, PartnerDownTime, PartnerLifetime, PartnerLifetimeSent,
    PartnerRawCltTime, ProtocolVersion, ReconfigureData, RelationshipName, ServerFlags,
    ServerState, StartTimeOfState, StateExpirationTime, Vss,
};
use tandem_wire::failover::time::EPOCH_UNIX;
use tandem_wire::failover::{
    BindingInfo, BindingPayload, Bndreply, Bndupd, ClientData, ConnectParams, Connectreply,
    Failover, FailoverMessage, FailoverTime, Ia, State,
};
use tandem_wire::option::{EmitOption, OptionCode, Options, RawOption};

#[derive(Clone, Debug)]
struct LeaseSpec {
    addr: [u8; 16],
    prefix_len: u8,
    lifetimes: (u32, u32),
    status: u8,
    start: u32,
    times: [Option<u32>; 6],
    verdict: Option<(u16, Vec<u8>)>,
}

#[derive(Clone, Debug)]
struct IaSpec {
    kind: u8,
    iaid: u32,
    t1: u32,
    t2: u32,
    leases: Vec<LeaseSpec>,
}

#[derive(Clone, Debug)]
struct ClientSpec {
    duid: Vec<u8>,
    base: u32,
    vss: Option<Vec<u8>>,
    reconf: Option<(u32, Vec<u8>)>,
    ias: Vec<IaSpec>,
}

fn status_strategy() -> impl Strategy<Value = (u16, Vec<u8>)> {
    (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..12))
}

fn lease_strategy() -> impl Strategy<Value = LeaseSpec> {
    (
        any::<[u8; 16]>(),
        0u8..=128,
        any::<(u32, u32)>(),
        any::<u8>(),
        any::<u32>(),
        any::<[Option<u32>; 6]>(),
        proptest::option::of(status_strategy()),
    )
        .prop_map(
            |(addr, prefix_len, lifetimes, status, start, times, verdict)| LeaseSpec {
                addr,
                prefix_len,
                lifetimes,
                status,
                start,
                times,
                verdict,
            },
        )
}

fn client_strategy() -> impl Strategy<Value = ClientSpec> {
    let ia = (
        0u8..3,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(lease_strategy(), 1..3),
    )
        .prop_map(|(kind, iaid, t1, t2, leases)| IaSpec {
            kind,
            iaid,
            t1,
            t2,
            leases,
        });
    (
        proptest::collection::vec(any::<u8>(), 3..20),
        any::<u32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..17))),
        proptest::collection::vec(ia, 1..3),
    )
        .prop_map(|(duid, base, vss, reconf, ias)| ClientSpec {
            duid,
            base,
            vss,
            reconf,
            ias,
        })
}

fn info(l: &LeaseSpec) -> BindingInfo<'_> {
    let t = |i: usize| l.times[i].map(FailoverTime);
    BindingInfo {
        status: l.verdict.as_ref().map(|(c, m)| StatusCodeOption {
            code: StatusCode(*c),
            message: m,
        }),
        binding_status: Some(BindingStatus(l.status)),
        start_time_of_state: Some(StartTimeOfState(FailoverTime(l.start))),
        state_expiration_time: t(0).map(StateExpirationTime),
        clt_time: l.times[1].map(CltTime),
        partner_lifetime: t(2).map(PartnerLifetime),
        partner_raw_clt_time: t(3).map(PartnerRawCltTime),
        expiration_time: t(4).map(ExpirationTime),
        partner_lifetime_sent: t(5).map(PartnerLifetimeSent),
        ..BindingInfo::default()
    }
}

/// Builds the client data of `spec` (all `List` blocks on this stack frame) and hands it to `f`.
fn with_client_data<R>(spec: &ClientSpec, f: impl FnOnce(ClientData<'_>) -> R) -> R {
    let infos: Vec<Vec<BindingInfo<'_>>> = spec
        .ias
        .iter()
        .map(|ia| ia.leases.iter().map(info).collect())
        .collect();
    let lists: Vec<Vec<OptionList<'_, 13>>> = infos
        .iter()
        .map(|v| v.iter().map(BindingInfo::to_list).collect())
        .collect();
    let addrs: Vec<Vec<IaAddr<'_>>> = spec
        .ias
        .iter()
        .zip(&lists)
        .map(|(ia, l)| {
            ia.leases
                .iter()
                .zip(l)
                .map(|(s, l)| IaAddr {
                    addr: Ipv6Addr::from(s.addr),
                    preferred: s.lifetimes.0,
                    valid: s.lifetimes.1,
                    options: l.options(),
                })
                .collect()
        })
        .collect();
    let prefixes: Vec<Vec<IaPrefix<'_>>> = spec
        .ias
        .iter()
        .zip(&lists)
        .map(|(ia, l)| {
            ia.leases
                .iter()
                .zip(l)
                .map(|(s, l)| IaPrefix {
                    preferred: s.lifetimes.0,
                    valid: s.lifetimes.1,
                    prefix_len: s.prefix_len,
                    prefix: Ipv6Addr::from(s.addr),
                    options: l.options(),
                })
                .collect()
        })
        .collect();
    let refs: Vec<Vec<&dyn EmitOption>> = spec
        .ias
        .iter()
        .enumerate()
        .map(|(i, ia)| {
            if ia.kind == 2 {
                prefixes[i].iter().map(|p| p as &dyn EmitOption).collect()
            } else {
                addrs[i].iter().map(|a| a as &dyn EmitOption).collect()
            }
        })
        .collect();
    let ias: Vec<Ia<'_>> = spec
        .ias
        .iter()
        .zip(&refs)
        .map(|(ia, r)| {
            let options = Options::List(r);
            match ia.kind {
                0 => Ia::Na(IaNa {
                    iaid: ia.iaid,
                    t1: ia.t1,
                    t2: ia.t2,
                    options,
                }),
                1 => Ia::Ta(IaTa {
                    iaid: ia.iaid,
                    options,
                }),
                _ => Ia::Pd(IaPd {
                    iaid: ia.iaid,
                    t1: ia.t1,
                    t2: ia.t2,
                    options,
                }),
            }
        })
        .collect();
    let client_id = RawOption {
        code: OptionCode::CLIENTID,
        data: &spec.duid,
    };
    let base = LqBaseTime(FailoverTime(spec.base));
    let vss = spec.vss.as_deref().map(Vss);
    let reconf = spec.reconf.as_ref().map(|(t, k)| ReconfigureData {
        time: FailoverTime(*t),
        key: k,
    });
    let mut top: Vec<&dyn EmitOption> = vec![&client_id, &base];
    if let Some(v) = &vss {
        top.push(v);
    }
    if let Some(r) = &reconf {
        top.push(r);
    }
    top.extend(ias.iter().map(|ia| ia as &dyn EmitOption));
    f(ClientData {
        options: Options::List(&top),
    })
}

/// Emit → parse → equal → re-emit identical, with exact and short buffers.
fn check_round_trip(msg: &Failover<'_>, xid: u32, sent: u32) -> Result<(), TestCaseError> {
    let len = msg.buffer_len();
    let mut out = vec![0xa5; len];
    prop_assert_eq!(msg.emit(xid, FailoverTime(sent), &mut out), Ok(len));
    let mut short = vec![0xa5; len - 1];
    prop_assert_eq!(
        msg.emit(xid, FailoverTime(sent), &mut short),
        Err(Error::BufferTooSmall)
    );

    let raw = FailoverMessage::parse(&out).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(raw.transaction_id, xid);
    prop_assert_eq!(raw.sent_time.is_some(), raw.msg_type.is_failover());
    let typed = Failover::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&typed, msg);

    let mut again = vec![0xa5; typed.buffer_len()];
    prop_assert_eq!(typed.emit(xid, FailoverTime(sent), &mut again), Ok(len));
    prop_assert_eq!(&again, &out);
    let mut framed = vec![0xa5; raw.framed_len()];
    prop_assert_eq!(raw.emit_framed(&mut framed), Ok(len + 2));
    prop_assert_eq!(&framed[2..], &out[..]);
    Ok(())
}

fn params_strategy() -> impl Strategy<Value = (u16, u16, u32, u32, u32, u16, Option<String>)> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        proptest::option::of("\\PC{0,12}"),
    )
}

fn params(p: &(u16, u16, u32, u32, u32, u16, Option<String>)) -> ConnectParams<'_> {
    ConnectParams {
        protocol_version: ProtocolVersion {
            major: p.0,
            minor: p.1,
        },
        mclt: Mclt(p.2),
        keepalive_time: KeepaliveTime(p.3),
        max_unacked_bndupd: MaxUnackedBndupd(p.4),
        connect_flags: ConnectFlags(p.5),
        relationship_name: p.6.as_deref().map(RelationshipName),
    }
}

proptest! {
    #[test]
    fn connect_and_connectreply_round_trip(
        p in params_strategy(), xid in 0u32..=0xff_ffff, sent in any::<u32>(),
        reject in 1u16.., text in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        check_round_trip(&Failover::Connect(params(&p)), xid, sent)?;
        check_round_trip(&Failover::Connectreply(Connectreply::Accept(params(&p))), xid, sent)?;
        let s = StatusCodeOption { code: StatusCode(reject), message: &text };
        check_round_trip(&Failover::Connectreply(Connectreply::Reject(s)), xid, sent)?;
    }

    #[test]
    fn state_round_trips(
        state in any::<u8>(), flags in any::<u8>(), start in any::<u32>(),
        down in proptest::option::of(any::<u32>()), xid in 0u32..=0xff_ffff, sent in any::<u32>(),
    ) {
        let down = if state == 4 { Some(down.unwrap_or(start)) } else { down };
        let msg = Failover::State(State {
            server_state: ServerState(state),
            server_flags: ServerFlags(flags),
            start_time_of_state: StartTimeOfState(FailoverTime(start)),
            partner_down_time: down.map(|d| PartnerDownTime(FailoverTime(d))),
        });
        check_round_trip(&msg, xid, sent)?;
    }

    #[test]
    fn status_only_and_empty_messages_round_trip(
        status in proptest::option::of(status_strategy()), xid in 0u32..=0xff_ffff, sent in any::<u32>(),
    ) {
        let s = status.as_ref().map(|(c, m)| StatusCodeOption { code: StatusCode(*c), message: m });
        check_round_trip(&Failover::Disconnect(s), xid, sent)?;
        check_round_trip(&Failover::TlsReply(s), xid, sent)?;
        for unit in [
            Failover::StartTls, Failover::Poolreq, Failover::Poolresp, Failover::Updreq,
            Failover::Updreqall, Failover::Upddone, Failover::Contact,
        ] {
            check_round_trip(&unit, xid, sent)?;
        }
    }

    #[test]
    fn bndupd_and_bndreply_with_client_data_round_trip(
        spec in client_strategy(), xid in 0u32..=0xff_ffff, sent in any::<u32>(),
    ) {
        with_client_data(&spec, |cd| {
            let payload = BindingPayload::ClientData(cd);
            check_round_trip(&Failover::Bndupd(Bndupd { payload }), xid, sent)?;
            let reply = Bndreply { payload: Some(payload), status: None };
            check_round_trip(&Failover::Bndreply(reply), xid, sent)
        })?;
    }

    #[test]
    fn bndupd_with_bare_prefix_round_trips(
        lease in lease_strategy(), base in any::<u32>(),
        vss in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        xid in 0u32..=0xff_ffff, sent in any::<u32>(),
    ) {
        let info = BindingInfo {
            vss: vss.as_deref().map(Vss),
            lq_base_time: Some(LqBaseTime(FailoverTime(base))),
            ..info(&lease)
        };
        let list = info.to_list();
        let prefix = IaPrefix {
            preferred: lease.lifetimes.0,
            valid: lease.lifetimes.1,
            prefix_len: lease.prefix_len,
            prefix: Ipv6Addr::from(lease.addr),
            options: list.options(),
        };
        let msg = Failover::Bndupd(Bndupd { payload: BindingPayload::Prefix(prefix) });
        check_round_trip(&msg, xid, sent)?;
        let mut out = vec![0; msg.buffer_len()];
        msg.emit(xid, FailoverTime(sent), &mut out).unwrap();
        let (_, parsed) = Failover::parse_bytes(&out).unwrap();
        let Failover::Bndupd(Bndupd { payload }) = parsed else { panic!("{parsed:?}") };
        prop_assert_eq!(payload.prefix_info(), Some(Ok(info)));
    }

    #[test]
    fn failover_time_unwraps_near_its_reference(
        unix in EPOCH_UNIX..EPOCH_UNIX + (1 << 40), delta in -(1i64 << 31) + 1..(1i64 << 31),
    ) {
        let t = FailoverTime::from_unix(unix);
        let near = unix.saturating_add_signed(delta);
        prop_assert_eq!(t.to_unix(near), unix);
        prop_assert_eq!(FailoverTime::from_unix(near).wrapping_sub(t), i32::try_from(near as i64 - unix as i64).unwrap());
    }

    #[test]
    fn within_skew_is_symmetric(a in any::<u32>(), d in -10i32..10) {
        let (x, y) = (FailoverTime(a), FailoverTime(a.wrapping_add_signed(d)));
        prop_assert_eq!(FailoverTime::within_skew(x, y, 5), FailoverTime::within_skew(y, x, 5));
        prop_assert_eq!(FailoverTime::within_skew(x, y, 5), d.abs() <= 5);
    }
}
