//! Update latency of binding sync (RFC 8156 §7): from the moment a committed change was handed
//! over for the partner — its client's Reply had gone out (lazy update, §4.3) — to the moment
//! the partner's BNDREPLY acknowledging that lease was processed, over the last
//! [`WINDOW_S`] seconds (`docs/failover.md` D50).
//!
//! Times are microseconds on a monotonic clock the caller reads ([`MonoUs`]); nothing here
//! reads a clock. The window is [`WINDOW_S`] histograms of one second each (hdrhistogram with
//! fixed bounds, allocated once): recording never allocates and never grows, the histogram of
//! a second is reset when the clock comes back to its slot, and [`UpdateLatency::summary`]
//! merges the ones still inside the window.

use std::fmt;

use hdrhistogram::Histogram;

/// Microseconds on a monotonic clock: any origin, but the same for every time given to one
/// `BindingSync` (the failover plane's start; the XDP workers' stamps are converted to it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonoUs(pub u64);

impl MonoUs {
    /// Microseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Seconds the window covers: the current second and the nine before it.
pub const WINDOW_S: u64 = 10;
/// The longest latency told apart (one hour); a longer one is recorded as this.
pub const MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits: values within 1 % of each other may share a bucket.
const SIGFIG: u8 = 2;
const US_PER_S: u64 = 1_000_000;

/// The latencies of one relationship's acknowledged updates, per second, over the last
/// [`WINDOW_S`] seconds (see the module docs).
pub struct UpdateLatency {
    /// Slot `s % WINDOW_S` holds the latencies recorded in second `s` of the clock (`None`:
    /// never used).
    slots: Vec<(Option<u64>, Histogram<u32>)>,
}

/// What [`UpdateLatency::summary`] reports: how many updates were acknowledged in the window,
/// and their latency percentiles (0 when none was).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Updates acknowledged in the window.
    pub count: u64,
    /// Median latency, µs (the highest value of its bucket: at most 1 % above the true one).
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// The longest, µs.
    pub max_us: u64,
}

fn histogram() -> Histogram<u32> {
    // Constant bounds that hdrhistogram accepts (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("constant, valid histogram bounds")
}

impl UpdateLatency {
    /// An empty window (about 130 KiB, allocated here once).
    pub fn new() -> Self {
        Self {
            slots: (0..WINDOW_S).map(|_| (None, histogram())).collect(),
        }
    }

    /// Records one update acknowledged at `now` that took `latency_us`.
    pub fn record(&mut self, now: MonoUs, latency_us: u64) {
        let second = now.0 / US_PER_S;
        let Some((at, h)) = usize::try_from(second % WINDOW_S)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        else {
            return;
        };
        if *at != Some(second) {
            h.reset();
            *at = Some(second);
        }
        h.saturating_record(latency_us.max(1));
    }

    /// The updates acknowledged within the last [`WINDOW_S`] seconds before `now` (the
    /// current second included).
    pub fn summary(&self, now: MonoUs) -> LatencySummary {
        let second = now.0 / US_PER_S;
        let mut merged = histogram();
        for (at, h) in &self.slots {
            if at.is_some_and(|s| s <= second && second - s < WINDOW_S) {
                // Same bounds: adding never needs to resize, so it cannot fail.
                let _ = merged.add(h);
            }
        }
        if merged.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: merged.len(),
            p50_us: merged.value_at_quantile(0.5),
            p99_us: merged.value_at_quantile(0.99),
            max_us: merged.max(),
        }
    }
}

impl Default for UpdateLatency {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UpdateLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the buckets: the seconds in use and how much each holds.
        f.debug_list()
            .entries(
                self.slots
                    .iter()
                    .filter_map(|(at, h)| at.map(|s| (s, h.len()))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = US_PER_S;

    /// Within the 1 % of two significant figures.
    fn near(got: u64, want: u64) -> bool {
        got.abs_diff(want) <= want / 100
    }

    #[test]
    fn percentiles_of_a_known_distribution_within_bucket_precision() {
        let mut l = UpdateLatency::new();
        // 1 000 updates at 1..=1000 ms, all in second 5.
        for ms in 1..=1000u64 {
            l.record(MonoUs(5 * S + ms), ms * 1000);
        }
        let s = l.summary(MonoUs(5 * S + 999_999));
        assert_eq!(s.count, 1000);
        assert!(near(s.p50_us, 500_000), "{s:?}");
        assert!(near(s.p99_us, 990_000), "{s:?}");
        assert!(near(s.max_us, 1_000_000), "{s:?}");
    }

    #[test]
    fn a_second_leaves_the_window_after_ten_seconds() {
        let mut l = UpdateLatency::new();
        l.record(MonoUs(3 * S), 2_000);
        l.record(MonoUs(4 * S + 10), 9_000);
        assert_eq!(l.summary(MonoUs(12 * S + S - 1)).count, 2, "seconds 3..=12");
        let s = l.summary(MonoUs(13 * S));
        assert_eq!(s.count, 1, "second 3 is out of 4..=13: {s:?}");
        assert!(near(s.max_us, 9_000), "{s:?}");
        assert_eq!(l.summary(MonoUs(14 * S)), LatencySummary::default());
    }

    #[test]
    fn a_slot_reused_ten_seconds_later_starts_empty() {
        let mut l = UpdateLatency::new();
        for _ in 0..100 {
            l.record(MonoUs(2 * S), 50_000);
        }
        // Second 12 uses the slot of second 2 again.
        l.record(MonoUs(12 * S), 1_000);
        let s = l.summary(MonoUs(12 * S));
        assert_eq!(s.count, 1, "{s:?}");
        assert!(near(s.p50_us, 1_000), "{s:?}");
    }

    #[test]
    fn a_latency_beyond_the_bound_is_kept_at_the_bound() {
        let mut l = UpdateLatency::new();
        l.record(MonoUs(0), u64::MAX);
        l.record(MonoUs(0), 0);
        let s = l.summary(MonoUs(0));
        assert_eq!(s.count, 2);
        assert!(near(s.max_us, MAX_US), "{s:?}");
    }
}
