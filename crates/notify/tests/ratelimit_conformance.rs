//! The rate limiter conformance suite on the in-memory limiter of the embedded default.

use std::sync::Arc;

use tidings_conformance::rate_limiter_suite;
use tidings_notify::ratelimit::{MemoryRateLimiter, RateLimiter};

async fn fresh() -> Option<Arc<dyn RateLimiter>> {
    Some(Arc::new(MemoryRateLimiter::default()))
}

rate_limiter_suite!(fresh);
