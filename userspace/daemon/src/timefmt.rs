//! Wall-clock time for leases: the clock in Unix seconds ([`unix_now`]) and its formatting
//! for lease listings, Unix seconds → RFC 3339 UTC, by hand (no time crate in the tree).

use tandem_lease::FailoverTime;

/// Seconds since 1970-01-01T00:00:00Z by the system clock (0 if it is set before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The civil (proleptic Gregorian) date of `days` days since 1970-01-01: `(year, month 1..=12,
/// day 1..=31)`. Howard Hinnant's `civil_from_days`, for days ≥ 0.
pub fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + u64::from(month <= 2);
    // Both fit: day ≤ 31, month ≤ 12.
    (
        year,
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

/// `secs` seconds since 1970-01-01T00:00:00Z as RFC 3339 UTC, e.g. `2026-11-29T16:29:21Z`.
pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An RFC 8156 §3 time as RFC 3339 UTC, resolving the 2^32 wrap around `now_unix`; `None` for
/// `FailoverTime(0)`, which the lease model uses for "not set".
pub fn failover_rfc3339(t: FailoverTime, now_unix: u64) -> Option<String> {
    (t.0 != 0).then(|| rfc3339(t.to_unix(now_unix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_epoch_formatted() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rfc3339_known_instants_formatted() {
        // `date -u -d @946684800`, `@951782400`, `@1709210096`, `@4102444799`.
        assert_eq!(rfc3339(946_684_800), "2000-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn civil_from_days_every_day_follows_the_previous() {
        // Walk 1970..2400 day by day: each date is the successor of the previous one.
        let days_in = |y: u64, m: u32| match m {
            2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for d in 1..157_000 {
            let (y, m, dd) = civil_from_days(d);
            let (py, pm, pd) = prev;
            let expected = if pd < days_in(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, dd), expected, "day {d}");
            prev = (y, m, dd);
        }
    }

    #[test]
    fn failover_rfc3339_unset_is_none() {
        assert_eq!(failover_rfc3339(FailoverTime(0), 1_700_000_000), None);
        assert_eq!(
            failover_rfc3339(FailoverTime(86_400), 1_700_000_000).as_deref(),
            Some("2000-01-02T00:00:00Z")
        );
    }
}
