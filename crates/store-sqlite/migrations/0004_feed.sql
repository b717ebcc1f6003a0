-- News feed: posts, the follow graph with its counts, mutes, likes.

CREATE TABLE feed_posts (
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    reply_to INTEGER,
    created_at INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    like_count INTEGER NOT NULL DEFAULT 0,
    reply_count INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX feed_posts_idempotency ON feed_posts (app_id, author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- An author's live top-level posts, newest first: the pull side of the feed.
CREATE INDEX feed_posts_author ON feed_posts (author_id, id)
    WHERE reply_to IS NULL AND deleted = 0;
CREATE INDEX feed_posts_replies ON feed_posts (reply_to, id) WHERE reply_to IS NOT NULL;
CREATE INDEX feed_posts_unfanned ON feed_posts (created_at) WHERE fanned_out = 0;

CREATE TABLE feed_follows (
    app_id INTEGER NOT NULL,
    follower_id INTEGER NOT NULL,
    followee_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;
CREATE INDEX feed_follows_followee ON feed_follows (followee_id, follower_id);

CREATE TABLE feed_users (
    user_id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    followers INTEGER NOT NULL DEFAULT 0,
    following INTEGER NOT NULL DEFAULT 0,
    last_active INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE feed_mutes (
    user_id INTEGER NOT NULL,
    muted_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, muted_id)
) WITHOUT ROWID;
CREATE INDEX feed_mutes_muted ON feed_mutes (muted_id, user_id);

CREATE TABLE feed_likes (
    post_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;
CREATE INDEX feed_likes_user ON feed_likes (user_id, post_id);
