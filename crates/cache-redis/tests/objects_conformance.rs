//! The object cache conformance suite on Redis, when `TIDINGS_TEST_REDIS_URL` is set.

use std::sync::Arc;

use tidings_cache_redis::RedisObjectCache;
use tidings_conformance::object_cache_suite;
use tidings_feed::objects::ObjectCache;

async fn fresh() -> Option<Arc<dyn ObjectCache>> {
    let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    let prefix = format!("test:{:016x}:", rand::random::<u64>());
    let cache = RedisObjectCache::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_REDIS_URL is set but Redis is unusable: {e}"));
    Some(Arc::new(cache))
}

object_cache_suite!(fresh);
