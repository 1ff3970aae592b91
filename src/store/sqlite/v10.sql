-- API tokens with roles (issue 12): the admin JSON API's bearer tokens
-- beside server.admin_token. Only a SHA-256 of each token is kept (tokens
-- are 256 random bits, so a fast hash is enough); the token is shown once.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
