//! What every handler and worker shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lore_core::blob::BlobStore;
use lore_core::model::UsageLog;
use lore_core::store::Store;
use tokio::sync::{Notify, mpsc};

use crate::auth::{LoginThrottle, RegistrationThrottle};
use crate::keycache::KeyCache;
use crate::limiter::Limiter;
use crate::secrets::MasterKey;

/// Settings of a running server (after flags, environment and config file were merged).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared by every node (`postgres://...`); `None`: the embedded SQLite
    /// database in the data directory. Holds a password: never log it.
    pub database_url: Option<String>,
    /// Uploaded files in an S3-compatible bucket (`s3://bucket/prefix`) that every node reaches;
    /// `None`: under the data directory.
    pub blob_url: Option<String>,
    /// The bucket's endpoint when it is not AWS (MinIO, Ceph, R2 ...).
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// The bucket's access key (from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); `None`: unsigned.
    pub s3_credentials: Option<S3Credentials>,
    pub listen: SocketAddr,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Free space kept on the data directory's disk, in bytes: below it uploads are refused and
    /// readiness turns false, so the database never runs out mid-write.
    pub min_free_disk: u64,
    /// Ingestion workers; 0 runs none (useful to inspect queued documents in tests).
    pub workers: usize,
    pub session_ttl: Duration,
    /// Who may create an account (`--registration`). Whatever it says, the first account of an
    /// installation without any may register, and becomes its administrator.
    pub registration: lore_core::model::RegistrationPolicy,
    /// Registrations each client address (IPv6: each /64) may make per hour; 0: no limit.
    pub registrations_per_hour: u32,
    /// How long soft-deleted documents stay restorable before they are purged.
    pub trash_retention: Duration,
    /// Usage logs of successful requests are kept this long; of errors, `usage_error_retention`.
    pub usage_success_retention: Duration,
    pub usage_error_retention: Duration,
    /// Audit log entries are kept this long.
    pub audit_retention: Duration,
    /// How often the retention purges run.
    pub maintenance_interval: Duration,
    /// The embedding model of knowledge bases that name none (`provider/model` or a local model
    /// name); `None` turns embeddings off, leaving full-text search only.
    pub embedding_model: Option<String>,
    /// Where local models are cached (shared by data directories if pointed at one place).
    pub model_dir: PathBuf,
    /// HNSW search breadth of the embedded vector index.
    pub ef_search: usize,
    /// What chat-model tokens cost, per model.
    pub prices: lore_llm::PriceTable,
    /// Folders under which `local_folder` data sources may read (none: such sources are refused).
    pub source_roots: Vec<PathBuf>,
    /// Whether data sources and webhooks may reach private, loopback and link-local addresses.
    pub allow_private_sources: bool,
    /// Non-public networks that outbound requests (providers, webhooks, connectors) may reach all
    /// the same (`--allow-outbound`).
    pub allow_outbound: Vec<ipnet::IpNet>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Start on PostgreSQL even when the role skips row-level security (SUPERUSER, BYPASSRLS).
    pub allow_rls_bypass: bool,
    /// How much work one request or one file may cause (installed process-wide at start).
    pub budgets: lore_core::budget::Budgets,
    /// The binary whose `parse-worker` subcommand parses documents in child processes, each
    /// under the budgets' memory and CPU limits (`lore serve` names itself); `None`: documents
    /// are parsed inside the server, where a file that exhausts memory aborts it.
    pub parser_exe: Option<PathBuf>,
    /// How often the scheduler looks for data sources due for an automatic sync.
    pub sync_check_interval: Duration,
    /// First wait before a webhook delivery is retried; doubled per attempt.
    pub webhook_backoff: Duration,
}

impl ServerConfig {
    pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            database_url: None,
            blob_url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".to_string(),
            s3_credentials: None,
            listen,
            max_upload_bytes: Self::DEFAULT_MAX_UPLOAD_BYTES,
            min_free_disk: 256 * 1024 * 1024,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            session_ttl: Duration::from_secs(30 * DAY),
            registration: lore_core::model::RegistrationPolicy::Invite,
            registrations_per_hour: 10,
            trash_retention: Duration::from_secs(30 * DAY),
            usage_success_retention: Duration::from_secs(30 * DAY),
            usage_error_retention: Duration::from_secs(90 * DAY),
            audit_retention: Duration::from_secs(365 * DAY),
            maintenance_interval: Duration::from_secs(600),
            embedding_model: Some(lore_embed::DEFAULT_MODEL.to_string()),
            model_dir: std::env::var_os("LORE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("models")),
            ef_search: lore_store::vectors::DEFAULT_EF_SEARCH,
            prices: lore_llm::PriceTable::builtin(),
            source_roots: Vec::new(),
            allow_private_sources: false,
            allow_outbound: Vec::new(),
            trusted_proxies: Vec::new(),
            allow_rls_bypass: false,
            budgets: lore_core::budget::Budgets::default(),
            parser_exe: None,
            sync_check_interval: Duration::from_secs(30),
            webhook_backoff: Duration::from_secs(2),
            data_dir,
        }
    }
}

const DAY: u64 = 24 * 3600;

impl ServerConfig {
    /// The policy every outbound client of this server is built with.
    pub fn outbound(&self) -> lore_core::outbound::Policy {
        lore_core::outbound::Policy { allow_private: self.allow_private_sources, allowed: self.allow_outbound.clone() }
    }
}

/// An access key of the blob bucket. Its `Debug` shows the key id, never the secret.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct AppState {
    /// This node's id (`node-…`): its workers, leases and heartbeats carry it.
    pub node: Arc<str>,
    /// Jobs this node's workers pass over (a file only another node can read).
    pub passed_on: Arc<crate::worker::PassedOn>,
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub config: Arc<ServerConfig>,
    /// Wakes idle workers when a job is queued.
    pub jobs_queued: Arc<Notify>,
    /// Rows for `api_usage_logs`, written off the request path.
    pub usage_log: mpsc::Sender<UsageLog>,
    pub master_key: Arc<MasterKey>,
    pub login_throttle: Arc<LoginThrottle>,
    pub registration_throttle: Arc<RegistrationThrottle>,
    pub limiter: Arc<Limiter>,
    pub key_cache: Arc<KeyCache>,
    pub embedders: Arc<lore_embed::Registry>,
    /// The parser processes, when `parser_exe` is set.
    pub parsers: Option<Arc<lore_ingest::isolate::ParserPool>>,
}
