-- Read-only embed tokens (`ferry embed add ROUTE`): each lets a page of
-- another system frame one route's failure list
-- (`/console/embed/failures?token=...`); only the token's SHA-256 is kept.
CREATE TABLE embed_tokens (
    token_sha256 TEXT PRIMARY KEY,
    route        TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);
