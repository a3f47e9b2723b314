-- Audit events, written in the transaction of the change they describe (an outbox), and
-- their webhook deliveries, created in the same transaction. `seq` is AUTOINCREMENT so a
-- number is never reused after a purge; SQLite's single writer keeps it in commit order.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    user_id     TEXT,
    session_id  TEXT,
    data        TEXT NOT NULL
);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_user ON events (user_id, seq) WHERE user_id IS NOT NULL;
CREATE INDEX events_session ON events (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX events_occurred_at ON events (occurred_at);

-- One row per (endpoint, event). `ordering_key` (the session, else the user) keeps one
-- subject's events in order: a delivery waits while an earlier one of its key is pending.
CREATE TABLE webhook_deliveries (
    endpoint        TEXT NOT NULL,
    event_seq       INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    ordering_key    TEXT,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER,
    lease_owner     TEXT,
    last_error      TEXT,
    finished_at     INTEGER,
    PRIMARY KEY (endpoint, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint, ordering_key, event_seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);

-- Endpoints that answered 410 Gone, by name and URL: a new URL in configuration enables
-- the endpoint again.
CREATE TABLE webhook_endpoints_disabled (
    endpoint    TEXT NOT NULL,
    url         TEXT NOT NULL,
    disabled_at INTEGER NOT NULL,
    PRIMARY KEY (endpoint, url)
);
