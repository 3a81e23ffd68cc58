-- Chunks curated by hand: a disabled chunk is kept but found by nothing (it leaves the full-text
-- table and the vector index), and a chunk edited, disabled or added by hand says when.
ALTER TABLE document_chunks ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE document_chunks ADD COLUMN edited_at TEXT;

-- The vector index reads each logged chunk's state again, enabled included.
CREATE TRIGGER trg_vec_chunk_enabled AFTER UPDATE OF enabled ON document_chunks
WHEN NEW.content_embedding IS NOT NULL AND OLD.enabled != NEW.enabled
BEGIN
    INSERT INTO vector_changes (chunk_seq, knowledge_base_id) VALUES (NEW.seq, NEW.knowledge_base_id);
END;
