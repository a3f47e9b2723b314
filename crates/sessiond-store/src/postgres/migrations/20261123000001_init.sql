-- Ids are native uuid; instants are timestamptz holding whole milliseconds (the store
-- truncates to the millisecond, as the SQLite backend does); secrets and keys are bytea.
-- Session data is `json`, not `jsonb`: it keeps the exact text the app stored (jsonb
-- rejects "\u0000" in strings and rewrites numbers), and nothing here queries inside it.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Stored normalised (lower case), so a plain unique constraint is case-insensitive.
    email         text CONSTRAINT users_email_key UNIQUE,
    name          text,
    password_hash text,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid REFERENCES users (id),
    auth_method    text NOT NULL,
    created_at     timestamptz NOT NULL,
    last_active_at timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    device_id      text,
    user_agent     text,
    ip             text,
    label          text,
    data           json
);

-- The session-limit count, the per-user list and "revoke everywhere" walk this.
CREATE INDEX sessions_user_unrevoked ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
-- Cleanup walks these three, in small batches.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_active_at ON sessions (last_active_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    id               uuid PRIMARY KEY,
    session_id       uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash       bytea NOT NULL CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    rotated_at       timestamptz,
    successor_id     uuid,
    successor_sealed bytea
);

-- The cascade from sessions and delete_refresh_tokens use this.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid           text PRIMARY KEY,
    private_pkcs8 bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    retired_at    timestamptz
);
