//! Failover time (RFC 8156 §3, §5.2): seconds since midnight (UTC), January 1, 2000, modulo
//! 2^32, and the ±5 s equality of RFC 8156 §7.1/§7.5.1.
//!
//! This module reads no clock: every "now" is passed in by the caller.

use core::cmp::Ordering;

/// The Unix time of the failover epoch, 2000-01-01T00:00:00Z.
pub const EPOCH_UNIX: u64 = 946_684_800;

/// The clock skew that still counts as "the same time" (RFC 8156 §6.1.2, §7.1, §7.5.1: 5 s).
pub const MAX_SKEW_SECS: u32 = 5;

/// The lifetime value meaning "infinity" (RFC 8415 §7.7).
pub const INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// The longest finite lifetime, in seconds, that fits the failover time arithmetic:
/// 2^30 − 1 s (34 years).
///
/// Absolute times are compared by serial-number arithmetic ([`FailoverTime::cmp_wrapping`]),
/// which is exact only for times less than 2^31 s apart; an expiry `now + lifetime` with a
/// lifetime of 2^31 s or more would compare as *earlier* than `now`, so a lease would be born
/// expired. RFC 8156 §4.4 also sends partner lifetimes beyond the client's (the RFC's example:
/// now + desired + ½ actual, plus the MCLT), so finite lifetimes are kept below 2^30.
pub const MAX_FINITE_LIFETIME: u32 = (1 << 30) - 1;

/// An absolute failover time: seconds since 2000-01-01T00:00:00Z, modulo 2^32 (RFC 8156 §3,
/// used by sent-time and every "absolute" OPTION_F_* time, and by OPTION_LQ_BASE_TIME,
/// RFC 7653 §6.3.1).
///
/// The value wraps (in 2136), so it deliberately does not implement `Ord`: compare with
/// [`FailoverTime::cmp_wrapping`], which orders two times by the shorter way around the circle
/// (serial-number arithmetic, as in RFC 1982).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FailoverTime(pub u32);

impl FailoverTime {
    /// The failover time of a Unix time (`secs` seconds since 1970-01-01T00:00:00Z).
    pub const fn from_unix(secs: u64) -> Self {
        // Truncation is the "modulo 2^32" of RFC 8156 §3; 2^64 is a multiple of 2^32, so the
        // wrapping subtraction keeps the result right even for times before 2000.
        Self(secs.wrapping_sub(EPOCH_UNIX) as u32)
    }

    /// The Unix time this failover time stands for, choosing among all the Unix times with
    /// the same value modulo 2^32 the one closest to `near_unix` (normally the local clock).
    /// Saturates at 0 for results before 1970.
    pub const fn to_unix(self, near_unix: u64) -> u64 {
        let near = Self::from_unix(near_unix);
        near_unix.saturating_add_signed(self.wrapping_sub(near) as i64)
    }

    /// `self - other` in seconds, taking the shorter way around the 2^32 circle: positive when
    /// `self` is later. Exact as long as the two times are less than 2^31 s (68 years) apart.
    pub const fn wrapping_sub(self, other: Self) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` moved `secs` seconds later, wrapping at 2^32.
    pub const fn wrapping_add(self, secs: u32) -> Self {
        Self(self.0.wrapping_add(secs))
    }

    /// When a lifetime of `secs` seconds starting at `self` ends, as a state-expiration-time
    /// (RFC 8156 §5.5.18): `FailoverTime(0)` ("no timeout") for [`INFINITE_LIFETIME`]; any
    /// other value is first clamped to `1..=`[`MAX_FINITE_LIFETIME`], so the result is always
    /// strictly later than `self`, and never 0 (0 means "not set": a sum that lands on 0 is
    /// moved 1 s later).
    pub const fn expiry_after(self, secs: u32) -> Self {
        if secs == INFINITE_LIFETIME {
            return Self(0);
        }
        let secs = if secs == 0 {
            1
        } else if secs > MAX_FINITE_LIFETIME {
            MAX_FINITE_LIFETIME
        } else {
            secs
        };
        let t = self.wrapping_add(secs);
        if t.0 == 0 { Self(1) } else { t }
    }

    /// Orders two times the shorter way around the 2^32 circle (no ±5 s tolerance).
    pub const fn cmp_wrapping(self, other: Self) -> Ordering {
        let d = self.wrapping_sub(other);
        if d < 0 {
            Ordering::Less
        } else if d > 0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }

    /// `true` when `a` and `b` are at most `max_skew` seconds apart: RFC 8156 §7.5.1 treats
    /// times within ±5 s ([`MAX_SKEW_SECS`]) as the same time.
    pub const fn within_skew(a: Self, b: Self, max_skew: u32) -> bool {
        a.wrapping_sub(b).unsigned_abs() <= max_skew
    }

    /// `true` when `self` is clearly later than `other`: later by more than
    /// [`MAX_SKEW_SECS`] (RFC 8156 §7.5.4 "clearly later").
    pub const fn is_clearly_after(self, other: Self) -> bool {
        self.wrapping_sub(other) > MAX_SKEW_SECS as i32
    }

    /// `true` when `self` is clearly earlier than `other` (by more than [`MAX_SKEW_SECS`]).
    pub const fn is_clearly_before(self, other: Self) -> bool {
        other.is_clearly_after(self)
    }

    /// Compares with the ±5 s tolerance of RFC 8156 §7.5.1: `Equal` when the two times are
    /// within [`MAX_SKEW_SECS`] of each other, else the wrapping order.
    pub const fn cmp_with_skew(self, other: Self) -> Ordering {
        if Self::within_skew(self, other, MAX_SKEW_SECS) {
            Ordering::Equal
        } else {
            self.cmp_wrapping(other)
        }
    }
}

impl From<u32> for FailoverTime {
    fn from(v: u32) -> Self {
        Self(v)
    }
}

impl From<FailoverTime> for u32 {
    fn from(v: FailoverTime) -> Self {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_unix_epoch_is_zero() {
        assert_eq!(FailoverTime::from_unix(EPOCH_UNIX), FailoverTime(0));
        assert_eq!(
            FailoverTime::from_unix(EPOCH_UNIX + 86_400),
            FailoverTime(86_400)
        );
    }

    #[test]
    fn from_unix_wraps_modulo_2_32() {
        let wrap = EPOCH_UNIX + (1u64 << 32);
        assert_eq!(FailoverTime::from_unix(wrap + 7), FailoverTime(7));
        assert_eq!(
            FailoverTime::from_unix(EPOCH_UNIX - 1),
            FailoverTime(u32::MAX)
        );
    }

    #[test]
    fn to_unix_unwraps_near_the_reference() {
        let now = 1_750_000_000; // 2025
        let t = FailoverTime::from_unix(now - 100);
        assert_eq!(t.to_unix(now), now - 100);
        assert_eq!(FailoverTime::from_unix(now + 100).to_unix(now), now + 100);
        // Across the 2136 wrap: a small value near a reference just before the wrap is after it.
        let wrap = EPOCH_UNIX + (1u64 << 32);
        assert_eq!(FailoverTime(10).to_unix(wrap - 10), wrap + 10);
        assert_eq!(FailoverTime(u32::MAX - 9).to_unix(wrap + 10), wrap - 10);
    }

    #[test]
    fn to_unix_saturates_before_1970() {
        assert_eq!(FailoverTime::from_unix(0).wrapping_add(0).to_unix(0), 0);
        assert_eq!(
            FailoverTime::from_unix(0).wrapping_add(u32::MAX).to_unix(0),
            0
        );
    }

    #[test]
    fn cmp_wrapping_orders_across_the_wrap() {
        assert_eq!(
            FailoverTime(5).cmp_wrapping(FailoverTime(u32::MAX - 5)),
            Ordering::Greater
        );
        assert_eq!(
            FailoverTime(u32::MAX).cmp_wrapping(FailoverTime(0)),
            Ordering::Less
        );
        assert_eq!(
            FailoverTime(42).cmp_wrapping(FailoverTime(42)),
            Ordering::Equal
        );
    }

    #[test]
    fn within_skew_accepts_five_seconds_rejects_six() {
        let t = FailoverTime(1000);
        assert!(FailoverTime::within_skew(
            t,
            t.wrapping_add(5),
            MAX_SKEW_SECS
        ));
        assert!(FailoverTime::within_skew(
            t.wrapping_add(5),
            t,
            MAX_SKEW_SECS
        ));
        assert!(!FailoverTime::within_skew(
            t,
            t.wrapping_add(6),
            MAX_SKEW_SECS
        ));
        assert!(FailoverTime::within_skew(
            FailoverTime(2),
            FailoverTime(u32::MAX - 2),
            5
        ));
    }

    #[test]
    fn expiry_after_is_always_later_and_zero_only_for_infinity() {
        assert_eq!(
            FailoverTime(7).expiry_after(INFINITE_LIFETIME),
            FailoverTime(0)
        );
        for now in [0, 1, 1000, (1 << 31) - 1, 1 << 31, u32::MAX - 1, u32::MAX] {
            let now = FailoverTime(now);
            for secs in [
                0,
                1,
                3600,
                MAX_FINITE_LIFETIME,
                1 << 30,
                1 << 31,
                u32::MAX - 1,
            ] {
                let end = now.expiry_after(secs);
                assert_ne!(end, FailoverTime(0), "{now:?} + {secs}");
                assert_eq!(end.cmp_wrapping(now), Ordering::Greater, "{now:?} + {secs}");
                assert!(end.wrapping_sub(now) as u32 <= MAX_FINITE_LIFETIME + 1);
            }
        }
    }

    #[test]
    fn cmp_with_skew_treats_close_times_as_equal() {
        let t = FailoverTime(1000);
        assert_eq!(t.cmp_with_skew(t.wrapping_add(4)), Ordering::Equal);
        assert_eq!(t.cmp_with_skew(t.wrapping_add(6)), Ordering::Less);
        assert!(t.wrapping_add(6).is_clearly_after(t));
        assert!(!t.wrapping_add(5).is_clearly_after(t));
        assert!(t.is_clearly_before(t.wrapping_add(6)));
    }
}
