//! Blobs as files under the data directory, content-addressed: `blobs/ab/cd/abcd...`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lore_core::blob::BlobStore;
use lore_core::error::{Error, Result};

/// A staged file this old belongs to an upload that was never accepted (its node crashed).
const STALE_STAGED: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes stale staged files. Only stale ones: other nodes on a shared volume, a running server
/// beside `lore backup`, are writing theirs at this moment.
pub fn sweep_staging(staging: &Path) {
    let Ok(entries) = std::fs::read_dir(staging) else { return };
    for entry in entries.flatten() {
        let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age >= STALE_STAGED) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub struct FsBlobStore {
    root: PathBuf,
    staging: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> Result<FsBlobStore> {
        let staging = root.join("staging");
        std::fs::create_dir_all(&staging)?;
        sweep_staging(&staging);
        Ok(FsBlobStore { root: root.to_path_buf(), staging })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(Error::internal(format!("invalid blob key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        let target = self.path(key)?;
        if tokio::fs::try_exists(&target).await? {
            tokio::fs::remove_file(staged).await?;
            return Ok(());
        }
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // The staged file was fsynced by its writer; a rename within one filesystem is atomic.
        tokio::fs::rename(staged, &target).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        match tokio::fs::read(self.path(key)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(lore_core::blob::missing(key)),
            read => Ok(read?),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = match tokio::fs::File::open(self.path(key)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(lore_core::blob::missing(key)),
            opened => opened?,
        };
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        file.take(len as u64).read_to_end(&mut out).await?;
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn check(&self) -> Result<()> {
        // Readable and writable: a probe file in the staging directory, on the same volume.
        let probe = self.staging.join(format!(".ready-{}", std::process::id()));
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
