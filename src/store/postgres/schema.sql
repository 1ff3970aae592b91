-- ferry PostgreSQL schema, version 1: the same tables as SQLite's, with the
-- uniqueness that makes instances agree (dedupe and idempotency primary keys)
-- and the partial index that claims go through.
CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    route       TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    event_id    TEXT,
    headers     TEXT NOT NULL,
    body        BYTEA NOT NULL
);

-- `next_attempt_ms` is the due time while queued or retrying, and the lease
-- expiry (`locked_until`) while delivering, so one partial index finds both
-- due work and the leases of instances that died.
CREATE TABLE deliveries (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id          TEXT NOT NULL,
    route               TEXT NOT NULL,
    system              TEXT NOT NULL,
    state               TEXT NOT NULL,
    delivery_key        TEXT NOT NULL,
    received_ms         BIGINT NOT NULL,
    budget_start_ms     BIGINT NOT NULL,
    next_attempt_ms     BIGINT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    rate_limited_streak INTEGER NOT NULL DEFAULT 0,
    auth_streak         INTEGER NOT NULL DEFAULT 0,
    last_class          TEXT,
    last_explanation    TEXT,
    last_hint           TEXT,
    discard_reason      TEXT,
    updated_ms          BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms)
    WHERE state IN ('queued', 'retrying', 'delivering');
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX deliveries_state ON deliveries (state, route);

CREATE TABLE dedupe (
    route      TEXT NOT NULL,
    key        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (route, key)
);

CREATE TABLE idempotency (
    client      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    status      INTEGER NOT NULL,
    body        BYTEA NOT NULL,
    expires_ms  BIGINT NOT NULL,
    PRIMARY KEY (client, key)
);

CREATE TABLE attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    started_ms  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    request     TEXT NOT NULL,
    response    TEXT,
    class       TEXT,
    explanation TEXT NOT NULL,
    hint        TEXT NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE audit (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
