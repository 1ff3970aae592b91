-- ferry PostgreSQL schema, version 2: each system's worker loop claims its
-- own due work, so the due index leads with the system; request budgets
-- (GCRA theoretical arrival times) shared by every instance.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (system, next_attempt_ms)
    WHERE state IN ('queued', 'retrying', 'delivering');
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL
);
