//! Remote embedding providers over their own wire protocols: OpenAI-compatible `/embeddings`
//! (OpenAI, vLLM, Ollama, TEI's OpenAI route, DashScope, SiliconFlow ...), Cohere `v2/embed`, and
//! TEI's native `/embed`. Batches, per-request timeouts, and retries with exponential backoff on
//! 429 and 5xx that honour `Retry-After`; a 4xx is reported at once with the provider's message.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::{EmbedError, Embedder, EmbeddingConfig, InputKind, ProviderSecrets, normalize};

const DEFAULT_BATCH: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: u32 = 5;
/// Retry-After beyond this is not waited for: the job is retried later instead.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    OpenAi,
    Cohere,
    Tei,
}

pub struct RemoteEmbedder {
    protocol: Protocol,
    space: String,
    model: String,
    dimensions: Option<usize>,
    url: String,
    api_key: Option<String>,
    batch: usize,
    http: reqwest::Client,
    /// First retry delay; doubled per attempt.
    pub backoff: Duration,
}

/// A short, non-reversible tag for a key, to tell cached clients apart without keeping the key.
pub fn fingerprint(key: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl RemoteEmbedder {
    pub fn new(config: &EmbeddingConfig, secrets: &ProviderSecrets, space: String) -> Result<Self, EmbedError> {
        let model = config.model.clone().unwrap_or_default();
        let (protocol, base, api_key, path) = match config.provider() {
            "openai" => (
                Protocol::OpenAi,
                config
                    .base_url
                    .clone()
                    .or(secrets.openai_base_url.clone())
                    .unwrap_or("https://api.openai.com/v1".into()),
                secrets.openai_api_key.clone(),
                "/embeddings",
            ),
            "cohere" => (
                Protocol::Cohere,
                config.base_url.clone().or(secrets.cohere_base_url.clone()).unwrap_or("https://api.cohere.com".into()),
                secrets.cohere_api_key.clone(),
                "/v2/embed",
            ),
            "tei" => (
                Protocol::Tei,
                config.base_url.clone().ok_or_else(|| {
                    EmbedError::InvalidConfig("provider 'tei' needs base_url, the address of the TEI server".into())
                })?,
                None,
                "/embed",
            ),
            other => return Err(EmbedError::InvalidConfig(format!("unknown embedding provider '{other}'"))),
        };
        if protocol != Protocol::Tei && api_key.is_none() && !is_local(&base) {
            return Err(EmbedError::InvalidConfig(format!(
                "provider '{}' needs an API key: set it in your configuration (PUT /v1/config)",
                config.provider()
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| EmbedError::Provider(format!("cannot build an HTTP client: {e}")))?;
        Ok(RemoteEmbedder {
            protocol,
            space,
            model,
            dimensions: config.dimensions,
            url: format!("{}{path}", base.trim_end_matches('/')),
            api_key,
            batch: config.batch_size.unwrap_or(DEFAULT_BATCH).clamp(1, 2048),
            http,
            backoff: Duration::from_millis(500),
        })
    }

    fn body(&self, texts: &[String], kind: InputKind) -> Value {
        match self.protocol {
            Protocol::OpenAi => {
                let mut body = json!({ "model": self.model, "input": texts, "encoding_format": "float" });
                if let Some(d) = self.dimensions {
                    body["dimensions"] = json!(d);
                }
                body
            }
            Protocol::Cohere => json!({
                "model": self.model,
                "texts": texts,
                "input_type": if kind == InputKind::Query { "search_query" } else { "search_document" },
                "embedding_types": ["float"],
            }),
            Protocol::Tei => json!({ "inputs": texts, "normalize": true, "truncate": true }),
        }
    }

    fn parse(&self, body: &Value, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let as_vector =
            |v: &Value| -> Option<Vec<f32>> { v.as_array()?.iter().map(|x| x.as_f64().map(|f| f as f32)).collect() };
        let vectors: Option<Vec<Vec<f32>>> = match self.protocol {
            Protocol::OpenAi => body["data"].as_array().and_then(|items| {
                let mut indexed: Vec<(u64, Vec<f32>)> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Some((item["index"].as_u64().unwrap_or(i as u64), as_vector(&item["embedding"])?)))
                    .collect::<Option<_>>()?;
                indexed.sort_by_key(|(i, _)| *i);
                Some(indexed.into_iter().map(|(_, v)| v).collect())
            }),
            Protocol::Cohere => body["embeddings"]["float"].as_array().and_then(|a| a.iter().map(as_vector).collect()),
            Protocol::Tei => body.as_array().and_then(|a| a.iter().map(as_vector).collect()),
        };
        let mut vectors = vectors.ok_or_else(|| EmbedError::Provider("the response has no embeddings".into()))?;
        if vectors.len() != expected {
            return Err(EmbedError::Provider(format!("asked for {expected} embeddings, got {}", vectors.len())));
        }
        let dims = vectors.first().map(Vec::len).unwrap_or(0);
        if vectors.iter().any(|v| v.len() != dims || v.is_empty()) {
            return Err(EmbedError::Provider("the embeddings have inconsistent dimensions".into()));
        }
        if let Some(d) = self.dimensions
            && d != dims
        {
            return Err(EmbedError::Provider(format!("configured for {d} dimensions, the provider returned {dims}")));
        }
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }

    async fn call(&self, texts: &[String], kind: InputKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = self.body(texts, kind);
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut request = self.http.post(&self.url).json(&body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map(|s| Duration::from_secs_f64(s.max(0.0)));
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        let parsed: Value = serde_json::from_str(&text)
                            .map_err(|e| EmbedError::Provider(format!("the response is not JSON: {e}")))?;
                        return self.parse(&parsed, texts.len());
                    }
                    let message = provider_message(&text);
                    if status.as_u16() == 429 || status.is_server_error() {
                        last = format!("HTTP {}: {message}", status.as_u16());
                        if let Some(wait) = retry_after {
                            if wait > MAX_RETRY_WAIT {
                                break;
                            }
                            delay = delay.max(wait);
                        }
                    } else {
                        return Err(EmbedError::Rejected(format!("HTTP {}: {message}", status.as_u16())));
                    }
                }
                Err(e) => last = if e.is_timeout() { "timed out".into() } else { format!("cannot connect: {e}") },
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(EmbedError::Provider(format!("{} after {MAX_ATTEMPTS} attempts: {last}", self.url)))
    }
}

/// The provider's own error message, when its body carries one.
fn provider_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v["error"]["message"].as_str().or(v["message"].as_str()).or(v["error"].as_str()).map(str::to_string)
    });
    message.unwrap_or_else(|| body.chars().take(300).collect())
}

fn is_local(base: &str) -> bool {
    let host = base.split("://").nth(1).unwrap_or(base);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[async_trait]
impl Embedder for RemoteEmbedder {
    fn space(&self) -> &str {
        &self.space
    }

    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            out.extend(self.call(batch, kind).await?);
        }
        Ok(out)
    }
}
