//! The nodes serving an installation: each beats every `HEARTBEAT` into the database, and
//! `GET /v1/admin/nodes` lists those heard from within `ALIVE` with the jobs and syncs they hold.
//! A node that dies drops out of the list after `ALIVE`; its leases run out and other nodes take
//! the work, as they always did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lore_core::error::Result;
use lore_core::model::{Node, NodeBeat};
use lore_core::store::Store;
use tokio::sync::watch;

pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A node silent this long is no longer listed (six missed beats).
pub const ALIVE: Duration = Duration::from_secs(60);

/// `node-` and eight hex digits, new at each start.
pub fn new_id() -> String {
    let id = lore_core::new_id().simple().to_string();
    format!("node-{}", &id[id.len() - 8..])
}

/// What this node says of itself. `shared`: the store is PostgreSQL (its schema versions differ
/// from SQLite's).
pub fn beat(node: &str, address: SocketAddr, shared: bool, workers: usize) -> NodeBeat {
    let (sqlite, postgres) = lore_store::schema::versions();
    NodeBeat {
        id: node.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        address: address.to_string(),
        schema_version: if shared { postgres } else { sqlite },
        workers: workers as i64,
        started_at: lore_core::now(),
    }
}

/// Beats until shutdown, then leaves the list.
pub fn spawn_heartbeat(
    store: Arc<dyn Store>, beat: NodeBeat, mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = store.heartbeat(&beat).await {
                tracing::warn!(error = %e, "could not record this node's heartbeat");
            }
        }
        if let Err(e) = store.leave(&beat.id).await {
            tracing::debug!(error = %e, "could not remove this node from the list");
        }
    })
}

/// The nodes alive now.
pub async fn alive(store: &dyn Store) -> Result<Vec<Node>> {
    let since = lore_core::now() - chrono::Duration::from_std(ALIVE).unwrap_or(chrono::Duration::seconds(60));
    store.list_nodes(since).await
}
