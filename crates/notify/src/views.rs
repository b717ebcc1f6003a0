//! What the API shows of notifications, deliveries and inbox items.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidings_platform::clock::rfc3339;
use tidings_platform::model::Channel;
use tidings_platform::Id;
use utoipa::ToSchema;

use crate::model::{DeliveryRecord, DeliveryStatus};
use crate::store::InboxItemRecord;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SendAccepted {
    pub id: Id,
    pub event_id: String,
    pub duplicate: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DeliveryView {
    pub id: Id,
    pub user_id: Id,
    pub channel: Channel,
    /// Masked: a token's last 6 characters, `+8210****5678`, `a***@example.com`.
    pub target: String,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    pub dead: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct NotificationView {
    pub id: Id,
    pub event_id: String,
    pub created_at: String,
    /// False while recipients are still being resolved.
    pub fanned_out: bool,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct InboxItem {
    pub id: Id,
    pub notification_id: Id,
    pub title: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: String,
    pub read_at: Option<String>,
}

impl From<&InboxItemRecord> for InboxItem {
    fn from(r: &InboxItemRecord) -> Self {
        Self {
            id: r.id,
            notification_id: r.notification_id,
            title: r.title.clone(),
            body: r.body.clone(),
            url: r.url.clone(),
            data: r.data.clone(),
            created_at: rfc3339(r.created_at_ms),
            read_at: r.read_at_ms.map(rfc3339),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub next_cursor: Option<String>,
    pub unread_count: u64,
}

/// Hides all but what identifies a target to its owner.
pub fn mask_target(channel: Channel, target: &str) -> String {
    match channel {
        Channel::Push => {
            let token = target.split_once(':').map_or(target, |(_, t)| t);
            let tail: String = token
                .chars()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        }
        Channel::Sms => {
            let chars: Vec<char> = target.chars().collect();
            if chars.len() <= 9 {
                return "****".into();
            }
            let head: String = chars[..5].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}****{tail}")
        }
        Channel::Email => match target.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        Channel::InApp | Channel::Webhook => target.to_owned(),
    }
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        Self {
            id: d.id,
            user_id: d.user_id,
            channel: d.channel,
            target: mask_target(d.channel, &d.target),
            status: d.status,
            reason: d.reason.clone(),
            attempts: d.attempts,
            provider_message_id: d.provider_message_id.clone(),
            dead: d.dead,
            created_at: rfc3339(d.created_at_ms),
            updated_at: rfc3339(d.updated_at_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_target(Channel::Push, "apns:a1b2c3d4e5f6"), "…d4e5f6");
        assert_eq!(mask_target(Channel::Sms, "+821012345678"), "+8210****5678");
        assert_eq!(
            mask_target(Channel::Email, "alice@example.com"),
            "a***@example.com"
        );
    }
}
