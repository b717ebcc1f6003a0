//! The storage conformance suite on PostgreSQL: runs when `TIDINGS_TEST_DATABASE_URL`
//! is set (CI sets it), each test in a schema of its own that is dropped afterwards.
//! With the variable set, an unreachable server fails the tests.

use std::sync::Arc;

use tidings_conformance::{account_store_suite, TestStore};
use tidings_platform::config::PostgresConfig;
use tidings_store_postgres::{PostgresStore, ScratchSchema};

async fn fresh() -> Option<TestStore> {
    let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    let schema = ScratchSchema::new(&url, "t");
    let config = PostgresConfig {
        max_connections: 4,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, Some(schema.name()), &config)
        .await
        .unwrap_or_else(|e| {
            panic!("TIDINGS_TEST_DATABASE_URL is set but PostgreSQL is unusable: {e}")
        });
    Some(TestStore {
        store: Arc::new(store),
        guard: Box::new(schema),
    })
}

account_store_suite!(fresh);
