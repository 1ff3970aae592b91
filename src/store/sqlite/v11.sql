-- Console users (issue 12): a role and an Argon2id password hash (a PHC
-- string) per name; there is no default user or password.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_phc TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
