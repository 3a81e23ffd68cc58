//! Versioned schema migrations, embedded in the binary. Each runs once, in a transaction, and is
//! recorded with a checksum so an edited migration is caught instead of silently diverging.

use lore_core::error::{Error, Result};
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "merged data model of seeds 000 and 001",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "rate-limit windows of API keys",
        sql: include_str!("../migrations/sqlite/0002_governance.sql"),
    },
    Migration {
        version: 3,
        description: "change log of the embedded vector index; embedding cache index",
        sql: include_str!("../migrations/sqlite/0003_vectors.sql"),
    },
    Migration {
        version: 4,
        description: "background re-embedding when a knowledge base changes model",
        sql: include_str!("../migrations/sqlite/0004_reembedding.sql"),
    },
    Migration {
        version: 5,
        description: "invitations to register",
        sql: include_str!("../migrations/sqlite/0005_invitations.sql"),
    },
    Migration {
        version: 6,
        description: "full-text chunk lengths, for BM25 over a knowledge base's own statistics",
        sql: include_str!("../migrations/sqlite/0006_fulltext_lengths.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "merged data model of seeds 000 and 001 with pgvector and full text",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "row-level security on tenant tables",
        sql: include_str!("../migrations/postgres/0002_row_level_security.sql"),
    },
    Migration {
        version: 3,
        description: "invitations to register",
        sql: include_str!("../migrations/postgres/0003_invitations.sql"),
    },
    Migration {
        version: 4,
        description: "row-level security fails closed: no tenant named, no rows, unless the system bypass is named",
        sql: include_str!("../migrations/postgres/0004_rls_fail_closed.sql"),
    },
];

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
    for m in SQLITE {
        let recorded: Option<String> = sqlx::query_scalar("SELECT checksum FROM lore_migrations WHERE version = ?")
            .bind(m.version)
            .fetch_optional(pool)
            .await
            .map_err(Error::internal)?;
        let sum = checksum(m.sql);
        match recorded {
            Some(existing) if existing == sum => continue,
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
        sqlx::query("INSERT INTO lore_migrations (version, description, checksum, applied_at) VALUES (?, ?, ?, ?)")
            .bind(m.version)
            .bind(m.description)
            .bind(&sum)
            .bind(crate::sqlite::ts(lore_core::now()))
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
    for m in POSTGRES {
        let recorded: Option<String> = sqlx::query_scalar("SELECT checksum FROM lore_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(Error::internal)?;
        let sum = checksum(m.sql);
        match recorded {
            Some(existing) if existing == sum => continue,
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
            "INSERT INTO lore_migrations (version, description, checksum, applied_at) VALUES ($1, $2, $3, now())",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(&sum)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
        tx.commit().await.map_err(Error::internal)?;
        tracing::info!(version = m.version, description = m.description, "applied migration");
    }
    Ok(())
}
