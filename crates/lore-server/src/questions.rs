//! Questions generated for each chunk (`settings.question_generation`), as RAGFlow and FastGPT
//! offer: the knowledge base owner's chat model reads a few chunks at a time and writes the
//! questions each one answers. They are kept in the chunk's `metadata.questions` (where a person
//! can edit them), indexed with its words for full text, and embedded as its summary vector, so
//! that a question phrased the way users ask finds the chunk that answers it.
//!
//! A failed call costs its chunks their questions, never the document: the processing log says
//! which, with the tokens and cost of every call.

use lore_core::model::{Id, LogEntry, NewChunk, QuestionGeneration};
use lore_ingest::segment;
use lore_llm::{ChatRequest, Message, Role, Usage};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiResult, error};
use crate::state::AppState;

/// Chunks sent in one request: few enough that the answer stays short and a failure costs little.
const CHUNKS_PER_CALL: usize = 8;
/// Of each chunk, at most this many characters go into the prompt.
const PROMPT_CHARS_PER_CHUNK: usize = 3_000;
/// A question longer than this is cut: it is a search target, not an essay.
const MAX_QUESTION_CHARS: usize = 300;
/// The longest one document may spend on its questions: a slow provider (which the tenant
/// chooses) must not hold a shared worker for hours. Chunks not reached go without.
const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(600);

const INSTRUCTIONS: &str = "You write the questions that passages of a document answer, for a search index. \
For each numbered passage, write up to N distinct questions that a reader might ask and that the passage \
answers on its own. Write them in the passage's own language (Chinese passages get Chinese questions), \
name the subject instead of saying \"it\" or \"this\", and keep each under 30 words. Reply with one JSON \
object and nothing else: {\"questions\": {\"1\": [\"...\"], \"2\": [\"...\"]}}, keyed by passage number.";

/// Checks a knowledge base's setting when it is saved, so that a typo fails there and not on
/// every later upload.
pub fn check(config: &QuestionGeneration) -> ApiResult<()> {
    if lore_llm::protocol_of(&config.provider).is_none() {
        return Err(error(
            lore_core::error::Code::ValidationFailed,
            format!(
                "question_generation.provider '{}' is not a chat provider; expected one of {}",
                config.provider,
                lore_llm::PROVIDERS[1..].join(", ")
            ),
        ));
    }
    if config.model.trim().is_empty() || config.model.len() > 200 {
        return Err(error(lore_core::error::Code::ValidationFailed, "question_generation.model must be named"));
    }
    if !(1..=QuestionGeneration::MAX_PER_CHUNK).contains(&config.questions_per_chunk) {
        return Err(error(
            lore_core::error::Code::ValidationFailed,
            format!("question_generation.questions_per_chunk must be 1 to {}", QuestionGeneration::MAX_PER_CHUNK),
        ));
    }
    Ok(())
}

/// The questions generated for a chunk (`metadata.questions`), one a line, when it has any.
pub fn of(metadata: &Value) -> Option<String> {
    let questions: Vec<&str> = metadata.get("questions")?.as_array()?.iter().filter_map(Value::as_str).collect();
    (!questions.is_empty()).then(|| questions.join("\n"))
}

/// A chunk's full-text terms with those of its questions after them.
pub fn with_terms(terms: String, metadata: &Value) -> String {
    match of(metadata) {
        Some(questions) => format!("{terms} {}", segment::terms(&questions).join(" ")),
        None => terms,
    }
}

/// Writes questions for the searchable chunks that are not Q&A entries already, into their
/// metadata and full-text terms; the embedding step that follows embeds them.
pub async fn generate(
    state: &AppState, owner: Id, config: &QuestionGeneration, title: Option<&str>, chunks: &mut [NewChunk],
    log: &mut Vec<LogEntry>,
) {
    let started = std::time::Instant::now();
    let params = json!({"timeout_seconds": 60});
    let model = match crate::agents::provider_model(state, owner, &config.provider, &config.model, &params).await {
        Ok(model) => model,
        Err(e) => {
            log.push(LogEntry::new("questions", format!("no questions generated: {}", e.error.message)));
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
        let passages: Vec<&str> = batch.iter().map(|&i| chunks[i].content.as_str()).collect();
        let request = request(config.questions_per_chunk, title, &passages);
        let call = tokio::time::timeout_at(deadline, lore_llm::complete(model.as_ref(), request));
        let Ok(reply) = call.await else {
            stopped = Some(format!(
                "; stopped at chunk {} after {} s, the most one document may spend on questions",
                batch[0],
                TIME_BUDGET.as_secs()
            ));
            break;
        };
        calls += 1;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                crate::metrics::llm_call(&config.provider, "error", 0, 0);
                failed.push(format!("chunks {}-{}: {e}", batch[0], batch[batch.len() - 1]));
                continue;
            }
        };
        crate::metrics::llm_call(&config.provider, "ok", reply.usage.prompt_tokens, reply.usage.completion_tokens);
        usage.prompt_tokens += reply.usage.prompt_tokens;
        usage.completion_tokens += reply.usage.completion_tokens;
        usage.estimated |= reply.usage.estimated;
        let Some(per_passage) = parse(&reply.text, batch.len(), config.questions_per_chunk as usize) else {
            failed.push(format!(
                "chunks {}-{}: the model's answer is not the JSON asked for",
                batch[0],
                batch[batch.len() - 1]
            ));
            continue;
        };
        for (&i, questions) in batch.iter().zip(per_passage) {
            if questions.is_empty() {
                continue;
            }
            let chunk = &mut chunks[i];
            written += questions.len();
            answered += 1;
            if !chunk.metadata.is_object() {
                chunk.metadata = json!({});
            }
            chunk.metadata["questions"] = json!(questions);
            chunk.fts_terms = with_terms(std::mem::take(&mut chunk.fts_terms), &chunk.metadata);
        }
    }
    let cost: Decimal = state.config.prices.cost(&config.model, &usage);
    let mut message = format!(
        "{written} questions for {answered} of {} chunks by {}/{} in {calls} calls, {:.0} ms: {} prompt + {} completion tokens{}, cost {cost}",
        wanted.len(),
        config.provider,
        config.model,
        started.elapsed().as_secs_f64() * 1000.0,
        usage.prompt_tokens,
        usage.completion_tokens,
        if usage.estimated { " (estimated)" } else { "" },
    );
    if !failed.is_empty() {
        message.push_str(&format!("; {} calls failed ({})", failed.len(), failed.join("; ")));
    }
    message.push_str(stopped.as_deref().unwrap_or_default());
    log.push(LogEntry::new("questions", message));
}

fn request(per_chunk: u32, title: Option<&str>, passages: &[&str]) -> ChatRequest {
    let mut prompt = String::new();
    if let Some(title) = title.map(str::trim).filter(|t| !t.is_empty()) {
        prompt.push_str(&format!("Document: {title}\n\n"));
    }
    prompt.push_str(&format!("N = {per_chunk}\n"));
    for (n, passage) in passages.iter().enumerate() {
        let cut: String = passage.chars().take(PROMPT_CHARS_PER_CHUNK).collect();
        prompt.push_str(&format!("\n[{}]\n{}\n", n + 1, cut.trim()));
    }
    ChatRequest {
        messages: vec![Message::new(Role::System, INSTRUCTIONS), Message::new(Role::User, prompt)],
        // About 60 tokens a question, and room for the JSON around them.
        max_tokens: Some((per_chunk * passages.len() as u32 * 60 + 100).min(8_000)),
        temperature: Some(0.2),
        top_p: None,
        json_output: true,
    }
}

/// The questions of each of `passages` passages, in order, from the model's answer; `None` when
/// the answer is not the JSON asked for. Blank, repeated and surplus questions are dropped.
fn parse(reply: &str, passages: usize, per_chunk: usize) -> Option<Vec<Vec<String>>> {
    let answer = lore_llm::json_object(reply)?;
    let by_number = answer.get("questions").unwrap_or(&answer);
    let listed = |n: usize| -> Vec<String> {
        let value = match by_number {
            Value::Object(map) => map.get(&n.to_string()).or_else(|| map.get(&format!("[{n}]"))),
            Value::Array(list) => list.get(n - 1),
            _ => None,
        };
        let mut questions: Vec<String> = Vec::new();
        for q in value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            let q: String = q.trim().chars().take(MAX_QUESTION_CHARS).collect();
            if !q.is_empty() && !questions.contains(&q) && questions.len() < per_chunk {
                questions.push(q);
            }
        }
        questions
    };
    let all: Vec<Vec<String>> = (1..=passages).map(listed).collect();
    all.iter().any(|q| !q.is_empty()).then_some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_passage_number_in_either_shape() {
        let reply = r#"Sure: {"questions": {"1": ["智能音箱支持哪些语言？", " ", "智能音箱支持哪些语言？"], "2": ["How long does the watch battery last?", "Is the watch waterproof?", "third", "fourth"]}}"#;
        let got = parse(reply, 2, 3).expect("parsed");
        assert_eq!(got[0], vec!["智能音箱支持哪些语言？"]);
        assert_eq!(got[1], vec!["How long does the watch battery last?", "Is the watch waterproof?", "third"]);
        let listed = parse(r#"{"questions": [["a?"], [], ["c?"]]}"#, 3, 2).expect("a list works too");
        assert_eq!(listed, vec![vec!["a?".to_string()], vec![], vec!["c?".to_string()]]);
        assert!(parse("I cannot help with that.", 1, 3).is_none());
        assert!(parse(r#"{"questions": {}}"#, 1, 3).is_none());
    }

    #[test]
    fn questions_join_the_chunk_terms_and_summary_text() {
        let metadata = json!({"questions": ["保修期多长？", "What is the warranty?"]});
        assert_eq!(of(&metadata).as_deref(), Some("保修期多长？\nWhat is the warranty?"));
        let terms = with_terms("content".into(), &metadata);
        assert!(terms.starts_with("content ") && terms.contains("warranti"), "{terms}");
        assert!(terms.contains("保修"), "{terms}");
        assert_eq!(of(&json!({"questions": []})), None);
        assert_eq!(with_terms("x".into(), &json!({})), "x");
    }

    #[test]
    fn a_prompt_carries_the_title_the_count_and_each_passage_cut() {
        let long = "长".repeat(PROMPT_CHARS_PER_CHUNK + 50);
        let request = request(2, Some("产品手册"), &["first passage", &long]);
        let prompt = &request.messages[1].content;
        assert!(prompt.starts_with("Document: 产品手册") && prompt.contains("N = 2"), "{prompt}");
        assert!(prompt.contains("[1]\nfirst passage") && prompt.contains("[2]\n"));
        assert_eq!(prompt.matches('长').count(), PROMPT_CHARS_PER_CHUNK);
        assert!(request.json_output);
    }
}
