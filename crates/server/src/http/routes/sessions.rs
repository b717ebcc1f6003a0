//! Signup and login: the routes that come before any token, naming the app by its
//! public key.

use axum::extract::State;
use axum::http::StatusCode;
use tidings_platform::accounts::{LoginRequest, SessionResponse, SignupRequest};

use crate::http::extract::{ClientIp, Json, PublicApp};
use crate::http::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Create an account with a password and get a token for it.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "users",
    params(("X-App-Key" = String, Header, description = "the app's public key")),
    request_body = SignupRequest,
    responses(
        (status = 201, body = SessionResponse),
        (status = 403, description = "open signup is off", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid field", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    PublicApp(app): PublicApp,
    Json(req): Json<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let session = state.accounts.signup(&app, req).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Exchange a username and password for a token. Repeated failures for an account or
/// from an address are answered 429 with `Retry-After`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "users",
    params(("X-App-Key" = String, Header, description = "the app's public key")),
    request_body = LoginRequest,
    responses(
        (status = 200, body = SessionResponse),
        (status = 401, description = "wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many failures", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    PublicApp(app): PublicApp,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<SessionResponse>> {
    Ok(Json(state.accounts.login(&app, req, ip).await?))
}
