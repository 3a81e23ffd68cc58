//! API keys, their request counters, and the usage log, on SQLite.

use async_trait::async_trait;
use lore_core::error::{Error, Result};
use lore_core::limits;
use lore_core::model::*;
use lore_core::store::{ApiKeyRecord, KeyStore};
use sqlx::AssertSqlSafe;

use super::{SqliteStore, USAGE_FILTER, bind_usage_filter, bind_usage_log, json_text, ts};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, knowledge_base_id, name, description, key_hash, key_prefix, key_suffix,
               scopes, rate_limit, daily_quota, monthly_quota, expires_at, security, created_at, updated_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(key.user_id.to_string())
        .bind(key.knowledge_base_id.map(|k| k.to_string()))
        .bind(&key.name)
        .bind(&key.description)
        .bind(&key.key_hash)
        .bind(&key.key_prefix)
        .bind(&key.key_suffix)
        .bind(json_text(&key.scopes)?)
        .bind(key.rate_limit)
        .bind(key.daily_quota)
        .bind(key.monthly_quota)
        .bind(key.expires_at.map(ts))
        .bind(json_text(&key.security)?)
        .bind(&now)
        .bind(&now)
        .bind(key.created_by.map(|id| id.to_string()))
        .run(&self.writer)
        .await?;
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).one(&self.writer).await?;
        key_from(&row)
    }

    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>> {
        let sql =
            format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = ? ORDER BY k.created_at DESC, k.id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id.to_string()).all(&self.reader).await?;
        rows.iter().map(key_from).collect()
    }

    async fn revoke_api_key(&self, user_id: Id, key_id: Id, at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET is_active = 0, revoked_at = COALESCE(revoked_at, ?), updated_at = ?
             WHERE id = ? AND user_id = ?",
        )
        .bind(ts(at))
        .bind(ts(at))
        .bind(key_id.to_string())
        .bind(user_id.to_string())
        .run(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET name = ?, description = ?, scopes = ?, rate_limit = ?, daily_quota = ?, monthly_quota = ?,
               expires_at = ?, security = ?, updated_at = ?
             WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(&key.name)
        .bind(&key.description)
        .bind(json_text(&key.scopes)?)
        .bind(key.rate_limit)
        .bind(key.daily_quota)
        .bind(key.monthly_quota)
        .bind(key.expires_at.map(ts))
        .bind(json_text(&key.security)?)
        .bind(ts(lore_core::now()))
        .bind(key.id.to_string())
        .bind(key.user_id.to_string())
        .run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS}, {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key_hash).optional(&self.reader).await?;
        row.map(|r| Ok(ApiKeyRecord { key: key_from(&r)?, user: user_from(&r)? })).transpose()
    }

    async fn count_api_key_request(&self, key_id: Id, now: Timestamp, ip: Option<&str>) -> Result<KeyUsage> {
        let (minute, day, month) = (limits::minute_key(now), limits::day_key(now), limits::month_key(now));
        let mut tx = self.tx().await?;
        let counted = sqlx::query(
            "UPDATE api_keys SET
               rate_count = CASE WHEN rate_window = ?2 THEN rate_count + 1 ELSE 1 END, rate_window = ?2,
               usage_count_today = CASE WHEN usage_day = ?3 THEN usage_count_today + 1 ELSE 1 END, usage_day = ?3,
               usage_count_month = CASE WHEN usage_month = ?4 THEN usage_count_month + 1 ELSE 1 END, usage_month = ?4,
               last_used_at = ?5, last_used_ip = ?6
             WHERE id = ?1
               AND (rate_limit IS NULL OR (CASE WHEN rate_window = ?2 THEN rate_count ELSE 0 END) < rate_limit)
               AND (daily_quota IS NULL OR (CASE WHEN usage_day = ?3 THEN usage_count_today ELSE 0 END) < daily_quota)
               AND (monthly_quota IS NULL OR (CASE WHEN usage_month = ?4 THEN usage_count_month ELSE 0 END) < monthly_quota)
             RETURNING 1 AS allowed, rate_limit, rate_count, daily_quota, usage_count_today, monthly_quota, usage_count_month",
        )
        .bind(key_id.to_string())
        .bind(&minute)
        .bind(&day)
        .bind(&month)
        .bind(ts(now))
        .bind(ip)
        .optional(&mut *tx).await?;
        let row = match counted {
            Some(row) => row,
            None => sqlx::query(
                "SELECT 0 AS allowed, rate_limit,
                   CASE WHEN rate_window = ?2 THEN rate_count ELSE 0 END AS rate_count, daily_quota,
                   CASE WHEN usage_day = ?3 THEN usage_count_today ELSE 0 END AS usage_count_today, monthly_quota,
                   CASE WHEN usage_month = ?4 THEN usage_count_month ELSE 0 END AS usage_count_month
                 FROM api_keys WHERE id = ?1",
            )
            .bind(key_id.to_string())
            .bind(&minute)
            .bind(&day)
            .bind(&month)
            .optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("API key"))?,
        };
        tx.commit().await.map_err(db_err)?;
        key_usage_from(&row)
    }

    async fn save_key_counters(&self, counters: &[KeyCounters]) -> Result<()> {
        let mut tx = self.tx().await?;
        for c in counters {
            sqlx::query(
                "UPDATE api_keys SET rate_window = ?, rate_count = ?, usage_day = ?, usage_count_today = ?,
                   usage_month = ?, usage_count_month = ?, last_used_at = COALESCE(?, last_used_at),
                   last_used_ip = COALESCE(?, last_used_ip)
                 WHERE id = ?",
            )
            .bind(&c.rate_window)
            .bind(c.rate_count)
            .bind(&c.usage_day)
            .bind(c.usage_today)
            .bind(&c.usage_month)
            .bind(c.usage_month_count)
            .bind(c.last_used_at.map(ts))
            .bind(&c.last_used_ip)
            .bind(c.key_id.to_string())
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn insert_usage_logs(&self, logs: &[UsageLog]) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        // Many rows per statement: the writer keeps up with tens of thousands of requests a second.
        const ROWS: usize = 64;
        let mut tx = self.tx().await?;
        let mut failed = false;
        for batch in logs.chunks(ROWS) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
            let sql = format!(
                "INSERT INTO api_usage_logs (id, api_key_id, user_id, endpoint, method, request_body, status_code,
                   response_time_ms, error_message, ip_address, user_agent, created_at) VALUES {values}"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for log in batch {
                q = bind_usage_log(q, log)?;
            }
            if q.execute(&mut *tx).await.is_err() {
                failed = true;
                break;
            }
        }
        if !failed {
            return tx.commit().await.map_err(db_err);
        }
        drop(tx);
        // A row whose user is gone fails the whole statement: insert one by one, skipping those.
        let mut tx = self.tx().await?;
        for log in logs {
            let q = sqlx::query(
                "INSERT INTO api_usage_logs (id, api_key_id, user_id, endpoint, method, request_body, status_code,
                   response_time_ms, error_message, ip_address, user_agent, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?3)
                   AND (?2 IS NULL OR EXISTS (SELECT 1 FROM api_keys WHERE id = ?2))",
            );
            bind_usage_log(q, log)?.run(&mut *tx).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_usage_logs(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<UsageLog>> {
        let sql = format!(
            "SELECT id, api_key_id, user_id, endpoint, method, request_body, status_code, response_time_ms, error_message,
                    ip_address, user_agent, created_at
             FROM api_usage_logs WHERE {USAGE_FILTER}
             ORDER BY created_at DESC, id DESC LIMIT ?7 OFFSET ?8"
        );
        let rows = bind_usage_filter(sqlx::query(AssertSqlSafe(sql)), user_id, query)
            .bind(query.limit)
            .bind(query.offset)
            .all(&self.reader)
            .await?;
        rows.iter().map(usage_log_from).collect()
    }

    async fn daily_usage(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<DailyUsage>> {
        let sql = format!(
            "SELECT substr(created_at, 1, 10) AS day, COUNT(*) AS requests,
                    SUM(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END) AS errors,
                    AVG(response_time_ms) AS avg_ms
             FROM api_usage_logs WHERE {USAGE_FILTER}
             GROUP BY day ORDER BY day"
        );
        let rows = bind_usage_filter(sqlx::query(AssertSqlSafe(sql)), user_id, query).all(&self.reader).await?;
        rows.iter().map(daily_usage_from).collect()
    }
}
