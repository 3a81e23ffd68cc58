//! Summaries of each chunk (`settings.summary_config`): the knowledge base owner's chat model
//! reads a few chunks at a time, with the document's title and each chunk's section, and says in
//! a sentence or two what each is about within its document ([`crate::enrich`] runs the calls).
//! A summary is kept in the chunk's `metadata.summary`, where a person can edit it, and embedded
//! as its summary vector. Without a model, the summary is extractive
//! ([`lore_ingest::summary::extractive`]).

use lore_core::model::{Id, LogEntry, NewChunk, SummaryConfig};
use lore_llm::{ChatRequest, Message, Role};
use serde_json::Value;

use crate::error::ApiResult;
use crate::state::AppState;

/// A summary longer than this is cut: it says what a chunk is about, not all it says.
const MAX_SUMMARY_CHARS: usize = 600;

const INSTRUCTIONS: &str = "You summarise passages of a document for a search index. For each numbered \
passage, write one or two sentences saying what the passage is about within its document: name the \
document's subject and the passage's section where they help, name things instead of saying \"it\" or \
\"this\", and keep to what the passage itself says. Write in the passage's own language (Chinese passages \
get Chinese summaries). Reply with one JSON object and nothing else: {\"summaries\": {\"1\": \"...\", \
\"2\": \"...\"}}, keyed by passage number.";

/// Checks the setting when it is saved.
pub fn check(config: &SummaryConfig) -> ApiResult<()> {
    crate::enrich::check_model("summary_config", &config.provider, &config.model)
}

/// The summary a model (or a person) wrote for a chunk, when it has one.
pub fn of(metadata: &Value) -> Option<&str> {
    metadata.get("summary")?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// A chunk's section path (`metadata.section_path`), outermost heading first.
pub fn section_path(metadata: &Value) -> Vec<String> {
    let path = metadata.get("section_path").and_then(Value::as_array);
    path.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// Writes a summary for the searchable chunks that are not Q&A entries, into their metadata; the
/// embedding step that follows embeds it.
pub async fn generate(
    state: &AppState, owner: Id, config: &SummaryConfig, title: Option<&str>, chunks: &mut [NewChunk],
    log: &mut Vec<LogEntry>,
) {
    crate::enrich::run(state, owner, (&config.provider, &config.model), &Summaries, title, chunks, log).await;
}

struct Summaries;

impl crate::enrich::Step for Summaries {
    const NAME: &'static str = "summaries";

    fn request(&self, title: Option<&str>, chunks: &[&NewChunk]) -> ChatRequest {
        let prompt = crate::enrich::passages(title, "", chunks, |chunk| {
            let path = section_path(&chunk.metadata);
            (!path.is_empty()).then(|| format!("Section: {}", path.join(" › ")))
        });
        ChatRequest {
            messages: vec![Message::new(Role::System, INSTRUCTIONS), Message::new(Role::User, prompt)],
            // About 80 tokens a summary, and room for the JSON around them.
            max_tokens: Some((chunks.len() as u32 * 80 + 100).min(8_000)),
            temperature: Some(0.2),
            top_p: None,
            json_output: true,
        }
    }

    fn parse(&self, reply: &str, passages: usize) -> Option<Vec<Option<Value>>> {
        let answer = lore_llm::json_object(reply)?;
        let all: Vec<Option<Value>> = (1..=passages)
            .map(|n| {
                let summary = crate::enrich::numbered(&answer, "summaries", n)?.as_str()?.trim();
                let summary: String = summary.chars().take(MAX_SUMMARY_CHARS).collect();
                (!summary.is_empty()).then_some(Value::String(summary))
            })
            .collect();
        all.iter().any(Option::is_some).then_some(all)
    }

    fn apply(&self, chunk: &mut NewChunk, value: Value) -> usize {
        chunk.metadata["summary"] = value;
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Step;
    use serde_json::json;

    #[test]
    fn summaries_are_read_by_passage_number_and_cut() {
        let long = "长".repeat(MAX_SUMMARY_CHARS + 10);
        let reply = format!(r#"Here: {{"summaries": {{"1": " 净水器滤芯的更换周期。 ", "2": "", "3": "{long}"}}}}"#);
        let got = Summaries.parse(&reply, 3).expect("parsed");
        assert_eq!(got[0], Some(json!("净水器滤芯的更换周期。")));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_ref().and_then(Value::as_str).map(|s| s.chars().count()), Some(MAX_SUMMARY_CHARS));
        assert!(Summaries.parse(r#"{"summaries": ["Resetting the router."]}"#, 1).is_some());
        assert!(Summaries.parse("no", 1).is_none() && Summaries.parse(r#"{"summaries": {}}"#, 1).is_none());
    }

    #[test]
    fn a_prompt_names_the_document_and_each_section() {
        let mut zh = crate::enrich::chunk_of("滤芯每六个月更换一次。");
        zh.metadata = json!({"section_path": ["净水器", "保养"]});
        let en = crate::enrich::chunk_of("Hold the pin button for ten seconds.");
        let request = Summaries.request(Some("家电手册"), &[&zh, &en]);
        let prompt = &request.messages[1].content;
        assert!(prompt.starts_with("Document: 家电手册"), "{prompt}");
        assert!(prompt.contains("[1]\nSection: 净水器 › 保养\n滤芯") && prompt.contains("[2]\nHold"), "{prompt}");
        assert!(request.json_output && request.messages[0].content.contains("summaries"));
        assert_eq!(of(&json!({"summary": " x "})), Some("x"));
        assert_eq!(of(&json!({"summary": ""})), None);
    }
}
