//! API keys, their request counters, and the usage log.

use async_trait::async_trait;

use super::ApiKeyRecord;
use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;

    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>>;

    /// Deactivates a key for good. `false` if the user has no such key.
    async fn revoke_api_key(&self, user_id: Id, key_id: Id, at: Timestamp) -> Result<bool>;

    /// Saves what an owner may change of a live key (name, description, scopes, limits, expiry,
    /// security); its id and `user_id` pick it. `false` if the user has no such key, or it is revoked.
    async fn update_api_key(&self, key: &ApiKey) -> Result<bool>;

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;

    /// Counts one request against the key's per-minute rate limit and daily/monthly quotas, in
    /// one atomic step: either every counter moves (and `last_used_at`/`last_used_ip` with them)
    /// or, when a limit is reached, none does.
    async fn count_api_key_request(&self, key_id: Id, now: Timestamp, ip: Option<&str>) -> Result<KeyUsage>;

    /// Saves counters a node kept in memory (see `count_api_key_request` for the shared way).
    async fn save_key_counters(&self, counters: &[KeyCounters]) -> Result<()>;

    async fn insert_usage_logs(&self, logs: &[UsageLog]) -> Result<()>;

    async fn list_usage_logs(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<UsageLog>>;

    async fn daily_usage(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<DailyUsage>>;
}
