-- Tokens that may be used once (ID tokens of OIDC providers): a fingerprint kept until
-- the token expires, so a replay on any instance is refused.
CREATE TABLE spent_tokens (
    fingerprint TEXT PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX spent_tokens_expires_at ON spent_tokens (expires_at);
