//! What the nodes sharing one store agree on: settings and heartbeats.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// A setting of the installation as a whole (e.g. `master_key_check`).
    async fn cluster_setting(&self, name: &str) -> Result<Option<String>>;

    /// Sets `name` to `value` if it is still `expected` (`None`: not set); `false` if another
    /// node changed it first.
    async fn swap_cluster_setting(&self, name: &str, expected: Option<&str>, value: &str) -> Result<bool>;

    /// Records that `node` is alive now (the first beat adds it).
    async fn heartbeat(&self, node: &NodeBeat) -> Result<()>;

    /// A node that stops cleanly leaves the list at once.
    async fn leave(&self, node_id: &str) -> Result<()>;

    /// The nodes whose last heartbeat is at or after `alive_since`, oldest first, with the jobs
    /// and syncs each holds a live lease on. Nodes silent for a day are forgotten.
    async fn list_nodes(&self, alive_since: Timestamp) -> Result<Vec<Node>>;
}
