-- Audit events, written in the transaction of the change they describe (an outbox), and
-- their webhook deliveries, created in the same transaction. `seq` comes from a sequence:
-- unlike the revocation feed, events are not a gap-free cursor for verifiers (webhooks
-- are delivered from their own rows), so no lock serialises the writers; a page read
-- while writers commit may see a later number before an earlier one.
CREATE TABLE events (
    seq         bigserial PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_id     uuid,
    session_id  uuid,
    data        jsonb NOT NULL
);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_user ON events (user_id, seq) WHERE user_id IS NOT NULL;
CREATE INDEX events_session ON events (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX events_occurred_at ON events (occurred_at);

CREATE TABLE webhook_deliveries (
    endpoint        text NOT NULL,
    event_seq       bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    ordering_key    text,
    state           text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    leased_until    timestamptz,
    lease_owner     text,
    last_error      text,
    finished_at     timestamptz,
    PRIMARY KEY (endpoint, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint, ordering_key, event_seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);

CREATE TABLE webhook_endpoints_disabled (
    endpoint    text NOT NULL,
    url         text NOT NULL,
    disabled_at timestamptz NOT NULL,
    PRIMARY KEY (endpoint, url)
);
