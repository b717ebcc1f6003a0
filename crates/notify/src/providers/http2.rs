//! A small pool of long-lived HTTP/2 connections over TLS, on the `h2` crate directly.
//!
//! hyper's HTTP/2 client spawns two tasks for every request (one to stream the body,
//! one to wait for the response) and passes each request and answer through a channel
//! to the connection's task; at tens of thousands of pushes a second that machinery
//! was a quarter of the server's CPU. Here a request is opened, its whole body queued
//! and its answer awaited on the caller's own task; the connection's task only moves
//! frames. Each connection carries many concurrent streams: `h2` holds a request back
//! while the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` is reached.
//!
//! A connection is replaced only once it has died (its task ended: an I/O error, a
//! GOAWAY, or a keep-alive ping left unanswered), because APNs treats connections
//! opened and closed in quick succession as abuse.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Request, StatusCode};
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// How often each connection is pinged, busy or not: a dead peer behind a silent
/// network shows up within this plus the timeout below.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// How long a ping may go unanswered before the connection is given up.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer body read; provider answers are a few hundred bytes.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// An answer with its body read whole.
#[derive(Debug)]
pub struct Http2Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct Connection {
    sender: SendRequest<Bytes>,
    /// Set by the connection's task when it ends.
    closed: Arc<AtomicBool>,
}

/// One pooled connection: the live one behind a plain lock (every send takes it for a
/// clone), and an async lock held only while dialling, so one dial serves all the
/// sends that found the slot empty.
#[derive(Default)]
struct Slot {
    live: Mutex<Option<Connection>>,
    dialling: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<Connection> {
        self.live
            .lock()
            .as_ref()
            .filter(|c| !c.closed.load(Ordering::Acquire))
            .cloned()
    }

    /// Empties the slot if it still holds the connection whose flag is `dead`, so the
    /// next send dials.
    fn forget(&self, dead: &Arc<AtomicBool>) {
        let mut live = self.live.lock();
        if live.as_ref().is_some_and(|c| Arc::ptr_eq(&c.closed, dead)) {
            *live = None;
        }
    }
}

pub struct Http2Pool {
    host: String,
    port: u16,
    authority: String,
    tls: TlsConnector,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Http2Pool {
    /// A pool of `connections` to `host:port`; `tls` must offer `h2` by ALPN. Nothing
    /// is dialled until the first send.
    pub fn new(host: &str, port: u16, tls: Arc<ClientConfig>, connections: usize) -> Self {
        Self {
            host: host.to_owned(),
            port,
            authority: format!("{host}:{port}"),
            tls: TlsConnector::from(tls),
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// `host:port`, for the requests' URIs.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    async fn connect(&self) -> Result<Connection, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let _ = tcp.set_nodelay(true);
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| format!("server name: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err("the server did not agree to HTTP/2".into());
        }
        let (sender, mut connection) = h2::client::Builder::new()
            // Until the peer's SETTINGS say otherwise.
            .initial_max_send_streams(100)
            .max_header_list_size(16 * 1024)
            .enable_push(false)
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| format!("http/2 handshake: {e}"))?;
        let closed = Arc::new(AtomicBool::new(false));
        let ping = connection.ping_pong();
        let flag = closed.clone();
        tokio::spawn(async move {
            let keepalive = async {
                let Some(mut ping) = ping else {
                    return std::future::pending::<&str>().await;
                };
                loop {
                    tokio::time::sleep(KEEPALIVE_EVERY).await;
                    match tokio::time::timeout(KEEPALIVE_TIMEOUT, ping.ping(h2::Ping::opaque()))
                        .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => return "ping failed",
                        Err(_) => return "ping unanswered",
                    }
                }
            };
            tokio::select! {
                r = &mut connection => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "http/2 connection closed");
                    }
                }
                why = keepalive => tracing::debug!(why, "http/2 connection given up"),
            }
            flag.store(true, Ordering::Release);
        });
        Ok(Connection { sender, closed })
    }

    /// A live connection in `slot`, dialling a new one only if it is empty or dead.
    async fn connection(&self, slot: &Slot) -> Result<Connection, String> {
        if let Some(c) = slot.live() {
            return Ok(c);
        }
        let _dialling = slot.dialling.lock().await;
        // Another send may have dialled while this one waited.
        if let Some(c) = slot.live() {
            return Ok(c);
        }
        let connection = self.connect().await?;
        *slot.live.lock() = Some(connection.clone());
        Ok(connection)
    }

    /// Sends `request` with `body` and reads the whole answer. The request's URI must be
    /// absolute (`https://{authority}/…`). An `Err` is a transport failure: the request
    /// may or may not have reached the peer.
    pub async fn send(&self, request: Request<()>, body: Bytes) -> Result<Http2Response, String> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        // Each `SendRequest` clone takes the connection's lock, so the slot's clone is
        // the one used rather than cloned again.
        let mut redialled = false;
        let (closed, mut sender) = loop {
            let Connection { sender, closed } = self.connection(slot).await?;
            match sender.ready().await {
                Ok(sender) => break (closed, sender),
                Err(e) if redialled => return Err(format!("connection: {e}")),
                // The connection ended (a GOAWAY, a close) since its task last ran.
                // Nothing has been sent yet, so the request goes on a fresh one.
                Err(_) => {
                    slot.forget(&closed);
                    redialled = true;
                }
            }
        };
        let end = body.is_empty();
        let (response, mut stream) = match sender.send_request(request, end) {
            Ok(opened) => opened,
            Err(e) => {
                slot.forget(&closed);
                return Err(format!("request: {e}"));
            }
        };
        if !end {
            // Queued whole: provider bodies are a few KiB at most, well inside the
            // stream's window, so waiting for capacity would only add a round of polls.
            stream
                .send_data(body, true)
                .map_err(|e| format!("request body: {e}"))?;
        }
        let response = response.await.map_err(|e| format!("response: {e}"))?;
        let (parts, mut incoming) = response.into_parts();
        let mut read = BytesMut::new();
        while let Some(chunk) = incoming.data().await {
            let chunk = chunk.map_err(|e| format!("response body: {e}"))?;
            let _ = incoming.flow_control().release_capacity(chunk.len());
            if read.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err(format!(
                    "response body longer than {MAX_RESPONSE_BODY} bytes"
                ));
            }
            read.extend_from_slice(&chunk);
        }
        Ok(Http2Response {
            status: parts.status,
            headers: parts.headers,
            body: read.freeze(),
        })
    }
}
