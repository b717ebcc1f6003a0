use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::ids::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Apns,
    Fcm,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apns => "apns",
            Self::Fcm => "fcm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "apns" => Some(Self::Apns),
            "fcm" => Some(Self::Fcm),
            _ => None,
        }
    }
}

/// A push target registered by a user's client. A token is unique per app and
/// platform: registering it again (even as another user, after a sign-out and
/// sign-in on the same phone) moves it rather than duplicating it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: Id,
    pub app_id: Id,
    pub user_id: Id,
    pub platform: Platform,
    pub token: String,
    pub topic: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    /// Used when the token is new; an existing registration keeps its id.
    pub id: Id,
    pub app_id: Id,
    pub user_id: Id,
    pub platform: Platform,
    pub token: String,
    pub topic: Option<String>,
    pub now_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DeviceView {
    pub id: Id,
    pub platform: Platform,
    pub token: String,
    pub topic: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        Self {
            id: d.id,
            platform: d.platform,
            token: d.token.clone(),
            topic: d.topic.clone(),
            created_at: rfc3339(d.created_at_ms),
            updated_at: rfc3339(d.updated_at_ms),
        }
    }
}
