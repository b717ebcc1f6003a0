-- Chat: channels, members, messages, reactions, and the installation-wide log
-- counter that orders every message for sync.

CREATE TABLE chat_channels (
    id BIGINT PRIMARY KEY,
    app_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    created_by BIGINT NOT NULL,
    direct_key TEXT,
    created_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_message_id BIGINT,
    activity BIGINT NOT NULL,
    member_count BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_channels_direct ON chat_channels (app_id, direct_key)
    WHERE direct_key IS NOT NULL;

CREATE TABLE chat_members (
    channel_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id, channel_id);

CREATE TABLE chat_messages (
    pos BIGINT PRIMARY KEY,
    id BIGINT NOT NULL UNIQUE,
    app_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (channel_id, seq);
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (channel_id, sender_id, client_msg_id);
CREATE INDEX chat_messages_channel_pos ON chat_messages (channel_id, pos);

CREATE TABLE chat_reactions (
    message_id BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- One row. An append takes the next position by updating it, which holds the row
-- lock until commit: positions are handed out in commit order, and a rolled-back
-- append gives its number back, so the log has no gaps.
CREATE TABLE chat_log (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pos BIGINT NOT NULL
);
INSERT INTO chat_log (singleton, pos) VALUES (TRUE, 0);
