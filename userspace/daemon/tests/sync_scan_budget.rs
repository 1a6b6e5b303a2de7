//! The binding synchronisation's scans are bounded per pump (`docs/failover.md` D28): a scan
//! for the bindings flagged "partner needs update" (§7.5.4's periodic scan, §8.8 on entering
//! NORMAL) finds few in a big store, and walking all of it in one pump held the event loop —
//! DHCP clients and the failover link unserved — for about a second per million bindings,
//! every minute. Now a pump visits at most one chunk ([`SCAN_CHUNK`]) and the driver pumps
//! again while `busy`; and a window of our BNDUPDs, which the driver now writes in one burst,
//! fits the link's output bound.
//!
//! Two real endpoints (`tandem-failover`) wired back to back reach NORMAL; the primary's
//! `BindingSync` runs over shards that count the bindings a scan visits.

use std::cell::Cell;
use std::io;
use std::net::Ipv6Addr;

use tandem::failover::latency::MonoUs;
use tandem::failover::sync::{BindingSync, LeaseShards, RESCAN_EVERY_MS, SCAN_CHUNK};
use tandem_failover::bndupd::{CLIENT_BNDUPD_MAX, ClientBndupd};
use tandem_failover::{
    Config, Endpoint, FailoverTime, Now, Role, StateName, Transmit, bndupd::decode_bndupd,
};
use tandem_lease::sync::{AckInfo, LeaseUpdate, Role as SyncRole};
use tandem_lease::{Binding, BindingStatus, DuidBuf, LeaseKind, MAX_DUID_LEN};
use tandem_proto::PartnerOutcome;

const WALL0: u32 = 800_000_000;

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall: FailoverTime(WALL0 + u32::try_from(ms / 1000).expect("test times are short")),
    }
}

/// One shard whose bindings are never flagged; counts what scans visit.
#[derive(Default)]
struct Counted {
    bindings: Vec<Binding>,
    visited: Cell<u64>,
}

impl LeaseShards for Counted {
    fn count(&self) -> u32 {
        1
    }
    fn shard_of_lease(&self, _: LeaseKind, _: Ipv6Addr, _: u8) -> Option<u32> {
        Some(0)
    }
    fn partner_update(
        &mut self,
        _: u32,
        _: FailoverTime,
        _: SyncRole,
        _: &LeaseUpdate,
        _: &mut dyn FnMut(&Binding),
    ) -> PartnerOutcome {
        PartnerOutcome::Accepted
    }
    fn partner_ack(
        &mut self,
        _: u32,
        _: FailoverTime,
        _: LeaseKind,
        _: Ipv6Addr,
        _: &AckInfo,
        _: &mut dyn FnMut(&Binding),
    ) {
    }
    fn scan(&self, _: u32, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        let start = usize::try_from(cursor).expect("a cursor of ours");
        let end = (start + max).min(self.bindings.len());
        for b in &self.bindings[start..end] {
            self.visited.set(self.visited.get() + 1);
            f(b);
        }
        (end < self.bindings.len()).then_some(end as u64)
    }
    fn rebalance(
        &mut self,
        _: u32,
        _: FailoverTime,
        _: u32,
        _: u64,
        _: &mut dyn FnMut(&Binding),
    ) -> bool {
        true
    }
    fn make_durable(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Side {
    ep: Endpoint,
    sync: BindingSync,
    shards: Counted,
}

/// Drives both sides until nothing moves, as the daemon's drive and busy-gated pump do.
fn settle(sides: &mut [Side; 2], now: Now) {
    for _ in 0..10_000 {
        let mut moved = false;
        for i in 0..2 {
            let mut frames = Vec::new();
            {
                let s = &mut sides[i];
                while s.ep.poll_persist().is_some() {
                    s.ep.handle_persisted();
                }
                while let Some(t) = s.ep.poll_transmit() {
                    frames.push(t);
                }
                while let Some(e) = s.ep.poll_event() {
                    s.sync.on_event(&e, now);
                }
                while let Some(b) = s.ep.poll_binding() {
                    s.sync.input(b);
                    moved = true;
                }
                if s.sync.busy(&s.ep, now) {
                    s.sync
                        .pump(&mut s.ep, &mut s.shards, now, MonoUs(now.mono_ms * 1000));
                    moved = true;
                }
            }
            for t in frames {
                moved = true;
                if let Transmit::Frame(f) = t {
                    sides[1 - i].ep.handle_message(now, &f[2..]);
                }
            }
        }
        if !moved {
            return;
        }
    }
    panic!("the pair does not settle");
}

fn pair_in_normal() -> [Side; 2] {
    let side = |role| Side {
        ep: Endpoint::new(Config::new(role, "t"), None, at(0)).expect("a valid configuration"),
        sync: BindingSync::new(role, 10, 1024),
        shards: Counted::default(),
    };
    let mut sides = [side(Role::Primary), side(Role::Secondary)];
    sides[1].ep.handle_connected(at(0));
    sides[0].ep.handle_connected(at(0));
    settle(&mut sides, at(0));
    for s in &sides {
        assert_eq!(s.ep.state().name(), StateName::Normal);
    }
    sides
}

/// An ACTIVE address the partner has acknowledged (no "partner needs update").
fn acked(n: u32) -> Binding {
    let addr = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 | u128::from(n));
    let mut b = Binding::free(LeaseKind::Address, addr, 128, 0);
    b.status = BindingStatus::ACTIVE;
    b.duid = DuidBuf::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]).expect("a 10-octet DUID");
    b.iaid = n;
    b
}

#[test]
fn a_periodic_scan_visits_one_chunk_per_pump_7_5_4() {
    let mut sides = pair_in_normal();
    let chunks = 8;
    let n = u32::try_from(chunks * SCAN_CHUNK).unwrap();
    let [p, _] = &mut sides;
    p.shards.bindings = (0..n).map(acked).collect();
    let scans_before = p.sync.counters().scans;
    // The periodic scan is due (§7.5.4): the first pump starts it.
    let now = at(RESCAN_EVERY_MS + 1000);
    p.sync
        .pump(&mut p.ep, &mut p.shards, now, MonoUs(now.mono_ms * 1000));
    assert_eq!(
        p.shards.visited.get(),
        u64::try_from(SCAN_CHUNK).unwrap(),
        "one chunk, not the whole store, in one pump"
    );
    let mut pumps = 1;
    while p.sync.busy(&p.ep, now) {
        let before = p.shards.visited.get();
        p.sync
            .pump(&mut p.ep, &mut p.shards, now, MonoUs(now.mono_ms * 1000));
        assert!(p.shards.visited.get() - before <= u64::try_from(SCAN_CHUNK).unwrap());
        pumps += 1;
        assert!(pumps <= chunks + 1, "the scan ends");
    }
    assert_eq!(
        p.shards.visited.get(),
        u64::from(n),
        "every binding visited once"
    );
    assert_eq!(p.sync.counters().scans, scans_before + 1);
    assert_eq!(
        p.ep.unacked_updates(),
        0,
        "nothing was flagged, nothing sent"
    );
}

/// The driver writes a window of BNDUPDs in one burst: the default MAX_UNACKED_BNDUPD of the
/// largest BNDUPD we send (one client's `CLIENT_BNDUPD_MAX` bindings, D61, a DUID of the
/// longest length) stays well under what the link lets pile up unwritten before it gives up on
/// the peer.
#[test]
fn a_default_window_of_our_largest_bndupds_fits_the_link_output_bound_6_1_1() {
    let mut b = acked(1);
    b.duid = DuidBuf::new(&[0xab; MAX_DUID_LEN]).unwrap();
    b.cltt = FailoverTime(WALL0);
    b.start_time_of_state = FailoverTime(WALL0);
    b.state_expiration_time = FailoverTime(WALL0 + 3600);
    b.partner_lifetime = FailoverTime(WALL0 + 5400);
    let bindings: Vec<_> = (0..CLIENT_BNDUPD_MAX as u32)
        .map(|i| {
            let mut x = b;
            x.iaid = i;
            x.addr = Ipv6Addr::from(u128::from(b.addr) + u128::from(i));
            x
        })
        .collect();
    let m = ClientBndupd::new(&bindings, FailoverTime(WALL0)).unwrap();
    let mut buf = vec![0u8; 65_536];
    let len = m.emit(7, &mut buf).unwrap();
    assert_eq!(
        decode_bndupd(&buf[..len]).unwrap().lease_count(),
        CLIENT_BNDUPD_MAX
    );
    // The frame: 2 octets of length, then the message.
    let window = usize::try_from(tandem_config::DEFAULT_MAX_UNACKED_BNDUPD).unwrap();
    let burst = window * (2 + len);
    assert!(
        burst * 4 <= tandem_datapath::link::MAX_PENDING_OUTPUT,
        "{window} × {len} octets = {burst}"
    );
}
