//! The HTTP surface: routes, the OpenAPI document built from them, and the layers
//! every request passes through.

pub mod extract;
pub mod metrics;
pub mod problem;
pub mod routes;

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::Method;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::problem::{code_for_status, ApiError, PROBLEM_JSON};
use crate::http::routes::{chat, feed, health, me, notifications, sessions, users, webhooks};
use crate::state::AppState;
use crate::ws;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tidings",
        description = "Notifications, news feeds and chat for your app: one self-hosted server.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "users", description = "Users, sessions, contacts"),
        (name = "notifications", description = "Push, SMS, email, webhook and in-app notifications"),
        (name = "chat", description = "Channels, messages, presence and the WebSocket"),
        (name = "feed", description = "Follows, mutes, posts, likes, replies and the home feed"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "app",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("app_key:app_secret, from the app's backend only"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "user",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("a user token from signup, login or minting"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "app_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-App-Key"))),
        );
    }
}

/// Every route with its OpenAPI description. Adding a route anywhere else would
/// leave it out of the document, so this is the only place routes are added.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(sessions::signup))
        .routes(routes!(sessions::login))
        .routes(routes!(users::create_user, users::search_users))
        .routes(routes!(users::get_user))
        .routes(routes!(users::mint_token))
        .routes(routes!(
            users::get_user_preferences,
            users::put_user_preferences
        ))
        .routes(routes!(me::get_me, me::patch_me))
        .routes(routes!(me::register_device, me::list_devices))
        .routes(routes!(me::delete_device))
        .routes(routes!(me::get_preferences, me::put_preferences))
        .routes(routes!(notifications::send))
        .routes(routes!(notifications::status))
        .routes(routes!(notifications::event))
        .routes(routes!(
            notifications::put_template,
            notifications::get_template,
            notifications::delete_template
        ))
        .routes(routes!(
            notifications::subscribe,
            notifications::unsubscribe
        ))
        .routes(routes!(notifications::inbox))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(notifications::stats))
        .routes(routes!(notifications::queues))
        .routes(routes!(notifications::dead_letters))
        .routes(routes!(notifications::retry_dead_letter))
        .routes(routes!(webhooks::twilio_status))
        .routes(routes!(webhooks::sendgrid_events))
        .routes(routes!(
            notifications::put_provider,
            notifications::get_provider,
            notifications::delete_provider
        ))
        .routes(routes!(chat::create_channel))
        .routes(routes!(chat::my_channels))
        .routes(routes!(chat::get_channel))
        .routes(routes!(chat::add_member, chat::remove_member))
        .routes(routes!(chat::history, chat::send))
        .routes(routes!(chat::edit_message, chat::delete_message))
        .routes(routes!(chat::add_reaction, chat::remove_reaction))
        .routes(routes!(chat::mark_read))
        .routes(routes!(chat::presence))
        .routes(routes!(ws::routes::websocket))
        .routes(routes!(ws::routes::endpoint))
        .routes(routes!(feed::follow, feed::unfollow))
        .routes(routes!(feed::followers))
        .routes(routes!(feed::following))
        .routes(routes!(feed::mute, feed::unmute))
        .routes(routes!(feed::create_post))
        .routes(routes!(feed::get_post, feed::delete_post))
        .routes(routes!(feed::home))
        .routes(routes!(feed::author_posts))
        .routes(routes!(feed::like, feed::unlike))
        .routes(routes!(feed::reply, feed::replies))
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> OpenApiDoc {
    api_router().split_for_parts().1
}

pub fn router(state: AppState) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let doc_json = doc.to_json().unwrap_or_else(|_| "{}".into());
    let limits = state.config.limits.clone();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], doc_json)
            }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        // Inner to outer. The problem rewrite wraps the timeout so a timed-out
        // request is a problem too; metrics wrap both so they count what was sent.
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .layer(middleware::from_fn(problem_for_every_error))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

/// Whatever answered with an error status without a problem body (a layer, a
/// framework rejection), the client still gets problem+json.
async fn problem_for_every_error(request: Request, next: Next) -> Response {
    let head_request = request.method() == Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || head_request {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let detail = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) if !bytes.is_empty() && status.is_client_error() => {
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => problem::title_for(status),
    };
    let mut fixed = ApiError::new(status, code_for_status(status), detail).into_response();
    if let Some(v) = retry_after {
        fixed.headers_mut().insert(header::RETRY_AFTER, v);
    }
    fixed
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %what, "handler panicked");
    let mut response = ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred; it has been logged",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
