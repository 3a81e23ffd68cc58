-- Full-text scores come from the searched knowledge base's own statistics, not FTS5's bm25(),
-- which counts every tenant's chunks in the shared index. Each indexed chunk keeps its length
-- (its distinct terms, as BM25 normalises by), and each knowledge base how many chunks it has in
-- the index and their total length, kept by the triggers below like its other counters.
ALTER TABLE document_chunks ADD COLUMN fts_length INTEGER;   -- NULL for chunks not indexed (parents)
ALTER TABLE knowledge_bases ADD COLUMN fts_chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_bases ADD COLUMN fts_length_sum INTEGER NOT NULL DEFAULT 0;
-- A search reads the lengths of the chunks it scores from here, not from their (large) rows.
CREATE INDEX idx_chunks_fts_length ON document_chunks(seq, fts_length) WHERE fts_length IS NOT NULL;

CREATE TRIGGER trg_chunk_fts_length_insert AFTER INSERT ON document_chunks WHEN new.fts_length IS NOT NULL
BEGIN
    UPDATE knowledge_bases SET fts_chunks = fts_chunks + 1, fts_length_sum = fts_length_sum + new.fts_length
     WHERE id = new.knowledge_base_id;
END;

CREATE TRIGGER trg_chunk_fts_length_delete AFTER DELETE ON document_chunks WHEN old.fts_length IS NOT NULL
BEGIN
    UPDATE knowledge_bases SET fts_chunks = fts_chunks - 1, fts_length_sum = fts_length_sum - old.fts_length
     WHERE id = old.knowledge_base_id;
END;

CREATE TRIGGER trg_chunk_fts_length_update AFTER UPDATE OF fts_length ON document_chunks
BEGIN
    UPDATE knowledge_bases
       SET fts_chunks = fts_chunks + (new.fts_length IS NOT NULL) - (old.fts_length IS NOT NULL),
           fts_length_sum = fts_length_sum + COALESCE(new.fts_length, 0) - COALESCE(old.fts_length, 0)
     WHERE id = new.knowledge_base_id;
END;

-- Chunks indexed before: SQL cannot split their text into terms, so the store counts them when it
-- next opens, taking each from this list.
CREATE TABLE fts_length_backfill (seq INTEGER PRIMARY KEY);
INSERT INTO fts_length_backfill (seq) SELECT rowid FROM chunk_fts;
