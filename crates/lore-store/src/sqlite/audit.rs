//! The audit log on SQLite (statements shared with PostgreSQL in `crate::audit`).

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::AuditStore;
use sqlx::AssertSqlSafe;

use super::{SqliteStore, ts};
use crate::audit::{self, Filter};
use crate::fetch::Fetch;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(audit::INSERT)
            .bind(e.id.to_string())
            .bind(ts(e.at))
            .bind(e.actor_id.map(|id| id.to_string()))
            .bind(&e.actor)
            .bind(e.owner_id.map(|id| id.to_string()))
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.ip_address)
            .bind(&e.request_id)
            .bind(e.details.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let (sql, values) = audit::list(query);
        let mut statement = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            statement = match value {
                Filter::Id(id) => statement.bind(id.to_string()),
                Filter::Text(text) => statement.bind(text.to_string()),
                Filter::Time(at) => statement.bind(ts(at)),
            };
        }
        let rows = statement.bind(query.limit).all(&self.reader).await?;
        rows.iter().map(audit::entry_from).collect()
    }

    async fn purge_audit(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query(audit::PURGE).bind(ts(before)).run(&self.writer).await?;
        Ok(done.rows_affected())
    }
}
