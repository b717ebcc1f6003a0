-- Notifications: the accepted request (frozen), its deliveries (the record of truth
-- for every send), the in-app inbox, templates, topics, provider settings, and the
-- embedded work queue.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    app_id          INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    send_at         INTEGER,
    expires_at      INTEGER,
    fanout_cursor   INTEGER,
    fanned_out      INTEGER NOT NULL DEFAULT 0,
    dispatched_at   INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX notifications_app_event ON notifications (app_id, event_id);
CREATE INDEX notifications_pending_fanout ON notifications (send_at) WHERE fanned_out = 0;

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY,
    notification_id     INTEGER NOT NULL,
    app_id              INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    channel             TEXT    NOT NULL,
    target              TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    reason              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    due_at              INTEGER NOT NULL,
    lease_until         INTEGER,
    dispatched_at       INTEGER,
    dead                INTEGER NOT NULL DEFAULT 0,
    opened_at           INTEGER,
    clicked_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX deliveries_unique ON deliveries (notification_id, user_id, channel, target);
-- Unfinished deliveries only: what the dispatcher and queue statistics scan.
CREATE INDEX deliveries_open ON deliveries (due_at) WHERE status IN ('queued', 'sending') AND dead = 0;
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE dead = 1;
-- Only SMS and email are looked up by the provider's id (their status callbacks).
CREATE INDEX deliveries_provider_id ON deliveries (channel, provider_message_id)
    WHERE provider_message_id IS NOT NULL AND channel IN ('sms', 'email');
CREATE INDEX deliveries_app_created ON deliveries (app_id, created_at);

CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    app_id          INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    notification_id INTEGER NOT NULL,
    title           TEXT,
    body            TEXT,
    url             TEXT,
    data            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    read_at         INTEGER
);
CREATE INDEX inbox_user ON inbox (app_id, user_id, id);
CREATE INDEX inbox_unread ON inbox (app_id, user_id) WHERE read_at IS NULL;

CREATE TABLE templates (
    app_id     INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE topic_subscriptions (
    app_id     INTEGER NOT NULL,
    topic      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, topic, user_id)
);

CREATE TABLE provider_settings (
    app_id     INTEGER NOT NULL,
    channel    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, channel)
);

CREATE TABLE queue_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    item        INTEGER NOT NULL,
    visible_at  INTEGER NOT NULL,
    deliveries  INTEGER NOT NULL DEFAULT 0,
    lease_token INTEGER,
    dead        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_messages_visible ON queue_messages (queue, dead, visible_at, id);
