//! Blob storage for uploaded files, content-addressed by SHA-256.

use async_trait::async_trait;
use std::path::Path;

use crate::error::Result;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Moves a fully written temporary file into the store under `key`, which is derived from
    /// its SHA-256. Storing the same content twice keeps one copy.
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// A directory on the same filesystem where uploads are staged before `put_file`.
    fn staging_dir(&self) -> &Path;
}

/// The blob key for content with the given SHA-256 (hex): `ab/cd/abcd...`.
pub fn key_for_hash(sha256_hex: &str) -> String {
    let a = sha256_hex.get(0..2).unwrap_or("00");
    let b = sha256_hex.get(2..4).unwrap_or("00");
    format!("{a}/{b}/{sha256_hex}")
}
