//! API keys and their scopes, request counters, and the usage log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

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
    /// The workspace the key acts in (a person's own account, or a team's).
    pub user_id: Id,
    /// Who made it: in a team workspace the key acts with at most their current role there, and
    /// stops working when they leave. `None` for keys made before workspaces.
    pub created_by: Option<Id>,
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
    pub created_by: Option<Id>,
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
