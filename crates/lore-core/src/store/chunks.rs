//! A document's chunks, as their owners read and curate them.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait ChunkStore: Send + Sync {
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
        &self, user_id: Id, document_id: Id, chunk: NewChunk, embedding_model: Option<String>, at: Timestamp,
    ) -> Result<Option<Chunk>>;
}
