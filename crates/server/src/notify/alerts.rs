//! Dead-letter alerts: an error log line always, and a JSON POST to the operator's
//! webhook when one is configured.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tidings_notify::directory::AlertSink;
use tidings_notify::model::DeliveryRecord;
use tidings_platform::clock::rfc3339;

pub struct OperatorAlerts {
    http: reqwest::Client,
    url: Option<String>,
}

impl OperatorAlerts {
    pub fn new(url: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, url }
    }
}

#[async_trait]
impl AlertSink for OperatorAlerts {
    async fn dead_letter(&self, d: &DeliveryRecord) {
        tracing::error!(alert = "dead_letter", delivery = %d.id, notification = %d.notification_id, app = %d.app_id,
            channel = d.channel.as_str(), attempts = d.attempts, reason = d.reason.as_deref().unwrap_or(""),
            "ALERT: a notification delivery is a dead letter");
        let Some(url) = &self.url else { return };
        let body = json!({
            "alert": "dead_letter",
            "delivery_id": d.id.to_string(),
            "notification_id": d.notification_id.to_string(),
            "app_id": d.app_id.to_string(),
            "user_id": d.user_id.to_string(),
            "channel": d.channel.as_str(),
            "attempts": d.attempts,
            "reason": d.reason,
            "at": rfc3339(d.updated_at_ms),
        });
        if let Err(e) = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            tracing::error!(error = %e, "could not deliver the dead-letter alert to the operator webhook");
        }
    }
}
