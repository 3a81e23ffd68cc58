-- The audit log: security-relevant changes (sign-ins, keys, members, settings, deletions,
-- administrators' actions), appended by the service and never changed through the API; purged
-- after the audit retention. No foreign keys: an entry outlives the user it names.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor_id TEXT,
    actor TEXT,
    owner_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip_address TEXT,
    request_id TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_owner_at ON audit_log (owner_id, at);
CREATE INDEX audit_log_at ON audit_log (at);
