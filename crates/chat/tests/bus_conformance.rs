//! The bus conformance suite on the embedded default's in-process bus.

use std::sync::Arc;

use tidings_chat::bus::{ChatBus, InProcessBus};
use tidings_conformance::bus_suite;

async fn fresh() -> Option<Arc<dyn ChatBus>> {
    Some(Arc::new(InProcessBus::new(1024)))
}

bus_suite!(fresh);
