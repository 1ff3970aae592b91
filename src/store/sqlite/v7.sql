-- The encrypted credential store (issue 11): each version of a credential
-- sealed under the master key (XChaCha20-Poly1305, name and version as
-- associated data); `retire_ms` is when a superseded version stops being
-- accepted inbound (the end of its grace window). `credential_meta` holds the
-- generation every instance polls (bumped by every change) and the sealed key
-- check value by which a wrong master key is told at start.
CREATE TABLE credential_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    retire_ms INTEGER,
    last_used_ms INTEGER,
    PRIMARY KEY (name, version)
);
CREATE TABLE credential_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    key_check BLOB
);
INSERT INTO credential_meta (id, generation) VALUES (1, 0);
