//! The work queue conformance suite on PostgreSQL (when `TIDINGS_TEST_DATABASE_URL`
//! is set), each test in a schema of its own.

use std::sync::Arc;

use tidings_conformance::queue::SUITE_CONFIG;
use tidings_conformance::{queue_suite, TestQueue};
use tidings_platform::clock::SystemClock;
use tidings_platform::config::PostgresConfig;
use tidings_store_postgres::{drop_schema, PostgresQueue, PostgresStore};

struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(&url, &schema));
            }
        })
        .join();
    }
}

async fn fresh() -> Option<TestQueue> {
    let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    let schema = format!("q_{:016x}", rand::random::<u64>());
    let config = PostgresConfig {
        max_connections: 6,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, Some(&schema), &config)
        .await
        .unwrap_or_else(|e| {
            panic!("TIDINGS_TEST_DATABASE_URL is set but PostgreSQL is unusable: {e}")
        });
    let queue = PostgresQueue::new(Arc::new(store), Arc::new(SystemClock), SUITE_CONFIG);
    Some(TestQueue {
        queue: Arc::new(queue),
        guard: Box::new(SchemaGuard { url, schema }),
    })
}

queue_suite!(fresh);
