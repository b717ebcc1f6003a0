//! What the pipeline needs from the outside world, as traits: provider clients for an
//! app, a place to raise operator alerts, and a way to reach a user's live sockets.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tidings_platform::model::Platform;
use tidings_platform::Id;

use crate::model::DeliveryRecord;
use crate::provider::{ConfigError, EmailProvider, PushProvider, SmsProvider, WebhookProvider};
use crate::store::InboxItemRecord;

/// Why a channel cannot be delivered for an app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unconfigured(pub String);

/// Provider clients per app, built from the app's stored settings.
#[async_trait]
pub trait ProviderDirectory: Send + Sync + 'static {
    async fn push(
        &self,
        app: Id,
        platform: Platform,
    ) -> Result<Arc<dyn PushProvider>, Unconfigured>;
    async fn sms(&self, app: Id) -> Result<Arc<dyn SmsProvider>, Unconfigured>;
    async fn email(&self, app: Id) -> Result<Arc<dyn EmailProvider>, Unconfigured>;
    async fn webhook(&self, app: Id) -> Result<Arc<dyn WebhookProvider>, Unconfigured>;
    /// Checks settings for `channel` (`apns`, `fcm`, `sms`, `email`, `webhook`) before
    /// they are stored; the error names the bad field.
    fn validate(&self, channel: &str, settings: &Value) -> Result<(), ConfigError>;
    /// The settings without their secrets, as `GET /v1/providers/{channel}` shows them.
    fn redact(&self, channel: &str, settings: &Value) -> Value;
}

/// Where the operator hears about dead letters.
#[async_trait]
pub trait AlertSink: Send + Sync + 'static {
    async fn dead_letter(&self, delivery: &DeliveryRecord);
}

/// Reaches a user's connected devices (the WebSocket gateway), for in-app items.
pub trait LiveSink: Send + Sync + 'static {
    /// Best effort: a user with no live socket reads the inbox later.
    fn inbox_item(&self, app: Id, user: Id, item: &InboxItemRecord);
}

/// A live sink for servers without a gateway: nobody is ever connected.
pub struct NoLiveSockets;

impl LiveSink for NoLiveSockets {
    fn inbox_item(&self, _app: Id, _user: Id, _item: &InboxItemRecord) {}
}
