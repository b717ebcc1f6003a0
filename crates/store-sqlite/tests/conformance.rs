use std::sync::Arc;

use tidings_conformance::{account_store_suite, TestStore};
use tidings_platform::config::SqliteConfig;
use tidings_store_sqlite::SqliteStore;

async fn fresh() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"), &SqliteConfig::default())
        .expect("open sqlite");
    Some(TestStore {
        store: Arc::new(store),
        guard: Box::new(dir),
    })
}

account_store_suite!(fresh);
