//! The shared store: PostgreSQL with pgvector. Any number of `lore serve` nodes use one database;
//! the queue is claimed with `FOR UPDATE SKIP LOCKED`, vectors are searched by pgvector's HNSW
//! indexes (one per dimension), full text by a GIN index over Lore's own segmentation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::limits;
use lore_core::model::*;
use lore_core::store::{ApiKeyRecord, SessionRecord, Store, Upload};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::rows::*;
use crate::schema;

mod agents;
pub mod blobs;
mod chunks;
mod cluster;
mod search;
mod sources;

pub struct PgStore {
    pool: PgPool,
    /// HNSW `ef_search`: how wide each vector search looks.
    ef_search: usize,
    /// Dimensions whose HNSW indexes are known to exist.
    indexed_dims: Mutex<HashSet<i32>>,
}

pub(crate) fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() && db.constraint().is_some_and(|c| c.starts_with(constraint))
        }
        _ => false,
    }
}

/// A username or email conflict as its own error; anything else as a database error.
fn user_conflict(e: sqlx::Error) -> Error {
    if is_unique_violation(&e, "users_username") {
        Error::new(Code::UsernameTaken, "this username is already taken")
    } else if is_unique_violation(&e, "users_email") {
        Error::new(Code::EmailTaken, "an account with this email already exists")
    } else {
        db_err(e)
    }
}

/// pgvector's text form, `[0.1,0.2]`: bound as text and cast, so no extra crate is needed.
pub fn vector_text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

pub(crate) fn parse_vector(s: &str) -> Result<Vec<f32>> {
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|x| x.trim().parse::<f32>().map_err(|e| Error::internal(format!("bad vector in database: {e}"))))
        .collect()
}

/// The HNSW operator class and cast for a dimension: `vector` up to 2,000 dimensions (pgvector's
/// limit for indexing it), `halfvec` up to 4,000; beyond that, no index and exact search.
pub(crate) fn index_type(dims: i32) -> Option<&'static str> {
    match dims {
        1..=2000 => Some("vector"),
        2001..=4000 => Some("halfvec"),
        _ => None,
    }
}

impl PgStore {
    /// Connects and brings the schema up to date (safe with many nodes starting at once).
    pub async fn open(url: &str) -> Result<PgStore> {
        PgStore::open_with(url, crate::vectors::DEFAULT_EF_SEARCH).await
    }

    pub async fn open_with(url: &str, ef_search: usize) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10)) // an outage answers 503 soon, not after 30 s
            // Lore's own connections name the row-level-security bypass for work that spans
            // tenants; a tenant's transaction turns it off (`set_tenant`). Any other connection
            // as this role sees no tenant's rows.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "SET lore.system = 'on'").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| Error::internal(format!("cannot connect to PostgreSQL: {e}")))?;
        schema::run_postgres(&pool).await?;
        // No scan of the chunks at start: an index exists from the moment its first chunk was
        // stored, and `ensure_vector_index` learns of each dimension as it meets it.
        let store = PgStore { pool, ef_search: ef_search.max(1), indexed_dims: Mutex::new(HashSet::new()) };
        Ok(store)
    }

    /// The connection pool, for tools (migration, benchmarks) that speak SQL directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One attempt at deleting a knowledge base. Locks are taken in the order every document
    /// transaction takes them (the document's row, then the knowledge base's, which the statistics
    /// triggers and foreign keys touch), so a worker completing a document in it never deadlocks
    /// with the delete: the delete waits for it, then removes what it wrote.
    async fn delete_knowledge_base_once(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        let mut tx = self.tx().await?;
        let exists: Option<Id> = sqlx::query_scalar("SELECT id FROM knowledge_bases WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut paths: Vec<String> =
            sqlx::query_scalar("SELECT file_path FROM documents WHERE knowledge_base_id = $1 ORDER BY id FOR UPDATE")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
        // Children first, explicitly, so the statistics triggers see every row.
        for sql in [
            "DELETE FROM document_chunks WHERE knowledge_base_id = $1",
            "DELETE FROM documents WHERE knowledge_base_id = $1",
            "DELETE FROM knowledge_bases WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        // Content-addressed blobs can be shared; FOR UPDATE rules out SELECT DISTINCT.
        paths.sort();
        paths.dedup();
        Ok(Some(paths))
    }

    async fn tx(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    /// Makes sure the HNSW indexes of a dimension exist (asking the database once per dimension).
    pub(crate) async fn ensure_vector_index(&self, dims: i32) -> Result<()> {
        if self.indexed_dims.lock().map_err(|_| Error::internal("poisoned"))?.contains(&dims) {
            return Ok(());
        }
        create_vector_index(&self.pool, dims).await?;
        self.indexed_dims.lock().map_err(|_| Error::internal("poisoned"))?.insert(dims);
        Ok(())
    }

    /// Runs a tenant's read in a transaction that names the tenant: row-level security then shows
    /// it only its own rows, whatever the query's filter says.
    pub(crate) async fn tenant_all(&self, user_id: Id, query: PgQuery<'_>) -> Result<Vec<PgRow>> {
        let mut tx = self.tx().await?;
        set_tenant(&mut tx, user_id).await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(rows)
    }

    pub(crate) async fn tenant_one(&self, user_id: Id, query: PgQuery<'_>) -> Result<Option<PgRow>> {
        Ok(self.tenant_all(user_id, query).await?.into_iter().next())
    }

    async fn finish_job(&self, mut tx: Transaction<'static, Postgres>, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = $1").bind(job.id).execute(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn append_log(tx: &mut Transaction<'static, Postgres>, document_id: Id, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE documents SET processing_log = processing_log || $1 WHERE id = $2")
            .bind(Json(entries))
            .bind(document_id)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn user_by_id(&self, id: Id) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn kb_by_id(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = $1 AND user_id = $2");
        let row = self.tenant_one(user_id, sqlx::query(AssertSqlSafe(sql)).bind(id).bind(user_id)).await?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn doc_by_id(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = $1 AND user_id = $2");
        let row = self.tenant_one(user_id, sqlx::query(AssertSqlSafe(sql)).bind(id).bind(user_id)).await?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn file_type_by_id(&self, id: i64) -> Result<Option<FileType>> {
        let sql = format!("SELECT {FILE_TYPE_COLS} FROM file_types WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(file_type_from).transpose()
    }
}

/// The usage-log filter; parameters $1 to $6.
const USAGE_FILTER: &str =
    "user_id = $1 AND ($2::uuid IS NULL OR api_key_id = $2) AND ($3::timestamptz IS NULL OR created_at >= $3)
    AND ($4::timestamptz IS NULL OR created_at < $4) AND ($5::boolean IS NULL OR (status_code >= 400) = $5)
    AND ($6::text IS NULL OR endpoint = $6)";

pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_usage_filter<'q>(q: PgQuery<'q>, user_id: Id, query: &UsageQuery) -> PgQuery<'q> {
    q.bind(user_id)
        .bind(query.api_key_id)
        .bind(query.from)
        .bind(query.to)
        .bind(query.errors)
        .bind(query.endpoint.clone())
}

#[async_trait]
impl Store for PgStore {
    fn shared_by_nodes(&self) -> bool {
        true
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn provider_addresses(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT 'openai' AS provider, openai_base_url AS base_url FROM knowledge_base_configs
               WHERE openai_api_key IS NOT NULL OR openai_base_url IS NOT NULL
             UNION SELECT 'anthropic', anthropic_base_url FROM knowledge_base_configs
               WHERE anthropic_api_key IS NOT NULL OR anthropic_base_url IS NOT NULL
             UNION SELECT 'cohere', cohere_base_url FROM knowledge_base_configs
               WHERE cohere_api_key IS NOT NULL OR cohere_base_url IS NOT NULL
             UNION SELECT model_provider, model_parameters ->> 'base_url' FROM ai_agents
               WHERE model_provider <> 'extractive'
             UNION SELECT settings #>> '{embedding_config,provider}', settings #>> '{embedding_config,base_url}'
               FROM knowledge_bases
               WHERE settings #>> '{embedding_config,provider}' IS NOT NULL
                 AND settings #>> '{embedding_config,provider}' <> 'local'
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((r.text("provider")?, r.opt_text("base_url")?))).collect()
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let id = lore_core::new_id();
        let now = lore_core::now();
        let result = sqlx::query(
            "INSERT INTO users (id, username, email, hashed_password, full_name, first_name, last_name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(id)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "users_username") => {
                return Err(Error::new(Code::UsernameTaken, "this username is already taken"));
            }
            Err(e) if is_unique_violation(&e, "users_email") => {
                return Err(Error::new(Code::EmailTaken, "an account with this email already exists"));
            }
            Err(e) => return Err(db_err(e)),
        }
        self.user_by_id(id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn register_user(&self, user: NewUser, admission: Admission) -> Result<User> {
        // Registrations take turns (a transaction-scoped advisory lock, held to the commit), so
        // each one's insert sees every account committed before it: of concurrent first
        // registrations, exactly one finds no account and becomes the administrator.
        const LOCK: i64 = 0x6c6f_7265_7265_6769; // "loreregi"
        let id = lore_core::new_id();
        let mut tx = self.tx().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(&mut *tx).await.map_err(db_err)?;
        let first = sqlx::query_scalar::<_, bool>(
            "INSERT INTO users (id, username, email, hashed_password, full_name, first_name, last_name,
                                is_superuser, is_staff, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NOT EXISTS (SELECT 1 FROM users), NOT EXISTS (SELECT 1 FROM users), $8, $8)
             RETURNING is_superuser",
        )
        .bind(id)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(admission.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(user_conflict)?;
        if !first {
            match (admission.policy, &admission.invitation_hash) {
                (RegistrationPolicy::Open, _) => {}
                (RegistrationPolicy::Closed, _) | (RegistrationPolicy::Invite, None) => {
                    return Err(admission.policy.refusal());
                }
                (RegistrationPolicy::Invite, Some(hash)) => {
                    // A concurrent use of the same invitation waits for this row, then finds it used.
                    let used = sqlx::query(
                        "UPDATE invitations SET used_at = $1, used_by = $2
                         WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1
                           AND (email IS NULL OR lower(email) = lower($4))",
                    )
                    .bind(admission.now)
                    .bind(id)
                    .bind(hash)
                    .bind(&user.email)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if used.rows_affected() == 0 {
                        return Err(Invitation::invalid());
                    }
                }
            }
        }
        tx.commit().await.map_err(db_err)?;
        self.user_by_id(id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(token_hash).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation> {
        let sql = format!(
            "INSERT INTO invitations (id, token_hash, email, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {INVITATION_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(lore_core::new_id())
            .bind(&invitation.token_hash)
            .bind(&invitation.email)
            .bind(invitation.created_by)
            .bind(lore_core::now())
            .bind(invitation.expires_at)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        invitation_from(&row)
    }

    async fn list_invitations(&self) -> Result<Vec<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(invitation_from).collect()
    }

    async fn delete_invitation(&self, id: Id) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM invitations WHERE id = $1").bind(id).execute(&self.pool).await.map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_login(&self, username_or_email: &str) -> Result<Option<(User, String)>> {
        let sql = format!(
            "SELECT {USER_COLS}, u.hashed_password FROM users u
             WHERE lower(u.username) = lower($1) OR lower(u.email) = lower($1)"
        );
        let row =
            sqlx::query(AssertSqlSafe(sql)).bind(username_or_email).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.map(|r| Ok((user_from(&r)?, r.text("hashed_password")?))).transpose()
    }

    async fn get_user(&self, id: Id) -> Result<Option<User>> {
        self.user_by_id(id).await
    }

    async fn record_login(&self, user_id: Id, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(at)
            .bind(user_id)
            .execute(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(user_id)
        .bind(token_hash)
        .bind(lore_core::now())
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(id)
    }

    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let sql = format!(
            "SELECT {USER_COLS}, s.id AS session_id, s.expires_at AS session_expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(token_hash).fetch_optional(&self.pool).await.map_err(db_err)?;
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
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn user_defaults(&self, user_id: Id) -> Result<UserDefaults> {
        Ok(self.get_user_config(user_id).await?.map(|c| c.defaults()).unwrap_or_default())
    }

    async fn revoke_sessions(&self, user_id: Id, keep: Option<&str>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::text IS NULL OR token_hash <> $2)")
            .bind(user_id)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET hashed_password = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(lore_core::now())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u ORDER BY u.created_at, u.id LIMIT $1 OFFSET $2");
        let rows =
            sqlx::query(AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(user_from).collect()
    }

    async fn set_user_active(&self, user_id: Id, active: bool) -> Result<Option<User>> {
        let mut tx = self.tx().await?;
        let done = sqlx::query("UPDATE users SET is_active = $1, updated_at = $2 WHERE id = $3")
            .bind(active)
            .bind(lore_core::now())
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if !active {
            // Locked out at once: sessions end; keys stop working through the owner check.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        self.user_by_id(user_id).await
    }

    async fn set_superuser(&self, user_id: Id, superuser: bool) -> Result<()> {
        sqlx::query("UPDATE users SET is_superuser = $1, is_staff = $1, updated_at = $2 WHERE id = $3")
            .bind(superuser)
            .bind(lore_core::now())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn get_user_config(&self, user_id: Id) -> Result<Option<UserConfig>> {
        let sql = format!("SELECT {CONFIG_COLS} FROM knowledge_base_configs WHERE user_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(user_id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(config_from).transpose()
    }

    async fn put_user_config(&self, user_id: Id, c: &UserConfig) -> Result<UserConfig> {
        sqlx::query(
            "INSERT INTO knowledge_base_configs (id, user_id, default_embedding_model, default_chunk_size,
               default_chunk_overlap, document_retention_days, conversation_retention_days, default_similarity_threshold,
               max_search_results, sync_notifications, error_notifications, openai_api_key, anthropic_api_key,
               cohere_api_key, openai_base_url, anthropic_base_url, cohere_base_url, webhook_url, webhook_secret,
               created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20)
             ON CONFLICT (user_id) DO UPDATE SET
               default_embedding_model = $3, default_chunk_size = $4, default_chunk_overlap = $5,
               document_retention_days = $6, conversation_retention_days = $7, default_similarity_threshold = $8,
               max_search_results = $9, sync_notifications = $10, error_notifications = $11, openai_api_key = $12,
               anthropic_api_key = $13, cohere_api_key = $14, openai_base_url = $15, anthropic_base_url = $16,
               cohere_base_url = $17, webhook_url = $18, webhook_secret = $19, updated_at = $20",
        )
        .bind(lore_core::new_id())
        .bind(user_id)
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
        .bind(lore_core::now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        self.get_user_config(user_id).await?.ok_or_else(|| Error::internal("configuration vanished"))
    }

    async fn reencrypt_secrets(&self, f: &(dyn for<'s> Fn(&'s str) -> Result<String> + Send + Sync)) -> Result<u64> {
        let mut tx = self.tx().await?;
        let mut changed = 0;
        for (table, columns) in SECRET_COLUMNS {
            for column in *columns {
                let select =
                    format!("SELECT id, {column} AS secret FROM {table} WHERE {column} IS NOT NULL FOR UPDATE");
                let rows = sqlx::query(AssertSqlSafe(select)).fetch_all(&mut *tx).await.map_err(db_err)?;
                for row in rows {
                    let updated = f(&row.text("secret")?)?;
                    let update = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
                    sqlx::query(AssertSqlSafe(update))
                        .bind(updated)
                        .bind(row.id("id")?)
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
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, knowledge_base_id, name, description, key_hash, key_prefix, key_suffix,
               scopes, rate_limit, daily_quota, monthly_quota, expires_at, security, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&self.pool).await.map_err(db_err)?;
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS}, {USER_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key_hash).fetch_optional(&self.pool).await.map_err(db_err)?;
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
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
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
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("API key"))?,
        };
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
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
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

    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO knowledge_bases (id, user_id, name, description, icon_url, settings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id)
        .bind(kb.user_id)
        .bind(&kb.name)
        .bind(&kb.description)
        .bind(&kb.icon_url)
        .bind(Json(&kb.settings))
        .bind(lore_core::now())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        self.kb_by_id(kb.user_id, id).await?.ok_or_else(|| Error::internal("knowledge base vanished"))
    }

    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
        let rows = self.tenant_all(user_id, sqlx::query(AssertSqlSafe(sql)).bind(user_id)).await?;
        rows.iter().map(kb_from).collect()
    }

    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        self.kb_by_id(user_id, id).await
    }

    async fn update_knowledge_base(&self, user_id: Id, id: Id, patch: KbPatch) -> Result<Option<KnowledgeBase>> {
        let done = sqlx::query(
            "UPDATE knowledge_bases SET
                name = COALESCE($1, name),
                description = CASE WHEN $2 THEN $3 ELSE description END,
                icon_url = CASE WHEN $4 THEN $5 ELSE icon_url END,
                status = COALESCE($6, status),
                settings = COALESCE($7, settings),
                updated_at = $8
             WHERE id = $9 AND user_id = $10",
        )
        .bind(&patch.name)
        .bind(patch.description.is_some())
        .bind(patch.description.clone().flatten())
        .bind(patch.icon_url.is_some())
        .bind(patch.icon_url.clone().flatten())
        .bind(patch.status.map(KbStatus::as_str))
        .bind(patch.settings.as_ref().map(Json))
        .bind(lore_core::now())
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.kb_by_id(user_id, id).await
    }

    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>> {
        retry_when_busy(|| self.delete_knowledge_base_once(user_id, id)).await
    }

    async fn create_document(&self, doc: NewDocument) -> Result<Upload> {
        let id = lore_core::new_id();
        let now = lore_core::now();
        let log = vec![LogEntry::new("upload", format!("received {} ({} bytes)", doc.filename, doc.file_size))];
        let mut tx = self.tx().await?;
        // The unique index on live content decides between two nodes receiving the same file.
        let inserted = sqlx::query(
            "INSERT INTO documents (id, knowledge_base_id, user_id, uploaded_by, file_type_id, filename, file_type,
               file_path, file_size, mime_type, file_hash, status, progress, processing_log, metadata, chunking_config,
               expires_at, created_at, updated_at, data_source_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', 0, $12, $13, $14, $15, $16, $16, $17)
             ON CONFLICT (knowledge_base_id, file_hash) WHERE soft_deleted_at IS NULL DO NOTHING",
        )
        .bind(id)
        .bind(doc.knowledge_base_id)
        .bind(doc.user_id)
        .bind(doc.uploaded_by)
        .bind(doc.file_type_id)
        .bind(&doc.filename)
        .bind(&doc.file_type)
        .bind(&doc.file_path)
        .bind(doc.file_size)
        .bind(&doc.mime_type)
        .bind(&doc.file_hash)
        .bind(Json(&log))
        .bind(Json(&doc.metadata))
        .bind(doc.chunking_config.as_ref().map(Json))
        .bind(doc.expires_at)
        .bind(now)
        .bind(doc.data_source_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if inserted.rows_affected() == 0 {
            let sql = format!(
                "SELECT {DOC_COLS} FROM documents
                 WHERE knowledge_base_id = $1 AND file_hash = $2 AND soft_deleted_at IS NULL"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(doc.knowledge_base_id)
                .bind(&doc.file_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            return Ok(Upload::Duplicate(doc_from(&row)?));
        }
        sqlx::query(
            "INSERT INTO jobs (id, kind, document_id, status, run_after, created_at)
             VALUES ($1, 'process_document', $2, 'queued', $3, $3)",
        )
        .bind(lore_core::new_id())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await.map_err(db_err)?;
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
             WHERE user_id = $1 AND knowledge_base_id = $2
               AND ($3 OR soft_deleted_at IS NULL)
               AND ($4::text IS NULL OR status = $4)
             ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        );
        let q = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(knowledge_base_id)
            .bind(query.include_deleted)
            .bind(query.status.map(DocStatus::as_str))
            .bind(query.limit)
            .bind(query.offset);
        let rows = self.tenant_all(user_id, q).await?;
        rows.iter().map(doc_from).collect()
    }

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        self.doc_by_id(user_id, id).await
    }

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>> {
        let q = sqlx::query("SELECT raw_content, processed_content FROM documents WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id);
        let row = self.tenant_one(user_id, q).await?;
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
            "SELECT {CHUNK_COLS} FROM document_chunks WHERE document_id = $1 AND user_id = $2 ORDER BY chunk_index"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(document_id).bind(user_id);
        let rows = self.tenant_all(user_id, rows).await?;
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
            "UPDATE documents SET soft_deleted_at = $1, updated_at = $1
             WHERE id = $2 AND user_id = $3 AND soft_deleted_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.doc_by_id(user_id, id).await
    }

    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>> {
        let result = sqlx::query(
            "UPDATE documents SET soft_deleted_at = NULL, expires_at = NULL, updated_at = $1
             WHERE id = $2 AND user_id = $3 AND soft_deleted_at IS NOT NULL",
        )
        .bind(lore_core::now())
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => match self.doc_by_id(user_id, id).await? {
                None => Ok(None),
                Some(_) => Err(Error::new(Code::NotDeleted, "the document is not deleted")),
            },
            Ok(_) => self.doc_by_id(user_id, id).await,
            Err(e) if is_unique_violation(&e, "idx_doc_kb_hash_live") => Err(Error::new(
                Code::DuplicateDocument,
                "the same content was uploaded again since this document was deleted; delete that copy first",
            )),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn blob_in_use(&self, file_path: &str) -> Result<bool> {
        let row: Option<i32> = sqlx::query_scalar("SELECT 1 FROM documents WHERE file_path = $1 LIMIT 1")
            .bind(file_path)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn ensure_file_types(&self, defaults: &[NewFileType]) -> Result<()> {
        let mut tx = self.tx().await?;
        let now = lore_core::now();
        for t in defaults {
            sqlx::query(
                "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
                   created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&t.name)
            .bind(&t.category)
            .bind(Json(&t.mime_types))
            .bind(Json(&t.extensions))
            .bind(Json(&t.parsers))
            .bind(Json(&t.embedding_models))
            .bind(t.is_active)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_file_types(&self) -> Result<Vec<FileType>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types ORDER BY id")))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(file_type_from).collect()
    }

    async fn create_file_type(&self, t: NewFileType) -> Result<FileType> {
        let result = sqlx::query(
            "INSERT INTO file_types (name, category, mime_types, extensions, parsers, embedding_models, is_active,
               created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&t.name)
        .bind(&t.category)
        .bind(Json(&t.mime_types))
        .bind(Json(&t.extensions))
        .bind(Json(&t.parsers))
        .bind(Json(&t.embedding_models))
        .bind(t.is_active)
        .bind(lore_core::now())
        .fetch_one(&self.pool)
        .await;
        let id: i64 = match result {
            Ok(row) => row.int("id")?,
            Err(e) if is_unique_violation(&e, "file_types_name") => {
                return Err(Error::new(Code::FileTypeExists, format!("a file type named '{}' exists", t.name)));
            }
            Err(e) => return Err(db_err(e)),
        };
        self.file_type_by_id(id).await?.ok_or_else(|| Error::internal("file type vanished"))
    }

    async fn update_file_type(&self, id: i64, p: FileTypePatch) -> Result<Option<FileType>> {
        let done = sqlx::query(
            "UPDATE file_types SET category = COALESCE($1, category), mime_types = COALESCE($2, mime_types),
               extensions = COALESCE($3, extensions), parsers = COALESCE($4, parsers),
               embedding_models = COALESCE($5, embedding_models), is_active = COALESCE($6, is_active), updated_at = $7
             WHERE id = $8",
        )
        .bind(&p.category)
        .bind(p.mime_types.as_ref().map(Json))
        .bind(p.extensions.as_ref().map(Json))
        .bind(p.parsers.as_ref().map(Json))
        .bind(p.embedding_models.as_ref().map(Json))
        .bind(p.is_active)
        .bind(lore_core::now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.file_type_by_id(id).await
    }

    /// Only for a store no other node uses: on a shared database, another node's running job is
    /// not interrupted just because this one starts; expired leases free crashed nodes' jobs.
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
        // job with the same turn number, counting the jobs the owner already has running. SKIP
        // LOCKED: nodes claiming at the same moment take different jobs instead of queuing behind
        // one another's row locks. The CTEs read the statement's snapshot, so the claimable test
        // is repeated on the locked row itself: a job another node claimed and committed after
        // that snapshot is re-read under the lock and skipped, never claimed twice.
        let row = sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2
             WHERE id = (WITH owned AS (SELECT j.id, j.status, j.run_after, j.locked_until, j.created_at,
                                               COALESCE(d.user_id, k.user_id) AS owner
                                        FROM jobs j
                                        LEFT JOIN documents d ON d.id = j.document_id
                                        LEFT JOIN knowledge_bases k ON k.id = j.knowledge_base_id),
                              busy AS (SELECT owner, COUNT(*) AS n FROM owned
                                       WHERE status = 'running' AND locked_until >= $3 GROUP BY owner),
                              turns AS (SELECT o.id, o.created_at,
                                               COALESCE(b.n, 0) + ROW_NUMBER() OVER
                                                   (PARTITION BY o.owner ORDER BY o.created_at, o.id) AS turn
                                        FROM owned o LEFT JOIN busy b ON b.owner = o.owner
                                        WHERE ((o.status = 'queued' AND o.run_after <= $3)
                                               OR (o.status = 'running' AND o.locked_until < $3))
                                          AND NOT (o.id = ANY($4)))
                         SELECT j.id FROM jobs j JOIN turns t ON t.id = j.id
                         WHERE (j.status = 'queued' AND j.run_after <= $3)
                            OR (j.status = 'running' AND j.locked_until < $3)
                         ORDER BY t.turn, t.created_at, t.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED)
               AND ((status = 'queued' AND run_after <= $3) OR (status = 'running' AND locked_until < $3))
             RETURNING id, kind, document_id, knowledge_base_id, attempts",
        )
        .bind(worker)
        .bind(until)
        .bind(now)
        .bind(skip)
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
            sqlx::query("UPDATE documents SET status = 'processing', progress = 5, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(doc)
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
            sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND status = 'running'")
                .bind(until)
                .bind(job_id)
                .bind(worker)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn retry_later(&self, job: &Job, worker: &str, delay: Duration) -> Result<()> {
        let after = lore_core::now() + chrono::Duration::from_std(delay).map_err(|e| Error::internal(e.to_string()))?;
        let mut tx = self.tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), locked_by = NULL,
                    locked_until = NULL, run_after = $1
             WHERE id = $2 AND locked_by = $3 AND status = 'running'",
        )
        .bind(after)
        .bind(job.id)
        .bind(worker)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() > 0
            && let Some(doc) = job.document_id
        {
            sqlx::query(
                "UPDATE documents SET status = 'pending', progress = 0 WHERE id = $1 AND status = 'processing'",
            )
            .bind(doc)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn document_for_job(&self, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(doc_from).transpose()
    }

    async fn knowledge_base_for_job(&self, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn set_progress(&self, document_id: Id, progress: i64, entry: Option<LogEntry>) -> Result<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE documents SET progress = $1, updated_at = $2 WHERE id = $3")
            .bind(progress.clamp(0, 100))
            .bind(lore_core::now())
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(entry) = entry {
            Self::append_log(&mut tx, document_id, &[entry]).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn complete_document(&self, job: &Job, document_id: Id, result: ProcessedDocument) -> Result<()> {
        let dims = result.chunks.iter().find_map(|c| c.embedding.as_ref()).map(|e| e.len() as i32);
        if let Some(dims) = dims {
            self.ensure_vector_index(dims).await?;
        }
        let mut tx = self.tx().await?;
        let owner = sqlx::query("SELECT user_id, knowledge_base_id FROM documents WHERE id = $1 FOR UPDATE")
            .bind(document_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(owner) = owner {
            let user_id = owner.id("user_id")?;
            let kb_id = owner.id("knowledge_base_id")?;
            let now = lore_core::now();
            // A retried job replaces whatever an interrupted attempt left behind.
            sqlx::query("DELETE FROM document_chunks WHERE document_id = $1")
                .bind(document_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut ids: Vec<Id> = Vec::with_capacity(result.chunks.len());
            for chunk in &result.chunks {
                let id = lore_core::new_id();
                let row = chunks::ChunkRow {
                    id,
                    document_id,
                    knowledge_base_id: kb_id,
                    user_id,
                    chunk_index: chunk.chunk_index,
                    parent: chunk.parent_index.and_then(|i| ids.get(i)).copied(),
                    embedding_model: result.embedding_model.as_deref(),
                    created_at: now,
                    edited_at: None,
                };
                chunks::insert_chunk(&mut tx, &row, chunk).await?;
                ids.push(id);
            }
            sqlx::query(
                "UPDATE documents SET status = 'completed', progress = 100, title = COALESCE(title, $1), raw_content = $2,
                   processed_content = $3, source_metadata = $4, error_code = NULL, error_message = NULL,
                   processed_at = $5, updated_at = $5
                 WHERE id = $6",
            )
            .bind(&result.title)
            .bind(&result.raw_content)
            .bind(&result.processed_content)
            .bind(Json(&result.source_metadata))
            .bind(now)
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            Self::append_log(&mut tx, document_id, &result.log).await?;
            // A knowledge base's first embeddings decide the space its search uses.
            if let Some(space) = &result.embedding_model {
                sqlx::query(
                    "UPDATE knowledge_bases SET embedding_space = $1 WHERE id = $2 AND embedding_space IS NULL",
                )
                .bind(space)
                .bind(kb_id)
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
        let now = lore_core::now();
        sqlx::query("DELETE FROM document_chunks WHERE document_id = $1")
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE documents SET status = 'failed', progress = 100, error_code = $1, error_message = $2,
               processed_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(code)
        .bind(message)
        .bind(now)
        .bind(document_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Self::append_log(&mut tx, document_id, &log).await?;
        self.finish_job(tx, job).await
    }

    async fn expire_documents(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE documents SET soft_deleted_at = $1, updated_at = $1
             WHERE expires_at IS NOT NULL AND expires_at <= $1 AND soft_deleted_at IS NULL",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn purge_deleted_documents(&self, before: Timestamp) -> Result<Vec<String>> {
        let mut tx = self.tx().await?;
        let rows = sqlx::query(
            "SELECT id, file_path FROM documents WHERE soft_deleted_at IS NOT NULL AND soft_deleted_at <= $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut paths = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.id("id")?;
            sqlx::query("DELETE FROM document_chunks WHERE document_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(db_err)?;
            paths.push(row.text("file_path")?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(paths)
    }

    async fn purge_conversations(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM conversations c USING knowledge_base_configs k
             WHERE k.user_id = c.user_id AND k.conversation_retention_days IS NOT NULL
               AND c.updated_at < $1 - make_interval(days => k.conversation_retention_days::int)",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn purge_usage_logs(&self, success_before: Timestamp, error_before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM api_usage_logs
             WHERE (status_code < 400 AND created_at < $1) OR (status_code >= 400 AND created_at < $2)",
        )
        .bind(success_before)
        .bind(error_before)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn document_status_counts(&self) -> Result<Vec<(DocStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM documents WHERE soft_deleted_at IS NULL GROUP BY status")
                .fetch_all(&self.pool)
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
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn queue_reembedding(&self, knowledge_base_id: Id) -> Result<()> {
        let now = lore_core::now();
        sqlx::query(
            "INSERT INTO jobs (id, kind, knowledge_base_id, run_after, created_at)
             SELECT $1, 'reembed', $2, $3, $3 WHERE NOT EXISTS
               (SELECT 1 FROM jobs WHERE kind = 'reembed' AND knowledge_base_id = $2 AND status = 'queued')",
        )
        .bind(lore_core::new_id())
        .bind(knowledge_base_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn chunks_to_reembed(&self, knowledge_base_id: Id, space: &str, limit: i64) -> Result<Vec<ChunkToEmbed>> {
        let rows = sqlx::query(
            "SELECT c.seq, c.content, c.content_hash, d.title FROM document_chunks c
             JOIN documents d ON d.id = c.document_id
             LEFT JOIN chunk_reembeddings r ON r.chunk_seq = c.seq AND r.embedding_model = $1
             WHERE c.knowledge_base_id = $2 AND c.content_embedding IS NOT NULL
               AND c.embedding_model IS DISTINCT FROM $1 AND r.chunk_seq IS NULL
             ORDER BY c.seq LIMIT $3",
        )
        .bind(space)
        .bind(knowledge_base_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(chunk_to_embed_from).collect()
    }

    async fn save_reembedded(&self, knowledge_base_id: Id, space: &str, rows: &[Reembedded]) -> Result<()> {
        let mut tx = self.tx().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO chunk_reembeddings
                   (chunk_seq, knowledge_base_id, embedding_model, content_embedding, summary_embedding)
                 SELECT seq, knowledge_base_id, $1, $2::vector, $3::vector FROM document_chunks
                 WHERE seq = $4 AND knowledge_base_id = $5
                 ON CONFLICT (chunk_seq) DO UPDATE SET embedding_model = excluded.embedding_model,
                   content_embedding = excluded.content_embedding, summary_embedding = excluded.summary_embedding",
            )
            .bind(space)
            .bind(vector_text(&row.embedding))
            .bind(row.summary_embedding.as_deref().map(vector_text))
            .bind(row.seq)
            .bind(knowledge_base_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_reembedding(&self, job: &Job, knowledge_base_id: Id, space: &str) -> Result<u64> {
        let dims: Option<i32> = sqlx::query_scalar(
            "SELECT vector_dims(content_embedding) FROM chunk_reembeddings
             WHERE knowledge_base_id = $1 AND embedding_model = $2 LIMIT 1",
        )
        .bind(knowledge_base_id)
        .bind(space)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if let Some(dims) = dims {
            self.ensure_vector_index(dims).await?;
        }
        let mut tx = self.tx().await?;
        let switched = sqlx::query(
            "UPDATE document_chunks SET content_embedding = r.content_embedding,
                    summary_embedding = r.summary_embedding, embedding_model = r.embedding_model,
                    embedding_dims = CASE WHEN document_chunks.enabled THEN vector_dims(r.content_embedding) END
             FROM chunk_reembeddings r
             WHERE r.chunk_seq = document_chunks.seq AND r.embedding_model = $1 AND r.knowledge_base_id = $2",
        )
        .bind(space)
        .bind(knowledge_base_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        sqlx::query("DELETE FROM chunk_reembeddings WHERE knowledge_base_id = $1")
            .bind(knowledge_base_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE knowledge_bases SET embedding_space = $1 WHERE id = $2")
            .bind(space)
            .bind(knowledge_base_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        self.finish_job(tx, job).await?;
        Ok(switched)
    }

    async fn drop_job(&self, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = $1").bind(job.id).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn cached_embeddings(
        &self,
        user_id: Id,
        model: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (content_hash) content_hash, content_embedding::text AS embedding
             FROM document_chunks
             WHERE embedding_model = $1 AND user_id = $3 AND content_embedding IS NOT NULL AND content_hash = ANY($2)",
        )
        .bind(model)
        .bind(hashes)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| Ok((r.text("content_hash")?, parse_vector(&r.text("embedding")?)?))).collect()
    }

    async fn search_fulltext(&self, query: &FulltextQuery) -> Result<Vec<ChunkHit>> {
        self.fulltext(query).await
    }

    async fn search_vector(&self, query: &VectorQuery) -> Result<Vec<ChunkHit>> {
        self.vector(query).await
    }
}

/// `query.tenant_all(store, user)`: [`PgStore::tenant_all`] at the end of a query's chain.
pub(crate) trait AsTenant {
    async fn tenant_all(self, store: &PgStore, user_id: Id) -> Result<Vec<PgRow>>;
    async fn tenant_one(self, store: &PgStore, user_id: Id) -> Result<Option<PgRow>>;
}

impl AsTenant for PgQuery<'_> {
    async fn tenant_all(self, store: &PgStore, user_id: Id) -> Result<Vec<PgRow>> {
        store.tenant_all(user_id, self).await
    }
    async fn tenant_one(self, store: &PgStore, user_id: Id) -> Result<Option<PgRow>> {
        store.tenant_one(user_id, self).await
    }
}

/// Runs a transaction again when PostgreSQL aborted it to break a deadlock or a serialisation
/// conflict with a concurrent one: the second attempt finds the other's work committed.
async fn retry_when_busy<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.code == Code::DatabaseBusy && tries < 3 => tries += 1,
            outcome => return outcome,
        }
    }
}

/// Names the tenant of a transaction for row-level security (until it ends), and turns the
/// system bypass off for it: the transaction sees that tenant's rows and nobody else's.
pub(crate) async fn set_tenant(tx: &mut Transaction<'static, Postgres>, user_id: Id) -> Result<()> {
    sqlx::query("SELECT set_config('lore.tenant', $1, true), set_config('lore.system', 'off', true)")
        .bind(user_id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Creates the HNSW indexes (content and summary) of one dimension if they are missing: the seed's
/// parameters (cosine distance, m = 16, ef_construction = 64), partial and over a cast so that
/// knowledge bases of different dimensions share the table.
pub(crate) async fn create_vector_index(pool: &PgPool, dims: i32) -> Result<()> {
    let Some(kind) = index_type(dims) else { return Ok(()) };
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Two nodes meeting a new dimension at once: one builds, the other waits and finds it.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(0x6c6f_7265_0000_0000_i64 + i64::from(dims))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    for field in ["content", "summary"] {
        let sql = format!(
            "CREATE INDEX IF NOT EXISTS idx_chunks_{field}_hnsw_{dims} ON document_chunks
             USING hnsw (({field}_embedding::{kind}({dims})) {kind}_cosine_ops) WITH (m = 16, ef_construction = 64)
             WHERE embedding_dims = {dims}"
        );
        sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

/// Whether the connected role skips row-level security (SUPERUSER or BYPASSRLS): then the wall
/// behind every tenant query is not there, and `lore serve` refuses to start without
/// `--allow-rls-bypass`.
pub async fn role_bypasses_row_security(pool: &PgPool) -> Result<bool> {
    sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        .fetch_one(pool)
        .await
        .map_err(db_err)
}

/// Creates an empty schema in the database at `url` and returns a URL whose connections work in
/// it (pgvector's types stay visible through `public`): one isolated database per test, or per
/// test cluster of nodes, on one server.
#[cfg(feature = "testing")]
pub async fn create_scratch_schema(url: &str) -> Result<String> {
    let schema = format!("lore_t_{}", uuid::Uuid::new_v4().simple());
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| Error::internal(format!("cannot connect to PostgreSQL: {e}")))?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE EXTENSION IF NOT EXISTS vector; CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .map_err(db_err)?;
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options=-c%20search_path%3D{schema}%2Cpublic"))
}
