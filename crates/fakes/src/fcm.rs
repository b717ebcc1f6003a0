//! A stand-in for FCM HTTP v1 and Google's OAuth token endpoint, over TLS. The token
//! endpoint checks the service account's RS256 assertion (issuer, audience, scope,
//! expiry) and issues access tokens; the send endpoint checks them, the project and
//! the message, and answers with FCM's errors as scripted per device token.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::tls::{self_signed, serve_https};

/// Test-only service-account key (see `testdata/README.md`).
pub const TEST_PRIVATE_KEY: &str = include_str!("../testdata/fcm_test_key.pem");
const TEST_PUBLIC_KEY: &str = include_str!("../testdata/fcm_test_key.pub.pem");
pub const PROJECT: &str = "tidings-test";
pub const CLIENT_EMAIL: &str = "push@tidings-test.iam.gserviceaccount.com";

#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub status: u16,
    pub error_code: &'static str,
    pub retry_after_secs: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    pub token: String,
    pub message: Value,
}

struct Shared {
    base_url: String,
    key: DecodingKey,
    issued: Mutex<HashSet<String>>,
    exchanges: AtomicU64,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    received: Mutex<Vec<ReceivedMessage>>,
}

pub struct FakeFcm {
    ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    _addr: SocketAddr,
}

impl FakeFcm {
    pub async fn start() -> anyhow::Result<Self> {
        let cert = self_signed(&[b"h2", b"http/1.1"])?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: format!("https://127.0.0.1:{}", addr.port()),
            key: DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes())?,
            issued: Mutex::new(HashSet::new()),
            exchanges: AtomicU64::new(0),
            script: Mutex::new(HashMap::new()),
            received: Mutex::new(Vec::new()),
        });
        let task_shared = shared.clone();
        let task = serve_https(listener, &cert, move |req| {
            let shared = task_shared.clone();
            async move { handle(req, &shared).await }
        });
        Ok(Self {
            ca_pem: cert.cert_pem,
            shared,
            task,
            _addr: addr,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The service account JSON Google would issue, pointing at this fake.
    pub fn service_account(&self) -> Value {
        json!({
            "project_id": PROJECT,
            "client_email": CLIENT_EMAIL,
            "private_key": TEST_PRIVATE_KEY,
            "private_key_id": "test-key-1",
            "token_uri": format!("{}/token", self.shared.base_url),
        })
    }

    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .entry(token.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.shared.received.lock().clone()
    }

    /// OAuth token exchanges so far.
    pub fn exchanges(&self) -> u64 {
        self.shared.exchanges.load(Ordering::Relaxed)
    }

    /// Invalidates every access token issued so far (as if they expired early).
    pub fn revoke_access_tokens(&self) {
        self.shared.issued.lock().clear();
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: u16, body: Value, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("static header"),
    );
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(hyper::header::RETRY_AFTER, secs.into());
    }
    r
}

fn fcm_error(status: u16, code: &str, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let status_text = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    reply(
        status,
        json!({"error": {"code": status, "message": format!("{code} (fake)"), "status": status_text,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}),
        retry_after,
    )
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path == "/token" {
        return token_endpoint(&body, shared);
    }
    let expected = format!("/v1/projects/{PROJECT}/messages:send");
    if path != expected {
        return fcm_error(404, "NOT_FOUND", None);
    }
    let bearer = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    if !bearer.is_some_and(|b| shared.issued.lock().contains(b)) {
        return fcm_error(401, "THIRD_PARTY_AUTH_ERROR", None);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return fcm_error(400, "INVALID_ARGUMENT", None);
    };
    let message = &body["message"];
    let Some(token) = message["token"].as_str().map(str::to_owned) else {
        return fcm_error(400, "INVALID_ARGUMENT", None);
    };
    let strings = message["data"]
        .as_object()
        .is_none_or(|d| d.values().all(Value::is_string));
    if !strings || message.get("topic").is_some() {
        return fcm_error(400, "INVALID_ARGUMENT", None);
    }
    if let Some(r) = shared
        .script
        .lock()
        .get_mut(&token)
        .and_then(VecDeque::pop_front)
    {
        return fcm_error(r.status, r.error_code, r.retry_after_secs);
    }
    shared.received.lock().push(ReceivedMessage {
        token,
        message: message.clone(),
    });
    reply(
        200,
        json!({"name": format!("projects/{PROJECT}/messages/{}", uuid::Uuid::new_v4().simple())}),
        None,
    )
}

fn token_endpoint(body: &[u8], shared: &Shared) -> Response<Full<Bytes>> {
    let form = crate::twilio::url_decode(body);
    let denied = |why: &str| {
        reply(
            400,
            json!({"error": "invalid_grant", "error_description": why}),
            None,
        )
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return reply(400, json!({"error": "unsupported_grant_type"}), None);
    }
    let Some(assertion) = form.get("assertion") else {
        return denied("missing assertion");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", shared.base_url)]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &shared.key, &validation) else {
        return denied("Invalid JWT Signature.");
    };
    if !data.claims["scope"].as_str().is_some_and(|s| {
        s.split(' ')
            .any(|x| x == "https://www.googleapis.com/auth/firebase.messaging")
    }) {
        return denied("scope does not include firebase.messaging");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if data.claims["iat"]
        .as_u64()
        .is_none_or(|iat| iat > now + 300)
    {
        return denied("iat is in the future");
    }
    let token = format!("ya29.{}", uuid::Uuid::new_v4().simple());
    shared.issued.lock().insert(token.clone());
    shared.exchanges.fetch_add(1, Ordering::Relaxed);
    reply(
        200,
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
        None,
    )
}
