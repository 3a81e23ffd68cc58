//! `lore migrate`: copies an embedded installation (SQLite) into PostgreSQL, embeddings included,
//! so nothing is re-embedded. The other way, [`postgres_to_sqlite`] writes a PostgreSQL
//! installation's snapshot as an embedded database, which is what `lore backup` archives.
//!
//! Rows are copied table by table in foreign-key order, in batches, each insert skipping rows the
//! target already has: an interrupted run is simply run again and resumes. The statistics the
//! triggers keep are then set to the source's values, sequences moved past the copied keys, and
//! the copy verified: equal row counts in every table, and equal checksums over documents,
//! chunks and their embeddings.

use std::path::Path;

use lore_core::error::{Error, Result};
use lore_core::store::Store;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};

use crate::fetch::Fetch;
use crate::postgres::{PgStore, parse_vector, vector_text};
use crate::rows::db_err;
use crate::{SqliteStore, vectors};

/// Tables in an order that satisfies every foreign key, with the key that orders their rows.
pub(crate) const TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("workspace_members", "id"),
    ("workspace_invitations", "id"),
    ("sessions", "id"),
    ("invitations", "id"),
    ("knowledge_base_configs", "id"),
    ("knowledge_bases", "id"),
    ("knowledge_base_shares", "id"),
    ("file_types", "id"),
    ("data_sources", "id"),
    ("data_source_syncs", "id"),
    ("documents", "id"),
    ("document_chunks", "seq"),
    ("chunk_reembeddings", "chunk_seq"),
    ("api_keys", "id"),
    ("api_usage_logs", "id"),
    ("ai_agents", "id"),
    ("ai_agent_data_sources", "id"),
    ("ai_agent_file_types", "id"),
    ("ai_agent_knowledge_bases", "id"),
    ("conversations", "id"),
    ("messages", "rowid"),
    ("message_cited_documents", "id"),
    ("agent_usage", "id"),
    ("notifications", "id"),
    ("audit_log", "id"),
    ("evaluations", "id"),
    ("jobs", "id"),
    // The master key's check value: the nodes on PostgreSQL must hold the embedded node's key.
    ("cluster_settings", "name"),
];

/// Columns holding embeddings: little-endian f32 blobs on SQLite, pgvector's `vector` here.
const VECTOR_COLUMNS: &[&str] = &["content_embedding", "summary_embedding"];

/// Serial keys whose sequences must move past the copied values.
const SERIALS: &[(&str, &str)] = &[
    ("document_chunks", "seq"),
    ("file_types", "id"),
    ("ai_agent_data_sources", "id"),
    ("ai_agent_file_types", "id"),
    ("ai_agent_knowledge_bases", "id"),
    ("message_cited_documents", "id"),
];

/// Bind parameters per statement stay well under PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;

#[derive(Debug, Default)]
pub struct TransferReport {
    /// Rows per table in the source, in copy order.
    pub tables: Vec<(String, i64)>,
    /// Rows inserted by this run (less than the total when resuming).
    pub inserted: u64,
    /// Checksums that matched: documents, chunks, embeddings.
    pub checksums: Vec<(String, String)>,
}

/// Copies the database of the data directory `from` into the PostgreSQL database at `to`.
/// `progress` hears of each table as it is done.
pub async fn sqlite_to_postgres(from: &Path, to: &str, progress: &dyn Fn(&str, i64)) -> Result<TransferReport> {
    let db = from.join("lore.db");
    if !db.exists() {
        return Err(Error::internal(format!("no Lore database at {}", db.display())));
    }
    // Bring the source's schema up to date first (the binary may be newer than the data).
    SqliteStore::open(&db).await?.close().await;
    let source = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(SqliteConnectOptions::new().filename(&db).read_only(true))
        .await
        .map_err(db_err)?;
    let target_store = PgStore::open(to).await?;
    let target = target_store.pool().clone();

    let mut report = TransferReport::default();
    for (table, key) in TABLES {
        let (rows, inserted) = copy_table(&source, &target, table, key).await?;
        progress(table, rows);
        report.tables.push((table.to_string(), rows));
        report.inserted += inserted;
    }
    finish_chunks(&source, &target).await?;
    restore_statistics(&source, &target).await?;
    for (table, column) in SERIALS {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST(COALESCE(MAX({column}), 0), 1)) FROM {table}"
        );
        sqlx::query(AssertSqlSafe(sql)).run(&target).await?;
    }
    verify_counts(&target, &report.tables).await?;
    report.checksums = verify_checksums(&source, &target).await?;
    source.close().await;
    target_store.close().await;
    Ok(report)
}

/// The target's columns of a table with their types (`udt_name`: uuid, int8, jsonb, vector ...).
async fn target_columns(target: &PgPool, table: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, udt_name::text AS kind FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .all(target)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("name").map_err(db_err)?, r.try_get("kind").map_err(db_err)?))).collect()
}

async fn source_columns(source: &SqlitePool, table: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')"))).all(source).await?;
    rows.iter().map(|r| r.try_get("name").map_err(db_err)).collect()
}

enum Key {
    Int(i64),
    Text(String),
}

/// Copies one table; returns the source's row count and how many rows were new to the target.
async fn copy_table(source: &SqlitePool, target: &PgPool, table: &str, key: &str) -> Result<(i64, u64)> {
    let present = source_columns(source, table).await?;
    let columns: Vec<(String, String)> =
        target_columns(target, table).await?.into_iter().filter(|(name, _)| present.contains(name)).collect();
    let select: Vec<String> = columns
        .iter()
        .map(|(name, _)| {
            if VECTOR_COLUMNS.contains(&name.as_str()) {
                name.clone()
            } else {
                format!("CAST({name} AS TEXT) AS {name}")
            }
        })
        .collect();
    let per_batch = (MAX_PARAMS / columns.len().max(1)).clamp(1, 2000);
    let names = columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let mut total = 0i64;
    let mut inserted = 0u64;
    // Keyset pagination: each batch starts after the last key of the one before.
    let mut after: Option<Key> = None;
    loop {
        // The key is named with its table: a bare name would mean the text copy of it selected below.
        let start = if after.is_some() { format!("WHERE {table}.{key} > ?1") } else { "WHERE ?1 IS NULL".into() };
        let sql = format!(
            "SELECT {table}.{key} AS lore_key, {} FROM {table} {start} ORDER BY {table}.{key} LIMIT ?2",
            select.join(", ")
        );
        let query = sqlx::query(AssertSqlSafe(sql));
        let query = match &after {
            None => query.bind(None::<i64>),
            Some(Key::Int(k)) => query.bind(*k),
            Some(Key::Text(k)) => query.bind(k.clone()),
        };
        let rows = query.bind(per_batch as i64).all(source).await?;
        let Some(last) = rows.last() else { break };
        after = Some(match last.try_get::<i64, _>("lore_key") {
            Ok(k) => Key::Int(k),
            Err(_) => Key::Text(last.try_get("lore_key").map_err(db_err)?),
        });
        total += rows.len() as i64;
        let mut values = Vec::with_capacity(rows.len());
        let mut params: Vec<Option<String>> = Vec::with_capacity(rows.len() * columns.len());
        for row in &rows {
            let mut placeholders = Vec::with_capacity(columns.len());
            for (name, kind) in &columns {
                let value = if VECTOR_COLUMNS.contains(&name.as_str()) {
                    let blob: Option<Vec<u8>> = row.try_get(name.as_str()).map_err(db_err)?;
                    blob.map(|b| vector_text(&vectors::from_blob(&b)))
                } else {
                    row.try_get::<Option<String>, _>(name.as_str()).map_err(db_err)?
                };
                params.push(value);
                placeholders.push(format!("${}::{kind}", params.len()));
            }
            values.push(format!("({})", placeholders.join(", ")));
        }
        let sql = format!("INSERT INTO {table} ({names}) VALUES {} ON CONFLICT DO NOTHING", values.join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            query = query.bind(p);
        }
        inserted += query.run(target).await?.rows_affected();
    }
    Ok((total, inserted))
}

/// What PostgreSQL keeps beside a chunk and SQLite keeps elsewhere: the dimension that picks its
/// HNSW index (none for a disabled chunk, which no search finds), and its full-text terms (in
/// SQLite's FTS5 table, which holds none for a disabled chunk either).
async fn finish_chunks(source: &SqlitePool, target: &PgPool) -> Result<()> {
    sqlx::query(
        "UPDATE document_chunks SET embedding_dims = vector_dims(content_embedding)
         WHERE embedding_dims IS NULL AND content_embedding IS NOT NULL AND enabled",
    )
    .run(target)
    .await?;
    let mut after = 0i64;
    loop {
        let rows = sqlx::query("SELECT rowid AS seq, terms FROM chunk_fts WHERE rowid > ? ORDER BY rowid LIMIT 5000")
            .bind(after)
            .all(source)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("seq").map_err(db_err)?;
        let seqs: Vec<i64> =
            rows.iter().map(|r| r.try_get("seq")).collect::<std::result::Result<_, _>>().map_err(db_err)?;
        let terms: Vec<String> =
            rows.iter().map(|r| r.try_get("terms")).collect::<std::result::Result<_, _>>().map_err(db_err)?;
        sqlx::query(
            "UPDATE document_chunks c SET fts = to_tsvector('simple', t.terms)
             FROM UNNEST($1::int8[], $2::text[]) AS t(seq, terms) WHERE c.seq = t.seq AND c.fts IS NULL",
        )
        .bind(seqs)
        .bind(terms)
        .run(target)
        .await?;
    }
    // The HNSW indexes of every dimension present, built once over the copied rows.
    let store_dims: Vec<i32> =
        sqlx::query_scalar("SELECT DISTINCT embedding_dims FROM document_chunks WHERE embedding_dims IS NOT NULL")
            .all(target)
            .await?;
    for dims in store_dims {
        crate::postgres::create_vector_index(target, dims).await?;
    }
    Ok(())
}

/// The columns the triggers keep, with their PostgreSQL types: a copy sets them to the source's
/// values afterwards, since the triggers counted the copied rows again.
const STATISTICS: &[(&str, &[(&str, &str)])] = &[
    ("users", &[("storage_used", "int8"), ("api_calls_count", "int8")]),
    (
        "knowledge_bases",
        &[
            ("document_count", "int8"),
            ("total_size_bytes", "int8"),
            ("chunk_count", "int8"),
            ("last_updated_at", "timestamptz"),
        ],
    ),
    ("documents", &[("chunk_count", "int8")]),
];

/// The triggers counted the copied rows again; the source's statistics are the truth.
async fn restore_statistics(source: &SqlitePool, target: &PgPool) -> Result<()> {
    for (table, columns) in STATISTICS {
        let select = columns.iter().map(|(c, _)| format!("CAST({c} AS TEXT) AS {c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT id, {select} FROM {table}"))).all(source).await?;
        for batch in rows.chunks(5000) {
            let ids: Vec<String> =
                batch.iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>().map_err(db_err)?;
            let sets = columns.iter().map(|(c, _)| format!("{c} = v.{c}")).collect::<Vec<_>>().join(", ");
            let arrays = columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| format!("${}::text[]::{kind}[]", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let names = columns.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE {table} t SET {sets} FROM UNNEST($1::text[]::uuid[], {arrays}) AS v(id, {names}) WHERE t.id = v.id"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(ids);
            for (column, _) in columns.iter() {
                let values: Vec<Option<String>> =
                    batch.iter().map(|r| r.try_get(*column)).collect::<std::result::Result<_, _>>().map_err(db_err)?;
                query = query.bind(values);
            }
            query.run(target).await?;
        }
    }
    Ok(())
}

async fn verify_counts(target: &PgPool, expected: &[(String, i64)]) -> Result<()> {
    for (table, rows) in expected {
        let found: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).one(target).await?;
        if found != *rows {
            return Err(Error::internal(format!(
                "{table}: {rows} rows in the source, {found} in PostgreSQL; run the migration again to finish it"
            )));
        }
    }
    Ok(())
}

/// SHA-256 over documents (id, content hash), chunks (id, content hash) and every embedding's
/// exact bits, read in the same order from both sides.
async fn verify_checksums(source: &SqlitePool, target: &PgPool) -> Result<Vec<(String, String)>> {
    let mut sums = Vec::new();
    for (what, sqlite_sql, pg_sql) in [
        (
            "documents",
            "SELECT id, file_hash AS hash FROM documents ORDER BY id",
            "SELECT id::text AS id, file_hash AS hash FROM documents ORDER BY id::text COLLATE \"C\"",
        ),
        (
            "chunks",
            "SELECT id, content_hash AS hash FROM document_chunks ORDER BY id",
            "SELECT id::text AS id, content_hash AS hash FROM document_chunks ORDER BY id::text COLLATE \"C\"",
        ),
    ] {
        let mut left = Sha256::new();
        for r in sqlx::query(sqlite_sql).all(source).await? {
            left.update(format!(
                "{}:{}\n",
                r.try_get::<String, _>("id").map_err(db_err)?,
                r.try_get::<String, _>("hash").map_err(db_err)?
            ));
        }
        let mut right = Sha256::new();
        for r in sqlx::query(pg_sql).all(target).await? {
            right.update(format!(
                "{}:{}\n",
                r.try_get::<String, _>("id").map_err(db_err)?,
                r.try_get::<String, _>("hash").map_err(db_err)?
            ));
        }
        sums.push((what.to_string(), compare(what, left, right)?));
    }
    // Embeddings, bit for bit, in batches by seq.
    let (mut left, mut right) = (Sha256::new(), Sha256::new());
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, content_embedding FROM document_chunks WHERE seq > ? AND content_embedding IS NOT NULL
             ORDER BY seq LIMIT 5000",
        )
        .bind(after)
        .all(source)
        .await?;
        let Some(last) = rows.last() else { break };
        let upto: i64 = last.try_get("seq").map_err(db_err)?;
        for r in &rows {
            left.update(r.try_get::<Vec<u8>, _>("content_embedding").map_err(db_err)?);
        }
        let theirs = sqlx::query(
            "SELECT content_embedding::text AS v FROM document_chunks
             WHERE seq > $1 AND seq <= $2 AND content_embedding IS NOT NULL ORDER BY seq",
        )
        .bind(after)
        .bind(upto)
        .all(target)
        .await?;
        for r in &theirs {
            right.update(vectors::to_blob(&parse_vector(&r.try_get::<String, _>("v").map_err(db_err)?)?));
        }
        after = upto;
    }
    sums.push(("embeddings".to_string(), compare("embeddings", left, right)?));
    Ok(sums)
}

fn compare(what: &str, left: Sha256, right: Sha256) -> Result<String> {
    let (l, r) = (hex::encode(left.finalize()), hex::encode(right.finalize()));
    if l != r {
        return Err(Error::internal(format!("{what} differ between the source ({l}) and PostgreSQL ({r})")));
    }
    Ok(l)
}

/// Writes a consistent snapshot of the PostgreSQL installation `source` as a new embedded
/// database at `target` (which must not exist): every table is read inside one repeatable-read
/// transaction, so the copy is the database at one instant while the nodes go on writing.
/// Embeddings come over bit for bit; each chunk's full-text terms are rebuilt from its tsvector
/// (its lexemes in position order), which is what PostgreSQL ranks by.
pub async fn postgres_to_sqlite(source: &PgStore, target: &Path) -> Result<()> {
    // The embedded schema, current migrations and triggers included.
    SqliteStore::open(target).await?.close().await;
    let sqlite = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(target)
                // Rows arrive in foreign-key order; a chunk may name a parent copied later.
                .foreign_keys(false)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Off),
        )
        .await
        .map_err(db_err)?;
    let mut snapshot = source.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").run(&mut *snapshot).await?;
    let mut out = sqlite.begin().await.map_err(db_err)?;
    // A new embedded database has its seed rows (file types); the snapshot's replace them.
    for (table, _) in TABLES.iter().rev() {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}"))).run(&mut *out).await?;
    }
    for (table, key) in TABLES {
        copy_out(&mut snapshot, &mut out, table, key).await?;
    }
    for (table, columns) in STATISTICS {
        let select = columns.iter().map(|(c, kind)| as_sqlite_text(c, kind)).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT id::text AS id, {select} FROM {table}")))
            .all(&mut *snapshot)
            .await?;
        let sets = columns.iter().map(|(c, _)| format!("{c} = ?")).collect::<Vec<_>>().join(", ");
        let sql = format!("UPDATE {table} SET {sets} WHERE id = ?");
        for row in &rows {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for (column, _) in columns.iter() {
                query = query.bind(row.try_get::<Option<String>, _>(*column).map_err(db_err)?);
            }
            query.bind(row.try_get::<String, _>("id").map_err(db_err)?).run(&mut *out).await?;
        }
    }
    out.commit().await.map_err(db_err)?;
    snapshot.rollback().await.map_err(db_err)?;
    sqlite.close().await;
    Ok(())
}

/// A PostgreSQL column as the text the embedded store keeps: timestamps in its sortable UTC
/// format, booleans as 0/1, the rest as PostgreSQL prints them (SQLite's column affinity makes
/// numbers of numbers).
fn as_sqlite_text(column: &str, kind: &str) -> String {
    match kind {
        "timestamptz" => {
            format!(r#"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS {column}"#)
        }
        "bool" => format!("({column})::int::text AS {column}"),
        _ => format!("({column})::text AS {column}"),
    }
}

/// Copies one table out of the snapshot, in batches ordered by its key.
async fn copy_out(
    snapshot: &mut sqlx::PgConnection, out: &mut sqlx::SqliteConnection, table: &str, key: &str,
) -> Result<()> {
    let ours: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
        .all(&mut *out)
        .await?;
    let theirs = sqlx::query(
        "SELECT column_name::text AS name, udt_name::text AS kind FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .all(&mut *snapshot)
    .await?;
    let mut columns = Vec::new();
    let mut key_kind = None;
    // Messages are ordered by rowid on SQLite, by seq here: copying in seq order keeps it.
    let key = if key == "rowid" { "seq" } else { key };
    for row in &theirs {
        let (name, kind): (String, String) =
            (row.try_get("name").map_err(db_err)?, row.try_get("kind").map_err(db_err)?);
        if name == key {
            key_kind = Some(kind.clone());
        }
        if ours.contains(&name) {
            columns.push((name, kind));
        }
    }
    let key_kind = key_kind.ok_or_else(|| Error::internal(format!("{table} has no column {key} on PostgreSQL")))?;
    let chunks = table == "document_chunks";
    let mut select: Vec<String> = columns.iter().map(|(name, kind)| as_sqlite_text(name, kind)).collect();
    let mut names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    if chunks {
        // What the embedded store keeps beside an indexed chunk: its distinct terms, and the
        // terms themselves in its full-text table.
        select.push("length(fts) AS lore_fts_length".into());
        select.push(
            "(SELECT string_agg(t.lexeme, ' ' ORDER BY p) FROM unnest(fts) t, unnest(t.positions) p) AS lore_fts_terms"
                .into(),
        );
        names.push("fts_length");
    }
    let insert = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), vec!["?"; names.len()].join(", "));
    let mut after: Option<String> = None;
    loop {
        // The key is named with its table: a bare name would mean the text copy of it selected
        // below, which sorts "10" before "9".
        let start = if after.is_some() {
            format!("WHERE {table}.{key} > $1::{key_kind}")
        } else {
            "WHERE $1::text IS NULL".into()
        };
        let sql = format!(
            "SELECT ({table}.{key})::text AS lore_key, {} FROM {table} {start} ORDER BY {table}.{key} LIMIT 2000",
            select.join(", ")
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(after.as_deref()).all(&mut *snapshot).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.try_get("lore_key").map_err(db_err)?);
        for row in &rows {
            let mut query = sqlx::query(AssertSqlSafe(insert.clone()));
            for (name, kind) in &columns {
                let text: Option<String> = row.try_get(name.as_str()).map_err(db_err)?;
                query = if kind == "vector" {
                    query.bind(text.map(|v| parse_vector(&v)).transpose()?.map(|v| vectors::to_blob(&v)))
                } else {
                    query.bind(text)
                };
            }
            if chunks {
                query = query.bind(row.try_get::<Option<i32>, _>("lore_fts_length").map_err(db_err)?);
            }
            query.run(&mut *out).await?;
            if chunks && let Some(terms) = row.try_get::<Option<String>, _>("lore_fts_terms").map_err(db_err)? {
                let seq: String = row.try_get("seq").map_err(db_err)?;
                let kb: String = row.try_get("knowledge_base_id").map_err(db_err)?;
                let kb = uuid::Uuid::parse_str(&kb).map_err(|e| Error::internal(format!("bad id {kb:?}: {e}")))?;
                sqlx::query("INSERT INTO chunk_fts (rowid, terms, kb) VALUES (?, ?, ?)")
                    .bind(seq.parse::<i64>().map_err(|e| Error::internal(format!("bad seq {seq:?}: {e}")))?)
                    .bind(terms)
                    .bind(crate::sqlite::kb_token(kb))
                    .run(&mut *out)
                    .await?;
            }
        }
    }
    Ok(())
}
