//! The audit log: appended by the service, read by owners and administrators, purged by age.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry; there is no way to change one.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// Entries matching `query`, newest first, at most `query.limit`.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Deletes the entries older than `before` (the retention); how many went.
    async fn purge_audit(&self, before: Timestamp) -> Result<u64>;
}
