//! Work queues: they dispatch, they do not remember. Each message is the id of a row
//! (a notification to fan out, a delivery to attempt) whose state lives in the store;
//! losing a message delays that row until the sweeper re-dispatches it, and a
//! duplicate message is harmless because workers claim rows conditionally.

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue failure: {0}")]
    Backend(String),
}

/// Proof of a lease, needed to ack or nack that delivery of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHandle {
    pub id: u64,
    /// Backend-specific (a lease token, a reply subject).
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leased {
    pub item: i64,
    /// How many times this message has been handed out, this time included.
    pub deliveries: u32,
    pub handle: LeaseHandle,
}

/// How every queue of an implementation behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// A leased message not acked or nacked within this time is handed out again.
    pub visibility: Duration,
    /// A message handed out this many times without an ack is parked as dead.
    pub max_deliveries: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility: Duration::from_secs(30),
            max_deliveries: 20,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Visible or waiting for their delay.
    pub pending: u64,
    /// Leased and not yet acked.
    pub in_flight: u64,
    /// Handed out `max_deliveries` times without an ack: parked.
    pub dead: u64,
}

#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Makes `items` available on `queue` after `delay`.
    async fn enqueue(&self, queue: &str, items: &[i64], delay: Duration) -> Result<(), QueueError>;
    /// Up to `max` visible messages, each hidden from other consumers for the queue's
    /// visibility timeout unless acked or nacked first. Waits up to `wait` for one.
    async fn lease(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Leased>, QueueError>;
    /// Done with these messages: they are gone.
    async fn ack(&self, queue: &str, handles: &[LeaseHandle]) -> Result<(), QueueError>;
    /// Hand the message out again after `delay`.
    async fn nack(
        &self,
        queue: &str,
        handle: &LeaseHandle,
        delay: Duration,
    ) -> Result<(), QueueError>;
    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError>;
}
