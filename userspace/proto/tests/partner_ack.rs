//! RFC 8156 §7.7 on the sender of a BNDUPD: `Engine::partner_ack` stores what the partner's
//! BNDREPLY acknowledged, and writes the store only when that changes the binding. A resync
//! (§8.5.2: UPDREQALL, every binding resent) acknowledges a table the partner had already
//! acknowledged before; those acks must not rewrite (journal, CRC, dirty pages to msync) every
//! binding of the primary's store.

mod common;

use common::*;
use tandem_lease::sync::{AckInfo, partner_lifetime_to_send};
use tandem_lease::{
    Binding, BindingFlags, BindingStatus, ClientKey, DuidBuf, FailoverTime, LeaseKind, LeaseStore,
    MemStore,
};
use tandem_proto::Engine;

/// A [`MemStore`] that counts writes.
#[derive(Debug, Default)]
struct PutCounting {
    inner: MemStore,
    puts: usize,
}

impl LeaseStore for PutCounting {
    type Error = <MemStore as LeaseStore>::Error;
    fn get(&self, kind: LeaseKind, addr: std::net::Ipv6Addr) -> Option<Binding> {
        self.inner.get(kind, addr)
    }
    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        self.inner.for_client(key, f);
    }
    fn put(&mut self, binding: &Binding) -> Result<(), Self::Error> {
        self.puts += 1;
        self.inner.put(binding)
    }
    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        self.inner.scan(cursor, max, f)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

const NOW: FailoverTime = FailoverTime(1_000_000);

/// An ACTIVE lease of client 7 whose update the partner acknowledged with partner lifetime
/// `acked` (nothing pending: partner lifetime 0, no UPDATE_PENDING).
fn acked_lease(acked: FailoverTime) -> Binding {
    let mut b = Binding::free(LeaseKind::Address, a("2001:db8:1::102"), 128, 0);
    b.status = BindingStatus::ACTIVE;
    b.duid = DuidBuf::new(&client_duid(7)).expect("a 10-octet DUID");
    b.iaid = 1;
    b.cltt = FailoverTime(NOW.0 - 100);
    b.start_time_of_state = b.cltt;
    b.state_expiration_time = FailoverTime(b.cltt.0 + 7200);
    b.acked_partner_lifetime = acked;
    b
}

/// What the partner's BNDREPLY says when it accepts the BNDUPD of `b` as sent (§7.6, §7.7).
fn ack_of(b: &Binding) -> AckInfo {
    AckInfo {
        status: b.status,
        start_time_of_state: b.start_time_of_state,
        state_expiration_time: Some(b.state_expiration_time),
        partner_lifetime_sent: partner_lifetime_to_send(b),
        client: Some(b.duid),
    }
}

#[test]
fn an_ack_of_a_binding_already_acknowledged_writes_nothing_7_7() {
    let mut engine = Engine::new(config(), SERVER_DUID.to_vec());
    let b = acked_lease(FailoverTime(NOW.0 + 10_000));
    let mut store = PutCounting::default();
    store.put(&b).unwrap();
    store.puts = 0;
    // A resend (UPDREQALL) carries the acknowledged lifetime again; the partner echoes it.
    let current = engine.partner_ack(NOW, b.kind, b.addr, &ack_of(&b), &mut store);
    assert!(current, "the ack is of the binding as stored");
    assert_eq!(store.puts, 0, "nothing changed, nothing written");
    assert_eq!(store.get(b.kind, b.addr), Some(b));
    assert!(engine.changes().is_empty());
}

#[test]
fn an_ack_that_changes_the_binding_is_written_7_7() {
    let mut engine = Engine::new(config(), SERVER_DUID.to_vec());
    // A lease granted since the last ack: pending, with a new partner lifetime to send.
    let mut b = acked_lease(FailoverTime(NOW.0 + 10_000));
    b.partner_lifetime = FailoverTime(NOW.0 + 12_000);
    b.flags.set(BindingFlags::UPDATE_PENDING, true);
    let mut store = PutCounting::default();
    store.put(&b).unwrap();
    store.puts = 0;
    assert!(engine.partner_ack(NOW, b.kind, b.addr, &ack_of(&b), &mut store));
    assert_eq!(store.puts, 1);
    let now_stored = store.get(b.kind, b.addr).unwrap();
    assert!(!now_stored.flags.contains(BindingFlags::UPDATE_PENDING));
    assert_eq!(now_stored.partner_lifetime, FailoverTime(0));
    assert_eq!(
        now_stored.acked_partner_lifetime,
        FailoverTime(NOW.0 + 12_000)
    );
    // An ack of an older update of a binding that moved on stores only the lifetime the
    // partner now holds (D24), and writes it since it changed.
    let mut older = now_stored;
    older.acked_partner_lifetime = FailoverTime(NOW.0 + 11_000);
    let mut stale = ack_of(&older);
    stale.start_time_of_state = FailoverTime(older.start_time_of_state.0 - 50);
    store.puts = 0;
    assert!(!engine.partner_ack(NOW, b.kind, b.addr, &stale, &mut store));
    assert_eq!(store.puts, 1);
    assert_eq!(
        store.get(b.kind, b.addr).unwrap().acked_partner_lifetime,
        FailoverTime(NOW.0 + 11_000)
    );
}
