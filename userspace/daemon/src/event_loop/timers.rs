//! Deadlines by key, earliest first: the timers of the event loop.
//!
//! Each key has at most one deadline; setting it again moves it. The loop sleeps until
//! [`Timers::next_deadline`] and then takes every due key with [`Timers::pop_due`]. Keys due at
//! the same instant come out in the order they were set.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines by key (see the module docs).
#[derive(Debug)]
pub struct Timers<K> {
    /// `(deadline, sequence number)` → key, ordered by deadline.
    queue: BTreeMap<(Instant, u64), K>,
    /// Key → its entry in `queue`.
    entries: HashMap<K, (Instant, u64)>,
    /// Next sequence number: orders equal deadlines by when they were set.
    seq: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Self {
            queue: BTreeMap::new(),
            entries: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Copy + Eq + Hash> Timers<K> {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to fire at `at`, replacing its earlier deadline if it had one.
    pub fn set(&mut self, key: K, at: Instant) {
        self.cancel(key);
        let entry = (at, self.seq);
        self.seq = self.seq.wrapping_add(1);
        self.queue.insert(entry, key);
        self.entries.insert(key, entry);
    }

    /// Removes the deadline of `key`; the deadline it had, if any.
    pub fn cancel(&mut self, key: K) -> Option<Instant> {
        let entry = self.entries.remove(&key)?;
        self.queue.remove(&entry);
        Some(entry.0)
    }

    /// The deadline of `key`, if it has one.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.entries.get(&key).map(|&(at, _)| at)
    }

    /// The earliest deadline of all.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|&(at, _)| at)
    }

    /// Removes and returns the key with the earliest deadline if that is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let first = self.queue.first_entry()?;
        if first.key().0 > now {
            return None;
        }
        let key = *first.get();
        first.remove();
        self.entries.remove(&key);
        Some(key)
    }

    /// The number of keys with a deadline.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timers_due_keys_pop_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set('c', t0 + ms(30));
        timers.set('a', t0 + ms(10));
        timers.set('b', t0 + ms(20));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.next_deadline(), Some(t0 + ms(10)));
        assert_eq!(timers.pop_due(t0 + ms(5)), None, "nothing due yet");
        assert_eq!(timers.pop_due(t0 + ms(20)), Some('a'));
        assert_eq!(timers.pop_due(t0 + ms(20)), Some('b'));
        assert_eq!(timers.pop_due(t0 + ms(20)), None);
        assert_eq!(timers.next_deadline(), Some(t0 + ms(30)));
        assert_eq!(timers.pop_due(t0 + ms(99)), Some('c'));
        assert!(timers.is_empty());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn timers_set_again_moves_the_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set(1, t0 + ms(10));
        timers.set(2, t0 + ms(20));
        timers.set(1, t0 + ms(30));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.deadline(1), Some(t0 + ms(30)));
        assert_eq!(timers.pop_due(t0 + ms(25)), Some(2));
        assert_eq!(
            timers.pop_due(t0 + ms(25)),
            None,
            "the old deadline of 1 is gone"
        );
        assert_eq!(timers.pop_due(t0 + ms(30)), Some(1));
    }

    #[test]
    fn timers_cancel_removes_only_that_key() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set("x", t0);
        timers.set("y", t0);
        assert_eq!(timers.cancel("x"), Some(t0));
        assert_eq!(timers.cancel("x"), None);
        assert_eq!(timers.deadline("x"), None);
        assert_eq!(timers.pop_due(t0), Some("y"));
        assert_eq!(timers.pop_due(t0), None);
    }

    #[test]
    fn timers_equal_deadlines_fire_in_the_order_set() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for k in [3, 1, 2] {
            timers.set(k, t0);
        }
        let order: Vec<_> = std::iter::from_fn(|| timers.pop_due(t0)).collect();
        assert_eq!(order, [3, 1, 2]);
    }
}
