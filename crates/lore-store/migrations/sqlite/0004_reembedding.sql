-- Changing a knowledge base's embedding model re-embeds it in the background. Until every chunk
-- has its new embedding, search keeps using the space the chunks are in: `embedding_space`.
ALTER TABLE knowledge_bases ADD COLUMN embedding_space TEXT;
UPDATE knowledge_bases SET embedding_space = (
    SELECT embedding_model FROM document_chunks c
    WHERE c.knowledge_base_id = knowledge_bases.id AND c.embedding_model IS NOT NULL LIMIT 1);

-- Jobs about a whole knowledge base (re-embedding) rather than one document.
ALTER TABLE jobs ADD COLUMN knowledge_base_id TEXT REFERENCES knowledge_bases(id) ON DELETE CASCADE;

-- New embeddings wait here until the whole knowledge base has them, then replace the old ones in
-- one transaction. A crash mid-way resumes from what is here.
CREATE TABLE chunk_reembeddings (
    chunk_seq         INTEGER PRIMARY KEY REFERENCES document_chunks(seq) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    embedding_model   TEXT NOT NULL,
    content_embedding BLOB NOT NULL,
    summary_embedding BLOB
);
CREATE INDEX idx_reembed_kb ON chunk_reembeddings(knowledge_base_id, embedding_model);
