//! Remote embedding providers over their own wire protocols: OpenAI-compatible `/embeddings`
//! (OpenAI, vLLM, Ollama, TEI's OpenAI route, DashScope, SiliconFlow ...), Cohere `v2/embed`, and
//! TEI's native `/embed`. Batches, per-request timeouts, and retries with exponential backoff on
//! 429 and 5xx that honour `Retry-After`; a 4xx is reported at once with the provider's message.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use lore_core::outbound::{self, Attempt, Policy, Retry};

use crate::{EmbedError, Embedder, EmbeddingConfig, InputKind, ProviderSecrets, normalize};

const DEFAULT_BATCH: usize = 64;
/// The largest answer read from a provider: a batch of 2,048 vectors of 3,072 floats as JSON
/// fits with room to spare.
pub(crate) const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);
/// Embedding runs in jobs: a provider that is busy is given five tries, and one that asks for
/// more than 30 s is left for the job's own retry later.
const RETRY: Retry = Retry { attempts: 5, backoff: Duration::from_millis(500), max_wait: Duration::from_secs(30) };

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
    /// How busy answers are retried ([`RETRY`]).
    pub retry: Retry,
}

const OPENAI_BASE: &str = "https://api.openai.com/v1";
const COHERE_BASE: &str = "https://api.cohere.com";

pub(crate) fn same_base(a: &str, b: &str) -> bool {
    !b.is_empty() && a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// A short, non-reversible tag for a key, to tell cached clients apart without keeping the key.
pub fn fingerprint(key: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl RemoteEmbedder {
    pub fn new(
        config: &EmbeddingConfig, secrets: &ProviderSecrets, space: String, policy: &Policy,
    ) -> Result<Self, EmbedError> {
        let model = config.model.clone().unwrap_or_default();
        // (protocol, the provider's own address, the address saved with the key, the key, path)
        let (protocol, official, saved, key, path) = match config.provider() {
            "openai" => (
                Protocol::OpenAi,
                OPENAI_BASE,
                secrets.openai_base_url.clone(),
                secrets.openai_api_key.clone(),
                "/embeddings",
            ),
            "cohere" => (
                Protocol::Cohere,
                COHERE_BASE,
                secrets.cohere_base_url.clone(),
                secrets.cohere_api_key.clone(),
                "/v2/embed",
            ),
            "tei" => {
                if config.base_url.is_none() {
                    return Err(EmbedError::InvalidConfig(
                        "provider 'tei' needs base_url, the address of the TEI server".into(),
                    ));
                }
                (Protocol::Tei, "", None, None, "/embed")
            }
            other => return Err(EmbedError::InvalidConfig(format!("unknown embedding provider '{other}'"))),
        };
        let base = config.base_url.clone().or(saved.clone()).unwrap_or_else(|| official.to_string());
        policy.check_url(&base).map_err(|e| EmbedError::Refused(e.message))?;
        // The owner's sealed key goes only to the address it was saved with, or to the provider
        // itself: never to an address that a knowledge base's settings name.
        let api_key =
            key.filter(|_| same_base(&base, official) || saved.as_deref().is_some_and(|s| same_base(&base, s)));
        if protocol != Protocol::Tei && api_key.is_none() && !is_local(&base) {
            return Err(EmbedError::InvalidConfig(format!(
                "provider '{}' needs an API key: set it in your configuration (PUT /v1/config); a saved key is \
                 sent only to the base URL saved with it or to the provider's own address",
                config.provider()
            )));
        }
        let http = policy
            .client_builder()
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
            retry: RETRY,
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
        let parsed = post_json(&self.http, &self.url, &body, self.api_key.as_deref(), self.retry).await?;
        self.parse(&parsed, texts.len())
    }
}

/// POSTs `body` as JSON to a provider (with its key as a bearer token), under `retry` and the
/// answer's byte budget: the parsed answer, or why not. A 4xx is `Rejected` at once; what keeps
/// failing is `Provider`. Embedders and rerankers share it.
pub(crate) async fn post_json(
    http: &reqwest::Client, url: &str, body: &Value, key: Option<&str>, retry: Retry,
) -> Result<Value, EmbedError> {
    let answer = retry
        .run(|_| async move {
            let mut request = http.post(url).json(body);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    let why = if e.is_timeout() { "timed out".into() } else { format!("cannot connect: {e}") };
                    return Attempt::Again { why, retry_after: None };
                }
            };
            let status = response.status();
            let retry_after = outbound::retry_after(response.headers());
            let text = match outbound::read_body(response, MAX_ANSWER_BYTES).await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(why) => return Attempt::Done(Err(EmbedError::Provider(why))),
            };
            if status.is_success() {
                return Attempt::Done(Ok(text));
            }
            let why = format!("HTTP {}: {}", status.as_u16(), provider_message(&text));
            match outbound::worth_retrying(status) {
                true => Attempt::Again { why, retry_after },
                false => Attempt::Done(Err(EmbedError::Rejected(why))),
            }
        })
        .await;
    match answer {
        Ok(Ok(text)) => {
            serde_json::from_str(&text).map_err(|e| EmbedError::Provider(format!("the answer is not JSON: {e}")))
        }
        Ok(Err(rejected)) => Err(rejected),
        Err(gave_up) => {
            Err(EmbedError::Provider(format!("{url} after {} attempts: {}", gave_up.attempts, gave_up.last)))
        }
    }
}

/// The provider's own error message, when its body carries one.
fn provider_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v["error"]["message"].as_str().or(v["message"].as_str()).or(v["error"].as_str()).map(str::to_string)
    });
    // Shortened: a hostile or broken endpoint's body is not relayed at length.
    message.unwrap_or_else(|| body.to_string()).chars().take(300).collect()
}

pub(crate) fn is_local(base: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use serde_json::{Value, json};

    use super::*;

    /// Serves `route` on 127.0.0.1 with `respond(call number, headers, body)`.
    async fn serve<F>(route: &'static str, respond: F) -> String
    where
        F: Fn(usize, HeaderMap, Value) -> axum::response::Response + Clone + Send + Sync + 'static,
    {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            route,
            axum::routing::post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let (respond, calls) = (respond.clone(), calls.clone());
                async move { respond(calls.fetch_add(1, Ordering::SeqCst), headers, body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn config(provider: &str, base_url: &str) -> EmbeddingConfig {
        EmbeddingConfig {
            provider: Some(provider.into()),
            model: Some("m".into()),
            base_url: Some(base_url.into()),
            batch_size: Some(2),
            ..Default::default()
        }
    }

    fn texts() -> Vec<String> {
        ["你好", "hello", "世界"].map(String::from).to_vec()
    }

    #[tokio::test]
    async fn tei_native_embed_batches_and_normalises() {
        let base = serve("/embed", |_, _, body| {
            let n = body["inputs"].as_array().map(Vec::len).unwrap_or(0);
            assert!(n <= 2, "batches of the configured size");
            Json(json!((0..n).map(|i| vec![3.0, 4.0 + i as f64]).collect::<Vec<_>>())).into_response()
        })
        .await;
        let e = RemoteEmbedder::new(&config("tei", &base), &ProviderSecrets::default(), "tei/m".into(), &loopback())
            .expect("tei");
        let v = e.embed(&texts(), InputKind::Passage).await.expect("embed");
        assert_eq!(v.len(), 3);
        assert!((v[0][0] - 0.6).abs() < 1e-6 && (v[0][1] - 0.8).abs() < 1e-6, "unit length: {v:?}");
    }

    #[tokio::test]
    async fn cohere_v2_sends_input_types_and_retries_unavailable() {
        let base = serve("/v2/embed", |call, headers, body| {
            if call == 0 {
                return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "busy").into_response();
            }
            assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer co-key"));
            let kind = body["input_type"].as_str().unwrap_or("");
            let n = body["texts"].as_array().map(Vec::len).unwrap_or(0);
            let x = if kind == "search_query" { 1.0 } else { 0.0 };
            Json(json!({"embeddings": {"float": (0..n).map(|_| vec![x, 1.0]).collect::<Vec<_>>()}})).into_response()
        })
        .await;
        let secrets = ProviderSecrets {
            cohere_api_key: Some("co-key".into()),
            cohere_base_url: Some(base.clone()),
            ..Default::default()
        };
        let mut e =
            RemoteEmbedder::new(&config("cohere", &base), &secrets, "cohere/m".into(), &loopback()).expect("cohere");
        e.retry.backoff = Duration::from_millis(1);
        let q = e.embed(&["问题".to_string()], InputKind::Query).await.expect("query");
        assert!(q[0][0] > 0.5, "queries are sent as search_query");
        let d = e.embed(&texts(), InputKind::Passage).await.expect("docs");
        assert_eq!(d[0][0], 0.0, "documents are sent as search_document");
    }

    #[tokio::test]
    async fn client_errors_are_reported_at_once_with_the_providers_message() {
        let base = serve("/embeddings", |_, _, _| {
            (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "model 'm' does not exist"}}))).into_response()
        })
        .await;
        let secrets = ProviderSecrets { openai_api_key: Some("sk".into()), ..Default::default() };
        let e =
            RemoteEmbedder::new(&config("openai", &base), &secrets, "openai/m".into(), &loopback()).expect("openai");
        match e.embed(&texts(), InputKind::Passage).await {
            Err(EmbedError::Rejected(m)) => assert!(m.contains("does not exist") && m.contains("400"), "{m}"),
            other => panic!("expected a rejection, got {other:?}"),
        }
        // A provider that never answers well fails after the retries, naming the last error.
        let down = serve("/embeddings", |_, _, _| (StatusCode::BAD_GATEWAY, "upstream").into_response()).await;
        let mut e =
            RemoteEmbedder::new(&config("openai", &down), &secrets, "openai/m".into(), &loopback()).expect("openai");
        e.retry.backoff = Duration::from_millis(1);
        match e.embed(&texts(), InputKind::Passage).await {
            Err(EmbedError::Provider(m)) => assert!(m.contains("502") && m.contains("5 attempts"), "{m}"),
            other => panic!("expected a provider failure, got {other:?}"),
        }
        // Remote hosts need a key; a missing one is a configuration error, not a request.
        let remote = config("openai", "https://api.example.com/v1");
        assert!(matches!(
            RemoteEmbedder::new(&remote, &ProviderSecrets::default(), "openai/m".into(), &loopback()),
            Err(EmbedError::InvalidConfig(_))
        ));
    }

    /// The policy the tests run under: their providers listen on 127.0.0.1.
    fn loopback() -> Policy {
        Policy { allowed: Policy::parse_allowed("127.0.0.1/32").expect("cidr"), ..Policy::default() }
    }

    #[tokio::test]
    async fn a_saved_key_goes_only_where_it_was_saved_for_and_private_addresses_are_refused() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let elsewhere = serve("/embeddings", move |_, headers, body| {
            recorded
                .lock()
                .expect("lock")
                .push(headers.get("authorization").map(|v| v.to_str().unwrap_or("").to_string()));
            let n = body["input"].as_array().map(Vec::len).unwrap_or(0);
            Json(json!({"data": (0..n).map(|_| json!({"embedding": [1.0, 0.0]})).collect::<Vec<_>>()})).into_response()
        })
        .await;
        // The key was saved for the provider's own address; a knowledge base names another one.
        let secrets = ProviderSecrets { openai_api_key: Some("sk-owner-secret".into()), ..Default::default() };
        let e = RemoteEmbedder::new(&config("openai", &elsewhere), &secrets, "openai/m".into(), &loopback())
            .expect("a keyless local server is allowed");
        e.embed(&["向量 vector".to_string()], InputKind::Passage).await.expect("embed");
        assert_eq!(*seen.lock().expect("lock"), vec![None], "the owner's key must not reach another address");
        // Without the operator's allowance, loopback, private and link-local addresses are refused.
        for base in [elsewhere.as_str(), "http://169.254.169.254/v1", "http://10.0.0.8/v1"] {
            assert!(
                matches!(
                    RemoteEmbedder::new(&config("openai", base), &secrets, "openai/m".into(), &Policy::default()),
                    Err(EmbedError::Refused(_))
                ),
                "{base}"
            );
        }
    }
}
