//! Chat models for Lore: one trait over the providers' own wire protocols (OpenAI-compatible Chat
//! Completions, Anthropic Messages, Cohere Chat v2), always streamed, with token usage as the
//! provider reports it, a price table for cost, and an extractive answerer for when no model is
//! configured at all.

pub mod extractive;
pub mod price;
mod providers;
mod sse;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use price::{Price, PriceTable};
pub use providers::{HttpChatModel, default_base};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    /// The configuration names no usable provider or model.
    #[error("{0}")]
    InvalidConfig(String),
    /// The provider could not be reached or kept failing (network, 429 or 5xx after retries).
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the request (4xx): a wrong key or model; retrying won't help.
    #[error("{0}")]
    Rejected(String),
    /// No answer, or no next piece of one, within the time allowed.
    #[error("{0}")]
    Timeout(String),
    /// The provider answered something that is not its protocol (a broken stream, bad JSON).
    #[error("{0}")]
    BadResponse(String),
    /// The outbound policy refuses the provider's address.
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: content.into() }
    }
}

/// One completion: the conversation so far (system messages first), and sampling settings.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Ask for a JSON object (OpenAI's and Cohere's `response_format`; others follow the prompt).
    pub json_output: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// True when the provider reported no usage and the counts are Lore's estimate.
    pub estimated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// A piece of the answer, in order.
    Delta(String),
    /// The answer is complete. Always the last event of a stream that did not fail.
    Done { usage: Usage, finish_reason: Option<String> },
}

/// The events of one streamed completion. Dropping it cancels the request.
pub type EventStream = mpsc::Receiver<Result<ChatEvent, LlmError>>;

#[async_trait]
pub trait ChatModel: Send + Sync {
    fn provider(&self) -> &str;
    fn model(&self) -> &str;
    /// Sends the request; retries happen before the first token, never after.
    async fn stream(&self, request: ChatRequest) -> Result<EventStream, LlmError>;
}

/// A whole answer, collected from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
}

pub async fn complete(model: &dyn ChatModel, request: ChatRequest) -> Result<Completion, LlmError> {
    let mut events = model.stream(request).await?;
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event? {
            ChatEvent::Delta(piece) => text.push_str(&piece),
            ChatEvent::Done { usage, finish_reason } => return Ok(Completion { text, usage, finish_reason }),
        }
    }
    Err(LlmError::BadResponse("the provider's stream ended before the answer was complete".into()))
}

/// Which provider and model to talk to, and how.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// `openai` (and the OpenAI-compatible `deepseek`, `qwen`, `vllm`, `ollama`, `llamacpp`),
    /// `anthropic` or `cohere`.
    pub provider: String,
    pub model: String,
    /// The provider's API root; each provider has a default.
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// Longest wait for the provider to start answering, and between two pieces of an answer.
    pub timeout: Duration,
    /// Attempts before the first token (429, 5xx, connection failures).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt.
    pub backoff: Duration,
    /// What addresses the provider may have (the server's outbound policy).
    pub outbound: lore_core::outbound::Policy,
}

impl ChatConfig {
    pub fn new(provider: &str, model: &str) -> Self {
        ChatConfig {
            provider: provider.to_string(),
            model: model.to_string(),
            base_url: None,
            api_key: None,
            timeout: Duration::from_secs(60),
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            outbound: lore_core::outbound::Policy::default(),
        }
    }
}

/// Providers Lore speaks; `extractive` needs no model at all.
pub const PROVIDERS: [&str; 9] =
    ["extractive", "openai", "anthropic", "cohere", "deepseek", "qwen", "vllm", "ollama", "llamacpp"];

/// Which wire protocol a provider name speaks, or `None` for names Lore does not know.
pub fn protocol_of(provider: &str) -> Option<&'static str> {
    match provider {
        "openai" | "deepseek" | "qwen" | "vllm" | "ollama" | "llamacpp" => Some("openai"),
        "anthropic" => Some("anthropic"),
        "cohere" => Some("cohere"),
        _ => None,
    }
}

/// The chat model of a configuration.
pub fn connect(config: &ChatConfig) -> Result<HttpChatModel, LlmError> {
    HttpChatModel::new(config)
}

/// A rough token count for budgeting prompts and for providers that report none.
/// The first JSON object in a model's reply (which may wrap it in prose or a code fence).
pub fn json_object(reply: &str) -> Option<serde_json::Value> {
    let start = reply.find('{')?;
    let end = reply.rfind('}')?;
    serde_json::from_str(reply.get(start..=end)?).ok()
}

pub fn estimate_tokens(text: &str) -> u64 {
    lore_core::tokens::estimate(text) as u64
}

pub use lore_core::tokens::is_cjk;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_which_protocol_a_provider_speaks() {
        assert_eq!(protocol_of("deepseek"), Some("openai"));
        assert_eq!(protocol_of("anthropic"), Some("anthropic"));
        assert_eq!(protocol_of("extractive"), None);
        assert_eq!(protocol_of("gemini"), None);
    }
}
