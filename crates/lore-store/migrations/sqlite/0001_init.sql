-- Lore's whole data model (seeds 000 and 001 merged), SQLite flavour.
-- Conventions: UUIDs as TEXT, timestamps as TEXT in UTC 'YYYY-MM-DDTHH:MM:SS.mmmZ' (sortable),
-- JSON as TEXT, booleans as INTEGER 0/1. Statistics are kept by the triggers at the end.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    hashed_password TEXT NOT NULL,
    full_name       TEXT,
    first_name      TEXT,
    last_name       TEXT,
    avatar_url      TEXT,
    settings        TEXT NOT NULL DEFAULT '{}',
    is_active       INTEGER NOT NULL DEFAULT 1,
    is_staff        INTEGER NOT NULL DEFAULT 0,
    is_superuser    INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,          -- seed 000's date_joined
    updated_at      TEXT NOT NULL,
    last_login_at   TEXT,
    storage_used    INTEGER NOT NULL DEFAULT 0,
    api_calls_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip_address   TEXT,
    user_agent   TEXT
);
CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE INDEX idx_sessions_expires ON sessions(expires_at);

CREATE TABLE knowledge_base_configs (
    id                           TEXT PRIMARY KEY,
    user_id                      TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    default_embedding_model      TEXT,
    default_chunk_size           INTEGER,
    default_chunk_overlap        INTEGER,
    document_retention_days      INTEGER,
    conversation_retention_days  INTEGER,
    default_similarity_threshold REAL,
    max_search_results           INTEGER,
    sync_notifications           INTEGER NOT NULL DEFAULT 1,
    error_notifications          INTEGER NOT NULL DEFAULT 1,
    openai_api_key               TEXT,      -- encrypted (AEAD), never stored in clear
    anthropic_api_key            TEXT,      -- encrypted
    cohere_api_key               TEXT,      -- encrypted
    openai_base_url              TEXT,
    anthropic_base_url           TEXT,
    cohere_base_url              TEXT,
    webhook_url                  TEXT,
    webhook_secret               TEXT,      -- encrypted
    created_at                   TEXT NOT NULL,
    updated_at                   TEXT NOT NULL
);

CREATE TABLE knowledge_bases (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT,
    icon_url         TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    settings         TEXT NOT NULL DEFAULT '{}',
    document_count   INTEGER NOT NULL DEFAULT 0,
    total_size_bytes INTEGER NOT NULL DEFAULT 0,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    last_updated_at  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX idx_kb_user ON knowledge_bases(user_id);

CREATE TABLE data_sources (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    source_type       TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'syncing', 'paused', 'error')),
    config            TEXT NOT NULL DEFAULT '{}',
    credentials       TEXT,                -- encrypted
    auto_sync         INTEGER NOT NULL DEFAULT 0,
    sync_frequency    INTEGER,             -- minutes
    last_sync         TEXT,
    last_error        TEXT,
    lease_owner       TEXT,
    lease_until       TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX idx_ds_user ON data_sources(user_id);
CREATE INDEX idx_ds_source_type ON data_sources(source_type);
CREATE INDEX idx_ds_status ON data_sources(status);
CREATE INDEX idx_ds_created_at ON data_sources(created_at);

CREATE TABLE data_source_syncs (
    id             TEXT PRIMARY KEY,
    data_source_id TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    added          INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    removed        INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    errors         TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX idx_ds_syncs_source ON data_source_syncs(data_source_id, started_at);

CREATE TABLE file_types (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    category         TEXT NOT NULL,
    mime_types       TEXT NOT NULL DEFAULT '[]',
    extensions       TEXT NOT NULL DEFAULT '[]',
    parsers          TEXT NOT NULL DEFAULT '[]',
    embedding_models TEXT NOT NULL DEFAULT '[]',
    is_active        INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE documents (
    id                TEXT PRIMARY KEY,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- owner
    uploaded_by       TEXT REFERENCES users(id) ON DELETE SET NULL,
    data_source_id    TEXT REFERENCES data_sources(id) ON DELETE SET NULL,
    file_type_id      INTEGER REFERENCES file_types(id) ON DELETE SET NULL,
    title             TEXT,
    filename          TEXT NOT NULL,       -- seed 000's original_filename
    file_type         TEXT NOT NULL,
    file_path         TEXT NOT NULL,       -- blob key in the blob store
    file_size         INTEGER NOT NULL,
    mime_type         TEXT NOT NULL,
    file_hash         TEXT NOT NULL,       -- SHA-256, hex
    raw_content       TEXT,
    processed_content TEXT,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    progress          INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error_code        TEXT,
    error_message     TEXT,
    processing_log    TEXT NOT NULL DEFAULT '[]',
    metadata          TEXT NOT NULL DEFAULT '{}',
    source_metadata   TEXT NOT NULL DEFAULT '{}',
    chunking_config   TEXT,
    chunk_count       INTEGER NOT NULL DEFAULT 0,
    processed_at      TEXT,
    expires_at        TEXT,
    soft_deleted_at   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX idx_doc_kb_status ON documents(knowledge_base_id, status);
CREATE INDEX idx_doc_user_status ON documents(user_id, status);
CREATE INDEX idx_doc_source_created ON documents(data_source_id, created_at);
CREATE INDEX idx_doc_status ON documents(status);
CREATE INDEX idx_doc_created_at ON documents(created_at);
CREATE INDEX idx_doc_expires_at ON documents(expires_at);
CREATE INDEX idx_doc_soft_deleted_at ON documents(soft_deleted_at);
CREATE INDEX idx_doc_file_hash ON documents(file_hash);
-- Deduplication: one live document per content in a knowledge base.
CREATE UNIQUE INDEX idx_doc_kb_hash_live ON documents(knowledge_base_id, file_hash)
    WHERE soft_deleted_at IS NULL;

-- `seq` is the chunk's position in the global insertion order: the full-text index uses it as
-- its rowid and the derived vector index records the highest seq it covers.
CREATE TABLE document_chunks (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    document_id       TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    content           TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    chunk_index       INTEGER NOT NULL,
    content_embedding BLOB,                -- little-endian f32
    summary_embedding BLOB,
    embedding_model   TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    parent_chunk_id   TEXT REFERENCES document_chunks(id) ON DELETE CASCADE,
    created_at        TEXT NOT NULL,
    UNIQUE (document_id, chunk_index)
);
CREATE INDEX idx_chunks_document ON document_chunks(document_id);
CREATE INDEX idx_chunks_kb_user ON document_chunks(knowledge_base_id, user_id);
CREATE INDEX idx_chunks_created_at ON document_chunks(created_at);
CREATE INDEX idx_chunks_content_hash ON document_chunks(content_hash);

-- Full text over the text Lore segmented itself (jieba for Chinese, Unicode words otherwise),
-- stored as space-separated lowercase terms; rowid = document_chunks.seq. `kb` holds one token
-- naming the knowledge base, so a query is narrowed to it inside the index, before ranking.
CREATE VIRTUAL TABLE chunk_fts USING fts5(terms, kb, tokenize = 'unicode61 remove_diacritics 0');
-- Document frequency of each term, for query planning.
CREATE VIRTUAL TABLE chunk_fts_terms USING fts5vocab(chunk_fts, 'row');

CREATE TABLE api_keys (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id TEXT REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT,
    key_hash          TEXT NOT NULL UNIQUE,  -- SHA-256 of the key, hex; the key itself is never stored
    key_prefix        TEXT NOT NULL,
    key_suffix        TEXT NOT NULL,
    scopes            TEXT NOT NULL DEFAULT '[]',
    rate_limit        INTEGER,               -- requests per minute
    daily_quota       INTEGER,
    monthly_quota     INTEGER,
    usage_count_today INTEGER NOT NULL DEFAULT 0,
    usage_count_month INTEGER NOT NULL DEFAULT 0,
    usage_day         TEXT,                  -- UTC day the daily counter belongs to
    usage_month       TEXT,                  -- UTC month the monthly counter belongs to
    is_active         INTEGER NOT NULL DEFAULT 1,
    expires_at        TEXT,
    revoked_at        TEXT,
    last_used_at      TEXT,
    last_used_ip      TEXT,
    security          TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX idx_apikey_hash ON api_keys(key_hash);
CREATE INDEX idx_apikey_user ON api_keys(user_id);

CREATE TABLE api_usage_logs (
    id               TEXT PRIMARY KEY,
    api_key_id       TEXT REFERENCES api_keys(id) ON DELETE SET NULL,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint         TEXT NOT NULL,
    method           TEXT NOT NULL,
    request_body     TEXT,
    status_code      INTEGER NOT NULL,
    response_time_ms INTEGER NOT NULL,
    error_message    TEXT,
    ip_address       TEXT,
    user_agent       TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX idx_usage_user_created ON api_usage_logs(user_id, created_at);
CREATE INDEX idx_usage_key_created ON api_usage_logs(api_key_id, created_at);
CREATE INDEX idx_usage_created ON api_usage_logs(created_at);

CREATE TABLE ai_agents (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    description           TEXT,
    agent_type            TEXT NOT NULL DEFAULT 'qa',
    model_provider        TEXT NOT NULL DEFAULT 'extractive',
    model_name            TEXT,
    model_parameters      TEXT NOT NULL DEFAULT '{}',
    conversation_mode     TEXT NOT NULL DEFAULT 'multi_turn'
                          CHECK (conversation_mode IN ('single_turn', 'multi_turn')),
    context_window        INTEGER,
    memory_retention_days INTEGER,
    system_prompt         TEXT,
    user_prompt_template  TEXT,
    max_documents         INTEGER NOT NULL DEFAULT 5,
    similarity_threshold  REAL,
    rate_limit_per_hour   INTEGER,
    rate_limit_per_day    INTEGER,
    domain_keywords       TEXT NOT NULL DEFAULT '[]',
    expertise_areas       TEXT NOT NULL DEFAULT '[]',
    is_active             INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX idx_agent_user ON ai_agents(user_id);
CREATE INDEX idx_agent_type ON ai_agents(agent_type);
CREATE INDEX idx_agent_provider ON ai_agents(model_provider);
CREATE INDEX idx_agent_active ON ai_agents(is_active);
CREATE INDEX idx_agent_created_at ON ai_agents(created_at);

CREATE TABLE ai_agent_data_sources (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    aiagent_id     TEXT NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    datasource_id  TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, datasource_id)
);
CREATE TABLE ai_agent_file_types (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    aiagent_id  TEXT NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    filetype_id INTEGER NOT NULL REFERENCES file_types(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, filetype_id)
);
CREATE TABLE ai_agent_knowledge_bases (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    aiagent_id        TEXT NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    UNIQUE (aiagent_id, knowledge_base_id)
);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    title      TEXT,
    context    TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_conv_user ON conversations(user_id);
CREATE INDEX idx_conv_agent ON conversations(agent_id);
CREATE INDEX idx_conv_created_at ON conversations(created_at);
CREATE INDEX idx_conv_updated_at ON conversations(updated_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL
);
CREATE INDEX idx_msg_conversation ON messages(conversation_id);
CREATE INDEX idx_msg_role ON messages(role);
CREATE INDEX idx_msg_created_at ON messages(created_at);

CREATE TABLE message_cited_documents (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    document_id    TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_id       TEXT REFERENCES document_chunks(id) ON DELETE SET NULL,
    citation_index INTEGER,
    score          REAL
);
CREATE INDEX idx_cited_message ON message_cited_documents(message_id);
CREATE INDEX idx_cited_document ON message_cited_documents(document_id);

CREATE TABLE agent_usage (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id          TEXT NOT NULL REFERENCES ai_agents(id) ON DELETE CASCADE,
    conversation_id   TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    model_provider    TEXT,
    model_name        TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    tokens_used       INTEGER NOT NULL DEFAULT 0,
    cost              TEXT NOT NULL DEFAULT '0',   -- decimal, as text to keep it exact
    response_time     REAL NOT NULL DEFAULT 0,     -- seconds
    request_data      TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL
);
CREATE INDEX idx_agent_usage_user_created ON agent_usage(user_id, created_at);
CREATE INDEX idx_agent_usage_agent_created ON agent_usage(agent_id, created_at);
CREATE INDEX idx_agent_usage_created ON agent_usage(created_at);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT,
    data       TEXT NOT NULL DEFAULT '{}',
    read_at    TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_notifications_user_created ON notifications(user_id, created_at);

-- The ingestion queue. A job is claimed by setting a lease; a lease that runs out (a crashed
-- worker) makes the job claimable again.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    document_id  TEXT REFERENCES documents(id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    TEXT NOT NULL,
    locked_by    TEXT,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX idx_jobs_claim ON jobs(status, run_after);

-- ---------------------------------------------------------------- statistics (seed 001's triggers)
-- A knowledge base counts its live (not soft-deleted) documents and their chunks.

CREATE TRIGGER trg_doc_kb_stats_insert AFTER INSERT ON documents
WHEN new.soft_deleted_at IS NULL
BEGIN
    UPDATE knowledge_bases
       SET document_count = document_count + 1,
           total_size_bytes = total_size_bytes + new.file_size,
           last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = new.knowledge_base_id;
END;

CREATE TRIGGER trg_doc_kb_stats_delete AFTER DELETE ON documents
WHEN old.soft_deleted_at IS NULL
BEGIN
    UPDATE knowledge_bases
       SET document_count = document_count - 1,
           total_size_bytes = total_size_bytes - old.file_size,
           chunk_count = chunk_count - old.chunk_count,
           last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = old.knowledge_base_id;
END;

CREATE TRIGGER trg_doc_kb_stats_soft_delete AFTER UPDATE OF soft_deleted_at ON documents
WHEN old.soft_deleted_at IS NULL AND new.soft_deleted_at IS NOT NULL
BEGIN
    UPDATE knowledge_bases
       SET document_count = document_count - 1,
           total_size_bytes = total_size_bytes - new.file_size,
           chunk_count = chunk_count - new.chunk_count,
           last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = new.knowledge_base_id;
END;

CREATE TRIGGER trg_doc_kb_stats_restore AFTER UPDATE OF soft_deleted_at ON documents
WHEN old.soft_deleted_at IS NOT NULL AND new.soft_deleted_at IS NULL
BEGIN
    UPDATE knowledge_bases
       SET document_count = document_count + 1,
           total_size_bytes = total_size_bytes + new.file_size,
           chunk_count = chunk_count + new.chunk_count,
           last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = new.knowledge_base_id;
END;

CREATE TRIGGER trg_doc_kb_stats_completed AFTER UPDATE OF status ON documents
WHEN new.status = 'completed' AND old.status <> 'completed'
BEGIN
    UPDATE knowledge_bases SET last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE id = new.knowledge_base_id;
END;

-- A user's storage counts every stored document until it is hard-deleted.
CREATE TRIGGER trg_user_storage_insert AFTER INSERT ON documents
BEGIN
    UPDATE users SET storage_used = storage_used + new.file_size WHERE id = new.user_id;
END;

CREATE TRIGGER trg_user_storage_delete AFTER DELETE ON documents
BEGIN
    UPDATE users SET storage_used = storage_used - old.file_size WHERE id = old.user_id;
END;

CREATE TRIGGER trg_doc_chunk_count_insert AFTER INSERT ON document_chunks
BEGIN
    UPDATE documents SET chunk_count = chunk_count + 1 WHERE id = new.document_id;
    UPDATE knowledge_bases SET chunk_count = chunk_count + 1
     WHERE id = new.knowledge_base_id
       AND EXISTS (SELECT 1 FROM documents d WHERE d.id = new.document_id AND d.soft_deleted_at IS NULL);
END;

CREATE TRIGGER trg_doc_chunk_count_delete AFTER DELETE ON document_chunks
BEGIN
    UPDATE documents SET chunk_count = chunk_count - 1 WHERE id = old.document_id;
    UPDATE knowledge_bases SET chunk_count = chunk_count - 1
     WHERE id = old.knowledge_base_id
       AND EXISTS (SELECT 1 FROM documents d WHERE d.id = old.document_id AND d.soft_deleted_at IS NULL);
    DELETE FROM chunk_fts WHERE rowid = old.seq;
END;

CREATE TRIGGER trg_user_api_calls AFTER INSERT ON api_usage_logs
BEGIN
    UPDATE users SET api_calls_count = api_calls_count + 1 WHERE id = new.user_id;
END;

-- ---------------------------------------------------------------- file type registry defaults
INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active, created_at, updated_at) VALUES
 ('text', 'text', '["text/plain"]', '["txt","text","log"]', '["text"]', '[]', 1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), strftime('%Y-%m-%dT%H:%M:%fZ','now')),
 ('markdown', 'text', '["text/markdown","text/x-markdown"]', '["md","markdown","mdown","mkd"]', '["markdown"]', '[]', 1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), strftime('%Y-%m-%dT%H:%M:%fZ','now')),
 ('html', 'web', '["text/html","application/xhtml+xml"]', '["html","htm","xhtml"]', '["html"]', '[]', 1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), strftime('%Y-%m-%dT%H:%M:%fZ','now'));
