//! What clients see: the JSON shapes of the HTTP answers and WebSocket frames.

use serde::{Deserialize, Serialize};
use tidings_platform::clock::rfc3339;
use tidings_platform::Id;
use utoipa::ToSchema;

use crate::model::{
    ChannelKind, ChannelRecord, MemberRecord, MemberRole, MessageRecord, ReactionCount,
};
use crate::presence::PresenceState;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ReactionView {
    pub emoji: String,
    pub count: i64,
    /// Who reacted (the first few).
    pub user_ids: Vec<Id>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MessageView {
    pub id: Id,
    pub channel_id: Id,
    /// Counts up by one per channel, with no gaps.
    pub seq: i64,
    pub sender_id: Id,
    pub client_msg_id: String,
    /// Empty once deleted.
    pub text: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    #[serde(default)]
    pub reactions: Vec<ReactionView>,
}

impl MessageView {
    pub fn new(m: &MessageRecord, reactions: Vec<ReactionView>) -> Self {
        Self {
            id: m.id,
            channel_id: m.channel_id,
            seq: m.seq,
            sender_id: m.sender_id,
            client_msg_id: m.client_msg_id.clone(),
            text: m.text.clone(),
            created_at: rfc3339(m.created_at_ms),
            edited_at: m.edited_at_ms.map(rfc3339),
            deleted: m.deleted,
            reactions,
        }
    }

    /// Views of `messages` with their reactions from `counts`.
    pub fn many(messages: &[MessageRecord], counts: &[ReactionCount]) -> Vec<Self> {
        messages
            .iter()
            .map(|m| {
                let reactions = counts
                    .iter()
                    .filter(|c| c.message_id == m.id)
                    .map(|c| ReactionView {
                        emoji: c.emoji.clone(),
                        count: c.count,
                        user_ids: c.user_ids.clone(),
                    })
                    .collect();
                Self::new(m, reactions)
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MemberView {
    pub user_id: Id,
    pub role: MemberRole,
    pub joined_at: String,
}

impl From<&MemberRecord> for MemberView {
    fn from(m: &MemberRecord) -> Self {
        Self {
            user_id: m.user_id,
            role: m.role,
            joined_at: rfc3339(m.joined_at_ms),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChannelView {
    pub id: Id,
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub created_by: Id,
    pub created_at: String,
    pub member_count: i64,
    /// Seq of the newest message; 0 before the first.
    pub last_seq: i64,
    /// The caller's membership: their role and read position.
    pub role: Option<MemberRole>,
    pub read_seq: Option<i64>,
    pub unread_count: i64,
    pub last_message: Option<MessageView>,
    /// Present on a single channel's answer, not in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberView>>,
}

impl ChannelView {
    pub fn new(c: &ChannelRecord, me: Option<&MemberRecord>, last: Option<MessageView>) -> Self {
        let read_seq = me.map(|m| m.read_seq);
        Self {
            id: c.id,
            kind: c.kind,
            name: c.name.clone(),
            created_by: c.created_by,
            created_at: rfc3339(c.created_at_ms),
            member_count: c.member_count,
            last_seq: c.last_seq,
            role: me.map(|m| m.role),
            read_seq,
            unread_count: read_seq.map_or(0, |r| (c.last_seq - r).max(0)),
            last_message: last,
            members: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PresenceView {
    pub user_id: Id,
    pub status: PresenceStatus,
    pub last_seen_at: Option<String>,
}

impl From<&PresenceState> for PresenceView {
    fn from(p: &PresenceState) -> Self {
        Self {
            user_id: p.user_id,
            status: if p.online {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            },
            last_seen_at: p.last_seen_ms.map(rfc3339),
        }
    }
}

/// `{url}` of the gateway a client should connect to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EndpointView {
    pub url: String,
}

/// A sync cursor: the log position up to which a device has everything. Opaque to
/// clients; valid on every node because the log is the installation's.
pub fn encode_cursor(pos: i64) -> String {
    pos.to_string()
}

pub fn decode_cursor(cursor: &str) -> Option<i64> {
    if cursor.is_empty() || cursor.len() > 19 || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cursor.parse().ok()
}
