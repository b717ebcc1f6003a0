//! Time as a dependency, so the logic that depends on it (ids, throttles, token
//! expiry) can be tested without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// A clock that moves only when told to.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }
    pub fn set_ms(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    pub fn advance_ms(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 in UTC with millisecond precision, the API's only time format.
pub fn rfc3339(ms: i64) -> String {
    // Every post, message and notification in a response carries a time, so the
    // common case (years 0000-9999) is written by hand: chrono's formatter goes
    // through `fmt` and was a visible share of a feed read.
    const MS_PER_DAY: i64 = 86_400_000;
    const YEAR_0: i64 = -62_167_219_200_000;
    const YEAR_10000: i64 = 253_402_300_800_000;
    if !(YEAR_0..YEAR_10000).contains(&ms) {
        return chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (sec, milli) = (rest / 1000, rest % 1000);
    let mut out = String::with_capacity(24);
    for (value, width, after) in [
        (y, 4, '-'),
        (m, 2, '-'),
        (d, 2, 'T'),
        (h, 2, ':'),
        (min, 2, ':'),
        (sec, 2, '.'),
        (milli, 3, 'Z'),
    ] {
        let mut digits = [b'0'; 4];
        let mut v = value;
        for i in (0..width).rev() {
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for &b in &digits[..width] {
            out.push(char::from(b));
        }
        out.push(after);
    }
    out
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_rfc3339(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    #[test]
    fn rfc3339_matches_chrono_everywhere() {
        let edges = [
            0,
            -1,
            1,
            951_782_400_000 - 1, // 2000-02-28T23:59:59.999Z, then a leap day
            951_868_800_000,
            4_107_542_400_000, // 2100-03-01: not a leap year
            -62_167_219_200_000,
            -62_167_219_200_001,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MIN,
            i64::MAX,
        ];
        for ms in edges {
            assert_eq!(rfc3339(ms), chrono_rfc3339(ms), "{ms}");
        }
        // A deterministic spread over the whole 0000-9999 range and beyond.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % 700_000_000_000_000) as i64 - 350_000_000_000_000;
            assert_eq!(rfc3339(ms), chrono_rfc3339(ms), "{ms}");
        }
        assert_eq!(rfc3339(1_795_599_285_123), "2026-11-25T09:34:45.123Z");
    }
}
