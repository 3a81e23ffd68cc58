//! The ingestion queue and the nodes that work it.

use serde::Serialize;

use super::*;

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
    /// Its metadata, which says what else it is found by (a Q&A pair's question, generated questions).
    pub metadata: serde_json::Value,
}

/// New embeddings of one chunk, kept aside until the whole knowledge base has them.
#[derive(Debug, Clone)]
pub struct Reembedded {
    pub seq: i64,
    pub embedding: Vec<f32>,
    pub summary_embedding: Option<Vec<f32>>,
}
