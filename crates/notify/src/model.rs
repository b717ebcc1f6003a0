//! The notification domain: what an app sends, what is stored, what is delivered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidings_platform::model::Channel;
use tidings_platform::Id;
use utoipa::ToSchema;

/// Who receives a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Audience {
    Users {
        #[schema(value_type = Vec<String>)]
        user_ids: Vec<Id>,
    },
    Topic {
        topic: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushContent {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Custom key/values delivered with the push.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub badge: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsContent {
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailContent {
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InAppContent {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// Per-channel bodies: literal content of a send, or one locale of a template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<InAppContent>,
    /// Any JSON object, POSTed to the app's webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub webhook: Option<Map<String, Value>>,
}

impl ChannelContent {
    /// The channels this content defines, in a fixed order.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.push.is_some() {
            out.push(Channel::Push);
        }
        if self.sms.is_some() {
            out.push(Channel::Sms);
        }
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        if self.in_app.is_some() {
            out.push(Channel::InApp);
        }
        if self.webhook.is_some() {
            out.push(Channel::Webhook);
        }
        out
    }
}

/// A stored template: Jinja bodies per channel, with per-locale overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub channels: ChannelContent,
    /// Locale (`ko`, `pt-BR`) → bodies. A locale falls back to its language, then to
    /// `channels`.
    #[serde(default)]
    pub locales: BTreeMap<String, ChannelContent>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendPriority {
    High,
    #[default]
    Normal,
}

/// `POST /v1/notifications`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The app's id for this event; the same id never sends twice.
    pub event_id: String,
    pub to: Audience,
    #[serde(default)]
    pub category: Option<String>,
    /// Default: every channel the template or content defines.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub content: Option<ChannelContent>,
    #[serde(default)]
    pub priority: SendPriority,
    /// RFC 3339; deliver no earlier.
    #[serde(default)]
    pub send_at: Option<String>,
    /// RFC 3339; deliveries not made by then become `expired`.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub collapse_key: Option<String>,
}

/// What the pipeline needs of an accepted request, frozen at accept time (a template
/// changed later does not change what this notification says).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frozen {
    pub to: Audience,
    pub category: Option<String>,
    pub channels: Vec<Channel>,
    pub template: Template,
    pub template_name: Option<String>,
    pub data: Map<String, Value>,
    pub locale: Option<String>,
    pub priority: SendPriority,
    pub collapse_key: Option<String>,
}

/// A notification as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationRecord {
    pub id: Id,
    pub app_id: Id,
    pub event_id: String,
    pub body: Frozen,
    pub send_at_ms: Option<i64>,
    pub expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// Fan-out finished: every delivery row exists.
    pub fanned_out: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Suppressed,
    Expired,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "suppressed" => Self::Suppressed,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// No worker will touch it again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sending)
    }
}

/// One (recipient, channel, target) of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: Id,
    pub notification_id: Id,
    pub app_id: Id,
    pub user_id: Id,
    pub channel: Channel,
    /// Device token, phone, email address or webhook URL; empty where none applies.
    pub target: String,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    /// When it may next be attempted.
    pub due_at_ms: i64,
    pub dead: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

pub fn channel_from_str(s: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.as_str() == s)
}
