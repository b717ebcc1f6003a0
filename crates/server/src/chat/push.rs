//! Members with no live socket hear of a message as a push notification, sent
//! through the notification pipeline so their settings, quiet hours and rate limits
//! apply. One notification per message (its id is the event id, so a retried
//! announcement never pushes twice), collapsed per channel on the device.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tidings_chat::model::{ChannelRecord, MessageRecord};
use tidings_chat::service::OfflinePush;
use tidings_notify::model::{Audience, ChannelContent, PushContent, SendPriority, SendRequest};
use tidings_notify::Notifier;
use tidings_platform::model::Channel;
use tidings_platform::Id;

/// Longest message preview in a push, in characters.
const PREVIEW_CHARS: usize = 200;

pub struct PushOffline {
    notifier: Arc<Notifier>,
}

impl PushOffline {
    pub fn new(notifier: Arc<Notifier>) -> Self {
        Self { notifier }
    }
}

#[async_trait]
impl OfflinePush for PushOffline {
    async fn push(&self, channel: &ChannelRecord, message: &MessageRecord, users: Vec<Id>) {
        let mut preview: String = message.text.chars().take(PREVIEW_CHARS).collect();
        if message.text.chars().count() > PREVIEW_CHARS {
            preview.push('…');
        }
        let mut data = Map::new();
        data.insert("channel_id".into(), Value::String(channel.id.to_string()));
        data.insert("message_id".into(), Value::String(message.id.to_string()));
        data.insert("seq".into(), Value::from(message.seq));
        let request = SendRequest {
            event_id: format!("chat-message-{}", message.id),
            to: Audience::Users { user_ids: users },
            category: Some("chat".into()),
            channels: Some(vec![Channel::Push]),
            template: None,
            data: Map::new(),
            locale: None,
            content: Some(ChannelContent {
                push: Some(PushContent {
                    title: Some(channel.name.clone().unwrap_or_else(|| "New message".into())),
                    body: Some(preview),
                    data,
                    badge: None,
                }),
                ..ChannelContent::default()
            }),
            priority: SendPriority::High,
            send_at: None,
            expires_at: None,
            collapse_key: Some(format!("chat-{}", channel.id)),
        };
        if let Err(e) = self.notifier.accept(message.app_id, request).await {
            tracing::warn!(error = %e, message = %message.id, "cannot push a chat message to offline members");
        }
    }
}
