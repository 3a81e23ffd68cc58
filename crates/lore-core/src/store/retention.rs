//! Retention: expiry, purges of soft-deleted documents, conversations, usage logs and sessions.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Soft-deletes documents whose `expires_at` has passed.
    async fn expire_documents(&self, now: Timestamp) -> Result<u64>;

    /// Hard-deletes documents soft-deleted before `before`, with their chunks. Returns the blob
    /// keys they used (the caller deletes those no other document shares).
    async fn purge_deleted_documents(&self, before: Timestamp) -> Result<Vec<String>>;

    /// Deletes conversations older than their owner's `conversation_retention_days`.
    async fn purge_conversations(&self, now: Timestamp) -> Result<u64>;

    /// Deletes usage logs of successful requests before `success_before`, of errors before `error_before`.
    async fn purge_usage_logs(&self, success_before: Timestamp, error_before: Timestamp) -> Result<u64>;
}
