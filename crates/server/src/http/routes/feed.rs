//! The news feed over HTTP: the follow graph, mutes, posts, likes, replies, and the
//! hydrated home feed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tidings_feed::views::{AuthorView, PostView};
use tidings_platform::page::Page;
use tidings_platform::{Error, Id};
use utoipa::{IntoParams, ToSchema};

use crate::http::extract::{Json, Path, Query, UserAuth};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

fn cursor(field: &'static str, raw: Option<&str>) -> Result<Option<Id>, Error> {
    raw.map(|c| {
        c.parse::<Id>()
            .map_err(|_| Error::validation(field, "not a cursor this server issued"))
    })
    .transpose()
}

/// Follow a user (idempotent). Their recent posts join your feed.
#[utoipa::path(put, path = "/v1/me/following/{user_id}", tag = "feed", security(("user" = [])),
    params(("user_id" = String, Path)),
    responses(
        (status = 204, description = "following"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "yourself", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn follow(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
) -> ApiResult<StatusCode> {
    state.feed.follow(me.app.id, me.user_id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unfollow (idempotent). Their posts leave your feed.
#[utoipa::path(delete, path = "/v1/me/following/{user_id}", tag = "feed", security(("user" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204, description = "not following")))]
pub async fn unfollow(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
) -> ApiResult<StatusCode> {
    state.feed.unfollow(me.app.id, me.user_id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GraphParams {
    /// 1-100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
}

/// Who follows a user.
#[utoipa::path(get, path = "/v1/users/{id}/followers", tag = "feed", security(("user" = [])),
    params(("id" = String, Path), GraphParams),
    responses((status = 200, body = Page<AuthorView>)))]
pub async fn followers(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
    Query(params): Query<GraphParams>,
) -> ApiResult<Json<Page<AuthorView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let after = cursor("after", params.after.as_deref())?;
    Ok(Json(
        state
            .feed
            .graph(me.app.id, user, true, after, limit)
            .await?,
    ))
}

/// Whom a user follows.
#[utoipa::path(get, path = "/v1/users/{id}/following", tag = "feed", security(("user" = [])),
    params(("id" = String, Path), GraphParams),
    responses((status = 200, body = Page<AuthorView>)))]
pub async fn following(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
    Query(params): Query<GraphParams>,
) -> ApiResult<Json<Page<AuthorView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let after = cursor("after", params.after.as_deref())?;
    Ok(Json(
        state
            .feed
            .graph(me.app.id, user, false, after, limit)
            .await?,
    ))
}

/// Mute a user: their posts never appear in your feed.
#[utoipa::path(put, path = "/v1/me/muted/{user_id}", tag = "feed", security(("user" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204, description = "muted")))]
pub async fn mute(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
) -> ApiResult<StatusCode> {
    state.feed.mute(me.app.id, me.user_id, user, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unmute a user.
#[utoipa::path(delete, path = "/v1/me/muted/{user_id}", tag = "feed", security(("user" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204, description = "not muted")))]
pub async fn unmute(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(user): Path<Id>,
) -> ApiResult<StatusCode> {
    state.feed.mute(me.app.id, me.user_id, user, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostRequest {
    pub text: String,
    /// Media attachments are not supported yet: leave out or send an empty list.
    #[serde(default)]
    pub media_ids: Vec<String>,
}

/// Publish a post. With `Idempotency-Key`, a retry returns the first post (200).
#[utoipa::path(post, path = "/v1/posts", tag = "feed", security(("user" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key again returns the first post")),
    request_body = PostRequest,
    responses(
        (status = 201, body = PostView),
        (status = 200, description = "the key was used before: the first post", body = PostView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_post(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    headers: HeaderMap,
    Json(req): Json<PostRequest>,
) -> ApiResult<(StatusCode, Json<PostView>)> {
    if !req.media_ids.is_empty() {
        return Err(
            Error::validation("media_ids", "media attachments are not supported yet").into(),
        );
    }
    let key =
        match headers.get("idempotency-key") {
            Some(v) => Some(v.to_str().map_err(|_| {
                Error::validation("Idempotency-Key", "not a printable header value")
            })?),
            None => None,
        };
    let (post, created) = state
        .feed
        .create_post(me.app.id, me.user_id, &req.text, key, None)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(post)))
}

/// A post.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "feed", security(("user" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_post(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<PostView>> {
    Ok(Json(state.feed.post(me.app.id, me.user_id, id).await?))
}

/// Delete your post: it leaves every feed.
#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "feed", security(("user" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_post(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    state.feed.delete_post(me.app.id, me.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedParams {
    /// 1-100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page (older posts).
    before: Option<String>,
}

/// My home feed, newest first, hydrated. It pages back past the cache to the very
/// first post of everyone I follow.
#[utoipa::path(get, path = "/v1/me/feed", tag = "feed", security(("user" = [])),
    params(FeedParams),
    responses((status = 200, body = Page<PostView>)))]
pub async fn home(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Query(params): Query<FeedParams>,
) -> ApiResult<Json<Page<PostView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let before = cursor("before", params.before.as_deref())?;
    Ok(Json(
        state
            .feed
            .home(me.app.id, me.user_id, before, limit)
            .await?,
    ))
}

/// An author's own posts, newest first.
#[utoipa::path(get, path = "/v1/users/{id}/posts", tag = "feed", security(("user" = [])),
    params(("id" = String, Path), FeedParams),
    responses((status = 200, body = Page<PostView>)))]
pub async fn author_posts(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(author): Path<Id>,
    Query(params): Query<FeedParams>,
) -> ApiResult<Json<Page<PostView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let before = cursor("before", params.before.as_deref())?;
    Ok(Json(
        state
            .feed
            .author_posts(me.app.id, me.user_id, author, before, limit)
            .await?,
    ))
}

/// Like a post (idempotent); the post with its new count.
#[utoipa::path(put, path = "/v1/posts/{id}/like", tag = "feed", security(("user" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn like(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<PostView>> {
    Ok(Json(
        state.feed.like(me.app.id, me.user_id, id, true).await?,
    ))
}

/// Unlike a post (idempotent).
#[utoipa::path(delete, path = "/v1/posts/{id}/like", tag = "feed", security(("user" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unlike(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<PostView>> {
    Ok(Json(
        state.feed.like(me.app.id, me.user_id, id, false).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    pub text: String,
}

/// Reply to a post.
#[utoipa::path(post, path = "/v1/posts/{id}/replies", tag = "feed", security(("user" = [])),
    params(("id" = String, Path)),
    request_body = ReplyRequest,
    responses((status = 201, body = PostView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reply(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
    Json(req): Json<ReplyRequest>,
) -> ApiResult<(StatusCode, Json<PostView>)> {
    let post = state
        .feed
        .reply(me.app.id, me.user_id, id, &req.text)
        .await?;
    Ok((StatusCode::CREATED, Json(post)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RepliesParams {
    /// 1-100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page (newer replies).
    after: Option<String>,
}

/// Replies to a post, oldest first.
#[utoipa::path(get, path = "/v1/posts/{id}/replies", tag = "feed", security(("user" = [])),
    params(("id" = String, Path), RepliesParams),
    responses((status = 200, body = Page<PostView>)))]
pub async fn replies(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
    Query(params): Query<RepliesParams>,
) -> ApiResult<Json<Page<PostView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let after = cursor("after", params.after.as_deref())?;
    Ok(Json(
        state
            .feed
            .replies(me.app.id, me.user_id, id, after, limit)
            .await?,
    ))
}
