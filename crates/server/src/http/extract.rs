//! Request extractors that answer bad input with problem+json instead of axum's
//! plain-text rejections, and the three ways a caller authenticates.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tidings_platform::accounts::{AppPrincipal, Principal, UserPrincipal};
use tidings_platform::model::App;

use crate::http::problem::{code_for_status, ApiError};
use crate::state::AppState;

/// JSON body. Syntax errors are 400, wrong shapes 422, a missing content type 415 and
/// an oversized body 413, all as problem+json.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::JsonDataError(e) => format!(
            "the body does not match the expected shape: {}",
            source_text(e)
        ),
        JsonRejection::JsonSyntaxError(e) => {
            format!("the body is not valid JSON: {}", source_text(e))
        }
        JsonRejection::MissingJsonContentType(_) => {
            "send the body with Content-Type: application/json".into()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts".into()
        }
        other => other.body_text(),
    };
    ApiError::new(status, code_for_status(status), detail)
}

/// The innermost message of a rejection, which names the field and position.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut current: &dyn std::error::Error = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a malformed one (an id that is not a number) is a 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(format!("invalid path parameter: {}", e.body_text()))
            })
    }
}

/// Query string parameters; malformed ones are a 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!("invalid query string: {}", e.body_text()))
            })
    }
}

enum Credentials {
    Basic { key: String, secret: String },
    Bearer(String),
}

fn credentials(parts: &Parts) -> Result<Credentials, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
        let (key, secret) = decoded.split_once(':').ok_or_else(|| {
            ApiError::unauthorized("Basic credentials must be app_key:app_secret")
        })?;
        return Ok(Credentials::Basic {
            key: key.to_owned(),
            secret: secret.to_owned(),
        });
    }
    Err(ApiError::unauthorized(
        "use Bearer (user token) or Basic (app credentials)",
    ))
}

/// The app's own backend, authenticated with HTTP Basic `app_key:app_secret`.
pub struct AppAuth(pub AppPrincipal);

impl FromRequestParts<AppState> for AppAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match credentials(parts)? {
            Credentials::Basic { key, secret } => Ok(AppAuth(
                state.accounts.authenticate_app(&key, &secret).await?,
            )),
            Credentials::Bearer(_) => Err(ApiError::forbidden(
                "this route is for the app's backend (Basic app credentials)",
            )),
        }
    }
}

/// An end user, authenticated with `Authorization: Bearer <token>`.
pub struct UserAuth(pub UserPrincipal);

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match credentials(parts)? {
            Credentials::Bearer(token) => {
                Ok(UserAuth(state.accounts.authenticate_token(&token).await?))
            }
            Credentials::Basic { .. } => Err(ApiError::forbidden(
                "this route is for users (Bearer token)",
            )),
        }
    }
}

/// Either a user or the app.
pub struct AnyAuth(pub Principal);

impl FromRequestParts<AppState> for AnyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(AnyAuth(match credentials(parts)? {
            Credentials::Bearer(token) => {
                Principal::User(state.accounts.authenticate_token(&token).await?)
            }
            Credentials::Basic { key, secret } => {
                Principal::App(state.accounts.authenticate_app(&key, &secret).await?)
            }
        }))
    }
}

/// The app named by the public `X-App-Key` header (signup and login).
pub struct PublicApp(pub Arc<App>);

impl FromRequestParts<AppState> for PublicApp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("x-app-key")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing X-App-Key header naming the app"))?;
        Ok(PublicApp(
            state.accounts.app_for_public_key(key.trim()).await?,
        ))
    }
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when the
/// operator said a trusted proxy sets it.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.auth.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return Ok(ClientIp(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(peer))
    }
}
