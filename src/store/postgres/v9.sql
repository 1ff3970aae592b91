-- Failures grouped by cause (issue 12): see sqlite/v8.sql.
ALTER TABLE deliveries ADD COLUMN failure_group TEXT;
CREATE INDEX deliveries_failure_group
    ON deliveries (state, failure_group, route, system, last_class, updated_ms)
    WHERE failure_group IS NOT NULL;
-- Auto-resolve: see sqlite/v8.sql.
ALTER TABLE deliveries ADD COLUMN entity_key TEXT;
CREATE INDEX deliveries_entity ON deliveries (route, entity_key, received_ms)
    WHERE entity_key IS NOT NULL AND state = 'dead';
-- A failure group's status: see sqlite/v8.sql.
CREATE TABLE failure_group_status (
    key    TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    note   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at_ms  BIGINT NOT NULL
);
