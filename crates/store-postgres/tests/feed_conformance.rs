//! The feed store conformance suite on PostgreSQL (when
//! `TIDINGS_TEST_DATABASE_URL` is set), each test in a schema of its own.

use std::any::Any;
use std::sync::Arc;

use tidings_conformance::feed_store_suite;
use tidings_feed::store::FeedStore;
use tidings_platform::config::PostgresConfig;
use tidings_store_postgres::{PostgresStore, ScratchSchema};

async fn fresh() -> Option<(Arc<dyn FeedStore>, Box<dyn Any + Send + Sync>)> {
    let url = std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    let schema = ScratchSchema::new(&url, "f");
    let config = PostgresConfig {
        max_connections: 4,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, Some(schema.name()), &config)
        .await
        .unwrap_or_else(|e| {
            panic!("TIDINGS_TEST_DATABASE_URL is set but PostgreSQL is unusable: {e}")
        });
    Some((Arc::new(store), Box::new(schema)))
}

feed_store_suite!(fresh);
