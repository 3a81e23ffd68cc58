//! The rerank stage of search: the head of the fused list is read again by a cross-encoder
//! (`search_config.rerank` of a knowledge base, a search's own `rerank`, an agent's
//! `model_parameters.rerank`), ordered by its scores, and cut to `top_n`.
//!
//! A reranker that fails leaves the fused order, with a warning, as hybrid search without a
//! usable embedding model falls back to full text: search answers either way.

use std::sync::Arc;

use lore_core::error::{Code, Error};
use lore_core::model::{Id, RerankConfig};
use lore_embed::rerank::{RemoteReranker, Reranker};
use serde::{Deserialize, Serialize};

use super::SearchResult;
use crate::state::AppState;

/// Of each passage, at most this many characters are sent: cross-encoders read about 512 tokens.
const PASSAGE_CHARS: usize = 2_000;

/// A search's `rerank`: `false` turns the knowledge base's off, `true` keeps it (the default),
/// an object replaces it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RerankRequest {
    Switch(bool),
    Config(RerankConfig),
}

impl RerankRequest {
    /// `None`: as the knowledge base says; `Some(None)`: off; `Some(Some(c))`: this one.
    pub fn choice(self) -> Option<Option<RerankConfig>> {
        match self {
            RerankRequest::Switch(true) => None,
            RerankRequest::Switch(false) => Some(None),
            RerankRequest::Config(c) => Some(Some(c)),
        }
    }
}

/// Checks a configuration where it is saved or sent, so that a typo fails there.
/// (Whether a local model is there is [`check_available`]'s.)
pub fn check(config: &RerankConfig) -> Result<(), Error> {
    let invalid = |m: String| Error::new(Code::ValidationFailed, m);
    if !lore_embed::rerank::PROVIDERS.contains(&config.provider.as_str()) {
        return Err(invalid(format!(
            "rerank.provider '{}' is not a reranker; expected one of {}",
            config.provider,
            lore_embed::rerank::PROVIDERS.join(", ")
        )));
    }
    for (name, value) in [("candidates", config.candidates), ("top_n", config.top_n)] {
        if value.is_some_and(|n| !(1..=RerankConfig::MAX_CANDIDATES).contains(&n)) {
            return Err(invalid(format!("rerank.{name} must be 1 to {}", RerankConfig::MAX_CANDIDATES)));
        }
    }
    if let Some(url) = &config.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid("rerank.base_url must be an http(s) URL".into()));
    }
    if config.model.as_deref().is_some_and(|m| m.len() > 200) {
        return Err(invalid("rerank.model is too long".into()));
    }
    if config.provider == "local" && config.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(invalid("rerank.provider 'local' needs the model: a cross-encoder in the model directory".into()));
    }
    Ok(())
}

/// Where it is saved, a local reranker must be there: a typo fails at once, not on every search.
pub fn check_available(state: &AppState, config: &RerankConfig) -> Result<(), Error> {
    check(config)?;
    if config.provider == "local" {
        let model = config.model.as_deref().unwrap_or_default();
        state.embedders.check_reranker(model).map_err(|e| Error::new(Code::UnknownModel, e.to_string()))?;
    }
    Ok(())
}

/// How many fused results the stage reads.
pub fn candidates(config: &RerankConfig, top_k: u32) -> u32 {
    config.candidates.unwrap_or(RerankConfig::DEFAULT_CANDIDATES).max(top_k).min(RerankConfig::MAX_CANDIDATES)
}

/// Reorders `results` by the reranker's scores, keeps `top_n` (else `top_k`), and says why when
/// it could not.
pub async fn rerank(
    state: &AppState, owner: Id, config: &RerankConfig, query: &str, mut results: Vec<SearchResult>, top_k: u32,
) -> Result<(Vec<SearchResult>, Option<String>), Error> {
    let keep = config.top_n.unwrap_or(top_k) as usize;
    let reranker: Arc<dyn Reranker> = match config.provider.as_str() {
        "local" => {
            let model = config.model.as_deref().unwrap_or_default();
            state.embedders.local_reranker(model).await.map_err(crate::embedding::to_error)?
        }
        provider => {
            let secrets = crate::embedding::secrets(state, owner).await?;
            let remote = RemoteReranker::new(
                provider,
                config.model.as_deref(),
                config.base_url.as_deref(),
                &secrets,
                &state.config.outbound(),
            );
            Arc::new(remote.map_err(crate::embedding::to_error)?)
        }
    };
    let passages: Vec<String> = results.iter().map(|r| r.hit.content.chars().take(PASSAGE_CHARS).collect()).collect();
    let started = std::time::Instant::now();
    let scores = match reranker.rerank(query, &passages).await {
        Ok(scores) => scores,
        Err(e) => {
            tracing::warn!(reranker = reranker.name(), error = %e, "search keeps the fused order");
            results.truncate(keep);
            return Ok((results, Some(format!("rerank_failed: {e}; results are in fused order"))));
        }
    };
    crate::metrics::stage("rerank", started.elapsed().as_secs_f64());
    for (result, score) in results.iter_mut().zip(scores) {
        result.rerank_score = score.is_finite().then_some(f64::from(score));
    }
    // A stable sort: passages the reranker scores alike keep their fused order.
    results.sort_by(|a, b| {
        b.rerank_score.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.rerank_score.unwrap_or(f64::NEG_INFINITY))
    });
    results.truncate(keep);
    Ok((results, None))
}
