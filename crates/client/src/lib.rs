//! Typed async client for the Tidings HTTP API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tidings_client::Error> {
//! let server = tidings_client::Client::new("http://127.0.0.1:8080")?;
//! let backend = server.as_app("ak_...", "as_...");
//! let user = backend.create_user(&tidings_client::CreateUser { username: Some("alice".into()), ..Default::default() }).await?;
//! let token = backend.mint_token(&user.id, None).await?;
//! let alice = server.as_user(&token.token);
//! println!("{:?}", alice.me().await?);
//! # Ok(()) }
//! ```
//!
//! The wire types here are this crate's own, written from the API contract rather
//! than shared with the server, so the client's tests check the contract itself.

mod chat;
mod error;
mod feed;
mod socket;
mod types;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use chat::*;
pub use error::{Error, Problem};
pub use feed::*;
pub use socket::{Frame, Socket, SocketError};
pub use types::*;

#[derive(Clone, Debug)]
enum Auth {
    None,
    App { key: String, secret: String },
    User(String),
    AppKey(String),
}

/// A handle on one Tidings server, acting as nobody, an app or a user.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl Client {
    /// A client for the server at `base_url` (`http://host:port`, no path).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(Error::Http)?;
        Ok(Self::with_http(http, base_url))
    }

    /// Shares an existing connection pool.
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            auth: Auth::None,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same server, as the app's backend (HTTP Basic app_key:app_secret).
    pub fn as_app(&self, app_key: &str, app_secret: &str) -> Self {
        Self {
            auth: Auth::App {
                key: app_key.to_owned(),
                secret: app_secret.to_owned(),
            },
            ..self.clone()
        }
    }

    /// The same server, as an end user holding `token`.
    pub fn as_user(&self, token: &str) -> Self {
        Self {
            auth: Auth::User(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same server, naming an app by its public key (for signup and login).
    pub fn for_app_key(&self, app_key: &str) -> Self {
        Self {
            auth: Auth::AppKey(app_key.to_owned()),
            ..self.clone()
        }
    }

    /// The user token this client acts with, if it acts as a user.
    pub fn token(&self) -> Option<&str> {
        match &self.auth {
            Auth::User(token) => Some(token),
            _ => None,
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{}", self.base, path));
        match &self.auth {
            Auth::None => builder,
            Auth::App { key, secret } => builder.basic_auth(key, Some(secret)),
            Auth::User(token) => builder.bearer_auth(token),
            Auth::AppKey(key) => builder.header("X-App-Key", key),
        }
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, Error> {
        let response = builder.send().await.map_err(Error::Http)?;
        decode(check(response).await?).await
    }

    async fn send_empty(&self, builder: RequestBuilder) -> Result<(), Error> {
        let response = builder.send().await.map_err(Error::Http)?;
        check(response).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn with_body<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.send(self.request(method, path).json(body)).await
    }

    // ---- operations -----------------------------------------------------------------

    pub async fn healthz(&self) -> Result<serde_json::Value, Error> {
        self.get("/healthz").await
    }

    pub async fn readyz(&self) -> Result<serde_json::Value, Error> {
        self.get("/readyz").await
    }

    pub async fn metrics_text(&self) -> Result<String, Error> {
        let response = self
            .request(Method::GET, "/metrics")
            .send()
            .await
            .map_err(Error::Http)?;
        check(response).await?.text().await.map_err(Error::Http)
    }

    pub async fn openapi(&self) -> Result<serde_json::Value, Error> {
        self.get("/openapi.json").await
    }

    // ---- users, sessions, contacts --------------------------------------------------

    pub async fn signup(&self, req: &Signup) -> Result<Session, Error> {
        self.with_body(Method::POST, "/v1/auth/signup", req).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Session, Error> {
        self.with_body(
            Method::POST,
            "/v1/auth/login",
            &serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn create_user(&self, req: &CreateUser) -> Result<User, Error> {
        self.with_body(Method::POST, "/v1/users", req).await
    }

    pub async fn mint_token(&self, user_id: &str, ttl_secs: Option<u64>) -> Result<Token, Error> {
        let body = match ttl_secs {
            Some(ttl) => serde_json::json!({ "ttl_secs": ttl }),
            None => serde_json::json!({}),
        };
        self.with_body(Method::POST, &format!("/v1/users/{user_id}/tokens"), &body)
            .await
    }

    pub async fn me(&self) -> Result<User, Error> {
        self.get("/v1/me").await
    }

    /// Fields left `None` in `patch` are not sent; use [`UpdateMe::clear`] to send
    /// `null`.
    pub async fn update_me(&self, patch: &UpdateMe) -> Result<User, Error> {
        self.with_body(Method::PATCH, "/v1/me", &patch.to_json())
            .await
    }

    pub async fn user(&self, id: &str) -> Result<User, Error> {
        self.get(&format!("/v1/users/{id}")).await
    }

    pub async fn search_users(
        &self,
        query: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<User>, Error> {
        let mut params: Vec<(&str, String)> = vec![("query", query.to_owned())];
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(a) = after {
            params.push(("after", a.to_owned()));
        }
        self.send(self.request(Method::GET, "/v1/users").query(&params))
            .await
    }

    pub async fn register_device(
        &self,
        platform: &str,
        token: &str,
        topic: Option<&str>,
    ) -> Result<Device, Error> {
        self.with_body(
            Method::POST,
            "/v1/me/devices",
            &serde_json::json!({"platform": platform, "token": token, "topic": topic}),
        )
        .await
    }

    pub async fn devices(&self) -> Result<Vec<Device>, Error> {
        self.get("/v1/me/devices").await
    }

    pub async fn delete_device(&self, id: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::DELETE, &format!("/v1/me/devices/{id}")))
            .await
    }

    pub async fn preferences(&self) -> Result<Preferences, Error> {
        self.get("/v1/me/preferences").await
    }

    pub async fn put_preferences(&self, prefs: &Preferences) -> Result<Preferences, Error> {
        self.with_body(Method::PUT, "/v1/me/preferences", prefs)
            .await
    }

    pub async fn user_preferences(&self, user_id: &str) -> Result<Preferences, Error> {
        self.get(&format!("/v1/users/{user_id}/preferences")).await
    }

    pub async fn put_user_preferences(
        &self,
        user_id: &str,
        prefs: &Preferences,
    ) -> Result<Preferences, Error> {
        self.with_body(
            Method::PUT,
            &format!("/v1/users/{user_id}/preferences"),
            prefs,
        )
        .await
    }

    // ---- notifications --------------------------------------------------------------

    /// `POST /v1/notifications` with a body built by the caller (see the contract).
    pub async fn send_notification(&self, body: &serde_json::Value) -> Result<SendAccepted, Error> {
        self.with_body(Method::POST, "/v1/notifications", body)
            .await
    }

    pub async fn notification(&self, id: &str) -> Result<NotificationStatus, Error> {
        self.get(&format!("/v1/notifications/{id}")).await
    }

    pub async fn track(&self, notification_id: &str, kind: &str) -> Result<(), Error> {
        let body = serde_json::json!({ "type": kind });
        self.send_empty(
            self.request(
                Method::POST,
                &format!("/v1/notifications/{notification_id}/events"),
            )
            .json(&body),
        )
        .await
    }

    pub async fn put_template(
        &self,
        name: &str,
        template: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.with_body(Method::PUT, &format!("/v1/templates/{name}"), template)
            .await
    }

    pub async fn template(&self, name: &str) -> Result<serde_json::Value, Error> {
        self.get(&format!("/v1/templates/{name}")).await
    }

    pub async fn delete_template(&self, name: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::DELETE, &format!("/v1/templates/{name}")))
            .await
    }

    pub async fn subscribe(&self, user_id: &str, topic: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::PUT, &format!("/v1/users/{user_id}/topics/{topic}")))
            .await
    }

    pub async fn unsubscribe(&self, user_id: &str, topic: &str) -> Result<(), Error> {
        self.send_empty(self.request(
            Method::DELETE,
            &format!("/v1/users/{user_id}/topics/{topic}"),
        ))
        .await
    }

    pub async fn inbox(
        &self,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<InboxPage, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(b) = before {
            params.push(("before", b.to_owned()));
        }
        self.send(self.request(Method::GET, "/v1/me/inbox").query(&params))
            .await
    }

    pub async fn mark_read(&self, item_id: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::POST, &format!("/v1/me/inbox/{item_id}/read")))
            .await
    }

    pub async fn notification_stats(
        &self,
        since: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let mut req = self.request(Method::GET, "/v1/stats/notifications");
        if let Some(s) = since {
            req = req.query(&[("since", s)]);
        }
        self.send(req).await
    }

    pub async fn queues(&self) -> Result<std::collections::BTreeMap<String, QueueState>, Error> {
        self.get("/v1/admin/queues").await
    }

    pub async fn dead_letters(
        &self,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<Delivery>, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(b) = before {
            params.push(("before", b.to_owned()));
        }
        self.send(
            self.request(Method::GET, "/v1/admin/dead-letters")
                .query(&params),
        )
        .await
    }

    pub async fn retry_dead_letter(&self, delivery_id: &str) -> Result<(), Error> {
        self.send_empty(self.request(
            Method::POST,
            &format!("/v1/admin/dead-letters/{delivery_id}/retry"),
        ))
        .await
    }

    pub async fn put_provider(
        &self,
        channel: &str,
        settings: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.with_body(Method::PUT, &format!("/v1/providers/{channel}"), settings)
            .await
    }

    pub async fn provider(&self, channel: &str) -> Result<serde_json::Value, Error> {
        self.get(&format!("/v1/providers/{channel}")).await
    }

    pub async fn delete_provider(&self, channel: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::DELETE, &format!("/v1/providers/{channel}")))
            .await
    }
}

async fn check(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.map_err(Error::Http)?;
    let problem = if content_type.starts_with("application/problem+json") {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    Err(Error::Api {
        status: status.as_u16(),
        problem: Box::new(problem.unwrap_or_else(|| Problem::from_status(status, &body))),
        retry_after_secs: retry_after,
    })
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let status = response.status();
    let body = response.bytes().await.map_err(Error::Http)?;
    // Routes that answer 204 decode as unit or an empty JSON value.
    let body: &[u8] = if body.is_empty() || status == StatusCode::NO_CONTENT {
        b"null"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| Error::Decode(e.to_string()))
}
