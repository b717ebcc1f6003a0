//! What a delivery worker hands a provider, and what the provider says back.
//!
//! Each channel has one trait; each provider implements it over its real protocol.
//! A provider never retries by itself: it classifies the answer into an [`Outcome`]
//! and the pipeline (which owns the durable record) decides what happens next.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Delivery urgency as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Priority {
    /// Wake the device now (APNs priority 10, FCM `HIGH`).
    High,
    /// Power-friendly delivery (APNs priority 5, FCM `NORMAL`).
    #[default]
    Normal,
}

/// One push to one device token.
#[derive(Clone, Debug, PartialEq)]
pub struct PushMessage {
    /// Stable per delivery, so a retried send can be recognised: sent as `apns-id`
    /// (it must be a canonical UUID) and available to FCM as a data field.
    pub id: uuid::Uuid,
    pub token: String,
    /// APNs topic override (bundle id); `None` uses the provider setting.
    pub topic: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    /// Custom key/values delivered with the push (FCM requires string values; the FCM
    /// provider stringifies non-strings).
    pub data: Map<String, Value>,
    pub priority: Priority,
    /// `apns-collapse-id` / FCM `collapse_key`.
    pub collapse_key: Option<String>,
    /// Unix milliseconds after which the push is worthless (`apns-expiration`, FCM `ttl`).
    pub expires_at_ms: Option<i64>,
    /// Badge count, when the caller sets one.
    pub badge: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsMessage {
    /// E.164.
    pub to: String,
    pub body: String,
    /// Where the provider should POST status updates (Twilio `StatusCallback`).
    pub status_callback: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Our own correlation id (becomes the SMTP `Message-ID` local part and a SendGrid
    /// custom arg).
    pub reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookMessage {
    /// The exact bytes POSTed and signed.
    pub body: Vec<u8>,
}

/// How a provider answered one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the provider. `provider_message_id` is the provider's own id
    /// (`apns-id`, the FCM message `name`, the Twilio `sid`, SendGrid's
    /// `X-Message-Id`, the SMTP `Message-ID`).
    Sent { provider_message_id: Option<String> },
    /// A transient failure (5xx, timeout, connection error, 429, SMTP 4xx): try again,
    /// not before `retry_after` when the provider named a time.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A permanent failure for this message (400, 403, 413, `BadDeviceToken`, SMTP 5xx):
    /// never retried.
    Failed { reason: String },
    /// The target is gone for good (APNs 410 `Unregistered`, FCM `UNREGISTERED`): the
    /// token must be disabled so it is never used again.
    TargetGone { reason: String },
}

#[async_trait]
pub trait PushProvider: Send + Sync + 'static {
    async fn send(&self, message: &PushMessage) -> Outcome;
}

#[async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    async fn send(&self, message: &SmsMessage) -> Outcome;
}

#[async_trait]
pub trait EmailProvider: Send + Sync + 'static {
    async fn send(&self, message: &EmailMessage) -> Outcome;
}

#[async_trait]
pub trait WebhookProvider: Send + Sync + 'static {
    async fn send(&self, message: &WebhookMessage) -> Outcome;
}

/// Settings a provider cannot work with, found when they are saved (a 422 at
/// `PUT /v1/providers/{channel}`), not at send time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {detail}")]
pub struct ConfigError {
    pub field: &'static str,
    pub detail: String,
}

impl ConfigError {
    pub fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}

/// Parses an HTTP `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when: std::time::SystemTime = when.with_timezone(&chrono::Utc).into();
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let date = chrono::DateTime::from_timestamp(1_700_000_030, 0)
            .unwrap()
            .to_rfc2822();
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
