//! `GET /v1/ws` (the upgrade) and `GET /v1/ws/endpoint` (discovery).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tidings_chat::views::EndpointView;

use crate::http::extract::{Json, UserAuth};
use crate::http::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::ws::connection::{authenticate, Session};

/// The WebSocket: chat, presence, typing, receipts, feed items and in-app
/// notifications. Authenticate with `Authorization: Bearer` or a first `auth` frame.
#[utoipa::path(get, path = "/v1/ws", tag = "chat",
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "not a WebSocket upgrade", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "the Authorization header's token is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "this node holds all the sockets it may", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            return ApiError::bad_request(format!(
                "this route takes a WebSocket upgrade: {}",
                rejection.body_text()
            ))
            .into_response()
        }
    };
    let gw = state.gateway.clone();
    if *gw.draining.borrow() || gw.hub.sockets() as usize >= gw.config.max_sockets {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node takes no more sockets; ask /v1/ws/endpoint for another",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().expect("static header"));
        return response;
    }
    let pre = match headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => None,
        Some(value) => {
            let token = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            let Some(token) = token else {
                return ApiError::unauthorized("use Authorization: Bearer <user token>")
                    .into_response();
            };
            match state.accounts.authenticate_token(token).await {
                Ok(p) => Some(p),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    let limit = gw.frame_bytes;
    // The socket library's own limits sit above ours, so a frame a little over the
    // limit gets an `error` frame and only a grossly oversized one drops the socket.
    let hard_limit = limit.saturating_mul(2).max(1024);
    upgrade
        .read_buffer_size(gw.config.read_buffer_bytes)
        .write_buffer_size(gw.config.write_buffer_bytes)
        .max_write_buffer_size(
            gw.config
                .max_write_buffer_bytes
                .max(gw.config.write_buffer_bytes + hard_limit + 1),
        )
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |mut socket| async move {
            let (principal, device) = match pre {
                Some(p) => (p, None),
                None => match authenticate(&mut socket, &gw).await {
                    Some(found) => found,
                    None => return,
                },
            };
            Session::run(gw, socket, principal, device).await;
        })
}

/// The gateway this client should connect to: the least-loaded live node.
#[utoipa::path(get, path = "/v1/ws/endpoint", tag = "chat", security(("user" = [])),
    responses((status = 200, body = EndpointView)))]
pub async fn endpoint(
    State(state): State<AppState>,
    UserAuth(_me): UserAuth,
) -> ApiResult<Json<EndpointView>> {
    let url = match state.chat.pick_gateway().await? {
        Some(url) => url,
        None => state.gateway.public_url(),
    };
    Ok(Json(EndpointView { url }))
}
