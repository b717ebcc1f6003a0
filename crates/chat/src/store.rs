//! The chat service's storage seam. SQLite and PostgreSQL implement it;
//! `tidings-conformance` holds the one suite both must pass.
//!
//! Every method that takes a channel id and an app id filters by both: a channel of
//! another app does not exist.

use async_trait::async_trait;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::model::{
    Appended, ChannelRecord, MemberRecord, MessageRecord, NewMessage, ReactionCount,
};

/// Where a page of a user's channel list starts: below this activity time and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelCursor {
    pub activity_ms: i64,
    pub id: Id,
}

#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// Creates the channel with its members. A direct channel whose `direct_key`
    /// exists already is not created again: the existing one is returned.
    async fn create_channel(
        &self,
        channel: &ChannelRecord,
        members: &[MemberRecord],
    ) -> StoreResult<ChannelRecord>;
    async fn channel(&self, app: Id, id: Id) -> StoreResult<Option<ChannelRecord>>;
    async fn member(&self, channel: Id, user: Id) -> StoreResult<Option<MemberRecord>>;
    /// Every member's user id, in id order.
    async fn member_ids(&self, channel: Id) -> StoreResult<Vec<Id>>;
    /// Every membership, in user id order.
    async fn members(&self, channel: Id) -> StoreResult<Vec<MemberRecord>>;
    /// Adds a member unless the channel already has `max_members`
    /// (`Conflict("channel_full")`). False when the user was a member already.
    async fn add_member(&self, member: &MemberRecord, max_members: u32) -> StoreResult<bool>;
    /// False when the user was not a member.
    async fn remove_member(&self, channel: Id, user: Id) -> StoreResult<bool>;
    /// The user's channels with their membership, most recently active first.
    async fn channels_of(
        &self,
        app: Id,
        user: Id,
        before: Option<ChannelCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(ChannelRecord, MemberRecord)>>;

    /// Appends a message if the sender is a member: gives it the channel's next seq
    /// and the log's next pos, moves the sender's read position to it and commits
    /// before answering. The same (channel, sender, client_msg_id) again returns the
    /// first message and appends nothing.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended>;
    async fn message(&self, channel: Id, id: Id) -> StoreResult<Option<MessageRecord>>;
    /// Messages by id, any channel; unknown ids are skipped.
    async fn messages_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<MessageRecord>>;
    /// Ascending seq. With `before_seq`, the newest `limit` below it; with
    /// `after_seq`, the oldest `limit` above it; with neither, the newest `limit`.
    async fn history(
        &self,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// `None` when there is no such message.
    async fn edit_message(
        &self,
        channel: Id,
        id: Id,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>>;
    /// Marks the message deleted and forgets its text; `None` when there is none.
    async fn delete_message(
        &self,
        channel: Id,
        id: Id,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>>;
    /// Adds (`on`) or removes a reaction; true when that changed anything.
    async fn set_reaction(
        &self,
        message: Id,
        user: Id,
        emoji: &str,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Reactions on these messages, per (message, emoji), with up to
    /// `users_per_emoji` user ids each.
    async fn reactions(
        &self,
        messages: &[Id],
        users_per_emoji: u32,
    ) -> StoreResult<Vec<ReactionCount>>;
    /// Moves the member's read position forward to `seq` (never back, never past the
    /// channel's last seq); the position after the move. `None` for a non-member.
    async fn mark_read(&self, channel: Id, user: Id, seq: i64) -> StoreResult<Option<i64>>;

    /// Messages of every channel the user is a member of with `pos` above
    /// `after_pos`, in pos order (so each channel's in seq order).
    async fn sync_page(
        &self,
        app: Id,
        user: Id,
        after_pos: i64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// Messages with `from_pos <= pos <= to_pos`, in pos order, any app.
    async fn messages_by_pos(&self, from_pos: i64, to_pos: i64) -> StoreResult<Vec<MessageRecord>>;
    /// The highest pos committed.
    async fn log_head(&self) -> StoreResult<i64>;
}
