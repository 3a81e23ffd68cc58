//! Domain entities as every layer sees them. They serialise to the JSON of the HTTP contract;
//! secrets (password and key hashes) are not part of them at all.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::chunking::ChunkingConfig;

pub type Id = Uuid;
pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub settings: Value,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    pub storage_used: i64,
    pub api_calls_count: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Who may create an account. On an installation without accounts the first registration is
/// always allowed, whatever the policy, and makes that account the administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone.
    Open,
    /// Whoever holds an unused, unexpired invitation from an administrator.
    Invite,
    /// Nobody.
    Closed,
}

impl RegistrationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationPolicy::Open => "open",
            RegistrationPolicy::Invite => "invite",
            RegistrationPolicy::Closed => "closed",
        }
    }

    /// The refusal of a registration that this policy does not admit (no invitation presented).
    pub fn refusal(self) -> crate::error::Error {
        use crate::error::{Code, Error};
        match self {
            RegistrationPolicy::Invite => Error::new(
                Code::RegistrationClosed,
                "registration on this server needs an invitation: ask an administrator for one",
            ),
            _ => Error::new(Code::RegistrationClosed, "registration is closed on this server"),
        }
    }
}

impl Invitation {
    /// The one refusal for an unknown, used, expired or other address's invitation: it tells
    /// nothing about which.
    pub fn invalid() -> crate::error::Error {
        crate::error::Error::new(
            crate::error::Code::InvitationInvalid,
            "this invitation is not valid: it may be unknown, used, expired or meant for another address",
        )
    }
}

/// An invitation to register, made by an administrator. Its token is shown once, at creation,
/// and stored only as a SHA-256 hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Id,
    /// When set, only this address may register with the invitation.
    pub email: Option<String>,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was used, and by whom: an invitation admits one account.
    pub used_at: Option<Timestamp>,
    pub used_by: Option<Id>,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub token_hash: String,
    pub email: Option<String>,
    pub created_by: Option<Id>,
    pub expires_at: Timestamp,
}

/// What the store needs to decide whether an account may be created.
#[derive(Debug, Clone)]
pub struct Admission {
    pub policy: RegistrationPolicy,
    /// The SHA-256 hash of the invitation token the registrant presented, if any.
    pub invitation_hash: Option<String>,
    pub now: Timestamp,
}

/// What an API key may do. Sessions may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Search,
    Upload,
    Read,
    Delete,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Search, Scope::Upload, Scope::Read, Scope::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Search => "search",
            Scope::Upload => "upload",
            Scope::Read => "read",
            Scope::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Id,
    pub user_id: Id,
    pub knowledge_base_id: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub key_prefix: String,
    pub key_suffix: String,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<i64>,
    pub daily_quota: Option<i64>,
    pub monthly_quota: Option<i64>,
    pub usage_count_today: i64,
    pub usage_count_month: i64,
    pub is_active: bool,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub security: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub user_id: Id,
    pub knowledge_base_id: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub key_hash: String,
    pub key_prefix: String,
    pub key_suffix: String,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<i64>,
    pub daily_quota: Option<i64>,
    pub monthly_quota: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub security: Value,
}

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
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_threshold: Option<f64>,
    /// Hybrid fusion: `rrf` (reciprocal rank fusion, the default) or `weighted` (normalised scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBase {
    pub id: Id,
    pub user_id: Id,
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
    /// What to embed instead of the content (with the title) and its lead: a Q&A pair is found
    /// by its question.
    pub embed_text: Option<String>,
}

/// A node serving the installation, as `GET /v1/admin/nodes` shows it: alive while its
/// heartbeat is under a minute old.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Node {
    /// `node-` and eight hex digits, new at each start; workers and leases carry it.
    pub id: String,
    /// Lore's version on the node.
    pub version: String,
    /// Where the node listens (its configured address; behind a proxy, the proxy's own).
    pub address: String,
    /// The newest schema migration the node knows.
    pub schema_version: i64,
    /// Its ingestion workers (0: it serves the API but takes no jobs).
    pub workers: i64,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// The jobs the node holds a live lease on.
    pub jobs: Vec<HeldJob>,
    /// The data sources whose sync the node runs.
    pub syncs: Vec<Id>,
}

/// A job a node holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeldJob {
    pub id: Id,
    /// `process_document` or `reembed`.
    pub kind: String,
    pub document_id: Option<Id>,
    pub knowledge_base_id: Option<Id>,
    /// The worker holding it: `<node>/worker-<i>`.
    pub worker: String,
    pub lease_until: Timestamp,
}

/// What a node says of itself at each heartbeat.
#[derive(Debug, Clone)]
pub struct NodeBeat {
    pub id: String,
    pub version: String,
    pub address: String,
    pub schema_version: i64,
    pub workers: i64,
    pub started_at: Timestamp,
}

/// A claimed unit of background work.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Id,
    pub kind: String,
    pub document_id: Option<Id>,
    pub knowledge_base_id: Option<Id>,
    pub attempts: i64,
}

/// A chunk waiting to be embedded in a knowledge base's new embedding space.
#[derive(Debug, Clone)]
pub struct ChunkToEmbed {
    pub seq: i64,
    pub content: String,
    pub content_hash: String,
    /// Its document's title, embedded with it.
    pub title: Option<String>,
}

/// New embeddings of one chunk, kept aside until the whole knowledge base has them.
#[derive(Debug, Clone)]
pub struct Reembedded {
    pub seq: i64,
    pub embedding: Vec<f32>,
    pub summary_embedding: Option<Vec<f32>>,
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

/// The user's defaults (seed 000's KnowledgeBaseConfig), the layer between a knowledge base's
/// settings and the system defaults. Provider secrets are not part of this view.
#[derive(Debug, Clone, Default)]
pub struct UserDefaults {
    pub default_chunk_size: Option<i64>,
    pub default_chunk_overlap: Option<i64>,
    pub default_similarity_threshold: Option<f64>,
    pub max_search_results: Option<i64>,
}

/// The counters of an API key after counting one more request (or, when `allowed` is false,
/// as they stood when the request was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub allowed: bool,
    pub rate_limit: Option<i64>,
    pub rate_count: i64,
    pub daily_quota: Option<i64>,
    pub usage_today: i64,
    pub monthly_quota: Option<i64>,
    pub usage_month: i64,
}

/// One request made with an API key, as `api_usage_logs` records it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageLog {
    pub id: Id,
    pub api_key_id: Option<Id>,
    pub user_id: Id,
    /// The route template (`/v1/knowledge-bases/{id}/search`), never the concrete path.
    pub endpoint: String,
    pub method: String,
    pub request_body: Option<Value>,
    pub status_code: i64,
    pub response_time_ms: i64,
    pub error_message: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub api_key_id: Option<Id>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Only successes (status < 400) or only errors.
    pub errors: Option<bool>,
    pub endpoint: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DailyUsage {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub requests: i64,
    pub errors: i64,
    pub avg_response_ms: f64,
}

/// The user's KnowledgeBaseConfig as stored. Secret fields hold ciphertext: the store never sees
/// a provider key in clear.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserConfig {
    pub default_embedding_model: Option<String>,
    pub default_chunk_size: Option<i64>,
    pub default_chunk_overlap: Option<i64>,
    pub document_retention_days: Option<i64>,
    pub conversation_retention_days: Option<i64>,
    pub default_similarity_threshold: Option<f64>,
    pub max_search_results: Option<i64>,
    pub sync_notifications: bool,
    pub error_notifications: bool,
    pub openai_api_key: Option<String>,
    pub anthropic_api_key: Option<String>,
    pub cohere_api_key: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub cohere_base_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub updated_at: Option<Timestamp>,
}

impl UserConfig {
    /// A new user's configuration: every default unset, notifications on.
    pub fn initial() -> Self {
        UserConfig { sync_notifications: true, error_notifications: true, ..Default::default() }
    }

    pub fn defaults(&self) -> UserDefaults {
        UserDefaults {
            default_chunk_size: self.default_chunk_size,
            default_chunk_overlap: self.default_chunk_overlap,
            default_similarity_threshold: self.default_similarity_threshold,
            max_search_results: self.max_search_results,
        }
    }
}

/// What one maintenance pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurgeReport {
    pub documents_expired: u64,
    pub documents_purged: u64,
    pub blobs_deleted: u64,
    pub conversations_purged: u64,
    pub usage_logs_purged: u64,
    pub sessions_purged: u64,
}

/// An API key's counters as one node keeps them in memory, to be saved to the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCounters {
    pub key_id: Id,
    pub rate_window: String,
    pub rate_count: i64,
    pub usage_day: String,
    pub usage_today: i64,
    pub usage_month: String,
    pub usage_month_count: i64,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub dirty: bool,
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
