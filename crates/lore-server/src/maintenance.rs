//! The retention purges, run by a scheduler every `maintenance_interval`: expired documents go to
//! the trash, the trash is emptied after its grace period (chunks and unshared blobs with it),
//! old conversations, usage logs, sessions and audit entries are removed. Each pass logs what it removed.

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use lore_core::error::{Error, Result};
use lore_core::model::PurgeReport;
use tokio::sync::watch;

use crate::state::AppState;

fn ago(d: Duration) -> Result<lore_core::model::Timestamp> {
    Ok(lore_core::now() - ChronoDuration::from_std(d).map_err(|e| Error::internal(e.to_string()))?)
}

pub async fn run_once(state: &AppState) -> Result<PurgeReport> {
    let store = &state.store;
    let config = &state.config;
    let now = lore_core::now();
    let mut report = PurgeReport { documents_expired: store.expire_documents(now).await?, ..Default::default() };
    let paths = store.purge_deleted_documents(ago(config.trash_retention)?).await?;
    report.documents_purged = paths.len() as u64;
    for path in paths {
        if !store.blob_in_use(&path).await? {
            state.blobs.delete(&path).await?;
            report.blobs_deleted += 1;
        }
    }
    report.conversations_purged = store.purge_conversations(now).await?;
    report.usage_logs_purged =
        store.purge_usage_logs(ago(config.usage_success_retention)?, ago(config.usage_error_retention)?).await?;
    report.sessions_purged = store.purge_expired_sessions(now).await?;
    report.audit_entries_purged = store.purge_audit(ago(config.audit_retention)?).await?;
    if report != PurgeReport::default() {
        tracing::info!(
            documents_expired = report.documents_expired,
            documents_purged = report.documents_purged,
            blobs_deleted = report.blobs_deleted,
            conversations_purged = report.conversations_purged,
            usage_logs_purged = report.usage_logs_purged,
            sessions_purged = report.sessions_purged,
            audit_entries_purged = report.audit_entries_purged,
            "retention purge"
        );
    }
    Ok(report)
}

pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = state.config.maintenance_interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = run_once(&state).await {
                tracing::error!(error = %e, "retention purge failed");
            }
        }
    })
}
