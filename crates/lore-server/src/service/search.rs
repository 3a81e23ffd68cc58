//! Search over one or many knowledge bases: full text, vector and hybrid.

use lore_core::error::{Code, Error};
use lore_core::model::*;
use lore_core::search::{Fusion, SearchMode};
use serde::{Deserialize, Serialize};

use super::rerank::{self, RerankRequest};
use super::*;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    pub mode: Option<String>,
    pub top_k: Option<u32>,
    /// Minimum cosine similarity of vector matches (0..1).
    pub similarity_threshold: Option<f64>,
    #[serde(default)]
    pub filters: SearchFilters,
    /// Which embedding vector matches compare against: content (default), summary or both.
    pub search_target: Option<SearchTarget>,
    /// Hybrid fusion weights.
    pub weights: Option<HybridWeights>,
    /// Hybrid fusion: `weighted` (each list's scores scaled to 0..1 and summed by weight, the
    /// default) or `rrf` (reciprocal rank fusion).
    pub fusion: Option<String>,
    /// For `POST /v1/search`: the knowledge bases to search (all of the caller's when absent).
    #[serde(default)]
    pub knowledge_base_ids: Option<Vec<Id>>,
    /// A rerank stage: `false` turns the knowledge base's off, an object sets one for this search.
    pub rerank: Option<RerankRequest>,
}

/// A search as every caller hands it to [`run_search`]: the HTTP routes (from a
/// [`SearchRequest`]), agents and MCP. A setting left `None` takes the knowledge base's search
/// settings (when one knowledge base is searched), then the owner's defaults, then Lore's.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub mode: Option<SearchMode>,
    pub top_k: Option<u32>,
    pub similarity_threshold: Option<f64>,
    pub filters: SearchFilters,
    pub target: Option<SearchTarget>,
    pub fusion: Option<Fusion>,
    pub weights: Option<HybridWeights>,
    /// `None`: the knowledge base's rerank stage; `Some(None)`: none; `Some(Some(c))`: this one.
    pub rerank: Option<Option<RerankConfig>>,
}

impl SearchRequest {
    /// The typed query, and the knowledge bases it names (for `POST /v1/search`).
    pub fn into_query(self) -> Result<(SearchQuery, Option<Vec<Id>>), Error> {
        let query = SearchQuery {
            text: self.query,
            mode: self.mode.as_deref().map(str::parse).transpose()?,
            top_k: self.top_k,
            similarity_threshold: self.similarity_threshold,
            filters: self.filters,
            target: self.search_target,
            fusion: self.fusion.as_deref().map(str::parse).transpose()?,
            weights: self.weights,
            rerank: self.rerank.and_then(RerankRequest::choice),
        };
        if let Some(Some(config)) = &query.rerank {
            rerank::check(config)?;
        }
        Ok((query, self.knowledge_base_ids))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridWeights {
    #[serde(default = "one")]
    pub vector: f64,
    #[serde(default = "one")]
    pub fulltext: f64,
}

pub(crate) fn one() -> f64 {
    1.0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    #[serde(flatten)]
    pub hit: ChunkHit,
    /// An excerpt with the matched terms in `<mark>`, HTML-escaped.
    pub highlight: String,
    /// In hybrid mode: the cosine similarity and the BM25 score behind the fused `score`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulltext_score: Option<f64>,
    /// With a rerank stage: the reranker's score, which orders the results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub query: String,
    pub mode: &'static str,
    pub results: Vec<SearchResult>,
    pub took_ms: f64,
    /// The embedding space the query was embedded in, for vector and hybrid search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Set when the search could not run as asked (hybrid without a usable model runs full text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

pub const MAX_TOP_K: u32 = 100;
pub(crate) const MAX_QUERY_CHARS: usize = 2000;

/// `POST /v1/knowledge-bases/{id}/search`.
pub async fn search(
    state: &AppState, principal: &Principal, kb_id: Id, query: SearchQuery,
) -> ApiResult<SearchResponse> {
    principal.require(Scope::Search)?;
    let kb = readable_kb(state, principal, kb_id).await?;
    Ok(run_search(state, principal, vec![kb], query).await?)
}

/// `POST /v1/search`: several knowledge bases at once; vector and hybrid search need them to
/// share one embedding space.
pub async fn search_all(
    state: &AppState, principal: &Principal, knowledge_base_ids: Option<Vec<Id>>, query: SearchQuery,
) -> ApiResult<SearchResponse> {
    principal.require(Scope::Search)?;
    let max = lore_core::budget::budgets().max_search_knowledge_bases;
    let too_many = |n: usize| {
        lore_core::budget::exceeded(
            Code::TooManyKnowledgeBases,
            format!("a search may span at most {max} knowledge bases, not {n}; name fewer in knowledge_base_ids"),
            "max-search-knowledge-bases",
        )
    };
    let kbs = match knowledge_base_ids {
        Some(mut ids) => {
            // Refused before any lookup; a repeated id counts once.
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(*id));
            if ids.len() > max {
                return Err(too_many(ids.len()).into());
            }
            let mut kbs = Vec::with_capacity(ids.len());
            for id in ids {
                kbs.push(readable_kb(state, principal, id).await?);
            }
            kbs
        }
        None => {
            let kbs: Vec<KnowledgeBase> = state
                .store
                .list_knowledge_bases(principal.owner_id())
                .await?
                .into_iter()
                .filter(|kb| principal.require_knowledge_base(kb.id).is_ok())
                .collect();
            if kbs.len() > max {
                return Err(too_many(kbs.len()).into());
            }
            kbs
        }
    };
    Ok(run_search(state, principal, kbs, query).await?)
}

/// The knowledge bases' ids by the workspace they belong to, in first-seen order.
fn by_owner(kbs: &[KnowledgeBase]) -> Vec<(Id, Vec<Id>)> {
    let mut groups: Vec<(Id, Vec<Id>)> = Vec::new();
    for kb in kbs {
        match groups.iter_mut().find(|(owner, _)| *owner == kb.user_id) {
            Some((_, ids)) => ids.push(kb.id),
            None => groups.push((kb.user_id, vec![kb.id])),
        }
    }
    groups
}

pub(crate) async fn run_search(
    state: &AppState, principal: &Principal, kbs: Vec<KnowledgeBase>, req: SearchQuery,
) -> Result<SearchResponse, Error> {
    let started = std::time::Instant::now();
    let query = req.text.trim().to_string();
    if query.is_empty() {
        return Err(Error::new(Code::InvalidQuery, "query must not be empty"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::new(Code::InvalidQuery, format!("query must be at most {MAX_QUERY_CHARS} characters")));
    }
    // One knowledge base's search settings apply to a search of it alone.
    let search_config = match kbs.as_slice() {
        [kb] => kb.settings.search_config.clone().unwrap_or_default(),
        _ => SearchConfig::default(),
    };
    let mut mode = match req.mode {
        Some(mode) => mode,
        None => search_config.default_mode.as_deref().map(str::parse).transpose()?.unwrap_or_default(),
    };
    // The request's settings, else the knowledge base's, else the caller's own defaults
    // (`PUT /v1/config`), else Lore's. Agents search through here, so theirs apply to them too.
    let defaults = state.store.get_user_config(principal.owner_id()).await?;
    let default_top_k =
        defaults.as_ref().and_then(|c| c.max_search_results).map(|n| n.clamp(1, i64::from(MAX_TOP_K)) as u32);
    let top_k = req.top_k.or(search_config.top_k).or(default_top_k).unwrap_or(10);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(Error::new(Code::ValidationFailed, format!("top_k must be between 1 and {MAX_TOP_K}")));
    }
    let threshold = req
        .similarity_threshold
        .or(search_config.similarity_threshold)
        .or(defaults.as_ref().and_then(|c| c.default_similarity_threshold));
    if let Some(t) = threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(Error::new(Code::ValidationFailed, "similarity_threshold must be between 0 and 1"));
    }
    let fusion = match req.fusion {
        Some(fusion) => fusion,
        None => search_config.fusion.as_deref().map(str::parse).transpose()?.unwrap_or_default(),
    };
    // Knowledge bases with generated questions or summaries are searched by them too, unless told
    // otherwise.
    let target = req.target.or(search_config.search_target).unwrap_or_else(|| {
        let written =
            |kb: &KnowledgeBase| kb.settings.question_generation.is_some() || kb.settings.summary_config.is_some();
        match kbs.iter().any(written) {
            true => SearchTarget::Both,
            false => SearchTarget::Content,
        }
    });
    let rerank = match req.rerank {
        Some(choice) => choice,
        None => search_config.rerank.clone(),
    };
    // With a rerank stage, fusion keeps its candidates; the stage cuts them to the top.
    let wanted = rerank.as_ref().map_or(top_k, |c| rerank::candidates(c, top_k));
    let weights = req.weights.unwrap_or(HybridWeights { vector: 1.0, fulltext: 1.0 });
    if !(weights.vector >= 0.0 && weights.fulltext >= 0.0 && weights.vector + weights.fulltext > 0.0) {
        return Err(Error::new(Code::ValidationFailed, "weights must be non-negative and not both zero"));
    }
    if kbs.is_empty() {
        return Ok(SearchResponse {
            query,
            mode: mode.as_str(),
            results: Vec::new(),
            took_ms: 0.0,
            embedding_model: None,
            warning: None,
        });
    }

    // Fusion sees deeper lists than it returns, so agreement below the top k still counts.
    let depth = if mode == SearchMode::Hybrid { (wanted * 3).clamp(30, MAX_TOP_K * 3) } else { wanted };
    let kb_ids: Vec<Id> = kbs.iter().map(|kb| kb.id).collect();
    let terms = lore_ingest::segment::query_terms(&query);

    // The query's embedding and the vector search run while the full-text search does.
    let vector = async {
        if mode == SearchMode::Fulltext {
            return Ok((None, Vec::new(), None));
        }
        let (space, vector) = match query_embedding(state, &kbs, &query).await {
            Ok(embedded) => embedded,
            Err(e)
                if mode == SearchMode::Hybrid
                    && matches!(
                        e.code,
                        Code::ModelUnavailable | Code::EmbeddingNotConfigured | Code::EmbeddingFailed
                    ) =>
            {
                tracing::warn!(error = %e.message, "hybrid search runs on full text alone");
                let warning = format!("{}: {}; results are full-text only", e.code.as_str(), e.message);
                return Ok((None, Vec::new(), Some(warning)));
            }
            Err(e) => return Err(e),
        };
        // Each workspace's knowledge bases in one query (a knowledge base shared into the
        // caller's workspace is searched where it lives).
        let mut hits = Vec::new();
        let groups = by_owner(&kbs);
        let merged = groups.len() > 1;
        for (owner, knowledge_base_ids) in groups {
            let query = VectorQuery {
                user_id: owner,
                knowledge_base_ids,
                embedding_model: space.clone(),
                vector: vector.clone(),
                top_k: depth,
                filters: req.filters.clone(),
                target,
                min_score: threshold,
            };
            hits.extend(state.store.search_vector(&query).await?);
        }
        if merged {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(depth as usize);
        }
        Ok::<_, Error>((Some(space), hits, None))
    };
    let fulltext = async {
        let mut hits = Vec::new();
        if mode == SearchMode::Vector {
            return Ok(hits);
        }
        for kb in &kbs {
            hits.extend(
                state
                    .store
                    .search_fulltext(&FulltextQuery {
                        user_id: kb.user_id,
                        knowledge_base_id: kb.id,
                        terms: terms.clone(),
                        top_k: depth,
                        filters: req.filters.clone(),
                    })
                    .await?,
            );
        }
        if kb_ids.len() > 1 {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(depth as usize);
        }
        Ok::<_, Error>(hits)
    };
    let (vector, fulltext) = tokio::join!(vector, fulltext);
    let (embedded_space, vector_hits, warning) = vector?;
    let fulltext_hits = fulltext?;
    if warning.is_some() {
        mode = SearchMode::Fulltext;
    }

    let with_highlight = |hit: ChunkHit, vector_score, fulltext_score| {
        let highlight = lore_ingest::highlight::highlight(&hit.content, &terms, 240);
        SearchResult { hit, highlight, vector_score, fulltext_score, rerank_score: None }
    };
    let fuse = match fusion {
        Fusion::Rrf => lore_core::fusion::fuse,
        Fusion::Weighted => lore_core::fusion::fuse_scores,
    };
    let mut results: Vec<SearchResult> = match mode {
        SearchMode::Vector => {
            vector_hits.into_iter().take(wanted as usize).map(|h| with_highlight(h, None, None)).collect()
        }
        SearchMode::Fulltext => {
            fulltext_hits.into_iter().take(wanted as usize).map(|h| with_highlight(h, None, None)).collect()
        }
        SearchMode::Hybrid => {
            fuse(vec![(weights.vector, vector_hits), (weights.fulltext, fulltext_hits)], wanted as usize)
                .into_iter()
                .map(|f| {
                    let hit = ChunkHit { score: f.score, ..f.hit };
                    with_highlight(hit, f.scores[0], f.scores[1])
                })
                .collect()
        }
    };
    let mut warning = warning;
    if let Some(config) = &rerank
        && !results.is_empty()
    {
        let (reranked, failed) =
            super::rerank::rerank(state, principal.owner_id(), config, &query, results, top_k).await?;
        results = reranked;
        warning = warning.or(failed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    crate::metrics::search(mode.as_str(), elapsed);
    Ok(SearchResponse {
        query,
        mode: mode.as_str(),
        results,
        took_ms: elapsed * 1000.0,
        embedding_model: embedded_space,
        warning,
    })
}

/// Embeds the query in the knowledge bases' shared embedding space.
pub(crate) async fn query_embedding(
    state: &AppState, kbs: &[KnowledgeBase], query: &str,
) -> Result<(String, Vec<f32>), Error> {
    let off =
        || Error::new(Code::EmbeddingNotConfigured, "embeddings are turned off on this server; use mode 'fulltext'");
    let [first, rest @ ..] = kbs else {
        return Err(Error::new(Code::EmbeddingNotConfigured, "no knowledge base to search"));
    };
    let embedder = crate::embedding::search_embedder(state, first).await?.ok_or_else(off)?;
    for kb in rest {
        let space = crate::embedding::search_space(state, kb).await?.ok_or_else(off)?;
        if space != embedder.space() {
            return Err(Error::new(
                Code::ValidationFailed,
                format!(
                    "these knowledge bases use different embedding models ({}, {space}); search them separately \
                     or pass knowledge_base_ids of one model",
                    embedder.space()
                ),
            ));
        }
    }
    let started = std::time::Instant::now();
    let mut vectors =
        embedder.embed(&[query.to_string()], lore_embed::InputKind::Query).await.map_err(crate::embedding::to_error)?;
    crate::metrics::embedding_duration(embedder.space(), started.elapsed().as_secs_f64());
    let vector = vectors.pop().ok_or_else(|| Error::internal("the embedder returned no vector"))?;
    Ok((embedder.space().to_string(), vector))
}
