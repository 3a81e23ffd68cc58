-- The embedded vector index is derived from document_chunks: every change that can alter what it
-- should hold (a chunk embedded, re-embedded or deleted; a document soft-deleted or restored)
-- appends the chunk's seq here. The index replays this log from the last sequence number it
-- saved, reading each chunk's current state, so replaying twice is harmless and kill -9 at any
-- moment loses nothing. Entries the saved index covers are pruned.
CREATE TABLE vector_changes (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_seq         INTEGER NOT NULL,
    knowledge_base_id TEXT NOT NULL
);

CREATE TRIGGER trg_vec_chunk_insert AFTER INSERT ON document_chunks
WHEN NEW.content_embedding IS NOT NULL
BEGIN
    INSERT INTO vector_changes (chunk_seq, knowledge_base_id) VALUES (NEW.seq, NEW.knowledge_base_id);
END;

CREATE TRIGGER trg_vec_chunk_update AFTER UPDATE OF content_embedding, summary_embedding, embedding_model
ON document_chunks
BEGIN
    INSERT INTO vector_changes (chunk_seq, knowledge_base_id) VALUES (NEW.seq, NEW.knowledge_base_id);
END;

CREATE TRIGGER trg_vec_chunk_delete AFTER DELETE ON document_chunks
WHEN OLD.content_embedding IS NOT NULL
BEGIN
    INSERT INTO vector_changes (chunk_seq, knowledge_base_id) VALUES (OLD.seq, OLD.knowledge_base_id);
END;

CREATE TRIGGER trg_vec_doc_visibility AFTER UPDATE OF soft_deleted_at ON documents
WHEN (OLD.soft_deleted_at IS NULL) != (NEW.soft_deleted_at IS NULL)
BEGIN
    INSERT INTO vector_changes (chunk_seq, knowledge_base_id)
    SELECT seq, knowledge_base_id FROM document_chunks
    WHERE document_id = NEW.id AND content_embedding IS NOT NULL;
END;

-- The embedding cache: an embedding is reused for identical text in the same model.
CREATE INDEX idx_chunks_hash_model ON document_chunks(content_hash, embedding_model);
