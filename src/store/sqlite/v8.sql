-- Failures grouped by cause (issue 12): the group of a dead delivery (class,
-- system, route and normalised reason, hashed by `store::failures`), written
-- by `record`. The index covers the group listing (a GROUP BY over the dead
-- ones) and a group's latest samples.
ALTER TABLE deliveries ADD COLUMN failure_group TEXT;
CREATE INDEX deliveries_failure_group
    ON deliveries (state, failure_group, route, system, last_class, updated_ms)
    WHERE failure_group IS NOT NULL;
