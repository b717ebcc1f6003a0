//! What the feed service stores.

use serde::{Deserialize, Serialize};
use tidings_platform::Id;

/// A post as the store keeps it. A reply is a post with `reply_to`; replies are
/// counted on their parent and listed under it, not fanned out to feeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostRecord {
    pub id: Id,
    pub app_id: Id,
    pub author_id: Id,
    pub text: String,
    pub reply_to: Option<Id>,
    pub created_at_ms: i64,
    pub deleted: bool,
    pub like_count: i64,
    pub reply_count: i64,
    /// The author's `Idempotency-Key`, if they sent one.
    pub idempotency_key: Option<String>,
    /// Fan-out to followers' feed caches has finished.
    pub fanned_out: bool,
}

/// How creating a post ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    New(PostRecord),
    /// The author already used this `Idempotency-Key`: the first post.
    Duplicate(PostRecord),
    /// The post replied to does not exist (or was deleted).
    NoParent,
}

/// A follower as fan-out needs them: who, and when they last read their feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Follower {
    pub user_id: Id,
    pub last_active_ms: i64,
}

/// One entry of a feed cache: the post and its author (so an unfollow or a mute can
/// remove an author's entries without reading the posts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FeedEntry {
    pub post_id: Id,
    pub author_id: Id,
}
