//! Evaluation runs on PostgreSQL (statements shared with SQLite in `crate::evaluations`), read
//! as the tenant under row-level security.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::EvaluationStore;
use sqlx::AssertSqlSafe;

use super::{AsTenant, PgStore};
use crate::evaluations as sql;
use crate::fetch::Fetch;

#[async_trait]
impl EvaluationStore for PgStore {
    async fn insert_evaluation(&self, e: &Evaluation) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(e.id)
            .bind(e.user_id)
            .bind(e.knowledge_base_id)
            .bind(&e.name)
            .bind(&e.status)
            .bind(&e.request)
            .bind(&e.results)
            .bind(&e.error_message)
            .bind(e.created_at)
            .bind(e.completed_at)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_evaluation(&self, e: &Evaluation) -> Result<()> {
        sqlx::query(sql::FINISH)
            .bind(&e.status)
            .bind(&e.results)
            .bind(&e.error_message)
            .bind(e.completed_at)
            .bind(e.id)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_evaluation(&self, user_id: Id, id: Id) -> Result<Option<Evaluation>> {
        let row = sqlx::query(AssertSqlSafe(sql::get())).bind(id).bind(user_id).tenant_one(self, user_id).await?;
        row.as_ref().map(sql::evaluation_from).transpose()
    }

    async fn list_evaluations(&self, user_id: Id, knowledge_base_id: Id) -> Result<Vec<Evaluation>> {
        let rows = sqlx::query(AssertSqlSafe(sql::list()))
            .bind(knowledge_base_id)
            .bind(user_id)
            .tenant_all(self, user_id)
            .await?;
        rows.iter().map(sql::evaluation_from).collect()
    }
}
