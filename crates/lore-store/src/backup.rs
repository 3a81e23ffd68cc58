//! `lore backup` and `lore restore`: one archive format for both stores.
//!
//! An archive is a plain tar of
//! - `lore.db`: the installation's database as an embedded (SQLite) database, a consistent
//!   snapshot taken while the server runs (SQLite's `VACUUM INTO`, which reads inside one
//!   transaction while writers go on in the write-ahead log; on PostgreSQL, every table read in
//!   one repeatable-read transaction into a new embedded database);
//! - `blobs/<key>`: every uploaded file the snapshot's documents name, content-addressed;
//! - optionally `master.key.sealed`: the master key, sealed under a passphrase by the caller;
//! - `manifest.json`, last: the format, Lore's version, the schema, each table's row count, and
//!   the size and SHA-256 of every other entry.
//!
//! Restoring unpacks into an empty data directory, or through `lore migrate`'s copy into an
//! empty PostgreSQL database. Derived state is rebuilt, not archived: the vector graphs (from the
//! embeddings in `lore.db`), the full-text index on PostgreSQL.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use lore_core::blob::BlobStore;
use lore_core::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, SqlitePool};

use crate::fetch::Fetch;
use crate::rows::db_err;

pub const FORMAT: &str = "lore-backup";
pub const VERSION: u32 = 1;
const DATABASE: &str = "lore.db";
const MANIFEST: &str = "manifest.json";
pub const SEALED_KEY: &str = "master.key.sealed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub lore_version: String,
    pub created_at: lore_core::model::Timestamp,
    /// The store the backup was taken from: `embedded` or `postgres`.
    pub source: String,
    /// The SQLite schema version of `lore.db`.
    pub schema_version: i64,
    /// Rows per table in the snapshot.
    pub tables: BTreeMap<String, i64>,
    /// Every entry but the manifest: path → size and SHA-256.
    pub files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn blobs(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.files.iter().filter_map(|(path, entry)| Some((path.strip_prefix("blobs/")?, entry)))
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(lore_core::error::Code::ValidationFailed, message)
}

/// Writes `to` (atomically: a partial archive never has the final name) from the embedded
/// installation in `data_dir`, while it serves; its uploaded files are read from `blobs`.
/// `extra` entries (a sealed master key) go in as given.
pub async fn backup_embedded(
    data_dir: &Path, blobs: &dyn BlobStore, to: &Path, extra: &[(&str, Vec<u8>)],
) -> Result<Manifest> {
    let db = data_dir.join(DATABASE);
    if !db.exists() {
        return Err(bad(format!("no Lore database at {}", db.display())));
    }
    let work = tempdir_beside(to)?;
    let result = async {
        let snapshot = work.join(DATABASE);
        let pool = open_pool(&db, true).await?;
        let vacuumed = sqlx::query("VACUUM INTO ?").bind(snapshot.display().to_string()).run(&pool).await;
        pool.close().await;
        vacuumed?;
        write_archive(blobs, &snapshot, &work, to, extra, "embedded").await
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The same from an installation on PostgreSQL, while its nodes serve: the database is read in
/// one snapshot transaction into the archive's embedded database (one format for both stores),
/// and its uploaded files from `blobs` (the database, a shared volume or a bucket).
pub async fn backup_postgres(
    pg: &crate::PgStore, blobs: &dyn BlobStore, to: &Path, extra: &[(&str, Vec<u8>)],
) -> Result<Manifest> {
    let work = tempdir_beside(to)?;
    let result = async {
        let snapshot = work.join(DATABASE);
        crate::transfer::postgres_to_sqlite(pg, &snapshot).await?;
        write_archive(blobs, &snapshot, &work, to, extra, "postgres").await
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn write_archive(
    blobs: &dyn BlobStore, snapshot: &Path, work: &Path, to: &Path, extra: &[(&str, Vec<u8>)], source: &str,
) -> Result<Manifest> {
    let pool = open_pool(snapshot, true).await?;
    let tables = count_tables(&pool).await?;
    let schema_version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM lore_migrations").one(&pool).await?;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT file_path FROM documents WHERE file_path <> '' ORDER BY file_path")
            .all(&pool)
            .await?;
    pool.close().await;

    let partial = to.with_extension("partial");
    let mut files = BTreeMap::new();
    let file = std::fs::File::create(&partial).map_err(|e| Error::internal(format!("{}: {e}", partial.display())))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    files.insert(DATABASE.to_string(), append_file(&mut tar, DATABASE, snapshot)?);
    // Each file passes through the work directory in parts, never whole in memory.
    let copy = work.join("blob");
    for key in keys {
        if key.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(Error::internal(format!("a document names the blob {key:?}")));
        }
        if !fetch_blob(blobs, &key, &copy).await? {
            // Purged since the snapshot: its documents were too (and are in the trash at most
            // in the snapshot); the restore says so.
            tracing::warn!(%key, "an uploaded file vanished during the backup");
            continue;
        }
        files.insert(format!("blobs/{key}"), append_file(&mut tar, &format!("blobs/{key}"), &copy)?);
    }
    let _ = std::fs::remove_file(&copy);
    for (name, bytes) in extra {
        files.insert(name.to_string(), append_bytes(&mut tar, name, bytes)?);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        lore_version: env!("CARGO_PKG_VERSION").into(),
        created_at: lore_core::now(),
        source: source.into(),
        schema_version,
        tables,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
    append_bytes(&mut tar, MANIFEST, &json)?;
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.get_ref().sync_all()?;
    std::fs::rename(&partial, to)?;
    Ok(manifest)
}

/// Copies the blob `key` to the file `to` in parts; false if the store no longer holds it.
async fn fetch_blob(blobs: &dyn BlobStore, key: &str, to: &Path) -> Result<bool> {
    const PART: usize = 1 << 20;
    let Some(size) = blobs.size(key).await? else { return Ok(false) };
    let mut out = BufWriter::new(std::fs::File::create(to)?);
    let mut offset = 0u64;
    while offset < size {
        let part = match blobs.read_range(key, offset, PART).await {
            Ok(part) => part,
            Err(e) if e.code == lore_core::error::Code::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if part.is_empty() {
            return Err(Error::internal(format!("{key} ended at {offset} of {size} bytes while it was archived")));
        }
        out.write_all(&part)?;
        offset += part.len() as u64;
    }
    out.flush()?;
    Ok(true)
}

/// Reads the whole archive: every entry's size and SHA-256 must match the manifest, nothing may
/// be missing or extra, and the database must hold the rows the manifest counted.
pub async fn verify(file: &Path) -> Result<Manifest> {
    let work = tempdir_beside(file)?;
    let result = unpack(file, &work, &work.join("blobs")).await;
    let _ = std::fs::remove_dir_all(&work);
    result.map(|(manifest, _)| manifest)
}

/// Unpacks `file` with its checks: the database to `dir/lore.db`, the blobs under `blobs`, the
/// sealed key (if any) returned.
async fn unpack(file: &Path, dir: &Path, blobs: &Path) -> Result<(Manifest, Option<Vec<u8>>)> {
    let mut tar = tar::Archive::new(BufReader::new(std::fs::File::open(file)?));
    let mut seen = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let mut sealed_key = None;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if path.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(bad(format!("the archive holds an unsafe path {path:?}")));
        }
        if path == MANIFEST {
            let mut json = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut json)?;
            manifest =
                Some(serde_json::from_slice(&json).map_err(|e| bad(format!("the manifest is unreadable: {e}")))?);
            continue;
        }
        let target = if path == DATABASE {
            dir.join(DATABASE)
        } else if let Some(key) = path.strip_prefix("blobs/") {
            blobs.join(key)
        } else if path == SEALED_KEY {
            let mut bytes = Vec::new();
            entry.by_ref().take(1 << 16).read_to_end(&mut bytes)?;
            seen.insert(path, Entry { size: bytes.len() as u64, sha256: hex::encode(Sha256::digest(&bytes)) });
            sealed_key = Some(bytes);
            continue;
        } else {
            return Err(bad(format!("the archive holds an unexpected entry {path:?}")));
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = BufWriter::new(std::fs::File::create(&target)?);
        let entry_info = copy_hashing(&mut entry, &mut out)?;
        out.flush()?;
        seen.insert(path, entry_info);
    }
    let manifest = manifest.ok_or_else(|| bad("the archive has no manifest (cut short?)"))?;
    if manifest.format != FORMAT || manifest.version > VERSION {
        return Err(bad(format!("not a Lore backup this version reads ({} {})", manifest.format, manifest.version)));
    }
    for (path, expected) in &manifest.files {
        match seen.get(path) {
            Some(found) if found == expected => {}
            Some(found) => {
                return Err(bad(format!(
                    "{path}: {} bytes with SHA-256 {} in the archive, the manifest says {} bytes with {}",
                    found.size, found.sha256, expected.size, expected.sha256
                )));
            }
            None => return Err(bad(format!("{path} is in the manifest but not in the archive"))),
        }
    }
    if let Some(extra) = seen.keys().find(|p| !manifest.files.contains_key(*p)) {
        return Err(bad(format!("{extra} is in the archive but not in the manifest")));
    }
    let pool = open_pool(&dir.join(DATABASE), true).await?;
    let counted = count_tables(&pool).await;
    pool.close().await;
    let counted = counted?;
    for (table, rows) in &manifest.tables {
        if counted.get(table) != Some(rows) {
            return Err(bad(format!(
                "{table}: the manifest counts {rows} rows, the database {:?}",
                counted.get(table)
            )));
        }
    }
    Ok((manifest, sealed_key))
}

/// Restores `file` into `data_dir` (which must hold no database), or with `database_url` into that
/// PostgreSQL database (which must be empty; uploads go into it). Returns the manifest and the
/// sealed master key, if the archive has one.
pub async fn restore(file: &Path, data_dir: &Path, database_url: Option<&str>) -> Result<(Manifest, Option<Vec<u8>>)> {
    std::fs::create_dir_all(data_dir)?;
    match database_url {
        None => {
            if data_dir.join(DATABASE).exists() {
                return Err(bad(format!(
                    "{} already holds a database; restore into an empty data directory",
                    data_dir.display()
                )));
            }
            let staging = data_dir.join(".restoring");
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging)?;
            let (manifest, key) = match unpack(file, &staging, &data_dir.join("blobs")).await {
                Ok(unpacked) => unpacked,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    return Err(e);
                }
            };
            std::fs::rename(staging.join(DATABASE), data_dir.join(DATABASE))?;
            let _ = std::fs::remove_dir_all(&staging);
            // Migrations (for an older backup) and the vector graphs, rebuilt from the embeddings.
            let store = crate::SqliteStore::open(&data_dir.join(DATABASE)).await?;
            lore_core::store::Store::close(&store).await;
            Ok((manifest, key))
        }
        Some(url) => {
            let pg = crate::PgStore::open(url).await?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").one(pg.pool()).await?;
            if users > 0 {
                return Err(bad("the database already holds an installation; restore into an empty database"));
            }
            let work = tempdir_beside(&data_dir.join("x"))?;
            let result = async {
                let (manifest, key) = unpack(file, &work, &work.join("blobs")).await?;
                crate::transfer::sqlite_to_postgres(&work, url, &|_, _| {}).await?;
                let staging = work.join("staging");
                let blobs = crate::PgBlobStore::open(&pg, &staging)?;
                blobs.import_dir(&work.join("blobs")).await?;
                Ok((manifest, key))
            }
            .await;
            let _ = std::fs::remove_dir_all(&work);
            lore_core::store::Store::close(&pg).await;
            result
        }
    }
}

async fn open_pool(path: &Path, read_only: bool) -> Result<SqlitePool> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(path).read_only(read_only))
        .await
        .map_err(db_err)
}

async fn count_tables(pool: &SqlitePool) -> Result<BTreeMap<String, i64>> {
    let mut tables = BTreeMap::new();
    for (table, _) in crate::transfer::TABLES {
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).one(pool).await?;
        tables.insert(table.to_string(), rows);
    }
    Ok(tables)
}

fn tempdir_beside(file: &Path) -> Result<PathBuf> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = parent.join(format!(".lore-backup-{}-{}", std::process::id(), lore_core::new_id().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append_file(tar: &mut tar::Builder<impl Write>, name: &str, path: &Path) -> Result<Entry> {
    let file = std::fs::File::open(path).map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
    let size = file.metadata()?.len();
    let mut reader = HashingReader { inner: BufReader::new(file), hash: Sha256::new(), read: 0 };
    let mut head = header(size);
    tar.append_data(&mut head, name, &mut reader)?;
    if reader.read != size {
        return Err(Error::internal(format!("{} changed size while it was archived", path.display())));
    }
    Ok(Entry { size, sha256: hex::encode(reader.hash.finalize()) })
}

fn append_bytes(tar: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> Result<Entry> {
    let mut head = header(bytes.len() as u64);
    tar.append_data(&mut head, name, bytes)?;
    Ok(Entry { size: bytes.len() as u64, sha256: hex::encode(Sha256::digest(bytes)) })
}

fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> Result<Entry> {
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        to.write_all(&buffer[..n])?;
        size += n as u64;
    }
    Ok(Entry { size, sha256: hex::encode(hash.finalize()) })
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
