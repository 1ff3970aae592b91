-- ferry SQLite schema, version 2: each system's worker loop claims its own
-- due work, so the due index leads with the system.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (system, next_attempt_ms)
    WHERE state IN ('queued', 'retrying', 'delivering');
