-- News feed: posts, the follow graph with its counts, mutes, likes.

CREATE TABLE feed_posts (
    id BIGINT PRIMARY KEY,
    app_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    reply_to BIGINT,
    created_at BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    like_count BIGINT NOT NULL DEFAULT 0,
    reply_count BIGINT NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    fanned_out BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX feed_posts_idempotency ON feed_posts (app_id, author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- An author's live top-level posts, newest first: the pull side of the feed.
CREATE INDEX feed_posts_author ON feed_posts (author_id, id)
    WHERE reply_to IS NULL AND NOT deleted;
CREATE INDEX feed_posts_replies ON feed_posts (reply_to, id) WHERE reply_to IS NOT NULL;
CREATE INDEX feed_posts_unfanned ON feed_posts (created_at) WHERE NOT fanned_out;

CREATE TABLE feed_follows (
    app_id BIGINT NOT NULL,
    follower_id BIGINT NOT NULL,
    followee_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX feed_follows_followee ON feed_follows (followee_id, follower_id);

CREATE TABLE feed_users (
    user_id BIGINT PRIMARY KEY,
    app_id BIGINT NOT NULL,
    followers BIGINT NOT NULL DEFAULT 0,
    following BIGINT NOT NULL DEFAULT 0,
    last_active BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE feed_mutes (
    user_id BIGINT NOT NULL,
    muted_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, muted_id)
);
CREATE INDEX feed_mutes_muted ON feed_mutes (muted_id, user_id);

CREATE TABLE feed_likes (
    post_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX feed_likes_user ON feed_likes (user_id, post_id);
