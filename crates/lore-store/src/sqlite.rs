//! The embedded store: SQLite in WAL mode. One writer connection (SQLite allows one writer at a
//! time; a pool of writers only produces "database is locked"), a pool of readers beside it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::limits;
use lore_core::model::*;
use lore_core::store::{ApiKeyRecord, SessionRecord, Store, Upload};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, Row, Sqlite, Transaction};

use crate::rows::*;
use crate::schema;
use crate::vectors::{self, Field, SpaceKey, VectorIndexes};

mod agents;
mod chunks;
mod cluster;
mod search;
mod sources;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    vectors: VectorIndexes,
}

/// Filtered vector queries whose filter admits at most this many chunks are answered exactly,
/// by comparing against each admitted embedding, instead of walking the graph.
const EXACT_SEARCH_MAX: i64 = 20_000;

fn is_unique_violation(err: &sqlx::Error, column: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation() && db.message().contains(column),
        _ => false,
    }
}

/// A username or email conflict as its own error; anything else as a database error.
fn user_conflict(e: sqlx::Error) -> Error {
    if is_unique_violation(&e, "users.username") {
        Error::new(Code::UsernameTaken, "this username is already taken")
    } else if is_unique_violation(&e, "users.email") {
        Error::new(Code::EmailTaken, "an account with this email already exists")
    } else {
        db_err(e)
    }
}

/// Timestamps are stored as sortable UTC text with millisecond precision, the same format the
/// triggers' `strftime('%Y-%m-%dT%H:%M:%fZ')` writes.
pub(crate) fn ts(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds a usage row's twelve columns, in table order.
fn bind_usage_log<'q>(q: SqliteQuery<'q>, log: &'q UsageLog) -> Result<SqliteQuery<'q>> {
    Ok(q.bind(log.id.to_string())
        .bind(log.api_key_id.map(|k| k.to_string()))
        .bind(log.user_id.to_string())
        .bind(&log.endpoint)
        .bind(&log.method)
        .bind(log.request_body.as_ref().map(json_text).transpose()?)
        .bind(log.status_code)
        .bind(log.response_time_ms)
        .bind(&log.error_message)
        .bind(&log.ip_address)
        .bind(&log.user_agent)
        .bind(ts(log.created_at)))
}

/// The usage-log filter; parameters ?1 to ?6.
const USAGE_FILTER: &str = "user_id = ?1 AND (?2 IS NULL OR api_key_id = ?2) AND (?3 IS NULL OR created_at >= ?3)
    AND (?4 IS NULL OR created_at < ?4) AND (?5 IS NULL OR (status_code >= 400) = ?5) AND (?6 IS NULL OR endpoint = ?6)";

fn bind_usage_filter<'q>(q: SqliteQuery<'q>, user_id: Id, query: &UsageQuery) -> SqliteQuery<'q> {
    q.bind(user_id.to_string())
        .bind(query.api_key_id.map(|k| k.to_string()))
        .bind(query.from.map(ts))
        .bind(query.to.map(ts))
        .bind(query.errors)
        .bind(query.endpoint.clone())
}

fn json_text(value: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(path, vectors::DEFAULT_EF_SEARCH).await
    }

    /// Opens with the vector index's search breadth (HNSW `ef_search`) chosen.
    pub async fn open_with(path: &Path, ef_search: usize) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-32000")
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            // When SQLite rolls a transaction back by itself (as it may on SQLITE_FULL or an I/O
            // error), sqlx's ROLLBACK fails and it still counts the transaction open: every later
            // "transaction" would then be a savepoint inside one that never commits, and nothing
            // would reach the disk again. Found by `lore bench faults`; such a connection is
            // replaced. (The ping lets a rollback queued by a dropped transaction finish first.)
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    let healthy = !conn.is_in_transaction();
                    if !healthy {
                        tracing::warn!("replacing the database writer connection: a failed transaction left it open");
                    }
                    Ok(healthy)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        schema::run_sqlite(&writer).await?;
        search::backfill_lengths(&writer).await?;
        let readers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8) as u32;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers * 2)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.read_only(true))
            .await
            .map_err(db_err)?;
        // The graphs live beside the database: lore.db -> lore.vectors/.
        let vector_dir = path.with_extension("vectors");
        let vectors = VectorIndexes::open(Some(vector_dir), ef_search, reader.clone(), writer.clone()).await?;
        Ok(SqliteStore { writer, reader, vectors })
    }

    pub async fn close(&self) {
        if let Err(e) = self.vectors.save().await {
            tracing::warn!(error = %e, "could not save the vector index; it will catch up from the log on start");
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer.begin().await.map_err(db_err)
    }

    /// Deletes the finished job in the transaction that stored its work, commits, and brings the
    /// vector index up to date now rather than on the next search.
    async fn finish_job(&self, mut tx: Transaction<'static, Sqlite>, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(job.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        if let Err(e) = self.vectors.sync().await {
            tracing::warn!(error = %e, "vector index catch-up failed; the next search retries");
        }
        Ok(())
    }

    async fn append_log(tx: &mut Transaction<'static, Sqlite>, document_id: Id, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let existing: Option<String> = sqlx::query_scalar("SELECT processing_log FROM documents WHERE id = ?")
            .bind(document_id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
        let mut log: Vec<LogEntry> = match existing {
            Some(s) => serde_json::from_str(&s)?,
            None => return Ok(()),
        };
        log.extend_from_slice(entries);
        sqlx::query("UPDATE documents SET processing_log = ? WHERE id = ?")
            .bind(json_text(&log)?)
            .bind(document_id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn provider_addresses(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT 'openai' AS provider, openai_base_url AS base_url FROM knowledge_base_configs
               WHERE openai_api_key IS NOT NULL OR openai_base_url IS NOT NULL
             UNION SELECT 'anthropic', anthropic_base_url FROM knowledge_base_configs
               WHERE anthropic_api_key IS NOT NULL OR anthropic_base_url IS NOT NULL
             UNION SELECT 'cohere', cohere_base_url FROM knowledge_base_configs
               WHERE cohere_api_key IS NOT NULL OR cohere_base_url IS NOT NULL
             UNION SELECT model_provider, json_extract(model_parameters, '$.base_url') FROM ai_agents
               WHERE model_provider <> 'extractive'
             UNION SELECT json_extract(settings, '$.embedding_config.provider'),
                          json_extract(settings, '$.embedding_config.base_url') FROM knowledge_bases
               WHERE json_extract(settings, '$.embedding_config.provider') IS NOT NULL
                 AND json_extract(settings, '$.embedding_config.provider') <> 'local'
             ORDER BY 1, 2",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((r.text("provider")?, r.opt_text("base_url")?))).collect()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(db_err)?;
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        let result = sqlx::query(
            "INSERT INTO users (id, username, email, hashed_password, full_name, first_name, last_name, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&now)
        .bind(&now)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "users.username") => {
                return Err(Error::new(Code::UsernameTaken, "this username is already taken"));
            }
            Err(e) if is_unique_violation(&e, "users.email") => {
                return Err(Error::new(Code::EmailTaken, "an account with this email already exists"));
            }
            Err(e) => return Err(db_err(e)),
        }
        self.get_user_from(&self.writer, id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn register_user(&self, user: NewUser, admission: Admission) -> Result<User> {
        let id = lore_core::new_id();
        let now = ts(admission.now);
        // One writer connection: this transaction runs alone, and its first statement takes the
        // write lock, so whether the account is the first is decided by the insert itself.
        let mut tx = self.tx().await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO users (id, username, email, hashed_password, full_name, first_name, last_name,
                                is_superuser, is_staff, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NOT EXISTS (SELECT 1 FROM users), NOT EXISTS (SELECT 1 FROM users), ?8, ?8)
             RETURNING is_superuser",
        )
        .bind(id.to_string())
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await;
        let first = match inserted {
            Ok(superuser) => superuser != 0,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(user_conflict(e));
            }
        };
        if !first {
            let refusal = match (admission.policy, &admission.invitation_hash) {
                (RegistrationPolicy::Open, _) => None,
                (RegistrationPolicy::Closed, _) | (RegistrationPolicy::Invite, None) => {
                    Some(admission.policy.refusal())
                }
                (RegistrationPolicy::Invite, Some(hash)) => {
                    let used = sqlx::query(
                        "UPDATE invitations SET used_at = ?1, used_by = ?2
                         WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?1
                           AND (email IS NULL OR lower(email) = lower(?4))",
                    )
                    .bind(&now)
                    .bind(id.to_string())
                    .bind(hash)
                    .bind(&user.email)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    (used.rows_affected() == 0).then(Invitation::invalid)
                }
            };
            if let Some(refusal) = refusal {
                let _ = tx.rollback().await;
                return Err(refusal);
            }
        }
        tx.commit().await.map_err(db_err)?;
        self.get_user_from(&self.writer, id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = ?");
        let row =
            sqlx::query(AssertSqlSafe(sql)).bind(token_hash).fetch_optional(&self.reader).await.map_err(db_err)?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO invitations (id, token_hash, email, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&invitation.token_hash)
        .bind(&invitation.email)
        .bind(invitation.created_by.map(|u| u.to_string()))
        .bind(ts(lore_core::now()))
        .bind(ts(invitation.expires_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_one(&self.writer).await.map_err(db_err)?;
        invitation_from(&row)
    }

    async fn list_invitations(&self) -> Result<Vec<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.reader).await.map_err(db_err)?;
        rows.iter().map(invitation_from).collect()
    }

    async fn delete_invitation(&self, id: Id) -> Result<bool> {
        let done = sqlx::query("DELETE FROM invitations WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_login(&self, username_or_email: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLS}, u.hashed_password FROM users u WHERE u.username = ?1 OR u.email = ?1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(username_or_email)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.map(|r| Ok((user_from(&r)?, r.text("hashed_password")?))).transpose()
    }

    async fn get_user(&self, id: Id) -> Result<Option<User>> {
        self.get_user_from(&self.reader, id).await
    }

    async fn record_login(&self, user_id: Id, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
            .bind(ts(at))
            .bind(user_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_session(
        &self,
        user_id: Id,
        token_hash: &str,
        expires_at: Timestamp,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Id> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, ip_address, user_agent)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(user_id.to_string())
        .bind(token_hash)
        .bind(ts(lore_core::now()))
        .bind(ts(expires_at))
        .bind(ip)
        .bind(user_agent)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(id)
    }

    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let sql = format!(
            "SELECT {USER_COLS}, s.id AS session_id, s.expires_at AS session_expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?"
        );
        let row =
            sqlx::query(AssertSqlSafe(sql)).bind(token_hash).fetch_optional(&self.reader).await.map_err(db_err)?;
        row.map(|r| {
            Ok(SessionRecord {
                session_id: r.id("session_id")?,
                user: user_from(&r)?,
                expires_at: r.time("session_expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(ts(now))
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn user_defaults(&self, user_id: Id) -> Result<UserDefaults> {
        Ok(self.get_user_config(user_id).await?.map(|c| c.defaults()).unwrap_or_default())
    }

    async fn revoke_sessions(&self, user_id: Id, keep: Option<&str>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND (? IS NULL OR token_hash <> ?)")
            .bind(user_id.to_string())
            .bind(keep)
            .bind(keep)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET hashed_password = ?, updated_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u ORDER BY u.created_at, u.id LIMIT ? OFFSET ?");
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.reader).await.map_err(db_err)?;
        rows.iter().map(user_from).collect()
    }

    async fn set_user_active(&self, user_id: Id, active: bool) -> Result<Option<User>> {
        let mut tx = self.tx().await?;
        let done = sqlx::query("UPDATE users SET is_active = ?, updated_at = ? WHERE id = ?")
            .bind(active)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if !active {
            // Locked out at once: sessions end; keys stop working through the owner check.
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        self.get_user_from(&self.writer, user_id).await
    }

    async fn set_superuser(&self, user_id: Id, superuser: bool) -> Result<()> {
        sqlx::query("UPDATE users SET is_superuser = ?, is_staff = ?, updated_at = ? WHERE id = ?")
            .bind(superuser)
            .bind(superuser)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.writer).await.map_err(db_err)
    }

    async fn get_user_config(&self, user_id: Id) -> Result<Option<UserConfig>> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {CONFIG_COLS} FROM knowledge_base_configs WHERE user_id = ?")))
                .bind(user_id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(db_err)?;
        row.as_ref().map(config_from).transpose()
    }

    async fn put_user_config(&self, user_id: Id, c: &UserConfig) -> Result<UserConfig> {
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO knowledge_base_configs (id, user_id, default_embedding_model, default_chunk_size,
               default_chunk_overlap, document_retention_days, conversation_retention_days, default_similarity_threshold,
               max_search_results, sync_notifications, error_notifications, openai_api_key, anthropic_api_key,
               cohere_api_key, openai_base_url, anthropic_base_url, cohere_base_url, webhook_url, webhook_secret,
               created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?20)
             ON CONFLICT (user_id) DO UPDATE SET
               default_embedding_model = ?3, default_chunk_size = ?4, default_chunk_overlap = ?5,
               document_retention_days = ?6, conversation_retention_days = ?7, default_similarity_threshold = ?8,
               max_search_results = ?9, sync_notifications = ?10, error_notifications = ?11, openai_api_key = ?12,
               anthropic_api_key = ?13, cohere_api_key = ?14, openai_base_url = ?15, anthropic_base_url = ?16,
               cohere_base_url = ?17, webhook_url = ?18, webhook_secret = ?19, updated_at = ?20",
        )
        .bind(lore_core::new_id().to_string())
        .bind(user_id.to_string())
        .bind(&c.default_embedding_model)
        .bind(c.default_chunk_size)
        .bind(c.default_chunk_overlap)
        .bind(c.document_retention_days)
        .bind(c.conversation_retention_days)
        .bind(c.default_similarity_threshold)
        .bind(c.max_search_results)
        .bind(c.sync_notifications)
        .bind(c.error_notifications)
        .bind(&c.openai_api_key)
        .bind(&c.anthropic_api_key)
        .bind(&c.cohere_api_key)
        .bind(&c.openai_base_url)
        .bind(&c.anthropic_base_url)
        .bind(&c.cohere_base_url)
        .bind(&c.webhook_url)
        .bind(&c.webhook_secret)
        .bind(&now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {CONFIG_COLS} FROM knowledge_base_configs WHERE user_id = ?")))
                .bind(user_id.to_string())
                .fetch_one(&self.writer)
                .await
                .map_err(db_err)?;
        config_from(&row)
    }

    async fn reencrypt_secrets(&self, f: &(dyn for<'s> Fn(&'s str) -> Result<String> + Send + Sync)) -> Result<u64> {
        let mut tx = self.tx().await?;
        let mut changed = 0;
        for (table, columns) in SECRET_COLUMNS {
            for column in *columns {
                let select = format!("SELECT id, {column} AS secret FROM {table} WHERE {column} IS NOT NULL");
                let rows = sqlx::query(AssertSqlSafe(select)).fetch_all(&mut *tx).await.map_err(db_err)?;
                for row in rows {
                    let id = row.text("id")?;
                    let updated = f(&row.text("secret")?)?;
                    let update = format!("UPDATE {table} SET {column} = ? WHERE id = ?");
                    sqlx::query(AssertSqlSafe(update))
                        .bind(updated)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    changed += 1;
                }
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, knowledge_base_id, name, description, key_hash, key_prefix, key_suffix,
               scopes, rate_limit, daily_quota, monthly_quota, expires_at, security, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_one(&self.writer).await.map_err(db_err)?;
        key_from(&row)
    }

    async fn list_api_keys(&self, user_id: Id) -> Result<Vec<ApiKey>> {
        let sql =
            format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = ? ORDER BY k.created_at DESC, k.id DESC");
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(user_id.to_string()).fetch_all(&self.reader).await.map_err(db_err)?;
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
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
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
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS}, {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key_hash).fetch_optional(&self.reader).await.map_err(db_err)?;
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
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
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
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("API key"))?,
        };
        tx.commit().await.map_err(db_err)?;
        Ok(KeyUsage {
            allowed: row.flag("allowed")?,
            rate_limit: row.opt_int("rate_limit")?,
            rate_count: row.int("rate_count")?,
            daily_quota: row.opt_int("daily_quota")?,
            usage_today: row.int("usage_count_today")?,
            monthly_quota: row.opt_int("monthly_quota")?,
            usage_month: row.int("usage_count_month")?,
        })
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
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
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
            bind_usage_log(q, log)?.execute(&mut *tx).await.map_err(db_err)?;
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
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
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
        let rows = bind_usage_filter(sqlx::query(AssertSqlSafe(sql)), user_id, query)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        rows.iter().map(daily_usage_from).collect()
    }

    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO knowledge_bases (id, user_id, name, description, icon_url, settings, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(kb.user_id.to_string())
        .bind(&kb.name)
        .bind(&kb.description)
        .bind(&kb.icon_url)
        .bind(json_text(&kb.settings)?)
        .bind(&now)
        .bind(&now)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        self.kb_from(&self.writer, kb.user_id, id).await?.ok_or_else(|| Error::internal("knowledge base vanished"))
    }

    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE user_id = ? ORDER BY created_at DESC, id DESC");
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(user_id.to_string()).fetch_all(&self.reader).await.map_err(db_err)?;
        rows.iter().map(kb_from).collect()
    }

    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        self.kb_from(&self.reader, user_id, id).await
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
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.kb_from(&self.writer, user_id, id).await
    }

    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        let mut tx = self.tx().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM knowledge_bases WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Ok(None);
        }
        let paths: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT file_path FROM documents WHERE knowledge_base_id = ?")
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
        // Children first, explicitly, so the statistics and full-text triggers see every row.
        for sql in [
            "DELETE FROM document_chunks WHERE knowledge_base_id = ?",
            "DELETE FROM documents WHERE knowledge_base_id = ?",
            "DELETE FROM knowledge_bases WHERE id = ?",
        ] {
            sqlx::query(sql).bind(id.to_string()).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(paths))
    }

    async fn create_document(&self, doc: NewDocument) -> Result<Upload> {
        let mut tx = self.tx().await?;
        let sql = format!(
            "SELECT {DOC_COLS} FROM documents WHERE knowledge_base_id = ? AND file_hash = ? AND soft_deleted_at IS NULL"
        );
        let existing = sqlx::query(AssertSqlSafe(sql))
            .bind(doc.knowledge_base_id.to_string())
            .bind(&doc.file_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(row) = existing {
            return Ok(Upload::Duplicate(doc_from(&row)?));
        }
        let id = lore_core::new_id();
        let now = lore_core::now();
        let log = vec![LogEntry::new("upload", format!("received {} ({} bytes)", doc.filename, doc.file_size))];
        sqlx::query(
            "INSERT INTO documents (id, knowledge_base_id, user_id, uploaded_by, file_type_id, filename, file_type,
               file_path, file_size, mime_type, file_hash, status, progress, processing_log, metadata, chunking_config,
               expires_at, created_at, updated_at, data_source_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(doc.knowledge_base_id.to_string())
        .bind(doc.user_id.to_string())
        .bind(doc.uploaded_by.map(|u| u.to_string()))
        .bind(doc.file_type_id)
        .bind(&doc.filename)
        .bind(&doc.file_type)
        .bind(&doc.file_path)
        .bind(doc.file_size)
        .bind(&doc.mime_type)
        .bind(&doc.file_hash)
        .bind(json_text(&log)?)
        .bind(json_text(&doc.metadata)?)
        .bind(doc.chunking_config.as_ref().map(json_text).transpose()?)
        .bind(doc.expires_at.map(ts))
        .bind(ts(now))
        .bind(ts(now))
        .bind(doc.data_source_id.map(|d| d.to_string()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO jobs (id, kind, document_id, status, run_after, created_at) VALUES (?, 'process_document', ?, 'queued', ?, ?)")
            .bind(lore_core::new_id().to_string())
            .bind(id.to_string())
            .bind(ts(now))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_one(&mut *tx).await.map_err(db_err)?;
        let created = doc_from(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Upload::Created(created))
    }

    async fn list_documents(
        &self,
        user_id: Id,
        knowledge_base_id: Id,
        query: &DocumentListQuery,
    ) -> Result<Vec<Document>> {
        let sql = format!(
            "SELECT {DOC_COLS} FROM documents
             WHERE user_id = ?1 AND knowledge_base_id = ?2
               AND (?3 OR soft_deleted_at IS NULL)
               AND (?4 IS NULL OR status = ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?5 OFFSET ?6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(knowledge_base_id.to_string())
            .bind(query.include_deleted)
            .bind(query.status.map(DocStatus::as_str))
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        rows.iter().map(doc_from).collect()
    }

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>> {
        let row = sqlx::query("SELECT raw_content, processed_content FROM documents WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(DocumentContent {
                raw_content: r.opt_text("raw_content")?,
                processed_content: r.opt_text("processed_content")?,
            })
        })
        .transpose()
    }

    async fn list_chunks(&self, user_id: Id, document_id: Id) -> Result<Vec<Chunk>> {
        let sql = format!(
            "SELECT {CHUNK_COLS} FROM document_chunks WHERE document_id = ? AND user_id = ? ORDER BY chunk_index"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(document_id.to_string())
            .bind(user_id.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        rows.iter().map(chunk_from).collect()
    }

    async fn get_chunk(&self, user_id: Id, chunk_id: Id) -> Result<Option<Chunk>> {
        self.chunk(user_id, chunk_id).await
    }

    async fn update_chunk(&self, user_id: Id, chunk_id: Id, edit: ChunkEdit) -> Result<Option<Chunk>> {
        self.edit_chunk(user_id, chunk_id, edit).await
    }

    async fn add_chunk(
        &self,
        user_id: Id,
        document_id: Id,
        chunk: NewChunk,
        embedding_model: Option<String>,
        at: Timestamp,
    ) -> Result<Option<Chunk>> {
        self.append_chunk(user_id, document_id, chunk, embedding_model, at).await
    }

    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>> {
        let done = sqlx::query(
            "UPDATE documents SET soft_deleted_at = ?, updated_at = ? WHERE id = ? AND user_id = ? AND soft_deleted_at IS NULL",
        )
        .bind(ts(at))
        .bind(ts(at))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.doc_from(&self.writer, user_id, id).await
    }

    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let result = sqlx::query(
            "UPDATE documents SET soft_deleted_at = NULL, expires_at = NULL, updated_at = ?
             WHERE id = ? AND user_id = ? AND soft_deleted_at IS NOT NULL",
        )
        .bind(ts(lore_core::now()))
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(&self.writer)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => {
                // Either no such document, or it is not deleted: tell the two apart.
                match self.doc_from(&self.writer, user_id, id).await? {
                    None => Ok(None),
                    Some(_) => Err(Error::new(Code::NotDeleted, "the document is not deleted")),
                }
            }
            Ok(_) => self.doc_from(&self.writer, user_id, id).await,
            Err(e) if is_unique_violation(&e, "documents.") => Err(Error::new(
                Code::DuplicateDocument,
                "the same content was uploaded again since this document was deleted; delete that copy first",
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn blob_in_use(&self, file_path: &str) -> Result<bool> {
        let row: Option<i64> = sqlx::query_scalar("SELECT 1 FROM documents WHERE file_path = ? LIMIT 1")
            .bind(file_path)
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
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
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_file_types(&self) -> Result<Vec<FileType>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types ORDER BY id")))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
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
        self.file_type(&self.writer, id).await?.ok_or_else(|| Error::internal("file type vanished"))
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
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.file_type(&self.writer, id).await
    }

    async fn cluster_setting(&self, name: &str) -> Result<Option<String>> {
        self.get_cluster_setting(name).await
    }

    async fn swap_cluster_setting(&self, name: &str, expected: Option<&str>, value: &str) -> Result<bool> {
        self.compare_and_set_cluster_setting(name, expected, value).await
    }

    async fn heartbeat(&self, node: &NodeBeat) -> Result<()> {
        self.record_heartbeat(node).await
    }

    async fn leave(&self, node_id: &str) -> Result<()> {
        self.remove_node(node_id).await
    }

    async fn list_nodes(&self, alive_since: Timestamp) -> Result<Vec<Node>> {
        self.alive_nodes(alive_since).await
    }

    async fn release_all_jobs(&self) -> Result<u64> {
        let mut tx = self.tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL WHERE status = 'running'",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE documents SET status = 'pending', progress = 0
             WHERE status = 'processing' AND id IN (SELECT document_id FROM jobs)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn claim_job_except(&self, worker: &str, lease: Duration, skip: &[Id]) -> Result<Option<Job>> {
        let now = lore_core::now();
        let until = now + chrono::Duration::from_std(lease).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        // Owners take turns (see the trait): an owner's next job waits behind every other owner's
        // job with the same turn number, counting the jobs the owner already has running.
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ?1, locked_until = ?2
             WHERE id = (WITH owned AS (SELECT j.id, j.status, j.run_after, j.locked_until, j.created_at,
                                               COALESCE(d.user_id, k.user_id) AS owner
                                        FROM jobs j
                                        LEFT JOIN documents d ON d.id = j.document_id
                                        LEFT JOIN knowledge_bases k ON k.id = j.knowledge_base_id),
                              busy AS (SELECT owner, COUNT(*) AS n FROM owned
                                       WHERE status = 'running' AND locked_until >= ?3 GROUP BY owner)
                         SELECT o.id FROM owned o LEFT JOIN busy b ON b.owner = o.owner
                         WHERE ((o.status = 'queued' AND o.run_after <= ?3)
                                OR (o.status = 'running' AND o.locked_until < ?3))
                           AND o.id NOT IN (SELECT value FROM json_each(?4))
                         ORDER BY COALESCE(b.n, 0)
                                  + ROW_NUMBER() OVER (PARTITION BY o.owner ORDER BY o.created_at, o.id),
                                  o.created_at, o.id
                         LIMIT 1)
             RETURNING id, kind, document_id, knowledge_base_id, attempts",
        )
        .bind(worker)
        .bind(ts(until))
        .bind(ts(now))
        .bind(json_text(&skip.iter().map(|id| id.to_string()).collect::<Vec<_>>())?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let job = Job {
            id: row.id("id")?,
            kind: row.text("kind")?,
            document_id: row.opt_id("document_id")?,
            knowledge_base_id: row.opt_id("knowledge_base_id")?,
            attempts: row.int("attempts")?,
        };
        if let Some(doc) = job.document_id {
            sqlx::query("UPDATE documents SET status = 'processing', progress = 5, updated_at = ? WHERE id = ?")
                .bind(ts(now))
                .bind(doc.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let claimed = LogEntry::new("claim", format!("claimed by {worker} (attempt {})", job.attempts));
            Self::append_log(&mut tx, doc, &[claimed]).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(job))
    }

    async fn extend_lease(&self, job_id: Id, worker: &str, lease: Duration) -> Result<bool> {
        let until = lore_core::now() + chrono::Duration::from_std(lease).map_err(|e| Error::internal(e.to_string()))?;
        let done =
            sqlx::query("UPDATE jobs SET locked_until = ? WHERE id = ? AND locked_by = ? AND status = 'running'")
                .bind(ts(until))
                .bind(job_id.to_string())
                .bind(worker)
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn retry_later(&self, job: &Job, worker: &str, delay: Duration) -> Result<()> {
        let after = lore_core::now() + chrono::Duration::from_std(delay).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), locked_by = NULL,
                    locked_until = NULL, run_after = ?1
             WHERE id = ?2 AND locked_by = ?3 AND status = 'running'",
        )
        .bind(ts(after))
        .bind(job.id.to_string())
        .bind(worker)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() > 0
            && let Some(doc) = job.document_id
        {
            sqlx::query("UPDATE documents SET status = 'pending', progress = 0 WHERE id = ? AND status = 'processing'")
                .bind(doc.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn document_for_job(&self, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ?");
        let row =
            sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&self.reader).await.map_err(db_err)?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn knowledge_base_for_job(&self, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = ?");
        let row =
            sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&self.reader).await.map_err(db_err)?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE documents SET progress = ?, updated_at = ? WHERE id = ?")
            .bind(progress.clamp(0, 100))
            .bind(ts(lore_core::now()))
            .bind(document_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(entry) = entry {
            Self::append_log(&mut tx, document_id, &[entry]).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()> {
        let mut tx = self.tx().await?;
        let owner = sqlx::query("SELECT user_id, knowledge_base_id FROM documents WHERE id = ?")
            .bind(document_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(owner) = owner {
            let user_id = owner.text("user_id")?;
            let kb_id = owner.text("knowledge_base_id")?;
            let kb_token = kb_token(owner.id("knowledge_base_id")?);
            let now = ts(lore_core::now());
            // A retried job replaces whatever an interrupted attempt left behind.
            sqlx::query("DELETE FROM document_chunks WHERE document_id = ?")
                .bind(document_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut ids: Vec<String> = Vec::with_capacity(result.chunks.len());
            let document = document_id.to_string();
            for chunk in &result.chunks {
                let id = lore_core::new_id().to_string();
                let row = chunks::ChunkRow {
                    id: &id,
                    document_id: &document,
                    knowledge_base_id: &kb_id,
                    user_id: &user_id,
                    kb_token: &kb_token,
                    chunk_index: chunk.chunk_index,
                    parent: chunk.parent_index.and_then(|i| ids.get(i)).map(String::as_str),
                    embedding_model: result.embedding_model.as_deref(),
                    created_at: &now,
                    edited_at: None,
                };
                chunks::insert_chunk(&mut tx, &row, chunk).await?;
                ids.push(id);
            }
            sqlx::query(
                "UPDATE documents SET status = 'completed', progress = 100, title = COALESCE(title, ?), raw_content = ?,
                   processed_content = ?, source_metadata = ?, error_code = NULL, error_message = NULL,
                   processed_at = ?, updated_at = ?
                 WHERE id = ?",
            )
            .bind(&result.title)
            .bind(&result.raw_content)
            .bind(&result.processed_content)
            .bind(json_text(&result.source_metadata)?)
            .bind(&now)
            .bind(&now)
            .bind(document_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            Self::append_log(&mut tx, document_id, &result.log).await?;
            // A knowledge base's first embeddings decide the space its search uses.
            if let Some(space) = &result.embedding_model {
                sqlx::query("UPDATE knowledge_bases SET embedding_space = ? WHERE id = ? AND embedding_space IS NULL")
                    .bind(space)
                    .bind(&kb_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        self.finish_job(tx, job).await
    }

    async fn fail_document(
        &self,
        job: &Job,
        document_id: Id,
        code: &str,
        message: &str,
        log: Vec<LogEntry>,
    ) -> Result<()> {
        let mut tx = self.tx().await?;
        let now = ts(lore_core::now());
        sqlx::query("DELETE FROM document_chunks WHERE document_id = ?")
            .bind(document_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', progress = 100, error_code = ?, error_message = ?, processed_at = ?,
               updated_at = ? WHERE id = ?",
        )
        .bind(code)
        .bind(message)
        .bind(&now)
        .bind(&now)
        .bind(document_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::append_log(&mut tx, document_id, &log).await?;
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(job.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn expire_documents(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE documents SET soft_deleted_at = ?1, updated_at = ?1
             WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND soft_deleted_at IS NULL",
        )
        .bind(ts(now))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn purge_deleted_documents(&self, before: Timestamp) -> Result<Vec<String>> {
        let mut tx = self.tx().await?;
        let rows = sqlx::query(
            "SELECT id, file_path FROM documents WHERE soft_deleted_at IS NOT NULL AND soft_deleted_at <= ?",
        )
        .bind(ts(before))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut paths = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.text("id")?;
            // Chunks first, so the full-text trigger sees each one.
            sqlx::query("DELETE FROM document_chunks WHERE document_id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("DELETE FROM documents WHERE id = ?").bind(&id).execute(&mut *tx).await.map_err(db_err)?;
            paths.push(row.text("file_path")?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(paths)
    }

    async fn purge_conversations(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM conversations WHERE id IN (
               SELECT c.id FROM conversations c JOIN knowledge_base_configs k ON k.user_id = c.user_id
               WHERE k.conversation_retention_days IS NOT NULL
                 AND c.updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, '-' || k.conversation_retention_days || ' days'))",
        )
        .bind(ts(now))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn purge_usage_logs(&self, success_before: Timestamp, error_before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM api_usage_logs
             WHERE (status_code < 400 AND created_at < ?) OR (status_code >= 400 AND created_at < ?)",
        )
        .bind(ts(success_before))
        .bind(ts(error_before))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM documents WHERE soft_deleted_at IS NULL GROUP BY status")
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        rows.iter()
            .filter_map(|r| {
                let status = r.text("status").ok().and_then(|s| DocStatus::parse(&s))?;
                Some(r.int("n").map(|n| (status, n)))
            })
            .collect()
    }

    async fn pending_jobs(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&self.reader).await.map_err(db_err)
    }

    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vector_search(query).await
    }

    async fn queue_reembedding(&self, knowledge_base_id: Id) -> Result<()> {
        let now = ts(lore_core::now());
        sqlx::query(
            "INSERT INTO jobs (id, kind, knowledge_base_id, run_after, created_at)
             SELECT ?, 'reembed', ?, ?, ? WHERE NOT EXISTS
               (SELECT 1 FROM jobs WHERE kind = 'reembed' AND knowledge_base_id = ? AND status = 'queued')",
        )
        .bind(lore_core::new_id().to_string())
        .bind(knowledge_base_id.to_string())
        .bind(&now)
        .bind(&now)
        .bind(knowledge_base_id.to_string())
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn chunks_to_reembed(&self, knowledge_base_id: Id, space: &str, limit: i64) -> Result<Vec<ChunkToEmbed>> {
        let rows = sqlx::query(
            "SELECT c.seq, c.content, c.content_hash, d.title FROM document_chunks c
             JOIN documents d ON d.id = c.document_id
             LEFT JOIN chunk_reembeddings r ON r.chunk_seq = c.seq AND r.embedding_model = ?1
             WHERE c.knowledge_base_id = ?2 AND c.content_embedding IS NOT NULL
               AND c.embedding_model IS NOT ?1 AND r.chunk_seq IS NULL
             ORDER BY c.seq LIMIT ?3",
        )
        .bind(space)
        .bind(knowledge_base_id.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter().map(chunk_to_embed_from).collect()
    }

    async fn save_reembedded(&self, knowledge_base_id: Id, space: &str, rows: &[Reembedded]) -> Result<()> {
        let mut tx = self.tx().await?;
        for row in rows {
            sqlx::query(
                "INSERT OR REPLACE INTO chunk_reembeddings
                   (chunk_seq, knowledge_base_id, embedding_model, content_embedding, summary_embedding)
                 SELECT seq, knowledge_base_id, ?, ?, ? FROM document_chunks WHERE seq = ? AND knowledge_base_id = ?",
            )
            .bind(space)
            .bind(vectors::to_blob(&row.embedding))
            .bind(row.summary_embedding.as_deref().map(vectors::to_blob))
            .bind(row.seq)
            .bind(knowledge_base_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_reembedding(&self, job: &Job, knowledge_base_id: Id, space: &str) -> Result<u64> {
        let mut tx = self.tx().await?;
        let kb = knowledge_base_id.to_string();
        let switched = sqlx::query(
            "UPDATE document_chunks SET content_embedding = r.content_embedding,
                    summary_embedding = r.summary_embedding, embedding_model = r.embedding_model
             FROM chunk_reembeddings r
             WHERE r.chunk_seq = document_chunks.seq AND r.embedding_model = ? AND r.knowledge_base_id = ?",
        )
        .bind(space)
        .bind(&kb)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        sqlx::query("DELETE FROM chunk_reembeddings WHERE knowledge_base_id = ?")
            .bind(&kb)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE knowledge_bases SET embedding_space = ? WHERE id = ?")
            .bind(space)
            .bind(&kb)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        self.finish_job(tx, job).await?;
        Ok(switched)
    }

    async fn drop_job(&self, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(job.id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn cached_embeddings(
        &self,
        user_id: Id,
        model: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        self.embeddings_by_hash(user_id, model, hashes).await
    }

    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        self.fulltext(query).await
    }
}

impl SqliteStore {
    async fn vector_search(&self, q: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vectors.sync().await?;
        let top_k = q.top_k as usize;
        if top_k == 0 || q.knowledge_base_ids.is_empty() || q.vector.is_empty() {
            return Ok(Vec::new());
        }
        let fields: &[Field] = match q.target {
            SearchTarget::Content => &[Field::Content],
            SearchTarget::Summary => &[Field::Summary],
            SearchTarget::Both => &[Field::Content, Field::Summary],
        };
        let (conditions, params) = filter_conditions(&q.filters)?;
        // A little more than asked: a chunk whose document is being reprocessed is dropped below.
        // (The graphs were brought up to date above, so deleted documents are already gone.)
        // Hydration below looks chunks up by seq first (CROSS JOIN fixes that order): left to
        // itself the planner walks the owner's chunks and took seconds for a few hundred hits.
        let want = top_k + 10;
        let mut best: HashMap<i64, f64> = HashMap::new();
        let mut consider = |seq: i64, score: f64| {
            let entry = best.entry(seq).or_insert(f64::NEG_INFINITY);
            *entry = entry.max(score);
        };
        for kb in &q.knowledge_base_ids {
            let admitted = format!(
                "FROM document_chunks c JOIN documents d ON d.id = c.document_id
                 WHERE c.knowledge_base_id = ? AND c.user_id = ? AND c.embedding_model = ?
                   AND c.content_embedding IS NOT NULL AND c.enabled = 1 AND d.soft_deleted_at IS NULL
                   AND d.status = 'completed'{conditions}"
            );
            let bind = |sql: String| {
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(kb.to_string())
                    .bind(q.user_id.to_string())
                    .bind(q.embedding_model.clone());
                for p in &params {
                    query = query.bind(p.clone());
                }
                query
            };
            let mut allowed = None;
            if !conditions.is_empty() {
                let count: i64 = bind(format!("SELECT COUNT(*) {admitted}"))
                    .fetch_one(&self.reader)
                    .await
                    .map_err(db_err)?
                    .try_get(0)
                    .map_err(db_err)?;
                if count == 0 {
                    continue;
                }
                if count <= EXACT_SEARCH_MAX {
                    let rows = bind(format!("SELECT c.seq, c.content_embedding, c.summary_embedding {admitted}"))
                        .fetch_all(&self.reader)
                        .await
                        .map_err(db_err)?;
                    for row in rows {
                        let seq: i64 = row.try_get("seq").map_err(db_err)?;
                        for field in fields {
                            let column =
                                if *field == Field::Content { "content_embedding" } else { "summary_embedding" };
                            let blob: Option<Vec<u8>> = row.try_get(column).map_err(db_err)?;
                            if let Some(blob) = blob {
                                consider(seq, cosine(&q.vector, &vectors::from_blob(&blob)));
                            }
                        }
                    }
                    continue;
                }
                let rows = bind(format!("SELECT c.seq {admitted}")).fetch_all(&self.reader).await.map_err(db_err)?;
                let set: HashSet<u64> = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0).map(|s| s as u64))
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?;
                allowed = Some(set);
            }
            for field in fields {
                let key = SpaceKey { knowledge_base_id: *kb, model: q.embedding_model.clone(), field: *field };
                if let Some(space) = self.vectors.space(&key) {
                    let vector = q.vector.clone();
                    let allowed = allowed.clone();
                    let found = tokio::task::spawn_blocking(move || space.search(&vector, want, allowed.as_ref()))
                        .await
                        .map_err(Error::internal)??;
                    for (seq, score) in found {
                        consider(seq as i64, score);
                    }
                }
            }
        }
        let mut ranked: Vec<(i64, f64)> = best.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(want);
        if let Some(min) = q.min_score {
            ranked.retain(|(_, score)| *score >= min);
        }
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT c.seq, c.id, c.document_id, c.knowledge_base_id, c.content, c.chunk_index, c.metadata, d.filename,
                    d.title, 0.0 AS score, p.id AS parent_id, p.content AS parent_content
             FROM document_chunks c
             CROSS JOIN documents d ON d.id = c.document_id
             LEFT JOIN document_chunks p ON p.id = c.parent_chunk_id
             WHERE c.seq IN ({}) AND c.user_id = ? AND c.enabled = 1 AND d.soft_deleted_at IS NULL
               AND d.status = 'completed'",
            ranked.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>().join(",")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(q.user_id.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let mut by_seq: HashMap<i64, ChunkHit> = HashMap::with_capacity(rows.len());
        for row in &rows {
            by_seq.insert(row.try_get("seq").map_err(db_err)?, hit_from(row)?);
        }
        Ok(ranked
            .into_iter()
            .filter_map(|(seq, score)| by_seq.remove(&seq).map(|hit| ChunkHit { score, ..hit }))
            .take(top_k)
            .collect())
    }

    async fn embeddings_by_hash(
        &self,
        user_id: Id,
        model: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut found = HashMap::new();
        for batch in hashes.chunks(500) {
            let sql = format!(
                "SELECT content_hash, content_embedding FROM document_chunks
                 WHERE embedding_model = ? AND user_id = ? AND content_embedding IS NOT NULL AND content_hash IN ({})
                 GROUP BY content_hash",
                vec!["?"; batch.len()].join(",")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(model.to_string()).bind(user_id.to_string());
            for h in batch {
                query = query.bind(h.clone());
            }
            for row in query.fetch_all(&self.reader).await.map_err(db_err)? {
                let blob: Vec<u8> = row.try_get("content_embedding").map_err(db_err)?;
                found.insert(row.try_get("content_hash").map_err(db_err)?, vectors::from_blob(&blob));
            }
        }
        Ok(found)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::NEG_INFINITY;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    f64::from(dot / (na.sqrt() * nb.sqrt()).max(1e-12))
}

/// SQL conditions (each starting with ` AND`) on chunk `c` and document `d` for the filters, and
/// their parameters in order.
fn filter_conditions(filters: &SearchFilters) -> Result<(String, Vec<String>)> {
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Some(ids) = &filters.document_ids {
        sql.push_str(&format!(" AND c.document_id IN ({})", vec!["?"; ids.len().max(1)].join(", ")));
        params.extend(ids.iter().map(Id::to_string));
        if ids.is_empty() {
            params.push(String::new());
        }
    }
    if let Some(types) = &filters.file_types {
        sql.push_str(&format!(" AND d.file_type IN ({})", vec!["?"; types.len().max(1)].join(", ")));
        params.extend(types.iter().cloned());
        if types.is_empty() {
            params.push(String::new());
        }
    }
    if let Some(ids) = &filters.data_source_ids {
        sql.push_str(&format!(" AND d.data_source_id IN ({})", vec!["?"; ids.len().max(1)].join(", ")));
        params.extend(ids.iter().map(Id::to_string));
        if ids.is_empty() {
            params.push(String::new());
        }
    }
    for (k, v) in filters.metadata.iter().flatten() {
        sql.push_str(" AND json_extract(d.metadata, ?) IS json_extract(?, '$')");
        params.push(format!("$.\"{}\"", k.replace('"', "")));
        params.push(json_text(v)?);
    }
    Ok((sql, params))
}

/// The full-text token that stands for a knowledge base (letters and digits only).
pub(crate) fn kb_token(id: Id) -> String {
    format!("kb{}", id.simple())
}

impl SqliteStore {
    async fn file_type(&self, pool: &SqlitePool, id: i64) -> Result<Option<FileType>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types WHERE id = ?")))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(file_type_from).transpose()
    }

    async fn get_user_from(&self, pool: &SqlitePool, id: Id) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(pool).await.map_err(db_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn kb_from(&self, pool: &SqlitePool, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn doc_from(&self, pool: &SqlitePool, user_id: Id, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(doc_from).transpose()
    }
}
