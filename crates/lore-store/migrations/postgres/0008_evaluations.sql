-- Evaluations of a knowledge base's retrieval: golden questions run against search
-- configurations; the request as sent and the metrics per configuration. They go with their
-- knowledge base, and each tenant sees its own under row-level security.
CREATE TABLE evaluations (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    request JSONB NOT NULL,
    results JSONB NOT NULL DEFAULT '{}',
    error_message TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ
);
CREATE INDEX evaluations_kb ON evaluations (knowledge_base_id, created_at);
ALTER TABLE evaluations ENABLE ROW LEVEL SECURITY;
ALTER TABLE evaluations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON evaluations USING (user_id = lore_tenant() OR lore_system());
