//! The storage trait. Every method that touches a tenant's data takes the owner's id (the
//! workspace's: a person's own account or a team's) and filters by it: another workspace's object
//! is simply not found.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

mod accounts;
mod agents;
mod audit;
mod chunks;
mod cluster;
mod documents;
mod evaluations;
mod keys;
mod knowledge_bases;
mod queue;
mod retention;
mod search;
mod sources;
mod workspaces;

pub use {
    accounts::AccountStore, agents::AgentStore, audit::AuditStore, chunks::ChunkStore, cluster::ClusterStore,
    documents::DocumentStore, evaluations::EvaluationStore, keys::KeyStore, knowledge_bases::KnowledgeBaseStore,
    queue::QueueStore, retention::RetentionStore, search::SearchStore, sources::SourceStore,
    workspaces::WorkspaceStore,
};

/// A session joined with its user, as authentication needs it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: Id,
    pub user: User,
    pub expires_at: Timestamp,
}

/// An API key joined with its owner, as authentication needs it.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key: ApiKey,
    pub user: User,
}

/// Outcome of registering an upload.
#[derive(Debug, Clone)]
pub enum Upload {
    /// A new document, queued for processing.
    Created(Document),
    /// The same content already lives in this knowledge base.
    Duplicate(Document),
}

/// Everything Lore keeps: the sum of one trait per aggregate, so that a module names (by
/// importing it) the part of the store it uses.
#[async_trait]
pub trait Store:
    AccountStore
    + KeyStore
    + KnowledgeBaseStore
    + DocumentStore
    + ChunkStore
    + QueueStore
    + RetentionStore
    + SearchStore
    + ClusterStore
    + AgentStore
    + SourceStore
    + AuditStore
    + EvaluationStore
    + WorkspaceStore
    + Send
    + Sync
    + 'static
{
    /// Whether several Lore nodes may share this store. A store used by one node alone lets
    /// that node keep request counters in memory.
    fn shared_by_nodes(&self) -> bool {
        false
    }

    /// Flushes what the store keeps in memory and closes its connections (at shutdown).
    async fn close(&self) {}

    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;
}
