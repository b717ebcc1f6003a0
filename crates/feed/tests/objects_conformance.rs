//! The object cache conformance suite on the embedded default's memory cache.

use std::sync::Arc;

use tidings_conformance::object_cache_suite;
use tidings_feed::objects::{MemoryObjectCache, ObjectCache};

async fn fresh() -> Option<Arc<dyn ObjectCache>> {
    Some(Arc::new(MemoryObjectCache::new(10_000)))
}

object_cache_suite!(fresh);
