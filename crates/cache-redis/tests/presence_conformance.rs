//! The presence and registry conformance suite on Redis, when
//! `TIDINGS_TEST_REDIS_URL` is set (CI sets it).

use std::sync::Arc;

use tidings_cache_redis::{RedisPresence, RedisRegistry};
use tidings_chat::discovery::GatewayRegistry;
use tidings_chat::presence::PresenceStore;
use tidings_conformance::presence_suite;

fn prefix() -> String {
    format!("test:{:016x}:", rand::random::<u64>())
}

async fn presence() -> Option<Arc<dyn PresenceStore>> {
    let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    let p = RedisPresence::connect(&url, &prefix())
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_REDIS_URL is set but Redis is unusable: {e}"));
    Some(Arc::new(p))
}

async fn registry() -> Option<Arc<dyn GatewayRegistry>> {
    let url = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    let r = RedisRegistry::connect(&url, &prefix())
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_REDIS_URL is set but Redis is unusable: {e}"));
    Some(Arc::new(r))
}

presence_suite!(presence, registry);
