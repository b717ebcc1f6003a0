//! The work queue conformance suite on PostgreSQL (when `TIDINGS_TEST_DATABASE_URL`
//! is set), each test in a schema of its own.

use std::sync::Arc;

use tidings_conformance::queue::SUITE_CONFIG;
use tidings_conformance::{queue_suite, TestQueue};
use tidings_platform::clock::SystemClock;
use tidings_platform::config::PostgresConfig;
use tidings_store_postgres::{PostgresQueue, PostgresStore, ScratchSchema};

async fn fresh() -> Option<TestQueue> {
    let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    let schema = ScratchSchema::new(&url, "q");
    let config = PostgresConfig {
        max_connections: 6,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, Some(schema.name()), &config)
        .await
        .unwrap_or_else(|e| {
            panic!("TIDINGS_TEST_DATABASE_URL is set but PostgreSQL is unusable: {e}")
        });
    let queue = PostgresQueue::new(Arc::new(store), Arc::new(SystemClock), SUITE_CONFIG);
    Some(TestQueue {
        queue: Arc::new(queue),
        guard: Box::new(schema),
    })
}

queue_suite!(fresh);
