//! API keys, their request counters, and the usage log, on PostgreSQL.

use async_trait::async_trait;
use lore_core::error::{Error, Result};
use lore_core::limits;
use lore_core::model::*;
use lore_core::store::{ApiKeyRecord, KeyStore};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{PgStore, USAGE_FILTER, bind_usage_filter};
use crate::fetch::Fetch;
use crate::rows::*;

#[async_trait]
impl KeyStore for PgStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let id = lore_core::new_id();
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, knowledge_base_id, name, description, key_hash, key_prefix, key_suffix,
               scopes, rate_limit, daily_quota, monthly_quota, expires_at, security, created_at, updated_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)",
        )
        .bind(id)
        .bind(key.user_id)
        .bind(key.knowledge_base_id)
        .bind(&key.name)
        .bind(&key.description)
        .bind(&key.key_hash)
        .bind(&key.key_prefix)
        .bind(&key.key_suffix)
        .bind(Json(&key.scopes))
        .bind(key.rate_limit)
        .bind(key.daily_quota)
        .bind(key.monthly_quota)
        .bind(key.expires_at)
        .bind(Json(&key.security))
        .bind(now)
        .bind(key.created_by)
        .run(&self.pool)
        .await?;
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).one(&self.pool).await?;
        key_from(&row)
    }

    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>> {
        let sql =
            format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = $1 ORDER BY k.created_at DESC, k.id DESC");
        let rows = self.tenant_all(user_id, sqlx::query(AssertSqlSafe(sql)).bind(user_id)).await?;
        rows.iter().map(key_from).collect()
    }

    async fn revoke_api_key(&self, user_id: Id, key_id: Id, at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET is_active = FALSE, revoked_at = COALESCE(revoked_at, $1), updated_at = $1
             WHERE id = $2 AND user_id = $3",
        )
        .bind(at)
        .bind(key_id)
        .bind(user_id)
        .run(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET name = $1, description = $2, scopes = $3, rate_limit = $4, daily_quota = $5,
               monthly_quota = $6, expires_at = $7, security = $8, updated_at = $9
             WHERE id = $10 AND user_id = $11 AND revoked_at IS NULL",
        )
        .bind(&key.name)
        .bind(&key.description)
        .bind(Json(&key.scopes))
        .bind(key.rate_limit)
        .bind(key.daily_quota)
        .bind(key.monthly_quota)
        .bind(key.expires_at)
        .bind(Json(&key.security))
        .bind(lore_core::now())
        .bind(key.id)
        .bind(key.user_id)
        .run(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS}, {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key_hash).optional(&self.pool).await?;
        row.map(|r| Ok(ApiKeyRecord { key: key_from(&r)?, user: user_from(&r)? })).transpose()
    }

    async fn count_api_key_request(&self, key_id: Id, now: Timestamp, ip: Option<&str>) -> Result<KeyUsage> {
        let (minute, day, month) = (limits::minute_key(now), limits::day_key(now), limits::month_key(now));
        // One statement: the row lock makes concurrent requests on every node count one by one.
        let counted = sqlx::query(
            "UPDATE api_keys SET
               rate_count = CASE WHEN rate_window = $2 THEN rate_count + 1 ELSE 1 END, rate_window = $2,
               usage_count_today = CASE WHEN usage_day = $3 THEN usage_count_today + 1 ELSE 1 END, usage_day = $3,
               usage_count_month = CASE WHEN usage_month = $4 THEN usage_count_month + 1 ELSE 1 END, usage_month = $4,
               last_used_at = $5, last_used_ip = $6
             WHERE id = $1
               AND (rate_limit IS NULL OR (CASE WHEN rate_window = $2 THEN rate_count ELSE 0 END) < rate_limit)
               AND (daily_quota IS NULL OR (CASE WHEN usage_day = $3 THEN usage_count_today ELSE 0 END) < daily_quota)
               AND (monthly_quota IS NULL OR (CASE WHEN usage_month = $4 THEN usage_count_month ELSE 0 END) < monthly_quota)
             RETURNING TRUE AS allowed, rate_limit, rate_count, daily_quota, usage_count_today, monthly_quota, usage_count_month",
        )
        .bind(key_id)
        .bind(&minute)
        .bind(&day)
        .bind(&month)
        .bind(now)
        .bind(ip)
        .optional(&self.pool).await?;
        let row = match counted {
            Some(row) => row,
            None => sqlx::query(
                "SELECT FALSE AS allowed, rate_limit,
                   CASE WHEN rate_window = $2 THEN rate_count ELSE 0 END AS rate_count, daily_quota,
                   CASE WHEN usage_day = $3 THEN usage_count_today ELSE 0 END AS usage_count_today, monthly_quota,
                   CASE WHEN usage_month = $4 THEN usage_count_month ELSE 0 END AS usage_count_month
                 FROM api_keys WHERE id = $1",
            )
            .bind(key_id)
            .bind(&minute)
            .bind(&day)
            .bind(&month)
            .optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found("API key"))?,
        };
        key_usage_from(&row)
    }

    async fn save_key_counters(&self, counters: &[KeyCounters]) -> Result<()> {
        let mut tx = self.tx().await?;
        for c in counters {
            sqlx::query(
                "UPDATE api_keys SET rate_window = $1, rate_count = $2, usage_day = $3, usage_count_today = $4,
                   usage_month = $5, usage_count_month = $6, last_used_at = COALESCE($7, last_used_at),
                   last_used_ip = COALESCE($8, last_used_ip)
                 WHERE id = $9",
            )
            .bind(&c.rate_window)
            .bind(c.rate_count)
            .bind(&c.usage_day)
            .bind(c.usage_today)
            .bind(&c.usage_month)
            .bind(c.usage_month_count)
            .bind(c.last_used_at)
            .bind(&c.last_used_ip)
            .bind(c.key_id)
            .run(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn insert_usage_logs(&self, logs: &[UsageLog]) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        // One statement over arrays; a row whose user or key is gone is skipped, not fatal.
        let mut ids = Vec::with_capacity(logs.len());
        let mut keys = Vec::with_capacity(logs.len());
        let mut users = Vec::with_capacity(logs.len());
        let mut endpoints = Vec::with_capacity(logs.len());
        let mut methods = Vec::with_capacity(logs.len());
        let mut bodies = Vec::with_capacity(logs.len());
        let mut statuses = Vec::with_capacity(logs.len());
        let mut times = Vec::with_capacity(logs.len());
        let mut errors = Vec::with_capacity(logs.len());
        let mut ips = Vec::with_capacity(logs.len());
        let mut agents = Vec::with_capacity(logs.len());
        let mut created = Vec::with_capacity(logs.len());
        for log in logs {
            ids.push(log.id);
            keys.push(log.api_key_id);
            users.push(log.user_id);
            endpoints.push(log.endpoint.clone());
            methods.push(log.method.clone());
            bodies.push(log.request_body.as_ref().map(serde_json::to_string).transpose()?);
            statuses.push(log.status_code);
            times.push(log.response_time_ms);
            errors.push(log.error_message.clone());
            ips.push(log.ip_address.clone());
            agents.push(log.user_agent.clone());
            created.push(log.created_at);
        }
        sqlx::query(
            "INSERT INTO api_usage_logs (id, api_key_id, user_id, endpoint, method, request_body, status_code,
               response_time_ms, error_message, ip_address, user_agent, created_at)
             SELECT l.id, k.id, l.user_id, l.endpoint, l.method, l.body::jsonb, l.status, l.ms, l.error, l.ip, l.agent,
                    l.created
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                         $8::bigint[], $9::text[], $10::text[], $11::text[], $12::timestamptz[])
                  AS l(id, key_id, user_id, endpoint, method, body, status, ms, error, ip, agent, created)
             JOIN users u ON u.id = l.user_id
             LEFT JOIN api_keys k ON k.id = l.key_id
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(ids)
        .bind(keys)
        .bind(users)
        .bind(endpoints)
        .bind(methods)
        .bind(bodies)
        .bind(statuses)
        .bind(times)
        .bind(errors)
        .bind(ips)
        .bind(agents)
        .bind(created)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_usage_logs(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<UsageLog>> {
        let sql = format!(
            "SELECT id, api_key_id, user_id, endpoint, method, request_body, status_code, response_time_ms, error_message,
                    ip_address, user_agent, created_at
             FROM api_usage_logs WHERE {USAGE_FILTER}
             ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8"
        );
        let q = bind_usage_filter(sqlx::query(AssertSqlSafe(sql)), user_id, query).bind(query.limit).bind(query.offset);
        let rows = self.tenant_all(user_id, q).await?;
        rows.iter().map(usage_log_from).collect()
    }

    async fn daily_usage(&self, user_id: Id, query: &UsageQuery) -> Result<Vec<DailyUsage>> {
        let sql = format!(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*) AS requests,
                    COUNT(*) FILTER (WHERE status_code >= 400) AS errors,
                    AVG(response_time_ms)::float8 AS avg_ms
             FROM api_usage_logs WHERE {USAGE_FILTER}
             GROUP BY day ORDER BY day"
        );
        let rows = self.tenant_all(user_id, bind_usage_filter(sqlx::query(AssertSqlSafe(sql)), user_id, query)).await?;
        rows.iter().map(daily_usage_from).collect()
    }
}
