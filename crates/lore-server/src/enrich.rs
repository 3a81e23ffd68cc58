//! Chunks enriched by the knowledge base owner's chat model, a few chunks a call: the questions
//! each answers (`settings.question_generation`, [`crate::questions`]) and what each is about
//! (`settings.summary_config`, [`crate::summaries`]). What a model writes lands in the chunk's
//! metadata, where a person can edit it, and the embedding step that follows embeds it.
//!
//! A failed call costs its chunks what it would have written, never the document: the processing
//! log says which, with the tokens and cost of every call.

use lore_core::model::{Id, LogEntry, NewChunk};
use lore_llm::{ChatRequest, Usage};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiResult, error};
use crate::state::AppState;

/// Chunks sent in one request: few enough that the answer stays short and a failure costs little.
const CHUNKS_PER_CALL: usize = 8;
/// Of each chunk, at most this many characters go into the prompt.
pub(crate) const PROMPT_CHARS_PER_CHUNK: usize = 3_000;
/// The longest one document may spend on one step: a slow provider (which the tenant chooses)
/// must not hold a shared worker for hours. Chunks not reached go without.
const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(600);

/// One kind of text a chat model writes for chunks.
pub(crate) trait Step {
    /// The processing log's stage, and what the log counts ("questions", "summaries").
    const NAME: &'static str;
    /// The request for a batch of chunks, numbered from 1 in the prompt.
    fn request(&self, title: Option<&str>, chunks: &[&NewChunk]) -> ChatRequest;
    /// What each of `passages` chunks got, in order (`None` for one the answer skips); `None`
    /// when the answer is not the JSON asked for.
    fn parse(&self, reply: &str, passages: usize) -> Option<Vec<Option<Value>>>;
    /// Stores one chunk's share in it; how many items that is (questions, or one summary).
    fn apply(&self, chunk: &mut NewChunk, value: Value) -> usize;
}

/// Checks a setting's chat model when it is saved (`setting` names it in the message), so that a
/// typo fails there and not on every later upload.
pub(crate) fn check_model(setting: &str, provider: &str, model: &str) -> ApiResult<()> {
    let invalid = |message: String| error(lore_core::error::Code::ValidationFailed, message);
    if lore_llm::protocol_of(provider).is_none() {
        return Err(invalid(format!(
            "{setting}.provider '{provider}' is not a chat provider; expected one of {}",
            lore_llm::PROVIDERS[1..].join(", ")
        )));
    }
    if model.trim().is_empty() || model.len() > 200 {
        return Err(invalid(format!("{setting}.model must be named")));
    }
    Ok(())
}

/// Runs `step` over the searchable chunks that are not Q&A entries, with `provider`/`model`
/// called with the owner's key, and logs what it wrote and cost.
pub(crate) async fn run<S: Step>(
    state: &AppState, owner: Id, (provider, model): (&str, &str), step: &S, title: Option<&str>,
    chunks: &mut [NewChunk], log: &mut Vec<LogEntry>,
) {
    let started = std::time::Instant::now();
    let params = json!({"timeout_seconds": 60});
    let chat = match crate::agents::provider_model(state, owner, provider, model, &params).await {
        Ok(chat) => chat,
        Err(e) => {
            log.push(LogEntry::new(S::NAME, format!("no {} generated: {}", S::NAME, e.error.message)));
            return;
        }
    };
    let wanted: Vec<usize> =
        (0..chunks.len()).filter(|&i| chunks[i].searchable && chunks[i].embed_text.is_none()).collect();
    let mut usage = Usage::default();
    let (mut calls, mut written, mut answered, mut failed) = (0, 0, 0, Vec::new());
    let deadline = tokio::time::Instant::now() + TIME_BUDGET;
    let mut stopped = None;
    for batch in wanted.chunks(CHUNKS_PER_CALL) {
        let range = format!("chunks {}-{}", batch[0], batch[batch.len() - 1]);
        let request = step.request(title, &batch.iter().map(|&i| &chunks[i]).collect::<Vec<_>>());
        let call = tokio::time::timeout_at(deadline, lore_llm::complete(chat.as_ref(), request));
        let Ok(reply) = call.await else {
            stopped = Some(format!(
                "; stopped at chunk {} after {} s, the most one document may spend on {}",
                batch[0],
                TIME_BUDGET.as_secs(),
                S::NAME
            ));
            break;
        };
        calls += 1;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                crate::metrics::llm_call(provider, "error", 0, 0);
                failed.push(format!("{range}: {e}"));
                continue;
            }
        };
        crate::metrics::llm_call(provider, "ok", reply.usage.prompt_tokens, reply.usage.completion_tokens);
        usage.prompt_tokens += reply.usage.prompt_tokens;
        usage.completion_tokens += reply.usage.completion_tokens;
        usage.estimated |= reply.usage.estimated;
        let Some(per_chunk) = step.parse(&reply.text, batch.len()) else {
            failed.push(format!("{range}: the model's answer is not the JSON asked for"));
            continue;
        };
        for (&i, value) in batch.iter().zip(per_chunk) {
            let Some(value) = value else { continue };
            let chunk = &mut chunks[i];
            if !chunk.metadata.is_object() {
                chunk.metadata = json!({});
            }
            let n = step.apply(chunk, value);
            written += n;
            answered += usize::from(n > 0);
        }
    }
    let cost: Decimal = state.config.prices.cost(model, &usage);
    let mut message = format!(
        "{written} {} for {answered} of {} chunks by {provider}/{model} in {calls} calls, {:.0} ms: {} prompt + {} completion tokens{}, cost {cost}",
        S::NAME,
        wanted.len(),
        started.elapsed().as_secs_f64() * 1000.0,
        usage.prompt_tokens,
        usage.completion_tokens,
        if usage.estimated { " (estimated)" } else { "" },
    );
    if !failed.is_empty() {
        message.push_str(&format!("; {} calls failed ({})", failed.len(), failed.join("; ")));
    }
    message.push_str(stopped.as_deref().unwrap_or_default());
    log.push(LogEntry::new(S::NAME, message));
}

/// The prompt's numbered passages, each cut to [`PROMPT_CHARS_PER_CHUNK`], after the document's
/// title; `describe` adds a line of context to a passage (its section, say).
pub(crate) fn passages(
    title: Option<&str>, header: &str, chunks: &[&NewChunk], describe: impl Fn(&NewChunk) -> Option<String>,
) -> String {
    let mut prompt = String::new();
    if let Some(title) = title.map(str::trim).filter(|t| !t.is_empty()) {
        prompt.push_str(&format!("Document: {title}\n\n"));
    }
    prompt.push_str(header);
    for (n, chunk) in chunks.iter().enumerate() {
        let cut: String = chunk.content.chars().take(PROMPT_CHARS_PER_CHUNK).collect();
        let context = describe(chunk).map(|c| format!("{c}\n")).unwrap_or_default();
        prompt.push_str(&format!("\n[{}]\n{context}{}\n", n + 1, cut.trim()));
    }
    prompt
}

/// The model's answer for passage `n` (from 1) under `key`: `{"key": {"1": ...}}`, `{"1": ...}`
/// or `{"key": [...]}`.
pub(crate) fn numbered<'a>(answer: &'a Value, key: &str, n: usize) -> Option<&'a Value> {
    match answer.get(key).unwrap_or(answer) {
        Value::Object(map) => map.get(&n.to_string()).or_else(|| map.get(&format!("[{n}]"))),
        Value::Array(list) => list.get(n - 1),
        _ => None,
    }
}

/// A searchable chunk with nothing derived yet (metadata, terms, embeddings): what a step reads.
pub(crate) fn plain_chunk(content: String, content_hash: String, chunk_index: i64) -> NewChunk {
    NewChunk {
        content,
        content_hash,
        chunk_index,
        metadata: json!({}),
        fts_terms: String::new(),
        parent_index: None,
        searchable: true,
        embedding: None,
        summary_embedding: None,
        embed_text: None,
    }
}

/// A plain chunk of `content`, as tests build them.
#[cfg(test)]
pub(crate) fn chunk_of(content: &str) -> NewChunk {
    plain_chunk(content.to_string(), lore_ingest::sha256_hex(content.as_bytes()), 0)
}
