//! The ingestion queue: jobs claimed under leases, processing results, re-embedding, on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Error, Result};
use lore_core::model::*;
use lore_core::store::QueueStore;
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::chunks;
use super::{PgStore, vector_text};
use crate::fetch::Fetch;
use crate::rows::*;
use crate::sql;

#[async_trait]
impl QueueStore for PgStore {
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
        // job with the same turn number, counting the jobs the owner already has running. SKIP
        // LOCKED: nodes claiming at the same moment take different jobs instead of queuing behind
        // one another's row locks. The CTEs read the statement's snapshot, so the claimable test
        // is repeated on the locked row itself: a job another node claimed and committed after
        // that snapshot is re-read under the lock and skipped, never claimed twice.
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2
             WHERE id = (WITH owned AS (SELECT j.id, j.status, j.run_after, j.locked_until, j.created_at,
                                               COALESCE(d.user_id, k.user_id) AS owner
                                        FROM jobs j
                                        LEFT JOIN documents d ON d.id = j.document_id
                                        LEFT JOIN knowledge_bases k ON k.id = j.knowledge_base_id),
                              busy AS (SELECT owner, COUNT(*) AS n FROM owned
                                       WHERE status = 'running' AND locked_until >= $3 GROUP BY owner),
                              turns AS (SELECT o.id, o.created_at,
                                               COALESCE(b.n, 0) + ROW_NUMBER() OVER
                                                   (PARTITION BY o.owner ORDER BY o.created_at, o.id) AS turn
                                        FROM owned o LEFT JOIN busy b ON b.owner = o.owner
                                        WHERE ((o.status = 'queued' AND o.run_after <= $3)
                                               OR (o.status = 'running' AND o.locked_until < $3))
                                          AND NOT (o.id = ANY($4)))
                         SELECT j.id FROM jobs j JOIN turns t ON t.id = j.id
                         WHERE (j.status = 'queued' AND j.run_after <= $3)
                            OR (j.status = 'running' AND j.locked_until < $3)
                         ORDER BY t.turn, t.created_at, t.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED)
               AND ((status = 'queued' AND run_after <= $3) OR (status = 'running' AND locked_until < $3))
             RETURNING id, kind, document_id, knowledge_base_id, attempts",
        )
        .bind(worker)
        .bind(until)
        .bind(now)
        .bind(skip)
        .optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = job_from(&row)?;
        if let Some(doc) = job.document_id {
            sqlx::query("UPDATE documents SET status = 'processing', progress = 5, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(doc)
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
            sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND status = 'running'")
                .bind(until)
                .bind(job_id)
                .bind(worker)
                .run(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn retry_later(&self, job: &Job, worker: &str, delay: Duration) -> Result<()> {
        let after = lore_core::now() + chrono::Duration::from_std(delay).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), locked_by = NULL,
                    locked_until = NULL, run_after = $1
             WHERE id = $2 AND locked_by = $3 AND status = 'running'",
        )
        .bind(after)
        .bind(job.id)
        .bind(worker)
        .run(&mut *tx)
        .await?;
        if done.rows_affected() > 0
            && let Some(doc) = job.document_id
        {
            sqlx::query(
                "UPDATE documents SET status = 'pending', progress = 0 WHERE id = $1 AND status = 'processing'",
            )
            .bind(doc)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn document_for_job(&self, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).optional(&self.pool).await?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn knowledge_base_for_job(&self, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).optional(&self.pool).await?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE documents SET progress = $1, updated_at = $2 WHERE id = $3")
            .bind(progress.clamp(0, 100))
            .bind(lore_core::now())
            .bind(document_id)
            .run(&mut *tx)
            .await?;
        if let Some(entry) = entry {
            Self::append_log(&mut tx, document_id, &[entry]).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()> {
        let dims = result.chunks.iter().find_map(|c| c.embedding.as_ref()).map(|e| e.len() as i32);
        if let Some(dims) = dims {
            self.ensure_vector_index(dims).await?;
        }
        let mut tx = self.tx().await?;
        let owner = sqlx::query("SELECT user_id, knowledge_base_id FROM documents WHERE id = $1 FOR UPDATE")
            .bind(document_id)
            .optional(&mut *tx)
            .await?;
        if let Some(owner) = owner {
            let user_id = owner.id("user_id")?;
            let kb_id = owner.id("knowledge_base_id")?;
            let now = lore_core::now();
            // A retried job replaces whatever an interrupted attempt left behind.
            sqlx::query("DELETE FROM document_chunks WHERE document_id = $1").bind(document_id).run(&mut *tx).await?;
            let ids: Vec<Id> = result.chunks.iter().map(|_| lore_core::new_id()).collect();
            let rows: Vec<(chunks::ChunkRow<'_>, &NewChunk)> = result
                .chunks
                .iter()
                .zip(&ids)
                .enumerate()
                .map(|(position, (chunk, &id))| {
                    let row = chunks::ChunkRow {
                        id,
                        document_id,
                        knowledge_base_id: kb_id,
                        user_id,
                        chunk_index: chunk.chunk_index,
                        // A parent comes before its children.
                        parent: chunk.parent_index.filter(|&i| i < position).map(|i| ids[i]),
                        embedding_model: result.embedding_model.as_deref(),
                        created_at: now,
                        edited_at: None,
                    };
                    (row, chunk)
                })
                .collect();
            chunks::insert_chunks(&mut tx, &rows).await?;
            sqlx::query(
                "UPDATE documents SET status = 'completed', progress = 100, title = COALESCE(title, $1), raw_content = $2,
                   processed_content = $3, source_metadata = $4, error_code = NULL, error_message = NULL,
                   processed_at = $5, updated_at = $5
                 WHERE id = $6",
            )
            .bind(&result.title)
            .bind(&result.raw_content)
            .bind(&result.processed_content)
            .bind(Json(&result.source_metadata))
            .bind(now)
            .bind(document_id)
            .run(&mut *tx).await?;
            Self::append_log(&mut tx, document_id, &result.log).await?;
            // A knowledge base's first embeddings decide the space its search uses.
            if let Some(space) = &result.embedding_model {
                sqlx::query(
                    "UPDATE knowledge_bases SET embedding_space = $1 WHERE id = $2 AND embedding_space IS NULL",
                )
                .bind(space)
                .bind(kb_id)
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
        let now = lore_core::now();
        sqlx::query("DELETE FROM document_chunks WHERE document_id = $1").bind(document_id).run(&mut *tx).await?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', progress = 100, error_code = $1, error_message = $2,
               processed_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(code)
        .bind(message)
        .bind(now)
        .bind(document_id)
        .run(&mut *tx)
        .await?;
        Self::append_log(&mut tx, document_id, &log).await?;
        self.finish_job(tx, job).await
    }

    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM documents WHERE soft_deleted_at IS NULL GROUP BY status")
                .all(&self.pool)
                .await?;
        rows.iter()
            .filter_map(|r| {
                let status = r.text("status").ok().and_then(|s| DocStatus::parse(&s))?;
                Some(r.int("n").map(|n| (status, n)))
            })
            .collect()
    }

    async fn pending_jobs(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs").one(&self.pool).await
    }

    async fn queue_reembedding(&self, knowledge_base_id: Id) -> Result<()> {
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO jobs (id, kind, knowledge_base_id, run_after, created_at)
             SELECT $1, 'reembed', $2, $3, $3 WHERE NOT EXISTS
               (SELECT 1 FROM jobs WHERE kind = 'reembed' AND knowledge_base_id = $2 AND status = 'queued')",
        )
        .bind(lore_core::new_id())
        .bind(knowledge_base_id)
        .bind(now)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn chunks_to_reembed(&self, knowledge_base_id: Id, space: &str, limit: i64) -> Result<Vec<ChunkToEmbed>> {
        let rows = sqlx::query(
            "SELECT c.seq, c.content, c.content_hash, c.metadata, d.title FROM document_chunks c
             JOIN documents d ON d.id = c.document_id
             LEFT JOIN chunk_reembeddings r ON r.chunk_seq = c.seq AND r.embedding_model = $1
             WHERE c.knowledge_base_id = $2 AND c.content_embedding IS NOT NULL
               AND c.embedding_model IS DISTINCT FROM $1 AND r.chunk_seq IS NULL
             ORDER BY c.seq LIMIT $3",
        )
        .bind(space)
        .bind(knowledge_base_id)
        .bind(limit)
        .all(&self.pool)
        .await?;
        rows.iter().map(chunk_to_embed_from).collect()
    }

    async fn save_reembedded(&self, knowledge_base_id: Id, space: &str, rows: &[Reembedded]) -> Result<()> {
        let mut tx = self.tx().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO chunk_reembeddings
                   (chunk_seq, knowledge_base_id, embedding_model, content_embedding, summary_embedding)
                 SELECT seq, knowledge_base_id, $1, $2::vector, $3::vector FROM document_chunks
                 WHERE seq = $4 AND knowledge_base_id = $5
                 ON CONFLICT (chunk_seq) DO UPDATE SET embedding_model = excluded.embedding_model,
                   content_embedding = excluded.content_embedding, summary_embedding = excluded.summary_embedding",
            )
            .bind(space)
            .bind(vector_text(&row.embedding))
            .bind(row.summary_embedding.as_deref().map(vector_text))
            .bind(row.seq)
            .bind(knowledge_base_id)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_reembedding(&self, job: &Job, knowledge_base_id: Id, space: &str) -> Result<u64> {
        let dims: Option<i32> = sqlx::query_scalar(
            "SELECT vector_dims(content_embedding) FROM chunk_reembeddings
             WHERE knowledge_base_id = $1 AND embedding_model = $2 LIMIT 1",
        )
        .bind(knowledge_base_id)
        .bind(space)
        .optional(&self.pool)
        .await?;
        if let Some(dims) = dims {
            self.ensure_vector_index(dims).await?;
        }
        let mut tx = self.tx().await?;
        let switched = sqlx::query(
            "UPDATE document_chunks SET content_embedding = r.content_embedding,
                    summary_embedding = r.summary_embedding, embedding_model = r.embedding_model,
                    embedding_dims = CASE WHEN document_chunks.enabled THEN vector_dims(r.content_embedding) END
             FROM chunk_reembeddings r
             WHERE r.chunk_seq = document_chunks.seq AND r.embedding_model = $1 AND r.knowledge_base_id = $2",
        )
        .bind(space)
        .bind(knowledge_base_id)
        .run(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM chunk_reembeddings WHERE knowledge_base_id = $1")
            .bind(knowledge_base_id)
            .run(&mut *tx)
            .await?;
        sqlx::query("UPDATE knowledge_bases SET embedding_space = $1 WHERE id = $2")
            .bind(space)
            .bind(knowledge_base_id)
            .run(&mut *tx)
            .await?;
        self.finish_job(tx, job).await?;
        Ok(switched)
    }

    async fn drop_job(&self, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = $1").bind(job.id).run(&self.pool).await?;
        Ok(())
    }
}
