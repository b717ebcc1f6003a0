//! The WebSocket gateway: `GET /v1/ws` and service discovery.

pub mod client_frames;
pub mod connection;
pub mod flood;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use tidings_chat::hub::Hub;
use tidings_chat::Chat;
use tidings_platform::accounts::Accounts;
use tidings_platform::config::ChatConfig;
use tokio::sync::watch;

/// What every socket of this node shares.
pub struct Gateway {
    pub chat: Arc<Chat>,
    pub hub: Arc<Hub>,
    pub accounts: Arc<Accounts>,
    pub config: ChatConfig,
    /// Largest client frame accepted.
    pub frame_bytes: usize,
    /// What `/v1/ws/endpoint` answers when no registry entry is live; known once the
    /// listener is bound.
    pub public_url: parking_lot::RwLock<String>,
    /// Turns true when the node starts shutting down.
    pub draining: watch::Receiver<bool>,
}

impl Gateway {
    pub fn public_url(&self) -> String {
        self.public_url.read().clone()
    }

    /// A socket silent this long is gone.
    pub fn silence(&self) -> Duration {
        Duration::from_millis(self.config.heartbeat_ms.saturating_mul(2))
    }
}
