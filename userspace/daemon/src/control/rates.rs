//! Packet rates for `tune show`: counter snapshots of the workers, one a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::report::WorkerView;

/// Interval of the counter snapshots that packet rates are computed from.
pub(super) const RATE_INTERVAL: Duration = Duration::from_secs(1);
/// A snapshot younger than this gives no meaningful rate.
const MIN_RATE_INTERVAL: Duration = Duration::from_millis(100);

/// Counter snapshots of the workers, one a second, for the rates of `tune show`.
#[derive(Debug, Default)]
pub(super) struct RateSampler {
    /// The newest snapshot and the one before it.
    last: Option<Snapshot>,
    prev: Option<Snapshot>,
}

#[derive(Debug)]
struct Snapshot {
    at: Instant,
    /// `(iface, queue)` → `(rx, tx)`.
    counts: HashMap<(String, u32), (u64, u64)>,
}

impl Snapshot {
    fn of(at: Instant, workers: &[WorkerView]) -> Self {
        Self {
            at,
            counts: workers
                .iter()
                .map(|w| ((w.iface.clone(), w.queue), (w.rx, w.tx)))
                .collect(),
        }
    }
}

/// Rates of one worker, packets per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rates {
    pub(super) rx: f64,
    pub(super) tx: f64,
}

impl RateSampler {
    /// Takes a snapshot if the newest is [`RATE_INTERVAL`] old (or there is none).
    pub(super) fn tick(&mut self, now: Instant, workers: impl FnOnce() -> Vec<WorkerView>) {
        let due = self
            .last
            .as_ref()
            .is_none_or(|s| now.saturating_duration_since(s.at) >= RATE_INTERVAL);
        if due {
            self.prev = self.last.take();
            self.last = Some(Snapshot::of(now, &workers()));
        }
    }

    /// The snapshot to measure from at `now`: the newest one at least [`RATE_INTERVAL`] old,
    /// else the oldest one at least [`MIN_RATE_INTERVAL`] old.
    fn baseline(&self, now: Instant) -> Option<&Snapshot> {
        let age = |s: &Snapshot| now.saturating_duration_since(s.at);
        let candidates = [self.last.as_ref(), self.prev.as_ref()];
        candidates
            .iter()
            .flatten()
            .find(|s| age(s) >= RATE_INTERVAL)
            .or_else(|| {
                candidates
                    .iter()
                    .rev()
                    .flatten()
                    .find(|s| age(s) >= MIN_RATE_INTERVAL)
            })
            .copied()
    }

    /// The measuring interval and each worker's rates (`None`: no baseline for it).
    pub(super) fn rates(
        &self,
        now: Instant,
        workers: &[WorkerView],
    ) -> (Option<Duration>, Vec<Option<Rates>>) {
        let Some(base) = self.baseline(now) else {
            return (None, vec![None; workers.len()]);
        };
        let interval = now.saturating_duration_since(base.at);
        let secs = interval.as_secs_f64();
        let rates = workers
            .iter()
            .map(|w| {
                let &(rx, tx) = base.counts.get(&(w.iface.clone(), w.queue))?;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "packet rates are shown with one decimal"
                )]
                let per_sec = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
                Some(Rates {
                    rx: per_sec(w.rx, rx),
                    tx: per_sec(w.tx, tx),
                })
            })
            .collect();
        (Some(interval), rates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(queue: u32, rx: u64, tx: u64) -> WorkerView {
        WorkerView {
            iface: "veth0".into(),
            queue,
            core: Some(usize::try_from(queue).unwrap()),
            rx,
            tx,
            dropped: 1,
            replies: tx,
        }
    }

    #[test]
    fn rates_computed_from_second_old_snapshot() {
        let t0 = Instant::now();
        let mut sampler = RateSampler::default();
        sampler.tick(t0, || vec![worker(0, 100, 50)]);
        // Too soon for a rate.
        let (interval, rates) = sampler.rates(t0, &[worker(0, 150, 60)]);
        assert_eq!((interval, rates), (None, vec![None]));
        // Not due: no new snapshot.
        sampler.tick(t0 + Duration::from_millis(500), || {
            panic!("sampled too early")
        });
        let t1 = t0 + Duration::from_secs(1);
        sampler.tick(t1, || vec![worker(0, 1100, 550)]);
        let now = t0 + Duration::from_millis(1500);
        let (interval, rates) = sampler.rates(now, &[worker(0, 1600, 800), worker(9, 5, 5)]);
        // The snapshot at t1 is only 0.5 s old: measured from t0.
        assert_eq!(interval, Some(Duration::from_millis(1500)));
        assert_eq!(
            rates[0],
            Some(Rates {
                rx: 1000.0,
                tx: 500.0
            })
        );
        assert_eq!(
            rates[1], None,
            "a worker absent from the snapshot has no rate"
        );
        let later = t1 + Duration::from_secs(2);
        let (interval, rates) = sampler.rates(later, &[worker(0, 3100, 550)]);
        assert_eq!(interval, Some(Duration::from_secs(2)));
        assert_eq!(
            rates[0],
            Some(Rates {
                rx: 1000.0,
                tx: 0.0
            })
        );
    }
}
