//! The providers' own wire protocols, streamed: OpenAI-compatible `/chat/completions`, Anthropic
//! `/v1/messages` and Cohere `/v2/chat`. Requests are retried with exponential backoff on 429, 5xx
//! and connection failures until the first byte; a 4xx is reported at once with the provider's
//! message. The wait for an answer to start, and between two of its pieces, is bounded.

use std::time::Duration;

use async_trait::async_trait;
use lore_core::outbound::{self, Attempt, Retry};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::sse::{SseEvent, SseReader};
use crate::{ChatConfig, ChatEvent, ChatModel, ChatRequest, EventStream, LlmError, Role, Usage, estimate_tokens};

/// A `Retry-After` beyond this is not waited for: someone is waiting for the answer.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(20);
const DEFAULT_MAX_TOKENS: u32 = 1024;
/// What is read of a provider's answer, whatever it sends: an agent's base URL is a tenant's to
/// choose, and its server must not make Lore hold an endless answer. An error's body (only its
/// message is shown); a whole answer; one server-sent event; the text of one streamed answer.
const MAX_ERROR_BYTES: usize = 64 * 1024;
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
const MAX_EVENT_BYTES: usize = 1024 * 1024;
const MAX_ANSWER_CHARS: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    OpenAi,
    Anthropic,
    Cohere,
}

#[derive(Clone)]
pub struct HttpChatModel {
    protocol: Protocol,
    provider: String,
    model: String,
    url: String,
    api_key: Option<String>,
    timeout: Duration,
    retry: Retry,
    http: reqwest::Client,
}

/// Where a provider answers when no `base_url` is configured.
pub fn default_base(provider: &str) -> &'static str {
    match provider {
        "deepseek" => "https://api.deepseek.com/v1",
        "qwen" => "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "vllm" => "http://127.0.0.1:8000/v1",
        "ollama" => "http://127.0.0.1:11434/v1",
        "llamacpp" => "http://127.0.0.1:8080/v1",
        "anthropic" => "https://api.anthropic.com",
        "cohere" => "https://api.cohere.com",
        _ => "https://api.openai.com/v1",
    }
}

impl HttpChatModel {
    pub fn new(config: &ChatConfig) -> Result<Self, LlmError> {
        let protocol = match crate::protocol_of(&config.provider) {
            Some("openai") => Protocol::OpenAi,
            Some("anthropic") => Protocol::Anthropic,
            Some("cohere") => Protocol::Cohere,
            _ => {
                return Err(LlmError::InvalidConfig(format!(
                    "unknown model provider '{}'; expected one of {}",
                    config.provider,
                    crate::PROVIDERS.join(", ")
                )));
            }
        };
        if config.model.trim().is_empty() {
            return Err(LlmError::InvalidConfig(format!("provider '{}' needs a model name", config.provider)));
        }
        let base = config.base_url.as_deref().unwrap_or(default_base(&config.provider)).trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LlmError::InvalidConfig(format!("base_url must be an http(s) URL, not '{base}'")));
        }
        let path = match protocol {
            Protocol::OpenAi => "/chat/completions",
            Protocol::Anthropic => "/v1/messages",
            Protocol::Cohere => "/v2/chat",
        };
        config.outbound.check_url(base).map_err(|e| LlmError::Refused(e.message))?;
        let http = config
            .outbound
            .client_builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::InvalidConfig(format!("cannot build an HTTP client: {e}")))?;
        Ok(HttpChatModel {
            protocol,
            provider: config.provider.clone(),
            model: config.model.clone(),
            url: format!("{base}{path}"),
            api_key: config.api_key.clone().filter(|k| !k.is_empty()),
            timeout: config.timeout,
            retry: Retry { attempts: config.max_attempts.max(1), backoff: config.backoff, max_wait: MAX_RETRY_WAIT },
            http,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut body = match self.protocol {
            Protocol::OpenAi => json!({
                "model": self.model,
                "messages": request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "stream": true,
                "stream_options": {"include_usage": true},
            }),
            Protocol::Anthropic => {
                let system: Vec<&str> =
                    request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
                // Anthropic wants strictly alternating turns: merge neighbours of one role.
                let mut turns: Vec<(Role, String)> = Vec::new();
                for m in request.messages.iter().filter(|m| m.role != Role::System) {
                    match turns.last_mut() {
                        Some((role, text)) if *role == m.role => {
                            text.push_str("\n\n");
                            text.push_str(&m.content);
                        }
                        _ => turns.push((m.role, m.content.clone())),
                    }
                }
                let mut body = json!({
                    "model": self.model,
                    "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                    "messages": turns.iter().map(|(r, c)| json!({"role": r.as_str(), "content": c})).collect::<Vec<_>>(),
                    "stream": true,
                });
                if !system.is_empty() {
                    body["system"] = json!(system.join("\n\n"));
                }
                body
            }
            Protocol::Cohere => json!({
                "model": self.model,
                "messages": request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "stream": true,
            }),
        };
        if let Some(n) = request.max_tokens
            && self.protocol != Protocol::Anthropic
        {
            body["max_tokens"] = json!(n);
        }
        if request.json_output && self.protocol != Protocol::Anthropic {
            body["response_format"] = json!({"type": "json_object"});
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = request.top_p {
            body[if self.protocol == Protocol::Cohere { "p" } else { "top_p" }] = json!(p);
        }
        body
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self.http.post(&self.url).json(body).header(reqwest::header::ACCEPT, "text/event-stream");
        match (self.protocol, &self.api_key) {
            (Protocol::Anthropic, key) => {
                request = request.header("anthropic-version", "2023-06-01");
                if let Some(key) = key {
                    request = request.header("x-api-key", key);
                }
            }
            (_, Some(key)) => request = request.bearer_auth(key),
            (_, None) => {}
        }
        request
    }

    /// Sends the request, retrying what may pass on a second try, until the answer starts.
    async fn send(&self, body: &Value) -> Result<reqwest::Response, LlmError> {
        let answer = self
            .retry
            .run(|_| async move {
                let response = match tokio::time::timeout(self.timeout, self.request(body).send()).await {
                    Err(_) => {
                        let waited = format!("{} did not answer within {:.0?}", self.provider, self.timeout);
                        return Attempt::Done(Err(LlmError::Timeout(waited)));
                    }
                    Ok(Err(e)) => {
                        let why = format!("cannot reach {}: {}", self.url, without_url(&e));
                        return Attempt::Again { why, retry_after: None };
                    }
                    Ok(Ok(response)) if response.status().is_success() => return Attempt::Done(Ok(response)),
                    Ok(Ok(response)) => response,
                };
                let status = response.status();
                let retry_after = outbound::retry_after(response.headers());
                let body = tokio::time::timeout(self.timeout, outbound::read_body(response, MAX_ERROR_BYTES)).await;
                let text = match body {
                    Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    _ => String::new(),
                };
                let message = provider_message(&text);
                match outbound::worth_retrying(status) {
                    true => Attempt::Again { why: format!("HTTP {}: {message}", status.as_u16()), retry_after },
                    false => Attempt::Done(Err(LlmError::Rejected(format!(
                        "{} rejected the request (HTTP {}): {message}",
                        self.provider,
                        status.as_u16()
                    )))),
                }
            })
            .await;
        answer.unwrap_or_else(|gave_up| {
            Err(LlmError::Unavailable(format!(
                "{} failed after {} attempts: {}",
                self.provider, gave_up.attempts, gave_up.last
            )))
        })
    }

    /// What one server-sent event means in this protocol.
    fn steps(&self, event: &SseEvent) -> Result<Vec<Step>, LlmError> {
        if self.protocol == Protocol::OpenAi && event.data.trim() == "[DONE]" {
            return Ok(vec![Step::End]);
        }
        if event.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            LlmError::BadResponse(format!("{} sent a stream event that is not JSON: {e}", self.provider))
        })?;
        let mut steps = Vec::new();
        match self.protocol {
            Protocol::OpenAi => {
                if !data["error"].is_null() {
                    steps.push(Step::Fail(provider_message(&event.data)));
                }
                let choice = &data["choices"][0];
                if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                    steps.push(Step::Text(text.to_string()));
                }
                if let Some(reason) = choice["finish_reason"].as_str() {
                    steps.push(Step::Finish(reason.to_string()));
                }
                if data["usage"].is_object() {
                    steps.push(Step::Usage(
                        data["usage"]["prompt_tokens"].as_u64(),
                        data["usage"]["completion_tokens"].as_u64(),
                    ));
                }
            }
            Protocol::Anthropic => match data["type"].as_str().unwrap_or_default() {
                "message_start" => {
                    let usage = &data["message"]["usage"];
                    steps.push(Step::Usage(usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()));
                }
                "content_block_delta" => {
                    if let Some(text) = data["delta"]["text"].as_str() {
                        steps.push(Step::Text(text.to_string()));
                    }
                }
                "message_delta" => {
                    if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                        steps.push(Step::Finish(reason.to_string()));
                    }
                    let usage = &data["usage"];
                    steps.push(Step::Usage(usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()));
                }
                "message_stop" => steps.push(Step::End),
                "error" => steps.push(Step::Fail(provider_message(&event.data))),
                _ => {}
            },
            Protocol::Cohere => match data["type"].as_str().unwrap_or_default() {
                "content-delta" => {
                    if let Some(text) = data["delta"]["message"]["content"]["text"].as_str() {
                        steps.push(Step::Text(text.to_string()));
                    }
                }
                "message-end" => {
                    let delta = &data["delta"];
                    if let Some(reason) = delta["finish_reason"].as_str() {
                        steps.push(Step::Finish(reason.to_string()));
                    }
                    let usage = &delta["usage"];
                    let tokens = if usage["tokens"].is_object() { &usage["tokens"] } else { &usage["billed_units"] };
                    steps.push(Step::Usage(tokens["input_tokens"].as_u64(), tokens["output_tokens"].as_u64()));
                    steps.push(Step::End);
                }
                "error" => steps.push(Step::Fail(provider_message(&event.data))),
                _ => {}
            },
        }
        Ok(steps)
    }

    /// A whole (non-streamed) answer, from a server that ignored `stream: true`.
    fn whole(&self, body: &str) -> Result<Whole, LlmError> {
        let data: Value = serde_json::from_str(body).map_err(|e| {
            LlmError::BadResponse(format!("{} answered something that is not JSON: {e}", self.provider))
        })?;
        let texts = |parts: &Value| -> String {
            parts.as_array().into_iter().flatten().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("")
        };
        let answer = match self.protocol {
            Protocol::OpenAi => (
                data["choices"][0]["message"]["content"].as_str().map(str::to_string),
                data["usage"]["prompt_tokens"].as_u64(),
                data["usage"]["completion_tokens"].as_u64(),
                data["choices"][0]["finish_reason"].as_str(),
            ),
            Protocol::Anthropic => (
                data["content"].is_array().then(|| texts(&data["content"])),
                data["usage"]["input_tokens"].as_u64(),
                data["usage"]["output_tokens"].as_u64(),
                data["stop_reason"].as_str(),
            ),
            Protocol::Cohere => (
                data["message"]["content"].is_array().then(|| texts(&data["message"]["content"])),
                data["usage"]["tokens"]["input_tokens"].as_u64(),
                data["usage"]["tokens"]["output_tokens"].as_u64(),
                data["finish_reason"].as_str(),
            ),
        };
        let text = answer.0.ok_or_else(|| LlmError::BadResponse(format!("{} answered with no text", self.provider)))?;
        Ok(Whole { text, prompt: answer.1, completion: answer.2, finish_reason: answer.3.map(str::to_string) })
    }
}

/// A non-streamed answer: its text, token counts and why it stopped.
struct Whole {
    text: String,
    prompt: Option<u64>,
    completion: Option<u64>,
    finish_reason: Option<String>,
}

enum Step {
    Text(String),
    /// Prompt and completion tokens, as far as this event tells.
    Usage(Option<u64>, Option<u64>),
    Finish(String),
    End,
    Fail(String),
}

/// An error's description without the request URL (which may carry a key as a query parameter).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the provider");
    }
    text
}

/// The provider's own error message, when its body carries one.
fn provider_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v["error"]["message"].as_str().or(v["message"].as_str()).or(v["error"].as_str()).map(str::to_string)
    });
    // Shortened: a hostile or broken endpoint's body is not relayed at length.
    message.unwrap_or_else(|| body.to_string()).chars().take(300).collect()
}

#[async_trait]
impl ChatModel for HttpChatModel {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn stream(&self, request: ChatRequest) -> Result<EventStream, LlmError> {
        let mut response = self.send(&self.body(&request)).await?;
        let prompt_estimate: u64 = request.messages.iter().map(|m| estimate_tokens(&m.content) + 4).sum();
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let (tx, rx) = mpsc::channel(64);
        if is_json {
            let body = match tokio::time::timeout(self.timeout, outbound::read_body(response, MAX_ANSWER_BYTES)).await {
                Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(Err(why)) => return Err(LlmError::BadResponse(format!("{}: {why}", self.provider))),
                Err(_) => return Err(LlmError::Timeout(format!("{} stopped answering", self.provider))),
            };
            let Whole { text, prompt, completion, finish_reason } = self.whole(&body)?;
            let usage = usage_of(prompt, completion, prompt_estimate, &text);
            let _ = tx.send(Ok(ChatEvent::Delta(text))).await;
            let _ = tx.send(Ok(ChatEvent::Done { usage, finish_reason })).await;
            return Ok(rx);
        }

        let model = self.clone();
        tokio::spawn(async move {
            let mut reader = SseReader::default();
            let mut text = String::new();
            let (mut prompt, mut completion, mut finish_reason) = (None, None, None);
            let mut ended = false;
            let fail = |e: LlmError| Err(e);
            'read: loop {
                let chunk = match tokio::time::timeout(model.timeout, response.chunk()).await {
                    Err(_) => {
                        let _ = tx
                            .send(fail(LlmError::Timeout(format!(
                                "{} stopped answering for {:.0?} mid-stream",
                                model.provider, model.timeout
                            ))))
                            .await;
                        return;
                    }
                    Ok(Err(e)) => {
                        let _ = tx
                            .send(fail(LlmError::Unavailable(format!(
                                "{}'s stream broke: {}",
                                model.provider,
                                without_url(&e)
                            ))))
                            .await;
                        return;
                    }
                    Ok(Ok(chunk)) => chunk,
                };
                let closed = chunk.is_none();
                match chunk {
                    Some(bytes) => reader.push(&bytes),
                    None => reader.push(b"\n\n"),
                }
                while let Some(event) = reader.next_event() {
                    let steps = match model.steps(&event) {
                        Ok(steps) => steps,
                        Err(e) => {
                            let _ = tx.send(fail(e)).await;
                            return;
                        }
                    };
                    for step in steps {
                        match step {
                            Step::Text(piece) => {
                                if text.len() + piece.len() > MAX_ANSWER_CHARS {
                                    let why = format!("{}'s answer passed {MAX_ANSWER_CHARS} bytes", model.provider);
                                    let _ = tx.send(fail(LlmError::BadResponse(why))).await;
                                    return;
                                }
                                text.push_str(&piece);
                                if tx.send(Ok(ChatEvent::Delta(piece))).await.is_err() {
                                    return; // the caller went away: drop the connection
                                }
                            }
                            Step::Usage(p, c) => {
                                prompt = p.or(prompt);
                                completion = c.or(completion);
                            }
                            Step::Finish(reason) => finish_reason = Some(reason),
                            Step::Fail(message) => {
                                let _ = tx
                                    .send(fail(LlmError::Unavailable(format!(
                                        "{} failed mid-answer: {message}",
                                        model.provider
                                    ))))
                                    .await;
                                return;
                            }
                            Step::End => {
                                ended = true;
                                break 'read;
                            }
                        }
                    }
                }
                // What is left is an event not yet ended: one that never ends must not grow.
                if reader.pending() > MAX_EVENT_BYTES {
                    let why = format!("{} sent an event larger than {MAX_EVENT_BYTES} bytes", model.provider);
                    let _ = tx.send(fail(LlmError::BadResponse(why))).await;
                    return;
                }
                if closed {
                    break;
                }
            }
            if !ended {
                let _ = tx
                    .send(fail(LlmError::BadResponse(format!(
                        "{}'s stream ended before the answer was complete",
                        model.provider
                    ))))
                    .await;
                return;
            }
            let usage = usage_of(prompt, completion, prompt_estimate, &text);
            let _ = tx.send(Ok(ChatEvent::Done { usage, finish_reason })).await;
        });
        Ok(rx)
    }
}

fn usage_of(prompt: Option<u64>, completion: Option<u64>, prompt_estimate: u64, text: &str) -> Usage {
    Usage {
        prompt_tokens: prompt.unwrap_or(prompt_estimate),
        completion_tokens: completion.unwrap_or_else(|| estimate_tokens(text)),
        estimated: prompt.is_none() || completion.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn model(provider: &str) -> HttpChatModel {
        let mut config = ChatConfig::new(provider, "m");
        config.base_url = Some("http://127.0.0.1:9/".into());
        config.outbound.allow_private = true;
        HttpChatModel::new(&config).expect("valid config")
    }

    #[test]
    fn anthropic_gets_system_apart_and_alternating_turns() {
        let request = ChatRequest {
            messages: vec![
                Message::new(Role::System, "be brief"),
                Message::new(Role::User, "a"),
                Message::new(Role::User, "b"),
                Message::new(Role::Assistant, "c"),
            ],
            ..Default::default()
        };
        let body = model("anthropic").body(&request);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["messages"][0]["content"], "a\n\nb");
        assert_eq!(body["messages"][1]["role"], "assistant");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(model("anthropic").url, "http://127.0.0.1:9/v1/messages");
        assert_eq!(model("ollama").url, "http://127.0.0.1:9/chat/completions");
        assert_eq!(model("cohere").url, "http://127.0.0.1:9/v2/chat");
    }

    #[test]
    fn refuses_unknown_providers_and_bad_urls() {
        assert!(matches!(HttpChatModel::new(&ChatConfig::new("gemini", "m")), Err(LlmError::InvalidConfig(_))));
        assert!(matches!(HttpChatModel::new(&ChatConfig::new("openai", " ")), Err(LlmError::InvalidConfig(_))));
        let mut config = ChatConfig::new("openai", "m");
        config.base_url = Some("file:///etc".into());
        assert!(matches!(HttpChatModel::new(&config), Err(LlmError::InvalidConfig(_))));
    }

    #[test]
    fn private_addresses_are_refused_unless_the_operator_allows_them() {
        // llamacpp's default address is 127.0.0.1:8080, which is Lore's own port by default.
        for (provider, base) in [
            ("llamacpp", None),
            ("openai", Some("http://169.254.169.254/v1")),
            ("vllm", Some("http://10.0.0.2:8000/v1")),
        ] {
            let mut config = ChatConfig::new(provider, "m");
            config.base_url = base.map(str::to_string);
            assert!(matches!(HttpChatModel::new(&config), Err(LlmError::Refused(_))), "{provider} {base:?}");
            config.outbound.allowed =
                lore_core::outbound::Policy::parse_allowed("127.0.0.0/8,10.0.0.0/8,169.254.0.0/16").expect("cidrs");
            assert!(HttpChatModel::new(&config).is_ok(), "{provider} allowed");
        }
    }
}
