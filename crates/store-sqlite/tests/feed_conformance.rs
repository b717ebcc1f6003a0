use std::any::Any;
use std::sync::Arc;

use tidings_conformance::feed_store_suite;
use tidings_feed::store::FeedStore;
use tidings_platform::config::SqliteConfig;
use tidings_store_sqlite::SqliteStore;

async fn fresh() -> Option<(Arc<dyn FeedStore>, Box<dyn Any + Send + Sync>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("feed.db"), &SqliteConfig::default())
        .expect("open sqlite");
    Some((Arc::new(store), Box::new(dir)))
}

feed_store_suite!(fresh);
