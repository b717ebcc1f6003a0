//! Pub/sub between the nodes' hubs. In-process for the embedded default; NATS
//! subjects when several nodes share the distributed backends.
//!
//! The bus is allowed to lose events. Message events carry their log `pos`, which
//! has no gaps, so a hub notices a lost one and reads it from the store; the other
//! events (typing, receipts, presence changes) are ephemeral by nature.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tidings_platform::Id;
use tokio::sync::broadcast;

use crate::model::MessageRecord;

/// A socket, named across the cluster: the node's id and a number unique on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnId {
    pub node: u16,
    pub local: u64,
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.node, self.local)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusEvent {
    /// A committed message, for every member's sockets, in log order.
    Message {
        members: Vec<Id>,
        /// The socket that sent it; it got an `ack` and needs no copy.
        origin: Option<ConnId>,
        message: MessageRecord,
    },
    /// A ready frame for some users' sockets (typing, receipts, edits, reactions,
    /// in-app notifications, feed items).
    Users {
        users: Vec<Id>,
        skip: Option<ConnId>,
        frame: String,
    },
    /// A presence change, for the sockets that subscribed to the user.
    Presence { user: Id, frame: String },
    /// A channel's members changed: cached membership is stale.
    Members { channel: Id },
}

/// What a subscriber reads.
#[derive(Clone, Debug)]
pub enum BusItem {
    Event(Arc<BusEvent>),
    /// Events were dropped because this subscriber fell behind.
    Lagged,
}

#[derive(Debug, thiserror::Error)]
#[error("bus: {0}")]
pub struct BusError(pub String);

#[async_trait]
pub trait ChatBus: Send + Sync + 'static {
    /// Hands the event to every node's subscriber, this node's included.
    async fn publish(&self, event: Arc<BusEvent>) -> Result<(), BusError>;
    /// Every event published from now on (best effort).
    async fn subscribe(&self) -> Result<BoxStream<'static, BusItem>, BusError>;
}

/// One process: a broadcast channel.
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<BusEvent>>,
}

impl InProcessBus {
    /// `capacity` events may wait for the slowest subscriber before it lags.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }
}

#[async_trait]
impl ChatBus for InProcessBus {
    async fn publish(&self, event: Arc<BusEvent>) -> Result<(), BusError> {
        // No subscriber (no hub running yet) is not an error: nobody is connected.
        let _ = self.tx.send(event);
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, BusItem>, BusError> {
        let rx = self.tx.subscribe();
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((BusItem::Event(event), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((BusItem::Lagged, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })))
    }
}
