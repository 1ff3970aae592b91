-- ferry PostgreSQL schema, version 5: a half-open circuit breaker's probe
-- slot per system, shared by every instance, so one probe goes per interval
-- whichever instances have the breaker open.
CREATE TABLE probes (
    key      TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
