//! The signed-in user's own profile, devices and preferences.

use axum::extract::State;
use axum::http::StatusCode;
use tidings_platform::accounts::{RegisterDeviceRequest, UpdateMeRequest};
use tidings_platform::model::device::DeviceView;
use tidings_platform::model::{Preferences, User};
use tidings_platform::Id;

use crate::http::extract::{Json, Path, UserAuth};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

/// The signed-in user's profile.
#[utoipa::path(get, path = "/v1/me", tag = "users", security(("user" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn get_me(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
) -> ApiResult<Json<User>> {
    Ok(Json(state.accounts.me(&me).await?))
}

/// Change display_name, email, phone, locale, timezone or avatar_url; `null` clears.
#[utoipa::path(patch, path = "/v1/me", tag = "users", security(("user" = [])),
    request_body = UpdateMeRequest,
    responses((status = 200, body = User), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_me(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Json(req): Json<UpdateMeRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.accounts.update_me(&me, req).await?))
}

/// Register a push token (upsert by platform and token).
#[utoipa::path(post, path = "/v1/me/devices", tag = "users", security(("user" = [])),
    request_body = RegisterDeviceRequest,
    responses((status = 201, body = DeviceView), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn register_device(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Json(req): Json<RegisterDeviceRequest>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.accounts.register_device(&me, req).await?),
    ))
}

/// The signed-in user's active devices.
#[utoipa::path(get, path = "/v1/me/devices", tag = "users", security(("user" = [])),
    responses((status = 200, body = Vec<DeviceView>)))]
pub async fn list_devices(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
) -> ApiResult<Json<Vec<DeviceView>>> {
    Ok(Json(state.accounts.devices(&me).await?))
}

/// Remove one of the signed-in user's devices.
#[utoipa::path(delete, path = "/v1/me/devices/{id}", tag = "users", security(("user" = [])),
    params(("id" = String, Path, description = "device id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_device(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    state.accounts.delete_device(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's notification preferences (defaults until set).
#[utoipa::path(get, path = "/v1/me/preferences", tag = "users", security(("user" = [])),
    responses((status = 200, body = Preferences)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
) -> ApiResult<Json<Preferences>> {
    Ok(Json(
        state.accounts.preferences(me.app.id, me.user_id).await?,
    ))
}

/// Replace the signed-in user's notification preferences.
#[utoipa::path(put, path = "/v1/me/preferences", tag = "users", security(("user" = [])),
    request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_preferences(
    State(state): State<AppState>,
    UserAuth(me): UserAuth,
    Json(prefs): Json<Preferences>,
) -> ApiResult<Json<Preferences>> {
    Ok(Json(
        state
            .accounts
            .put_preferences(me.app.id, me.user_id, prefs)
            .await?,
    ))
}
