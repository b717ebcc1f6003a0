-- Notifications: the accepted request (frozen), its deliveries (the record of truth
-- for every send), the in-app inbox, templates, topics, provider settings, and the
-- database work queue used when no NATS is configured.
CREATE TABLE notifications (
    id            BIGINT PRIMARY KEY,
    app_id        BIGINT NOT NULL,
    event_id      TEXT   NOT NULL,
    body          JSONB  NOT NULL,
    send_at       BIGINT,
    expires_at    BIGINT,
    fanout_cursor BIGINT,
    fanned_out    BOOLEAN NOT NULL DEFAULT FALSE,
    dispatched_at BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX notifications_app_event ON notifications (app_id, event_id);
CREATE INDEX notifications_pending_fanout ON notifications (send_at) WHERE NOT fanned_out;

CREATE TABLE deliveries (
    id                  BIGINT PRIMARY KEY,
    notification_id     BIGINT NOT NULL,
    app_id              BIGINT NOT NULL,
    user_id             BIGINT NOT NULL,
    channel             TEXT   NOT NULL,
    target              TEXT   NOT NULL,
    status              TEXT   NOT NULL,
    reason              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    due_at              BIGINT NOT NULL,
    lease_until         BIGINT,
    dispatched_at       BIGINT,
    dead                BOOLEAN NOT NULL DEFAULT FALSE,
    opened_at           BIGINT,
    clicked_at          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX deliveries_unique ON deliveries (notification_id, user_id, channel, target);
CREATE INDEX deliveries_open ON deliveries (due_at) WHERE status IN ('queued', 'sending') AND NOT dead;
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE dead;
-- Only SMS and email are looked up by the provider's id (their status callbacks).
CREATE INDEX deliveries_provider_id ON deliveries (channel, provider_message_id)
    WHERE provider_message_id IS NOT NULL AND channel IN ('sms', 'email');
CREATE INDEX deliveries_app_created ON deliveries (app_id, created_at);

CREATE TABLE inbox (
    id              BIGINT PRIMARY KEY,
    app_id          BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    title           TEXT,
    body            TEXT,
    url             TEXT,
    data            JSONB  NOT NULL,
    created_at      BIGINT NOT NULL,
    read_at         BIGINT
);
CREATE INDEX inbox_user ON inbox (app_id, user_id, id);
CREATE INDEX inbox_unread ON inbox (app_id, user_id) WHERE read_at IS NULL;

CREATE TABLE templates (
    app_id     BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    body       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE topic_subscriptions (
    app_id     BIGINT NOT NULL,
    topic      TEXT   NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, topic, user_id)
);

CREATE TABLE provider_settings (
    app_id     BIGINT NOT NULL,
    channel    TEXT   NOT NULL,
    body       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, channel)
);

CREATE TABLE queue_messages (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT    NOT NULL,
    item        BIGINT  NOT NULL,
    visible_at  BIGINT  NOT NULL,
    deliveries  INTEGER NOT NULL DEFAULT 0,
    lease_token BIGINT,
    dead        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at, id) WHERE NOT dead;
