//! Pure rules deciding whether and when a delivery may go out: quiet hours in the
//! user's timezone, and retry backoff.

use chrono::{Duration as ChronoDuration, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use tidings_platform::model::preferences::parse_hh_mm;
use tidings_platform::model::QuietHours;

/// If `now_ms` falls inside the quiet hours, the instant (Unix ms) they end.
pub fn quiet_until(quiet: &QuietHours, now_ms: i64) -> Option<i64> {
    let tz: Tz = quiet.timezone.parse().ok()?;
    let start = i64::from(parse_hh_mm(&quiet.start)?);
    let end = i64::from(parse_hh_mm(&quiet.end)?);
    let now = tz.timestamp_millis_opt(now_ms).single()?;
    let minute = i64::from(now.hour()) * 60 + i64::from(now.minute());
    let inside = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    if !inside {
        return None;
    }
    // The window ends today, or tomorrow when it spans midnight and we are before it.
    let mut date = now.date_naive();
    if start > end && minute >= start {
        date = date.succ_opt()?;
    }
    let end_time = NaiveTime::from_hms_opt((end / 60) as u32, (end % 60) as u32, 0)?;
    let local_end = date.and_time(end_time);
    // A wall-clock time skipped by a DST jump resolves to the first valid instant after.
    let resolved = (0..=2).find_map(|h| {
        tz.from_local_datetime(&(local_end + ChronoDuration::hours(h)))
            .earliest()
    })?;
    Some(resolved.timestamp_millis())
}

/// Delay before retry `attempt` (1 = after the first failure): doubling from `base`,
/// capped at `max`, with up to a quarter taken off at random so a burst of failures
/// does not come back as a burst.
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64, jitter: f64) -> u64 {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = base_ms.saturating_mul(1u64 << exp).min(max_ms);
    let jitter = jitter.clamp(0.0, 1.0);
    raw - (raw as f64 * 0.25 * jitter) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(start: &str, end: &str, tz: &str) -> QuietHours {
        QuietHours {
            start: start.into(),
            end: end.into(),
            timezone: tz.into(),
        }
    }

    fn utc_ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn overnight_window_in_the_users_zone() {
        let quiet = q("22:00", "07:00", "Asia/Seoul"); // UTC+9
                                                       // 23:30 in Seoul is 14:30 UTC: quiet until 07:00 Seoul next day = 22:00 UTC.
        assert_eq!(
            quiet_until(&quiet, utc_ms("2026-03-10T14:30:00Z")),
            Some(utc_ms("2026-03-10T22:00:00Z"))
        );
        // 03:00 in Seoul (18:00 UTC the day before): quiet until 07:00 the same local day.
        assert_eq!(
            quiet_until(&quiet, utc_ms("2026-03-10T18:00:00Z")),
            Some(utc_ms("2026-03-10T22:00:00Z"))
        );
        // 12:00 in Seoul: not quiet.
        assert_eq!(quiet_until(&quiet, utc_ms("2026-03-10T03:00:00Z")), None);
        // The end minute itself is outside.
        assert_eq!(quiet_until(&quiet, utc_ms("2026-03-10T22:00:00Z")), None);
    }

    #[test]
    fn daytime_window() {
        let quiet = q("09:00", "17:00", "UTC");
        assert_eq!(
            quiet_until(&quiet, utc_ms("2026-01-01T12:00:00Z")),
            Some(utc_ms("2026-01-01T17:00:00Z"))
        );
        assert_eq!(quiet_until(&quiet, utc_ms("2026-01-01T08:59:00Z")), None);
    }

    #[test]
    fn dst_gap_resolves_forward() {
        // New York springs forward 2026-03-08 02:00 → 03:00; a window ending 02:30 ends
        // at the first valid instant after.
        let quiet = q("01:00", "02:30", "America/New_York");
        let end = quiet_until(&quiet, utc_ms("2026-03-08T06:30:00Z")).unwrap(); // 01:30 EST
        assert_eq!(end, utc_ms("2026-03-08T07:30:00Z")); // 03:30 EDT
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.0), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000, 0.0), 2000);
        assert_eq!(backoff_ms(4, 1000, 60_000, 0.0), 8000);
        assert_eq!(backoff_ms(20, 1000, 60_000, 0.0), 60_000);
        assert_eq!(backoff_ms(1, 1000, 60_000, 1.0), 750);
    }
}
