//! AI agents: their configuration, and the chat pipeline behind them: rate limit → retrieve
//! (hybrid, bounded by the agent's sources) → assemble a prompt that fits the context window →
//! answer (a provider, or the extractive answerer) → cite → persist and account.

mod chat;
mod config;
mod conversations;
mod prompt;
mod query;
mod routing;
mod usage;

pub use chat::*;
pub use config::*;
pub use conversations::*;
pub(crate) use prompt::*;
pub use routing::*;
pub use usage::*;

pub(crate) const DEFAULT_CONTEXT_WINDOW: i64 = 8192;
pub(crate) const DEFAULT_MAX_ANSWER_TOKENS: u32 = 1024;
pub(crate) const MAX_MESSAGE_CHARS: usize = 8000;
pub(crate) const SNIPPET_CHARS: usize = 240;
pub(crate) const PLACEHOLDERS: [&str; 3] = ["question", "context", "history"];
pub(crate) const PARAMETERS: [&str; 12] = [
    "temperature",
    "top_p",
    "max_tokens",
    "base_url",
    "timeout_seconds",
    "api_key",
    "price",
    "max_attempts",
    "rewrite_follow_ups",
    "multi_query",
    "hyde",
    "rerank",
];

#[cfg(test)]
mod tests {
    use lore_core::model::ChunkHit;
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_identifiers_in_braces() {
        assert_eq!(placeholders("{context}\n问题：{question} {\"json\": 1} {}"), ["context", "question"]);
        assert!(placeholders("no braces").is_empty());
    }

    #[test]
    fn citations_follow_the_markers_the_answer_uses() {
        let hit = |n: u8| ChunkHit {
            chunk_id: lore_core::new_id(),
            document_id: lore_core::new_id(),
            knowledge_base_id: lore_core::new_id(),
            filename: format!("{n}.md"),
            title: None,
            content: format!("passage {n}"),
            score: 1.0 / n as f64,
            chunk_index: 0,
            metadata: json!({}),
            parent: None,
        };
        let passages = [hit(1), hit(2), hit(3)];
        let cited = citations_of("A [2]. B [3, 2]. C [9]. 见[1，3]", &passages);
        assert_eq!(cited.iter().map(|c| c.index).collect::<Vec<_>>(), [1, 2, 3]);
        let cited = citations_of("Only [2].", &passages);
        assert_eq!(cited.iter().map(|c| c.index).collect::<Vec<_>>(), [2]);
        assert_eq!(cited[0].filename.as_deref(), Some("2.md"));
        assert_eq!(citations_of("no markers", &passages).len(), 3, "an answer without markers cites what it was given");
    }
}
