//! A stand-in for SendGrid's v3 Mail Send over TLS: checks the API key and the JSON
//! shape, answers 202 with an `X-Message-Id`, or a scripted error per recipient.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tls::{self_signed, serve_https};

#[derive(Clone, Debug)]
pub struct Mail {
    pub to: String,
    pub body: Value,
    pub message_id: String,
}

#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after_secs: Option<u64>,
}

struct Shared {
    api_key: String,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    received: Mutex<Vec<Mail>>,
    count: watch::Sender<usize>,
}

pub struct FakeSendgrid {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSendgrid {
    pub async fn start() -> anyhow::Result<Self> {
        let cert = self_signed(&[b"http/1.1"])?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (count_tx, count) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            api_key: "SG.fake-sendgrid-key".into(),
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

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    pub fn script(&self, to: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .entry(to.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn received(&self) -> Vec<Mail> {
        self.shared.received.lock().clone()
    }

    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.count.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for FakeSendgrid {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn errors(status: u16, message: &str, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        json!({"errors": [{"message": message, "field": null, "help": null}]}).to_string(),
    )));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(hyper::header::RETRY_AFTER, secs.into());
    }
    r
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::POST || req.uri().path() != "/v3/mail/send" {
        return errors(404, "not found", None);
    }
    let auth_ok = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", shared.api_key).as_str());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !auth_ok {
        return errors(
            401,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
        );
    }
    let Ok(mail) = serde_json::from_slice::<Value>(&body) else {
        return errors(400, "Bad Request", None);
    };
    let to = mail["personalizations"][0]["to"][0]["email"]
        .as_str()
        .map(str::to_owned);
    let shaped = to.is_some()
        && mail["from"]["email"].is_string()
        && mail["subject"].is_string()
        && mail["content"].as_array().is_some_and(|c| {
            !c.is_empty()
                && c.iter()
                    .all(|p| p["type"].is_string() && p["value"].is_string())
        });
    let Some(to) = to.filter(|_| shaped) else {
        return errors(
            400,
            "personalizations, from, subject and content are required",
            None,
        );
    };
    shared.count.send_modify(|c| *c += 1);
    if let Some(reply) = shared
        .script
        .lock()
        .get_mut(&to)
        .and_then(VecDeque::pop_front)
    {
        return errors(reply.status, "scripted failure", reply.retry_after_secs);
    }
    let message_id = uuid::Uuid::new_v4().simple().to_string();
    shared.received.lock().push(Mail {
        to,
        body: mail,
        message_id: message_id.clone(),
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(
        "x-message-id",
        message_id.parse().expect("hex is a valid header"),
    );
    r
}
