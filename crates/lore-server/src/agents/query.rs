//! What an agent searches for, before it retrieves. Set in `model_parameters`:
//! - `rewrite_follow_ups`: `true` (the default) searches a follow-up with the subject of the
//!   questions it leans on, by rule (crate::followup); `"model"` has the agent's chat model rewrite
//!   each question of a multi-turn conversation into one that stands alone, falling back to the
//!   rules without a model or when the model fails; `false` searches the question as asked.
//! - `multi_query: N` (1 to 5) adds N paraphrases written by the chat model;
//! - `hyde: true` adds a passage the chat model writes as if it answered the question
//!   (hypothetical document embeddings).
//!
//! Every query is searched and the lists are fused by reciprocal rank. Each model step keeps its
//! prompt, output, tokens and cost in the turn's usage record, and counts in the turn's tokens
//! and cost. The answer is still written to the question as asked.

use std::collections::HashMap;

use lore_core::agent::Agent;
use lore_core::model::ChunkHit;
use lore_llm::{ChatModel, ChatRequest, Message, Role, Usage};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::state::AppState;

pub const MAX_PARAPHRASES: u64 = 5;
/// Of each earlier message, at most this many characters go into a rewrite prompt.
const HISTORY_CHARS: usize = 500;
/// The earlier messages a rewrite sees.
const HISTORY_MESSAGES: usize = 6;

const REWRITE: &str = "Rewrite the user's last question so that it can be understood without the conversation: \
replace words like \"it\", \"that\", 它 and 这款 with what they refer to, and restore what was left out. Keep the \
question's language and meaning. Reply with the rewritten question alone.";
const PARAPHRASE: &str = "Write different phrasings of the user's question for searching a knowledge base: other \
words, the same meaning, in the question's language. One per line, without numbering or anything else.";
const HYPOTHETICAL: &str = "Write a short passage, under 120 words, that answers the user's question as a document \
in a knowledge base might, in the question's language. Reply with the passage alone.";

/// One step of query understanding by the chat model, as the usage record keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub prompt: String,
    pub output: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The queries a turn searches (the first stands for the question), and what finding them took.
#[derive(Debug, Clone, Default)]
pub struct Queries {
    pub searched: Vec<String>,
    pub steps: Vec<Step>,
    pub usage: Usage,
    pub cost: Decimal,
}

impl Queries {
    /// Whether understanding `question` calls the chat model (and so should wait for the call to be
    /// counted against the agent's limits first).
    pub fn need_model(agent: &Agent, model: Option<&dyn ChatModel>, history: &[Message]) -> bool {
        let params = &agent.model_parameters;
        model.is_some()
            && ((params["rewrite_follow_ups"] == "model" && !history.is_empty())
                || params["multi_query"].as_u64().is_some_and(|n| n > 0)
                || params["hyde"] == true)
    }

    /// For the usage record.
    pub fn record(&self) -> Value {
        serde_json::json!({"searched": self.searched, "steps": self.steps})
    }
}

pub async fn understand(
    state: &AppState, agent: &Agent, model: Option<&dyn ChatModel>, price: Option<lore_llm::Price>, question: &str,
    history: &[Message],
) -> Queries {
    let params = &agent.model_parameters;
    let mut queries = Queries::default();
    let rules = || crate::followup::search_query(question, history);
    let main = match (&params["rewrite_follow_ups"], model) {
        (Value::Bool(false), _) => None,
        (Value::String(how), Some(model)) if how == "model" && !history.is_empty() => {
            let prompt = format!("{}\n\nLast question: {question}", transcript(history));
            let rewritten = ask(state, &mut queries, model, price, "rewrite", REWRITE, prompt, 200).await;
            match rewritten.as_deref().and_then(|r| r.lines().map(str::trim).find(|l| !l.is_empty())) {
                Some(line) => Some(line.to_string()),
                None => rules(),
            }
        }
        _ => rules(),
    };
    queries.searched.push(cut(main.as_deref().unwrap_or(question)));
    let standalone = queries.searched[0].clone();
    let Some(model) = model else { return queries };
    let paraphrases = params["multi_query"].as_u64().unwrap_or(0).min(MAX_PARAPHRASES) as usize;
    if paraphrases > 0 {
        let prompt = format!("Phrasings wanted: {paraphrases}\nQuestion: {standalone}");
        let tokens = 60 * paraphrases as u32 + 40;
        if let Some(reply) = ask(state, &mut queries, model, price, "multi_query", PARAPHRASE, prompt, tokens).await {
            let lines = reply.lines().map(|l| l.trim().trim_start_matches(['-', '*', '•', ' ']).trim());
            for line in lines.filter(|l| !l.is_empty()).take(paraphrases) {
                let line = cut(line.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')').trim());
                if !line.is_empty() && !queries.searched.contains(&line) {
                    queries.searched.push(line);
                }
            }
        }
    }
    if params["hyde"] == true {
        let prompt = format!("Question: {standalone}");
        if let Some(passage) = ask(state, &mut queries, model, price, "hyde", HYPOTHETICAL, prompt, 300).await {
            let passage = cut(passage.trim());
            if !passage.is_empty() {
                queries.searched.push(passage);
            }
        }
    }
    queries
}

/// Fuses the hits of each query by reciprocal rank (k = 60), keeping each chunk's best hit.
pub fn fuse(lists: Vec<Vec<ChunkHit>>, top_k: usize) -> Vec<ChunkHit> {
    if lists.len() == 1 {
        return lists.into_iter().flatten().take(top_k).collect();
    }
    let mut fused: HashMap<lore_core::model::Id, (f64, ChunkHit)> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.into_iter().enumerate() {
            let share = 1.0 / (60.0 + rank as f64 + 1.0);
            fused
                .entry(hit.chunk_id)
                .and_modify(|(score, best)| {
                    *score += share;
                    if hit.score > best.score {
                        *best = hit.clone();
                    }
                })
                .or_insert((share, hit));
        }
    }
    let mut hits: Vec<(f64, ChunkHit)> = fused.into_values().collect();
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.score.total_cmp(&a.1.score)));
    hits.into_iter().take(top_k).map(|(_, hit)| hit).collect()
}

/// The conversation so far, as a rewrite prompt shows it: the last messages, each cut.
fn transcript(history: &[Message]) -> String {
    let start = history.len().saturating_sub(HISTORY_MESSAGES);
    let lines: Vec<String> = history[start..]
        .iter()
        .map(|m| {
            let who = if m.role == Role::User { "User" } else { "Assistant" };
            format!("{who}: {}", m.content.chars().take(HISTORY_CHARS).collect::<String>())
        })
        .collect();
    format!("Conversation:\n{}", lines.join("\n"))
}

fn cut(text: &str) -> String {
    text.chars().take(crate::service::MAX_QUERY_CHARS).collect()
}

/// One model step: its answer, or `None` (the step is recorded with its error either way).
#[allow(clippy::too_many_arguments)]
async fn ask(
    state: &AppState, queries: &mut Queries, model: &dyn ChatModel, price: Option<lore_llm::Price>, step: &'static str,
    instructions: &str, prompt: String, max_tokens: u32,
) -> Option<String> {
    let request = ChatRequest {
        messages: vec![Message::new(Role::System, instructions), Message::new(Role::User, prompt.clone())],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        top_p: None,
        json_output: false,
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), lore_llm::complete(model, request)).await;
    let (output, usage, error) = match answer {
        Ok(Ok(done)) => (Some(done.text.trim().to_string()), done.usage, None),
        Ok(Err(e)) => (None, Usage::default(), Some(e.to_string())),
        Err(_) => (None, Usage::default(), Some("the model took longer than 30 s".to_string())),
    };
    let outcome = if error.is_none() { "ok" } else { "error" };
    crate::metrics::llm_call(model.provider(), outcome, usage.prompt_tokens, usage.completion_tokens);
    let cost = match price {
        Some(price) => price.cost(&usage),
        None => state.config.prices.cost(model.model(), &usage),
    };
    queries.usage.prompt_tokens += usage.prompt_tokens;
    queries.usage.completion_tokens += usage.completion_tokens;
    queries.usage.estimated |= usage.estimated;
    queries.cost += cost;
    queries.steps.push(Step {
        step,
        prompt: format!("{instructions}\n\n{prompt}"),
        output: output.clone().unwrap_or_default(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost: cost.normalize().to_string(),
        error,
    });
    output.filter(|o| !o.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u128, score: f64) -> ChunkHit {
        ChunkHit {
            chunk_id: uuid::Uuid::from_u128(id),
            document_id: uuid::Uuid::from_u128(1000 + id),
            knowledge_base_id: uuid::Uuid::nil(),
            filename: "f.md".into(),
            title: None,
            content: format!("chunk {id}"),
            score,
            chunk_index: 0,
            metadata: Value::Null,
            parent: None,
        }
    }

    #[test]
    fn lists_fuse_by_rank_and_agreement_wins() {
        // Chunk 2 is second in both lists; chunks 1 and 3 are first in one list each and absent
        // from the other.
        let fused = fuse(vec![vec![hit(1, 0.9), hit(2, 0.8)], vec![hit(3, 0.7), hit(2, 0.6)]], 3);
        let ids: Vec<u128> = fused.iter().map(|h| h.chunk_id.as_u128()).collect();
        assert_eq!(ids[0], 2, "{ids:?}");
        assert_eq!(fused[0].score, 0.8, "the best hit of a chunk is kept");
        assert_eq!(fuse(vec![vec![hit(1, 0.9), hit(2, 0.8)]], 1).len(), 1);
    }

    #[test]
    fn a_rewrite_prompt_shows_the_last_messages_cut() {
        let long = "长".repeat(HISTORY_CHARS + 10);
        let mut history: Vec<Message> = (0..8).map(|i| Message::new(Role::User, format!("q{i}"))).collect();
        history.push(Message::new(Role::Assistant, long));
        let text = transcript(&history);
        assert!(!text.contains("q0") && !text.contains("q2") && text.contains("q3"), "{text}");
        assert_eq!(text.matches('长').count(), HISTORY_CHARS);
        assert!(text.contains("Assistant: 长"));
    }
}
