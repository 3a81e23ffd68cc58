//! AI agents: their configuration, and the chat pipeline behind them: rate limit → retrieve
//! (hybrid, bounded by the agent's sources) → assemble a prompt that fits the context window →
//! answer (a provider, or the extractive answerer) → cite → persist and account.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use lore_core::agent::{Agent, AgentUsage, ChatMessage, Citation, Conversation, ConversationMode};
use lore_core::error::{Code, Error};
use lore_core::model::{ChunkHit, Id, KnowledgeBase, Scope, SearchFilters, Timestamp};
use lore_llm::{ChatEvent, ChatModel, LlmError, Message, Role, Usage};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, error};
use crate::service::{SearchRequest, not_found};
use crate::state::AppState;

const DEFAULT_CONTEXT_WINDOW: i64 = 8192;
const DEFAULT_MAX_ANSWER_TOKENS: u32 = 1024;
const MAX_MESSAGE_CHARS: usize = 8000;
const SNIPPET_CHARS: usize = 240;
const PLACEHOLDERS: [&str; 3] = ["question", "context", "history"];
const PARAMETERS: [&str; 9] = [
    "temperature",
    "top_p",
    "max_tokens",
    "base_url",
    "timeout_seconds",
    "api_key",
    "price",
    "max_attempts",
    "rewrite_follow_ups",
];

// ------------------------------------------------------------------------------------ configuration

fn default_agent_type() -> String {
    "qa".into()
}
fn default_provider() -> String {
    "extractive".into()
}
fn empty_object() -> Value {
    json!({})
}
fn default_max_documents() -> i64 {
    5
}
fn yes() -> bool {
    true
}

/// Every field of an agent as the API takes it. An update is this with the changed keys laid over
/// the agent's current values.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_agent_type")]
    pub agent_type: String,
    #[serde(default = "default_provider")]
    pub model_provider: String,
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default = "empty_object")]
    pub model_parameters: Value,
    #[serde(default)]
    pub conversation_mode: ConversationMode,
    #[serde(default)]
    pub context_window: Option<i64>,
    #[serde(default)]
    pub memory_retention_days: Option<i64>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub user_prompt_template: Option<String>,
    #[serde(default = "default_max_documents")]
    pub max_documents: i64,
    #[serde(default)]
    pub similarity_threshold: Option<f64>,
    #[serde(default)]
    pub rate_limit_per_hour: Option<i64>,
    #[serde(default)]
    pub rate_limit_per_day: Option<i64>,
    #[serde(default)]
    pub domain_keywords: Vec<String>,
    #[serde(default)]
    pub expertise_areas: Vec<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub knowledge_base_ids: Vec<Id>,
    #[serde(default)]
    pub data_source_ids: Vec<Id>,
    #[serde(default)]
    pub file_type_ids: Vec<i64>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    error(Code::InvalidAgentConfig, message)
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(field: &str, value: Option<T>, min: T, max: T) -> ApiResult<()> {
    match value {
        Some(v) if v < min || v > max => Err(invalid(format!("{field} must be between {min} and {max}"))),
        _ => Ok(()),
    }
}

/// The placeholders of a prompt template: `{name}` with a lower-case identifier.
fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if !after[..close].is_empty() && after[..close].chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                found.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    found
}

fn validate(spec: &AgentSpec) -> ApiResult<()> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name must be 1 to 100 characters long"));
    }
    if spec.agent_type.trim().is_empty() || spec.agent_type.chars().count() > 50 {
        return Err(invalid("agent_type must be 1 to 50 characters long"));
    }
    if !lore_llm::PROVIDERS.contains(&spec.model_provider.as_str()) {
        return Err(invalid(format!(
            "unknown model_provider '{}'; expected one of {}",
            spec.model_provider,
            lore_llm::PROVIDERS.join(", ")
        )));
    }
    if spec.model_provider != "extractive" && spec.model_name.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(invalid(format!("model_provider '{}' needs a model_name", spec.model_provider)));
    }
    let Some(params) = spec.model_parameters.as_object() else {
        return Err(invalid("model_parameters must be an object"));
    };
    for key in params.keys() {
        if !PARAMETERS.contains(&key.as_str()) && key != "api_key_sealed" {
            return Err(invalid(format!("unknown model parameter '{key}'; known: {}", PARAMETERS.join(", "))));
        }
    }
    let number = |key: &str| params.get(key).filter(|v| !v.is_null());
    for (key, min, max) in [
        ("temperature", 0.0, 2.0),
        ("top_p", 0.0, 1.0),
        ("max_tokens", 1.0, 100_000.0),
        ("timeout_seconds", 1.0, 600.0),
        ("max_attempts", 1.0, 10.0),
    ] {
        if let Some(v) = number(key) {
            let Some(v) = v.as_f64() else { return Err(invalid(format!("model parameter {key} must be a number"))) };
            range(key, Some(v), min, max)?;
        }
    }
    if number("rewrite_follow_ups").is_some_and(|v| !v.is_boolean()) {
        return Err(invalid("model parameter rewrite_follow_ups must be true or false"));
    }
    if let Some(url) = number("base_url") {
        let ok = url.as_str().is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"));
        if !ok {
            return Err(invalid("model parameter base_url must be an http(s) URL"));
        }
    }
    if let Some(price) = number("price") {
        price_of(price).map_err(invalid)?;
    }
    range("context_window", spec.context_window, 512, 2_000_000)?;
    range("memory_retention_days", spec.memory_retention_days, 0, 36_500)?;
    range("max_documents", Some(spec.max_documents), 1, 50)?;
    range("similarity_threshold", spec.similarity_threshold, 0.0, 1.0)?;
    range("rate_limit_per_hour", spec.rate_limit_per_hour, 1, 10_000_000)?;
    range("rate_limit_per_day", spec.rate_limit_per_day, 1, 100_000_000)?;
    if spec.system_prompt.as_deref().is_some_and(|p| p.chars().count() > 20_000) {
        return Err(invalid("system_prompt must be at most 20000 characters"));
    }
    if let Some(template) = &spec.user_prompt_template {
        if template.chars().count() > 20_000 {
            return Err(invalid("user_prompt_template must be at most 20000 characters"));
        }
        let found = placeholders(template);
        if let Some(unknown) = found.iter().find(|p| !PLACEHOLDERS.contains(p)) {
            return Err(invalid(format!(
                "user_prompt_template has an unknown placeholder {{{unknown}}}; use {{question}}, {{context}} and {{history}}"
            )));
        }
        if !found.contains(&"question") {
            return Err(invalid("user_prompt_template must contain {question}"));
        }
    }
    for (field, list) in [("domain_keywords", &spec.domain_keywords), ("expertise_areas", &spec.expertise_areas)] {
        if list.len() > 100 || list.iter().any(|k| k.trim().is_empty() || k.chars().count() > 100) {
            return Err(invalid(format!("{field} takes up to 100 entries of 1 to 100 characters")));
        }
    }
    Ok(())
}

/// A price given in an agent's parameters: `{"input": "0.15", "output": "0.60"}` per million tokens.
fn price_of(value: &Value) -> Result<lore_llm::Price, String> {
    let field = |name: &str| -> Result<Decimal, String> {
        let text = match &value[name] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("model parameter price needs `{name}` (USD per million tokens)")),
        };
        let d = Decimal::from_str(text.trim()).map_err(|e| format!("price {name}: {e}"))?;
        if d.is_sign_negative() {
            return Err(format!("price {name} must not be negative"));
        }
        Ok(d)
    };
    Ok(lore_llm::Price { input: field("input")?, output: field("output")? })
}

/// Seals an `api_key` given in the parameters; keeps the previous sealed key when none is given.
fn seal_parameters(state: &AppState, params: &mut Value, previous: Option<&Value>) -> ApiResult<()> {
    let Some(map) = params.as_object_mut() else { return Ok(()) };
    match map.remove("api_key") {
        Some(Value::String(key)) if !key.is_empty() => {
            map.insert("api_key_sealed".into(), json!(state.master_key.seal(&key)?));
        }
        Some(_) => {
            map.remove("api_key_sealed");
        }
        None => {
            map.remove("api_key_sealed");
            if let Some(sealed) = previous.and_then(|p| p.get("api_key_sealed")) {
                map.insert("api_key_sealed".into(), sealed.clone());
            }
        }
    }
    Ok(())
}

/// An agent as the API shows it: a sealed key appears masked.
pub fn view(state: &AppState, agent: &Agent) -> Value {
    let mut agent = agent.clone();
    if let Some(map) = agent.model_parameters.as_object_mut()
        && let Some(sealed) = map.remove("api_key_sealed")
    {
        let masked = sealed.as_str().and_then(|s| state.master_key.open(s).ok()).map(|k| crate::secrets::mask(&k));
        map.insert("api_key".into(), json!(masked.unwrap_or_else(|| "••••".into())));
    }
    serde_json::to_value(&agent).unwrap_or(Value::Null)
}

async fn check_links(state: &AppState, principal: &Principal, spec: &AgentSpec) -> ApiResult<()> {
    let user = principal.user_id();
    for kb in &spec.knowledge_base_ids {
        state.store.get_knowledge_base(user, *kb).await?.ok_or_else(|| not_found(&format!("knowledge base {kb}")))?;
    }
    if let Some(missing) = state.store.missing_agent_links(user, &spec.data_source_ids, &spec.file_type_ids).await? {
        return Err(not_found(&missing));
    }
    Ok(())
}

fn agent_of(spec: AgentSpec, id: Id, user_id: Id, created_at: Timestamp) -> Agent {
    Agent {
        id,
        user_id,
        name: spec.name.trim().to_string(),
        description: spec.description,
        agent_type: spec.agent_type.trim().to_string(),
        model_provider: spec.model_provider,
        model_name: spec.model_name.map(|m| m.trim().to_string()),
        model_parameters: spec.model_parameters,
        conversation_mode: spec.conversation_mode,
        context_window: spec.context_window,
        memory_retention_days: spec.memory_retention_days,
        system_prompt: spec.system_prompt,
        user_prompt_template: spec.user_prompt_template,
        max_documents: spec.max_documents,
        similarity_threshold: spec.similarity_threshold,
        rate_limit_per_hour: spec.rate_limit_per_hour,
        rate_limit_per_day: spec.rate_limit_per_day,
        domain_keywords: spec.domain_keywords,
        expertise_areas: spec.expertise_areas,
        is_active: spec.is_active,
        knowledge_base_ids: dedup(spec.knowledge_base_ids),
        data_source_ids: dedup(spec.data_source_ids),
        file_type_ids: dedup(spec.file_type_ids),
        created_at,
        updated_at: lore_core::now(),
    }
}

fn dedup<T: std::hash::Hash + Eq + Copy>(items: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).collect()
}

fn parse_spec(body: Value) -> ApiResult<AgentSpec> {
    if body.get("model_parameters").and_then(|p| p.get("api_key_sealed")).is_some() {
        return Err(invalid("api_key_sealed is Lore's own; give api_key"));
    }
    serde_json::from_value(body).map_err(|e| error(Code::ValidationFailed, format!("invalid agent: {e}")))
}

/// The model's address must pass the outbound policy: a `base_url`, or the provider's default
/// (`llamacpp`'s 127.0.0.1:8080 is Lore's own port unless the operator allows it).
fn check_address(state: &AppState, spec: &AgentSpec) -> ApiResult<()> {
    if spec.model_provider == "extractive" || lore_llm::protocol_of(&spec.model_provider).is_none() {
        return Ok(());
    }
    let base = spec.model_parameters["base_url"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| lore_llm::default_base(&spec.model_provider).to_string());
    state
        .config
        .outbound()
        .check_url(&base)
        .map_err(|e| error(e.code, format!("model_parameters.base_url: {}", e.message)))
}

/// `POST /v1/agents`.
pub async fn create(state: &AppState, principal: &Principal, body: Value) -> ApiResult<Value> {
    principal.require_session()?;
    let mut spec = parse_spec(body)?;
    validate(&spec)?;
    check_address(state, &spec)?;
    check_links(state, principal, &spec).await?;
    seal_parameters(state, &mut spec.model_parameters, None)?;
    let agent = agent_of(spec, lore_core::new_id(), principal.user_id(), lore_core::now());
    state.store.insert_agent(&agent).await?;
    Ok(view(state, &agent))
}

pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<Value>> {
    principal.require(Scope::Read)?;
    let agents = state.store.list_agents(principal.user_id()).await?;
    Ok(agents.iter().filter(|a| agent_within_binding(principal, a)).map(|a| view(state, a)).collect())
}

/// The caller's agent, within the key's binding; any other is not found.
async fn owned(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Agent> {
    state
        .store
        .get_agent(principal.user_id(), id)
        .await?
        .filter(|a| agent_within_binding(principal, a))
        .ok_or_else(|| not_found("agent"))
}

pub async fn get(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Value> {
    principal.require(Scope::Read)?;
    Ok(view(state, &owned(state, principal, id).await?))
}

/// `PATCH /v1/agents/{id}`: the given fields replace the agent's; `null` clears an optional one.
pub async fn update(state: &AppState, principal: &Principal, id: Id, body: Value) -> ApiResult<Value> {
    principal.require_session()?;
    let current = owned(state, principal, id).await?;
    let Value::Object(changes) = body else { return Err(error(Code::ValidationFailed, "expected a JSON object")) };
    let mut merged = serde_json::to_value(spec_of(&current)).map_err(Error::from)?;
    for (key, value) in changes {
        merged[key] = value;
    }
    let mut spec = parse_spec(merged)?;
    validate(&spec)?;
    check_address(state, &spec)?;
    check_links(state, principal, &spec).await?;
    seal_parameters(state, &mut spec.model_parameters, Some(&current.model_parameters))?;
    let agent = agent_of(spec, current.id, current.user_id, current.created_at);
    if !state.store.update_agent(&agent).await? {
        return Err(not_found("agent"));
    }
    Ok(view(state, &agent))
}

fn spec_of(agent: &Agent) -> AgentSpec {
    let mut params = agent.model_parameters.clone();
    if let Some(map) = params.as_object_mut() {
        map.remove("api_key_sealed"); // kept by seal_parameters unless replaced
    }
    AgentSpec {
        name: agent.name.clone(),
        description: agent.description.clone(),
        agent_type: agent.agent_type.clone(),
        model_provider: agent.model_provider.clone(),
        model_name: agent.model_name.clone(),
        model_parameters: params,
        conversation_mode: agent.conversation_mode,
        context_window: agent.context_window,
        memory_retention_days: agent.memory_retention_days,
        system_prompt: agent.system_prompt.clone(),
        user_prompt_template: agent.user_prompt_template.clone(),
        max_documents: agent.max_documents,
        similarity_threshold: agent.similarity_threshold,
        rate_limit_per_hour: agent.rate_limit_per_hour,
        rate_limit_per_day: agent.rate_limit_per_day,
        domain_keywords: agent.domain_keywords.clone(),
        expertise_areas: agent.expertise_areas.clone(),
        is_active: agent.is_active,
        knowledge_base_ids: agent.knowledge_base_ids.clone(),
        data_source_ids: agent.data_source_ids.clone(),
        file_type_ids: agent.file_type_ids.clone(),
    }
}

pub async fn delete(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require_session()?;
    if !state.store.delete_agent(principal.user_id(), id).await? {
        return Err(not_found("agent"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ conversations

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationParams {
    pub agent_id: Option<Id>,
}

/// Whether a key bound to one knowledge base may see this agent: it must reach that knowledge
/// base (all of the owner's when it names none); its answers are then drawn from it alone.
fn agent_within_binding(principal: &Principal, agent: &Agent) -> bool {
    principal
        .bound_knowledge_base()
        .is_none_or(|bound| agent.knowledge_base_ids.is_empty() || agent.knowledge_base_ids.contains(&bound))
}

/// Whether a key bound to one knowledge base may see this conversation: only those held through
/// a key bound to the same knowledge base, whose citations all come from it.
fn conversation_within_binding(principal: &Principal, conversation: &Conversation) -> bool {
    principal.bound_knowledge_base().is_none_or(|bound| {
        conversation.context.get(BOUND_KNOWLEDGE_BASE).and_then(Value::as_str) == Some(bound.to_string().as_str())
    })
}

/// The conversation context key naming the knowledge base a bound key held it through.
const BOUND_KNOWLEDGE_BASE: &str = "bound_knowledge_base_id";

pub async fn list_conversations(
    state: &AppState,
    principal: &Principal,
    params: ConversationParams,
) -> ApiResult<Vec<Conversation>> {
    principal.require(Scope::Read)?;
    let mut all = state.store.list_conversations(principal.user_id(), params.agent_id).await?;
    all.retain(|c| conversation_within_binding(principal, c));
    Ok(all)
}

pub async fn get_conversation(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Conversation> {
    principal.require(Scope::Read)?;
    get_conversation_unscoped(state, principal, id).await
}

/// The conversation, checked against the key's binding but not its scopes.
async fn get_conversation_unscoped(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Conversation> {
    state
        .store
        .get_conversation(principal.user_id(), id)
        .await?
        .filter(|c| conversation_within_binding(principal, c))
        .ok_or_else(|| not_found("conversation"))
}

pub async fn conversation_messages(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<ChatMessage>> {
    get_conversation(state, principal, id).await?;
    Ok(state.store.list_messages(principal.user_id(), id, None).await?)
}

pub async fn delete_conversation(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require(Scope::Delete)?;
    get_conversation_unscoped(state, principal, id).await?;
    if !state.store.delete_conversation(principal.user_id(), id).await? {
        return Err(not_found("conversation"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ chat

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub message: String,
    pub conversation_id: Option<Id>,
    #[serde(default)]
    pub stream: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CitationView {
    pub index: i64,
    pub document_id: Id,
    pub chunk_id: Option<Id>,
    pub filename: String,
    pub snippet: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: Id,
    pub role: &'static str,
    pub content: String,
    pub citations: Vec<CitationView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// USD, exact.
    pub cost: String,
    pub response_time_ms: f64,
    /// True when the provider reported no token counts and these are estimates.
    pub estimated: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatAnswer {
    pub conversation_id: Option<Id>,
    pub message: MessageView,
    pub usage: UsageView,
    /// True when no language model is configured and the answer quotes the passages.
    pub extractive: bool,
}

/// A chat turn ready to be answered: the call is counted, the passages retrieved, the prompt built.
pub struct Turn {
    agent: Agent,
    call: AgentUsage,
    started: Instant,
    question: String,
    terms: Vec<String>,
    passages: Vec<ChunkHit>,
    model: Option<Arc<dyn ChatModel>>,
    request: lore_llm::ChatRequest,
    price: Option<lore_llm::Price>,
    /// Time from the request to the provider call: what Lore adds to the time to first token.
    overhead_ms: f64,
    conversation: Option<Conversation>,
    /// The knowledge base the caller's key is bound to, recorded on a new conversation.
    bound: Option<Id>,
}

/// What an agent said.
struct Said {
    text: String,
    usage: Usage,
    cost: Decimal,
}

/// The caller's agent named by its id or its name.
pub async fn by_id_or_name(state: &AppState, principal: &Principal, agent: &str) -> ApiResult<Agent> {
    let agents = state.store.list_agents(principal.user_id()).await?;
    agents
        .into_iter()
        .filter(|a| agent_within_binding(principal, a))
        .find(|a| a.id.to_string() == agent || a.name == agent)
        .ok_or_else(|| error(Code::NotFound, format!("no agent '{agent}'")))
}

/// The agent to chat with: the caller's, active.
pub async fn chat_agent(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Agent> {
    principal.require(Scope::Search)?;
    let agent = owned(state, principal, id).await?;
    if !agent.is_active {
        return Err(error(Code::AgentInactive, format!("agent '{}' is not active", agent.name)));
    }
    Ok(agent)
}

/// `POST /v1/agents/{id}/chat` up to the answer: what streams and what does not share this.
pub async fn begin_chat(state: &AppState, principal: &Principal, id: Id, req: &ChatRequest) -> ApiResult<Turn> {
    let started = Instant::now();
    let question = check_message(&req.message)?;
    let agent = chat_agent(state, principal, id).await?;
    let conversation = match req.conversation_id {
        Some(cid) => {
            let c = state
                .store
                .get_conversation(principal.user_id(), cid)
                .await?
                .filter(|c| c.agent_id == agent.id && conversation_within_binding(principal, c))
                .ok_or_else(|| not_found("conversation"))?;
            Some(c)
        }
        None => None,
    };
    let history = match (&conversation, agent.conversation_mode) {
        (Some(c), ConversationMode::MultiTurn) => {
            let since = agent.memory_retention_days.map(|d| lore_core::now() - ChronoDuration::days(d));
            state
                .store
                .list_messages(principal.user_id(), c.id, since)
                .await?
                .into_iter()
                .filter_map(|m| {
                    let role = match m.role.as_str() {
                        "user" => Role::User,
                        "assistant" => Role::Assistant,
                        _ => return None,
                    };
                    Some(Message::new(role, m.content))
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let mut turn = prepare(state, principal, agent, question, history, started).await?;
    turn.conversation = conversation;
    Ok(turn)
}

fn check_message(message: &str) -> ApiResult<String> {
    let message = message.trim();
    if message.is_empty() {
        return Err(error(Code::ValidationFailed, "message must not be empty"));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(error(Code::ValidationFailed, format!("message must be at most {MAX_MESSAGE_CHARS} characters")));
    }
    Ok(message.to_string())
}

/// Counts the call against the agent's limits, retrieves, and assembles the prompt.
pub async fn prepare(
    state: &AppState,
    principal: &Principal,
    agent: Agent,
    question: String,
    history: Vec<Message>,
    started: Instant,
) -> ApiResult<Turn> {
    let model = chat_model(state, &agent).await?;
    // A follow-up is searched with the subject of the questions it leans on (crate::followup).
    let rewrite = agent.model_parameters.get("rewrite_follow_ups").and_then(Value::as_bool).unwrap_or(true);
    let search_query = rewrite.then(|| crate::followup::search_query(&question, &history)).flatten();
    let query = search_query.as_deref().unwrap_or(&question);
    // Retrieval runs while the call is counted; a refused call's passages are dropped.
    let (call, passages) =
        tokio::join!(reserve_call(state, &agent, model.as_deref()), retrieve(state, principal, &agent, query));
    let call = call?;
    let prepared = async {
        let passages = passages?;
        let params = &agent.model_parameters;
        let max_tokens = params["max_tokens"].as_u64().map(|n| n as u32);
        let request = lore_llm::ChatRequest {
            messages: assemble(&agent, &question, &passages, history, max_tokens.unwrap_or(DEFAULT_MAX_ANSWER_TOKENS)),
            max_tokens,
            temperature: params["temperature"].as_f64(),
            top_p: params["top_p"].as_f64(),
            json_output: false,
        };
        let price = match params.get("price").filter(|p| !p.is_null()) {
            Some(p) => Some(price_of(p).map_err(invalid)?),
            None => None,
        };
        Ok::<_, ApiError>((passages, request, price))
    }
    .await;
    let (passages, request, price) = match prepared {
        Ok(p) => p,
        Err(e) => {
            fail_call(state, call, started, &e.error).await;
            return Err(e);
        }
    };
    Ok(Turn {
        terms: lore_ingest::segment::query_terms(&question),
        agent,
        call,
        question,
        passages,
        model,
        request,
        price,
        overhead_ms: started.elapsed().as_secs_f64() * 1000.0,
        started,
        conversation: None,
        bound: principal.bound_knowledge_base(),
    })
}

/// The agent's chat model with its key and address, or `None` for the extractive answerer.
async fn chat_model(state: &AppState, agent: &Agent) -> ApiResult<Option<Arc<dyn ChatModel>>> {
    if agent.model_provider == "extractive" {
        return Ok(None);
    }
    let model = agent.model_name.as_deref().unwrap_or_default();
    provider_model(state, agent.user_id, &agent.model_provider, model, &agent.model_parameters).await.map(Some)
}

/// A user's chat model: `params` (an agent's `model_parameters`) may carry a sealed key, an
/// address and timeouts; otherwise the user's configuration gives key and address.
pub async fn provider_model(
    state: &AppState,
    user_id: Id,
    provider: &str,
    model: &str,
    params: &Value,
) -> ApiResult<Arc<dyn ChatModel>> {
    let user = state.store.get_user_config(user_id).await?.unwrap_or_default();
    let open = |s: &Option<String>| s.as_deref().map(|s| state.master_key.open(s)).transpose();
    // The user's key of this very provider; other vendors (deepseek, qwen, ...) never get the
    // user's OpenAI key: they take the agent's own.
    let (user_key, user_base) = match provider {
        "anthropic" => (open(&user.anthropic_api_key)?, user.anthropic_base_url.clone()),
        "cohere" => (open(&user.cohere_api_key)?, user.cohere_base_url.clone()),
        "openai" => (open(&user.openai_api_key)?, user.openai_base_url.clone()),
        _ => (None, None),
    };
    let agent_key = params["api_key_sealed"].as_str().map(|s| state.master_key.open(s)).transpose()?;
    let mut config = lore_llm::ChatConfig::new(provider, model);
    config.base_url = params["base_url"].as_str().map(str::to_string).or(user_base.clone());
    // The user's sealed key goes only to the address saved with it or to the provider's own.
    let base = config.base_url.clone().unwrap_or_else(|| lore_llm::default_base(provider).to_string());
    let same = |a: &str, b: &str| a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'));
    let user_key = user_key.filter(|_| {
        same(&base, lore_llm::default_base(provider)) || user_base.as_deref().is_some_and(|u| same(&base, u))
    });
    config.api_key = agent_key.or(user_key);
    config.outbound = state.config.outbound();
    if let Some(seconds) = params["timeout_seconds"].as_f64() {
        config.timeout = Duration::from_secs_f64(seconds);
    }
    if let Some(n) = params["max_attempts"].as_u64() {
        config.max_attempts = n as u32;
    }
    let model = lore_llm::connect(&config).map_err(llm_error)?;
    Ok(Arc::new(model))
}

pub fn llm_error(e: LlmError) -> ApiError {
    let (code, message) = match e {
        LlmError::InvalidConfig(m) => (Code::InvalidAgentConfig, m),
        LlmError::Unavailable(m) => (Code::LlmUnavailable, m),
        LlmError::Rejected(m) => (Code::LlmRejected, m),
        LlmError::Timeout(m) => (Code::LlmTimeout, m),
        LlmError::BadResponse(m) => (Code::LlmBadResponse, m),
        LlmError::Refused(m) => (Code::OutboundNotAllowed, m),
    };
    error(code, message)
}

/// Records the call as started, then checks the agent's hourly and daily limits with it counted:
/// concurrent calls on any node see each other, so a limit holds across nodes.
async fn reserve_call(state: &AppState, agent: &Agent, model: Option<&dyn ChatModel>) -> ApiResult<AgentUsage> {
    let now = lore_core::now();
    let call = AgentUsage {
        id: lore_core::new_id(),
        user_id: agent.user_id,
        agent_id: agent.id,
        conversation_id: None,
        model_provider: Some(agent.model_provider.clone()),
        model_name: model.map(|m| m.model().to_string()),
        prompt_tokens: 0,
        completion_tokens: 0,
        tokens_used: 0,
        cost: "0".into(),
        response_time: 0.0,
        request_data: json!({"status": "started"}),
        created_at: now,
    };
    state.store.insert_agent_call(&call).await?;
    for (limit, window, name) in [
        (agent.rate_limit_per_hour, ChronoDuration::hours(1), "hour"),
        (agent.rate_limit_per_day, ChronoDuration::days(1), "day"),
    ] {
        let Some(limit) = limit else { continue };
        let (calls, oldest) = state.store.agent_calls_since(agent.id, now - window).await?;
        if calls > limit {
            state.store.delete_agent_call(call.id).await?;
            crate::metrics::rate_limit_rejection("agent");
            let free_at = oldest.unwrap_or(now) + window;
            let wait = (free_at - now).num_seconds().max(1) as u64;
            return Err(error(
                Code::RateLimited,
                format!("agent '{}' allows {limit} calls per {name}; try again in {wait} s", agent.name),
            )
            .retry_after(wait));
        }
    }
    Ok(call)
}

async fn fail_call(state: &AppState, mut call: AgentUsage, started: Instant, e: &Error) {
    call.response_time = started.elapsed().as_secs_f64();
    call.request_data = json!({"status": "failed", "error": {"code": e.code.as_str(), "message": e.message}});
    crate::metrics::llm_call(call.model_provider.as_deref().unwrap_or_default(), "failed", 0, 0);
    if let Err(e) = state.store.update_agent_call(&call).await {
        tracing::warn!(error = %e, "could not record a failed agent call");
    }
}

/// Hybrid search over what the agent may read (and the caller's key may reach).
async fn retrieve(state: &AppState, principal: &Principal, agent: &Agent, question: &str) -> ApiResult<Vec<ChunkHit>> {
    let user = principal.user_id();
    let mut kbs = Vec::new();
    if agent.knowledge_base_ids.is_empty() {
        kbs = state.store.list_knowledge_bases(user).await?;
    } else {
        for id in &agent.knowledge_base_ids {
            kbs.extend(state.store.get_knowledge_base(user, *id).await?);
        }
    }
    if let Some(bound) = principal.bound_knowledge_base() {
        kbs.retain(|kb| kb.id == bound);
        if kbs.is_empty() {
            return Err(error(
                Code::KnowledgeBaseNotAllowed,
                "this API key is restricted to a knowledge base this agent does not use",
            ));
        }
    }
    if kbs.is_empty() {
        return Ok(Vec::new());
    }
    let mut filters = SearchFilters::default();
    if !agent.file_type_ids.is_empty() {
        let types = state.store.list_file_types().await?;
        filters.file_types =
            Some(types.into_iter().filter(|t| agent.file_type_ids.contains(&t.id)).map(|t| t.name).collect());
    }
    if !agent.data_source_ids.is_empty() {
        filters.data_source_ids = Some(agent.data_source_ids.clone());
    }
    // Knowledge bases in different embedding models are searched apart, their fused lists merged.
    let mut groups: Vec<(Option<String>, Vec<KnowledgeBase>)> = Vec::new();
    for kb in kbs {
        let space = crate::embedding::search_space(state, &kb).await.ok().flatten();
        match groups.iter_mut().find(|(s, _)| *s == space) {
            Some((_, group)) => group.push(kb),
            None => groups.push((space, vec![kb])),
        }
    }
    let top_k = agent.max_documents.clamp(1, 50) as usize;
    let mut hits = Vec::new();
    for (_, group) in groups {
        let request = SearchRequest {
            query: question.chars().take(crate::service::MAX_QUERY_CHARS).collect(),
            mode: Some("hybrid".into()),
            top_k: Some(top_k as u32),
            similarity_threshold: agent.similarity_threshold,
            filters: filters.clone(),
            search_target: None,
            weights: None,
            fusion: None,
            knowledge_base_ids: None,
        };
        let found = crate::service::run_search(state, principal, group, request).await?;
        hits.extend(found.results.into_iter().map(|r| r.hit));
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(top_k);
    Ok(hits)
}

fn is_chinese(text: &str) -> bool {
    lore_llm::extractive::is_cjk_text(text)
}

fn default_system_prompt(agent: &Agent, question: &str) -> String {
    if is_chinese(question) {
        format!(
            "你是「{}」，根据知识库回答问题的助手。只使用上下文中编号的资料作答，并在所依据的句子后用 [1]、[2] 这样的编号标注出处。\
             资料中没有答案时，直接说明不知道。用提问的语言回答。",
            agent.name
        )
    } else {
        format!(
            "You are {}, an assistant that answers from a knowledge base. Use only the numbered passages in the \
             context, and cite them as [1], [2] after the sentences they support. If the passages do not contain \
             the answer, say you don't know. Answer in the language of the question.",
            agent.name
        )
    }
}

fn passage_text(hit: &ChunkHit) -> &str {
    hit.parent.as_ref().map(|p| p.content.as_str()).unwrap_or(&hit.content)
}

/// The messages for the model: the system prompt, the history that fits (oldest dropped first),
/// and the question with the numbered passages that fit (best first).
fn assemble(
    agent: &Agent,
    question: &str,
    passages: &[ChunkHit],
    history: Vec<Message>,
    answer_tokens: u32,
) -> Vec<Message> {
    let est = lore_llm::estimate_tokens;
    let window = agent.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW).max(512) as u64;
    let template = agent.user_prompt_template.clone().unwrap_or_else(|| {
        if is_chinese(question) {
            "资料：\n{context}\n\n问题：{question}".to_string()
        } else {
            "Context:\n{context}\n\nQuestion: {question}".to_string()
        }
    });
    let mut system = agent.system_prompt.clone().unwrap_or_else(|| default_system_prompt(agent, question));
    let mut budget =
        window.saturating_sub(answer_tokens as u64).saturating_sub(est(&system) + est(&template) + est(question) + 16);

    // Passages by score, while they fit; the first is cut to fit rather than dropped.
    let mut context = String::new();
    for (i, hit) in passages.iter().enumerate() {
        let block = format!("[{}] {}\n{}\n\n", i + 1, hit.title.as_deref().unwrap_or(&hit.filename), passage_text(hit));
        let cost = est(&block);
        if cost <= budget {
            budget -= cost;
            context.push_str(&block);
        } else if i == 0 {
            let chars = (budget as usize).saturating_mul(2);
            context.push_str(&block.chars().take(chars).collect::<String>());
            budget = 0;
        } else {
            break;
        }
    }
    let context = context.trim_end().to_string();

    // History, newest kept first, sent oldest first.
    let mut kept = Vec::new();
    for message in history.into_iter().rev() {
        let cost = est(&message.content) + 4;
        if cost > budget {
            break;
        }
        budget -= cost;
        kept.push(message);
    }
    kept.reverse();
    // An assistant turn first would confuse providers that want the user to speak first.
    while kept.first().is_some_and(|m| m.role != Role::User) {
        kept.remove(0);
    }

    let uses = |p: &str| placeholders(&template).contains(&p);
    let history_text =
        kept.iter().map(|m| format!("{}: {}", m.role.as_str(), m.content)).collect::<Vec<_>>().join("\n");
    if !uses("context") && !context.is_empty() {
        system.push_str("\n\n");
        system.push_str(&context);
    }
    let user =
        template.replace("{context}", &context).replace("{history}", &history_text).replace("{question}", question);
    let mut messages = vec![Message::new(Role::System, system)];
    if !uses("history") {
        messages.extend(kept);
    }
    messages.push(Message::new(Role::User, user));
    messages
}

/// Answers a turn, sending each piece of the answer to `pieces` as it comes.
async fn generate(state: &AppState, turn: &Turn, pieces: Option<&mpsc::Sender<String>>) -> Result<Said, ApiError> {
    let Some(model) = &turn.model else {
        let passages: Vec<lore_llm::extractive::Passage> = turn
            .passages
            .iter()
            .enumerate()
            .map(|(i, hit)| lore_llm::extractive::Passage { index: i + 1, text: passage_text(hit) })
            .collect();
        let text = lore_llm::extractive::answer(&turn.question, &turn.terms, &passages);
        if let Some(tx) = pieces {
            for piece in text.split_inclusive(['\n', ' ']) {
                let _ = tx.send(piece.to_string()).await;
            }
        }
        return Ok(Said { text, usage: Usage::default(), cost: Decimal::ZERO });
    };
    let mut events = model.stream(turn.request.clone()).await.map_err(llm_error)?;
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event.map_err(llm_error)? {
            ChatEvent::Delta(piece) => {
                text.push_str(&piece);
                if let Some(tx) = pieces {
                    // A caller that went away still gets its answer recorded.
                    let _ = tx.send(piece).await;
                }
            }
            ChatEvent::Done { usage, .. } => {
                let cost = match turn.price {
                    Some(price) => price.cost(&usage),
                    None => state.config.prices.cost(model.model(), &usage),
                };
                return Ok(Said { text, usage, cost });
            }
        }
    }
    Err(llm_error(LlmError::BadResponse("the provider's stream ended before the answer was complete".into())))
}

/// The citations an answer makes: the passages it names as [n], or all it was given when it names none.
fn citations_of(text: &str, passages: &[ChunkHit]) -> Vec<Citation> {
    let mut named: Vec<usize> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find(']') {
            for part in after[..close].split([',', '，', ' ']) {
                if let Ok(n) = part.trim().parse::<usize>()
                    && (1..=passages.len()).contains(&n)
                    && !named.contains(&n)
                {
                    named.push(n);
                }
            }
        }
        rest = after;
    }
    if named.is_empty() {
        named = (1..=passages.len()).collect();
    }
    named.sort_unstable();
    named
        .into_iter()
        .map(|n| {
            let hit = &passages[n - 1];
            Citation {
                index: n as i64,
                document_id: hit.document_id,
                chunk_id: Some(hit.chunk_id),
                score: Some(hit.score),
                filename: Some(hit.filename.clone()),
                snippet: Some(hit.content.chars().take(SNIPPET_CHARS).collect()),
            }
        })
        .collect()
}

/// Answers a turn to the end: the answer, persisted with its citations when the turn belongs to a
/// conversation, and the call accounted. `pieces` receives the answer as it is produced.
pub async fn complete_turn(
    state: &AppState,
    mut turn: Turn,
    pieces: Option<&mpsc::Sender<String>>,
    persist: bool,
) -> ApiResult<ChatAnswer> {
    let said = match generate(state, &turn, pieces).await {
        Ok(said) => said,
        Err(e) => {
            fail_call(state, turn.call, turn.started, &e.error).await;
            return Err(e);
        }
    };
    let citations = citations_of(&said.text, &turn.passages);
    let now = lore_core::now();
    let assistant_id = lore_core::new_id();
    let extractive = turn.model.is_none();
    let elapsed = turn.started.elapsed().as_secs_f64();

    // The conversation, created on its first answer.
    let mut conversation_id = turn.conversation.as_ref().map(|c| c.id);
    if persist {
        let conversation = match turn.conversation.take() {
            Some(c) => c,
            None => {
                let c = Conversation {
                    id: lore_core::new_id(),
                    user_id: turn.agent.user_id,
                    agent_id: turn.agent.id,
                    title: Some(turn.question.chars().take(80).collect()),
                    context: match turn.bound {
                        Some(kb) => json!({ BOUND_KNOWLEDGE_BASE: kb }),
                        None => json!({}),
                    },
                    created_at: now,
                    updated_at: now,
                };
                state.store.create_conversation(&c).await?;
                c
            }
        };
        conversation_id = Some(conversation.id);
        let exchange = [
            ChatMessage {
                id: lore_core::new_id(),
                conversation_id: conversation.id,
                role: "user".into(),
                content: turn.question.clone(),
                metadata: json!({}),
                citations: Vec::new(),
                created_at: now,
            },
            ChatMessage {
                id: assistant_id,
                conversation_id: conversation.id,
                role: "assistant".into(),
                content: said.text.clone(),
                metadata: json!({
                    "model_provider": turn.agent.model_provider,
                    "model_name": turn.model.as_ref().map(|m| m.model().to_string()),
                    "extractive": extractive,
                    "prompt_tokens": said.usage.prompt_tokens,
                    "completion_tokens": said.usage.completion_tokens,
                }),
                citations: citations.clone(),
                created_at: now + ChronoDuration::milliseconds(1),
            },
        ];
        state.store.append_messages(turn.agent.user_id, conversation.id, &exchange).await?;
    }

    let mut call = turn.call.clone();
    call.conversation_id = conversation_id;
    call.prompt_tokens = said.usage.prompt_tokens as i64;
    call.completion_tokens = said.usage.completion_tokens as i64;
    call.tokens_used = call.prompt_tokens + call.completion_tokens;
    call.cost = said.cost.normalize().to_string();
    call.response_time = elapsed;
    call.request_data = json!({
        "status": "ok",
        "message_chars": turn.question.chars().count(),
        "passages": turn.passages.len(),
        "overhead_ms": turn.overhead_ms,
        "estimated_tokens": said.usage.estimated,
        "stream": pieces.is_some(),
    });
    state.store.update_agent_call(&call).await?;
    crate::metrics::llm_call(&turn.agent.model_provider, "ok", said.usage.prompt_tokens, said.usage.completion_tokens);

    Ok(ChatAnswer {
        conversation_id,
        message: MessageView {
            id: assistant_id,
            role: "assistant",
            content: said.text,
            citations: citations
                .into_iter()
                .map(|c| CitationView {
                    index: c.index,
                    document_id: c.document_id,
                    chunk_id: c.chunk_id,
                    filename: c.filename.unwrap_or_default(),
                    snippet: c.snippet.unwrap_or_default(),
                    score: c.score.unwrap_or_default(),
                })
                .collect(),
        },
        usage: UsageView {
            prompt_tokens: said.usage.prompt_tokens,
            completion_tokens: said.usage.completion_tokens,
            cost: call.cost,
            response_time_ms: elapsed * 1000.0,
            estimated: said.usage.estimated,
        },
        extractive,
    })
}

impl Turn {
    pub fn agent(&self) -> &Agent {
        &self.agent
    }
}

// ------------------------------------------------------------------------------------ routing

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
        .list_agents(principal.user_id())
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
    let similarities = profile_similarities(state, principal.user_id(), &question, &profiles).await;
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
async fn profile_similarities(state: &AppState, user_id: Id, question: &str, profiles: &[String]) -> Option<Vec<f64>> {
    let embedder = crate::embedding::embedder_of(state, user_id, None).await.ok().flatten()?;
    let query = embedder.embed(&[question.to_string()], lore_embed::InputKind::Query).await.ok()?.pop()?;
    let vectors = embedder.embed(profiles, lore_embed::InputKind::Passage).await.ok()?;
    Some(vectors.iter().map(|v| v.iter().zip(&query).map(|(a, b)| (*a as f64) * (*b as f64)).sum()).collect())
}

// ------------------------------------------------------------------------------------ usage

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUsageParams {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub agent_id: Option<Id>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct AgentDay {
    pub day: String,
    pub agent_id: Id,
    pub agent_name: Option<String>,
    pub calls: i64,
    pub failed: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub tokens: i64,
    pub cost: String,
    pub avg_response_ms: f64,
    pub max_response_ms: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentUsageResponse {
    pub from: Timestamp,
    pub to: Timestamp,
    pub days: Vec<AgentDay>,
    pub total_calls: i64,
    pub total_tokens: i64,
    pub total_cost: String,
}

/// `GET /v1/usage/agents`: tokens, cost and latency by agent and day (UTC), 30 days by default.
pub async fn usage(state: &AppState, principal: &Principal, params: AgentUsageParams) -> ApiResult<AgentUsageResponse> {
    principal.require(Scope::Read)?;
    let to = params.to.unwrap_or_else(|| lore_core::now() + ChronoDuration::seconds(1));
    let from = params.from.unwrap_or(to - ChronoDuration::days(30));
    if from >= to || to - from > ChronoDuration::days(366) {
        return Err(error(Code::ValidationFailed, "from must be before to, at most 366 days apart"));
    }
    let names: HashMap<Id, String> =
        state.store.list_agents(principal.user_id()).await?.into_iter().map(|a| (a.id, a.name)).collect();
    let calls = state.store.list_agent_calls(principal.user_id(), from, to, params.agent_id).await?;
    let mut days: Vec<(AgentDay, Decimal, f64)> = Vec::new();
    let mut index: HashMap<(String, Id), usize> = HashMap::new();
    let (mut total_tokens, mut total_cost) = (0i64, Decimal::ZERO);
    for call in &calls {
        let day = call.created_at.format("%Y-%m-%d").to_string();
        let i = *index.entry((day.clone(), call.agent_id)).or_insert_with(|| {
            days.push((
                AgentDay {
                    day,
                    agent_id: call.agent_id,
                    agent_name: names.get(&call.agent_id).cloned(),
                    ..Default::default()
                },
                Decimal::ZERO,
                0.0,
            ));
            days.len() - 1
        });
        let (entry, cost, time) = &mut days[i];
        let cost_of_call = Decimal::from_str(&call.cost).unwrap_or(Decimal::ZERO);
        entry.calls += 1;
        if call.request_data["status"] == "failed" {
            entry.failed += 1;
        }
        entry.prompt_tokens += call.prompt_tokens;
        entry.completion_tokens += call.completion_tokens;
        entry.tokens += call.tokens_used;
        entry.max_response_ms = entry.max_response_ms.max(call.response_time * 1000.0);
        *cost += cost_of_call;
        *time += call.response_time;
        total_tokens += call.tokens_used;
        total_cost += cost_of_call;
    }
    let days = days
        .into_iter()
        .map(|(mut entry, cost, time)| {
            entry.cost = cost.normalize().to_string();
            entry.avg_response_ms = time * 1000.0 / entry.calls.max(1) as f64;
            entry
        })
        .collect();
    Ok(AgentUsageResponse {
        from,
        to,
        days,
        total_calls: calls.len() as i64,
        total_tokens,
        total_cost: total_cost.normalize().to_string(),
    })
}

#[cfg(test)]
mod tests {
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
