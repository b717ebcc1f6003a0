//! The bus conformance suite on NATS, when `TIDINGS_TEST_NATS_URL` is set (CI sets
//! it); each test on a subject of its own.

use std::sync::Arc;

use tidings_chat::bus::ChatBus;
use tidings_conformance::bus_suite;
use tidings_queue_nats::NatsBus;

async fn fresh() -> Option<Arc<dyn ChatBus>> {
    let url = std::env::var("TIDINGS_TEST_NATS_URL").ok()?;
    let prefix = format!("test{:016x}", rand::random::<u64>());
    let bus = NatsBus::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_NATS_URL is set but NATS is unusable: {e}"));
    Some(Arc::new(bus))
}

bus_suite!(fresh);
