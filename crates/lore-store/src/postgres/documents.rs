//! Documents and their chunks, as their owners see and curate them, on PostgreSQL.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::{DocumentStore, Upload};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{PgStore, is_unique_violation};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl DocumentStore for PgStore {
    async fn create_document(&self, doc: NewDocument) -> Result<Upload> {
        let id = lore_core::new_id();
        let now = lore_core::now();
        let log = vec![LogEntry::new("upload", format!("received {} ({} bytes)", doc.filename, doc.file_size))];
        let mut tx = self.tx().await?;
        // The unique index on live content decides between two nodes receiving the same file.
        let inserted = sqlx::query(
            "INSERT INTO documents (id, knowledge_base_id, user_id, uploaded_by, file_type_id, filename, file_type,
               file_path, file_size, mime_type, file_hash, status, progress, processing_log, metadata, chunking_config,
               expires_at, created_at, updated_at, data_source_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', 0, $12, $13, $14, $15, $16, $16, $17)
             ON CONFLICT (knowledge_base_id, file_hash) WHERE soft_deleted_at IS NULL DO NOTHING",
        )
        .bind(id)
        .bind(doc.knowledge_base_id)
        .bind(doc.user_id)
        .bind(doc.uploaded_by)
        .bind(doc.file_type_id)
        .bind(&doc.filename)
        .bind(&doc.file_type)
        .bind(&doc.file_path)
        .bind(doc.file_size)
        .bind(&doc.mime_type)
        .bind(&doc.file_hash)
        .bind(Json(&log))
        .bind(Json(&doc.metadata))
        .bind(doc.chunking_config.as_ref().map(Json))
        .bind(doc.expires_at)
        .bind(now)
        .bind(doc.data_source_id)
        .run(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let sql = format!(
                "SELECT {DOC_COLS} FROM documents
                 WHERE knowledge_base_id = $1 AND file_hash = $2 AND soft_deleted_at IS NULL"
            );
            let row =
                sqlx::query(AssertSqlSafe(sql)).bind(doc.knowledge_base_id).bind(&doc.file_hash).one(&mut *tx).await?;
            return Ok(Upload::Duplicate(doc_from(&row)?));
        }
        sqlx::query(
            "INSERT INTO jobs (id, kind, document_id, status, run_after, created_at)
             VALUES ($1, 'process_document', $2, 'queued', $3, $3)",
        )
        .bind(lore_core::new_id())
        .bind(id)
        .bind(now)
        .run(&mut *tx)
        .await?;
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).one(&mut *tx).await?;
        let created = doc_from(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Upload::Created(created))
    }

    async fn list_documents(
        &self, user_id: Id, knowledge_base_id: Id, query: &DocumentListQuery,
    ) -> Result<Vec<Document>> {
        let sql = format!(
            "SELECT {DOC_COLS} FROM documents
             WHERE user_id = $1 AND knowledge_base_id = $2
               AND ($3 OR soft_deleted_at IS NULL)
               AND ($4::text IS NULL OR status = $4)
             ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        );
        let q = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(knowledge_base_id)
            .bind(query.include_deleted)
            .bind(query.status.map(DocStatus::as_str))
            .bind(query.limit)
            .bind(query.offset);
        let rows = self.tenant_all(user_id, q).await?;
        rows.iter().map(doc_from).collect()
    }

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        self.doc_by_id(user_id, id).await
    }

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>> {
        let q = sqlx::query("SELECT raw_content, processed_content FROM documents WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id);
        let row = self.tenant_one(user_id, q).await?;
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
            "UPDATE documents SET soft_deleted_at = $1, updated_at = $1
             WHERE id = $2 AND user_id = $3 AND soft_deleted_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .bind(user_id)
        .run(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.doc_by_id(user_id, id).await
    }

    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let result = sqlx::query(
            "UPDATE documents SET soft_deleted_at = NULL, expires_at = NULL, updated_at = $1
             WHERE id = $2 AND user_id = $3 AND soft_deleted_at IS NOT NULL",
        )
        .bind(lore_core::now())
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => match self.doc_by_id(user_id, id).await? {
                None => Ok(None),
                Some(_) => Err(Error::new(Code::NotDeleted, "the document is not deleted")),
            },
            Ok(_) => self.doc_by_id(user_id, id).await,
            Err(e) if is_unique_violation(&e, "idx_doc_kb_hash_live") => Err(Error::new(
                Code::DuplicateDocument,
                "the same content was uploaded again since this document was deleted; delete that copy first",
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn blob_in_use(&self, file_path: &str) -> Result<bool> {
        let row: Option<i32> = sqlx::query_scalar("SELECT 1 FROM documents WHERE file_path = $1 LIMIT 1")
            .bind(file_path)
            .optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
