-- Workspaces. A person's own account is their personal workspace; a team workspace is an account
-- of kind 'team' that owns knowledge bases, agents, data sources, keys, configuration and usage
-- exactly as a person's account does (every owned row's `user_id` names its workspace), but that
-- nobody signs in as. Members reach it with a role. Nothing moves: today's data is already in its
-- owner's personal workspace.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'team'));

CREATE TABLE workspace_members (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

-- Who made a shared object: a workspace's objects are made by its members.
ALTER TABLE knowledge_bases ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE ai_agents ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE data_sources ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;
-- A key acts with at most its creator's current role in the workspace, and dies with their membership.
ALTER TABLE api_keys ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;

-- A knowledge base shared read-only into another workspace: its members search and read it there.
CREATE TABLE knowledge_base_shares (
    id                TEXT PRIMARY KEY,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    workspace_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by        TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    UNIQUE (knowledge_base_id, workspace_id)
);
CREATE INDEX knowledge_base_shares_workspace ON knowledge_base_shares (workspace_id);

-- Invitations to a team, by link: the token is shown once and kept as its SHA-256 hash; naming an
-- email or a username, only that person may use it; it admits one person, once, before it expires.
CREATE TABLE workspace_invitations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    email        TEXT,
    username     TEXT,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_by   TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    used_by      TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX workspace_invitations_workspace ON workspace_invitations (workspace_id, created_at);
