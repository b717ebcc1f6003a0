//! The feed service's store of record: posts, the follow graph, mutes, likes. SQLite
//! and PostgreSQL implement it; `tidings-conformance` holds the suite both pass.

use async_trait::async_trait;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::model::{Created, Follower, PostRecord};

#[async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// Stores a post (a reply bumps its parent's `reply_count` in the same
    /// transaction). An `idempotency_key` the author used before returns the first
    /// post and stores nothing.
    async fn create_post(&self, post: &PostRecord) -> StoreResult<Created>;
    /// A post of the app, deleted or not.
    async fn post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>>;
    /// Posts by id, any app, deleted or not; unknown ids are skipped.
    async fn posts_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<PostRecord>>;
    /// Marks the post deleted and forgets its text; `None` when there is no such
    /// post. A reply's parent loses one from `reply_count`.
    async fn delete_post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>>;
    async fn mark_fanned_out(&self, id: Id) -> StoreResult<()>;
    /// Posts not deleted, not replies, not fanned out, created before `before_ms`.
    async fn unfanned_posts(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Id>>;

    /// Top-level, live posts of any of `authors` with an id below `before`, newest
    /// first. The read path for celebrities and for reading past the cache.
    async fn posts_by_authors(
        &self,
        app: Id,
        authors: &[Id],
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<PostRecord>>;
    /// Live replies to `post`, oldest first, after `after`.
    async fn replies(
        &self,
        post: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<PostRecord>>;

    /// True when the follow is new; keeps both users' counts.
    async fn follow(&self, app: Id, follower: Id, followee: Id, now_ms: i64) -> StoreResult<bool>;
    /// True when there was a follow to remove.
    async fn unfollow(&self, app: Id, follower: Id, followee: Id) -> StoreResult<bool>;
    /// Who follows `user`, by follower id, after `after`.
    async fn followers(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Follower>>;
    /// Whom `user` follows, by followee id, after `after`.
    async fn following(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>>;
    /// Everyone `user` follows whose follower count is at least `min_followers`.
    async fn following_with_min_followers(
        &self,
        app: Id,
        user: Id,
        min_followers: i64,
    ) -> StoreResult<Vec<Id>>;
    /// (followers, following) of a user.
    async fn follow_counts(&self, app: Id, user: Id) -> StoreResult<(i64, i64)>;

    /// True when it changed anything.
    async fn set_mute(
        &self,
        app: Id,
        user: Id,
        muted: Id,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Everyone `user` has muted.
    async fn muted(&self, app: Id, user: Id) -> StoreResult<Vec<Id>>;
    /// Which of `users` have muted `author`.
    async fn muting(&self, author: Id, users: &[Id]) -> StoreResult<Vec<Id>>;

    /// Likes (`on`) or unlikes; true when it changed anything, with the post's
    /// `like_count` kept in the same transaction. Liking a deleted or missing post
    /// changes nothing.
    async fn set_like(&self, post: Id, user: Id, on: bool, now_ms: i64) -> StoreResult<bool>;
    /// Which of `posts` `user` has liked.
    async fn liked(&self, user: Id, posts: &[Id]) -> StoreResult<Vec<Id>>;
    /// Up to `limit` posts `user` has liked, in no particular order: all of them
    /// when fewer than `limit` come back.
    async fn likes_of(&self, user: Id, limit: u32) -> StoreResult<Vec<Id>>;

    /// Records that the user read their feed now.
    async fn touch(&self, app: Id, user: Id, now_ms: i64) -> StoreResult<()>;
    /// When the user last read their feed (0 if never).
    async fn last_active(&self, app: Id, user: Id) -> StoreResult<i64>;
}
