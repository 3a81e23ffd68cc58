//! Blob storage for uploaded files, content-addressed by SHA-256.

use async_trait::async_trait;
use std::path::Path;

use crate::error::Result;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Moves a fully written temporary file into the store under `key`, which is derived from
    /// its SHA-256. Storing the same content twice keeps one copy.
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()>;
    /// The whole blob (parsers take a file whole; uploads are bounded by the upload limit). A key
    /// the store does not hold fails with `not_found`.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// The blob's size, `None` if the store does not hold it.
    async fn size(&self, key: &str) -> Result<Option<u64>>;
    /// At most `len` bytes from `offset` (fewer at the end): how downloads stream a blob without
    /// holding it whole.
    async fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// A directory on the same filesystem where uploads are staged before `put_file`.
    fn staging_dir(&self) -> &Path;
    /// Whether this node can use the store now (`/readyz`).
    async fn check(&self) -> Result<()>;
    /// Where the blobs are, for messages to the operator (`the database`, `s3://bucket/prefix`,
    /// a directory).
    fn describe(&self) -> String;
}

/// The error for a key the store does not hold.
pub fn missing(key: &str) -> crate::error::Error {
    crate::error::Error::new(crate::error::Code::NotFound, format!("blob {key} not found"))
}

/// The blob key for content with the given SHA-256 (hex): `ab/cd/abcd...`.
pub fn key_for_hash(sha256_hex: &str) -> String {
    let a = sha256_hex.get(0..2).unwrap_or("00");
    let b = sha256_hex.get(2..4).unwrap_or("00");
    format!("{a}/{b}/{sha256_hex}")
}
