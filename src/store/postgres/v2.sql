-- ferry PostgreSQL schema, version 2: each system's worker loop claims its
-- own due work, so the due index leads with the system (and ends with the id,
-- so a claim's ORDER BY is the index order, not a sort); request budgets
-- (GCRA theoretical arrival times) shared by every instance.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (system, next_attempt_ms, id)
    WHERE state IN ('queued', 'retrying', 'delivering');
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL
);
-- Deliveries are a queue: every row is updated at claim and at record, and
-- dead index entries slow every claim until vacuumed. Vacuum it early and
-- leave room on each page for updated rows.
ALTER TABLE deliveries SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
