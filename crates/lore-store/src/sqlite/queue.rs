//! The ingestion queue: jobs claimed under leases, processing results, re-embedding, on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Error, Result};
use lore_core::model::*;
use lore_core::store::QueueStore;
use sqlx::AssertSqlSafe;

use super::chunks;
use super::{SqliteStore, json_text, kb_token, ts};
use crate::fetch::Fetch;
use crate::rows::*;
use crate::sql;
use crate::vectors;

#[async_trait]
impl QueueStore for SqliteStore {
    async fn release_all_jobs(&self) -> Result<u64> {
        let mut tx = self.tx().await?;
        let done = sqlx::query(sql::REQUEUE_RUNNING_JOBS).run(&mut *tx).await?;
        sqlx::query(sql::REOPEN_QUEUED_DOCUMENTS).run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn claim_job_except(&self, worker: &str, lease: Duration, skip: &[Id]) -> Result<Option<Job>> {
        let now = lore_core::now();
        let until = now + chrono::Duration::from_std(lease).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        // Owners take turns (see the trait): an owner's next job waits behind every other owner's
        // job with the same turn number, counting the jobs the owner already has running.
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ?1, locked_until = ?2
             WHERE id = (WITH owned AS (SELECT j.id, j.status, j.run_after, j.locked_until, j.created_at,
                                               COALESCE(d.user_id, k.user_id) AS owner
                                        FROM jobs j
                                        LEFT JOIN documents d ON d.id = j.document_id
                                        LEFT JOIN knowledge_bases k ON k.id = j.knowledge_base_id),
                              busy AS (SELECT owner, COUNT(*) AS n FROM owned
                                       WHERE status = 'running' AND locked_until >= ?3 GROUP BY owner)
                         SELECT o.id FROM owned o LEFT JOIN busy b ON b.owner = o.owner
                         WHERE ((o.status = 'queued' AND o.run_after <= ?3)
                                OR (o.status = 'running' AND o.locked_until < ?3))
                           AND o.id NOT IN (SELECT value FROM json_each(?4))
                         ORDER BY COALESCE(b.n, 0)
                                  + ROW_NUMBER() OVER (PARTITION BY o.owner ORDER BY o.created_at, o.id),
                                  o.created_at, o.id
                         LIMIT 1)
             RETURNING id, kind, document_id, knowledge_base_id, attempts",
        )
        .bind(worker)
        .bind(ts(until))
        .bind(ts(now))
        .bind(json_text(&skip.iter().map(|id| id.to_string()).collect::<Vec<_>>())?)
        .optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = job_from(&row)?;
        if let Some(doc) = job.document_id {
            sqlx::query("UPDATE documents SET status = 'processing', progress = 5, updated_at = ? WHERE id = ?")
                .bind(ts(now))
                .bind(doc.to_string())
                .run(&mut *tx)
                .await?;
            let claimed = LogEntry::new("claim", format!("claimed by {worker} (attempt {})", job.attempts));
            Self::append_log(&mut tx, doc, &[claimed]).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(job))
    }

    async fn extend_lease(&self, job_id: Id, worker: &str, lease: Duration) -> Result<bool> {
        let until = lore_core::now() + chrono::Duration::from_std(lease).map_err(|e| Error::internal(e.to_string()))?;
        let done =
            sqlx::query("UPDATE jobs SET locked_until = ? WHERE id = ? AND locked_by = ? AND status = 'running'")
                .bind(ts(until))
                .bind(job_id.to_string())
                .bind(worker)
                .run(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn retry_later(&self, job: &Job, worker: &str, delay: Duration) -> Result<()> {
        let after = lore_core::now() + chrono::Duration::from_std(delay).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), locked_by = NULL,
                    locked_until = NULL, run_after = ?1
             WHERE id = ?2 AND locked_by = ?3 AND status = 'running'",
        )
        .bind(ts(after))
        .bind(job.id.to_string())
        .bind(worker)
        .run(&mut *tx)
        .await?;
        if done.rows_affected() > 0
            && let Some(doc) = job.document_id
        {
            sqlx::query("UPDATE documents SET status = 'pending', progress = 0 WHERE id = ? AND status = 'processing'")
                .bind(doc.to_string())
                .run(&mut *tx)
                .await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn document_for_job(&self, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).optional(&self.reader).await?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn knowledge_base_for_job(&self, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).optional(&self.reader).await?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE documents SET progress = ?, updated_at = ? WHERE id = ?")
            .bind(progress.clamp(0, 100))
            .bind(ts(lore_core::now()))
            .bind(document_id.to_string())
            .run(&mut *tx)
            .await?;
        if let Some(entry) = entry {
            Self::append_log(&mut tx, document_id, &[entry]).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()> {
        let mut tx = self.tx().await?;
        let owner = sqlx::query("SELECT user_id, knowledge_base_id FROM documents WHERE id = ?")
            .bind(document_id.to_string())
            .optional(&mut *tx)
            .await?;
        if let Some(owner) = owner {
            let user_id = owner.text("user_id")?;
            let kb_id = owner.text("knowledge_base_id")?;
            let kb_token = kb_token(owner.id("knowledge_base_id")?);
            let now = ts(lore_core::now());
            // A retried job replaces whatever an interrupted attempt left behind.
            sqlx::query("DELETE FROM document_chunks WHERE document_id = ?")
                .bind(document_id.to_string())
                .run(&mut *tx)
                .await?;
            let mut ids: Vec<String> = Vec::with_capacity(result.chunks.len());
            let document = document_id.to_string();
            for chunk in &result.chunks {
                let id = lore_core::new_id().to_string();
                let row = chunks::ChunkRow {
                    id: &id,
                    document_id: &document,
                    knowledge_base_id: &kb_id,
                    user_id: &user_id,
                    kb_token: &kb_token,
                    chunk_index: chunk.chunk_index,
                    parent: chunk.parent_index.and_then(|i| ids.get(i)).map(String::as_str),
                    embedding_model: result.embedding_model.as_deref(),
                    created_at: &now,
                    edited_at: None,
                };
                chunks::insert_chunk(&mut tx, &row, chunk).await?;
                ids.push(id);
            }
            sqlx::query(
                "UPDATE documents SET status = 'completed', progress = 100, title = COALESCE(title, ?), raw_content = ?,
                   processed_content = ?, source_metadata = ?, error_code = NULL, error_message = NULL,
                   processed_at = ?, updated_at = ?
                 WHERE id = ?",
            )
            .bind(&result.title)
            .bind(&result.raw_content)
            .bind(&result.processed_content)
            .bind(json_text(&result.source_metadata)?)
            .bind(&now)
            .bind(&now)
            .bind(document_id.to_string())
            .run(&mut *tx).await?;
            Self::append_log(&mut tx, document_id, &result.log).await?;
            // A knowledge base's first embeddings decide the space its search uses.
            if let Some(space) = &result.embedding_model {
                sqlx::query("UPDATE knowledge_bases SET embedding_space = ? WHERE id = ? AND embedding_space IS NULL")
                    .bind(space)
                    .bind(&kb_id)
                    .run(&mut *tx)
                    .await?;
            }
        }
        self.finish_job(tx, job).await
    }

    async fn fail_document(
        &self, job: &Job, document_id: Id, code: &str, message: &str, log: Vec<LogEntry>,
    ) -> Result<()> {
        let mut tx = self.tx().await?;
        let now = ts(lore_core::now());
        sqlx::query("DELETE FROM document_chunks WHERE document_id = ?")
            .bind(document_id.to_string())
            .run(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', progress = 100, error_code = ?, error_message = ?, processed_at = ?,
               updated_at = ? WHERE id = ?",
        )
        .bind(code)
        .bind(message)
        .bind(&now)
        .bind(&now)
        .bind(document_id.to_string())
        .run(&mut *tx).await?;
        Self::append_log(&mut tx, document_id, &log).await?;
        sqlx::query("DELETE FROM jobs WHERE id = ?").bind(job.id.to_string()).run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM documents WHERE soft_deleted_at IS NULL GROUP BY status")
                .all(&self.reader)
                .await?;
        rows.iter()
            .filter_map(|r| {
                let status = r.text("status").ok().and_then(|s| DocStatus::parse(&s))?;
                Some(r.int("n").map(|n| (status, n)))
            })
            .collect()
    }

    async fn pending_jobs(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs").one(&self.reader).await
    }

    async fn queue_reembedding(&self, knowledge_base_id: Id) -> Result<()> {
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO jobs (id, kind, knowledge_base_id, run_after, created_at)
             SELECT ?, 'reembed', ?, ?, ? WHERE NOT EXISTS
               (SELECT 1 FROM jobs WHERE kind = 'reembed' AND knowledge_base_id = ? AND status = 'queued')",
        )
        .bind(lore_core::new_id().to_string())
        .bind(knowledge_base_id.to_string())
        .bind(&now)
        .bind(&now)
        .bind(knowledge_base_id.to_string())
        .run(&self.writer)
        .await?;
        Ok(())
    }

    async fn chunks_to_reembed(&self, knowledge_base_id: Id, space: &str, limit: i64) -> Result<Vec<ChunkToEmbed>> {
        let rows = sqlx::query(
            "SELECT c.seq, c.content, c.content_hash, c.metadata, d.title FROM document_chunks c
             JOIN documents d ON d.id = c.document_id
             LEFT JOIN chunk_reembeddings r ON r.chunk_seq = c.seq AND r.embedding_model = ?1
             WHERE c.knowledge_base_id = ?2 AND c.content_embedding IS NOT NULL
               AND c.embedding_model IS NOT ?1 AND r.chunk_seq IS NULL
             ORDER BY c.seq LIMIT ?3",
        )
        .bind(space)
        .bind(knowledge_base_id.to_string())
        .bind(limit)
        .all(&self.reader)
        .await?;
        rows.iter().map(chunk_to_embed_from).collect()
    }

    async fn save_reembedded(&self, knowledge_base_id: Id, space: &str, rows: &[Reembedded]) -> Result<()> {
        let mut tx = self.tx().await?;
        for row in rows {
            sqlx::query(
                "INSERT OR REPLACE INTO chunk_reembeddings
                   (chunk_seq, knowledge_base_id, embedding_model, content_embedding, summary_embedding)
                 SELECT seq, knowledge_base_id, ?, ?, ? FROM document_chunks WHERE seq = ? AND knowledge_base_id = ?",
            )
            .bind(space)
            .bind(vectors::to_blob(&row.embedding))
            .bind(row.summary_embedding.as_deref().map(vectors::to_blob))
            .bind(row.seq)
            .bind(knowledge_base_id.to_string())
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_reembedding(&self, job: &Job, knowledge_base_id: Id, space: &str) -> Result<u64> {
        let mut tx = self.tx().await?;
        let kb = knowledge_base_id.to_string();
        let switched = sqlx::query(
            "UPDATE document_chunks SET content_embedding = r.content_embedding,
                    summary_embedding = r.summary_embedding, embedding_model = r.embedding_model
             FROM chunk_reembeddings r
             WHERE r.chunk_seq = document_chunks.seq AND r.embedding_model = ? AND r.knowledge_base_id = ?",
        )
        .bind(space)
        .bind(&kb)
        .run(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM chunk_reembeddings WHERE knowledge_base_id = ?").bind(&kb).run(&mut *tx).await?;
        sqlx::query("UPDATE knowledge_bases SET embedding_space = ? WHERE id = ?")
            .bind(space)
            .bind(&kb)
            .run(&mut *tx)
            .await?;
        self.finish_job(tx, job).await?;
        Ok(switched)
    }

    async fn drop_job(&self, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?").bind(job.id.to_string()).run(&self.writer).await?;
        Ok(())
    }
}
