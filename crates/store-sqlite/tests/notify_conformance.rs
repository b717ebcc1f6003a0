use std::any::Any;
use std::sync::Arc;

use tidings_conformance::notify_store_suite;
use tidings_notify::store::NotifyStore;
use tidings_platform::config::SqliteConfig;
use tidings_store_sqlite::SqliteStore;

async fn fresh() -> Option<(Arc<dyn NotifyStore>, Box<dyn Any + Send + Sync>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("notify.db"), &SqliteConfig::default())
        .expect("open sqlite");
    Some((Arc::new(store), Box::new(dir)))
}

notify_store_suite!(fresh);
