//! Knowledge bases and the file-type registry, on PostgreSQL.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::KnowledgeBaseStore;
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{PgStore, is_unique_violation, retry_when_busy};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl KnowledgeBaseStore for PgStore {
    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO knowledge_bases (id, user_id, name, description, icon_url, settings, created_at, updated_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(id)
        .bind(kb.user_id)
        .bind(&kb.name)
        .bind(&kb.description)
        .bind(&kb.icon_url)
        .bind(Json(&kb.settings))
        .bind(lore_core::now())
        .bind(kb.created_by)
        .run(&self.pool)
        .await?;
        self.kb_by_id(kb.user_id, id).await?.ok_or_else(|| Error::internal("knowledge base vanished"))
    }

    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
        let rows = self.tenant_all(user_id, sqlx::query(AssertSqlSafe(sql)).bind(user_id)).await?;
        rows.iter().map(kb_from).collect()
    }

    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        self.kb_by_id(user_id, id).await
    }

    async fn update_knowledge_base(&self, user_id: Id, id: Id, patch: KbPatch) -> Result<Option<KnowledgeBase>> {
        let done = sqlx::query(
            "UPDATE knowledge_bases SET
                name = COALESCE($1, name),
                description = CASE WHEN $2 THEN $3 ELSE description END,
                icon_url = CASE WHEN $4 THEN $5 ELSE icon_url END,
                status = COALESCE($6, status),
                settings = COALESCE($7, settings),
                updated_at = $8
             WHERE id = $9 AND user_id = $10",
        )
        .bind(&patch.name)
        .bind(patch.description.is_some())
        .bind(patch.description.clone().flatten())
        .bind(patch.icon_url.is_some())
        .bind(patch.icon_url.clone().flatten())
        .bind(patch.status.map(KbStatus::as_str))
        .bind(patch.settings.as_ref().map(Json))
        .bind(lore_core::now())
        .bind(id)
        .bind(user_id)
        .run(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.kb_by_id(user_id, id).await
    }

    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        retry_when_busy(|| self.delete_knowledge_base_once(user_id, id)).await
    }

    async fn ensure_file_types(&self, defaults: &[NewFileType]) -> Result<()> {
        let mut tx = self.tx().await?;
        let now = lore_core::now();
        for t in defaults {
            sqlx::query(
                "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
                   created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&t.name)
            .bind(&t.category)
            .bind(Json(&t.mime_types))
            .bind(Json(&t.extensions))
            .bind(Json(&t.parsers))
            .bind(Json(&t.embedding_models))
            .bind(t.is_active)
            .bind(now)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_file_types(&self) -> Result<Vec<FileType>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types ORDER BY id")))
            .all(&self.pool)
            .await?;
        rows.iter().map(file_type_from).collect()
    }

    async fn create_file_type(&self, t: NewFileType) -> Result<FileType> {
        let result = sqlx::query(
            "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
               created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&t.name)
        .bind(&t.category)
        .bind(Json(&t.mime_types))
        .bind(Json(&t.extensions))
        .bind(Json(&t.parsers))
        .bind(Json(&t.embedding_models))
        .bind(t.is_active)
        .bind(lore_core::now())
        .fetch_one(&self.pool)
        .await;
        let id: i64 = match result {
            Ok(row) => row.int("id")?,
            Err(e) if is_unique_violation(&e, "file_types_name") => {
                return Err(Error::new(Code::FileTypeExists, format!("a file type named '{}' exists", t.name)));
            }
            Err(e) => return Err(db_err(e)),
        };
        self.file_type_by_id(id).await?.ok_or_else(|| Error::internal("file type vanished"))
    }

    async fn update_file_type(&self, id: i64, p: FileTypePatch) -> Result<Option<FileType>> {
        let done = sqlx::query(
            "UPDATE file_types SET category = COALESCE($1, category), mime_types = COALESCE($2, mime_types),
               extensions = COALESCE($3, extensions), parsers = COALESCE($4, parsers),
               embedding_models = COALESCE($5, embedding_models), is_active = COALESCE($6, is_active), updated_at = $7
             WHERE id = $8",
        )
        .bind(&p.category)
        .bind(p.mime_types.as_ref().map(Json))
        .bind(p.extensions.as_ref().map(Json))
        .bind(p.parsers.as_ref().map(Json))
        .bind(p.embedding_models.as_ref().map(Json))
        .bind(p.is_active)
        .bind(lore_core::now())
        .bind(id)
        .run(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.file_type_by_id(id).await
    }
}

impl PgStore {
    /// One attempt at deleting a knowledge base. Locks are taken in the order every document
    /// transaction takes them (the document's row, then the knowledge base's, which the statistics
    /// triggers and foreign keys touch), so a worker completing a document in it never deadlocks
    /// with the delete: the delete waits for it, then removes what it wrote.
    async fn delete_knowledge_base_once(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        let mut tx = self.tx().await?;
        let exists: Option<Id> = sqlx::query_scalar("SELECT id FROM knowledge_bases WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut paths: Vec<String> =
            sqlx::query_scalar("SELECT file_path FROM documents WHERE knowledge_base_id = $1 ORDER BY id FOR UPDATE")
                .bind(id)
                .all(&mut *tx)
                .await?;
        // Children first, explicitly, so the statistics triggers see every row.
        for sql in [
            "DELETE FROM document_chunks WHERE knowledge_base_id = $1",
            "DELETE FROM documents WHERE knowledge_base_id = $1",
            "DELETE FROM knowledge_bases WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).run(&mut *tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        // Content-addressed blobs can be shared; FOR UPDATE rules out SELECT DISTINCT.
        paths.sort();
        paths.dedup();
        Ok(Some(paths))
    }
}
