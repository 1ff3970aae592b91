-- ferry SQLite schema, version 1.
CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    route       TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    event_id    TEXT,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL
);

-- One row per (message, destination). `next_attempt_ms` is the due time while
-- queued or retrying, and the lease expiry while delivering, so one partial
-- index finds both due work and expired leases.
CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY,
    message_id          TEXT NOT NULL,
    route               TEXT NOT NULL,
    system              TEXT NOT NULL,
    state               TEXT NOT NULL,
    delivery_key        TEXT NOT NULL,
    received_ms         INTEGER NOT NULL,
    budget_start_ms     INTEGER NOT NULL,
    next_attempt_ms     INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    rate_limited_streak INTEGER NOT NULL DEFAULT 0,
    auth_streak         INTEGER NOT NULL DEFAULT 0,
    last_class          TEXT,
    last_explanation    TEXT,
    last_hint           TEXT,
    discard_reason      TEXT,
    updated_ms          INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms)
    WHERE state IN ('queued', 'retrying', 'delivering');
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX deliveries_state ON deliveries (state, route);

CREATE TABLE dedupe (
    route      TEXT NOT NULL,
    key        TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (route, key)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    client      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    expires_ms  INTEGER NOT NULL,
    PRIMARY KEY (client, key)
) WITHOUT ROWID;

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      INTEGER NOT NULL,
    started_ms       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    request          TEXT NOT NULL,
    response         TEXT,
    class            TEXT,
    explanation      TEXT NOT NULL,
    hint             TEXT NOT NULL,
    outcome          TEXT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
