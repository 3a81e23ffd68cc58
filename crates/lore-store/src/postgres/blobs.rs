//! Uploaded files in PostgreSQL (the default with `--database-url`): every node reads what any
//! node stored, and one `pg_dump` holds everything. Content-addressed like the other blob stores,
//! in parts of `PART` bytes, streamed in from the staged file and out by range, so no node holds
//! a whole file for the database's sake.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lore_core::blob::BlobStore;
use lore_core::error::Result;
use sqlx::PgPool;
use tokio::io::AsyncReadExt;

use crate::fetch::Fetch;
use crate::rows::db_err;

/// The size of a part: big enough that a file takes few rows, small enough that a part is an
/// ordinary value to the database (TOAST keeps it out of line).
pub const PART: usize = 1 << 20;

pub struct PgBlobStore {
    pool: PgPool,
    staging: PathBuf,
}

impl PgBlobStore {
    /// The blobs of `store`'s database. Uploads are staged under `staging` (a local directory)
    /// while they are hashed.
    pub fn open(store: &super::PgStore, staging: &Path) -> Result<PgBlobStore> {
        let pool = store.pool().clone();
        std::fs::create_dir_all(staging)?;
        crate::fs_blobs::sweep_staging(staging);
        Ok(PgBlobStore { pool, staging: staging.to_path_buf() })
    }

    /// Stores the file at `path` under `key` unless the database has it already; leaves the file.
    /// `true` when it was stored now.
    pub async fn put_copy(&self, key: &str, path: &Path) -> Result<bool> {
        let mut file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        let parts = size.div_ceil(PART as u64).max(1);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Content-addressed: a row already there holds these very bytes. A node storing the same
        // file at this moment makes this insert wait for its commit, and then do nothing.
        let claimed =
            sqlx::query("INSERT INTO blobs (key, size, parts) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(size as i64)
                .bind(parts as i32)
                .run(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        let mut buffer = vec![0u8; PART];
        for seq in 0..parts {
            let mut filled = 0;
            while filled < PART {
                let n = file.read(&mut buffer[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            sqlx::query("INSERT INTO blob_parts (key, seq, data) VALUES ($1, $2, $3)")
                .bind(key)
                .bind(seq as i32)
                .bind(&buffer[..filled])
                .run(&mut *tx)
                .await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// Copies the files of a directory blob store (`blobs/ab/cd/<sha256>`, as the embedded store
    /// and earlier PostgreSQL nodes kept them) into the database, skipping those it holds.
    /// Returns how many files and bytes were copied; the directory is left as it was.
    pub async fn import_dir(&self, root: &Path) -> Result<(u64, u64)> {
        let mut found = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() && path != root.join("staging") {
                    pending.push(path);
                } else if kind.is_file()
                    && let Ok(relative) = path.strip_prefix(root)
                    && let Some(key) = relative.to_str()
                {
                    found.push((key.replace(std::path::MAIN_SEPARATOR, "/"), path.clone()));
                }
            }
        }
        let (mut files, mut bytes) = (0, 0);
        for (key, path) in found {
            if self.put_copy(&key, &path).await? {
                files += 1;
                bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok((files, bytes))
    }

    /// Every key the database holds (for checks and backups).
    pub async fn keys(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM blobs ORDER BY key").all(&self.pool).await
    }
}

#[async_trait]
impl BlobStore for PgBlobStore {
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        self.put_copy(key, staged).await?;
        tokio::fs::remove_file(staged).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let size = self.size(key).await?.ok_or_else(|| lore_core::blob::missing(key))?;
        let mut out = Vec::with_capacity(size as usize);
        // Part by part, so the database never builds one answer of the whole file.
        let mut seq = 0i32;
        loop {
            let part: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM blob_parts WHERE key = $1 AND seq = $2")
                .bind(key)
                .bind(seq)
                .optional(&self.pool)
                .await?;
            match part {
                Some(data) => out.extend_from_slice(&data),
                None => break,
            }
            seq += 1;
        }
        Ok(out)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM blobs WHERE key = $1").bind(key).optional(&self.pool).await?;
        Ok(size.map(|s| s as u64))
    }

    async fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        if self.size(key).await?.is_none() {
            return Err(lore_core::blob::missing(key));
        }
        let end = offset + len as u64;
        let (first, last) = ((offset / PART as u64) as i32, (end.saturating_sub(1) / PART as u64) as i32);
        let mut out = Vec::with_capacity(len.min(2 * PART));
        if len == 0 {
            return Ok(out);
        }
        for seq in first..=last {
            let part: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM blob_parts WHERE key = $1 AND seq = $2")
                .bind(key)
                .bind(seq)
                .optional(&self.pool)
                .await?;
            let Some(data) = part else { break };
            let base = seq as u64 * PART as u64;
            let from = offset.saturating_sub(base).min(data.len() as u64) as usize;
            let to = (end - base).min(data.len() as u64) as usize;
            out.extend_from_slice(&data[from..to]);
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM blobs WHERE key = $1").bind(key).run(&self.pool).await?;
        Ok(())
    }

    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn check(&self) -> Result<()> {
        sqlx::query("SELECT 1 FROM blobs LIMIT 1").run(&self.pool).await?;
        Ok(())
    }

    fn describe(&self) -> String {
        "the database".to_string()
    }
}
