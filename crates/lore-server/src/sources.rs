//! Data sources that keep a knowledge base in sync: CRUD, a sync run (new items added, changed
//! ones re-processed, vanished ones soft-deleted, nothing re-processed that did not change), and
//! a scheduler for `auto_sync`. Connectors: `local_folder`, `web`, `git` and `s3`, each listing
//! its items with a version that changes when the item does, and fetching one on request.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use lore_core::error::{Code, Error};
use lore_core::model::{Id, KbStatus, Scope};
use lore_core::source::{DataSource, SyncRun};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

mod folder;
mod git;
pub mod net;
mod s3;
mod web;

use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::service::{StagedUpload, not_found};
use crate::state::AppState;

/// A sync holds its source this long; a node that dies mid-sync frees it when the lease ends.
const LEASE: ChronoDuration = ChronoDuration::minutes(15);
/// Items a folder sync looks at, at most.
const MAX_ITEMS: usize = 100_000;
const SOURCE_TYPES: [&str; 4] = ["local_folder", "web", "git", "s3"];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    pub name: Option<String>,
    pub knowledge_base_id: Option<Id>,
    pub source_type: Option<String>,
    /// By type (every type also takes `include` / `exclude` globs over item paths):
    /// `local_folder`: `{"path": "/srv/docs"}`;
    /// `web`: `{"url": "https://site/ or .../sitemap.xml", "max_depth": 2, "max_pages": 100, "same_site": true, "use_sitemaps": true}`;
    /// `git`: `{"url": "https://host/repo.git or a server path", "branch": "main"}`;
    /// `s3`: `{"bucket": "b", "prefix": "docs/", "region": "us-east-1", "endpoint": "https://minio:9000"}`.
    pub config: Option<Value>,
    /// Sealed at rest, never returned; `null` removes them. `s3`: `{"access_key_id", "secret_access_key",
    /// "session_token"?}`; `web`: `{"headers": {"Authorization": "..."}}` (sent to the start host only).
    #[serde(default, deserialize_with = "crate::service::double_option")]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Option<Value>>,
    pub auto_sync: Option<bool>,
    /// Minutes between automatic syncs (at least 1).
    #[serde(default, deserialize_with = "crate::service::double_option")]
    #[schema(value_type = Option<i64>)]
    pub sync_frequency: Option<Option<i64>>,
    /// `active` or `paused`.
    pub status: Option<String>,
}

fn invalid(message: impl Into<String>) -> crate::error::ApiError {
    error(Code::InvalidSourceConfig, message)
}

/// Include and exclude globs over item paths (`config.include`, `config.exclude`).
#[derive(Clone, Default)]
struct Patterns {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
}

impl Patterns {
    fn from_config(config: &Value) -> Result<Self, Error> {
        Ok(Self { include: globs(config, "include")?, exclude: globs(config, "exclude")? })
    }

    fn wants(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        self.include.as_ref().is_none_or(|g| g.is_match(path))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(path))
    }
}

fn globs(config: &Value, key: &str) -> Result<Option<globset::GlobSet>, Error> {
    let Some(list) = config.get(key).filter(|v| !v.is_null()) else { return Ok(None) };
    let patterns = list
        .as_array()
        .ok_or_else(|| Error::new(Code::InvalidSourceConfig, format!("config.{key} must be a list of globs")))?;
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let p = p
            .as_str()
            .ok_or_else(|| Error::new(Code::InvalidSourceConfig, format!("config.{key} must be a list of globs")))?;
        let glob = globset::Glob::new(p)
            .map_err(|e| Error::new(Code::InvalidSourceConfig, format!("config.{key}: bad glob {p:?}: {e}")))?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| Error::new(Code::InvalidSourceConfig, e.to_string()))
}

/// An item a source holds now.
struct Listed {
    /// Its identity within the source: a relative path, an object key, a URL.
    key: String,
    /// Changes when the item does (mtime and size, blob id, ETag, content hash).
    version: String,
    /// The name it gets as a document (its extension tells the parser what it is).
    filename: String,
}

impl Listed {
    fn new(key: String, version: String) -> Self {
        let filename = key.rsplit('/').next().unwrap_or(&key).to_string();
        Self { key, version, filename }
    }
}

/// What a source holds now. Items that could not be looked at are `failed`: kept as they were,
/// never taken for vanished.
#[derive(Default)]
struct Listing {
    items: Vec<Listed>,
    failed: Vec<(String, Error)>,
}

/// A kind of data source.
#[async_trait::async_trait]
trait Connector: Send + Sync {
    async fn list(&self) -> Result<Listing, Error>;
    /// Writes the listed item's bytes to `dest`, a staging file.
    async fn fetch(&self, item: &Listed, dest: &Path) -> Result<(), Error>;
}

/// The connector for a source; `credentials` are the opened (unsealed) ones.
fn connector(state: &AppState, source: &DataSource, credentials: Option<&Value>) -> Result<Box<dyn Connector>, Error> {
    let (max, policy) = (state.config.max_upload_bytes, state.config.outbound());
    Ok(match source.source_type.as_str() {
        "local_folder" => Box::new(folder::Folder::open(state, &source.config)?),
        "web" => Box::new(web::Web::open(&source.config, credentials, max, &policy, state.blobs.staging_dir())?),
        "git" => Box::new(git::Git::open(state, &source.config, credentials)?),
        "s3" => Box::new(s3::S3::open(&source.config, credentials, max, &policy)?),
        other => {
            return Err(Error::new(
                Code::InvalidSourceConfig,
                format!("source_type '{other}' is not supported; supported: {}", SOURCE_TYPES.join(", ")),
            ));
        }
    })
}

/// Runs blocking work (file system, git) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::internal(e.to_string()))?
}

fn validate(state: &AppState, source: &DataSource, credentials: Option<&Value>) -> ApiResult<()> {
    let name = source.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name must be 1 to 100 characters long"));
    }
    if !SOURCE_TYPES.contains(&source.source_type.as_str()) {
        return Err(invalid(format!(
            "source_type '{}' is not supported yet; supported: {}",
            source.source_type,
            SOURCE_TYPES.join(", ")
        )));
    }
    if !matches!(source.status.as_str(), "active" | "paused" | "error" | "syncing") {
        return Err(invalid("status must be active or paused"));
    }
    if let Some(f) = source.sync_frequency
        && !(1..=525_600).contains(&f)
    {
        return Err(invalid("sync_frequency must be between 1 and 525600 minutes"));
    }
    if source.auto_sync && source.sync_frequency.is_none() {
        return Err(invalid("auto_sync needs a sync_frequency in minutes"));
    }
    // Checks the config without reaching out: the first sync finds what is unreachable.
    connector(state, source, credentials)?;
    Ok(())
}

/// A source's stored credentials, opened.
async fn credentials_of(state: &AppState, source: &DataSource) -> Result<Option<Value>, Error> {
    let Some(sealed) = state.store.data_source_credentials(source.user_id, source.id).await? else { return Ok(None) };
    let opened = state.master_key.open(&sealed)?;
    serde_json::from_str(&opened).map(Some).map_err(|e| Error::internal(format!("stored credentials: {e}")))
}

fn seal(state: &AppState, credentials: &Value) -> ApiResult<String> {
    Ok(state.master_key.seal(&credentials.to_string())?)
}

/// `POST /v1/data-sources`.
pub async fn create(state: &AppState, principal: &Principal, req: SourceRequest) -> ApiResult<DataSource> {
    principal.require_session()?;
    let kb_id = req.knowledge_base_id.ok_or_else(|| invalid("knowledge_base_id is required"))?;
    state.store.get_knowledge_base(principal.owner_id(), kb_id).await?.ok_or_else(|| not_found("knowledge base"))?;
    let now = lore_core::now();
    let source = DataSource {
        id: lore_core::new_id(),
        user_id: principal.owner_id(),
        created_by: Some(principal.actor_id()),
        knowledge_base_id: kb_id,
        name: req.name.unwrap_or_default().trim().to_string(),
        source_type: req.source_type.unwrap_or_default(),
        status: req.status.unwrap_or_else(|| "active".into()),
        config: req.config.unwrap_or_else(|| json!({})),
        has_credentials: matches!(req.credentials, Some(Some(_))),
        auto_sync: req.auto_sync.unwrap_or(false),
        sync_frequency: req.sync_frequency.flatten(),
        last_sync: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    validate(state, &source, req.credentials.as_ref().and_then(Option::as_ref))?;
    let sealed = match &req.credentials {
        Some(Some(c)) => Some(seal(state, c)?),
        _ => None,
    };
    state.store.insert_data_source(&source, sealed.as_deref()).await?;
    Ok(source)
}

pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<DataSource>> {
    principal.require(Scope::Read)?;
    let mut all = state.store.list_data_sources(principal.owner_id()).await?;
    all.retain(|s| principal.bound_knowledge_base().is_none_or(|kb| kb == s.knowledge_base_id));
    Ok(all)
}

/// The caller's data source, within the key's binding (a source of another knowledge base is not found).
pub async fn get(state: &AppState, principal: &Principal, id: Id) -> ApiResult<DataSource> {
    principal.require(Scope::Read)?;
    state
        .store
        .get_data_source(principal.owner_id(), id)
        .await?
        .filter(|s| principal.bound_knowledge_base().is_none_or(|kb| kb == s.knowledge_base_id))
        .ok_or_else(|| not_found("data source"))
}

/// `PATCH /v1/data-sources/{id}`.
pub async fn update(state: &AppState, principal: &Principal, id: Id, req: SourceRequest) -> ApiResult<DataSource> {
    principal.require_session()?;
    let mut source = get(state, principal, id).await?;
    if req.knowledge_base_id.is_some_and(|kb| kb != source.knowledge_base_id) || req.source_type.is_some() {
        return Err(invalid("a data source's knowledge base and type are fixed; create another"));
    }
    if let Some(name) = req.name {
        source.name = name.trim().to_string();
    }
    if let Some(config) = req.config {
        source.config = config;
    }
    if let Some(auto) = req.auto_sync {
        source.auto_sync = auto;
    }
    if let Some(f) = req.sync_frequency {
        source.sync_frequency = f;
    }
    if let Some(status) = req.status {
        if !matches!(status.as_str(), "active" | "paused") {
            return Err(invalid("status can be set to active or paused"));
        }
        source.status = status;
    }
    source.updated_at = lore_core::now();
    let credentials = match &req.credentials {
        Some(given) => given.clone(),
        None => credentials_of(state, &source).await?,
    };
    validate(state, &source, credentials.as_ref())?;
    let sealed = match &req.credentials {
        Some(Some(c)) => Some(Some(seal(state, c)?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(c) = &sealed {
        source.has_credentials = c.is_some();
    }
    let credentials = sealed.as_ref().map(|c| c.as_deref());
    if !state.store.update_data_source(&source, credentials).await? {
        return Err(not_found("data source"));
    }
    Ok(source)
}

pub async fn delete(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require_session()?;
    if !state.store.delete_data_source(principal.owner_id(), id).await? {
        return Err(not_found("data source"));
    }
    let target = crate::audit::target("data_source", id);
    crate::audit::record(state, principal, "data_source.deleted", target, serde_json::json!({})).await;
    Ok(())
}

pub async fn syncs(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<SyncRun>> {
    get(state, principal, id).await?;
    Ok(state.store.list_syncs(principal.owner_id(), id, 100).await?)
}

/// `POST /v1/data-sources/{id}/sync`: starts a run now and answers with it (it goes on in the
/// background); 409 while another run holds the source.
pub async fn sync_now(state: &AppState, principal: &Principal, id: Id) -> ApiResult<SyncRun> {
    principal.require(Scope::Upload)?;
    let source = get(state, principal, id).await?;
    let run = start(state, &source).await?.ok_or_else(|| {
        error(Code::SyncInProgress, format!("data source '{}' is being synced already; try again later", source.name))
    })?;
    let (state, started) = (state.clone(), run.clone());
    tokio::spawn(async move { run_sync(&state, source, started).await });
    Ok(run)
}

/// Takes the source's lease and records a running sync, or `None` when someone holds it.
async fn start(state: &AppState, source: &DataSource) -> Result<Option<SyncRun>, Error> {
    let now = lore_core::now();
    let run = SyncRun {
        id: lore_core::new_id(),
        data_source_id: source.id,
        status: "running".into(),
        started_at: now,
        finished_at: None,
        added: 0,
        updated: 0,
        removed: 0,
        failed: 0,
        errors: json!([]),
    };
    Ok(state.store.claim_sync(&run, &state.node, now + LEASE).await?.then_some(run))
}

/// Runs a claimed sync to the end and records it; a failure of the whole run marks the source.
async fn run_sync(state: &AppState, source: DataSource, mut run: SyncRun) {
    let outcome = sync_source(state, &source, &mut run).await;
    run.finished_at = Some(lore_core::now());
    let last_error = match &outcome {
        Ok(()) => {
            run.status = "completed".into();
            None
        }
        Err(e) => {
            run.status = "failed".into();
            Some(e.message.clone())
        }
    };
    tracing::info!(source = %source.id, added = run.added, updated = run.updated, removed = run.removed,
        failed = run.failed, status = %run.status, "data source synced");
    if let Err(e) = state.store.finish_sync(&run, last_error.as_deref()).await {
        tracing::warn!(source = %source.id, error = %e, "could not record a sync run");
    }
    // Told when something changed or failed; a sync that found nothing new says nothing.
    let changed = run.added + run.updated + run.removed;
    let kind = if last_error.is_some() || run.failed > 0 {
        crate::notify::Kind::SyncFailed
    } else if changed > 0 {
        crate::notify::Kind::SyncCompleted
    } else {
        return;
    };
    let title = match &last_error {
        Some(e) => format!("Sync of '{}' failed: {e}", source.name),
        None => format!(
            "Sync of '{}': {} added, {} updated, {} removed, {} failed",
            source.name, run.added, run.updated, run.removed, run.failed
        ),
    };
    let data = json!({"data_source_id": source.id, "knowledge_base_id": source.knowledge_base_id, "run": run});
    crate::notify::notify(state, source.user_id, kind, title, None, data).await;
}

/// Reads a staged item once: its SHA-256, size and first bytes (for type detection).
fn digest(path: &Path) -> std::io::Result<(String, u64, Vec<u8>)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8192 {
            head.extend_from_slice(&buf[..n.min(8192 - head.len())]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size, head))
}

async fn sync_source(state: &AppState, source: &DataSource, run: &mut SyncRun) -> Result<(), Error> {
    let credentials = credentials_of(state, source).await?;
    let connector = connector(state, source, credentials.as_ref())?;
    let kb = state
        .store
        .get_knowledge_base(source.user_id, source.knowledge_base_id)
        .await?
        .ok_or_else(|| Error::not_found("knowledge base"))?;
    if kb.status == KbStatus::Archived {
        return Err(Error::new(Code::KnowledgeBaseArchived, "the knowledge base is archived"));
    }
    let Listing { mut items, failed } = connector.list().await?;
    items.sort_by(|a, b| a.key.cmp(&b.key));
    let mut known: HashMap<String, lore_core::source::SourceItem> =
        state.store.source_items(source.id).await?.into_iter().map(|i| (i.key.clone(), i)).collect();
    let mut errors = Vec::new();
    for (key, e) in failed {
        known.remove(&key); // could not look: not vanished
        run.failed += 1;
        errors.push(json!({"item": key, "error": e.message, "code": e.code.as_str()}));
    }
    for item in items {
        let previous = known.remove(&item.key);
        if previous.as_ref().is_some_and(|p| p.version == item.version) {
            continue; // unchanged: not even fetched
        }
        match sync_item(state, source, &kb, connector.as_ref(), &item, previous.as_ref()).await {
            Ok(Change::Added) => run.added += 1,
            Ok(Change::Updated) => run.updated += 1,
            Ok(Change::Same) => {}
            Err(e) => {
                run.failed += 1;
                errors.push(json!({"item": item.key, "error": e.message, "code": e.code.as_str()}));
            }
        }
    }
    // What is left was not found: the item vanished.
    for (_, gone) in known {
        match state.store.soft_delete_document(source.user_id, gone.document_id, lore_core::now()).await {
            Ok(_) => run.removed += 1,
            Err(e) => {
                run.failed += 1;
                errors.push(json!({"item": gone.key, "error": e.message}));
            }
        }
    }
    run.errors = Value::Array(errors);
    Ok(())
}

enum Change {
    Added,
    Updated,
    /// The version changed but not the bytes (a touch): only the version is recorded.
    Same,
}

async fn sync_item(
    state: &AppState, source: &DataSource, kb: &lore_core::model::KnowledgeBase, connector: &dyn Connector,
    item: &Listed, previous: Option<&lore_core::source::SourceItem>,
) -> Result<Change, Error> {
    crate::health::ensure_room(state)?;
    let staged = state.blobs.staging_dir().join(format!("{}.source", lore_core::new_id()));
    let result = match connector.fetch(item, &staged).await {
        Ok(()) => register_item(state, source, kb, item, previous, &staged).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&staged);
    result
}

async fn register_item(
    state: &AppState, source: &DataSource, kb: &lore_core::model::KnowledgeBase, item: &Listed,
    previous: Option<&lore_core::source::SourceItem>, staged: &Path,
) -> Result<Change, Error> {
    let (copy, key) = (staged.to_path_buf(), item.key.clone());
    let (sha256, size, head) =
        blocking(move || digest(&copy).map_err(|e| Error::new(Code::CorruptFile, format!("cannot read {key}: {e}"))))
            .await?;
    if size > state.config.max_upload_bytes {
        return Err(Error::new(
            Code::PayloadTooLarge,
            format!("{} is larger than the server's upload limit ({} bytes)", item.key, state.config.max_upload_bytes),
        ));
    }
    if let Some(previous) = previous {
        if previous.file_hash == sha256 {
            state.store.touch_source_item(previous.document_id, &item.version).await?;
            return Ok(Change::Same);
        }
        // Changed: the old version goes to the trash (restorable), the new one is processed.
        state.store.soft_delete_document(source.user_id, previous.document_id, lore_core::now()).await?;
    }
    let metadata = json!({"source_path": item.key, "source_version": item.version});
    let upload = StagedUpload {
        path: staged,
        filename: item.filename.clone(),
        sha256,
        size,
        head,
        chunking_config: None,
        metadata: Some(metadata),
        data_source_id: Some(source.id),
    };
    let response = crate::service::register_upload(state, source.user_id, kb, upload).await.map_err(|e| e.error)?;
    if response.duplicate {
        // The same content is already in the knowledge base (uploaded, or from another item).
        return Err(Error::new(
            Code::DuplicateDocument,
            format!("{} has the same content as document {}", item.key, response.document.id),
        ));
    }
    Ok(if previous.is_some() { Change::Updated } else { Change::Added })
}

/// Syncs every source whose `auto_sync` is due, every `interval`, until shutdown. On a shared
/// database the lease lets one node sync a source at a time.
pub fn spawn_scheduler(
    state: AppState, interval: Duration, mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let due = match state.store.due_data_sources(lore_core::now()).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list data sources due for a sync");
                    continue;
                }
            };
            for (user_id, id) in due {
                let Ok(Some(source)) = state.store.get_data_source(user_id, id).await else { continue };
                match start(&state, &source).await {
                    Ok(Some(run)) => run_sync(&state, source, run).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(source = %id, error = %e, "cannot start a sync"),
                }
            }
        }
    })
}
