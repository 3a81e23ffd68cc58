//! The installation's settings and its node on SQLite (the same tables as on PostgreSQL).

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::ClusterStore;

use super::{SqliteStore, ts};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn cluster_setting(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM cluster_settings WHERE name = ?").bind(name).optional(&self.reader).await
    }

    async fn swap_cluster_setting(&self, name: &str, expected: Option<&str>, value: &str) -> Result<bool> {
        let now = ts(lore_core::now());
        let done = match expected {
            None => sqlx::query(
                "INSERT INTO cluster_settings (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .bind(&now)
            .execute(&self.writer)
            .await,
            Some(old) => {
                sqlx::query("UPDATE cluster_settings SET value = ?, updated_at = ? WHERE name = ? AND value = ?")
                    .bind(value)
                    .bind(&now)
                    .bind(name)
                    .bind(old)
                    .execute(&self.writer)
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn heartbeat(&self, node: &NodeBeat) -> Result<()> {
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO nodes (id, version, address, schema_version, workers, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&node.id)
        .bind(&node.version)
        .bind(&node.address)
        .bind(node.schema_version)
        .bind(node.workers)
        .bind(ts(node.started_at))
        .bind(ts(now))
        .run(&self.writer).await?;
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < ?")
            .bind(ts(now - FORGET_NODES_AFTER))
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn leave(&self, node_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = ?").bind(node_id).run(&self.writer).await?;
        Ok(())
    }

    async fn list_nodes(&self, alive_since: Timestamp) -> Result<Vec<Node>> {
        let rows = sqlx::query(
            "SELECT id, version, address, schema_version, workers, started_at, heartbeat_at FROM nodes
             WHERE heartbeat_at >= ? ORDER BY started_at, id",
        )
        .bind(ts(alive_since))
        .all(&self.reader)
        .await?;
        let mut nodes = rows.iter().map(node_from).collect::<Result<Vec<_>>>()?;
        let now = ts(lore_core::now());
        let jobs = sqlx::query(
            "SELECT id, kind, document_id, knowledge_base_id, locked_by, locked_until FROM jobs
             WHERE status = 'running' AND locked_until >= ? ORDER BY locked_until",
        )
        .bind(&now)
        .all(&self.reader)
        .await?
        .iter()
        .map(held_job_from)
        .collect::<Result<Vec<_>>>()?;
        let syncs =
            sqlx::query("SELECT id, lease_owner FROM data_sources WHERE lease_until >= ? AND lease_owner IS NOT NULL")
                .bind(&now)
                .all(&self.reader)
                .await?
                .iter()
                .map(|r| Ok((r.id("id")?, r.text("lease_owner")?)))
                .collect::<Result<Vec<_>>>()?;
        attach_holdings(&mut nodes, jobs, syncs);
        Ok(nodes)
    }
}
