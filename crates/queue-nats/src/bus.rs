//! The chat bus on core NATS: every node publishes to, and subscribes to, one
//! subject. Core NATS delivers at most once and drops for slow subscribers, which
//! the hub tolerates by design (message events are gap-checked against the store).

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use tidings_chat::bus::{BusError, BusEvent, BusItem, ChatBus};

pub struct NatsBus {
    client: async_nats::Client,
    subject: String,
}

impl NatsBus {
    /// `prefix` keeps installations (and test runs) sharing one NATS apart.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| BusError(format!("nats: {e}")))?;
        Ok(Self {
            client,
            subject: format!("{}.chat.events", prefix.to_ascii_lowercase()),
        })
    }
}

#[async_trait]
impl ChatBus for NatsBus {
    async fn publish(&self, event: Arc<BusEvent>) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&*event).map_err(|e| BusError(e.to_string()))?;
        self.client
            .publish(self.subject.clone(), payload.into())
            .await
            .map_err(|e| BusError(format!("nats publish: {e}")))
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, BusItem>, BusError> {
        let subscriber = self
            .client
            .subscribe(self.subject.clone())
            .await
            .map_err(|e| BusError(format!("nats subscribe: {e}")))?;
        // Make sure the server has the subscription before anyone publishes to it.
        self.client
            .flush()
            .await
            .map_err(|e| BusError(format!("nats flush: {e}")))?;
        Ok(Box::pin(subscriber.filter_map(|msg| async move {
            match serde_json::from_slice::<BusEvent>(&msg.payload) {
                Ok(event) => Some(BusItem::Event(Arc::new(event))),
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable chat bus event");
                    None
                }
            }
        })))
    }
}
