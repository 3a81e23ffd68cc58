-- Row-level security fails closed: a connection or transaction that names no tenant sees no
-- tenant's rows. Before, `lore_tenant() IS NULL` let any such query see every row.
--
-- Work that legitimately spans tenants (ingestion workers, authentication, retention purges,
-- migrations) names the bypass instead: Lore's own connections set `lore.system = on` when they
-- open, and a tenant's transaction turns it off and names its tenant. Another client connecting
-- as Lore's role (psql, a report, a tool) sees nothing until it says which it is.

CREATE FUNCTION lore_system() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('lore.system', true), '') = 'on'
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sessions', 'knowledge_base_configs', 'knowledge_bases', 'data_sources', 'documents',
                             'document_chunks', 'api_keys', 'api_usage_logs', 'ai_agents', 'conversations',
                             'agent_usage', 'notifications']
    LOOP
        EXECUTE format('ALTER POLICY tenant_isolation ON %I USING (user_id = lore_tenant() OR lore_system())', t);
    END LOOP;
END $$;

ALTER POLICY tenant_isolation ON users USING (id = lore_tenant() OR lore_system());
