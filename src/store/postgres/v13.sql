-- Console sessions (issue 12): kept by the SHA-256 of the cookie, with the
-- user, the CSRF token, the last use (idle expiry) and an absolute end; the
-- user's current role is read by joining `users`.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    address      TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_ms);
-- The dashboard's activity: what changed state within the last day, by
-- route, system and state, read from the index alone.
CREATE INDEX deliveries_recent ON deliveries (updated_ms, route, system, state);
-- Where each operator action came from: console, api or cli
-- (`store::Channel`; empty for the actions audited before).
ALTER TABLE audit ADD COLUMN channel TEXT NOT NULL DEFAULT '';
