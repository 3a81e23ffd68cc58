//! Documents and their chunks, as their owners see and curate them.

use async_trait::async_trait;

use super::Upload;
use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Registers an upload: the existing live document if the same content is already in the
    /// knowledge base, else a new `pending` document with its processing job queued.
    async fn create_document(&self, doc: NewDocument) -> Result<Upload>;

    async fn list_documents(
        &self,
        user_id: Id,
        knowledge_base_id: Id,
        query: &DocumentListQuery,
    ) -> Result<Vec<Document>>;

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>>;

    async fn list_chunks(&self, user_id: Id, document_id: Id) -> Result<Vec<Chunk>>;

    async fn get_chunk(&self, user_id: Id, chunk_id: Id) -> Result<Option<Chunk>>;

    /// Applies a hand-made edit: new text re-indexes the chunk (full text and vectors), a disabled
    /// chunk leaves both indexes and an enabled one returns. A chunk with children (a hierarchical
    /// parent) is never matched itself. `None` if the user has no such chunk.
    async fn update_chunk(&self, user_id: Id, chunk_id: Id, edit: ChunkEdit) -> Result<Option<Chunk>>;

    /// Adds a chunk by hand after the document's last, indexed like a processed one (the
    /// embedding, if any, in `embedding_model`); the statistics count it. `None` if the user
    /// has no such completed document.
    async fn add_chunk(
        &self,
        user_id: Id,
        document_id: Id,
        chunk: NewChunk,
        embedding_model: Option<String>,
        at: Timestamp,
    ) -> Result<Option<Chunk>>;

    /// Soft-deletes a live document. `None` if there is no such document (or it is deleted).
    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>>;

    /// Restores a soft-deleted document; `duplicate_document` if its content was uploaded again since.
    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;

    /// Whether any document still refers to a blob.
    async fn blob_in_use(&self, file_path: &str) -> Result<bool>;
}
