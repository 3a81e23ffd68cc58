//! Which model answers: an agent's provider and fallbacks.

use lore_core::agent::Agent;
use lore_core::error::Error;
use lore_core::model::{Id, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::service::not_found;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub question: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteCandidate {
    pub agent_id: Id,
    pub name: String,
    pub score: f64,
    pub matched: Vec<String>,
    /// Cosine similarity of the question and the agent's profile, when embeddings are on.
    pub similarity: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteAnswer {
    pub agent: Value,
    pub score: f64,
    pub reason: String,
    pub candidates: Vec<RouteCandidate>,
}

/// `POST /v1/agents/route`: the caller's active agent best suited to a question: its domain
/// keywords and expertise areas found in the question, plus the question's similarity to the
/// agent's profile (name, description, keywords, areas) in the user's embedding model.
pub async fn route(state: &AppState, principal: &Principal, req: RouteRequest) -> ApiResult<RouteAnswer> {
    principal.require(Scope::Search)?;
    let question = check_message(&req.question)?;
    let agents: Vec<Agent> = state
        .store
        .list_agents(principal.owner_id())
        .await?
        .into_iter()
        .filter(|a| a.is_active && agent_within_binding(principal, a))
        .collect();
    if agents.is_empty() {
        return Err(not_found("active agent"));
    }
    let lower = question.to_lowercase();
    let profiles: Vec<String> = agents
        .iter()
        .map(|a| {
            let mut parts = vec![a.name.clone()];
            parts.extend(a.description.clone());
            parts.extend(a.domain_keywords.iter().cloned());
            parts.extend(a.expertise_areas.iter().cloned());
            parts.join("; ")
        })
        .collect();
    let similarities = profile_similarities(state, principal.owner_id(), &question, &profiles).await;
    let mut candidates: Vec<RouteCandidate> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut matched = Vec::new();
            let mut score = 0.0;
            for (terms, weight) in [(&a.domain_keywords, 1.0), (&a.expertise_areas, 0.75)] {
                for term in terms.iter() {
                    if lower.contains(&term.to_lowercase()) {
                        matched.push(term.clone());
                        score += weight;
                    }
                }
            }
            let similarity = similarities.as_ref().map(|s| s[i]);
            score += similarity.unwrap_or(0.0);
            RouteCandidate { agent_id: a.id, name: a.name.clone(), score, matched, similarity }
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let best = &candidates[0];
    let agent =
        agents.iter().find(|a| a.id == best.agent_id).ok_or_else(|| Error::internal("routed agent vanished"))?;
    let mut reasons = Vec::new();
    if !best.matched.is_empty() {
        reasons.push(format!("the question mentions {}", best.matched.join(", ")));
    }
    if let Some(s) = best.similarity {
        reasons.push(format!("its profile is the closest in meaning (similarity {s:.2})"));
    }
    if reasons.is_empty() {
        reasons.push("no agent's keywords appear in the question; this is the first active agent".into());
    }
    Ok(RouteAnswer {
        agent: view(state, agent),
        score: best.score,
        reason: format!("{}: {}", agent.name, reasons.join("; ")),
        candidates,
    })
}

/// Cosine similarities of a question to each profile, or `None` when embeddings are off or fail.
pub(crate) async fn profile_similarities(
    state: &AppState, user_id: Id, question: &str, profiles: &[String],
) -> Option<Vec<f64>> {
    let embedder = crate::embedding::embedder_of(state, user_id, None).await.ok().flatten()?;
    let query = embedder.embed(&[question.to_string()], lore_embed::InputKind::Query).await.ok()?.pop()?;
    let vectors = embedder.embed(profiles, lore_embed::InputKind::Passage).await.ok()?;
    Some(vectors.iter().map(|v| v.iter().zip(&query).map(|(a, b)| (*a as f64) * (*b as f64)).sum()).collect())
}
