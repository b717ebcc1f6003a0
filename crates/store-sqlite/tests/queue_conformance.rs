use std::sync::Arc;

use tidings_conformance::queue::SUITE_CONFIG;
use tidings_conformance::{queue_suite, TestQueue};
use tidings_platform::clock::SystemClock;
use tidings_platform::config::SqliteConfig;
use tidings_store_sqlite::{SqliteQueue, SqliteStore};

async fn fresh() -> Option<TestQueue> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("queue.db"), &SqliteConfig::default())
        .expect("open sqlite");
    let queue = SqliteQueue::new(Arc::new(store), Arc::new(SystemClock), SUITE_CONFIG);
    Some(TestQueue {
        queue: Arc::new(queue),
        guard: Box::new(dir),
    })
}

queue_suite!(fresh);
