//! Data sources and their sync runs on PostgreSQL.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::{Id, Timestamp};
use lore_core::source::{DataSource, Notification, SourceItem, SyncRun};
use lore_core::store::SourceStore;
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{AsTenant, PgStore, is_unique_violation};
use crate::fetch::Fetch;
use crate::rows::*;

fn name_taken(e: sqlx::Error, name: &str) -> Error {
    if is_unique_violation(&e, "data_sources_") {
        Error::new(Code::DataSourceNameTaken, format!("you already have a data source named '{name}'"))
    } else {
        db_err(e)
    }
}

#[async_trait]
impl SourceStore for PgStore {
    async fn insert_data_source(&self, s: &DataSource, credentials: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO data_sources (id, user_id, knowledge_base_id, name, source_type, status, config, credentials,
                auto_sync, sync_frequency, created_at, updated_at, created_by)
             SELECT $1, $2, kb.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $14 FROM knowledge_bases kb WHERE kb.id = $12 AND kb.user_id = $13",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(&s.name)
        .bind(&s.source_type)
        .bind(&s.status)
        .bind(Json(&s.config))
        .bind(credentials)
        .bind(s.auto_sync)
        .bind(s.sync_frequency)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.knowledge_base_id)
        .bind(s.user_id)
        .bind(s.created_by)
        .execute(&self.pool)
        .await
        .map_err(|e| name_taken(e, &s.name))?;
        Ok(())
    }

    async fn update_data_source(&self, s: &DataSource, credentials: Option<Option<&str>>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE data_sources SET name = $1, status = $2, config = $3, auto_sync = $4, sync_frequency = $5,
                credentials = CASE WHEN $6 THEN $7 ELSE credentials END, updated_at = $8
             WHERE id = $9 AND user_id = $10",
        )
        .bind(&s.name)
        .bind(&s.status)
        .bind(Json(&s.config))
        .bind(s.auto_sync)
        .bind(s.sync_frequency)
        .bind(credentials.is_some())
        .bind(credentials.flatten())
        .bind(s.updated_at)
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.created_by)
        .execute(&self.pool)
        .await
        .map_err(|e| name_taken(e, &s.name))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_data_sources(&self, user_id: Id) -> Result<Vec<DataSource>> {
        let sql =
            format!("SELECT {SOURCE_COLS} FROM data_sources WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id).tenant_all(self, user_id).await?;
        rows.iter().map(source_from).collect()
    }

    async fn get_data_source(&self, user_id: Id, id: Id) -> Result<Option<DataSource>> {
        let sql = format!("SELECT {SOURCE_COLS} FROM data_sources WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(user_id).tenant_one(self, user_id).await?;
        row.as_ref().map(source_from).transpose()
    }

    async fn data_source_credentials(&self, user_id: Id, id: Id) -> Result<Option<String>> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT credentials FROM data_sources WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .optional(&self.pool)
                .await?;
        Ok(found.flatten())
    }

    async fn delete_data_source(&self, user_id: Id, id: Id) -> Result<bool> {
        self.delete_owned("data_sources", user_id, id).await
    }

    async fn source_items(&self, data_source_id: Id) -> Result<Vec<SourceItem>> {
        let rows = sqlx::query(
            "SELECT id, metadata ->> 'source_path' AS item_key, metadata ->> 'source_version' AS version, file_hash
             FROM documents WHERE data_source_id = $1 AND soft_deleted_at IS NULL
               AND metadata ? 'source_path'",
        )
        .bind(data_source_id)
        .all(&self.pool)
        .await?;
        rows.iter().map(source_item_from).collect()
    }

    async fn touch_source_item(&self, document_id: Id, version: &str) -> Result<()> {
        sqlx::query(
            "UPDATE documents SET metadata = jsonb_set(metadata, '{source_version}', to_jsonb($1::text)) WHERE id = $2",
        )
        .bind(version)
        .bind(document_id)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_sync(&self, run: &SyncRun, owner: &str, lease_until: Timestamp) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let claimed = sqlx::query(
            "UPDATE data_sources SET status = 'syncing', lease_owner = $1, lease_until = $2
             WHERE id = $3 AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(run.data_source_id)
        .bind(run.started_at)
        .run(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO data_source_syncs (id, data_source_id, status, started_at, errors) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run.id)
        .bind(run.data_source_id)
        .bind(&run.status)
        .bind(run.started_at)
        .bind(Json(&run.errors))
        .run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn finish_sync(&self, run: &SyncRun, last_error: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE data_source_syncs SET status = $1, finished_at = $2, added = $3, updated = $4, removed = $5, failed = $6,
                errors = $7 WHERE id = $8",
        )
        .bind(&run.status)
        .bind(run.finished_at)
        .bind(run.added)
        .bind(run.updated)
        .bind(run.removed)
        .bind(run.failed)
        .bind(Json(&run.errors))
        .bind(run.id)
        .run(&mut *tx).await?;
        // A paused source stays paused; otherwise the run says whether it is healthy.
        sqlx::query(
            "UPDATE data_sources SET status = CASE WHEN status = 'paused' THEN 'paused' WHEN $1 IS NULL THEN 'active'
                ELSE 'error' END, last_error = $1, last_sync = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3",
        )
        .bind(last_error)
        .bind(run.finished_at)
        .bind(run.data_source_id)
        .run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_syncs(&self, user_id: Id, data_source_id: Id, limit: i64) -> Result<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT r.id, r.data_source_id, r.status, r.started_at, r.finished_at, r.added, r.updated, r.removed,
                    r.failed, r.errors
             FROM data_source_syncs r JOIN data_sources s ON s.id = r.data_source_id
             WHERE r.data_source_id = $1 AND s.user_id = $2 ORDER BY r.started_at DESC, r.id DESC LIMIT $3",
        )
        .bind(data_source_id)
        .bind(user_id)
        .bind(limit)
        .tenant_all(self, user_id)
        .await?;
        rows.iter().map(run_from).collect()
    }

    async fn due_data_sources(&self, now: Timestamp) -> Result<Vec<(Id, Id)>> {
        let rows = sqlx::query(
            "SELECT user_id, id FROM data_sources
             WHERE auto_sync AND status <> 'paused' AND sync_frequency IS NOT NULL
               AND (lease_until IS NULL OR lease_until < $1)
               AND user_id IN (SELECT id FROM users WHERE is_active)
               AND (last_sync IS NULL
                    OR last_sync <= $1 - make_interval(mins => sync_frequency::int))",
        )
        .bind(now)
        .all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.id("user_id")?, r.id("id")?))).collect()
    }

    async fn insert_notification(&self, n: &Notification) -> Result<()> {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, title, body, data, read_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(n.id)
        .bind(n.user_id)
        .bind(&n.kind)
        .bind(&n.title)
        .bind(&n.body)
        .bind(Json(&n.data))
        .bind(n.read_at)
        .bind(n.created_at)
        .run(&self.pool).await?;
        Ok(())
    }

    async fn list_notifications(&self, user_id: Id, limit: i64) -> Result<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, title, body, data, read_at, created_at FROM notifications
             WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .tenant_all(self, user_id)
        .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn set_notification_data(&self, id: Id, data: &serde_json::Value) -> Result<()> {
        sqlx::query("UPDATE notifications SET data = $1 WHERE id = $2")
            .bind(Json(data))
            .bind(id)
            .run(&self.pool)
            .await?;
        Ok(())
    }
}
