//! Knowledge bases, their settings, and the file-type registry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::*;
use crate::chunking::ChunkingConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KbStatus {
    Active,
    Archived,
}

impl KbStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KbStatus::Active => "active",
            KbStatus::Archived => "archived",
        }
    }
}

/// A knowledge base's `settings` (seed 001): chunking, embedding and search defaults. Unknown
/// keys are kept as they are, so settings written by a newer Lore survive an older one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KbSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunking_config: Option<ChunkingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_config: Option<SearchConfig>,
    /// Questions written for each chunk by a chat model, searched as the chunk's second target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_generation: Option<QuestionGeneration>,
    /// Summaries written for each chunk by a chat model, embedded as its summary vector (an
    /// extractive summary otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_config: Option<SummaryConfig>,
    /// Text recognition for images and scanned PDF pages (`auto` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr: Option<OcrMode>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `settings.ocr`: whether files are read by text recognition (Tesseract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OcrMode {
    /// Images, and PDF pages with (almost) no text layer.
    #[default]
    Auto,
    /// Every PDF page, its text layer ignored (for scans whose text layer is wrong).
    Always,
    /// Never: an image fails with `no_text_content`, a scanned page stays empty.
    Never,
}

/// `settings.question_generation`: which of the owner's chat models writes the questions a chunk
/// answers, and how many. They are kept in the chunk's `metadata.questions`, indexed for full text
/// and embedded as its summary vector, so a question phrased the way users ask finds the chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionGeneration {
    /// A chat provider (`openai`, `anthropic`, `cohere`, `deepseek`, ...), called with the owner's key.
    pub provider: String,
    pub model: String,
    /// Questions per chunk, 1 to 10.
    #[serde(default = "QuestionGeneration::default_count")]
    pub questions_per_chunk: u32,
}

impl QuestionGeneration {
    pub const MAX_PER_CHUNK: u32 = 10;

    fn default_count() -> u32 {
        3
    }
}

/// `settings.summary_config`: which of the owner's chat models writes, for each chunk, a sentence
/// or two on what it is about within its document. Kept in the chunk's `metadata.summary` and
/// embedded as its summary vector (`search_target: summary` or `both` searches it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// A chat provider (`openai`, `anthropic`, `cohere`, `deepseek`, ...), called with the owner's key.
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_threshold: Option<f64>,
    /// Hybrid fusion: `weighted` (normalised scores, the default) or `rrf` (reciprocal rank fusion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<String>,
    /// The vector searches compare with: content, summary or both (the default is content, or both
    /// where questions or summaries are generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_target: Option<SearchTarget>,
    /// A rerank stage after fusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `search_config.rerank` (and a search's or an agent's own `rerank`): the fused list's head is
/// read again by a cross-encoder, which orders it by how well each passage answers the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerankConfig {
    /// `cohere` (the owner's Cohere key), `jina`, `voyage`, `tei` or `vllm`.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The provider's address (its own by default; required for `tei` and `vllm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// How many fused results are read again (default 30, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u32>,
    /// How many results are kept after reranking (default: the search's `top_k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u32>,
}

impl RerankConfig {
    pub const DEFAULT_CANDIDATES: u32 = 30;
    pub const MAX_CANDIDATES: u32 = 100;
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBase {
    pub id: Id,
    /// The workspace it belongs to (a person's own account, or a team's).
    pub user_id: Id,
    /// The same, under the name team clients use.
    pub workspace_id: Id,
    /// The member who made it (`None` for knowledge bases made before workspaces).
    pub created_by: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    pub status: KbStatus,
    pub settings: KbSettings,
    pub document_count: i64,
    pub total_size_bytes: i64,
    pub chunk_count: i64,
    /// The embedding space its chunks are in, which vector search uses; after a change of model it
    /// stays the old one until re-embedding completes.
    pub embedding_space: Option<String>,
    pub last_updated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewKnowledgeBase {
    pub user_id: Id,
    pub created_by: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    pub settings: KbSettings,
}

/// A partial update; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct KbPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub icon_url: Option<Option<String>>,
    pub status: Option<KbStatus>,
    pub settings: Option<KbSettings>,
}

/// An entry of the file-type registry (seed 000's FileType).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FileType {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub mime_types: Vec<String>,
    pub extensions: Vec<String>,
    /// Names of the parsers that read this type, the first one used.
    pub parsers: Vec<String>,
    /// Embedding models allowed for this type; empty means any.
    pub embedding_models: Vec<String>,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct NewFileType {
    pub name: String,
    pub category: String,
    pub mime_types: Vec<String>,
    pub extensions: Vec<String>,
    pub parsers: Vec<String>,
    pub embedding_models: Vec<String>,
    pub is_active: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FileTypePatch {
    pub category: Option<String>,
    pub mime_types: Option<Vec<String>>,
    pub extensions: Option<Vec<String>>,
    pub parsers: Option<Vec<String>>,
    pub embedding_models: Option<Vec<String>>,
    pub is_active: Option<bool>,
}
