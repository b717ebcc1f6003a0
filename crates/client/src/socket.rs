//! The WebSocket: one JSON object per text frame.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for a frame before [`Socket::next`] gives up.
const FRAME_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the socket: {0:?}")]
    Closed(Option<(u16, String)>),
    #[error("unexpected frame: {0}")]
    Unexpected(String),
}

/// What the server sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Json(Value),
    /// The close code and reason, if the server gave them.
    Closed(Option<(u16, String)>),
}

pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Connects with the token in the `Authorization` header (or none, to send an
    /// `auth` frame later) and, with a token, waits for `ready`.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<(Self, Value), SocketError> {
        let mut request = url.into_client_request()?;
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| SocketError::Unexpected("token is not a header value".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let mut socket = Self { ws };
        if token.is_none() {
            return Ok((socket, Value::Null));
        }
        let ready = socket.expect("ready").await?;
        Ok((socket, ready))
    }

    /// Connects and authenticates with a first `auth` frame, as browsers do.
    pub async fn connect_with_auth_frame(
        url: &str,
        token: &str,
        device_id: Option<&str>,
    ) -> Result<(Self, Value), SocketError> {
        let (mut socket, _) = Self::connect(url, None).await?;
        let mut auth = serde_json::json!({"type": "auth", "token": token});
        if let Some(d) = device_id {
            auth["device_id"] = d.into();
        }
        socket.send(&auth).await?;
        let ready = socket.expect("ready").await?;
        Ok((socket, ready))
    }

    pub async fn send(&mut self, frame: &Value) -> Result<(), SocketError> {
        self.ws.send(Message::text(frame.to_string())).await?;
        Ok(())
    }

    /// Sends raw text (for tests of malformed frames).
    pub async fn send_text(&mut self, text: &str) -> Result<(), SocketError> {
        self.ws.send(Message::text(text.to_owned())).await?;
        Ok(())
    }

    /// The next frame the server sent, pings aside.
    pub async fn next(&mut self) -> Result<Frame, SocketError> {
        loop {
            let msg = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| SocketError::Timeout(FRAME_TIMEOUT))?;
            match msg {
                None => return Ok(Frame::Closed(None)),
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {
                    return Ok(Frame::Closed(None))
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => {
                    let v = serde_json::from_str(&t)
                        .map_err(|_| SocketError::Unexpected(t.to_string()))?;
                    return Ok(Frame::Json(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Frame::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    ))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next frame, which must be JSON of this `type`.
    pub async fn expect(&mut self, kind: &str) -> Result<Value, SocketError> {
        match self.next().await? {
            Frame::Json(v) if v["type"] == kind => Ok(v),
            Frame::Json(v) => Err(SocketError::Unexpected(format!("wanted {kind}, got {v}"))),
            Frame::Closed(c) => Err(SocketError::Closed(c)),
        }
    }

    /// Waits for the server to close the socket; its code and reason.
    pub async fn closed(&mut self) -> Result<Option<(u16, String)>, SocketError> {
        loop {
            match self.next().await? {
                Frame::Closed(c) => return Ok(c),
                Frame::Json(_) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}
