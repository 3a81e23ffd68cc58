-- Nodes sharing one database need nothing else in common (issue: many nodes with nothing but a
-- database URL).
--
-- Uploaded files live here by default: content-addressed, in parts of 1 MiB, so no node fails a
-- document because another node stored its file elsewhere, and one pg_dump holds everything. A
-- blob's row is written in the transaction that writes its parts: a reader sees all or nothing.
CREATE TABLE blobs (
    key        TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    parts      INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE blob_parts (
    key  TEXT NOT NULL REFERENCES blobs(key) ON DELETE CASCADE,
    seq  INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (key, seq)
);

-- Facts about the installation as a whole, e.g. the master key's check value (never the key).
CREATE TABLE cluster_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The nodes serving this database, each with its heartbeat.
CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,
    version        TEXT NOT NULL,
    address        TEXT NOT NULL,
    schema_version BIGINT NOT NULL,
    workers        BIGINT NOT NULL,   -- ingestion workers; 0: it takes no jobs
    started_at     TIMESTAMPTZ NOT NULL,
    heartbeat_at   TIMESTAMPTZ NOT NULL
);
