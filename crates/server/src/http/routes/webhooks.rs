//! Provider callbacks: the provider's later word on deliveries it accepted.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Form;
use tidings_notify::providers::twilio::{callback_status, verify_signature, CallbackStatus};
use tidings_notify::service::ProviderReport;
use tidings_platform::model::Channel;

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
