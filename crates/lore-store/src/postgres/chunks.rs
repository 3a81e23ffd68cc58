//! Chunks curated by hand on PostgreSQL. A chunk is matched by full text while its `fts` is set
//! and by vectors while its `embedding_dims` is (every vector search and partial HNSW index
//! requires it): a disabled chunk has neither, and gets both back when enabled again.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::{Chunk, ChunkEdit, Id, NewChunk, Timestamp};
use lore_core::store::ChunkStore;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection};

use super::{PgStore, set_tenant, vector_text};
use crate::fetch::Fetch;
use crate::rows::*;

/// Where a chunk goes and what is recorded beside its text.
#[derive(Clone, Copy)]
pub(super) struct ChunkRow<'a> {
    pub id: Id,
    pub document_id: Id,
    pub knowledge_base_id: Id,
    pub user_id: Id,
    pub chunk_index: i64,
    pub parent: Option<Id>,
    /// The space its embeddings are in, if it has any.
    pub embedding_model: Option<&'a str>,
    pub created_at: Timestamp,
    /// Set for a chunk written by hand.
    pub edited_at: Option<Timestamp>,
}

/// Chunks inserted by one statement: a long document takes a few round trips, not one per chunk.
const INSERT_BATCH: usize = 500;

/// Inserts chunks, each with its full-text vector when it is searchable and its dimension when
/// it is embedded (which puts it in the vector index), in batches of [`INSERT_BATCH`] rows passed
/// as arrays. A chunk's parent comes earlier in the list (or in an earlier batch). Processing and
/// chunks added by hand both store chunks through here.
pub(super) async fn insert_chunks(tx: &mut PgConnection, rows: &[(ChunkRow<'_>, &NewChunk)]) -> Result<()> {
    for batch in rows.chunks(INSERT_BATCH) {
        let vectors = |v: fn(&NewChunk) -> Option<&Vec<f32>>| -> Vec<Option<String>> {
            batch.iter().map(|(_, c)| v(c).map(|e| vector_text(e))).collect()
        };
        sqlx::query(
            "INSERT INTO document_chunks (id, document_id, knowledge_base_id, user_id, content, content_hash,
               chunk_index, metadata, parent_chunk_id, created_at, content_embedding, summary_embedding,
               embedding_dims, embedding_model, fts, edited_at)
             SELECT id, document_id, knowledge_base_id, user_id, content, content_hash, chunk_index, metadata,
                    parent_chunk_id, created_at, content_embedding::vector, summary_embedding::vector,
                    embedding_dims, embedding_model, CASE WHEN searchable THEN to_tsvector('simple', terms) END,
                    edited_at
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[],
                         $8::jsonb[], $9::uuid[], $10::timestamptz[], $11::text[], $12::text[], $13::int4[],
                         $14::text[], $15::bool[], $16::text[], $17::timestamptz[])
               AS u(id, document_id, knowledge_base_id, user_id, content, content_hash, chunk_index, metadata,
                    parent_chunk_id, created_at, content_embedding, summary_embedding, embedding_dims,
                    embedding_model, searchable, terms, edited_at)",
        )
        .bind(batch.iter().map(|(r, _)| r.id).collect::<Vec<Id>>())
        .bind(batch.iter().map(|(r, _)| r.document_id).collect::<Vec<Id>>())
        .bind(batch.iter().map(|(r, _)| r.knowledge_base_id).collect::<Vec<Id>>())
        .bind(batch.iter().map(|(r, _)| r.user_id).collect::<Vec<Id>>())
        .bind(batch.iter().map(|(_, c)| c.content.as_str()).collect::<Vec<&str>>())
        .bind(batch.iter().map(|(_, c)| c.content_hash.as_str()).collect::<Vec<&str>>())
        .bind(batch.iter().map(|(r, _)| r.chunk_index).collect::<Vec<i64>>())
        .bind(batch.iter().map(|(_, c)| Json(&c.metadata)).collect::<Vec<_>>())
        .bind(batch.iter().map(|(r, _)| r.parent).collect::<Vec<Option<Id>>>())
        .bind(batch.iter().map(|(r, _)| r.created_at).collect::<Vec<Timestamp>>())
        .bind(vectors(|c| c.embedding.as_ref()))
        .bind(vectors(|c| c.summary_embedding.as_ref()))
        .bind(batch.iter().map(|(_, c)| c.embedding.as_ref().map(|e| e.len() as i32)).collect::<Vec<Option<i32>>>())
        .bind(batch.iter().map(|(r, c)| c.embedding.as_ref().and(r.embedding_model)).collect::<Vec<Option<&str>>>())
        .bind(batch.iter().map(|(_, c)| c.searchable).collect::<Vec<bool>>())
        .bind(batch.iter().map(|(_, c)| c.fts_terms.as_str()).collect::<Vec<&str>>())
        .bind(batch.iter().map(|(r, _)| r.edited_at).collect::<Vec<Option<Timestamp>>>())
        .run(&mut *tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl ChunkStore for PgStore {
    async fn list_chunks(&self, user_id: Id, document_id: Id) -> Result<Vec<Chunk>> {
        let sql = format!(
            "SELECT {CHUNK_COLS} FROM document_chunks WHERE document_id = $1 AND user_id = $2 ORDER BY chunk_index"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(document_id).bind(user_id);
        let rows = self.tenant_all(user_id, rows).await?;
        rows.iter().map(chunk_from).collect()
    }

    async fn get_chunk(&self, user_id: Id, chunk_id: Id) -> Result<Option<Chunk>> {
        let sql = format!("SELECT {CHUNK_COLS} FROM document_chunks WHERE id = $1 AND user_id = $2");
        let row = self.tenant_one(user_id, sqlx::query(AssertSqlSafe(sql)).bind(chunk_id).bind(user_id)).await?;
        row.as_ref().map(chunk_from).transpose()
    }

    async fn update_chunk(&self, user_id: Id, chunk_id: Id, edit: ChunkEdit) -> Result<Option<Chunk>> {
        if let Some(dims) = edit.text.as_ref().and_then(|t| t.embedding.as_ref()).map(|e| e.len() as i32) {
            self.ensure_vector_index(dims).await?;
        }
        let mut tx = self.tx().await?;
        set_tenant(&mut tx, user_id).await?;
        let row = sqlx::query(
            "SELECT c.seq, c.enabled, EXISTS (SELECT 1 FROM document_chunks k WHERE k.parent_chunk_id = c.id) AS parent
             FROM document_chunks c WHERE c.id = $1 AND c.user_id = $2 FOR UPDATE OF c",
        )
        .bind(chunk_id)
        .bind(user_id)
        .optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let seq = row.int("seq")?;
        let enabled = edit.enabled.unwrap_or(row.flag("enabled")?);
        let indexed = enabled && !row.flag("parent")?;
        if let Some(text) = &edit.text {
            let embedded = text.embedding.as_ref();
            sqlx::query(
                "UPDATE document_chunks SET content = $1, content_hash = $2, content_embedding = $3::vector,
                   summary_embedding = $4::vector, embedding_model = $5 WHERE seq = $6",
            )
            .bind(&text.content)
            .bind(&text.content_hash)
            .bind(embedded.map(|e| vector_text(e)))
            .bind(text.summary_embedding.as_deref().map(vector_text))
            .bind(embedded.and(text.embedding_model.as_ref()))
            .bind(seq)
            .run(&mut *tx)
            .await?;
        }
        if let Some(metadata) = &edit.metadata {
            sqlx::query("UPDATE document_chunks SET metadata = $1 WHERE seq = $2")
                .bind(Json(metadata))
                .bind(seq)
                .run(&mut *tx)
                .await?;
        }
        let sql = format!(
            "UPDATE document_chunks SET enabled = $1, edited_at = $2,
               fts = CASE WHEN $3 THEN to_tsvector('simple', $4) END,
               embedding_dims = CASE WHEN $1 AND content_embedding IS NOT NULL THEN vector_dims(content_embedding) END
             WHERE seq = $5 RETURNING {CHUNK_COLS}"
        );
        let chunk = sqlx::query(AssertSqlSafe(sql))
            .bind(enabled)
            .bind(edit.at)
            .bind(indexed)
            .bind(&edit.fts_terms)
            .bind(seq)
            .one(&mut *tx)
            .await?;
        let chunk = chunk_from(&chunk)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(chunk))
    }

    async fn add_chunk(
        &self, user_id: Id, document_id: Id, chunk: NewChunk, embedding_model: Option<String>, at: Timestamp,
    ) -> Result<Option<Chunk>> {
        let embedded = chunk.embedding.as_ref();
        if let Some(e) = embedded {
            self.ensure_vector_index(e.len() as i32).await?;
        }
        let mut tx = self.tx().await?;
        set_tenant(&mut tx, user_id).await?;
        // The document's row is locked so that two chunks added at once take different positions.
        let owner = sqlx::query(
            "SELECT knowledge_base_id FROM documents
             WHERE id = $1 AND user_id = $2 AND status = 'completed' AND soft_deleted_at IS NULL FOR UPDATE",
        )
        .bind(document_id)
        .bind(user_id)
        .optional(&mut *tx)
        .await?;
        let Some(owner) = owner else { return Ok(None) };
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(chunk_index), -1) + 1 FROM document_chunks WHERE document_id = $1")
                .bind(document_id)
                .one(&mut *tx)
                .await?;
        let row = ChunkRow {
            id: lore_core::new_id(),
            document_id,
            knowledge_base_id: owner.id("knowledge_base_id")?,
            user_id,
            chunk_index: next,
            parent: None,
            embedding_model: embedding_model.as_deref(),
            created_at: at,
            edited_at: Some(at),
        };
        insert_chunks(&mut tx, &[(row, &chunk)]).await?;
        let sql = format!("SELECT {CHUNK_COLS} FROM document_chunks WHERE id = $1");
        let added = chunk_from(&sqlx::query(AssertSqlSafe(sql)).bind(row.id).one(&mut *tx).await?)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(added))
    }
}
