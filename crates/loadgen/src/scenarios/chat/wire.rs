//! The client's side of the socket protocol, as cheap as it can honestly be: send
//! frames are formatted directly, and incoming frames are scanned for the two or
//! three fields the benchmark needs instead of parsed into a tree.
//!
//! A message's text carries what the receiving side needs to measure it:
//! `phase:sender:seq:due_us:` then padding, where `due_us` is when the message was
//! due to be sent (microseconds since [`origin`]). The `ref` of a send is `due_us`
//! too, so an ack carries its own send time and no table of pending sends is kept.
//! The bare broadcast server relays send frames unchanged, so its receivers find
//! the same text in the same place.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PING: &str = r#"{"type":"ping"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

/// Longest wait for the server's `ready` after the upgrade.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The instant all timestamps carried in frames count from. Sender and receiver are
/// tasks of this one process, so they share it.
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

pub fn micros(t: Instant) -> u64 {
    t.saturating_duration_since(origin()).as_micros() as u64
}

pub fn instant(us: u64) -> Instant {
    origin() + Duration::from_micros(us)
}

/// Opens a socket, with a bearer token if given; with one, waits for `ready` and
/// returns it. `read_buffer` is the client's read buffer: tungstenite reserves
/// 128 KiB by default, which across 15,000 idle sockets is 2 GB the load generator
/// does not need.
pub async fn connect(
    url: &str,
    token: Option<&str>,
    read_buffer: usize,
) -> anyhow::Result<(Ws, Option<Value>)> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("websocket upgrade")?;
    if token.is_none() {
        return Ok((ws, None));
    }
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str::<Value>(&t).ok(),
                Some(Ok(Message::Close(c))) => {
                    eprintln!("closed before ready: {c:?}");
                    return None;
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .context("no ready frame in time")?
    .context("socket closed before ready")?;
    anyhow::ensure!(
        ready["type"] == "ready",
        "first frame is not ready: {ready}"
    );
    Ok((ws, Some(ready)))
}

/// What a message's text says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body {
    pub phase: u32,
    pub sender: u32,
    pub seq: u64,
    pub due_us: u64,
}

/// Appends a send frame to `out`, its text padded to `text_bytes` (or longer, if the
/// header alone is longer).
pub fn send_frame(out: &mut String, channel_id: &str, body: Body, text_bytes: usize) {
    use std::fmt::Write;
    let Body {
        phase,
        sender,
        seq,
        due_us,
    } = body;
    let _ = write!(
        out,
        r#"{{"type":"send","ref":{due_us},"channel_id":"{channel_id}","client_msg_id":"{phase}.{sender}.{seq}","text":""#
    );
    let text_start = out.len();
    let _ = write!(out, "{phase}:{sender}:{seq}:{due_us}:");
    let written = out.len() - text_start;
    out.extend(std::iter::repeat_n('x', text_bytes.saturating_sub(written)));
    out.push_str(r#""}"#);
}

/// An incoming frame, as far as the benchmark cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Our send was stored; its `ref`, which is when it was due.
    Ack(Option<u64>),
    /// Someone else's message (`message` from Tidings, a relayed `send` from the
    /// bare server), with what its text says if it is one of ours.
    Delivery(Option<Body>),
    Pong,
    Error(&'a str),
    Other,
}

/// The string value after `"key":"` (values here never hold escapes).
fn string_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let start = frame.find(key)? + key.len();
    let rest = frame.get(start..)?;
    Some(&rest[..rest.find('"')?])
}

fn parse_body(text: &str) -> Option<Body> {
    let mut parts = text.splitn(5, ':');
    Some(Body {
        phase: parts.next()?.parse().ok()?,
        sender: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
        due_us: parts.next()?.parse().ok()?,
    })
}

/// Tells frames apart by their top-level `type`. The only nested object a frame of
/// ours carries is a message, which has no `type`, and texts hold no quotes, so the
/// first `"type":"` is the frame's own.
pub fn classify(frame: &str) -> Incoming<'_> {
    match string_field(frame, r#""type":""#) {
        Some("message") | Some("send") => {
            Incoming::Delivery(string_field(frame, r#""text":""#).and_then(parse_body))
        }
        Some("ack") => Incoming::Ack(frame.find(r#""ref":"#).and_then(|at| {
            let digits = &frame[at + 6..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse().ok()
        })),
        Some("pong") => Incoming::Pong,
        Some("error") => Incoming::Error(frame),
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: Body = Body {
        phase: 2,
        sender: 7,
        seq: 41,
        due_us: 123_456,
    };

    #[test]
    fn a_relayed_send_frame_reads_back_as_its_body() {
        let mut frame = String::new();
        send_frame(&mut frame, "99", BODY, 64);
        let v: Value = serde_json::from_str(&frame).expect("valid json");
        assert_eq!(v["text"].as_str().map(str::len), Some(64));
        assert_eq!(v["ref"], 123_456);
        assert_eq!(v["client_msg_id"], "2.7.41");
        assert_eq!(classify(&frame), Incoming::Delivery(Some(BODY)));
    }

    #[test]
    fn tidings_frames_are_told_apart() {
        let message = r#"{"cursor":"c1","message":{"channel_id":"5","client_msg_id":"2.7.41","text":"2:7:41:123456:xxxx"},"type":"message"}"#;
        assert_eq!(classify(message), Incoming::Delivery(Some(BODY)));
        let ack = r#"{"message":{"text":"2:7:41:123456:xx"},"ref":123456,"type":"ack"}"#;
        assert_eq!(classify(ack), Incoming::Ack(Some(123_456)));
        assert_eq!(classify(PONG), Incoming::Pong);
        let error = r#"{"type":"error","code":"rate_limited","detail":"slow down"}"#;
        assert_eq!(classify(error), Incoming::Error(error));
        assert_eq!(
            classify(r#"{"type":"presence","user_id":"1"}"#),
            Incoming::Other
        );
    }
}
