-- The revocation feed: facts that token verifiers outside sessiond apply.
--
-- A sequence would not do: numbers are taken at insert, not at commit, so a reader could
-- see fact 6 committed before fact 5 and move its cursor past 5 for good. Instead the
-- one row of `revocation_feed` hands out numbers: the transaction that takes one holds
-- that row's lock until it commits, so numbers are gap-free and in commit order across
-- every instance. Only transactions that revoke something take it, as their last lock.
CREATE TABLE revocations (
    seq        bigint PRIMARY KEY,
    kind       text NOT NULL,
    subject    text,
    reason     text,
    not_before timestamptz,
    max_exp    timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX revocations_max_exp ON revocations (max_exp);

CREATE TABLE revocation_feed (
    id             integer PRIMARY KEY CHECK (id = 1),
    last_seq       bigint NOT NULL,
    purged_through bigint NOT NULL
);
INSERT INTO revocation_feed (id, last_seq, purged_through) VALUES (1, 0, 0);
