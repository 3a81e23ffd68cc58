-- Invitations to register, made by administrators (`--registration invite`). The token is shown
-- once and kept only as its SHA-256 hash; an invitation admits one account. Not a tenant's data:
-- no row-level security (only administrators and registration reach it).
CREATE TABLE invitations (
    id          UUID PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT,
    created_by  UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    used_by     UUID REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX idx_invitations_created ON invitations(created_at);
