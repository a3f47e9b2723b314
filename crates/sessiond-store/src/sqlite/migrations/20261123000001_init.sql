-- Timestamps are milliseconds since the Unix epoch (UTC); ids are UUID text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT UNIQUE,
    name          TEXT,
    password_hash TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT REFERENCES users (id),
    auth_method    TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT,
    device_id      TEXT,
    user_agent     TEXT,
    ip             TEXT,
    label          TEXT,
    data           TEXT
);

-- The session-limit count and the per-user list walk this.
CREATE INDEX sessions_user_unrevoked ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
-- Cleanup walks these three, in small batches.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_active_at ON sessions (last_active_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    id               TEXT PRIMARY KEY NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash       BLOB NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    rotated_at       INTEGER,
    successor_id     TEXT,
    successor_sealed BLOB
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);
