-- The revocation feed: facts that token verifiers outside sessiond apply. `seq` is
-- AUTOINCREMENT so a number is never reused after a purge; SQLite's single writer makes
-- it gap-free and in commit order (a rolled-back insert rolls its number back too).
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    subject    TEXT,
    reason     TEXT,
    not_before INTEGER,
    max_exp    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Snapshots and purges go by expiry.
CREATE INDEX revocations_max_exp ON revocations (max_exp);

-- How far purges have gone: a cursor before this cannot be continued.
CREATE TABLE revocation_feed (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through INTEGER NOT NULL
);
INSERT INTO revocation_feed (id, purged_through) VALUES (1, 0);
