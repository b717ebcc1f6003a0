-- Apps, users, devices and preferences. Times are milliseconds since the Unix epoch;
-- ids are Snowflakes made by the application.
CREATE TABLE apps (
    id            BIGINT PRIMARY KEY,
    name          TEXT   NOT NULL,
    key           TEXT   NOT NULL CONSTRAINT apps_key_unique UNIQUE,
    secret_sha256 BYTEA  NOT NULL,
    signing_key   BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Usernames compare byte-wise ("C") so ordering and prefix ranges match SQLite's.
CREATE TABLE users (
    id            BIGINT PRIMARY KEY,
    app_id        BIGINT NOT NULL REFERENCES apps (id),
    username      TEXT COLLATE "C" NOT NULL,
    display_name  TEXT,
    email         TEXT,
    phone         TEXT,
    locale        TEXT,
    timezone      TEXT,
    avatar_url    TEXT,
    external_id   TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_app_username ON users (app_id, username);
CREATE UNIQUE INDEX users_app_external_id ON users (app_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE devices (
    id          BIGINT PRIMARY KEY,
    app_id      BIGINT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform    TEXT   NOT NULL,
    token       TEXT   NOT NULL,
    topic       TEXT,
    disabled_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX devices_app_platform_token ON devices (app_id, platform, token);
CREATE INDEX devices_app_user ON devices (app_id, user_id);

CREATE TABLE preferences (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    app_id     BIGINT NOT NULL,
    body       JSONB  NOT NULL,
    updated_at BIGINT NOT NULL
);
