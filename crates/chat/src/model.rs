//! What the chat service stores.

use serde::{Deserialize, Serialize};
use tidings_platform::Id;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Two users; at most one per pair, members fixed.
    Direct,
    /// Named, with admins who manage its members.
    Group,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Admin,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    pub id: Id,
    pub app_id: Id,
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub created_by: Id,
    /// For a direct channel, `"<lower user id>:<higher user id>"`: unique per app.
    pub direct_key: Option<String>,
    pub created_at_ms: i64,
    /// Seq of the newest message; 0 before the first.
    pub last_seq: i64,
    pub last_message_id: Option<Id>,
    /// Time of the newest message, or of creation: orders a user's channel list.
    pub activity_ms: i64,
    pub member_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    pub channel_id: Id,
    pub user_id: Id,
    pub role: MemberRole,
    pub joined_at_ms: i64,
    /// Highest seq this member has read.
    pub read_seq: i64,
}

/// A message as the store keeps it. `seq` counts up by one per channel with no gaps;
/// `pos` is the message's place in the installation-wide log that sync cursors and
/// live delivery order by: it too has no gaps, and a message is committed only after
/// every message with a lower `pos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: Id,
    pub app_id: Id,
    pub channel_id: Id,
    pub seq: i64,
    pub pos: i64,
    pub sender_id: Id,
    pub client_msg_id: String,
    pub text: String,
    pub created_at_ms: i64,
    pub edited_at_ms: Option<i64>,
    pub deleted: bool,
}

/// A message to append; the store gives it `seq` and `pos`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub id: Id,
    pub app_id: Id,
    pub channel_id: Id,
    pub sender_id: Id,
    pub client_msg_id: String,
    pub text: String,
    pub created_at_ms: i64,
}

/// How an append ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    New(MessageRecord),
    /// The sender already sent this `client_msg_id` in this channel: the first message.
    Duplicate(MessageRecord),
    /// The sender is not a member (or the channel does not exist).
    NotMember,
}

/// One emoji on one message: how many reacted, and who (first few).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    pub message_id: Id,
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<Id>,
}
