//! The audit log on PostgreSQL (statements shared with SQLite in `crate::audit`). An owner's
//! listing runs as that tenant, so row-level security holds it to their entries as well.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::AuditStore;
use sqlx::AssertSqlSafe;

use super::PgStore;
use crate::audit::{self, Filter};
use crate::fetch::Fetch;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(audit::INSERT)
            .bind(e.id)
            .bind(e.at)
            .bind(e.actor_id)
            .bind(&e.actor)
            .bind(e.owner_id)
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.ip_address)
            .bind(&e.request_id)
            .bind(&e.details)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let (sql, values) = audit::list(query);
        let mut statement = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            statement = match value {
                Filter::Id(id) => statement.bind(id),
                Filter::Text(text) => statement.bind(text.to_string()),
                Filter::Time(at) => statement.bind(at),
            };
        }
        let statement = statement.bind(query.limit);
        let rows = match query.owner_id {
            Some(owner) => self.tenant_all(owner, statement).await?,
            None => statement.all(&self.pool).await?,
        };
        rows.iter().map(audit::entry_from).collect()
    }

    async fn purge_audit(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query(audit::PURGE).bind(before).run(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
