//! Client-to-server frames, parsed strictly: an unknown type, a missing field or a
//! field of the wrong type is an `error` frame naming it, never a dropped socket.

use serde::Deserialize;
use serde_json::Value;
use tidings_platform::Id;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
        #[serde(default)]
        device_id: Option<String>,
    },
    Send {
        #[serde(rename = "ref", default)]
        reference: Value,
        channel_id: Id,
        client_msg_id: String,
        text: String,
    },
    Sync {
        #[serde(default)]
        cursor: Option<String>,
    },
    Typing {
        channel_id: Id,
    },
    Read {
        channel_id: Id,
        seq: i64,
    },
    PresenceSubscribe {
        user_ids: Vec<Id>,
    },
    Ping {},
}

/// Why a frame was refused, and the `ref` to answer under if the client gave one.
#[derive(Debug)]
pub struct BadFrame {
    pub reference: Option<Value>,
    pub detail: String,
}

pub fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
    let value: Value = serde_json::from_str(text).map_err(|e| BadFrame {
        reference: None,
        detail: format!("the frame is not valid JSON: {e}"),
    })?;
    let reference = value.get("ref").cloned();
    if !value.is_object() {
        return Err(BadFrame {
            reference,
            detail: "a frame is a JSON object with a \"type\"".into(),
        });
    }
    serde_json::from_value(value).map_err(|e| BadFrame {
        reference,
        detail: format!("the frame does not match its type: {e}"),
    })
}
