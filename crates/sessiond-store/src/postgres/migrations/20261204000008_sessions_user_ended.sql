-- A user's ended sessions, newest end first (the console's "why was I logged out?"), and
-- erasing a user without scanning every session: the live ones are under
-- sessions_user_unrevoked, the ended ones here. Partial, so a live session costs nothing
-- here until it ends.
CREATE INDEX sessions_user_ended ON sessions (user_id, revoked_at) WHERE revoked_at IS NOT NULL;
