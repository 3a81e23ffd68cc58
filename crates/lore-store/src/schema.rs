//! Versioned schema migrations, embedded in the binary. Each runs once, in a transaction, and is
//! recorded with a checksum so an edited migration is caught instead of silently diverging.

use lore_core::error::{Error, Result};
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
    /// The oldest schema version whose nodes still work on the schema this migration leaves: its
    /// own version unless it only adds (tables, nullable columns) what older nodes never read.
    /// Nodes are upgraded one at a time; an older node refuses a schema it cannot read.
    pub readable_by: i64,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "merged data model of seeds 000 and 001",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
        readable_by: 1,
    },
    Migration {
        version: 2,
        description: "rate-limit windows of API keys",
        sql: include_str!("../migrations/sqlite/0002_governance.sql"),
        readable_by: 2,
    },
    Migration {
        version: 3,
        description: "change log of the embedded vector index; embedding cache index",
        sql: include_str!("../migrations/sqlite/0003_vectors.sql"),
        readable_by: 3,
    },
    Migration {
        version: 4,
        description: "background re-embedding when a knowledge base changes model",
        sql: include_str!("../migrations/sqlite/0004_reembedding.sql"),
        readable_by: 4,
    },
    Migration {
        version: 5,
        description: "invitations to register",
        sql: include_str!("../migrations/sqlite/0005_invitations.sql"),
        readable_by: 5,
    },
    Migration {
        version: 6,
        description: "full-text chunk lengths, for BM25 over a knowledge base's own statistics",
        sql: include_str!("../migrations/sqlite/0006_fulltext_lengths.sql"),
        readable_by: 6,
    },
    Migration {
        version: 7,
        description: "the installation's settings (master key check) and its nodes",
        sql: include_str!("../migrations/sqlite/0007_cluster.sql"),
        readable_by: 6,
    },
    Migration {
        version: 8,
        description: "chunks curated by hand: enabled, edited_at",
        sql: include_str!("../migrations/sqlite/0008_curated_chunks.sql"),
        readable_by: 8,
    },
    Migration {
        version: 9,
        description: "the audit log",
        sql: include_str!("../migrations/sqlite/0009_audit_log.sql"),
        // A table older nodes never read.
        readable_by: 8,
    },
    Migration {
        version: 10,
        description: "evaluations of a knowledge base's retrieval",
        sql: include_str!("../migrations/sqlite/0010_evaluations.sql"),
        // A table older nodes never read.
        readable_by: 8,
    },
    Migration {
        version: 11,
        description: "workspaces: team accounts, members with roles, objects' creators",
        sql: include_str!("../migrations/sqlite/0011_workspaces.sql"),
        // Columns and a table older nodes never read; a team account cannot sign in on them.
        readable_by: 8,
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "merged data model of seeds 000 and 001 with pgvector and full text",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
        readable_by: 1,
    },
    Migration {
        version: 2,
        description: "row-level security on tenant tables",
        sql: include_str!("../migrations/postgres/0002_row_level_security.sql"),
        readable_by: 2,
    },
    Migration {
        version: 3,
        description: "invitations to register",
        sql: include_str!("../migrations/postgres/0003_invitations.sql"),
        readable_by: 3,
    },
    Migration {
        version: 4,
        description: "row-level security fails closed: no tenant named, no rows, unless the system bypass is named",
        sql: include_str!("../migrations/postgres/0004_rls_fail_closed.sql"),
        readable_by: 4,
    },
    Migration {
        version: 5,
        description: "uploaded files in the database, the installation's settings (master key check), its nodes",
        sql: include_str!("../migrations/postgres/0005_cluster.sql"),
        readable_by: 4,
    },
    Migration {
        version: 6,
        description: "chunks curated by hand: enabled, edited_at",
        sql: include_str!("../migrations/postgres/0006_curated_chunks.sql"),
        // An older node would re-embed a disabled chunk back into the vector index.
        readable_by: 6,
    },
    Migration {
        version: 7,
        description: "the audit log",
        sql: include_str!("../migrations/postgres/0007_audit_log.sql"),
        // A table older nodes never read.
        readable_by: 6,
    },
    Migration {
        version: 8,
        description: "evaluations of a knowledge base's retrieval",
        sql: include_str!("../migrations/postgres/0008_evaluations.sql"),
        // A table older nodes never read.
        readable_by: 6,
    },
    Migration {
        version: 9,
        description: "workspaces: team accounts, members with roles, objects' creators",
        sql: include_str!("../migrations/postgres/0009_workspaces.sql"),
        // Columns and a table older nodes never read; a team account cannot sign in on them.
        readable_by: 6,
    },
];

/// The newest schema version a list of migrations reaches.
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The newest SQLite and PostgreSQL schema versions this binary knows.
pub fn versions() -> (i64, i64) {
    (latest(SQLITE), latest(POSTGRES))
}

/// Whether a node of schema version `ours` can work on this PostgreSQL database: an error (what
/// the node says as it refuses to start) when a newer Lore migrated it past what `ours` reads.
pub async fn postgres_readable_by(conn: &mut sqlx::PgConnection, ours: i64) -> Result<()> {
    let newer: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT version, readable_by FROM lore_migrations WHERE version > $1 ORDER BY version")
            .bind(ours)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::internal)?;
    refuse_unreadable(&newer, ours)
}

/// A node refuses a database that a newer Lore migrated past what it can read; migrations that
/// only add leave older nodes running, so a cluster upgrades one node at a time.
fn refuse_unreadable(newer: &[(i64, Option<i64>)], ours: i64) -> Result<()> {
    let Some(&(version, _)) = newer.iter().find(|(_, readable_by)| readable_by.is_none_or(|r| r > ours)) else {
        if let Some((newest, _)) = newer.last() {
            tracing::warn!(
                ours,
                database = newest,
                "the database's schema is newer than this node's; upgrade this node"
            );
        }
        return Ok(());
    };
    Err(Error::new(
        lore_core::error::Code::Unavailable,
        format!(
            "refusing to start: a newer Lore migrated this database to schema version {version}, which this node \
             (schema version {ours}, Lore {}) cannot read; upgrade this node to the version the other nodes run",
            env!("CARGO_PKG_VERSION")
        ),
    ))
}

/// FNV-1a: enough to notice that a migration's text changed.
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub async fn run_sqlite(pool: &SqlitePool) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS lore_migrations (
            version INTEGER PRIMARY KEY, description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(Error::internal)?;
    let has_column: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('lore_migrations') WHERE name = 'readable_by'")
            .fetch_one(pool)
            .await
            .map_err(Error::internal)?;
    if has_column == 0 {
        sqlx::raw_sql("ALTER TABLE lore_migrations ADD COLUMN readable_by INTEGER")
            .execute(pool)
            .await
            .map_err(Error::internal)?;
    }
    let newer: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT version, readable_by FROM lore_migrations WHERE version > ? ORDER BY version")
            .bind(latest(SQLITE))
            .fetch_all(pool)
            .await
            .map_err(Error::internal)?;
    refuse_unreadable(&newer, latest(SQLITE))?;
    for m in SQLITE {
        let recorded: Option<String> = sqlx::query_scalar("SELECT checksum FROM lore_migrations WHERE version = ?")
            .bind(m.version)
            .fetch_optional(pool)
            .await
            .map_err(Error::internal)?;
        let sum = checksum(m.sql);
        match recorded {
            Some(existing) if existing == sum => {
                // Recorded by a release that did not record readability yet.
                sqlx::query("UPDATE lore_migrations SET readable_by = ? WHERE version = ? AND readable_by IS NULL")
                    .bind(m.readable_by)
                    .bind(m.version)
                    .execute(pool)
                    .await
                    .map_err(Error::internal)?;
                continue;
            }
            Some(existing) => {
                return Err(Error::internal(format!(
                    "migration {} was changed after it was applied (checksum {existing} in the database, {sum} in this binary)",
                    m.version
                )));
            }
            None => {}
        }
        let mut tx = pool.begin().await.map_err(Error::internal)?;
        sqlx::raw_sql(AssertSqlSafe(m.sql)).execute(&mut *tx).await.map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO lore_migrations (version, description, checksum, applied_at, readable_by) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(&sum)
        .bind(crate::sqlite::ts(lore_core::now()))
        .bind(m.readable_by)
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
        tx.commit().await.map_err(Error::internal)?;
        tracing::info!(version = m.version, description = m.description, "applied migration");
    }
    Ok(())
}

/// Any number of nodes may start at once: an advisory lock lets one migrate while the others wait.
pub async fn run_postgres(pool: &PgPool) -> Result<()> {
    const LOCK: i64 = 0x6c6f_7265_6d69_6772; // "loremigr"
    let mut conn = pool.acquire().await.map_err(Error::internal)?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(LOCK).execute(&mut *conn).await.map_err(Error::internal)?;
    let result = apply_postgres(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK).execute(&mut *conn).await;
    result?;
    unlocked.map_err(Error::internal)?;
    Ok(())
}

async fn apply_postgres(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS lore_migrations (
            version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(Error::internal)?;
    sqlx::raw_sql("ALTER TABLE lore_migrations ADD COLUMN IF NOT EXISTS readable_by BIGINT")
        .execute(&mut *conn)
        .await
        .map_err(Error::internal)?;
    postgres_readable_by(&mut *conn, latest(POSTGRES)).await?;
    for m in POSTGRES {
        let recorded: Option<String> = sqlx::query_scalar("SELECT checksum FROM lore_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(Error::internal)?;
        let sum = checksum(m.sql);
        match recorded {
            Some(existing) if existing == sum => {
                // Recorded by a release that did not record readability yet.
                sqlx::query("UPDATE lore_migrations SET readable_by = $1 WHERE version = $2 AND readable_by IS NULL")
                    .bind(m.readable_by)
                    .bind(m.version)
                    .execute(&mut *conn)
                    .await
                    .map_err(Error::internal)?;
                continue;
            }
            Some(existing) => {
                return Err(Error::internal(format!(
                    "migration {} was changed after it was applied (checksum {existing} in the database, {sum} in this binary)",
                    m.version
                )));
            }
            None => {}
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(Error::internal)?;
        sqlx::raw_sql(AssertSqlSafe(m.sql)).execute(&mut *tx).await.map_err(Error::internal)?;
        sqlx::query(
            "INSERT INTO lore_migrations (version, description, checksum, applied_at, readable_by)
             VALUES ($1, $2, $3, now(), $4)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(&sum)
        .bind(m.readable_by)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
        tx.commit().await.map_err(Error::internal)?;
        tracing::info!(version = m.version, description = m.description, "applied migration");
    }
    Ok(())
}
