//! Provider callbacks: the provider's later word on deliveries it accepted.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Form;
use tidings_notify::providers::sendgrid::{parse_events, verify_event_signature, EventKind};
use tidings_notify::providers::twilio::{callback_status, verify_signature, CallbackStatus};
use tidings_notify::service::ProviderReport;
use tidings_notify::store::TrackingEvent;
use tidings_platform::model::Channel;
use tidings_platform::Id;

use crate::http::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub const TWILIO_STATUS_PATH: &str = "/v1/webhooks/twilio/status";

/// Twilio status callback. The `X-Twilio-Signature` is checked with the auth token
/// of the app whose message it reports; `delivered` and `failed`/`undelivered` move
/// the delivery.
#[utoipa::path(post, path = "/v1/webhooks/twilio/status", tag = "notifications",
    request_body(content_type = "application/x-www-form-urlencoded", content = Object),
    responses(
        (status = 204, description = "recorded"),
        (status = 403, description = "bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "unknown message", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn twilio_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> ApiResult<StatusCode> {
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing X-Twilio-Signature"))?;
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let sid = field("MessageSid").ok_or_else(|| ApiError::bad_request("MessageSid is required"))?;
    let status =
        field("MessageStatus").ok_or_else(|| ApiError::bad_request("MessageStatus is required"))?;
    let store = state.notifier.store();
    let delivery = store
        .delivery_by_provider_id(Channel::Sms, sid)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no SMS with that MessageSid",
            )
        })?;
    let auth_token = store
        .provider(delivery.app_id, "sms")
        .await?
        .and_then(|(settings, _)| {
            settings
                .get("auth_token")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            ApiError::forbidden("the app has no SMS provider to verify this callback")
        })?;
    let base = state
        .notifier
        .callback_base_url()
        .unwrap_or_default()
        .trim_end_matches('/');
    let url = format!("{base}{TWILIO_STATUS_PATH}");
    if !verify_signature(&auth_token, &url, &params, signature) {
        return Err(ApiError::forbidden("X-Twilio-Signature does not match"));
    }
    let report = match callback_status(status, field("ErrorCode")) {
        CallbackStatus::Delivered => Some(ProviderReport::Delivered),
        CallbackStatus::Failed { reason } => Some(ProviderReport::Failed(reason)),
        CallbackStatus::InTransit => None,
    };
    if let Some(report) = report {
        state.notifier.provider_report(&delivery, report).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// SendGrid's signed Event Webhook: `delivered`, `bounce`/`dropped`, `open` and
/// `click` for the emails we sent, checked against the sending app's
/// `webhook_public_key` before anything is recorded.
#[utoipa::path(post, path = "/v1/webhooks/sendgrid/events", tag = "notifications",
    request_body(content = Vec<Object>, description = "SendGrid's event array"),
    responses(
        (status = 204, description = "recorded"),
        (status = 401, description = "unsigned", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "bad signature", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sendgrid_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-twilio-email-event-webhook-signature"),
        header("x-twilio-email-event-webhook-timestamp"),
    ) else {
        return Err(ApiError::unauthorized(
            "missing the signed event webhook headers",
        ));
    };
    let events = parse_events(&body).map_err(ApiError::bad_request)?;
    let store = state.notifier.store();
    // Check every app involved before recording anything.
    let mut verified: HashSet<Id> = HashSet::new();
    let mut work = Vec::new();
    for event in events {
        let Some(id) = event.delivery.as_deref().and_then(|d| d.parse::<Id>().ok()) else {
            continue;
        };
        let Some(delivery) = store.delivery(id).await? else {
            continue;
        };
        if delivery.channel != Channel::Email {
            continue;
        }
        if !verified.contains(&delivery.app_id) {
            let key = store
                .provider(delivery.app_id, "email")
                .await?
                .and_then(|(s, _)| {
                    s.get("webhook_public_key")
                        .and_then(|k| k.as_str())
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    ApiError::forbidden(
                        "the app has no webhook_public_key to verify SendGrid events",
                    )
                })?;
            if !verify_event_signature(&key, timestamp, &body, signature) {
                return Err(ApiError::forbidden(
                    "the event webhook signature does not match",
                ));
            }
            verified.insert(delivery.app_id);
        }
        work.push((delivery, event.kind));
    }
    let now = state.notifier.now_ms();
    for (delivery, kind) in work {
        match kind {
            EventKind::Delivered => {
                state
                    .notifier
                    .provider_report(&delivery, ProviderReport::Delivered)
                    .await?
            }
            EventKind::Failed(reason) => {
                state
                    .notifier
                    .provider_report(&delivery, ProviderReport::Failed(reason))
                    .await?
            }
            EventKind::Opened | EventKind::Clicked => {
                let event = if kind == EventKind::Opened {
                    TrackingEvent::Opened
                } else {
                    TrackingEvent::Clicked
                };
                store
                    .record_event(
                        delivery.app_id,
                        delivery.notification_id,
                        delivery.user_id,
                        event,
                        now,
                    )
                    .await?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
