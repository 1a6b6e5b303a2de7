//! [`MemStore`]: a [`LeaseStore`] in memory, for tests and tools.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::vec::Vec;

use crate::{Binding, ClientKey, LeaseKind, LeaseStore};

/// A [`LeaseStore`] in memory: bindings ordered by (kind, address), plus a client index.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    bindings: BTreeMap<(LeaseKind, u128), Binding>,
    by_client: HashMap<ClientKey, Vec<(LeaseKind, u128)>>,
    /// When set, `put` fails once this many bindings are stored (to test "table full").
    capacity: Option<usize>,
}

/// The only way a [`MemStore`] write fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemStoreFull;

impl core::fmt::Display for MemStoreFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("lease table full")
    }
}

impl MemStore {
    /// An empty, unbounded store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that refuses new bindings beyond `capacity`.
    pub fn with_capacity_limit(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::default()
        }
    }

    /// Every binding, ordered by (kind, address).
    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }
}

impl LeaseStore for MemStore {
    type Error = MemStoreFull;

    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.bindings.get(&(kind, u128::from(addr))).copied()
    }

    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        for k in self.by_client.get(key).into_iter().flatten() {
            if let Some(b) = self.bindings.get(k) {
                f(b);
            }
        }
    }

    fn put(&mut self, binding: &Binding) -> Result<(), MemStoreFull> {
        let key = (binding.kind, u128::from(binding.addr));
        let old = self.bindings.get(&key).copied();
        if old.is_none() && self.capacity.is_some_and(|c| self.bindings.len() >= c) {
            return Err(MemStoreFull);
        }
        if let Some(old) = old.filter(|o| o.client() != binding.client())
            && let Some(list) = self.by_client.get_mut(&old.client())
        {
            list.retain(|k| *k != key);
            if list.is_empty() {
                self.by_client.remove(&old.client());
            }
        }
        if !binding.duid.is_empty() {
            let list = self.by_client.entry(binding.client()).or_default();
            if !list.contains(&key) {
                list.push(key);
            }
        }
        self.bindings.insert(key, *binding);
        Ok(())
    }

    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        let start = usize::try_from(cursor).unwrap_or(usize::MAX);
        let mut n = 0;
        for b in self.bindings.values().skip(start).take(max) {
            f(b);
            n += 1;
        }
        let next = start.saturating_add(n);
        (next < self.bindings.len()).then(|| u64::try_from(next).unwrap_or(u64::MAX))
    }

    fn len(&self) -> usize {
        self.bindings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindingStatus, DuidBuf, FailoverTime};

    fn active(addr: &str, duid: &[u8], iaid: u32) -> Binding {
        let mut b = Binding::free(LeaseKind::Address, addr.parse().unwrap(), 128, 0);
        b.status = BindingStatus::ACTIVE;
        b.duid = DuidBuf::new(duid).unwrap();
        b.iaid = iaid;
        b.state_expiration_time = FailoverTime(1000);
        b
    }

    fn client_addrs(s: &MemStore, key: &ClientKey) -> Vec<Ipv6Addr> {
        let mut v = Vec::new();
        s.for_client(key, &mut |b| v.push(b.addr));
        v.sort();
        v
    }

    #[test]
    fn put_then_get_and_client_lookup_find_the_binding() {
        let mut s = MemStore::new();
        let b = active("2001:db8::1", &[0, 3, 0, 1, 2], 7);
        s.put(&b).unwrap();
        assert_eq!(s.get(LeaseKind::Address, b.addr), Some(b));
        assert_eq!(s.get(LeaseKind::Prefix, b.addr), None);
        assert_eq!(client_addrs(&s, &b.client()), [b.addr]);
    }

    #[test]
    fn reassigning_an_address_moves_it_between_clients() {
        let mut s = MemStore::new();
        let a = active("2001:db8::1", &[0, 3, 0, 1, 2], 7);
        s.put(&a).unwrap();
        let b = active("2001:db8::1", &[0, 3, 0, 1, 9], 7);
        s.put(&b).unwrap();
        assert!(client_addrs(&s, &a.client()).is_empty());
        assert_eq!(client_addrs(&s, &b.client()), [b.addr]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn capacity_limit_refuses_new_bindings_but_allows_updates() {
        let mut s = MemStore::with_capacity_limit(1);
        let a = active("2001:db8::1", &[0, 3, 0, 1, 2], 7);
        s.put(&a).unwrap();
        assert_eq!(
            s.put(&active("2001:db8::2", &[0, 3, 0, 1, 2], 7)),
            Err(MemStoreFull)
        );
        let mut a2 = a;
        a2.valid = 99;
        assert_eq!(s.put(&a2), Ok(()));
    }

    #[test]
    fn scan_visits_everything_in_chunks() {
        let mut s = MemStore::new();
        for i in 1..=5u16 {
            s.put(&active(
                &format!("2001:db8::{i}"),
                &[0, 3, 0, 1, 2],
                u32::from(i),
            ))
            .unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            cursor = s.scan(c, 2, &mut |b| seen.push(b.iaid));
        }
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn expiry_is_judged_against_state_expiration_time() {
        let b = active("2001:db8::1", &[0, 3, 0, 1, 2], 7);
        assert!(b.is_active_at(FailoverTime(999)));
        assert!(!b.is_active_at(FailoverTime(1000)));
        assert!(b.has_expired_at(FailoverTime(1001)));
        assert!(!Binding::free(LeaseKind::Prefix, b.addr, 56, 0).has_expired_at(FailoverTime(5)));
    }

    #[test]
    fn duid_longer_than_130_bytes_is_refused() {
        assert!(DuidBuf::new(&[1; 130]).is_some());
        assert!(DuidBuf::new(&[1; 131]).is_none());
        assert_eq!(
            DuidBuf::new(&[1, 2]).unwrap(),
            DuidBuf::new(&[1, 2]).unwrap()
        );
        assert_ne!(
            DuidBuf::new(&[1, 2]).unwrap(),
            DuidBuf::new(&[1, 2, 0]).unwrap()
        );
    }
}
