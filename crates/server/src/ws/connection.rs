//! One socket, from authentication to close.
//!
//! A single task owns the socket: it reads client frames, writes what the hub
//! queued for it, and keeps up to `max_inflight_sends` sends waiting for their
//! commit at once (their acks go out as each commit lands). Nothing here buffers
//! without bound: the hub's queue for the socket is bounded and a full one cuts the
//! socket (4008); a client with too many sends in flight is simply not read until
//! some finish, which pushes back through TCP.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tidings_chat::frames;
use tidings_chat::hub::{Connection, Outbound};
use tidings_chat::service::Sender;
use tidings_chat::views::{decode_cursor, MessageView};
use tidings_platform::accounts::UserPrincipal;
use tidings_platform::{Error, ErrorCode, Id};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant, Sleep};

use super::client_frames::{parse, ClientFrame};
use super::flood::Bucket;
use super::Gateway;

pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_RATE_LIMITED: u16 = 4029;
/// The client stopped pinging.
pub const CLOSE_HEARTBEAT: u16 = 4000;
/// RFC 6455 "service restart": this node is draining; reconnect elsewhere.
pub const CLOSE_RESTART: u16 = 1012;

/// Frames written before a flush, when many are queued.
const WRITE_BATCH: usize = 64;

type SendResult = (Value, Result<MessageView, Error>);

/// The socket has closed or must: stop serving it.
struct Closed;

/// How long a closing socket waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Sends a close frame and reads (discarding) until the client answers, so that the
/// frames it still had in flight do not turn the close into a connection reset that
/// loses the close code.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let sent = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    if sent.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn error_frame(reference: Option<&Value>, e: &Error) -> String {
    let detail = match e {
        // Our faults are logged, not described to the client.
        Error::Internal(detail) => {
            tracing::error!(error = %detail, "socket request failed");
            "an internal error occurred; it has been logged".to_owned()
        }
        other => other.to_string(),
    };
    frames::error(reference, e.code().as_str(), &detail)
}

/// Waits for the first frame to be `auth` with a valid token.
pub async fn authenticate(
    socket: &mut WebSocket,
    gw: &Gateway,
) -> Option<(UserPrincipal, Option<String>)> {
    let deadline = Instant::now() + Duration::from_millis(gw.config.auth_timeout_ms);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let msg = match next {
            Err(_) => {
                close(socket, CLOSE_UNAUTHORIZED, "no auth frame in time").await;
                return None;
            }
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(msg))) => msg,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                close(socket, CLOSE_UNAUTHORIZED, "authenticate first").await;
                return None;
            }
        };
        if text.len() > gw.frame_bytes {
            close(socket, CLOSE_UNAUTHORIZED, "authenticate first").await;
            return None;
        }
        match parse(&text) {
            Ok(ClientFrame::Auth { token, device_id }) => {
                return match gw.accounts.authenticate_token(&token).await {
                    Ok(p) => Some((p, device_id)),
                    Err(_) => {
                        close(socket, CLOSE_UNAUTHORIZED, "invalid or expired token").await;
                        None
                    }
                };
            }
            _ => {
                close(socket, CLOSE_UNAUTHORIZED, "authenticate first").await;
                return None;
            }
        }
    }
}

pub struct Session {
    gw: Arc<Gateway>,
    socket: WebSocket,
    conn: Arc<Connection>,
    rx: mpsc::Receiver<Outbound>,
    app: Id,
    user: Id,
    /// The highest log position this socket has been sent.
    last_sent: i64,
    bucket: Bucket,
    inflight: FuturesUnordered<BoxFuture<'static, SendResult>>,
    heartbeat: Pin<Box<Sleep>>,
}

impl Session {
    pub async fn run(
        gw: Arc<Gateway>,
        mut socket: WebSocket,
        principal: UserPrincipal,
        device: Option<String>,
    ) {
        let app = principal.app.id;
        let user = principal.user_id;
        let (conn, rx) = gw.hub.register(app, user);
        // Online before `ready`, so a client that saw `ready` reads as online.
        if let Err(e) = gw
            .chat
            .socket_up(user, conn.id, gw.config.presence_ttl_ms as i64)
            .await
        {
            tracing::warn!(error = %e, "cannot record presence");
        }
        let ready = frames::ready(user, &conn.id.to_string(), gw.config.heartbeat_ms);
        if socket.send(Message::Text(ready.into())).await.is_err() {
            gw.hub.unregister(&conn);
            let _ = gw.chat.socket_down(user, conn.id).await;
            return;
        }
        tracing::debug!(user = %user, socket = %conn.id, device = device.as_deref().unwrap_or(""), "socket ready");
        let mut session = Session {
            bucket: Bucket::new(gw.config.frames_per_sec, gw.config.frame_burst),
            heartbeat: Box::pin(sleep_until(Instant::now() + gw.silence())),
            gw: gw.clone(),
            socket,
            conn: conn.clone(),
            rx,
            app,
            user,
            last_sent: 0,
            inflight: FuturesUnordered::new(),
        };
        session.serve().await;
        gw.hub.unregister(&conn);
        if let Err(e) = gw.chat.socket_down(user, conn.id).await {
            tracing::warn!(error = %e, "cannot record presence");
        }
    }

    async fn serve(&mut self) {
        let mut draining = self.gw.draining.clone();
        let mut drain = *draining.borrow();
        loop {
            if drain && self.inflight.is_empty() {
                let _ = self
                    .write(frames::reconnect("this node is shutting down; reconnect"))
                    .await;
                close(&mut self.socket, CLOSE_RESTART, "node shutting down").await;
                return;
            }
            let reading = !drain && self.inflight.len() < self.gw.config.max_inflight_sends;
            let step = tokio::select! {
                biased;
                _ = self.conn.cut() => {
                    close(&mut self.socket, CLOSE_TOO_SLOW, "too slow to keep up").await;
                    return;
                }
                changed = draining.changed(), if !drain => {
                    drain = changed.is_err() || *draining.borrow();
                    Ok(())
                }
                _ = &mut self.heartbeat => {
                    close(&mut self.socket, CLOSE_HEARTBEAT, "heartbeat missed").await;
                    return;
                }
                Some((reference, result)) = self.inflight.next(), if !self.inflight.is_empty() => {
                    let frame = match result {
                        Ok(message) => frames::ack(&reference, &message),
                        Err(e) => error_frame(Some(&reference), &e),
                    };
                    self.write(frame).await
                }
                out = self.rx.recv() => match out {
                    Some(out) => self.forward(out).await,
                    None => return,
                },
                msg = self.socket.next(), if reading => match msg {
                    Some(Ok(msg)) => self.incoming(msg).await,
                    _ => return,
                },
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Writes one queued frame and whatever else is queued behind it, then flushes.
    async fn forward(&mut self, first: Outbound) -> Result<(), Closed> {
        let mut wrote = self.feed_out(first).await?;
        for _ in 1..WRITE_BATCH {
            match self.rx.try_recv() {
                Ok(out) => wrote |= self.feed_out(out).await?,
                Err(_) => break,
            }
        }
        if wrote {
            self.socket.flush().await.map_err(|_| Closed)?;
        }
        Ok(())
    }

    async fn feed_out(&mut self, out: Outbound) -> Result<bool, Closed> {
        if out.pos > 0 {
            // Already sent by a sync that read past it.
            if out.pos <= self.last_sent {
                return Ok(false);
            }
            self.last_sent = out.pos;
        }
        self.socket
            .feed(Message::Text(out.frame.as_ref().into()))
            .await
            .map_err(|_| Closed)?;
        Ok(true)
    }

    async fn write(&mut self, frame: String) -> Result<(), Closed> {
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| Closed)
    }

    async fn incoming(&mut self, msg: Message) -> Result<(), Closed> {
        self.heartbeat
            .as_mut()
            .reset(Instant::now() + self.gw.silence());
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                return self
                    .write(frames::error(
                        None,
                        "validation_failed",
                        "send text frames of JSON",
                    ))
                    .await
            }
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(Closed),
        };
        if !self.bucket.take() {
            if self.bucket.refused > self.gw.config.frame_burst {
                close(&mut self.socket, CLOSE_RATE_LIMITED, "too many frames").await;
                return Err(Closed);
            }
            return self
                .write(frames::error(
                    None,
                    ErrorCode::RateLimited.as_str(),
                    "too many frames; slow down",
                ))
                .await;
        }
        if text.len() > self.gw.frame_bytes {
            return self
                .write(frames::error(
                    None,
                    ErrorCode::PayloadTooLarge.as_str(),
                    &format!("a frame is at most {} bytes", self.gw.frame_bytes),
                ))
                .await;
        }
        let frame = match parse(&text) {
            Ok(frame) => frame,
            Err(bad) => {
                return self
                    .write(frames::error(
                        bad.reference.as_ref(),
                        ErrorCode::ValidationFailed.as_str(),
                        &bad.detail,
                    ))
                    .await
            }
        };
        self.dispatch(frame).await
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<(), Closed> {
        let chat = &self.gw.chat;
        match frame {
            ClientFrame::Auth { .. } => {
                self.write(frames::error(
                    None,
                    ErrorCode::ValidationFailed.as_str(),
                    "this socket is authenticated already",
                ))
                .await
            }
            ClientFrame::Send {
                reference,
                channel_id,
                client_msg_id,
                text,
            } => {
                let chat = chat.clone();
                let sender = Sender {
                    app: self.app,
                    user: self.user,
                    origin: Some(self.conn.id),
                };
                self.inflight.push(Box::pin(async move {
                    let result = chat.send(sender, channel_id, &client_msg_id, &text).await;
                    (reference, result)
                }));
                Ok(())
            }
            ClientFrame::Sync { cursor } => self.sync(cursor).await,
            ClientFrame::Typing { channel_id } => {
                match chat.typing(self.app, self.user, channel_id).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.write(error_frame(None, &e)).await,
                }
            }
            ClientFrame::Read { channel_id, seq } => {
                match chat
                    .mark_read(self.app, self.user, channel_id, seq, Some(self.conn.id))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => self.write(error_frame(None, &e)).await,
                }
            }
            ClientFrame::PresenceSubscribe { user_ids } => {
                if let Err(e) = self.gw.hub.watch(&self.conn, &user_ids) {
                    return self
                        .write(frames::error(
                            None,
                            ErrorCode::ValidationFailed.as_str(),
                            &e.to_string(),
                        ))
                        .await;
                }
                match chat.presence_of(self.app, &user_ids).await {
                    Ok(states) => {
                        for state in states {
                            self.socket
                                .feed(Message::Text(frames::presence(&state).into()))
                                .await
                                .map_err(|_| Closed)?;
                        }
                        self.socket.flush().await.map_err(|_| Closed)
                    }
                    Err(e) => self.write(error_frame(None, &e)).await,
                }
            }
            ClientFrame::Ping {} => self.write(frames::pong()).await,
        }
    }

    /// Replays what the device missed since `cursor`, then says `synced`.
    ///
    /// While replaying, the hub leaves this socket's live messages to the replay;
    /// after switching live delivery back on, one last read catches whatever was
    /// committed during the switch. Frames are never sent twice: anything at or
    /// below `last_sent` is skipped, whichever path it came by.
    async fn sync(&mut self, cursor: Option<String>) -> Result<(), Closed> {
        let Some(cursor) = cursor else {
            let now = self.gw.hub.released().max(self.last_sent);
            return self.write(frames::synced(now)).await;
        };
        let Some(from) = decode_cursor(&cursor) else {
            return self
                .write(frames::error(
                    None,
                    ErrorCode::ValidationFailed.as_str(),
                    "cursor: not a cursor this server issued",
                ))
                .await;
        };
        self.conn.set_syncing(true);
        let replay = self.replay(from).await;
        let released = self.gw.hub.released();
        self.conn.set_syncing(false);
        let after = match replay {
            Ok(after) => self.replay(after).await,
            Err(e) => Err(e),
        };
        match after {
            Ok(_) => {
                let cursor = self.last_sent.max(released).max(from);
                self.write(frames::synced(cursor)).await
            }
            Err(Replay::Closed) => Err(Closed),
            Err(Replay::Failed(e)) => self.write(error_frame(None, &e)).await,
        }
    }

    /// Sends every missed message after `from`; the position read up to.
    async fn replay(&mut self, mut from: i64) -> Result<i64, Replay> {
        let page_size = self.gw.chat.settings().sync_page as usize;
        loop {
            let page = self
                .gw
                .chat
                .sync_page(self.app, self.user, from)
                .await
                .map_err(Replay::Failed)?;
            for m in &page {
                from = m.pos;
                if m.pos <= self.last_sent {
                    continue;
                }
                self.last_sent = m.pos;
                let frame = frames::message(&MessageView::new(m, Vec::new()), m.pos);
                self.socket
                    .feed(Message::Text(frame.into()))
                    .await
                    .map_err(|_| Replay::Closed)?;
            }
            self.socket.flush().await.map_err(|_| Replay::Closed)?;
            if page.len() < page_size {
                return Ok(from);
            }
        }
    }
}

enum Replay {
    Closed,
    Failed(Error),
}
