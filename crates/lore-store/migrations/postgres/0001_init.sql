-- Lore's whole data model (seeds 000 and 001 merged), PostgreSQL flavour: the seed's own types
-- (uuid, timestamptz, jsonb, pgvector's vector), its indexes and its three statistics triggers.
-- Full text is a GIN index over a tsvector of the terms Lore segmented itself (jieba for Chinese),
-- built with the 'simple' configuration, so no server-side Chinese parser is needed.
-- HNSW indexes are per embedding dimension and created by Lore when a dimension first appears
-- (see `PgStore::ensure_vector_index`): a knowledge base of 384-d vectors and one of 1024-d
-- vectors live in the same table.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    username        TEXT NOT NULL,
    email           TEXT NOT NULL,
    hashed_password TEXT NOT NULL,
    full_name       TEXT,
    first_name      TEXT,
    last_name       TEXT,
    avatar_url      TEXT,
    settings        JSONB NOT NULL DEFAULT '{}',
    is_active       BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff        BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,   -- seed 000's date_joined
    updated_at      TIMESTAMPTZ NOT NULL,
    last_login_at   TIMESTAMPTZ,
    storage_used    BIGINT NOT NULL DEFAULT 0,
    api_calls_count BIGINT NOT NULL DEFAULT 0
);
-- Usernames and emails are unique regardless of case, as on SQLite (COLLATE NOCASE).
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    ip_address   TEXT,
    user_agent   TEXT
);
CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE INDEX idx_sessions_expires ON sessions(expires_at);

CREATE TABLE knowledge_base_configs (
    id                           UUID PRIMARY KEY,
    user_id                      UUID NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    default_embedding_model      TEXT,
    default_chunk_size           BIGINT,
    default_chunk_overlap        BIGINT,
    document_retention_days      BIGINT,
    conversation_retention_days  BIGINT,
    default_similarity_threshold DOUBLE PRECISION,
    max_search_results           BIGINT,
    sync_notifications           BOOLEAN NOT NULL DEFAULT TRUE,
    error_notifications          BOOLEAN NOT NULL DEFAULT TRUE,
    openai_api_key               TEXT,      -- encrypted (AEAD), never stored in clear
    anthropic_api_key            TEXT,      -- encrypted
    cohere_api_key               TEXT,      -- encrypted
    openai_base_url              TEXT,
    anthropic_base_url           TEXT,
    cohere_base_url              TEXT,
    webhook_url                  TEXT,
    webhook_secret               TEXT,      -- encrypted
    created_at                   TIMESTAMPTZ NOT NULL,
    updated_at                   TIMESTAMPTZ NOT NULL
);

CREATE TABLE knowledge_bases (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT,
    icon_url         TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    settings         JSONB NOT NULL DEFAULT '{}',
    document_count   BIGINT NOT NULL DEFAULT 0,
    total_size_bytes BIGINT NOT NULL DEFAULT 0,
    chunk_count      BIGINT NOT NULL DEFAULT 0,
    embedding_space  TEXT,        -- the embedding model search uses while a re-embedding runs
    last_updated_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_kb_user ON knowledge_bases(user_id);

CREATE TABLE data_sources (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    source_type       TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'syncing', 'paused', 'error')),
    config            JSONB NOT NULL DEFAULT '{}',
    credentials       TEXT,                -- encrypted
    auto_sync         BOOLEAN NOT NULL DEFAULT FALSE,
    sync_frequency    BIGINT,              -- minutes
    last_sync         TIMESTAMPTZ,
    last_error        TEXT,
    lease_owner       TEXT,
    lease_until       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX idx_ds_user ON data_sources(user_id);
CREATE INDEX idx_ds_source_type ON data_sources(source_type);
CREATE INDEX idx_ds_status ON data_sources(status);
CREATE INDEX idx_ds_created_at ON data_sources(created_at);

CREATE TABLE data_source_syncs (
    id             UUID PRIMARY KEY,
    data_source_id UUID NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    added          BIGINT NOT NULL DEFAULT 0,
    updated        BIGINT NOT NULL DEFAULT 0,
    removed        BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    errors         JSONB NOT NULL DEFAULT '[]'
);
CREATE INDEX idx_ds_syncs_source ON data_source_syncs(data_source_id, started_at);

CREATE TABLE file_types (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    category         TEXT NOT NULL,
    mime_types       JSONB NOT NULL DEFAULT '[]',
    extensions       JSONB NOT NULL DEFAULT '[]',
    parsers          JSONB NOT NULL DEFAULT '[]',
    embedding_models JSONB NOT NULL DEFAULT '[]',
    is_active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE documents (
    id                UUID PRIMARY KEY,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- owner
    uploaded_by       UUID REFERENCES users(id) ON DELETE SET NULL,
    data_source_id    UUID REFERENCES data_sources(id) ON DELETE SET NULL,
    file_type_id      BIGINT REFERENCES file_types(id) ON DELETE SET NULL,
    title             TEXT,
    filename          TEXT NOT NULL,       -- seed 000's original_filename
    file_type         TEXT NOT NULL,
    file_path         TEXT NOT NULL,       -- blob key in the blob store
    file_size         BIGINT NOT NULL,
    mime_type         TEXT NOT NULL,
    file_hash         TEXT NOT NULL,       -- SHA-256, hex
    raw_content       TEXT,
    processed_content TEXT,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    progress          BIGINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error_code        TEXT,
    error_message     TEXT,
    processing_log    JSONB NOT NULL DEFAULT '[]',
    metadata          JSONB NOT NULL DEFAULT '{}',
    source_metadata   JSONB NOT NULL DEFAULT '{}',
    chunking_config   JSONB,
    chunk_count       BIGINT NOT NULL DEFAULT 0,
    processed_at      TIMESTAMPTZ,
    expires_at        TIMESTAMPTZ,
    soft_deleted_at   TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_doc_kb_status ON documents(knowledge_base_id, status);
CREATE INDEX idx_doc_user_status ON documents(user_id, status);
CREATE INDEX idx_doc_source_created ON documents(data_source_id, created_at);
CREATE INDEX idx_doc_status ON documents(status);
CREATE INDEX idx_doc_created_at ON documents(created_at);
CREATE INDEX idx_doc_expires_at ON documents(expires_at);
CREATE INDEX idx_doc_soft_deleted_at ON documents(soft_deleted_at);
CREATE INDEX idx_doc_file_hash ON documents(file_hash);
CREATE INDEX idx_doc_file_path ON documents(file_path);
-- Deduplication: one live document per content in a knowledge base.
CREATE UNIQUE INDEX idx_doc_kb_hash_live ON documents(knowledge_base_id, file_hash)
    WHERE soft_deleted_at IS NULL;

-- `seq` is the chunk's position in the global insertion order (re-embedding walks it).
-- `embedding_dims` names the per-dimension HNSW index that covers the row.
CREATE TABLE document_chunks (
    seq               BIGSERIAL PRIMARY KEY,
    id                UUID NOT NULL UNIQUE,
    document_id       UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    content           TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    chunk_index       BIGINT NOT NULL,
    content_embedding vector,
    summary_embedding vector,
    embedding_dims    INTEGER,
    embedding_model   TEXT,
    fts               TSVECTOR,            -- NULL for chunks that are not searchable (parents)
    metadata          JSONB NOT NULL DEFAULT '{}',
    parent_chunk_id   UUID REFERENCES document_chunks(id) ON DELETE CASCADE,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (document_id, chunk_index)
);
CREATE INDEX idx_chunks_document ON document_chunks(document_id);
CREATE INDEX idx_chunks_kb_user ON document_chunks(knowledge_base_id, user_id);
CREATE INDEX idx_chunks_created_at ON document_chunks(created_at);
CREATE INDEX idx_chunks_hash_model ON document_chunks(content_hash, embedding_model);
CREATE INDEX idx_chunks_fts ON document_chunks USING gin (fts);

-- New embeddings wait here until the whole knowledge base has them, then replace the old ones in
-- one transaction. A crash mid-way resumes from what is here.
CREATE TABLE chunk_reembeddings (
    chunk_seq         BIGINT PRIMARY KEY REFERENCES document_chunks(seq) ON DELETE CASCADE,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    embedding_model   TEXT NOT NULL,
    content_embedding vector NOT NULL,
    summary_embedding vector
);
CREATE INDEX idx_reembed_kb ON chunk_reembeddings(knowledge_base_id, embedding_model);

CREATE TABLE api_keys (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id UUID REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT,
    key_hash          TEXT NOT NULL UNIQUE,  -- SHA-256 of the key, hex; the key itself is never stored
    key_prefix        TEXT NOT NULL,
    key_suffix        TEXT NOT NULL,
    scopes            JSONB NOT NULL DEFAULT '[]',
    rate_limit        BIGINT,                -- requests per minute
    daily_quota       BIGINT,
    monthly_quota     BIGINT,
    rate_window       TEXT,                  -- UTC minute the rate counter belongs to
    rate_count        BIGINT NOT NULL DEFAULT 0,
    usage_count_today BIGINT NOT NULL DEFAULT 0,
    usage_count_month BIGINT NOT NULL DEFAULT 0,
    usage_day         TEXT,                  -- UTC day the daily counter belongs to
    usage_month       TEXT,                  -- UTC month the monthly counter belongs to
    is_active         BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at        TIMESTAMPTZ,
    revoked_at        TIMESTAMPTZ,
    last_used_at      TIMESTAMPTZ,
    last_used_ip      TEXT,
    security          JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_apikey_hash ON api_keys(key_hash);
CREATE INDEX idx_apikey_user ON api_keys(user_id);

CREATE TABLE api_usage_logs (
    id               UUID PRIMARY KEY,
    api_key_id       UUID REFERENCES api_keys(id) ON DELETE SET NULL,
    user_id          UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint         TEXT NOT NULL,
    method           TEXT NOT NULL,
    request_body     JSONB,
    status_code      BIGINT NOT NULL,
    response_time_ms BIGINT NOT NULL,
    error_message    TEXT,
    ip_address       TEXT,
    user_agent       TEXT,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_usage_user_created ON api_usage_logs(user_id, created_at);
CREATE INDEX idx_usage_key_created ON api_usage_logs(api_key_id, created_at);
CREATE INDEX idx_usage_created ON api_usage_logs(created_at);
CREATE INDEX idx_usage_status_created ON api_usage_logs(status_code, created_at);

CREATE TABLE ai_agents (
    id                    UUID PRIMARY KEY,
    user_id               UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    description           TEXT,
    agent_type            TEXT NOT NULL DEFAULT 'qa',
    model_provider        TEXT NOT NULL DEFAULT 'extractive',
    model_name            TEXT,
    model_parameters      JSONB NOT NULL DEFAULT '{}',
    conversation_mode     TEXT NOT NULL DEFAULT 'multi_turn'
                          CHECK (conversation_mode IN ('single_turn', 'multi_turn')),
    context_window        BIGINT,
    memory_retention_days BIGINT,
    system_prompt         TEXT,
    user_prompt_template  TEXT,
    max_documents         BIGINT NOT NULL DEFAULT 5,
    similarity_threshold  DOUBLE PRECISION,
    rate_limit_per_hour   BIGINT,
    rate_limit_per_day    BIGINT,
    domain_keywords       JSONB NOT NULL DEFAULT '[]',
    expertise_areas       JSONB NOT NULL DEFAULT '[]',
    is_active             BOOLEAN NOT NULL DEFAULT TRUE,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX idx_agent_user ON ai_agents(user_id);
CREATE INDEX idx_agent_type ON ai_agents(agent_type);
CREATE INDEX idx_agent_provider ON ai_agents(model_provider);
CREATE INDEX idx_agent_active ON ai_agents(is_active);
CREATE INDEX idx_agent_created_at ON ai_agents(created_at);

CREATE TABLE ai_agent_data_sources (
    id             BIGSERIAL PRIMARY KEY,
    aiagent_id     UUID NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    datasource_id  UUID NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, datasource_id)
);
CREATE TABLE ai_agent_file_types (
    id          BIGSERIAL PRIMARY KEY,
    aiagent_id  UUID NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    filetype_id BIGINT NOT NULL REFERENCES file_types(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, filetype_id)
);
CREATE TABLE ai_agent_knowledge_bases (
    id                BIGSERIAL PRIMARY KEY,
    aiagent_id        UUID NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    knowledge_base_id UUID NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, knowledge_base_id)
);

CREATE TABLE conversations (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id   UUID NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    title      TEXT,
    context    JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_conv_user ON conversations(user_id);
CREATE INDEX idx_conv_agent ON conversations(agent_id);
CREATE INDEX idx_conv_created_at ON conversations(created_at);
CREATE INDEX idx_conv_updated_at ON conversations(updated_at);
CREATE INDEX idx_conv_user_updated ON conversations(user_id, updated_at);

CREATE TABLE messages (
    seq             BIGSERIAL,             -- insertion order among messages of the same instant
    id              UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT NOT NULL,
    metadata        JSONB NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_msg_conversation ON messages(conversation_id);
CREATE INDEX idx_msg_role ON messages(role);
CREATE INDEX idx_msg_created_at ON messages(created_at);

CREATE TABLE message_cited_documents (
    id             BIGSERIAL PRIMARY KEY,
    message_id     UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    document_id    UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_id       UUID REFERENCES document_chunks(id) ON DELETE SET NULL,
    citation_index BIGINT,
    score          DOUBLE PRECISION
);
CREATE INDEX idx_cited_message ON message_cited_documents(message_id);
CREATE INDEX idx_cited_document ON message_cited_documents(document_id);

CREATE TABLE agent_usage (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id          UUID NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    conversation_id   UUID REFERENCES conversations(id) ON DELETE SET NULL,
    model_provider    TEXT,
    model_name        TEXT,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    tokens_used       BIGINT NOT NULL DEFAULT 0,
    cost              NUMERIC NOT NULL DEFAULT 0,   -- exact; keeps the scale it was given
    response_time     DOUBLE PRECISION NOT NULL DEFAULT 0,   -- seconds
    request_data      JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_agent_usage_user_created ON agent_usage(user_id, created_at);
CREATE INDEX idx_agent_usage_agent_created ON agent_usage(agent_id, created_at);
CREATE INDEX idx_agent_usage_created ON agent_usage(created_at);

CREATE TABLE notifications (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT,
    data       JSONB NOT NULL DEFAULT '{}',
    read_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_notifications_user_created ON notifications(user_id, created_at);

-- The ingestion queue, shared by every node. A job is claimed with FOR UPDATE SKIP LOCKED and a
-- lease; a lease that runs out (a crashed node) makes the job claimable again.
CREATE TABLE jobs (
    id                UUID PRIMARY KEY,
    kind              TEXT NOT NULL,
    document_id       UUID REFERENCES documents(id) ON DELETE CASCADE,
    knowledge_base_id UUID REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    status            TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    run_after         TIMESTAMPTZ NOT NULL,
    locked_by         TEXT,
    locked_until      TIMESTAMPTZ,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_jobs_claim ON jobs(status, run_after);
CREATE INDEX idx_jobs_document ON jobs(document_id);

-- ---------------------------------------------------------------- statistics (seed 001's triggers)
-- A knowledge base counts its live (not soft-deleted) documents and their chunks.
CREATE FUNCTION update_kb_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.soft_deleted_at IS NULL THEN
            UPDATE knowledge_bases SET document_count = document_count + 1,
                   total_size_bytes = total_size_bytes + NEW.file_size, last_updated_at = now()
             WHERE id = NEW.knowledge_base_id;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.soft_deleted_at IS NULL THEN
            UPDATE knowledge_bases SET document_count = document_count - 1,
                   total_size_bytes = total_size_bytes - OLD.file_size,
                   chunk_count = chunk_count - OLD.chunk_count, last_updated_at = now()
             WHERE id = OLD.knowledge_base_id;
        END IF;
    ELSE
        IF OLD.soft_deleted_at IS NULL AND NEW.soft_deleted_at IS NOT NULL THEN
            UPDATE knowledge_bases SET document_count = document_count - 1,
                   total_size_bytes = total_size_bytes - NEW.file_size,
                   chunk_count = chunk_count - NEW.chunk_count, last_updated_at = now()
             WHERE id = NEW.knowledge_base_id;
        ELSIF OLD.soft_deleted_at IS NOT NULL AND NEW.soft_deleted_at IS NULL THEN
            UPDATE knowledge_bases SET document_count = document_count + 1,
                   total_size_bytes = total_size_bytes + NEW.file_size,
                   chunk_count = chunk_count + NEW.chunk_count, last_updated_at = now()
             WHERE id = NEW.knowledge_base_id;
        ELSIF NEW.status = 'completed' AND OLD.status <> 'completed' THEN
            UPDATE knowledge_bases SET last_updated_at = now() WHERE id = NEW.knowledge_base_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER trg_doc_kb_stats AFTER INSERT OR DELETE OR UPDATE OF soft_deleted_at, status ON documents
FOR EACH ROW EXECUTE FUNCTION update_kb_stats();

-- A user's storage counts every stored document until it is hard-deleted.
CREATE FUNCTION update_user_storage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET storage_used = storage_used + NEW.file_size WHERE id = NEW.user_id;
    ELSE
        UPDATE users SET storage_used = storage_used - OLD.file_size WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER trg_user_storage AFTER INSERT OR DELETE ON documents
FOR EACH ROW EXECUTE FUNCTION update_user_storage();

CREATE FUNCTION update_doc_chunk_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    chunk document_chunks%ROWTYPE := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
BEGIN
    UPDATE documents SET chunk_count = chunk_count + delta WHERE id = chunk.document_id;
    UPDATE knowledge_bases SET chunk_count = chunk_count + delta
     WHERE id = chunk.knowledge_base_id
       AND EXISTS (SELECT 1 FROM documents d WHERE d.id = chunk.document_id AND d.soft_deleted_at IS NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER trg_doc_chunk_count AFTER INSERT OR DELETE ON document_chunks
FOR EACH ROW EXECUTE FUNCTION update_doc_chunk_count();

CREATE FUNCTION update_user_api_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET api_calls_count = api_calls_count + 1 WHERE id = NEW.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER trg_user_api_calls AFTER INSERT ON api_usage_logs
FOR EACH ROW EXECUTE FUNCTION update_user_api_calls();

-- ---------------------------------------------------------------- file type registry defaults
INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active, created_at, updated_at) VALUES
 ('text', 'text', '["text/plain"]', '["txt","text","log"]', '["text"]', '[]', TRUE, now(), now()),
 ('markdown', 'text', '["text/markdown","text/x-markdown"]', '["md","markdown","mdown","mkd"]', '["markdown"]', '[]', TRUE, now(), now()),
 ('html', 'web', '["text/html","application/xhtml+xml"]', '["html","htm","xhtml"]', '["html"]', '[]', TRUE, now(), now());
