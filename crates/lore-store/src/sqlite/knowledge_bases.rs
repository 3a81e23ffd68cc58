//! Knowledge bases and the file-type registry, on SQLite.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::KnowledgeBaseStore;
use sqlx::AssertSqlSafe;

use super::{SqliteStore, is_unique_violation, json_text, ts};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl KnowledgeBaseStore for SqliteStore {
    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO knowledge_bases (id, user_id, name, description, icon_url, settings, created_at, updated_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(kb.user_id.to_string())
        .bind(&kb.name)
        .bind(&kb.description)
        .bind(&kb.icon_url)
        .bind(json_text(&kb.settings)?)
        .bind(&now)
        .bind(&now)
        .bind(kb.created_by.map(|id| id.to_string()))
        .run(&self.writer)
        .await?;
        self.kb_by_id(&self.writer, kb.user_id, id).await?.ok_or_else(|| Error::internal("knowledge base vanished"))
    }

    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE user_id = ? ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id.to_string()).all(&self.reader).await?;
        rows.iter().map(kb_from).collect()
    }

    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        self.kb_by_id(&self.reader, user_id, id).await
    }

    async fn update_knowledge_base(&self, user_id: Id, id: Id, patch: KbPatch) -> Result<Option<KnowledgeBase>> {
        let settings = patch.settings.as_ref().map(json_text).transpose()?;
        let done = sqlx::query(
            "UPDATE knowledge_bases SET
                name = COALESCE(?1, name),
                description = CASE WHEN ?2 THEN ?3 ELSE description END,
                icon_url = CASE WHEN ?4 THEN ?5 ELSE icon_url END,
                status = COALESCE(?6, status),
                settings = COALESCE(?7, settings),
                updated_at = ?8
             WHERE id = ?9 AND user_id = ?10",
        )
        .bind(&patch.name)
        .bind(patch.description.is_some())
        .bind(patch.description.clone().flatten())
        .bind(patch.icon_url.is_some())
        .bind(patch.icon_url.clone().flatten())
        .bind(patch.status.map(KbStatus::as_str))
        .bind(settings)
        .bind(ts(lore_core::now()))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .run(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.kb_by_id(&self.writer, user_id, id).await
    }

    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        let mut tx = self.tx().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM knowledge_bases WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let paths: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT file_path FROM documents WHERE knowledge_base_id = ?")
                .bind(id.to_string())
                .all(&mut *tx)
                .await?;
        // Children first, explicitly, so the statistics and full-text triggers see every row.
        for sql in [
            "DELETE FROM document_chunks WHERE knowledge_base_id = ?",
            "DELETE FROM documents WHERE knowledge_base_id = ?",
            "DELETE FROM knowledge_bases WHERE id = ?",
        ] {
            sqlx::query(sql).bind(id.to_string()).run(&mut *tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(paths))
    }

    async fn ensure_file_types(&self, defaults: &[NewFileType]) -> Result<()> {
        let mut tx = self.tx().await?;
        let now = ts(lore_core::now());
        for t in defaults {
            sqlx::query(
                "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
                   created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&t.name)
            .bind(&t.category)
            .bind(json_text(&t.mime_types)?)
            .bind(json_text(&t.extensions)?)
            .bind(json_text(&t.parsers)?)
            .bind(json_text(&t.embedding_models)?)
            .bind(t.is_active)
            .bind(&now)
            .bind(&now)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_file_types(&self) -> Result<Vec<FileType>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types ORDER BY id")))
            .all(&self.reader)
            .await?;
        rows.iter().map(file_type_from).collect()
    }

    async fn create_file_type(&self, t: NewFileType) -> Result<FileType> {
        let now = ts(lore_core::now());
        let result = sqlx::query(
            "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
               created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&t.name)
        .bind(&t.category)
        .bind(json_text(&t.mime_types)?)
        .bind(json_text(&t.extensions)?)
        .bind(json_text(&t.parsers)?)
        .bind(json_text(&t.embedding_models)?)
        .bind(t.is_active)
        .bind(&now)
        .bind(&now)
        .fetch_one(&self.writer)
        .await;
        let id: i64 = match result {
            Ok(row) => row.int("id")?,
            Err(e) if is_unique_violation(&e, "file_types.name") => {
                return Err(Error::new(Code::FileTypeExists, format!("a file type named '{}' exists", t.name)));
            }
            Err(e) => return Err(db_err(e)),
        };
        self.file_type_by_id(&self.writer, id).await?.ok_or_else(|| Error::internal("file type vanished"))
    }

    async fn update_file_type(&self, id: i64, p: FileTypePatch) -> Result<Option<FileType>> {
        let json_opt = |v: &Option<Vec<String>>| v.as_ref().map(json_text).transpose();
        let done = sqlx::query(
            "UPDATE file_types SET category = COALESCE(?, category), mime_types = COALESCE(?, mime_types),
               extensions = COALESCE(?, extensions), parsers = COALESCE(?, parsers),
               embedding_models = COALESCE(?, embedding_models), is_active = COALESCE(?, is_active), updated_at = ?
             WHERE id = ?",
        )
        .bind(&p.category)
        .bind(json_opt(&p.mime_types)?)
        .bind(json_opt(&p.extensions)?)
        .bind(json_opt(&p.parsers)?)
        .bind(json_opt(&p.embedding_models)?)
        .bind(p.is_active)
        .bind(ts(lore_core::now()))
        .bind(id)
        .run(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.file_type_by_id(&self.writer, id).await
    }
}
