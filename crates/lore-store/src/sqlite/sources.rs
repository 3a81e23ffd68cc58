//! Data sources and their sync runs on SQLite.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::{Id, Timestamp};
use lore_core::source::{DataSource, Notification, SourceItem, SyncRun};
use lore_core::store::SourceStore;
use sqlx::AssertSqlSafe;

use super::{SqliteStore, is_unique_violation, json_text, ts};
use crate::fetch::Fetch;
use crate::rows::*;

fn name_taken(e: sqlx::Error, name: &str) -> Error {
    if is_unique_violation(&e, "data_sources.") {
        Error::new(Code::DataSourceNameTaken, format!("you already have a data source named '{name}'"))
    } else {
        db_err(e)
    }
}

#[async_trait]
impl SourceStore for SqliteStore {
    async fn insert_data_source(&self, s: &DataSource, credentials: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO data_sources (id, user_id, knowledge_base_id, name, source_type, status, config, credentials,
                auto_sync, sync_frequency, created_at, updated_at, created_by)
             SELECT ?1, ?2, kb.id, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?14 FROM knowledge_bases kb WHERE kb.id = ?12 AND kb.user_id = ?13",
        )
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(&s.name)
        .bind(&s.source_type)
        .bind(&s.status)
        .bind(json_text(&s.config)?)
        .bind(credentials)
        .bind(s.auto_sync)
        .bind(s.sync_frequency)
        .bind(ts(s.created_at))
        .bind(ts(s.updated_at))
        .bind(s.knowledge_base_id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.created_by.map(|id| id.to_string()))
        .execute(&self.writer)
        .await
        .map_err(|e| name_taken(e, &s.name))?;
        Ok(())
    }

    async fn update_data_source(&self, s: &DataSource, credentials: Option<Option<&str>>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE data_sources SET name = ?1, status = ?2, config = ?3, auto_sync = ?4, sync_frequency = ?5,
                credentials = CASE WHEN ?6 THEN ?7 ELSE credentials END, updated_at = ?8
             WHERE id = ?9 AND user_id = ?10",
        )
        .bind(&s.name)
        .bind(&s.status)
        .bind(json_text(&s.config)?)
        .bind(s.auto_sync)
        .bind(s.sync_frequency)
        .bind(credentials.is_some())
        .bind(credentials.flatten())
        .bind(ts(s.updated_at))
        .bind(s.id.to_string())
        .bind(s.user_id.to_string())
        .bind(s.created_by.map(|id| id.to_string()))
        .execute(&self.writer)
        .await
        .map_err(|e| name_taken(e, &s.name))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_data_sources(&self, user_id: Id) -> Result<Vec<DataSource>> {
        let sql = format!("SELECT {SOURCE_COLS} FROM data_sources WHERE user_id = ? ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id.to_string()).all(&self.reader).await?;
        rows.iter().map(source_from).collect()
    }

    async fn get_data_source(&self, user_id: Id, id: Id) -> Result<Option<DataSource>> {
        let sql = format!("SELECT {SOURCE_COLS} FROM data_sources WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .optional(&self.writer)
            .await?;
        row.as_ref().map(source_from).transpose()
    }

    async fn data_source_credentials(&self, user_id: Id, id: Id) -> Result<Option<String>> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT credentials FROM data_sources WHERE id = ? AND user_id = ?")
                .bind(id.to_string())
                .bind(user_id.to_string())
                .optional(&self.reader)
                .await?;
        Ok(found.flatten())
    }

    async fn delete_data_source(&self, user_id: Id, id: Id) -> Result<bool> {
        self.delete_owned("data_sources", user_id, id).await
    }

    async fn source_items(&self, data_source_id: Id) -> Result<Vec<SourceItem>> {
        let rows = sqlx::query(
            "SELECT id, json_extract(metadata, '$.source_path') AS item_key,
                    json_extract(metadata, '$.source_version') AS version, file_hash
             FROM documents WHERE data_source_id = ? AND soft_deleted_at IS NULL
               AND json_extract(metadata, '$.source_path') IS NOT NULL",
        )
        .bind(data_source_id.to_string())
        .all(&self.writer)
        .await?;
        rows.iter().map(source_item_from).collect()
    }

    async fn touch_source_item(&self, document_id: Id, version: &str) -> Result<()> {
        sqlx::query("UPDATE documents SET metadata = json_set(metadata, '$.source_version', ?) WHERE id = ?")
            .bind(version)
            .bind(document_id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn claim_sync(&self, run: &SyncRun, owner: &str, lease_until: Timestamp) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let claimed = sqlx::query(
            "UPDATE data_sources SET status = 'syncing', lease_owner = ?, lease_until = ?
             WHERE id = ? AND (lease_until IS NULL OR lease_until < ?)",
        )
        .bind(owner)
        .bind(ts(lease_until))
        .bind(run.data_source_id.to_string())
        .bind(ts(run.started_at))
        .run(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO data_source_syncs (id, data_source_id, status, started_at, errors) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(run.id.to_string())
        .bind(run.data_source_id.to_string())
        .bind(&run.status)
        .bind(ts(run.started_at))
        .bind(json_text(&run.errors)?)
        .run(&mut *tx)
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn finish_sync(&self, run: &SyncRun, last_error: Option<&str>) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(
            "UPDATE data_source_syncs SET status = ?, finished_at = ?, added = ?, updated = ?, removed = ?, failed = ?,
                errors = ? WHERE id = ?",
        )
        .bind(&run.status)
        .bind(run.finished_at.map(ts))
        .bind(run.added)
        .bind(run.updated)
        .bind(run.removed)
        .bind(run.failed)
        .bind(json_text(&run.errors)?)
        .bind(run.id.to_string())
        .run(&mut *tx)
        .await?;
        // A paused source stays paused; otherwise the run says whether it is healthy.
        sqlx::query(
            "UPDATE data_sources SET status = CASE WHEN status = 'paused' THEN 'paused' WHEN ?1 IS NULL THEN 'active'
                ELSE 'error' END, last_error = ?1, last_sync = ?2, lease_owner = NULL, lease_until = NULL WHERE id = ?3",
        )
        .bind(last_error)
        .bind(run.finished_at.map(ts))
        .bind(run.data_source_id.to_string())
        .run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_syncs(&self, user_id: Id, data_source_id: Id, limit: i64) -> Result<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT r.id, r.data_source_id, r.status, r.started_at, r.finished_at, r.added, r.updated, r.removed,
                    r.failed, r.errors
             FROM data_source_syncs r JOIN data_sources s ON s.id = r.data_source_id
             WHERE r.data_source_id = ? AND s.user_id = ? ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
        )
        .bind(data_source_id.to_string())
        .bind(user_id.to_string())
        .bind(limit)
        .all(&self.writer)
        .await?;
        rows.iter().map(run_from).collect()
    }

    async fn due_data_sources(&self, now: Timestamp) -> Result<Vec<(Id, Id)>> {
        let rows = sqlx::query(
            "SELECT user_id, id FROM data_sources
             WHERE auto_sync = 1 AND status <> 'paused' AND sync_frequency IS NOT NULL
               AND (lease_until IS NULL OR lease_until < ?1)
               AND user_id IN (SELECT id FROM users WHERE is_active = 1)
               AND (last_sync IS NULL
                    OR last_sync <= strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '-' || sync_frequency || ' minutes'))",
        )
        .bind(ts(now))
        .all(&self.writer)
        .await?;
        rows.iter().map(|r| Ok((r.id("user_id")?, r.id("id")?))).collect()
    }

    async fn insert_notification(&self, n: &Notification) -> Result<()> {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, title, body, data, read_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(n.id.to_string())
        .bind(n.user_id.to_string())
        .bind(&n.kind)
        .bind(&n.title)
        .bind(&n.body)
        .bind(json_text(&n.data)?)
        .bind(n.read_at.map(ts))
        .bind(ts(n.created_at))
        .run(&self.writer).await?;
        Ok(())
    }

    async fn list_notifications(&self, user_id: Id, limit: i64) -> Result<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, title, body, data, read_at, created_at FROM notifications
             WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(user_id.to_string())
        .bind(limit)
        .all(&self.writer)
        .await?;
        rows.iter().map(notification_from).collect()
    }

    async fn set_notification_data(&self, id: Id, data: &serde_json::Value) -> Result<()> {
        sqlx::query("UPDATE notifications SET data = ? WHERE id = ?")
            .bind(json_text(data)?)
            .bind(id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }
}
