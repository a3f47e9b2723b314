-- Emailed one-time codes. `code_hash` is bound to the challenge id.
CREATE TABLE otp_challenges (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL,
    code_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    consumed_at INTEGER,
    device      TEXT
);

-- The resend cooldown looks up an address's newest challenge.
CREATE INDEX otp_challenges_email ON otp_challenges (email, created_at);
CREATE INDEX otp_challenges_expires_at ON otp_challenges (expires_at);

-- Who a user is at an external provider (token exchange). One user may have several.
CREATE TABLE identities (
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, external_id)
);

CREATE INDEX identities_user ON identities (user_id);

ALTER TABLE users ADD COLUMN mobile TEXT;
ALTER TABLE users ADD COLUMN profile TEXT;
