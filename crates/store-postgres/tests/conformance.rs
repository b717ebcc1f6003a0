//! The storage conformance suite on PostgreSQL: runs when `TIDINGS_TEST_DATABASE_URL`
//! is set (CI sets it), each test in a schema of its own that is dropped afterwards.
//! With the variable set, an unreachable server fails the tests.

use std::sync::Arc;

use tidings_conformance::{account_store_suite, TestStore};
use tidings_platform::config::PostgresConfig;
use tidings_store_postgres::{drop_schema, PostgresStore};

struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A fresh runtime on its own thread: the test's runtime may be winding down.
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

async fn fresh() -> Option<TestStore> {
    let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    let schema = format!("t_{:016x}", rand::random::<u64>());
    let config = PostgresConfig {
        max_connections: 4,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, Some(&schema), &config)
        .await
        .unwrap_or_else(|e| {
            panic!("TIDINGS_TEST_DATABASE_URL is set but PostgreSQL is unusable: {e}")
        });
    Some(TestStore {
        store: Arc::new(store),
        guard: Box::new(SchemaGuard { url, schema }),
    })
}

account_store_suite!(fresh);
