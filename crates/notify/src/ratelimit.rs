//! Per-user, per-channel send limits. Fixed windows: cheap, and the same arithmetic
//! works in memory (one node) and in Redis (many nodes agreeing).

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one event under `key` in the window containing `now_ms` and says whether
    /// it is within `max` for that window.
    async fn admit(&self, key: &str, max: u32, window_ms: i64, now_ms: i64) -> bool;
}

/// One node's counters, bounded: windows that have ended are dropped as new ones open.
#[derive(Default)]
pub struct MemoryRateLimiter {
    counters: Mutex<HashMap<String, (i64, u32)>>,
}

const MAX_KEYS: usize = 1_000_000;

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn admit(&self, key: &str, max: u32, window_ms: i64, now_ms: i64) -> bool {
        let window = now_ms.div_euclid(window_ms.max(1));
        let mut counters = self.counters.lock();
        if counters.len() >= MAX_KEYS {
            counters.retain(|_, (w, _)| *w >= window);
        }
        let entry = counters.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn window_counts_and_resets() {
        let limiter = MemoryRateLimiter::default();
        for _ in 0..3 {
            assert!(limiter.admit("u1:push", 3, 1000, 10).await);
        }
        assert!(!limiter.admit("u1:push", 3, 1000, 20).await);
        assert!(
            limiter.admit("u2:push", 3, 1000, 20).await,
            "keys are separate"
        );
        assert!(
            limiter.admit("u1:push", 3, 1000, 1000).await,
            "a new window starts fresh"
        );
    }
}
