use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A user profile. Contact fields are present for the user themself and the app,
/// absent in other users' view.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Signup {
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CreateUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// A profile change: `Some(value)` sets, [`UpdateMe::clear`] sends `null`, `None`
/// leaves the field alone.
#[derive(Clone, Debug, Default)]
pub struct UpdateMe {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub avatar_url: Option<String>,
    pub clear: Vec<&'static str>,
}

impl UpdateMe {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let fields = [
            ("display_name", &self.display_name),
            ("email", &self.email),
            ("phone", &self.phone),
            ("locale", &self.locale),
            ("timezone", &self.timezone),
            ("avatar_url", &self.avatar_url),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                map.insert(name.into(), serde_json::Value::String(v.clone()));
            }
        }
        for name in &self.clear {
            map.insert((*name).into(), serde_json::Value::Null);
        }
        serde_json::Value::Object(map)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
    pub user: User,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub expires_at: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub platform: String,
    pub token: String,
    #[serde(default)]
    pub topic: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ChannelSwitches {
    pub push: bool,
    pub sms: bool,
    pub email: bool,
    pub in_app: bool,
}

impl Default for ChannelSwitches {
    fn default() -> Self {
        Self {
            push: true,
            sms: true,
            email: true,
            in_app: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
    pub timezone: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Preferences {
    pub channels: ChannelSwitches,
    /// Category → channel (`push`, `sms`, `email`, `in_app`) → allowed.
    pub categories: BTreeMap<String, BTreeMap<String, bool>>,
    pub quiet_hours: Option<QuietHours>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What `tidings app create` prints.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AppCredentials {
    pub app_id: String,
    pub app_key: String,
    pub app_secret: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SendAccepted {
    pub id: String,
    pub event_id: String,
    pub duplicate: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub user_id: String,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    #[serde(default)]
    pub dead: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct NotificationStatus {
    pub id: String,
    pub event_id: String,
    pub created_at: String,
    #[serde(default)]
    pub fanned_out: bool,
    pub deliveries: Vec<Delivery>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct InboxItem {
    pub id: String,
    pub notification_id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
    pub created_at: String,
    pub read_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub next_cursor: Option<String>,
    pub unread_count: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct QueueState {
    pub depth: u64,
    pub in_flight: u64,
    pub oldest_age_ms: i64,
    pub retrying: u64,
    pub dead: u64,
    #[serde(default)]
    pub scheduled: u64,
}
