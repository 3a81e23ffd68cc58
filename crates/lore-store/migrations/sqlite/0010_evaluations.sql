-- Evaluations of a knowledge base's retrieval: golden questions run against search
-- configurations; the request as sent and the metrics per configuration. They go with their
-- knowledge base.
CREATE TABLE evaluations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    results TEXT NOT NULL DEFAULT '{}',
    error_message TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX evaluations_kb ON evaluations (knowledge_base_id, created_at);
