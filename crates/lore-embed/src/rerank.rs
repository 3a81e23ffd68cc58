//! Rerankers: a cross-encoder reads the query and each passage together and scores how well the
//! passage answers it, which orders the head of a fused result list better than either score
//! alone. Remote rerankers speak their providers' wire formats: Cohere `v2/rerank`, Jina and vLLM
//! `v1/rerank`, Voyage `v1/rerank`, and TEI's native `/rerank`, with the retry policy of every
//! outbound call, a timeout and a budget on the answer.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use lore_core::outbound::{Policy, Retry};

use crate::remote::{is_local, post_json, same_base};
use crate::{EmbedError, ProviderSecrets};

/// Search waits for the reranker: a busy one gets three quick tries, not minutes.
const RETRY: Retry = Retry { attempts: 3, backoff: Duration::from_millis(200), max_wait: Duration::from_secs(5) };
const TIMEOUT: Duration = Duration::from_secs(30);
/// The providers a knowledge base's `search_config.rerank.provider` may name: `local` (a
/// cross-encoder in the model directory, [`crate::cross`]) and the remote ones.
pub const PROVIDERS: [&str; 6] = ["local", "cohere", "jina", "voyage", "tei", "vllm"];

#[async_trait]
pub trait Reranker: Send + Sync {
    /// `provider/model`, as results and logs name it.
    fn name(&self) -> &str;
    /// A relevance score for each passage, in the passages' order (higher is better).
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Cohere,
    Jina,
    Voyage,
    Tei,
    Vllm,
}

pub struct RemoteReranker {
    protocol: Protocol,
    name: String,
    model: String,
    url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl RemoteReranker {
    /// A reranker of `provider` at `base_url` (the provider's own address otherwise). The owner's
    /// Cohere key goes only to Cohere's address or the one saved with it; the self-hosted
    /// protocols need `base_url` and take no key.
    pub fn new(
        provider: &str, model: Option<&str>, base_url: Option<&str>, secrets: &ProviderSecrets, policy: &Policy,
    ) -> Result<Self, EmbedError> {
        let (protocol, official, path) = match provider {
            "cohere" => (Protocol::Cohere, "https://api.cohere.com", "/v2/rerank"),
            "jina" => (Protocol::Jina, "https://api.jina.ai", "/v1/rerank"),
            "voyage" => (Protocol::Voyage, "https://api.voyageai.com", "/v1/rerank"),
            "tei" => (Protocol::Tei, "", "/rerank"),
            "vllm" => (Protocol::Vllm, "", "/v1/rerank"),
            other => {
                return Err(EmbedError::InvalidConfig(format!(
                    "unknown rerank provider '{other}'; expected one of {}",
                    PROVIDERS.join(", ")
                )));
            }
        };
        let base = match base_url.map(str::to_string) {
            Some(base) => base,
            None if protocol == Protocol::Cohere => secrets.cohere_base_url.clone().unwrap_or(official.into()),
            None if !official.is_empty() => official.to_string(),
            None => {
                return Err(EmbedError::InvalidConfig(format!(
                    "rerank provider '{provider}' needs base_url, the address of its server"
                )));
            }
        };
        policy.check_url(&base).map_err(|e| EmbedError::Refused(e.message))?;
        let api_key = match protocol {
            Protocol::Cohere => secrets.cohere_api_key.clone().filter(|_| {
                same_base(&base, official) || secrets.cohere_base_url.as_deref().is_some_and(|s| same_base(&base, s))
            }),
            _ => None,
        };
        let model = model.map(str::trim).filter(|m| !m.is_empty());
        if model.is_none() && protocol != Protocol::Tei {
            return Err(EmbedError::InvalidConfig(format!("rerank provider '{provider}' needs a model")));
        }
        if matches!(protocol, Protocol::Cohere | Protocol::Jina | Protocol::Voyage)
            && api_key.is_none()
            && !is_local(&base)
        {
            let hint = match protocol {
                Protocol::Cohere => "set your Cohere key in your configuration (PUT /v1/config)",
                _ => "Lore keeps no key for it yet: reach it through a gateway on base_url that adds the key",
            };
            return Err(EmbedError::InvalidConfig(format!("rerank provider '{provider}' needs an API key: {hint}")));
        }
        let http = policy
            .client_builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| EmbedError::Provider(format!("cannot build an HTTP client: {e}")))?;
        Ok(RemoteReranker {
            protocol,
            name: format!("{provider}/{}", model.unwrap_or("default")),
            model: model.unwrap_or_default().to_string(),
            url: format!("{}{path}", base.trim_end_matches('/')),
            api_key,
            http,
        })
    }

    fn body(&self, query: &str, passages: &[String]) -> Value {
        match self.protocol {
            Protocol::Cohere | Protocol::Jina | Protocol::Vllm => {
                json!({"model": self.model, "query": query, "documents": passages, "top_n": passages.len()})
            }
            Protocol::Voyage => {
                json!({"model": self.model, "query": query, "documents": passages, "top_k": passages.len(), "truncation": true})
            }
            Protocol::Tei => json!({"query": query, "texts": passages, "truncate": true, "raw_scores": false}),
        }
    }

    /// The score of each passage; one the provider left out scores below every other.
    fn parse(&self, body: &Value, passages: usize) -> Result<Vec<f32>, EmbedError> {
        let (items, score) = match self.protocol {
            Protocol::Cohere | Protocol::Jina | Protocol::Vllm => (body["results"].as_array(), "relevance_score"),
            Protocol::Voyage => (body["data"].as_array(), "relevance_score"),
            Protocol::Tei => (body.as_array(), "score"),
        };
        let items = items.ok_or_else(|| EmbedError::Provider("the answer has no rerank results".into()))?;
        let mut scores = vec![f32::NEG_INFINITY; passages];
        for item in items {
            let (Some(index), Some(value)) = (item["index"].as_u64(), item[score].as_f64()) else {
                return Err(EmbedError::Provider("a rerank result lacks its index or score".into()));
            };
            let slot = scores
                .get_mut(index as usize)
                .ok_or_else(|| EmbedError::Provider(format!("a rerank result names passage {index} of {passages}")))?;
            *slot = value as f32;
        }
        Ok(scores)
    }
}

#[async_trait]
impl Reranker for RemoteReranker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.body(query, passages);
        let answer = post_json(&self.http, &self.url, &body, self.api_key.as_deref(), RETRY).await?;
        self.parse(&answer, passages.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::http::HeaderMap;
    use axum::routing::post;

    use super::*;

    type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

    /// One local server with each provider's route; each scores a passage by how often it says
    /// the query's first word, and answers in that provider's own shape.
    async fn providers() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let score = |body: &Value, field: &str| -> Vec<(usize, f64)> {
            let word =
                body["query"].as_str().unwrap_or_default().split_whitespace().next().unwrap_or_default().to_string();
            let texts = body[field].as_array().cloned().unwrap_or_default();
            let mut scored: Vec<(usize, f64)> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (i, t.as_str().unwrap_or_default().matches(word.as_str()).count() as f64 / 10.0))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            scored
        };
        let route = |name: &'static str, seen: Seen| {
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                    seen.lock().expect("lock").push((name.to_string(), auth, body.clone()));
                    let field = if name == "tei" { "texts" } else { "documents" };
                    let scored = score(&body, field);
                    let list =
                        |key: &str| -> Vec<Value> { scored.iter().map(|(i, s)| json!({"index": i, key: s})).collect() };
                    Json(match name {
                        "tei" => json!(list("score")),
                        "voyage" => json!({"object": "list", "data": list("relevance_score"), "model": body["model"]}),
                        _ => json!({"id": "r", "results": list("relevance_score")}),
                    })
                }
            })
        };
        let router = axum::Router::new()
            .route("/cohere/v2/rerank", route("cohere", seen.clone()))
            .route("/jina/v1/rerank", route("jina", seen.clone()))
            .route("/voyage/v1/rerank", route("voyage", seen.clone()))
            .route("/tei/rerank", route("tei", seen.clone()))
            .route("/vllm/v1/rerank", route("vllm", seen.clone()))
            .route("/huge/v1/rerank", post(|| async { "x".repeat(crate::remote::MAX_ANSWER_BYTES + 1) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        (format!("http://{addr}"), seen)
    }

    fn local() -> Policy {
        Policy { allowed: Policy::parse_allowed("127.0.0.0/8").expect("net"), ..Policy::default() }
    }

    #[tokio::test]
    async fn each_wire_format_scores_passages_in_their_order() {
        let (base, seen) = providers().await;
        let secrets = ProviderSecrets {
            cohere_api_key: Some("co-key".into()),
            cohere_base_url: Some(format!("{base}/cohere")),
            ..Default::default()
        };
        let passages = vec!["退款 退款 退款".to_string(), "发货".to_string(), "退款 一次".to_string()];
        for provider in &PROVIDERS[1..] {
            let provider = *provider;
            let reranker = RemoteReranker::new(
                provider,
                Some("rerank-m"),
                Some(&format!("{base}/{provider}")),
                &secrets,
                &local(),
            )
            .expect(provider);
            let scores = reranker.rerank("退款 多久", &passages).await.expect(provider);
            assert_eq!(scores.len(), 3, "{provider}");
            assert!(scores[0] > scores[2] && scores[2] > scores[1], "{provider}: {scores:?}");
            let seen = seen.lock().expect("lock");
            let (name, auth, body) = seen.last().expect("called");
            assert_eq!(name, provider);
            assert_eq!(body["query"], "退款 多久");
            // The owner's Cohere key goes to the Cohere address saved with it, and nowhere else.
            assert_eq!(auth.as_deref(), (provider == "cohere").then_some("Bearer co-key"), "{provider}");
        }
        let english = RemoteReranker::new("tei", None, Some(&format!("{base}/tei")), &secrets, &local()).expect("tei");
        let scores = english.rerank("refund policy", &["no".into(), "refund refund".into()]).await.expect("tei");
        assert!(scores[1] > scores[0]);
    }

    #[tokio::test]
    async fn configurations_are_checked_and_answers_bounded() {
        let (base, _) = providers().await;
        let none = ProviderSecrets::default();
        let err = |r: Result<RemoteReranker, EmbedError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(RemoteReranker::new("magic", Some("m"), Some(&base), &none, &local()))
                .contains("unknown rerank provider")
        );
        assert!(err(RemoteReranker::new("tei", None, None, &none, &local())).contains("needs base_url"));
        assert!(err(RemoteReranker::new("jina", None, Some(&base), &none, &local())).contains("needs a model"));
        assert!(err(RemoteReranker::new("cohere", Some("m"), None, &none, &local())).contains("needs an API key"));
        // The outbound policy holds for rerankers as for every outbound call.
        let refused = RemoteReranker::new("tei", None, Some("http://169.254.169.254/"), &none, &Policy::default());
        assert!(matches!(refused, Err(EmbedError::Refused(_))));
        let huge =
            RemoteReranker::new("vllm", Some("m"), Some(&format!("{base}/huge")), &none, &local()).expect("vllm");
        let e = huge.rerank("q", &["p".into()]).await.expect_err("too large");
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}
