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
