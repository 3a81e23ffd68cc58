-- Workspaces. A person's own account is their personal workspace; a team workspace is an account
-- of kind 'team' that owns knowledge bases, agents, data sources, keys, configuration and usage
-- exactly as a person's account does (every owned row's `user_id` names its workspace, and
-- row-level security scopes by it as before), but that nobody signs in as. Members reach it with
-- a role. Nothing moves: today's data is already in its owner's personal workspace.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'team'));

CREATE TABLE workspace_members (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);
ALTER TABLE workspace_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workspace_members USING (workspace_id = lore_tenant() OR lore_system());

-- Who made a shared object: a workspace's objects are made by its members.
ALTER TABLE knowledge_bases ADD COLUMN created_by UUID REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE ai_agents ADD COLUMN created_by UUID REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE data_sources ADD COLUMN created_by UUID REFERENCES users(id) ON DELETE SET NULL;
-- A key acts with at most its creator's current role in the workspace, and dies with their membership.
ALTER TABLE api_keys ADD COLUMN created_by UUID REFERENCES users(id) ON DELETE SET NULL;

-- A knowledge base shared read-only into another workspace: its members search and read it there.
CREATE TABLE knowledge_base_shares (
    id                UUID PRIMARY KEY,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    workspace_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by        UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (knowledge_base_id, workspace_id)
);
CREATE INDEX knowledge_base_shares_workspace ON knowledge_base_shares (workspace_id);
ALTER TABLE knowledge_base_shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_base_shares FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_base_shares USING (workspace_id = lore_tenant() OR lore_system());

-- Invitations to a team, by link: the token is shown once and kept as its SHA-256 hash; naming an
-- email or a username, only that person may use it; it admits one person, once, before it expires.
CREATE TABLE workspace_invitations (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    email        TEXT,
    username     TEXT,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_by   UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    used_by      UUID REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX workspace_invitations_workspace ON workspace_invitations (workspace_id, created_at);
ALTER TABLE workspace_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workspace_invitations USING (workspace_id = lore_tenant() OR lore_system());
