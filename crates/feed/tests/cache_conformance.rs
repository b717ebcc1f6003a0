//! The feed cache conformance suite on the embedded default's memory cache.

use std::sync::Arc;

use tidings_conformance::feed_cache_suite;
use tidings_feed::cache::{FeedCache, MemoryFeedCache};

async fn fresh() -> Option<Arc<dyn FeedCache>> {
    Some(Arc::new(MemoryFeedCache::new(10_000)))
}

feed_cache_suite!(fresh);
