-- Chunks curated by hand: a disabled chunk is kept but found by nothing. It leaves the full-text
-- index (fts NULL) and the vector indexes (embedding_dims NULL, which every vector search and
-- every partial HNSW index requires), so no query changes; `enabled` says why, and re-enabling
-- restores both. A chunk edited, disabled or added by hand says when.
ALTER TABLE document_chunks ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE document_chunks ADD COLUMN edited_at TIMESTAMPTZ;
