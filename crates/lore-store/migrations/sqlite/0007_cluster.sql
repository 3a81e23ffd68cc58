-- The installation's own facts (the master key's check value, never the key) and the node
-- serving it: the same tables as on PostgreSQL, where several nodes share one database.
CREATE TABLE cluster_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,
    version        TEXT NOT NULL,
    address        TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    workers        INTEGER NOT NULL,  -- ingestion workers; 0: it takes no jobs
    started_at     TEXT NOT NULL,
    heartbeat_at   TEXT NOT NULL
);
