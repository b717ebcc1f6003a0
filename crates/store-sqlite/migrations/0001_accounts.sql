-- Apps, users, devices and preferences. Times are milliseconds since the Unix epoch;
-- ids are Snowflakes made by the application.
CREATE TABLE apps (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    key           TEXT    NOT NULL UNIQUE,
    secret_sha256 BLOB    NOT NULL,
    signing_key   BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    app_id        INTEGER NOT NULL REFERENCES apps (id),
    username      TEXT    NOT NULL,
    display_name  TEXT,
    email         TEXT,
    phone         TEXT,
    locale        TEXT,
    timezone      TEXT,
    avatar_url    TEXT,
    external_id   TEXT,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_app_username ON users (app_id, username);
CREATE UNIQUE INDEX users_app_external_id ON users (app_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    app_id      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform    TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    topic       TEXT,
    disabled_at INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX devices_app_platform_token ON devices (app_id, platform, token);
CREATE INDEX devices_app_user ON devices (app_id, user_id);

CREATE TABLE preferences (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    app_id     INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
