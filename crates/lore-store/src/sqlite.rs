//! The embedded store: SQLite in WAL mode. One writer connection (SQLite allows one writer at a
//! time; a pool of writers only produces "database is locked"), a pool of readers beside it.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::Store;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, Sqlite, Transaction};

use crate::fetch::Fetch;
use crate::rows::*;
use crate::schema;
use crate::vectors::{self, VectorIndexes};

mod accounts;
mod agents;
mod audit;
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

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    vectors: VectorIndexes,
}

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

    /// Deletes a tenant's row of `table` by id; whether there was one.
    async fn delete_owned(&self, table: &str, user_id: Id, id: Id) -> Result<bool> {
        let sql = format!("DELETE FROM {table} WHERE id = ? AND user_id = ?");
        let done =
            sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).bind(user_id.to_string()).run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer.begin().await.map_err(db_err)
    }

    /// Deletes the finished job in the transaction that stored its work, commits, and brings the
    /// vector index up to date now rather than on the next search.
    async fn finish_job(&self, mut tx: Transaction<'static, Sqlite>, job: &Job) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?").bind(job.id.to_string()).run(&mut *tx).await?;
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
            .optional(&mut **tx)
            .await?;
        let mut log: Vec<LogEntry> = match existing {
            Some(s) => serde_json::from_str(&s)?,
            None => return Ok(()),
        };
        log.extend_from_slice(entries);
        sqlx::query("UPDATE documents SET processing_log = ? WHERE id = ?")
            .bind(json_text(&log)?)
            .bind(document_id.to_string())
            .run(&mut **tx)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").run(&self.reader).await?;
        Ok(())
    }
}

/// The full-text token that stands for a knowledge base (letters and digits only).
pub(crate) fn kb_token(id: Id) -> String {
    format!("kb{}", id.simple())
}

impl SqliteStore {
    async fn file_type_by_id(&self, pool: &SqlitePool, id: i64) -> Result<Option<FileType>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {FILE_TYPE_COLS} FROM file_types WHERE id = ?")))
            .bind(id)
            .optional(pool)
            .await?;
        row.as_ref().map(file_type_from).transpose()
    }

    async fn user_by_id(&self, pool: &SqlitePool, id: Id) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).optional(pool).await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn kb_by_id(&self, pool: &SqlitePool, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>> {
        let sql = format!("SELECT {KB_COLS} FROM knowledge_bases WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).bind(user_id.to_string()).optional(pool).await?;
        row.as_ref().map(kb_from).transpose()
    }

    async fn doc_by_id(&self, pool: &SqlitePool, user_id: Id, id: Id) -> Result<Option<Document>> {
        let sql = format!("SELECT {DOC_COLS} FROM documents WHERE id = ? AND user_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).bind(user_id.to_string()).optional(pool).await?;
        row.as_ref().map(doc_from).transpose()
    }
}
