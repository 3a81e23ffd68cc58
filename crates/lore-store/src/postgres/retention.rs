//! Retention: expiry, purges of soft-deleted documents, conversations, usage logs and sessions, on
//! PostgreSQL.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::RetentionStore;

use super::PgStore;
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).run(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn expire_documents(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE documents SET soft_deleted_at = $1, updated_at = $1
             WHERE expires_at IS NOT NULL AND expires_at <= $1 AND soft_deleted_at IS NULL",
        )
        .bind(now)
        .run(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_deleted_documents(&self, before: Timestamp) -> Result<Vec<String>> {
        let mut tx = self.tx().await?;
        let rows = sqlx::query(
            "SELECT id, file_path FROM documents WHERE soft_deleted_at IS NOT NULL AND soft_deleted_at <= $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .all(&mut *tx)
        .await?;
        let mut paths = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.id("id")?;
            sqlx::query("DELETE FROM document_chunks WHERE document_id = $1").bind(id).run(&mut *tx).await?;
            sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).run(&mut *tx).await?;
            paths.push(row.text("file_path")?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(paths)
    }

    async fn purge_conversations(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM conversations c USING knowledge_base_configs k
             WHERE k.user_id = c.user_id AND k.conversation_retention_days IS NOT NULL
               AND c.updated_at < $1 - make_interval(days => k.conversation_retention_days::int)",
        )
        .bind(now)
        .run(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_usage_logs(&self, success_before: Timestamp, error_before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM api_usage_logs
             WHERE (status_code < 400 AND created_at < $1) OR (status_code >= 400 AND created_at < $2)",
        )
        .bind(success_before)
        .bind(error_before)
        .run(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
