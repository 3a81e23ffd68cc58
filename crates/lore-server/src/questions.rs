//! Questions generated for each chunk (`settings.question_generation`), as RAGFlow and FastGPT
//! offer: the knowledge base owner's chat model reads a few chunks at a time and writes the
//! questions each one answers ([`crate::enrich`] runs the calls). They are kept in the chunk's
//! `metadata.questions` (where a person can edit them), indexed with its words for full text, and
//! embedded with its summary vector, so that a question phrased the way users ask finds the chunk
//! that answers it.

use lore_core::model::{Id, LogEntry, NewChunk, QuestionGeneration};
use lore_ingest::segment;
use lore_llm::{ChatRequest, Message, Role};
use serde_json::{Value, json};

use crate::error::{ApiResult, error};
use crate::state::AppState;

/// A question longer than this is cut: it is a search target, not an essay.
const MAX_QUESTION_CHARS: usize = 300;

const INSTRUCTIONS: &str = "You write the questions that passages of a document answer, for a search index. \
For each numbered passage, write up to N distinct questions that a reader might ask and that the passage \
answers on its own. Write them in the passage's own language (Chinese passages get Chinese questions), \
name the subject instead of saying \"it\" or \"this\", and keep each under 30 words. Reply with one JSON \
object and nothing else: {\"questions\": {\"1\": [\"...\"], \"2\": [\"...\"]}}, keyed by passage number.";

/// Checks a knowledge base's setting when it is saved, so that a typo fails there and not on
/// every later upload.
pub fn check(config: &QuestionGeneration) -> ApiResult<()> {
    crate::enrich::check_model("question_generation", &config.provider, &config.model)?;
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
    let step = Questions { per_chunk: config.questions_per_chunk };
    crate::enrich::run(state, owner, (&config.provider, &config.model), &step, title, chunks, log).await;
}

struct Questions {
    per_chunk: u32,
}

impl crate::enrich::Step for Questions {
    const NAME: &'static str = "questions";

    fn request(&self, title: Option<&str>, chunks: &[&NewChunk]) -> ChatRequest {
        let prompt = crate::enrich::passages(title, &format!("N = {}\n", self.per_chunk), chunks, |_| None);
        ChatRequest {
            messages: vec![Message::new(Role::System, INSTRUCTIONS), Message::new(Role::User, prompt)],
            // About 60 tokens a question, and room for the JSON around them.
            max_tokens: Some((self.per_chunk * chunks.len() as u32 * 60 + 100).min(8_000)),
            temperature: Some(0.2),
            top_p: None,
            json_output: true,
        }
    }

    /// Blank, repeated and surplus questions are dropped.
    fn parse(&self, reply: &str, passages: usize) -> Option<Vec<Option<Value>>> {
        let answer = lore_llm::json_object(reply)?;
        let listed = |n: usize| -> Vec<String> {
            let mut questions: Vec<String> = Vec::new();
            let value = crate::enrich::numbered(&answer, "questions", n);
            for q in value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                let q: String = q.trim().chars().take(MAX_QUESTION_CHARS).collect();
                if !q.is_empty() && !questions.contains(&q) && questions.len() < self.per_chunk as usize {
                    questions.push(q);
                }
            }
            questions
        };
        let all: Vec<Vec<String>> = (1..=passages).map(listed).collect();
        let any = all.iter().any(|q| !q.is_empty());
        any.then(|| all.into_iter().map(|q| (!q.is_empty()).then(|| json!(q))).collect())
    }

    fn apply(&self, chunk: &mut NewChunk, value: Value) -> usize {
        let written = value.as_array().map_or(0, Vec::len);
        chunk.metadata["questions"] = value;
        chunk.fts_terms = with_terms(std::mem::take(&mut chunk.fts_terms), &chunk.metadata);
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(reply: &str, passages: usize, per_chunk: u32) -> Option<Vec<Vec<String>>> {
        let got = crate::enrich::Step::parse(&Questions { per_chunk }, reply, passages)?;
        Some(got.into_iter().map(|q| serde_json::from_value(q.unwrap_or(json!([]))).expect("strings")).collect())
    }

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
        let long = "长".repeat(crate::enrich::PROMPT_CHARS_PER_CHUNK + 50);
        let chunks = [crate::enrich::chunk_of("first passage"), crate::enrich::chunk_of(&long)];
        let request =
            crate::enrich::Step::request(&Questions { per_chunk: 2 }, Some("产品手册"), &[&chunks[0], &chunks[1]]);
        let prompt = &request.messages[1].content;
        assert!(prompt.starts_with("Document: 产品手册") && prompt.contains("N = 2"), "{prompt}");
        assert!(prompt.contains("[1]\nfirst passage") && prompt.contains("[2]\n"));
        assert_eq!(prompt.matches('长').count(), crate::enrich::PROMPT_CHARS_PER_CHUNK);
        assert!(request.json_output);
    }
}
