//! AI agents (seed 000's `AIAgent`), their conversations, messages with citations, and usage.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Id, Timestamp};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationMode {
    SingleTurn,
    #[default]
    MultiTurn,
}

impl ConversationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationMode::SingleTurn => "single_turn",
            ConversationMode::MultiTurn => "multi_turn",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: Id,
    /// The workspace it belongs to.
    pub user_id: Id,
    /// The member who made it (`None` for agents made before workspaces); set once.
    pub created_by: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub agent_type: String,
    /// `extractive` (no model), `openai`, `anthropic`, `cohere`, or an OpenAI-compatible name.
    pub model_provider: String,
    pub model_name: Option<String>,
    /// Sampling settings, `base_url`, `timeout_seconds`, `price`; an `api_key` given here is kept
    /// sealed under `api_key_sealed` and never returned.
    pub model_parameters: Value,
    pub conversation_mode: ConversationMode,
    /// Tokens the prompt and answer may take together.
    pub context_window: Option<i64>,
    /// Messages older than this are not used as memory.
    pub memory_retention_days: Option<i64>,
    pub system_prompt: Option<String>,
    /// With `{question}`, and optionally `{context}` and `{history}`.
    pub user_prompt_template: Option<String>,
    pub max_documents: i64,
    pub similarity_threshold: Option<f64>,
    pub rate_limit_per_hour: Option<i64>,
    pub rate_limit_per_day: Option<i64>,
    pub domain_keywords: Vec<String>,
    pub expertise_areas: Vec<String>,
    pub is_active: bool,
    /// What the agent may retrieve from; no knowledge bases means all of its owner's.
    pub knowledge_base_ids: Vec<Id>,
    pub data_source_ids: Vec<Id>,
    pub file_type_ids: Vec<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: Id,
    pub user_id: Id,
    pub agent_id: Id,
    pub title: Option<String>,
    pub context: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatMessage {
    pub id: Id,
    pub conversation_id: Id,
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub metadata: Value,
    pub citations: Vec<Citation>,
    pub created_at: Timestamp,
}

/// A numbered source of an answer, down to the chunk.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Citation {
    pub index: i64,
    pub document_id: Id,
    pub chunk_id: Option<Id>,
    pub score: Option<f64>,
    /// Filled in when read back (the document's file name, the chunk's opening).
    pub filename: Option<String>,
    pub snippet: Option<String>,
    /// Where the chunk stands in its file: `page`, `page_end`, `regions` (boxes on the page),
    /// `slide`, `sheet` or `chapter`, as far as the file says; filled in like the snippet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<serde_json::Value>,
}

/// The keys of a chunk's metadata that say where it stands in its file.
pub const LOCATION_KEYS: &[&str] = &["page", "page_end", "regions", "slide", "slide_end", "sheet", "chapter"];

/// A chunk's location (the [`LOCATION_KEYS`] of its metadata), `None` when it has none.
pub fn chunk_location(metadata: &serde_json::Value) -> Option<serde_json::Value> {
    let found: serde_json::Map<String, serde_json::Value> =
        LOCATION_KEYS.iter().filter_map(|k| metadata.get(*k).map(|v| (k.to_string(), v.clone()))).collect();
    (!found.is_empty()).then_some(serde_json::Value::Object(found))
}

/// One agent call: what it used and cost.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentUsage {
    pub id: Id,
    pub user_id: Id,
    pub agent_id: Id,
    pub conversation_id: Option<Id>,
    pub model_provider: Option<String>,
    pub model_name: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub tokens_used: i64,
    /// USD, an exact decimal as text.
    pub cost: String,
    /// Seconds.
    pub response_time: f64,
    /// Includes `status` (`started`, `ok`, `failed`) and, when failed, `error`.
    pub request_data: Value,
    pub created_at: Timestamp,
}
