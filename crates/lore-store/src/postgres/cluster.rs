//! The installation's settings and the nodes sharing the database, on PostgreSQL.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::ClusterStore;

use super::PgStore;
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl ClusterStore for PgStore {
    async fn cluster_setting(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM cluster_settings WHERE name = $1").bind(name).optional(&self.pool).await
    }

    async fn swap_cluster_setting(&self, name: &str, expected: Option<&str>, value: &str) -> Result<bool> {
        let done = match expected {
            None => {
                sqlx::query("INSERT INTO cluster_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(value)
                    .execute(&self.pool)
                    .await
            }
            Some(old) => {
                sqlx::query("UPDATE cluster_settings SET value = $1, updated_at = now() WHERE name = $2 AND value = $3")
                    .bind(value)
                    .bind(name)
                    .bind(old)
                    .execute(&self.pool)
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn heartbeat(&self, node: &NodeBeat) -> Result<()> {
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO nodes (id, version, address, schema_version, workers, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&node.id)
        .bind(&node.version)
        .bind(&node.address)
        .bind(node.schema_version)
        .bind(node.workers)
        .bind(node.started_at)
        .bind(now)
        .run(&self.pool)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1").bind(now - FORGET_NODES_AFTER).run(&self.pool).await?;
        Ok(())
    }

    async fn leave(&self, node_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = $1").bind(node_id).run(&self.pool).await?;
        Ok(())
    }

    async fn list_nodes(&self, alive_since: Timestamp) -> Result<Vec<Node>> {
        let rows = sqlx::query(
            "SELECT id, version, address, schema_version, workers, started_at, heartbeat_at FROM nodes
             WHERE heartbeat_at >= $1 ORDER BY started_at, id",
        )
        .bind(alive_since)
        .all(&self.pool)
        .await?;
        let mut nodes = rows.iter().map(node_from).collect::<Result<Vec<_>>>()?;
        let now = lore_core::now();
        let jobs = sqlx::query(
            "SELECT id, kind, document_id, knowledge_base_id, locked_by, locked_until FROM jobs
             WHERE status = 'running' AND locked_until >= $1 ORDER BY locked_until",
        )
        .bind(now)
        .all(&self.pool)
        .await?
        .iter()
        .map(held_job_from)
        .collect::<Result<Vec<_>>>()?;
        let syncs =
            sqlx::query("SELECT id, lease_owner FROM data_sources WHERE lease_until >= $1 AND lease_owner IS NOT NULL")
                .bind(now)
                .all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.id("id")?, r.text("lease_owner")?)))
                .collect::<Result<Vec<_>>>()?;
        attach_holdings(&mut nodes, jobs, syncs);
        Ok(nodes)
    }
}
