//! Notifications: sending, status, templates, topics, the in-app inbox, tracking,
//! statistics, provider settings and queue administration.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidings_notify::model::{DeliveryStatus, SendRequest, Template};
use tidings_notify::store::TrackingEvent;
use tidings_notify::views::{DeliveryView, InboxPage, NotificationView, SendAccepted};
use tidings_platform::page::Page;
use tidings_platform::Id;
use utoipa::{IntoParams, ToSchema};

use crate::http::extract::{AppAuth, Json, Path, Query, UserAuth};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Send a notification. The request is durably stored before the answer; delivery
/// happens in workers. The same `event_id` again answers 200 with the first id and
/// sends nothing.
#[utoipa::path(post, path = "/v1/notifications", tag = "notifications", security(("app" = [])),
    request_body = SendRequest,
    responses(
        (status = 202, description = "accepted", body = SendAccepted),
        (status = 200, description = "duplicate event_id: nothing sent", body = SendAccepted),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn send(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Json(req): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<SendAccepted>)> {
    let accepted = state.notifier.accept(app.app.id, req).await?;
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted)))
}

/// A notification and one row per (recipient, channel, target).
#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "notifications", security(("app" = [])),
    params(("id" = String, Path, description = "notification id")),
    responses((status = 200, body = NotificationView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<NotificationView>> {
    Ok(Json(state.notifier.status(app.app.id, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// `opened` or `clicked`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Tracking from the user's client: the notification was opened or clicked.
#[utoipa::path(post, path = "/v1/notifications/{id}/events", tag = "notifications", security(("user" = [])),
    params(("id" = String, Path, description = "notification id")),
    request_body = EventRequest,
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn event(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
    Json(req): Json<EventRequest>,
) -> ApiResult<StatusCode> {
    let event = match req.kind.as_str() {
        "opened" => TrackingEvent::Opened,
        "clicked" => TrackingEvent::Clicked,
        _ => {
            return Err(tidings_platform::Error::validation(
                "type",
                "type must be opened or clicked",
            )
            .into());
        }
    };
    state
        .notifier
        .track(me.app.id, me.user_id, id, event)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create or replace a template.
#[utoipa::path(put, path = "/v1/templates/{name}", tag = "notifications", security(("app" = [])),
    params(("name" = String, Path)),
    request_body = Template,
    responses((status = 200, body = Template), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_template(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(name): Path<String>,
    Json(template): Json<Template>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        state
            .notifier
            .put_template(app.app.id, &name, template)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/templates/{name}", tag = "notifications", security(("app" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Template), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_template(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(name): Path<String>,
) -> ApiResult<Json<Template>> {
    Ok(Json(state.notifier.template(app.app.id, &name).await?))
}

#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "notifications", security(("app" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_template(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.notifier.delete_template(app.app.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Subscribe a user to a topic (idempotent).
#[utoipa::path(put, path = "/v1/users/{id}/topics/{name}", tag = "notifications", security(("app" = [])),
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn subscribe(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path((user, topic)): Path<(Id, String)>,
) -> ApiResult<StatusCode> {
    state.notifier.subscribe(app.app.id, user, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unsubscribe a user from a topic (idempotent).
#[utoipa::path(delete, path = "/v1/users/{id}/topics/{name}", tag = "notifications", security(("app" = [])),
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path((user, topic)): Path<(Id, String)>,
) -> ApiResult<StatusCode> {
    state.notifier.unsubscribe(app.app.id, user, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InboxParams {
    limit: Option<u32>,
    /// `next_cursor` of the previous page (older items).
    before: Option<String>,
}

/// The signed-in user's in-app notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/v1/me/inbox", tag = "notifications", security(("user" = [])),
    params(InboxParams),
    responses((status = 200, body = InboxPage)))]
pub async fn inbox(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Query(params): Query<InboxParams>,
) -> ApiResult<Json<InboxPage>> {
    let limit = state.page_limits().resolve(params.limit)?;
    Ok(Json(
        state
            .notifier
            .inbox(me.app.id, me.user_id, params.before.as_deref(), limit)
            .await?,
    ))
}

/// Mark an inbox item read (idempotent).
#[utoipa::path(post, path = "/v1/me/inbox/{id}/read", tag = "notifications", security(("user" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn mark_read(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    state.notifier.mark_read(me.app.id, me.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatsParams {
    /// RFC 3339; default 24 hours ago.
    since: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ChannelStats {
    /// Deliveries planned for this channel (one per recipient and target).
    pub accepted: u64,
    pub queued: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub suppressed: u64,
    pub suppressed_by_reason: BTreeMap<String, u64>,
    pub opened: u64,
    pub clicked: u64,
    /// (sent + delivered) / (accepted − suppressed).
    pub send_rate: f64,
    /// delivered / (sent + delivered), where the provider reports deliveries.
    pub delivery_rate: f64,
    /// opened / (sent + delivered).
    pub open_rate: f64,
    /// clicked / (sent + delivered).
    pub click_rate: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    pub since: String,
    pub channels: BTreeMap<String, ChannelStats>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Per channel: accepted, sent, delivered, failed, suppressed (by reason), opened,
/// clicked, and rates.
#[utoipa::path(get, path = "/v1/stats/notifications", tag = "notifications", security(("app" = [])),
    params(StatsParams),
    responses((status = 200, body = StatsResponse)))]
pub async fn stats(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Query(params): Query<StatsParams>,
) -> ApiResult<Json<StatsResponse>> {
    let now = state.notifier.now_ms();
    let since = match params.since.as_deref() {
        Some(s) => parse_since(s)?,
        None => now - 24 * 3_600_000,
    };
    let mut channels = BTreeMap::new();
    for channel in tidings_platform::model::Channel::ALL {
        channels.insert(channel.as_str().to_owned(), ChannelStats::default());
    }
    for counts in state.notifier.stats(app.app.id, since).await? {
        let Some(channel) = counts.channel else {
            continue;
        };
        let entry = channels.entry(channel.as_str().to_owned()).or_default();
        entry.accepted = counts.total;
        for (status, n) in &counts.by_status {
            match status {
                DeliveryStatus::Queued | DeliveryStatus::Sending => entry.queued += n,
                DeliveryStatus::Sent => entry.sent += n,
                DeliveryStatus::Delivered => entry.delivered += n,
                DeliveryStatus::Failed => entry.failed += n,
                DeliveryStatus::Expired => entry.expired += n,
                DeliveryStatus::Suppressed => entry.suppressed += n,
            }
        }
        for (reason, n) in counts.suppressed_by_reason {
            *entry.suppressed_by_reason.entry(reason).or_default() += n;
        }
        entry.opened = counts.opened;
        entry.clicked = counts.clicked;
        let out = entry.sent + entry.delivered;
        entry.send_rate = ratio(out, entry.accepted - entry.suppressed);
        entry.delivery_rate = ratio(entry.delivered, out);
        entry.open_rate = ratio(entry.opened, out);
        entry.click_rate = ratio(entry.clicked, out);
    }
    Ok(Json(StatsResponse {
        since: tidings_platform::clock::rfc3339(since),
        channels,
    }))
}

fn parse_since(s: &str) -> Result<i64, crate::http::problem::ApiError> {
    tidings_platform::clock::parse_rfc3339(s).ok_or_else(|| {
        tidings_platform::Error::validation("since", "since must be an RFC 3339 time").into()
    })
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct QueueView {
    /// Due now and waiting for a worker.
    pub depth: u64,
    pub in_flight: u64,
    pub oldest_age_ms: i64,
    pub retrying: u64,
    pub dead: u64,
    /// Waiting for a later time: scheduled sends, quiet hours, backoff.
    pub scheduled: u64,
}

/// Per channel: depth, in flight, oldest age, retrying, dead.
#[utoipa::path(get, path = "/v1/admin/queues", tag = "notifications", security(("app" = [])),
    responses((status = 200, body = BTreeMap<String, QueueView>)))]
pub async fn queues(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
) -> ApiResult<Json<BTreeMap<String, QueueView>>> {
    let mut out = BTreeMap::new();
    for channel in tidings_platform::model::Channel::ALL {
        out.insert(channel.as_str().to_owned(), QueueView::default());
    }
    for q in state.notifier.queues(Some(app.app.id)).await? {
        let Some(channel) = q.channel else { continue };
        out.insert(
            channel.as_str().to_owned(),
            QueueView {
                depth: q.depth,
                in_flight: q.in_flight,
                oldest_age_ms: q.oldest_age_ms,
                retrying: q.retrying,
                dead: q.dead,
                scheduled: q.scheduled,
            },
        );
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeadLetterParams {
    limit: Option<u32>,
    before: Option<String>,
}

/// Deliveries that exhausted their retries, newest first.
#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "notifications", security(("app" = [])),
    params(DeadLetterParams),
    responses((status = 200, body = Page<DeliveryView>)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Query(params): Query<DeadLetterParams>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    Ok(Json(
        state
            .notifier
            .dead_letters(app.app.id, params.before.as_deref(), limit)
            .await?,
    ))
}

/// Put a dead letter back on its queue with fresh attempts.
#[utoipa::path(post, path = "/v1/admin/dead-letters/{id}/retry", tag = "notifications", security(("app" = [])),
    params(("id" = String, Path)),
    responses((status = 202), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    state.notifier.retry_dead_letter(app.app.id, id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set this app's provider for a channel: `apns`, `fcm`, `sms`, `email` or `webhook`.
/// Malformed keys are refused here, not at send time. The answer omits secrets.
#[utoipa::path(put, path = "/v1/providers/{channel}", tag = "notifications", security(("app" = [])),
    params(("channel" = String, Path, description = "apns, fcm, sms, email or webhook")),
    request_body(content = Object, description = "see the API contract for each channel's fields"),
    responses((status = 200, body = Object), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_provider(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(channel): Path<String>,
    Json(settings): Json<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        state
            .notifier
            .put_provider(app.app.id, &channel, settings)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/providers/{channel}", tag = "notifications", security(("app" = [])),
    params(("channel" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_provider(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(channel): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.notifier.provider(app.app.id, &channel).await?))
}

#[utoipa::path(delete, path = "/v1/providers/{channel}", tag = "notifications", security(("app" = [])),
    params(("channel" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_provider(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(channel): Path<String>,
) -> ApiResult<StatusCode> {
    state.notifier.delete_provider(app.app.id, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}
