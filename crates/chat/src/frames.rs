//! Server-to-client WebSocket frames, serialized once and shared by every socket
//! they go to.

use serde::Serialize;
use serde_json::{json, Value};
use tidings_platform::Id;

use crate::views::{encode_cursor, MessageView, PresenceView};

fn text(v: Value) -> String {
    v.to_string()
}

pub fn ready(user_id: Id, session_id: &str, heartbeat_ms: u64) -> String {
    text(
        json!({"type": "ready", "user_id": user_id, "session_id": session_id, "heartbeat_ms": heartbeat_ms}),
    )
}

pub fn ack(reference: &Value, message: &MessageView) -> String {
    text(json!({"type": "ack", "ref": reference, "message": message}))
}

pub fn error(reference: Option<&Value>, code: &str, detail: &str) -> String {
    match reference {
        Some(r) => text(json!({"type": "error", "ref": r, "code": code, "detail": detail})),
        None => text(json!({"type": "error", "code": code, "detail": detail})),
    }
}

pub fn message(message: &MessageView, pos: i64) -> String {
    text(json!({"type": "message", "message": message, "cursor": encode_cursor(pos)}))
}

pub fn message_updated(message: &MessageView) -> String {
    text(json!({"type": "message_updated", "message": message}))
}

pub fn message_deleted(message: &MessageView) -> String {
    text(
        json!({"type": "message_deleted", "channel_id": message.channel_id, "message_id": message.id, "seq": message.seq, "message": message}),
    )
}

pub fn reaction(channel_id: Id, message_id: Id, user_id: Id, emoji: &str, added: bool) -> String {
    text(
        json!({"type": "reaction", "channel_id": channel_id, "message_id": message_id, "user_id": user_id, "emoji": emoji, "added": added}),
    )
}

pub fn typing(channel_id: Id, user_id: Id) -> String {
    text(json!({"type": "typing", "channel_id": channel_id, "user_id": user_id}))
}

pub fn read(channel_id: Id, user_id: Id, seq: i64) -> String {
    text(json!({"type": "read", "channel_id": channel_id, "user_id": user_id, "seq": seq}))
}

pub fn presence(p: &PresenceView) -> String {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("type".into(), "presence".into());
    }
    text(v)
}

pub fn synced(pos: i64) -> String {
    text(json!({"type": "synced", "cursor": encode_cursor(pos)}))
}

pub fn pong() -> String {
    text(json!({"type": "pong"}))
}

/// An in-app notification or a feed item: any serializable item under its key.
pub fn item(kind: &str, key: &str, item: &impl Serialize) -> String {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), kind.into());
    map.insert(
        key.into(),
        serde_json::to_value(item).unwrap_or(Value::Null),
    );
    text(Value::Object(map))
}

/// Asks clients to reconnect (to another node) when this one drains.
pub fn reconnect(detail: &str) -> String {
    text(json!({"type": "reconnect", "detail": detail}))
}
