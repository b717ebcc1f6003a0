//! A stand-in for Twilio's Messages API over TLS: checks the account in the path,
//! Basic auth and the form fields, answers 201 with an `SM…` sid or a scripted
//! Twilio-shaped error per recipient, and records what it accepted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tls::{self_signed, serve_https};

#[derive(Clone, Debug)]
pub struct Sms {
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
    pub sid: String,
}

/// A scripted error: HTTP status, Twilio error code, optional `Retry-After`.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub status: u16,
    pub code: u32,
    pub retry_after_secs: Option<u64>,
}

struct Shared {
    account_sid: String,
    auth_token: String,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    received: Mutex<Vec<Sms>>,
    count: watch::Sender<usize>,
}

pub struct FakeTwilio {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTwilio {
    pub async fn start() -> anyhow::Result<Self> {
        let cert = self_signed(&[b"http/1.1"])?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (count_tx, count) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            account_sid: format!("AC{}", "0123456789abcdef".repeat(2)),
            auth_token: "fake-twilio-auth-token".into(),
            script: Mutex::new(HashMap::new()),
            received: Mutex::new(Vec::new()),
            count: count_tx,
        });
        let task_shared = shared.clone();
        let task = serve_https(listener, &cert, move |req| {
            let shared = task_shared.clone();
            async move { handle(req, &shared).await }
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

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// The next messages to `to` get these errors in order; then success.
    pub fn script(&self, to: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .entry(to.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn received(&self) -> Vec<Sms> {
        self.shared.received.lock().clone()
    }

    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.count.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(
    status: u16,
    body: serde_json::Value,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
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

fn error(status: u16, code: u32, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"code": code, "message": message, "status": status}),
        None,
    )
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let expected_path = format!("/2010-04-01/Accounts/{}/Messages.json", shared.account_sid);
    if req.method() != hyper::Method::POST || req.uri().path() != expected_path {
        return error(404, 20404, "The requested resource was not found");
    }
    let expected_auth = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", shared.account_sid, shared.auth_token))
    );
    if req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected_auth.as_str())
    {
        return error(401, 20003, "Authenticate");
    }
    let form_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !form_type {
        return error(400, 21602, "Message body is required");
    }
    let fields: HashMap<String, String> = url_decode(&body);
    let (Some(to), Some(from), Some(text)) =
        (fields.get("To"), fields.get("From"), fields.get("Body"))
    else {
        return error(400, 21604, "A 'To', 'From' and 'Body' are required");
    };
    let e164 = to
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    if !e164 {
        return error(400, 21211, "The 'To' number is not a valid phone number");
    }
    if let Some(reply) = shared
        .script
        .lock()
        .get_mut(to)
        .and_then(VecDeque::pop_front)
    {
        let r = json_response(
            reply.status,
            json!({"code": reply.code, "message": "scripted failure", "status": reply.status}),
            reply.retry_after_secs,
        );
        shared.count.send_modify(|c| *c += 1);
        return r;
    }
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    shared.received.lock().push(Sms {
        to: to.clone(),
        from: from.clone(),
        body: text.clone(),
        status_callback: fields.get("StatusCallback").cloned(),
        sid: sid.clone(),
    });
    shared.count.send_modify(|c| *c += 1);
    json_response(
        201,
        json!({"sid": sid, "status": "queued", "to": to, "from": from, "body": text}),
        None,
    )
}

/// `application/x-www-form-urlencoded` into a map.
pub fn url_decode(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
