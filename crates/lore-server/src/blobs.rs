//! Where uploaded files live: the data directory (the default), or an S3-compatible bucket (AWS,
//! MinIO, Ceph, R2 ...) that nodes on different machines share. Requests to the bucket are signed
//! with SigV4 (rusty-s3), as the S3 data source's are.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::blob::BlobStore;
use lore_core::error::{Code, Error, Result};
use lore_store::{FsBlobStore, PgBlobStore, PgStore};
use reqwest::{StatusCode, Url};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::state::{S3Credentials, ServerConfig};

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// The blob store a configuration names: `--blob-url` (`s3://bucket/prefix`, or `file:///path` on
/// a volume every node mounts), else the database when it is PostgreSQL (`database`, its pool),
/// else the data directory.
pub fn open(config: &ServerConfig, database: Option<&PgStore>) -> Result<Arc<dyn BlobStore>> {
    let local = config.data_dir.join("blobs");
    match (&config.blob_url, database) {
        (Some(url), _) if url.starts_with("file://") => {
            let path = Path::new(&url["file://".len()..]);
            if !path.is_absolute() {
                return Err(Error::internal(format!("blob store: {url:?} is not a file:///absolute/path URL")));
            }
            Ok(Arc::new(FsBlobStore::open(path)?))
        }
        (Some(url), _) => Ok(Arc::new(S3BlobStore::open(
            url,
            config.s3_endpoint.as_deref(),
            &config.s3_region,
            config.s3_credentials.as_ref(),
            &local,
        )?)),
        (None, Some(pg)) => Ok(Arc::new(PgBlobStore::open(pg, &local.join("staging"))?)),
        (None, None) => Ok(Arc::new(FsBlobStore::open(&local)?)),
    }
}

/// On PostgreSQL with blobs in the database: files that an earlier release (or the embedded
/// store, before `lore migrate`) kept under this node's data directory are copied into the
/// database in the background, so every node can read them.
pub fn import_local(config: &ServerConfig, database: Option<&PgStore>) {
    let (None, Some(pg)) = (&config.blob_url, database) else { return };
    let local = config.data_dir.join("blobs");
    if !local.is_dir() {
        return;
    }
    let staging = std::env::temp_dir().join(format!("lore-import-{}", std::process::id()));
    let store = match PgBlobStore::open(pg, &staging) {
        Ok(store) => store,
        Err(e) => return tracing::warn!(error = %e, "could not copy local uploads into the database"),
    };
    tokio::spawn(async move {
        match store.import_dir(&local).await {
            Ok((0, _)) => {}
            Ok((files, bytes)) => {
                tracing::info!(files, bytes, dir = %local.display(), "copied local uploads into the database")
            }
            Err(e) => tracing::warn!(error = %e, "could not copy local uploads into the database"),
        }
        let _ = std::fs::remove_dir_all(&staging);
    });
}

pub struct S3BlobStore {
    bucket: Bucket,
    prefix: String,
    credentials: Option<Credentials>,
    http: reqwest::Client,
    staging: PathBuf,
}

impl S3BlobStore {
    /// `url` is `s3://bucket/prefix`. An endpoint other than AWS's is addressed by path, as MinIO
    /// and most others expect. Uploads are staged under `local` while they are hashed.
    pub fn open(
        url: &str, endpoint: Option<&str>, region: &str, credentials: Option<&S3Credentials>, local: &Path,
    ) -> Result<Self> {
        let bad = |m: String| Error::internal(format!("blob store: {m}"));
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad(format!("{url:?} is not an s3://bucket/prefix URL")))?;
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(bad(format!("{url:?} names no bucket")));
        }
        let (endpoint, style) = match endpoint {
            Some(e) => (e.to_string(), UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let endpoint = Url::parse(&endpoint).map_err(|e| bad(format!("endpoint {endpoint:?}: {e}")))?;
        let bucket = Bucket::new(endpoint, style, name.to_string(), region.to_string())
            .map_err(|e| bad(format!("bucket {name:?}: {e}")))?;
        let credentials = credentials.map(|c| Credentials::new(&c.access_key_id, &c.secret_access_key));
        lore_core::tls::ensure_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| bad(format!("HTTP client: {e}")))?;
        // Uploads are staged on local disk while they are hashed, then sent to the bucket.
        let staging = local.join("staging");
        std::fs::create_dir_all(&staging)?;
        lore_store::fs_blobs::sweep_staging(&staging);
        Ok(S3BlobStore { bucket, prefix: prefix.trim_matches('/').to_string(), credentials, http, staging })
    }

    fn object(&self, key: &str) -> Result<String> {
        if key.is_empty() || key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(Error::internal(format!("invalid blob key {key:?}")));
        }
        Ok(if self.prefix.is_empty() { key.to_string() } else { format!("{}/{key}", self.prefix) })
    }

    /// The bucket could not be reached: the machine's condition, so the work is retried.
    fn unreachable(&self, what: &str, key: &str, err: reqwest::Error) -> Error {
        let cause = format!("blob store: {what} s3://{}/{key}: {err}", self.bucket.name());
        Error::new(Code::StorageUnavailable, "the blob store is unreachable; try again shortly").with_cause(cause)
    }

    /// The bucket answered `status`: a 5xx is its own trouble (retried), anything else Lore's fault.
    fn refused(&self, what: &str, key: &str, status: StatusCode) -> Error {
        let cause = format!("blob store: {what} s3://{}/{key}: {status}", self.bucket.name());
        if status.is_server_error() {
            Error::new(Code::StorageUnavailable, "the blob store is unavailable; try again shortly").with_cause(cause)
        } else {
            Error::internal(cause)
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_file(&self, key: &str, staged: &Path) -> Result<()> {
        let object = self.object(key)?;
        // Content-addressed: an object already there holds these very bytes.
        let head = self.bucket.head_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
        let exists = self.http.head(head).send().await.map_err(|e| self.unreachable("checking", &object, e))?;
        if !exists.status().is_success() {
            let bytes = tokio::fs::read(staged).await?;
            let put = self.bucket.put_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
            let response =
                self.http.put(put).body(bytes).send().await.map_err(|e| self.unreachable("writing", &object, e))?;
            if !response.status().is_success() {
                return Err(self.refused("writing", &object, response.status()));
            }
        }
        tokio::fs::remove_file(staged).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let object = self.object(key)?;
        let get = self.bucket.get_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
        let response = self.http.get(get).send().await.map_err(|e| self.unreachable("reading", &object, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => return Err(lore_core::blob::missing(key)),
            s if !s.is_success() => return Err(self.refused("reading", &object, s)),
            _ => {}
        }
        Ok(response.bytes().await.map_err(|e| self.unreachable("reading", &object, e))?.to_vec())
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        let object = self.object(key)?;
        let head = self.bucket.head_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
        let response = self.http.head(head).send().await.map_err(|e| self.unreachable("checking", &object, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if !s.is_success() => Err(self.refused("checking", &object, s)),
            _ => Ok(response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let object = self.object(key)?;
        let get = self.bucket.get_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
        let range = format!("bytes={offset}-{}", offset + len as u64 - 1);
        let response = self
            .http
            .get(get)
            .header(reqwest::header::RANGE, range)
            .send()
            .await
            .map_err(|e| self.unreachable("reading", &object, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => return Err(lore_core::blob::missing(key)),
            // Past the end: nothing left.
            StatusCode::RANGE_NOT_SATISFIABLE => return Ok(Vec::new()),
            s if !s.is_success() => return Err(self.refused("reading", &object, s)),
            _ => {}
        }
        let whole = response.status() == StatusCode::OK;
        let bytes = response.bytes().await.map_err(|e| self.unreachable("reading", &object, e))?;
        // A store that ignores Range sends everything: cut the range out.
        Ok(if whole {
            let start = (offset as usize).min(bytes.len());
            bytes[start..(start + len).min(bytes.len())].to_vec()
        } else {
            bytes.to_vec()
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let object = self.object(key)?;
        let delete = self.bucket.delete_object(self.credentials.as_ref(), &object).sign(SIGNED_FOR);
        let response = self.http.delete(delete).send().await.map_err(|e| self.unreachable("deleting", &object, e))?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.refused("deleting", &object, s)),
        }
    }

    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn check(&self) -> Result<()> {
        // Any answer but a 5xx (or none) means the bucket is there for this node: a probe key
        // that does not exist answers 404.
        self.size(".lore-ready").await.map(|_| ())
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket.name(), self.prefix)
    }
}
