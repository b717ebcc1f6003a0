//! The rate limiter conformance suite on Redis, when `TIDINGS_TEST_REDIS_URL` is set
//! (CI sets it); with it set, an unreachable Redis fails the tests.

use std::sync::Arc;

use tidings_cache_redis::RedisRateLimiter;
use tidings_conformance::rate_limiter_suite;
use tidings_notify::ratelimit::RateLimiter;

async fn fresh() -> Option<Arc<dyn RateLimiter>> {
    let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    let prefix = format!("test:{:016x}:", rand::random::<u64>());
    let limiter = RedisRateLimiter::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_REDIS_URL is set but Redis is unusable: {e}"));
    Some(Arc::new(limiter))
}

rate_limiter_suite!(fresh);
