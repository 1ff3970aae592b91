-- Failures grouped by cause (issue 12): see sqlite/v8.sql.
ALTER TABLE deliveries ADD COLUMN failure_group TEXT;
CREATE INDEX deliveries_failure_group
    ON deliveries (state, failure_group, route, system, last_class, updated_ms)
    WHERE failure_group IS NOT NULL;
-- Auto-resolve: see sqlite/v8.sql.
ALTER TABLE deliveries ADD COLUMN entity_key TEXT;
CREATE INDEX deliveries_entity ON deliveries (route, entity_key, received_ms)
    WHERE entity_key IS NOT NULL AND state = 'dead';
