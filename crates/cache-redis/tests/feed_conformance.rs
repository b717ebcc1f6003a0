//! The feed cache conformance suite on Redis, when `TIDINGS_TEST_REDIS_URL` is set
//! (CI sets it); each test under a prefix of its own.

use std::sync::Arc;

use tidings_cache_redis::RedisFeedCache;
use tidings_conformance::feed_cache_suite;
use tidings_feed::cache::FeedCache;

async fn fresh() -> Option<Arc<dyn FeedCache>> {
    let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    let prefix = format!("test:{:016x}:", rand::random::<u64>());
    let cache = RedisFeedCache::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_REDIS_URL is set but Redis is unusable: {e}"));
    Some(Arc::new(cache))
}

feed_cache_suite!(fresh);
