-- Accounts: verified addresses, codes for more than logins, and the admin's user list.

ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- What a code is for (login, password_reset, verify_email, change_email), and whose
-- account it acts on when that was known at issue.
ALTER TABLE otp_challenges ADD COLUMN purpose text NOT NULL DEFAULT 'login';
ALTER TABLE otp_challenges ADD COLUMN user_id uuid;

-- The resend cooldown is per address and purpose.
DROP INDEX otp_challenges_email;
CREATE INDEX otp_challenges_email ON otp_challenges (email, purpose, created_at);
-- Erasing a user finds the codes that act on it.
CREATE INDEX otp_challenges_user ON otp_challenges (user_id) WHERE user_id IS NOT NULL;

-- The admin list pages by id; its search is a prefix (LIKE 'q%') of the lower-cased email
-- or of the lower-cased name, whatever the database's collation.
CREATE INDEX users_email_prefix ON users (email text_pattern_ops);
CREATE INDEX users_name_prefix ON users (lower(name) text_pattern_ops) WHERE name IS NOT NULL;
CREATE INDEX users_active_id ON users (active, id);
