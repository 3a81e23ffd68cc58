-- Invitations to register, made by administrators (`--registration invite`). The token is shown
-- once and kept only as its SHA-256 hash; an invitation admits one account.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT,
    created_by  TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX idx_invitations_created ON invitations(created_at);
