//! Full-text and vector search, and the embedding cache.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait SearchStore: Send + Sync {
    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>>;

    /// Nearest chunks by cosine similarity in one embedding space, best first. Filters are applied
    /// inside the search, so a selective filter still yields `top_k` matches when that many exist.
    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>>;

    /// Embeddings already computed in `embedding_model` for this user's chunks with these content
    /// hashes (the embedding cache: re-uploads and re-chunking do not pay twice). Only the user's
    /// own chunks answer: no tenant can learn what another embedded, nor poison their vectors.
    async fn cached_embeddings(
        &self, user_id: Id, embedding_model: &str, content_hashes: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<f32>>>;
}
