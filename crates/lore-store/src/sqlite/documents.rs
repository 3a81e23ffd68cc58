//! Documents and their chunks, as their owners see and curate them, on SQLite.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::{DocumentStore, Upload};
use sqlx::AssertSqlSafe;

use super::{SqliteStore, is_unique_violation, json_text, ts};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn create_document(&self, doc: NewDocument) -> Result<Upload> {
        let mut tx = self.tx().await?;
        let sql = format!(
            "SELECT {DOC_COLS} FROM documents WHERE knowledge_base_id = ? AND file_hash = ? AND soft_deleted_at IS NULL"
        );
        let existing = sqlx::query(AssertSqlSafe(sql))
            .bind(doc.knowledge_base_id.to_string())
            .bind(&doc.file_hash)
            .optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            return Ok(Upload::Duplicate(doc_from(&row)?));
        }
        let id = lore_core::new_id();
        let now = lore_core::now();
        let log = vec![LogEntry::new("upload", format!("received {} ({} bytes)", doc.filename, doc.file_size))];
        sqlx::query(
            "INSERT INTO documents (id, knowledge_base_id, user_id, uploaded_by, file_type_id, filename, file_type,
               file_path, file_size, mime_type, file_hash, status, progress, processing_log, metadata, chunking_config,
               expires_at, created_at, updated_at, data_source_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(doc.knowledge_base_id.to_string())
        .bind(doc.user_id.to_string())
        .bind(doc.uploaded_by.map(|u| u.to_string()))
        .bind(doc.file_type_id)
        .bind(&doc.filename)
        .bind(&doc.file_type)
        .bind(&doc.file_path)
        .bind(doc.file_size)
        .bind(&doc.mime_type)
        .bind(&doc.file_hash)
        .bind(json_text(&log)?)
        .bind(json_text(&doc.metadata)?)
        .bind(doc.chunking_config.as_ref().map(json_text).transpose()?)
        .bind(doc.expires_at.map(ts))
        .bind(ts(now))
        .bind(ts(now))
        .bind(doc.data_source_id.map(|d| d.to_string()))
        .run(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO jobs (id, kind, document_id, status, run_after, created_at) VALUES (?, 'process_document', ?, 'queued', ?, ?)")
            .bind(lore_core::new_id().to_string())
            .bind(id.to_string())
            .bind(ts(now))
            .bind(ts(now))
            .run(&mut *tx).await?;
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).one(&mut *tx).await?;
        let created = doc_from(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Upload::Created(created))
    }

    async fn list_documents(
        &self, user_id: Id, knowledge_base_id: Id, query: &DocumentListQuery,
    ) -> Result<Vec<Document>> {
        let sql = format!(
            "SELECT {DOC_COLS} FROM documents
             WHERE user_id = ?1 AND knowledge_base_id = ?2
               AND (?3 OR soft_deleted_at IS NULL)
               AND (?4 IS NULL OR status = ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?5 OFFSET ?6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(knowledge_base_id.to_string())
            .bind(query.include_deleted)
            .bind(query.status.map(DocStatus::as_str))
            .bind(query.limit)
            .bind(query.offset)
            .all(&self.reader)
            .await?;
        rows.iter().map(doc_from).collect()
    }

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .optional(&self.reader)
            .await?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>> {
        let row = sqlx::query("SELECT raw_content, processed_content FROM documents WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .optional(&self.reader)
            .await?;
        row.map(|r| {
            Ok(DocumentContent {
                raw_content: r.opt_text("raw_content")?,
                processed_content: r.opt_text("processed_content")?,
            })
        })
        .transpose()
    }

    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>> {
        let done = sqlx::query(
            "UPDATE documents SET soft_deleted_at = ?, updated_at = ? WHERE id = ? AND user_id = ? AND soft_deleted_at IS NULL",
        )
        .bind(ts(at))
        .bind(ts(at))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .run(&self.writer).await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.doc_by_id(&self.writer, user_id, id).await
    }

    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let result = sqlx::query(
            "UPDATE documents SET soft_deleted_at = NULL, expires_at = NULL, updated_at = ?
             WHERE id = ? AND user_id = ? AND soft_deleted_at IS NOT NULL",
        )
        .bind(ts(lore_core::now()))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(&self.writer)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => {
                // Either no such document, or it is not deleted: tell the two apart.
                match self.doc_by_id(&self.writer, user_id, id).await? {
                    None => Ok(None),
                    Some(_) => Err(Error::new(Code::NotDeleted, "the document is not deleted")),
                }
            }
            Ok(_) => self.doc_by_id(&self.writer, user_id, id).await,
            Err(e) if is_unique_violation(&e, "documents.") => Err(Error::new(
                Code::DuplicateDocument,
                "the same content was uploaded again since this document was deleted; delete that copy first",
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn blob_in_use(&self, file_path: &str) -> Result<bool> {
        let row: Option<i64> = sqlx::query_scalar("SELECT 1 FROM documents WHERE file_path = ? LIMIT 1")
            .bind(file_path)
            .optional(&self.writer)
            .await?;
        Ok(row.is_some())
    }
}
