//! The hand-off mailbox of the XDP workers: a pool of parcels (2 KiB frame buffers allocated
//! at startup) and one bounded lock-free inbox per worker, with an eventfd to wake a worker
//! that sleeps in `poll()`. A frame whose shard another worker owns travels there in a parcel
//! (a request) and comes back in the same parcel (the reply); see [`super::worker`].

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

use crossbeam_queue::ArrayQueue;
use tandem_datapath::sys::eventfd::EventFd;

/// Size of a parcel: a whole request or reply frame handed between workers.
pub const PARCEL_LEN: usize = 2048;
/// Parcels allocated per worker at startup (the pool is shared).
pub(super) const PARCELS_PER_WORKER: usize = 1024;

/// Whether a parcel holds a request for the owner or a reply for the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParcelKind {
    Request,
    Reply,
}

/// A frame handed between workers.
#[derive(Debug)]
pub(super) struct Parcel {
    pub(super) kind: ParcelKind,
    /// The worker the request arrived on (which transmits the reply).
    pub(super) origin: usize,
    /// The interface (index in the interface table) it arrived on.
    pub(super) iface: usize,
    pub(super) len: usize,
    pub(super) buf: [u8; PARCEL_LEN],
}

/// One worker's inbox.
#[derive(Debug)]
pub(super) struct Inbox {
    pub(super) queue: ArrayQueue<Box<Parcel>>,
    /// Set while the worker may block in `poll()`: a producer then notifies `wake`.
    pub(super) sleeping: AtomicBool,
    pub(super) wake: EventFd,
}

impl Inbox {
    pub(super) fn new(capacity: usize) -> io::Result<Self> {
        Ok(Self {
            queue: ArrayQueue::new(capacity),
            sleeping: AtomicBool::new(false),
            wake: EventFd::new()?,
        })
    }

    /// Queues `parcel` and wakes the worker if it sleeps; gives the parcel back when full.
    pub(super) fn push(&self, parcel: Box<Parcel>) -> Result<(), Box<Parcel>> {
        self.queue.push(parcel)?;
        // Pairs with the fence in `ready_to_sleep`: either the sleeper sees the parcel, or we
        // see it sleeping.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake.notify();
        }
        Ok(())
    }

    /// Wakes the worker if it sleeps, after something other than a parcel was queued for it
    /// (a binding-sync request, `super::sync_queues`).
    pub(super) fn wake_if_sleeping(&self) {
        // Pairs with the fence in `ready_to_sleep`, as in `push`.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake.notify();
        }
    }

    /// Resets the eventfd counter.
    pub(super) fn drain_wake(&self) {
        self.wake.drain();
    }
}

/// What the workers share: the parcel pool and every inbox.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) pool: ArrayQueue<Box<Parcel>>,
    pub(super) inboxes: Vec<Inbox>,
}

impl Exchange {
    pub(super) fn new(workers: usize) -> io::Result<Self> {
        let total = workers.saturating_mul(PARCELS_PER_WORKER).max(1);
        let pool = ArrayQueue::new(total);
        for _ in 0..total {
            let _ = pool.push(Box::new(Parcel {
                kind: ParcelKind::Request,
                origin: 0,
                iface: 0,
                len: 0,
                buf: [0; PARCEL_LEN],
            }));
        }
        let inboxes = (0..workers)
            .map(|_| Inbox::new(total))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { pool, inboxes })
    }
}

/// Hand-off counters of one worker.
#[derive(Debug, Default)]
pub(super) struct HandoffStats {
    /// Requests this worker passed to the owner of their shard.
    pub(super) out: AtomicU64,
    /// Requests from other workers this worker answered.
    pub(super) served: AtomicU64,
    /// Replies from other workers this worker transmitted.
    pub(super) back: AtomicU64,
    /// Hand-offs that failed (no free parcel, full inbox, no spare frame).
    pub(super) lost: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_wakes_only_a_sleeping_worker_and_refuses_when_full() {
        let exchange = Exchange::new(1).unwrap();
        let inbox = Inbox::new(1).unwrap();
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        assert_eq!(inbox.wake.drain(), 0, "an awake worker was notified");
        let refused = inbox.push(exchange.pool.pop().unwrap());
        assert!(refused.is_err());
        let _ = inbox.queue.pop().unwrap();
        inbox.sleeping.store(true, Ordering::SeqCst);
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        assert_eq!(inbox.wake.drain(), 1, "a sleeping worker was not notified");
        let _ = inbox.queue.pop().unwrap();
        inbox.push(exchange.pool.pop().unwrap()).unwrap();
        inbox.drain_wake();
        assert_eq!(
            inbox.wake.drain(),
            0,
            "drain_wake left the eventfd readable"
        );
    }
}
