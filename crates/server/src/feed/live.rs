//! New posts onto the sockets of followers who are connected, through the chat bus,
//! so a follower on another node gets them too.

use std::sync::Arc;

use async_trait::async_trait;
use tidings_chat::bus::{BusEvent, ChatBus};
use tidings_chat::frames;
use tidings_feed::service::FeedLive;
use tidings_feed::views::PostView;
use tidings_platform::Id;

pub struct BusFeedLive {
    bus: Arc<dyn ChatBus>,
}

impl BusFeedLive {
    pub fn new(bus: Arc<dyn ChatBus>) -> Self {
        Self { bus }
    }
}

#[async_trait]
impl FeedLive for BusFeedLive {
    async fn feed_item(&self, users: Vec<Id>, post: &PostView) {
        if users.is_empty() {
            return;
        }
        let event = BusEvent::Users {
            users,
            skip: None,
            frame: frames::item("feed_item", "post", post),
        };
        // Best effort: the post is in the feed whether or not the socket hears of it.
        if let Err(e) = self.bus.publish(Arc::new(event)).await {
            tracing::debug!(error = %e, "feed item not sent live");
        }
    }
}
