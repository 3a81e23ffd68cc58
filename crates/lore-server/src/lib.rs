//! Lore's HTTP server: the API, authentication, and the background workers, over a store and a
//! blob store.

pub mod agents;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod blobs;
pub mod chat;
pub mod chunks;
pub mod client_addr;
pub mod console;
pub mod describe;
pub mod embedding;
pub(crate) mod enrich;
pub mod error;
pub mod evaluations;
pub mod files;
pub mod followup;
pub mod governance;
pub mod health;
pub mod invitations;
pub mod keycache;
pub mod limiter;
pub mod maintenance;
pub mod mcp;
pub mod metrics;
pub mod nodes;
pub mod notify;
pub mod openapi;
pub mod questions;
pub mod secrets;
pub mod service;
pub mod sources;
pub mod state;
pub mod summaries;
pub mod usage;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lore_core::error::{Error, Result};
use lore_core::store::Store;
use lore_store::{PgStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use state::{AppState, ServerConfig};

/// A server that is listening; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    state: AppState,
}

impl RunningServer {
    /// The store that holds uploaded files (a folder, a bucket or the database).
    pub fn blobs(&self) -> &dyn lore_core::blob::BlobStore {
        self.state.blobs.as_ref()
    }

    /// Runs the retention purges now instead of waiting for the scheduler.
    pub async fn run_maintenance(&self) -> Result<lore_core::model::PurgeReport> {
        maintenance::run_once(&self.state).await
    }

    /// Stops accepting requests, lets in-flight requests and jobs finish, and waits.
    pub async fn shutdown(self) {
        let RunningServer { shutdown, task, state, .. } = self;
        drop(state);
        let _ = shutdown.send(true);
        let _ = task.await;
    }

    /// Waits until the server stops (after a signal, or `shutdown` from elsewhere).
    pub async fn wait(self) {
        let RunningServer { task, state, .. } = self;
        drop(state);
        let _ = task.await;
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// The store a configuration names: PostgreSQL when a database URL is given, else the embedded
/// SQLite database in the data directory. Either is created or migrated to the current schema.
pub async fn open_store(
    data_dir: &std::path::Path, database_url: Option<&str>, ef_search: usize,
) -> Result<Arc<dyn Store>> {
    Ok(match database_url {
        Some(url) => Arc::new(PgStore::open_with(url, ef_search).await?),
        None => Arc::new(SqliteStore::open_with(&data_dir.join("lore.db"), ef_search).await?),
    })
}

/// Opens the store and the blob store the configuration names, starts the workers and the HTTP
/// listener.
pub async fn start(config: ServerConfig) -> Result<RunningServer> {
    lore_core::budget::install(config.budgets.clone());
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::internal(format!("cannot create data directory {}: {e}", config.data_dir.display())))?;
    let (store, blobs) = match &config.database_url {
        Some(url) => {
            let pg = PgStore::open_with(url, config.ef_search).await?;
            // Row-level security is the wall behind every tenant query; a role that skips it
            // takes the wall away.
            if !config.allow_rls_bypass && lore_store::postgres::role_bypasses_row_security(pg.pool()).await? {
                return Err(Error::new(
                    lore_core::error::Code::Unavailable,
                    "refusing to start: the database role is SUPERUSER or BYPASSRLS, so row-level security would \
                     not separate tenants; connect as an ordinary role that owns Lore's tables, or pass \
                     --allow-rls-bypass",
                ));
            }
            let blobs = blobs::open(&config, Some(&pg))?;
            blobs::import_local(&config, Some(&pg));
            (Arc::new(pg) as Arc<dyn Store>, blobs)
        }
        None => (open_store(&config.data_dir, None, config.ef_search).await?, blobs::open(&config, None)?),
    };
    // Every node of an installation holds the same master key, or it would seal secrets the
    // others cannot open.
    let master_key = secrets::MasterKey::load_or_create(&config.data_dir)?;
    master_key.verify_for(store.as_ref(), &config.data_dir).await?;
    // A single embedded node: whatever was running when it last stopped was interrupted. On a
    // shared database other nodes' jobs run on; a crashed node's come back when their lease ends.
    if !store.shared_by_nodes() {
        let released = store.release_all_jobs().await?;
        if released > 0 {
            tracing::info!(jobs = released, "resuming jobs interrupted by the last shutdown");
        }
    }
    store.ensure_file_types(&lore_ingest::detect::default_file_types()).await?;
    tokio::task::spawn_blocking(lore_ingest::segment::warm_up);

    metrics::init();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr()?;
    let workers = config.workers;
    let (usage_tx, usage_rx) = tokio::sync::mpsc::channel(usage::QUEUE);
    let usage_writer = tokio::spawn(usage::run_writer(store.clone(), usage_rx));
    let limiter =
        Arc::new(if store.shared_by_nodes() { limiter::Limiter::Database } else { limiter::Limiter::in_process() });
    let state = AppState {
        // A name for this process among the nodes sharing a database.
        node: nodes::new_id().into(),
        passed_on: Default::default(),
        limiter: limiter.clone(),
        key_cache: Arc::new(keycache::KeyCache::new(Duration::from_secs(5))),
        store: store.clone(),
        blobs,
        config: Arc::new(config.clone()),
        jobs_queued: Arc::new(Notify::new()),
        usage_log: usage_tx,
        master_key: Arc::new(master_key),
        login_throttle: Arc::new(auth::LoginThrottle::default()),
        registration_throttle: Arc::new(auth::RegistrationThrottle::new(config.registrations_per_hour)),
        embedders: Arc::new(embedders(&config)),
        // One child per worker stays ready; it is started on the first document.
        parsers: config
            .parser_exe
            .as_ref()
            .map(|exe| Arc::new(lore_ingest::isolate::ParserPool::new(exe, workers.max(1)))),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let node = state.node.to_string();
    let beat = nodes::beat(&node, addr, store.shared_by_nodes(), workers);
    store.heartbeat(&beat).await?;
    tracing::info!(%node, "node started");
    let mut background = worker::spawn(state.clone(), &node, workers, shutdown_rx.clone());
    background.push(maintenance::spawn(state.clone(), shutdown_rx.clone()));
    background.push(sources::spawn_scheduler(state.clone(), state.config.sync_check_interval, shutdown_rx.clone()));
    background.push(limiter::spawn_flusher(limiter, store.clone(), shutdown_rx.clone()));
    background.push(nodes::spawn_heartbeat(store.clone(), beat, shutdown_rx.clone()));
    let app = api::router(state.clone())
        .layer(CatchPanicLayer::custom(error::panic_response))
        // Failed requests are logged once, by the error itself (with its incident id).
        .layer(TraceLayer::new_for_http().on_failure(()));

    let mut signal = shutdown_rx.clone();
    let kept = state.clone();
    let task = tokio::spawn(async move {
        // Streamed answers are many small writes: without TCP_NODELAY each waits on the client's
        // delayed ACK (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server error");
        }
        for handle in background {
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
        // Every request is answered: once the last sender is gone the usage writer drains
        // the channel and stops, and only then does the database close.
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(30), usage_writer).await;
        store.close().await;
    });
    tracing::info!(%addr, "lore is listening");
    Ok(RunningServer { addr, shutdown: shutdown_tx, task, state: kept })
}

/// The embedder registry: the model cache, the outbound policy, and the operator's own model path
/// (`--embedding-model /path`), the one path a configuration may name.
fn embedders(config: &ServerConfig) -> lore_embed::Registry {
    let registry = lore_embed::Registry::new(lore_embed::ModelStore::new(config.model_dir.clone()), config.outbound());
    if let Some(default) = config.embedding_model.as_deref().map(lore_embed::EmbeddingConfig::from_shorthand)
        && default.provider() == "local"
        && let Some(model) = default.model.as_deref()
        && lore_embed::provision::known(model).is_none()
    {
        registry.allow_operator_model(model);
    }
    registry
}
