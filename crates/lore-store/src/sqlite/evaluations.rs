//! Evaluation runs on SQLite (statements shared with PostgreSQL in `crate::evaluations`).

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::EvaluationStore;
use sqlx::AssertSqlSafe;

use super::{SqliteStore, ts};
use crate::evaluations as sql;
use crate::fetch::Fetch;

#[async_trait]
impl EvaluationStore for SqliteStore {
    async fn insert_evaluation(&self, e: &Evaluation) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(e.id.to_string())
            .bind(e.user_id.to_string())
            .bind(e.knowledge_base_id.to_string())
            .bind(&e.name)
            .bind(&e.status)
            .bind(e.request.to_string())
            .bind(e.results.to_string())
            .bind(&e.error_message)
            .bind(ts(e.created_at))
            .bind(e.completed_at.map(ts))
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn finish_evaluation(&self, e: &Evaluation) -> Result<()> {
        sqlx::query(sql::FINISH)
            .bind(&e.status)
            .bind(e.results.to_string())
            .bind(&e.error_message)
            .bind(e.completed_at.map(ts))
            .bind(e.id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn get_evaluation(&self, user_id: Id, id: Id) -> Result<Option<Evaluation>> {
        let row = sqlx::query(AssertSqlSafe(sql::get()))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .optional(&self.reader)
            .await?;
        row.as_ref().map(sql::evaluation_from).transpose()
    }

    async fn list_evaluations(&self, user_id: Id, knowledge_base_id: Id) -> Result<Vec<Evaluation>> {
        let rows = sqlx::query(AssertSqlSafe(sql::list()))
            .bind(knowledge_base_id.to_string())
            .bind(user_id.to_string())
            .all(&self.reader)
            .await?;
        rows.iter().map(sql::evaluation_from).collect()
    }
}
