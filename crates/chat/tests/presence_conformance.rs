//! The presence and registry conformance suite on the embedded default's memory.

use std::sync::Arc;

use tidings_chat::discovery::{GatewayRegistry, MemoryRegistry};
use tidings_chat::presence::{MemoryPresence, PresenceStore};
use tidings_conformance::presence_suite;

async fn presence() -> Option<Arc<dyn PresenceStore>> {
    Some(Arc::new(MemoryPresence::default()))
}

async fn registry() -> Option<Arc<dyn GatewayRegistry>> {
    Some(Arc::new(MemoryRegistry::default()))
}

presence_suite!(presence, registry);
