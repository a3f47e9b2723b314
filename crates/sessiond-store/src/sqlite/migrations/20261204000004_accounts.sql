-- Accounts: verified addresses, codes for more than logins, and the admin's user list.

ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- What a code is for (login, password_reset, verify_email, change_email), and whose
-- account it acts on when that was known at issue.
ALTER TABLE otp_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'login';
ALTER TABLE otp_challenges ADD COLUMN user_id TEXT;

-- The resend cooldown is per address and purpose.
DROP INDEX otp_challenges_email;
CREATE INDEX otp_challenges_email ON otp_challenges (email, purpose, created_at);
-- Erasing a user finds the codes that act on it.
CREATE INDEX otp_challenges_user ON otp_challenges (user_id) WHERE user_id IS NOT NULL;

-- The admin list pages by id; its search is a prefix of the (lower-cased) email, already
-- indexed by its UNIQUE constraint, or of the lower-cased name.
CREATE INDEX users_name_lower ON users (lower(name)) WHERE name IS NOT NULL;
CREATE INDEX users_active_id ON users (active, id);
