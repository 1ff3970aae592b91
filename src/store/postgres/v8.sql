-- The encrypted credential store (issue 11): see sqlite/v7.sql.
CREATE TABLE credential_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    retire_ms BIGINT,
    last_used_ms BIGINT,
    PRIMARY KEY (name, version)
);
CREATE TABLE credential_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL,
    key_check BYTEA
);
INSERT INTO credential_meta (id, generation) VALUES (1, 0);
