//! Documents, their processing log, and their chunks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::chunking::ChunkingConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl DocStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocStatus::Pending => "pending",
            DocStatus::Processing => "processing",
            DocStatus::Completed => "completed",
            DocStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DocStatus> {
        match s {
            "pending" => Some(DocStatus::Pending),
            "processing" => Some(DocStatus::Processing),
            "completed" => Some(DocStatus::Completed),
            "failed" => Some(DocStatus::Failed),
            _ => None,
        }
    }
}

/// One line of a document's `processing_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogEntry {
    pub at: Timestamp,
    pub stage: String,
    pub message: String,
}

impl LogEntry {
    pub fn new(stage: &str, message: impl Into<String>) -> Self {
        LogEntry { at: crate::now(), stage: stage.to_string(), message: message.into() }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: Id,
    pub knowledge_base_id: Id,
    pub user_id: Id,
    pub uploaded_by: Option<Id>,
    pub data_source_id: Option<Id>,
    pub file_type_id: Option<i64>,
    pub title: Option<String>,
    pub filename: String,
    pub file_type: String,
    pub file_size: i64,
    pub mime_type: String,
    pub file_hash: String,
    #[serde(skip)]
    pub file_path: String,
    pub status: DocStatus,
    pub progress: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub processing_log: Vec<LogEntry>,
    pub metadata: Value,
    pub source_metadata: Value,
    pub chunking_config: Option<ChunkingConfig>,
    pub chunk_count: i64,
    pub processed_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub soft_deleted_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewDocument {
    pub knowledge_base_id: Id,
    pub user_id: Id,
    pub uploaded_by: Option<Id>,
    pub filename: String,
    pub file_type: String,
    pub file_type_id: Option<i64>,
    pub file_size: i64,
    pub mime_type: String,
    pub file_hash: String,
    pub file_path: String,
    pub metadata: Value,
    pub chunking_config: Option<ChunkingConfig>,
    pub expires_at: Option<Timestamp>,
    /// The data source the document was pulled from, if any.
    pub data_source_id: Option<Id>,
}

/// The extracted text of a document, returned on request only (it can be large).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentContent {
    pub raw_content: Option<String>,
    pub processed_content: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DocumentListQuery {
    pub status: Option<DocStatus>,
    pub include_deleted: bool,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Chunk {
    pub id: Id,
    pub document_id: Id,
    pub knowledge_base_id: Id,
    pub content: String,
    pub content_hash: String,
    pub chunk_index: i64,
    pub metadata: Value,
    pub parent_chunk_id: Option<Id>,
    pub embedding_model: Option<String>,
    /// Whether search returns the chunk (a chunk disabled by hand is kept, and found by nothing).
    pub enabled: bool,
    /// When the chunk was last curated by hand (edited, disabled, or added); `None` for a chunk
    /// exactly as processing made it.
    pub edited_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A hand-made change to a chunk (`PATCH /v1/chunks/{id}`). `fts_terms` are the chunk's terms
/// after the change, indexed while it is enabled and searchable.
#[derive(Debug, Clone)]
pub struct ChunkEdit {
    pub text: Option<ChunkText>,
    pub metadata: Option<Value>,
    pub enabled: Option<bool>,
    pub fts_terms: String,
    pub at: Timestamp,
}

/// New text for a chunk, with what indexes it: its hash, and its embeddings in `embedding_model`
/// (none when the knowledge base has no embedding model).
#[derive(Debug, Clone)]
pub struct ChunkText {
    pub content: String,
    pub content_hash: String,
    pub embedding: Option<Vec<f32>>,
    pub summary_embedding: Option<Vec<f32>>,
    pub embedding_model: Option<String>,
}

/// A chunk ready to be stored: its text, and the terms the full-text index holds for it.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub content: String,
    pub content_hash: String,
    pub chunk_index: i64,
    pub metadata: Value,
    /// Space-separated, lowercased terms as Lore's segmenter produced them.
    pub fts_terms: String,
    /// For a child chunk: the position of its parent in the same list.
    pub parent_index: Option<usize>,
    /// Whether search matches this chunk (a hierarchical parent is context, not a match).
    pub searchable: bool,
    /// The chunk's embedding in the knowledge base's embedding space, and of its summary.
    pub embedding: Option<Vec<f32>>,
    pub summary_embedding: Option<Vec<f32>>,
    /// What to embed instead of the content (with the title) and its summary: a Q&A pair is
    /// found by its question.
    pub embed_text: Option<String>,
}

/// Everything a worker produced for one document, stored in one transaction.
#[derive(Debug, Clone)]
pub struct ProcessedDocument {
    pub title: Option<String>,
    pub raw_content: String,
    pub processed_content: String,
    pub source_metadata: Value,
    pub chunks: Vec<NewChunk>,
    /// The embedding space of the chunks' embeddings (`provider/model`), when they have any.
    pub embedding_model: Option<String>,
    pub log: Vec<LogEntry>,
}
