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
-- A failure group's status as an operator set it (open, acknowledged,
-- resolved), with the note, who and when; a resolved group with a failure
-- after `at_ms` reads as open again.
CREATE TABLE failure_group_status (
    key    TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    note   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);
