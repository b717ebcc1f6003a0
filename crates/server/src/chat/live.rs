//! In-app notifications onto the recipient's sockets, on whichever node they are.

use std::sync::Arc;

use tidings_chat::bus::{BusEvent, ChatBus};
use tidings_chat::frames;
use tidings_notify::directory::LiveSink;
use tidings_notify::store::InboxItemRecord;
use tidings_notify::views::InboxItem;
use tidings_platform::Id;

pub struct BusLiveSink {
    bus: Arc<dyn ChatBus>,
}

impl BusLiveSink {
    pub fn new(bus: Arc<dyn ChatBus>) -> Self {
        Self { bus }
    }
}

impl LiveSink for BusLiveSink {
    fn inbox_item(&self, _app: Id, user: Id, item: &InboxItemRecord) {
        let frame = frames::item("notification", "item", &InboxItem::from(item));
        let bus = self.bus.clone();
        // Best effort by contract: the item is in the inbox whatever happens here.
        tokio::spawn(async move {
            let event = BusEvent::Users {
                users: vec![user],
                skip: None,
                frame,
            };
            if let Err(e) = bus.publish(Arc::new(event)).await {
                tracing::debug!(error = %e, "in-app item not sent live");
            }
        });
    }
}
