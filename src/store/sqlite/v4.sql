-- ferry SQLite schema, version 4: bulk sync jobs. An NDJSON upload is a job;
-- each of its lines is a message whose delivery carries the job's id, so a
-- job's progress is a count of its deliveries by state.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    route       TEXT NOT NULL,
    client      TEXT,
    created_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    lines       INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    errors      TEXT NOT NULL DEFAULT '[]'
);
ALTER TABLE deliveries ADD COLUMN job_id TEXT;
CREATE INDEX deliveries_job ON deliveries (job_id, state) WHERE job_id IS NOT NULL;
