//! Chat over HTTP: channels, members, history, sending, edits, reactions, read
//! positions and presence. Sending here is the same as a WebSocket `send`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tidings_chat::model::ChannelKind;
use tidings_chat::service::{NewChannel, Sender};
use tidings_chat::views::{ChannelView, MessageView, PresenceView};
use tidings_chat::Chat;
use tidings_platform::accounts::Principal;
use tidings_platform::page::Page;
use tidings_platform::{Error, Id};
use utoipa::{IntoParams, ToSchema};

use crate::http::extract::{AnyAuth, Json, Path, Query, UserAuth};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    pub kind: ChannelKind,
    /// A group's name; a direct channel has none.
    #[serde(default)]
    pub name: Option<String>,
    /// The other members (for `direct`, exactly one).
    #[schema(value_type = Vec<String>)]
    pub members: Vec<Id>,
}

/// Create a group, or open the direct channel with another user (idempotent per
/// pair: the existing one is answered with 200).
#[utoipa::path(post, path = "/v1/channels", tag = "chat", security(("user" = [])),
    request_body = CreateChannelRequest,
    responses(
        (status = 201, body = ChannelView),
        (status = 200, description = "the pair's direct channel exists", body = ChannelView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_channel(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Json(req): Json<CreateChannelRequest>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let (view, created) = state
        .chat
        .create_channel(
            me.app.id,
            me.user_id,
            NewChannel {
                kind: req.kind,
                name: req.name,
                members: req.members,
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// 1-100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    before: Option<String>,
}

/// My channels, most recently active first, with the last message and unread count.
#[utoipa::path(get, path = "/v1/me/channels", tag = "chat", security(("user" = [])),
    params(ListParams),
    responses((status = 200, body = Page<ChannelView>)))]
pub async fn my_channels(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<ChannelView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let before = params
        .before
        .as_deref()
        .map(Chat::parse_channel_cursor)
        .transpose()?;
    Ok(Json(
        state
            .chat
            .my_channels(me.app.id, me.user_id, before, limit)
            .await?,
    ))
}

/// A channel with its members; members only.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "chat", security(("user" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ChannelView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_channel(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(
        state.chat.channel_view(me.app.id, me.user_id, id).await?,
    ))
}

/// Add a member (group admins add others).
#[utoipa::path(put, path = "/v1/channels/{id}/members/{user_id}", tag = "chat", security(("user" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "a member now"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "direct channel, or the group is full", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path((id, user)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .add_member(me.app.id, me.user_id, id, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave, or (group admins) remove another member.
#[utoipa::path(delete, path = "/v1/channels/{id}/members/{user_id}", tag = "chat", security(("user" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "not a member any more"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path((id, user)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .remove_member(me.app.id, me.user_id, id, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// Messages below this seq (the newest of them).
    before_seq: Option<i64>,
    /// Messages above this seq (the oldest of them).
    after_seq: Option<i64>,
    /// 1-100, default 20.
    limit: Option<u32>,
}

/// History in ascending seq. With neither bound, the newest messages; `next_cursor`
/// is the `before_seq` of the page before (or, paging with `after_seq`, the next
/// `after_seq`).
#[utoipa::path(get, path = "/v1/channels/{id}/messages", tag = "chat",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path), HistoryParams),
    responses(
        (status = 200, body = Page<MessageView>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path(id): Path<Id>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<Page<MessageView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let page = match caller {
        Principal::User(me) => {
            state
                .chat
                .history(
                    me.app.id,
                    me.user_id,
                    id,
                    params.before_seq,
                    params.after_seq,
                    limit,
                )
                .await?
        }
        Principal::App(app) => {
            state
                .chat
                .history_for_app(app.app.id, id, params.before_seq, params.after_seq, limit)
                .await?
        }
    };
    Ok(Json(page))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The client's id for this message: a resend with the same id returns the first.
    pub client_msg_id: String,
    pub text: String,
    /// For the app's backend: the member it sends as.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sender_id: Option<Id>,
}

/// Send a message (the same as the WebSocket `send`): answered once it is stored.
#[utoipa::path(post, path = "/v1/channels/{id}/messages", tag = "chat",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path)),
    request_body = SendRequest,
    responses(
        (status = 201, body = MessageView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn send(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path(id): Path<Id>,
    Json(req): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let (app, user) = match caller {
        Principal::User(me) => {
            if req.sender_id.is_some_and(|s| s != me.user_id) {
                return Err(Error::Forbidden("a user sends as themselves".into()).into());
            }
            (me.app.id, me.user_id)
        }
        Principal::App(app) => {
            let sender = req.sender_id.ok_or_else(|| {
                Error::validation("sender_id", "the app names the member it sends as")
            })?;
            (app.app.id, sender)
        }
    };
    let message = state
        .chat
        .send(
            Sender {
                app,
                user,
                origin: None,
            },
            id,
            &req.client_msg_id,
            &req.text,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(message)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    pub text: String,
}

fn actor(caller: &Principal) -> (Id, Option<Id>) {
    match caller {
        Principal::User(me) => (me.app.id, Some(me.user_id)),
        Principal::App(app) => (app.app.id, None),
    }
}

/// Edit a message (its sender, or the app).
#[utoipa::path(patch, path = "/v1/channels/{id}/messages/{message_id}", tag = "chat",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)),
    request_body = EditRequest,
    responses(
        (status = 200, body = MessageView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn edit_message(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path((id, message)): Path<(Id, Id)>,
    Json(req): Json<EditRequest>,
) -> ApiResult<Json<MessageView>> {
    let (app, actor) = actor(&caller);
    Ok(Json(
        state.chat.edit(app, actor, id, message, &req.text).await?,
    ))
}

/// Delete a message (its sender, or the app): its seq stays, its text goes.
#[utoipa::path(delete, path = "/v1/channels/{id}/messages/{message_id}", tag = "chat",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_message(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path((id, message)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    let (app, actor) = actor(&caller);
    state.chat.delete(app, actor, id, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// React to a message.
#[utoipa::path(put, path = "/v1/channels/{id}/messages/{message_id}/reactions/{emoji}", tag = "chat",
    security(("user" = [])),
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path)),
    responses(
        (status = 204, description = "reacted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_reaction(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path((id, message, emoji)): Path<(Id, Id, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .react(me.app.id, me.user_id, id, message, &emoji, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a reaction back.
#[utoipa::path(delete, path = "/v1/channels/{id}/messages/{message_id}/reactions/{emoji}", tag = "chat",
    security(("user" = [])),
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path)),
    responses((status = 204, description = "not reacted")))]
pub async fn remove_reaction(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path((id, message, emoji)): Path<(Id, Id, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .react(me.app.id, me.user_id, id, message, &emoji, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub seq: i64,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ReadPosition {
    pub read_seq: i64,
}

/// Mark the channel read up to `seq` (the same as the WebSocket `read`).
#[utoipa::path(post, path = "/v1/channels/{id}/read", tag = "chat", security(("user" = [])),
    params(("id" = String, Path)),
    request_body = ReadRequest,
    responses((status = 200, body = ReadPosition)))]
pub async fn mark_read(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
    Json(req): Json<ReadRequest>,
) -> ApiResult<Json<ReadPosition>> {
    let read_seq = state
        .chat
        .mark_read(me.app.id, me.user_id, id, req.seq, None)
        .await?;
    Ok(Json(ReadPosition { read_seq }))
}

/// Whether a user is online, and when they were last seen.
#[utoipa::path(get, path = "/v1/users/{id}/presence", tag = "chat",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = PresenceView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn presence(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<PresenceView>> {
    let app = match &caller {
        Principal::User(me) => me.app.id,
        Principal::App(app) => app.app.id,
    };
    let mut states = state.chat.presence_of(app, &[id]).await?;
    let view = states.pop().ok_or_else(|| Error::not_found("user"))?;
    Ok(Json(view))
}
