//! The chat chores one node runs beside its sockets: the hub reading the bus,
//! presence refreshes for the node's sockets, and announcements of the gateway for
//! service discovery.

use std::sync::Arc;
use std::time::Duration;

use tidings_chat::bus::ChatBus;
use tidings_chat::discovery::NodeInfo;
use tidings_chat::hub::Hub;
use tidings_chat::Chat;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a gateway announcement lives: a node that dies leaves discovery within
/// this.
pub const ANNOUNCE_TTL: Duration = Duration::from_secs(15);

pub struct ChatNode {
    pub chat: Arc<Chat>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn ChatBus>,
    pub public_url: String,
    pub presence_ttl: Duration,
}

impl ChatNode {
    /// Starts the chores; they end when `stop` turns true.
    pub async fn start(&self, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        match self.bus.subscribe().await {
            Ok(events) => tasks.push(tokio::spawn(self.hub.clone().run(events, stop.clone()))),
            Err(e) => {
                tracing::error!(error = %e, "chat hub cannot subscribe to the bus; live delivery is off")
            }
        }
        tasks.push(tokio::spawn(refresh_presence(
            self.chat.clone(),
            self.hub.clone(),
            self.presence_ttl,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(announce(
            self.chat.clone(),
            self.hub.clone(),
            self.public_url.clone(),
            stop,
        )));
        tasks
    }
}

async fn refresh_presence(
    chat: Arc<Chat>,
    hub: Arc<Hub>,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(50)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let sockets = hub.socket_list();
        if sockets.is_empty() {
            continue;
        }
        if let Err(e) = chat.sockets_alive(&sockets, ttl.as_millis() as i64).await {
            tracing::warn!(error = %e, "cannot refresh presence");
        }
    }
}

async fn announce(chat: Arc<Chat>, hub: Arc<Hub>, url: String, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ANNOUNCE_TTL / 3);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let info = NodeInfo {
            node: hub.node(),
            url: url.clone(),
            connections: hub.sockets(),
        };
        if let Err(e) = chat
            .announce_node(&info, ANNOUNCE_TTL.as_millis() as i64)
            .await
        {
            tracing::warn!(error = %e, "cannot announce this gateway");
        }
    }
    // A node that stops leaves discovery at once.
    if let Err(e) = chat.withdraw_node(hub.node()).await {
        tracing::warn!(error = %e, "cannot withdraw this gateway");
    }
}
