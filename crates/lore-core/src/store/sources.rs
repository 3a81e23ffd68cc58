//! Data sources, their syncs, and notifications.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;
use crate::source::{DataSource, Notification, SourceItem, SyncRun};

/// Data sources and their sync runs. Part of every [`Store`].
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// Fails with `data_source_name_taken` when the owner has one of that name. `credentials`
    /// are already sealed.
    async fn insert_data_source(&self, source: &DataSource, credentials: Option<&str>) -> Result<()>;
    /// Replaces the editable fields; `credentials`: `None` keeps them, `Some(None)` clears them.
    async fn update_data_source(&self, source: &DataSource, credentials: Option<Option<&str>>) -> Result<bool>;
    async fn list_data_sources(&self, user_id: Id) -> Result<Vec<DataSource>>;
    async fn get_data_source(&self, user_id: Id, id: Id) -> Result<Option<DataSource>>;
    /// The sealed credentials, for the connector.
    async fn data_source_credentials(&self, user_id: Id, id: Id) -> Result<Option<String>>;
    async fn delete_data_source(&self, user_id: Id, id: Id) -> Result<bool>;
    /// The source's live documents with their item keys and versions.
    async fn source_items(&self, data_source_id: Id) -> Result<Vec<SourceItem>>;
    /// Records a new version of an item whose content did not change.
    async fn touch_source_item(&self, document_id: Id, version: &str) -> Result<()>;
    /// Starts a sync if no other holds the source's lease (another node, or a run still going):
    /// takes the lease until `lease_until`, marks the source `syncing`, records the run.
    async fn claim_sync(&self, run: &SyncRun, owner: &str, lease_until: Timestamp) -> Result<bool>;
    /// Records the run's outcome, sets the source's status, `last_sync` and `last_error`, and
    /// releases the lease.
    async fn finish_sync(&self, run: &SyncRun, last_error: Option<&str>) -> Result<()>;
    /// Most recent first.
    async fn list_syncs(&self, user_id: Id, data_source_id: Id, limit: i64) -> Result<Vec<SyncRun>>;
    /// Sources with `auto_sync` whose last sync is `sync_frequency` minutes old (or that never
    /// synced) and that no one holds: `(owner, source)`.
    async fn due_data_sources(&self, now: Timestamp) -> Result<Vec<(Id, Id)>>;

    async fn insert_notification(&self, notification: &Notification) -> Result<()>;
    /// Most recent first.
    async fn list_notifications(&self, user_id: Id, limit: i64) -> Result<Vec<Notification>>;
    /// Replaces a notification's `data` (the webhook delivery log grows in it).
    async fn set_notification_data(&self, id: Id, data: &serde_json::Value) -> Result<()>;
}
