//! Per-key rate limits shared by every node.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tidings_notify::ratelimit::RateLimiter;

/// Fixed-window counters in Redis: one `INCR` and, for a new window, a `PEXPIRE`, in
/// one round trip. Keys are `{prefix}rl:{key}:{window}` and expire with their window.
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisRateLimiter {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let conn = crate::connect(url).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn admit(&self, key: &str, max: u32, window_ms: i64, now_ms: i64) -> bool {
        let window_ms = window_ms.max(1);
        let window = now_ms.div_euclid(window_ms);
        let redis_key = format!("{}rl:{key}:{window}", self.prefix);
        // Expire a little after the window so a late increment cannot revive it.
        let ttl = window_ms + 1_000;
        let mut conn = self.conn.clone();
        let result: Result<(i64, i64), redis::RedisError> = redis::pipe()
            .atomic()
            .incr(&redis_key, 1)
            .pexpire(&redis_key, ttl)
            .query_async(&mut conn)
            .await;
        match result {
            Ok((count, _)) => count <= i64::from(max),
            Err(e) => {
                // Failing open: a Redis outage must not silence every notification;
                // it is logged so the operator sees limits are not being applied.
                tracing::warn!(error = %e, "rate limit check failed; admitting");
                true
            }
        }
    }
}
