-- Failures grouped by cause (issue 12): the group of a dead delivery (class,
-- system, route and normalised reason, hashed by `store::failures`), written
-- by `record`. The index covers the group listing (a GROUP BY over the dead
-- ones) and a group's latest samples.
ALTER TABLE deliveries ADD COLUMN failure_group TEXT;
CREATE INDEX deliveries_failure_group
    ON deliveries (state, failure_group, route, system, last_class, updated_ms)
    WHERE failure_group IS NOT NULL;
-- Auto-resolve: the route's `entity_key` of each message, and the dead
-- deliveries a later delivery of their entity (this key, or the ordering
-- key) supersedes, found by route and entity.
ALTER TABLE deliveries ADD COLUMN entity_key TEXT;
CREATE INDEX deliveries_entity ON deliveries (route, entity_key, received_ms)
    WHERE entity_key IS NOT NULL AND state = 'dead';
