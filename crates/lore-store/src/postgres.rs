//! The shared store: PostgreSQL with pgvector. Any number of `lore serve` nodes use one database;
//! the queue is claimed with `FOR UPDATE SKIP LOCKED`, vectors are searched by pgvector's HNSW
//! indexes (one per dimension), full text by a GIN index over Lore's own segmentation.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::Store;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::fetch::Fetch;
use crate::rows::*;
use crate::schema;

mod accounts;
mod agents;
mod audit;
pub mod blobs;
mod chunks;
mod cluster;
mod documents;
mod evaluations;
mod keys;
mod knowledge_bases;
mod queue;
mod retention;
mod search;
mod sources;
mod workspaces;

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

    /// Deletes a tenant's row of `table` by id; whether there was one.
    async fn delete_owned(&self, table: &str, user_id: Id, id: Id) -> Result<bool> {
        let sql = format!("DELETE FROM {table} WHERE id = $1 AND user_id = $2");
        let done = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(user_id).run(&self.pool).await?;
        Ok(done.rows_affected() > 0)
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
        let rows = query.all(&mut *tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(rows)
    }

    pub(crate) async fn tenant_one(&self, user_id: Id, query: PgQuery<'_>) -> Result<Option<PgRow>> {
        Ok(self.tenant_all(user_id, query).await?.into_iter().next())
    }

    async fn finish_job(&self, mut tx: Transaction<'static, Postgres>, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = $1").bind(job.id).run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn append_log(tx: &mut Transaction<'static, Postgres>, document_id: Id, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE documents SET processing_log = processing_log || $1 WHERE id = $2")
            .bind(Json(entries))
            .bind(document_id)
            .run(&mut **tx)
            .await?;
        Ok(())
    }

    async fn user_by_id(&self, id: Id) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).optional(&self.pool).await?;
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
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).optional(&self.pool).await?;
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
        sqlx::query("SELECT 1").run(&self.pool).await?;
        Ok(())
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
        .run(&mut **tx)
        .await?;
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
        .run(&mut *tx)
        .await?;
    for field in ["content", "summary"] {
        let sql = format!(
            "CREATE INDEX IF NOT EXISTS idx_chunks_{field}_hnsw_{dims} ON document_chunks
             USING hnsw (({field}_embedding::{kind}({dims})) {kind}_cosine_ops) WITH (m = 16, ef_construction = 64)
             WHERE embedding_dims = {dims}"
        );
        sqlx::query(AssertSqlSafe(sql)).run(&mut *tx).await?;
    }
    tx.commit().await.map_err(db_err)
}

/// Whether the connected role skips row-level security (SUPERUSER or BYPASSRLS): then the wall
/// behind every tenant query is not there, and `lore serve` refuses to start without
/// `--allow-rls-bypass`.
pub async fn role_bypasses_row_security(pool: &PgPool) -> Result<bool> {
    sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").one(pool).await
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
