//! Chunks curated by hand on SQLite. A chunk is in the full-text table (`chunk_fts`, with its
//! length in `fts_length`, which the triggers sum per knowledge base) while it is enabled and
//! searchable, and in the vector index while it is enabled (the index reads `enabled` when the
//! triggers log the chunk).

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::{Chunk, ChunkEdit, Id, NewChunk, Timestamp};
use lore_core::store::ChunkStore;
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::{SqliteStore, json_text, kb_token, search, ts};
use crate::fetch::Fetch;
use crate::rows::*;
use crate::vectors;

/// Where a chunk goes and what is recorded beside its text.
pub(super) struct ChunkRow<'a> {
    pub id: &'a str,
    pub document_id: &'a str,
    pub knowledge_base_id: &'a str,
    pub user_id: &'a str,
    /// The knowledge base's full-text token ([`kb_token`]).
    pub kb_token: &'a str,
    pub chunk_index: i64,
    pub parent: Option<&'a str>,
    /// The space its embeddings are in, if it has any.
    pub embedding_model: Option<&'a str>,
    pub created_at: &'a str,
    /// Set for a chunk written by hand.
    pub edited_at: Option<&'a str>,
}

/// Inserts one chunk, and its full-text row when it is searchable (the triggers count both); its
/// seq. Processing and chunks added by hand both store chunks through here.
pub(super) async fn insert_chunk(tx: &mut SqliteConnection, row: &ChunkRow<'_>, chunk: &NewChunk) -> Result<i64> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO document_chunks (id, document_id, knowledge_base_id, user_id, content, content_hash,
           chunk_index, metadata, parent_chunk_id, created_at, content_embedding, summary_embedding,
           embedding_model, fts_length, edited_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(row.id)
    .bind(row.document_id)
    .bind(row.knowledge_base_id)
    .bind(row.user_id)
    .bind(&chunk.content)
    .bind(&chunk.content_hash)
    .bind(row.chunk_index)
    .bind(json_text(&chunk.metadata)?)
    .bind(row.parent)
    .bind(row.created_at)
    .bind(chunk.embedding.as_deref().map(vectors::to_blob))
    .bind(chunk.summary_embedding.as_deref().map(vectors::to_blob))
    .bind(chunk.embedding.as_ref().and(row.embedding_model))
    .bind(chunk.searchable.then(|| search::term_count(&chunk.fts_terms)))
    .bind(row.edited_at)
    .one(&mut *tx)
    .await?;
    if chunk.searchable {
        sqlx::query("INSERT INTO chunk_fts (rowid, terms, kb) VALUES (?, ?, ?)")
            .bind(seq)
            .bind(&chunk.fts_terms)
            .bind(row.kb_token)
            .run(&mut *tx)
            .await?;
    }
    Ok(seq)
}

#[async_trait]
impl ChunkStore for SqliteStore {
    async fn list_chunks(&self, user_id: Id, document_id: Id) -> Result<Vec<Chunk>> {
        let sql = format!(
            "SELECT {CHUNK_COLS} FROM document_chunks WHERE document_id = ? AND user_id = ? ORDER BY chunk_index"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(document_id.to_string())
            .bind(user_id.to_string())
            .all(&self.reader)
            .await?;
        rows.iter().map(chunk_from).collect()
    }

    async fn get_chunk(&self, user_id: Id, chunk_id: Id) -> Result<Option<Chunk>> {
        let sql = format!("SELECT {CHUNK_COLS} FROM document_chunks WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(chunk_id.to_string())
            .bind(user_id.to_string())
            .optional(&self.writer)
            .await?;
        row.as_ref().map(chunk_from).transpose()
    }

    async fn update_chunk(&self, user_id: Id, chunk_id: Id, edit: ChunkEdit) -> Result<Option<Chunk>> {
        let mut tx = self.tx().await?;
        let row = sqlx::query(
            "SELECT c.seq, c.knowledge_base_id, c.enabled,
                    EXISTS (SELECT 1 FROM document_chunks k WHERE k.parent_chunk_id = c.id) AS parent
             FROM document_chunks c WHERE c.id = ? AND c.user_id = ?",
        )
        .bind(chunk_id.to_string())
        .bind(user_id.to_string())
        .optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let seq = row.int("seq")?;
        let kb = row.id("knowledge_base_id")?;
        let enabled = edit.enabled.unwrap_or(row.flag("enabled")?);
        let indexed = enabled && !row.flag("parent")?;
        if let Some(text) = &edit.text {
            sqlx::query(
                "UPDATE document_chunks SET content = ?, content_hash = ?, content_embedding = ?, summary_embedding = ?,
                   embedding_model = ? WHERE seq = ?",
            )
            .bind(&text.content)
            .bind(&text.content_hash)
            .bind(text.embedding.as_deref().map(vectors::to_blob))
            .bind(text.summary_embedding.as_deref().map(vectors::to_blob))
            .bind(text.embedding.as_ref().and(text.embedding_model.as_ref()))
            .bind(seq)
            .run(&mut *tx).await?;
        }
        if let Some(metadata) = &edit.metadata {
            sqlx::query("UPDATE document_chunks SET metadata = ? WHERE seq = ?")
                .bind(json_text(metadata)?)
                .bind(seq)
                .run(&mut *tx)
                .await?;
        }
        // The full-text row is written anew: the terms may have changed, and a disabled chunk has none.
        sqlx::query("DELETE FROM chunk_fts WHERE rowid = ?").bind(seq).run(&mut *tx).await?;
        if indexed {
            sqlx::query("INSERT INTO chunk_fts (rowid, terms, kb) VALUES (?, ?, ?)")
                .bind(seq)
                .bind(&edit.fts_terms)
                .bind(kb_token(kb))
                .run(&mut *tx)
                .await?;
        }
        let sql = format!(
            "UPDATE document_chunks SET enabled = ?, fts_length = ?, edited_at = ? WHERE seq = ? RETURNING {CHUNK_COLS}"
        );
        let chunk = sqlx::query(AssertSqlSafe(sql))
            .bind(enabled)
            .bind(indexed.then(|| search::term_count(&edit.fts_terms)))
            .bind(ts(edit.at))
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
        let mut tx = self.tx().await?;
        let owner = sqlx::query(
            "SELECT knowledge_base_id, (SELECT COALESCE(MAX(chunk_index), -1) + 1 FROM document_chunks
                                        WHERE document_id = d.id) AS next
             FROM documents d WHERE d.id = ? AND d.user_id = ? AND d.status = 'completed' AND d.soft_deleted_at IS NULL",
        )
        .bind(document_id.to_string())
        .bind(user_id.to_string())
        .optional(&mut *tx).await?;
        let Some(owner) = owner else { return Ok(None) };
        let kb = owner.id("knowledge_base_id")?;
        let (id, document, kb_id, user, at) =
            (lore_core::new_id().to_string(), document_id.to_string(), kb.to_string(), user_id.to_string(), ts(at));
        let row = ChunkRow {
            id: &id,
            document_id: &document,
            knowledge_base_id: &kb_id,
            user_id: &user,
            kb_token: &kb_token(kb),
            chunk_index: owner.int("next")?,
            parent: None,
            embedding_model: embedding_model.as_deref(),
            created_at: &at,
            edited_at: Some(&at),
        };
        let seq = insert_chunk(&mut tx, &row, &chunk).await?;
        let sql = format!("SELECT {CHUNK_COLS} FROM document_chunks WHERE seq = ?");
        let added = chunk_from(&sqlx::query(AssertSqlSafe(sql)).bind(seq).one(&mut *tx).await?)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(added))
    }
}
