//! The machine's conditions that readiness reports and uploads respect: the database answers,
//! the data directory is writable, the blob store answers, and the disk keeps the configured
//! free space.

use std::path::Path;
use std::time::Duration;

use lore_core::error::{Code, Error, Result};

use crate::state::AppState;

/// How long readiness waits for the database before calling it unavailable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Free bytes for unprivileged writers on the disk holding `dir`; `None` where unknown.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let stats = rustix::fs::statvfs(dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Refuses new data (an upload, a synced file) while the data directory's disk is below its
/// reserve: better a clear 507 now than a database that runs out in the middle of a write.
pub fn ensure_room(state: &AppState) -> Result<()> {
    match free_bytes(&state.config.data_dir) {
        Some(free) if free < state.config.min_free_disk => Err(Error::new(
            Code::StorageFull,
            format!(
                "the server's disk is nearly full ({} MiB free, {} MiB kept in reserve); try again once space is freed",
                free / (1024 * 1024),
                state.config.min_free_disk / (1024 * 1024)
            ),
        )),
        _ => Ok(()),
    }
}

/// Readiness: the database answers, the data directory takes a write, and its disk has room.
pub async fn check(state: &AppState) -> Result<()> {
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_transient() => return Err(e),
        Ok(Err(e)) => {
            return Err(Error::new(Code::DatabaseUnavailable, "the database is not reachable").with_cause(e));
        }
        Err(_) => return Err(Error::new(Code::DatabaseUnavailable, "the database did not answer in time")),
    }
    probe_write(&state.config.data_dir).await?;
    // Uploads go to the blob store: a node that cannot reach it (a bucket it has no access to, a
    // shared volume not mounted here) takes no work.
    match tokio::time::timeout(PING_TIMEOUT, state.blobs.check()).await {
        Ok(Ok(())) => {}
        // A full disk under the blob store is the same condition as a full data directory: keep
        // its code so that operators (and clients backing off) see one cause, not two.
        Ok(Err(e)) if e.code == Code::StorageFull => return Err(e),
        Ok(Err(e)) => {
            let message = format!("this node cannot use the blob store ({})", state.blobs.describe());
            return Err(Error::new(Code::StorageUnavailable, message).with_cause(e));
        }
        Err(_) => {
            let message = format!("the blob store ({}) did not answer in time", state.blobs.describe());
            return Err(Error::new(Code::StorageUnavailable, message));
        }
    }
    ensure_room(state)
}

/// Writes, syncs and removes a small file: a read-only or failing disk shows here.
async fn probe_write(dir: &Path) -> Result<()> {
    let path = dir.join(".ready-probe");
    let write = async {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(&path).await?;
        file.write_all(b"ready").await?;
        file.sync_all().await?;
        tokio::fs::remove_file(&path).await
    };
    write.await.map_err(|e: std::io::Error| {
        Error::from_storage(&e)
            .unwrap_or_else(|| Error::new(Code::StorageUnavailable, "the data directory cannot be written"))
            .with_cause(e)
    })
}

/// `GET /v1/admin/server`: what an administrator checks first, on the node that answers: whether
/// it is ready (and if not, why), its queue, its disk, and the limits it enforces. Nothing
/// secret: the database is named by kind, never by URL.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerOverview {
    pub version: String,
    pub node: String,
    /// `embedded` (SQLite) or `postgres`.
    pub database: String,
    /// Where uploads live: the data directory, the database, a shared volume or a bucket.
    pub blob_store: String,
    pub ready: bool,
    /// Why the node is not ready: its error code and message.
    pub not_ready: Option<serde_json::Value>,
    pub queued_jobs: i64,
    /// Free bytes on the data directory's disk, where the platform says.
    pub free_disk_bytes: Option<u64>,
    pub limits: ServerLimits,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerLimits {
    pub max_upload_bytes: u64,
    pub min_free_disk_bytes: u64,
    pub workers: usize,
    /// `invite`, `open` or `closed`.
    pub registration: String,
    pub registrations_per_hour: u32,
    pub session_ttl_hours: u64,
    pub trash_retention_days: u64,
    pub usage_retention_days: u64,
    pub usage_error_retention_days: u64,
    /// The default embedding model; `None`: full-text search only.
    pub embedding_model: Option<String>,
    pub allow_private_sources: bool,
    pub allow_outbound: Vec<String>,
    pub trusted_proxies: Vec<String>,
    /// Whether documents are parsed in child processes under the parser budgets.
    pub isolated_parsers: bool,
    #[schema(value_type = Object)]
    pub budgets: lore_core::budget::Budgets,
}

pub async fn overview(state: &AppState) -> Result<ServerOverview> {
    let readiness = check(state).await;
    let config = &state.config;
    let days = |d: std::time::Duration| d.as_secs() / 86_400;
    let registration =
        serde_json::to_value(config.registration).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    Ok(ServerOverview {
        version: env!("CARGO_PKG_VERSION").to_string(),
        node: state.node.to_string(),
        database: if config.database_url.is_some() { "postgres" } else { "embedded" }.to_string(),
        blob_store: state.blobs.describe(),
        ready: readiness.is_ok(),
        not_ready: readiness.err().map(|e| serde_json::json!({"code": e.code.as_str(), "message": e.message})),
        queued_jobs: state.store.pending_jobs().await.unwrap_or(-1),
        free_disk_bytes: free_bytes(&config.data_dir),
        limits: ServerLimits {
            max_upload_bytes: config.max_upload_bytes,
            min_free_disk_bytes: config.min_free_disk,
            workers: config.workers,
            registration,
            registrations_per_hour: config.registrations_per_hour,
            session_ttl_hours: config.session_ttl.as_secs() / 3600,
            trash_retention_days: days(config.trash_retention),
            usage_retention_days: days(config.usage_success_retention),
            usage_error_retention_days: days(config.usage_error_retention),
            embedding_model: config.embedding_model.clone(),
            allow_private_sources: config.allow_private_sources,
            allow_outbound: config.allow_outbound.iter().map(ToString::to_string).collect(),
            trusted_proxies: config.trusted_proxies.iter().map(ToString::to_string).collect(),
            isolated_parsers: config.parser_exe.is_some(),
            budgets: config.budgets.clone(),
        },
    })
}
