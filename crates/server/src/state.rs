use std::sync::Arc;

use tidings_chat::Chat;
use tidings_notify::Notifier;
use tidings_platform::accounts::Accounts;
use tidings_platform::config::Config;
use tidings_platform::page::PageLimits;

use crate::chat::node::ChatNode;
use crate::http::metrics::Metrics;
use crate::ws::Gateway;

/// What every handler can reach. One pointer: axum clones the state for every
/// extractor and middleware that takes it, and cloning the parts themselves cost a
/// reference-count update on each of them per clone, on cache lines every core
/// shares.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    pub config: Arc<Config>,
    pub accounts: Arc<Accounts>,
    pub notifier: Arc<Notifier>,
    pub metrics: Arc<Metrics>,
    pub chat: Arc<Chat>,
    pub feed: Arc<tidings_feed::Feed>,
    pub gateway: Arc<Gateway>,
    pub chat_node: Arc<ChatNode>,
    /// Set to true when the node starts draining its sockets.
    pub drain: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppParts {
    pub fn page_limits(&self) -> PageLimits {
        PageLimits {
            default: self.config.limits.page_default,
            max: self.config.limits.page_max,
        }
    }
}
