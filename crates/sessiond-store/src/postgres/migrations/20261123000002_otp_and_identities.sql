-- Emailed one-time codes. `code_hash` is bound to the challenge id.
CREATE TABLE otp_challenges (
    id          text PRIMARY KEY,
    email       text NOT NULL,
    code_hash   bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    consumed_at timestamptz,
    device      text
);

-- The resend cooldown looks up an address's newest challenge.
CREATE INDEX otp_challenges_email ON otp_challenges (email, created_at);
CREATE INDEX otp_challenges_expires_at ON otp_challenges (expires_at);

-- Who a user is at an external provider (token exchange). One user may have several.
CREATE TABLE identities (
    provider    text NOT NULL,
    external_id text NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, external_id)
);

CREATE INDEX identities_user ON identities (user_id);

ALTER TABLE users ADD COLUMN mobile text;
-- Kept as text: returned exactly as the provider sent it.
ALTER TABLE users ADD COLUMN profile text;
