//! Evaluations of a knowledge base's retrieval, as RAGFlow and Dify users tune theirs: golden
//! questions (each with the documents or chunks that answer it, or the answer's text) are searched
//! under each configuration named (mode, fusion, weights, target, rerank), and hit@k, MRR,
//! nDCG@10 and latency are kept per configuration, with each question's rank, so that runs can
//! be compared side by side.
//!
//! A run is accepted at once (202, `running`) and searched in the background, one search at a
//! time, under a budget of questions × configurations. The owner's chat model can draft the
//! golden questions for a person to review.

use std::time::Instant;

use lore_core::error::{Code, Error};
use lore_core::model::{Evaluation, Id, Scope, SearchTarget};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::service::{HybridWeights, RerankRequest, SearchQuery, SearchRequest, not_found, owned_kb};
use crate::state::AppState;

pub const MAX_QUESTIONS: usize = 500;
pub const MAX_CONFIGURATIONS: usize = 8;
/// Searches one run may make: questions × configurations.
pub const MAX_SEARCHES: usize = 1_000;
/// Runs of one knowledge base searching at once.
const MAX_RUNNING: usize = 2;

/// `POST /v1/knowledge-bases/{id}/evaluations`. Every field has a default, so that another
/// owner's knowledge base answers 404 whatever the body; what is missing is refused after.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationRequest {
    pub name: Option<String>,
    pub questions: Vec<GoldenQuestion>,
    /// The configurations compared; none: the knowledge base's own search settings.
    pub configurations: Vec<EvaluationConfig>,
    /// The depth of hit@k and MRR (default 10).
    pub k: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GoldenQuestion {
    pub question: String,
    /// A result from one of these documents answers the question.
    pub expected_document_ids: Vec<Id>,
    /// One of these chunks answers the question.
    pub expected_chunk_ids: Vec<Id>,
    /// A result whose text contains this answers the question (case and spacing aside).
    pub expected_answer: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    pub label: String,
    pub mode: Option<String>,
    pub fusion: Option<String>,
    pub weights: Option<HybridWeights>,
    pub search_target: Option<SearchTarget>,
    pub similarity_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<RerankRequest>,
}

impl EvaluationConfig {
    /// The search this configuration makes of `text`: read as a search request is, so that it
    /// is checked the same way.
    fn query(&self, text: &str, k: u32) -> Result<SearchQuery, Error> {
        let request = SearchRequest {
            query: text.to_string(),
            mode: self.mode.clone(),
            top_k: Some(k),
            similarity_threshold: self.similarity_threshold,
            filters: Default::default(),
            search_target: self.search_target,
            weights: self.weights,
            fusion: self.fusion.clone(),
            knowledge_base_ids: None,
            rerank: self.rerank.clone(),
        };
        Ok(request.into_query()?.0)
    }
}

fn invalid(message: impl Into<String>) -> crate::error::ApiError {
    error(Code::ValidationFailed, message)
}

pub async fn create(
    state: &AppState, principal: &Principal, kb_id: Id, req: EvaluationRequest,
) -> ApiResult<Evaluation> {
    principal.require(Scope::Search)?;
    let kb = owned_kb(state, principal, kb_id).await?;
    if req.questions.is_empty() || req.questions.len() > MAX_QUESTIONS {
        return Err(invalid(format!("questions must hold 1 to {MAX_QUESTIONS} golden questions")));
    }
    for (i, q) in req.questions.iter().enumerate() {
        let chars = q.question.trim().chars().count();
        if chars == 0 || chars > crate::service::MAX_QUERY_CHARS {
            return Err(invalid(format!(
                "question {} must have 1 to {} characters",
                i + 1,
                crate::service::MAX_QUERY_CHARS
            )));
        }
        let answer = q.expected_answer.as_deref().map(str::trim).filter(|a| !a.is_empty());
        if q.expected_document_ids.is_empty() && q.expected_chunk_ids.is_empty() && answer.is_none() {
            return Err(invalid(format!(
                "question {} needs expected_document_ids, expected_chunk_ids or expected_answer",
                i + 1
            )));
        }
        if q.expected_document_ids.len() + q.expected_chunk_ids.len() > 100 || answer.is_some_and(|a| a.len() > 10_000)
        {
            return Err(invalid(format!("question {} expects too much", i + 1)));
        }
    }
    let mut configurations = req.configurations;
    if configurations.is_empty() {
        configurations.push(EvaluationConfig { label: "knowledge base settings".into(), ..Default::default() });
    }
    if configurations.len() > MAX_CONFIGURATIONS {
        return Err(invalid(format!("at most {MAX_CONFIGURATIONS} configurations")));
    }
    if req.questions.len() * configurations.len() > MAX_SEARCHES {
        return Err(invalid(format!("questions × configurations must be at most {MAX_SEARCHES}")));
    }
    let k = req.k.unwrap_or(10);
    if !(1..=crate::service::MAX_TOP_K).contains(&k) {
        return Err(invalid(format!("k must be 1 to {}", crate::service::MAX_TOP_K)));
    }
    for (i, c) in configurations.iter().enumerate() {
        if c.label.trim().is_empty() || c.label.len() > 100 {
            return Err(invalid(format!("configuration {} needs a label of at most 100 characters", i + 1)));
        }
        if configurations[..i].iter().any(|o| o.label == c.label) {
            return Err(invalid(format!("two configurations are labelled '{}'", c.label)));
        }
        c.query("check", k)?;
    }
    // Runs search in the background: a knowledge base has at most two at a time, so that no
    // tenant fills the server with them. (A run left `running` by a stopped server stops
    // counting after an hour.)
    let recent = lore_core::now() - chrono::Duration::hours(1);
    let running = state
        .store
        .list_evaluations(principal.owner_id(), kb.id)
        .await?
        .iter()
        .filter(|e| e.status == "running" && e.created_at > recent)
        .count();
    if running >= MAX_RUNNING {
        return Err(error(
            Code::RateLimited,
            format!("{running} evaluations of this knowledge base are running; wait for one to finish"),
        )
        .retry_after(10));
    }
    let name = req.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| "evaluation".into());
    if name.chars().count() > 200 {
        return Err(invalid("name must have at most 200 characters"));
    }
    let evaluation = Evaluation {
        id: lore_core::new_id(),
        user_id: principal.owner_id(),
        knowledge_base_id: kb.id,
        name,
        status: "running".into(),
        request: json!({"questions": req.questions, "configurations": configurations, "k": k}),
        results: json!({}),
        error_message: None,
        created_at: lore_core::now(),
        completed_at: None,
    };
    state.store.insert_evaluation(&evaluation).await?;
    let (state2, principal2, mut run) = (state.clone(), principal.clone(), evaluation.clone());
    tokio::spawn(async move {
        let questions = req.questions;
        match evaluate(&state2, &principal2, kb, &questions, &configurations, k).await {
            Ok(results) => {
                run.status = "completed".into();
                run.results = results;
            }
            Err(e) => {
                run.status = "failed".into();
                run.error_message = Some(format!("{}: {}", e.code.as_str(), e.message));
            }
        }
        run.completed_at = Some(lore_core::now());
        if let Err(e) = state2.store.finish_evaluation(&run).await {
            tracing::error!(evaluation = %run.id, error = %e, "an evaluation's results could not be stored");
        }
    });
    Ok(evaluation)
}

/// Whether a result answers a golden question.
fn answers(q: &GoldenQuestion, document: Id, chunk: Id, content: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>().to_lowercase();
    q.expected_document_ids.contains(&document)
        || q.expected_chunk_ids.contains(&chunk)
        || q.expected_answer.as_deref().map(squeeze).is_some_and(|a| !a.is_empty() && squeeze(content).contains(&a))
}

/// Binary-relevance nDCG@10 of a ranking's relevance flags, against `ideal` relevant results.
fn ndcg10(relevant: &[bool], ideal: usize) -> f64 {
    let gain = |i: usize| 1.0 / (i as f64 + 2.0).log2();
    let dcg: f64 = relevant.iter().take(10).enumerate().filter(|(_, r)| **r).map(|(i, _)| gain(i)).sum();
    let idcg: f64 = (0..ideal.clamp(1, 10)).map(gain).sum();
    dcg / idcg
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

async fn evaluate(
    state: &AppState, principal: &Principal, kb: lore_core::model::KnowledgeBase, questions: &[GoldenQuestion],
    configurations: &[EvaluationConfig], k: u32,
) -> Result<Value, Error> {
    let mut out = Vec::new();
    for config in configurations {
        let (mut hits, mut reciprocal, mut ndcg, mut latencies, mut ranks) = (0, 0.0, 0.0, Vec::new(), Vec::new());
        // nDCG looks ten deep whatever k is.
        let depth = k.max(10);
        for q in questions {
            let started = Instant::now();
            let found =
                crate::service::run_search(state, principal, vec![kb.clone()], config.query(&q.question, depth)?)
                    .await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            // A document or chunk counts once, at its best rank.
            let mut seen = std::collections::HashSet::new();
            let relevant: Vec<bool> = found
                .results
                .iter()
                .map(|r| {
                    let hit = answers(q, r.hit.document_id, r.hit.chunk_id, &r.hit.content);
                    let key = if q.expected_chunk_ids.is_empty() { r.hit.document_id } else { r.hit.chunk_id };
                    hit && seen.insert(key)
                })
                .collect();
            let rank = relevant.iter().take(k as usize).position(|r| *r).map(|p| p + 1);
            if let Some(rank) = rank {
                hits += 1;
                reciprocal += 1.0 / rank as f64;
            }
            let ideal = match q.expected_document_ids.len() + q.expected_chunk_ids.len() {
                0 => 1,
                n => n,
            };
            ndcg += ndcg10(&relevant, ideal);
            ranks.push(json!({"question": q.question, "rank": rank, "warning": found.warning}));
        }
        latencies.sort_by(f64::total_cmp);
        let n = questions.len().max(1) as f64;
        out.push(json!({
            "label": config.label,
            "hit_at_k": hits as f64 / n,
            "mrr": reciprocal / n,
            "ndcg_at_10": ndcg / n,
            "latency_ms_p50": percentile(&latencies, 0.5),
            "latency_ms_p95": percentile(&latencies, 0.95),
            "questions": ranks,
        }));
    }
    Ok(json!({"k": k, "configurations": out}))
}

/// `POST /v1/knowledge-bases/{id}/evaluations/draft`: the owner's chat model drafts golden
/// questions from chunks spread over the knowledge base, one a chunk, each expecting its chunk.
/// Nothing is stored: a person reviews the draft and runs it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DraftRequest {
    pub provider: String,
    pub model: String,
    /// Questions to draft, 1 to 50 (default 10).
    pub count: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Draft {
    pub questions: Vec<GoldenQuestion>,
    /// What drafting took: calls, tokens and cost, or why some chunks have no question.
    pub log: String,
}

pub async fn draft(state: &AppState, principal: &Principal, kb_id: Id, req: DraftRequest) -> ApiResult<Draft> {
    principal.require_session()?;
    let kb = owned_kb(state, principal, kb_id).await?;
    let count = req.count.unwrap_or(10);
    if !(1..=50).contains(&count) {
        return Err(invalid("count must be 1 to 50"));
    }
    let generation =
        lore_core::model::QuestionGeneration { provider: req.provider, model: req.model, questions_per_chunk: 1 };
    crate::questions::check(&generation)?;
    // Candidates from the first documents, enough to spread the questions over, never the whole
    // knowledge base in memory.
    let listing = lore_core::model::DocumentListQuery {
        status: Some(lore_core::model::DocStatus::Completed),
        include_deleted: false,
        limit: 20,
        offset: 0,
    };
    let mut candidates = Vec::new();
    for document in state.store.list_documents(principal.owner_id(), kb.id, &listing).await? {
        let chunks = state.store.list_chunks(principal.owner_id(), document.id).await?;
        candidates.extend(
            chunks
                .into_iter()
                .filter(|c| c.enabled && c.metadata.get("qa").is_none() && c.content.chars().count() >= 20)
                .map(|c| (document.id, c)),
        );
        if candidates.len() >= count as usize * 5 {
            break;
        }
    }
    if candidates.is_empty() {
        return Err(invalid("this knowledge base has no processed text to draft questions from"));
    }
    // Spread evenly over what was found.
    let step = (candidates.len() as f64 / f64::from(count)).max(1.0);
    let picked: Vec<&(Id, lore_core::model::Chunk)> =
        (0..count as usize).map(|i| (i as f64 * step) as usize).filter_map(|i| candidates.get(i)).collect();
    let mut chunks: Vec<lore_core::model::NewChunk> = picked
        .iter()
        .map(|(_, c)| crate::enrich::plain_chunk(c.content.clone(), c.content_hash.clone(), c.chunk_index))
        .collect();
    let mut log = Vec::new();
    crate::questions::generate(state, principal.owner_id(), &generation, None, &mut chunks, &mut log).await;
    let questions = picked
        .iter()
        .zip(&chunks)
        .filter_map(|((document, chunk), drafted)| {
            let question = drafted.metadata["questions"][0].as_str()?.to_string();
            Some(GoldenQuestion {
                question,
                expected_document_ids: vec![*document],
                expected_chunk_ids: vec![chunk.id],
                expected_answer: None,
            })
        })
        .collect();
    Ok(Draft { questions, log: log.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ") })
}

pub async fn list(state: &AppState, principal: &Principal, kb_id: Id) -> ApiResult<Vec<Evaluation>> {
    principal.require(Scope::Read)?;
    owned_kb(state, principal, kb_id).await?;
    Ok(state.store.list_evaluations(principal.owner_id(), kb_id).await?)
}

pub async fn get(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Evaluation> {
    principal.require(Scope::Read)?;
    let evaluation =
        state.store.get_evaluation(principal.owner_id(), id).await?.ok_or_else(|| not_found("evaluation"))?;
    // A key bound to another knowledge base does not see this one's runs.
    if principal.require_knowledge_base(evaluation.knowledge_base_id).is_err() {
        return Err(not_found("evaluation"));
    }
    Ok(evaluation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevance_and_ndcg_follow_the_definitions() {
        let (doc, chunk) = (lore_core::new_id(), lore_core::new_id());
        let q = GoldenQuestion { expected_answer: Some("三十 天".into()), ..Default::default() };
        assert!(answers(&q, doc, chunk, "退款在三十天内受理"), "spacing aside");
        assert!(!answers(&q, doc, chunk, "七天"));
        let by_doc = GoldenQuestion { expected_document_ids: vec![doc], ..Default::default() };
        assert!(answers(&by_doc, doc, lore_core::new_id(), ""));
        assert!((ndcg10(&[true], 1) - 1.0).abs() < 1e-9);
        assert!((ndcg10(&[false, true], 1) - 1.0 / 3f64.log2()).abs() < 1e-9);
        assert_eq!(ndcg10(&[false; 12], 2), 0.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
    }
}
