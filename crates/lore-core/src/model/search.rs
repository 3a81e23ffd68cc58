//! Search queries as the store runs them, and their hits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::*;

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_ids: Option<Vec<Id>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_types: Option<Vec<String>>,
    /// Documents pulled from these data sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_ids: Option<Vec<Id>>,
    /// Equality on top-level keys of a document's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone)]
pub struct FulltextQuery {
    pub user_id: Id,
    pub knowledge_base_id: Id,
    /// Segmented query terms; a chunk matches when it holds any of them, ranked by BM25.
    pub terms: Vec<String>,
    pub top_k: u32,
    pub filters: SearchFilters,
}

/// Which embedding a vector query compares against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchTarget {
    #[default]
    Content,
    Summary,
    Both,
}

#[derive(Debug, Clone)]
pub struct VectorQuery {
    pub user_id: Id,
    /// Knowledge bases searched together; all of them embed in `embedding_model`.
    pub knowledge_base_ids: Vec<Id>,
    pub embedding_model: String,
    /// L2-normalised; scores are cosine similarities.
    pub vector: Vec<f32>,
    pub top_k: u32,
    pub filters: SearchFilters,
    pub target: SearchTarget,
    /// Results below this cosine similarity are dropped.
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChunkHit {
    pub chunk_id: Id,
    pub document_id: Id,
    pub knowledge_base_id: Id,
    pub filename: String,
    pub title: Option<String>,
    pub content: String,
    pub score: f64,
    pub chunk_index: i64,
    pub metadata: Value,
    /// The enclosing parent chunk, for hierarchical chunking: the context around the match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentChunk>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ParentChunk {
    pub chunk_id: Id,
    pub content: String,
}
