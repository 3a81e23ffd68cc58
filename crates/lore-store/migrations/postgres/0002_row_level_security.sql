-- Row-level security: a second wall behind the owner filter every query already has. Lore runs
-- each tenant's reads in a transaction that names the tenant (`lore.tenant`); there, a table
-- shows only that tenant's rows, even to a query that forgot its filter. Work done for no one in
-- particular (ingestion workers, authentication, retention purges) names no tenant and sees all.
-- FORCE: the policies bind the role that owns the tables too (Lore connects as that role). A
-- superuser or a BYPASSRLS role skips them, so Lore should not connect as one.

CREATE FUNCTION lore_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('lore.tenant', true), '')::uuid
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sessions', 'knowledge_base_configs', 'knowledge_bases', 'data_sources', 'documents',
                             'document_chunks', 'api_keys', 'api_usage_logs', 'ai_agents', 'conversations',
                             'agent_usage', 'notifications']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (lore_tenant() IS NULL OR user_id = lore_tenant())', t);
    END LOOP;
END $$;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users USING (lore_tenant() IS NULL OR id = lore_tenant());
