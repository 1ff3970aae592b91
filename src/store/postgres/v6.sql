-- ferry PostgreSQL schema, version 6: housekeeping by index, never by scan.
-- The janitor prunes expired dedupe and idempotency keys in small chunks,
-- oldest first, and deletes finished messages past their retention
-- (`[retention]`): each chunk finds its rows through one of these.
CREATE INDEX dedupe_expires ON dedupe (expires_ms);
CREATE INDEX idempotency_expires ON idempotency (expires_ms);
CREATE INDEX deliveries_finished ON deliveries (state, updated_ms);
CREATE INDEX jobs_finished ON jobs (finished_ms);
