//! Users as the app's backend manages them, and profiles as others see them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tidings_platform::accounts::{CreateUserRequest, MintTokenRequest, TokenResponse, UserView};
use tidings_platform::model::{Preferences, User};
use tidings_platform::page::Page;
use tidings_platform::Id;
use utoipa::IntoParams;

use crate::http::extract::{AnyAuth, AppAuth, Json, Path, Query};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Create a user (no password needed: the app vouches for them).
#[utoipa::path(post, path = "/v1/users", tag = "users",
    security(("app" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = User),
        (status = 409, description = "username or external_id taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state.accounts.create_user(&app, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// Username prefix; empty lists everyone.
    #[serde(default)]
    query: String,
    /// 1-100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
}

/// Search users by username prefix, in username order.
#[utoipa::path(get, path = "/v1/users", tag = "users",
    security(("user" = []), ("app" = [])),
    params(SearchParams),
    responses((status = 200, body = Page<UserView>)))]
pub async fn search_users(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<Page<UserView>>> {
    let limit = state.page_limits().resolve(params.limit)?;
    let page = state
        .accounts
        .search(&caller, &params.query, params.after.as_deref(), limit)
        .await?;
    Ok(Json(page))
}

/// A user's profile: in full for the app and for the user themself, public fields
/// (no contact details) for other users.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    security(("user" = []), ("app" = [])),
    params(("id" = String, Path, description = "user id")),
    responses(
        (status = 200, body = UserView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    AnyAuth(caller): AnyAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(state.accounts.user(&caller, id).await?))
}

/// Mint a token for a user, for apps that run their own login.
#[utoipa::path(post, path = "/v1/users/{id}/tokens", tag = "users",
    security(("app" = [])),
    params(("id" = String, Path, description = "user id")),
    request_body(content = Option<MintTokenRequest>, description = "optional; `{}` or no body for the default lifetime"),
    responses(
        (status = 201, body = TokenResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mint_token(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(id): Path<Id>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    // The body is optional; when present it must be valid.
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        MintTokenRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::http::problem::ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                e.to_string(),
            )
        })?
    };
    let token = state.accounts.mint_token(&app, id, req).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// A user's notification preferences, as the app sees them.
#[utoipa::path(get, path = "/v1/users/{id}/preferences", tag = "users",
    security(("app" = [])),
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = Preferences), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_user_preferences(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(id): Path<Id>,
) -> ApiResult<Json<Preferences>> {
    Ok(Json(state.accounts.preferences(app.app.id, id).await?))
}

/// Replace a user's notification preferences on their behalf.
#[utoipa::path(put, path = "/v1/users/{id}/preferences", tag = "users",
    security(("app" = [])),
    params(("id" = String, Path, description = "user id")),
    request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_user_preferences(
    State(state): State<AppState>,
    AppAuth(app): AppAuth,
    Path(id): Path<Id>,
    Json(prefs): Json<Preferences>,
) -> ApiResult<Json<Preferences>> {
    Ok(Json(
        state
            .accounts
            .put_preferences(app.app.id, id, prefs)
            .await?,
    ))
}
