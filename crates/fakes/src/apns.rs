//! A stand-in for APNs: HTTP/2 only, over TLS, checking what Apple checks — the
//! provider token (ES256 JWT with the right key id and team, not older than an hour),
//! the topic, push type, priority, `apns-id`, collapse id and payload — and answering
//! with Apple's status codes and reasons, as scripted per device token.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::tls::self_signed;

#[derive(Clone, Debug)]
pub struct FakeApnsConfig {
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    /// Verifies provider tokens (SPKI PEM of the signing key).
    pub public_key_pem: String,
    /// The signing key, for the client's settings (not used by the fake).
    pub private_key_pem: String,
    /// Advertised `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_streams: u32,
    /// Keep every accepted request for inspection (off for load tests).
    pub record: bool,
}

impl FakeApnsConfig {
    /// A fresh P-256 key and Apple-shaped ids.
    pub fn for_tests() -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok(Self {
            key_id: "ABCDE12345".into(),
            team_id: "TEAM123456".into(),
            topic: "com.example.app".into(),
            public_key_pem: key.public_key_pem(),
            private_key_pem: key.serialize_pem(),
            max_streams: 500,
            record: true,
        })
    }
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub reason: &'static str,
    pub retry_after_secs: Option<u64>,
}

impl Reply {
    pub fn status(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            retry_after_secs: None,
        }
    }
}

/// An accepted request as the fake saw it.
#[derive(Clone, Debug)]
pub struct ReceivedPush {
    pub token: String,
    pub topic: String,
    pub push_type: String,
    pub priority: String,
    pub apns_id: Option<String>,
    pub collapse_id: Option<String>,
    pub expiration: Option<String>,
    pub authorization: String,
    pub payload: Value,
    /// Which connection it came on, numbered from 1 in the order they were accepted:
    /// tells the requests of a client that has since died from a new one's.
    pub connection: u64,
}

#[derive(Default)]
struct Script {
    per_token: HashMap<String, VecDeque<Reply>>,
}

struct Shared {
    config: FakeApnsConfig,
    key: DecodingKey,
    verified: Mutex<HashSet<String>>,
    script: Mutex<Script>,
    received: Mutex<Vec<ReceivedPush>>,
    requests: AtomicU64,
    count: watch::Sender<u64>,
    /// Requests accepted and recorded, answered or not.
    recorded: watch::Sender<u64>,
    /// Connections accepted so far.
    connections: AtomicU64,
    /// While true, accepted requests are recorded but not answered: they stay in
    /// flight, as when a crash takes the sender down before the reply.
    hold: watch::Sender<bool>,
    /// Bumped to make every open connection go away (GOAWAY, then close).
    retire: watch::Sender<u64>,
    /// Connections open now.
    open: watch::Sender<u64>,
}

pub struct FakeApns {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    count: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApns {
    pub async fn start(config: FakeApnsConfig) -> anyhow::Result<Self> {
        let cert = self_signed(&[b"h2"])?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let key = DecodingKey::from_ec_pem(config.public_key_pem.as_bytes())?;
        let (count_tx, count) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            config,
            key,
            verified: Mutex::new(HashSet::new()),
            script: Mutex::new(Script::default()),
            received: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            count: count_tx,
            recorded: watch::channel(0u64).0,
            connections: AtomicU64::new(0),
            hold: watch::channel(false).0,
            retire: watch::channel(0u64).0,
            open: watch::channel(0u64).0,
        });
        let acceptor = TlsAcceptor::from(cert.server_config.clone());
        let task_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, shared) = (acceptor.clone(), task_shared.clone());
                let connection = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                        return; // APNs speaks HTTP/2 only.
                    }
                    let streams = shared.config.max_streams;
                    let mut retire = shared.retire.subscribe();
                    let gauge = shared.clone();
                    gauge.open.send_modify(|n| *n += 1);
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(req, &shared, connection).await) }
                    });
                    let serving = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(streams)
                        .serve_connection(TokioIo::new(tls), service);
                    tokio::pin!(serving);
                    tokio::select! {
                        _ = serving.as_mut() => {}
                        _ = retire.changed() => {
                            serving.as_mut().graceful_shutdown();
                            let _ = serving.await;
                        }
                    }
                    gauge.open.send_modify(|n| *n -= 1);
                });
            }
        });
        Ok(Self {
            addr,
            ca_pem: cert.cert_pem,
            shared,
            count,
            task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The certificate a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn config(&self) -> &FakeApnsConfig {
        &self.shared.config
    }

    /// The `apns` provider settings that point a server at this fake.
    pub fn provider_settings(&self) -> Value {
        let c = &self.shared.config;
        json!({
            "key_pem": c.private_key_pem, "key_id": c.key_id, "team_id": c.team_id, "topic": c.topic,
            "environment": "sandbox", "endpoint": self.base_url(), "ca_pem": self.ca_pem()
        })
    }

    /// The next requests for `token` get these answers in order; then 200.
    pub fn script(&self, token: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .per_token
            .entry(token.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn received(&self) -> Vec<ReceivedPush> {
        self.shared.received.lock().clone()
    }

    /// Requests answered, whatever the answer.
    pub fn count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted so far; the next one gets this number plus one.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Holds (or releases) the answers to accepted requests; see [`Shared::hold`].
    pub fn hold(&self, on: bool) {
        self.shared.hold.send_replace(on);
    }

    /// Retires every open connection as APNs does now and then: a GOAWAY, the streams
    /// already open answered, then the close. New connections are accepted as before.
    pub fn retire_connections(&self) {
        self.shared.retire.send_modify(|n| *n += 1);
    }

    /// Waits until exactly `n` connections are open.
    pub async fn wait_for_open_connections(&self, n: u64, timeout: Duration) -> bool {
        let mut rx = self.shared.open.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c == n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until `n` requests were accepted and recorded, answered or held.
    pub async fn wait_for_received(&self, n: u64, timeout: Duration) -> bool {
        let mut rx = self.shared.recorded.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub async fn wait_for_count(&self, n: u64, timeout: Duration) -> bool {
        let mut rx = self.count.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    status: u16,
    reason: &str,
    apns_id: Option<&str>,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
    let body = if status == 200 {
        Bytes::new()
    } else if status == 410 {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Bytes::from(json!({"reason": reason, "timestamp": ts}).to_string())
    } else {
        Bytes::from(json!({"reason": reason}).to_string())
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(id) = apns_id.and_then(|i| i.parse().ok()) {
        response.headers_mut().insert("apns-id", id);
    }
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, secs.into());
    }
    response
}

/// Checks the provider token as Apple does; `Err(reason)` for a 403.
fn check_token(shared: &Shared, authorization: Option<&str>) -> Result<String, &'static str> {
    let token = authorization
        .and_then(|a| {
            a.strip_prefix("bearer ")
                .or_else(|| a.strip_prefix("Bearer "))
        })
        .ok_or("MissingProviderToken")?;
    if shared.verified.lock().contains(token) {
        return Ok(token.to_owned());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| "InvalidProviderToken")?;
    if header.alg != Algorithm::ES256
        || header.kid.as_deref() != Some(shared.config.key_id.as_str())
    {
        return Err("InvalidProviderToken");
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(token, &shared.key, &validation)
        .map_err(|_| "InvalidProviderToken")?;
    if data.claims.get("iss").and_then(Value::as_str) != Some(shared.config.team_id.as_str()) {
        return Err("InvalidProviderToken");
    }
    let iat = data
        .claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or("InvalidProviderToken")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if iat + 3600 < now {
        return Err("ExpiredProviderToken");
    }
    shared.verified.lock().insert(token.to_owned());
    Ok(token.to_owned())
}

async fn handle(req: Request<Incoming>, shared: &Shared, connection: u64) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let apns_id = header("apns-id");
    let result = validate(&parts, header, shared);
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = match result {
        Err((status, reason)) => answer(status, reason, apns_id.as_deref(), None),
        Ok(mut push) => match parse_payload(&body) {
            Err((status, reason)) => answer(status, reason, apns_id.as_deref(), None),
            Ok(payload) => {
                let id = push
                    .apns_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string());
                let scripted = shared
                    .script
                    .lock()
                    .per_token
                    .get_mut(&push.token)
                    .and_then(VecDeque::pop_front);
                match scripted {
                    Some(reply) if reply.status != 200 => answer(
                        reply.status,
                        reply.reason,
                        Some(&id),
                        reply.retry_after_secs,
                    ),
                    _ => {
                        if shared.config.record {
                            push.payload = payload;
                            push.connection = connection;
                            shared.received.lock().push(push);
                            shared.recorded.send_modify(|n| *n += 1);
                        }
                        let mut hold = shared.hold.subscribe();
                        let _ = hold.wait_for(|held| !*held).await;
                        answer(200, "", Some(&id), None)
                    }
                }
            }
        },
    };
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    shared.count.send_replace(n);
    response
}

type Refusal = (u16, &'static str);

fn validate(
    parts: &http::request::Parts,
    header: impl Fn(&str) -> Option<String>,
    shared: &Shared,
) -> Result<ReceivedPush, Refusal> {
    if parts.method != hyper::Method::POST {
        return Err((405, "MethodNotAllowed"));
    }
    let token = parts
        .uri
        .path()
        .strip_prefix("/3/device/")
        .filter(|t| !t.is_empty())
        .ok_or((404, "BadPath"))?
        .to_owned();
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((400, "BadDeviceToken"));
    }
    let authorization =
        check_token(shared, header("authorization").as_deref()).map_err(|r| (403, r))?;
    let topic = header("apns-topic").ok_or((400, "MissingTopic"))?;
    if topic != shared.config.topic {
        return Err((400, "DeviceTokenNotForTopic"));
    }
    let push_type = header("apns-push-type").unwrap_or_else(|| "alert".into());
    if ![
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
    ]
    .contains(&push_type.as_str())
    {
        return Err((400, "InvalidPushType"));
    }
    let priority = header("apns-priority").unwrap_or_else(|| "10".into());
    if !["1", "5", "10"].contains(&priority.as_str())
        || (push_type == "background" && priority == "10")
    {
        return Err((400, "BadPriority"));
    }
    let apns_id = header("apns-id");
    if apns_id
        .as_ref()
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_err())
    {
        return Err((400, "BadMessageId"));
    }
    let collapse_id = header("apns-collapse-id");
    if collapse_id.as_ref().is_some_and(|c| c.len() > 64) {
        return Err((400, "BadCollapseId"));
    }
    let expiration = header("apns-expiration");
    if expiration
        .as_ref()
        .is_some_and(|e| e.parse::<u64>().is_err())
    {
        return Err((400, "BadExpirationDate"));
    }
    Ok(ReceivedPush {
        token,
        topic,
        push_type,
        priority,
        apns_id,
        collapse_id,
        expiration,
        authorization,
        payload: Value::Null,
        connection: 0,
    })
}

fn parse_payload(body: &[u8]) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Err((400, "PayloadEmpty"));
    }
    if body.len() > 4096 {
        return Err((413, "PayloadTooLarge"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|_| (400, "BadPayload"))?;
    if !payload.get("aps").is_some_and(Value::is_object) {
        return Err((400, "PayloadEmpty"));
    }
    Ok(payload)
}
