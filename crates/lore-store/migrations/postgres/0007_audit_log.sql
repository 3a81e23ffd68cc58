-- The audit log: security-relevant changes (sign-ins, keys, members, settings, deletions,
-- administrators' actions), appended by the service and never changed through the API; purged
-- after the audit retention. No foreign keys: an entry outlives the user it names. A tenant sees
-- the entries that concern them (owner_id), as row-level security holds every tenant table.
CREATE TABLE audit_log (
    id UUID PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor_id UUID,
    actor TEXT,
    owner_id UUID,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip_address TEXT,
    request_id TEXT,
    details JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_owner_at ON audit_log (owner_id, at);
CREATE INDEX audit_log_at ON audit_log (at);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log USING (owner_id = lore_tenant() OR lore_system());
