//! Data sources (seed 000's `DataSource`): where a knowledge base's documents come from, kept in
//! sync, and a record of each sync run.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Id, Timestamp};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DataSource {
    pub id: Id,
    /// The workspace it belongs to.
    pub user_id: Id,
    /// The member who made it (`None` for data sources made before workspaces).
    pub created_by: Option<Id>,
    pub knowledge_base_id: Id,
    pub name: String,
    /// `local_folder` (others are refused until they exist).
    pub source_type: String,
    /// `active`, `syncing`, `paused` or `error`.
    pub status: String,
    /// For `local_folder`: `path`, and optional `include` / `exclude` glob lists.
    pub config: Value,
    /// Whether credentials are stored (sealed; they are never returned).
    pub has_credentials: bool,
    pub auto_sync: bool,
    /// Minutes between automatic syncs.
    pub sync_frequency: Option<i64>,
    pub last_sync: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One sync of a data source: what it changed, and what failed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub id: Id,
    pub data_source_id: Id,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub added: i64,
    pub updated: i64,
    pub removed: i64,
    pub failed: i64,
    /// `[{"item": "...", "error": "..."}]`.
    pub errors: Value,
}

/// A live document that came from a source item.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceItem {
    pub document_id: Id,
    /// The item's key in the source (a relative path).
    pub key: String,
    /// What changes when the item does (mtime and size, an ETag ...).
    pub version: String,
    pub file_hash: String,
}

/// Something a user is told about (in the app, and by webhook when configured): a sync that
/// changed or failed, a document that could not be processed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Id,
    pub user_id: Id,
    /// `sync_completed`, `sync_failed`, `document_failed`.
    pub kind: String,
    pub title: String,
    pub body: Option<String>,
    /// The event's details, and `delivery`: the webhook attempts.
    pub data: Value,
    pub read_at: Option<Timestamp>,
    pub created_at: Timestamp,
}
