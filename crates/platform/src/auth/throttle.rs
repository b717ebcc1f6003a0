//! Slows down password guessing, per account and per client address.
//!
//! Per account: the first `free_failures` failures cost nothing; each later one locks
//! the account for a delay that doubles from `base_delay` up to `max_delay`. Per IP:
//! more than `ip_failures` failures inside `ip_window` lock that address until the
//! window ends. While locked, a login is refused before its password is checked, so a
//! locked-out guesser costs us no hashing. A success clears the account's record.
//!
//! State is in memory with a bounded number of entries; on a cluster each node keeps
//! its own, which still caps guesses at (nodes × limit).

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

use crate::ids::Id;

#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub base_delay_ms: i64,
    pub max_delay_ms: i64,
    pub ip_failures: u32,
    pub ip_window_ms: i64,
    /// Entries kept at most per map; the oldest-expiring are dropped past it.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 15 * 60_000,
            ip_failures: 50,
            ip_window_ms: 15 * 60_000,
            max_entries: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    failures: u32,
    /// Until when logins are refused (account), or when the window ends (IP).
    until_ms: i64,
}

pub struct LoginThrottle {
    config: ThrottleConfig,
    accounts: Mutex<HashMap<(Id, String), Record>>,
    ips: Mutex<HashMap<IpAddr, Record>>,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            accounts: Mutex::new(HashMap::new()),
            ips: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait_ms)` when this attempt must be refused without checking the password.
    pub fn check(
        &self,
        app: Id,
        username: &str,
        ip: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<(), i64> {
        if let Some(ip) = ip {
            if let Some(r) = self.ips.lock().get(&ip) {
                if r.failures >= self.config.ip_failures && r.until_ms > now_ms {
                    return Err(r.until_ms - now_ms);
                }
            }
        }
        if let Some(r) = self.accounts.lock().get(&(app, username.to_owned())) {
            if r.until_ms > now_ms {
                return Err(r.until_ms - now_ms);
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, app: Id, username: &str, ip: Option<IpAddr>, now_ms: i64) {
        let c = &self.config;
        {
            let mut accounts = self.accounts.lock();
            evict_if_full(&mut accounts, c.max_entries, now_ms);
            let r = accounts.entry((app, username.to_owned())).or_default();
            r.failures = r.failures.saturating_add(1);
            if r.failures > c.free_failures {
                let doublings = (r.failures - c.free_failures - 1).min(30);
                let delay = c
                    .base_delay_ms
                    .saturating_mul(1i64 << doublings)
                    .min(c.max_delay_ms);
                r.until_ms = now_ms + delay;
            } else {
                // Remember the failures for a while even without a lock-out.
                r.until_ms = r.until_ms.max(now_ms);
            }
        }
        if let Some(ip) = ip {
            let mut ips = self.ips.lock();
            evict_if_full(&mut ips, c.max_entries, now_ms);
            let r = ips.entry(ip).or_default();
            if r.until_ms <= now_ms {
                *r = Record {
                    failures: 0,
                    until_ms: now_ms + c.ip_window_ms,
                };
            }
            r.failures = r.failures.saturating_add(1);
        }
    }

    pub fn record_success(&self, app: Id, username: &str) {
        self.accounts.lock().remove(&(app, username.to_owned()));
    }
}

/// Keeps a map under `max`: first drops what has expired, then, if still full, the
/// entries closest to expiry.
fn evict_if_full<K: Clone + Eq + std::hash::Hash>(
    map: &mut HashMap<K, Record>,
    max: usize,
    now_ms: i64,
) {
    if map.len() < max {
        return;
    }
    // Keep failure counts for an hour past their lock so a slow guesser still escalates.
    map.retain(|_, r| r.until_ms + 3_600_000 > now_ms);
    if map.len() >= max {
        let mut by_expiry: Vec<(K, i64)> =
            map.iter().map(|(k, r)| (k.clone(), r.until_ms)).collect();
        by_expiry.sort_by_key(|(_, until)| *until);
        for (k, _) in by_expiry.into_iter().take(map.len() - max / 2) {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            free_failures: 2,
            base_delay_ms: 1000,
            max_delay_ms: 8000,
            ip_failures: 5,
            ip_window_ms: 60_000,
            max_entries: 1000,
        })
    }

    #[test]
    fn account_delay_doubles_after_free_failures() {
        let t = throttle();
        let app = Id(1);
        let mut now = 0;
        for _ in 0..2 {
            assert!(t.check(app, "bob", None, now).is_ok());
            t.record_failure(app, "bob", None, now);
        }
        assert!(t.check(app, "bob", None, now).is_ok());
        t.record_failure(app, "bob", None, now);
        assert_eq!(t.check(app, "bob", None, now), Err(1000));
        now += 1000;
        t.record_failure(app, "bob", None, now);
        assert_eq!(t.check(app, "bob", None, now), Err(2000));
        for _ in 0..10 {
            now += 10_000;
            t.record_failure(app, "bob", None, now);
        }
        assert_eq!(
            t.check(app, "bob", None, now),
            Err(8000),
            "capped at max_delay"
        );
        // Other accounts and other apps are unaffected; success clears.
        assert!(t.check(app, "alice", None, now).is_ok());
        assert!(t.check(Id(2), "bob", None, now).is_ok());
        t.record_success(app, "bob");
        assert!(t.check(app, "bob", None, now).is_ok());
    }

    #[test]
    fn ip_is_locked_for_the_window_across_accounts() {
        let t = throttle();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        for i in 0..5 {
            t.record_failure(Id(1), &format!("user{i}"), Some(ip), 100);
        }
        assert_eq!(t.check(Id(1), "fresh", Some(ip), 200), Err(59_900));
        assert!(t
            .check(Id(1), "fresh", Some("10.9.9.9".parse().unwrap()), 200)
            .is_ok());
        assert!(t.check(Id(1), "fresh", Some(ip), 60_100).is_ok());
    }

    #[test]
    fn maps_stay_bounded() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_entries: 100,
            ..ThrottleConfig::default()
        });
        for i in 0..1000 {
            t.record_failure(Id(1), &format!("u{i}"), None, i);
        }
        assert!(t.accounts.lock().len() <= 100);
    }
}
