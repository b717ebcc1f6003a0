-- Chat: channels, members, messages and reactions.

CREATE TABLE chat_channels (
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    created_by INTEGER NOT NULL,
    direct_key TEXT,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_message_id INTEGER,
    activity INTEGER NOT NULL,
    member_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_channels_direct ON chat_channels (app_id, direct_key)
    WHERE direct_key IS NOT NULL;

CREATE TABLE chat_members (
    channel_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE INDEX chat_members_user ON chat_members (user_id, channel_id);

-- The rowid is the message's place in the installation-wide log (`pos`): gap-free
-- and in commit order, since one writer assigns it inside the committing transaction.
CREATE TABLE chat_messages (
    pos INTEGER PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    app_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    client_msg_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (channel_id, seq);
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (channel_id, sender_id, client_msg_id);
-- (channel_id, rowid): a channel's messages past a log position, for sync.
CREATE INDEX chat_messages_channel ON chat_messages (channel_id);

CREATE TABLE chat_reactions (
    message_id INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;
