//! Agents' configuration: creation, validation of models and knowledge bases, edits.

use std::collections::HashSet;
use std::str::FromStr;

use lore_core::agent::{Agent, ConversationMode};
use lore_core::error::{Code, Error};
use lore_core::model::{Id, Scope, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, error};
use crate::service::not_found;
use crate::state::AppState;

pub(crate) fn default_agent_type() -> String {
    "qa".into()
}
pub(crate) fn default_provider() -> String {
    "extractive".into()
}
pub(crate) fn empty_object() -> Value {
    json!({})
}
pub(crate) fn default_max_documents() -> i64 {
    5
}
pub(crate) fn yes() -> bool {
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

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    error(Code::InvalidAgentConfig, message)
}

pub(crate) fn range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str, value: Option<T>, min: T, max: T,
) -> ApiResult<()> {
    match value {
        Some(v) if v < min || v > max => Err(invalid(format!("{field} must be between {min} and {max}"))),
        _ => Ok(()),
    }
}

/// The placeholders of a prompt template: `{name}` with a lower-case identifier.
pub(crate) fn placeholders(template: &str) -> Vec<&str> {
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

pub(crate) fn validate(spec: &AgentSpec) -> ApiResult<()> {
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
    if number("rewrite_follow_ups").is_some_and(|v| !v.is_boolean() && *v != "model") {
        return Err(invalid("model parameter rewrite_follow_ups must be true (by rule), \"model\" or false"));
    }
    if number("multi_query").is_some_and(|v| v.as_u64().is_none_or(|n| n > super::query::MAX_PARAPHRASES)) {
        return Err(invalid(format!("model parameter multi_query must be 0 to {}", super::query::MAX_PARAPHRASES)));
    }
    if number("hyde").is_some_and(|v| !v.is_boolean()) {
        return Err(invalid("model parameter hyde must be true or false"));
    }
    match number("rerank") {
        None | Some(Value::Bool(_)) => {}
        Some(config) => {
            let config: lore_core::model::RerankConfig =
                serde_json::from_value(config.clone()).map_err(|e| invalid(format!("model parameter rerank: {e}")))?;
            crate::service::check_rerank(&config).map_err(|e| invalid(format!("model parameter {}", e.message)))?;
        }
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
pub(crate) fn price_of(value: &Value) -> Result<lore_llm::Price, String> {
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
pub(crate) fn seal_parameters(state: &AppState, params: &mut Value, previous: Option<&Value>) -> ApiResult<()> {
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

pub(crate) async fn check_links(state: &AppState, principal: &Principal, spec: &AgentSpec) -> ApiResult<()> {
    let user = principal.owner_id();
    for kb in &spec.knowledge_base_ids {
        state.store.get_knowledge_base(user, *kb).await?.ok_or_else(|| not_found(&format!("knowledge base {kb}")))?;
    }
    if let Some(missing) = state.store.missing_agent_links(user, &spec.data_source_ids, &spec.file_type_ids).await? {
        return Err(not_found(&missing));
    }
    Ok(())
}

pub(crate) fn agent_of(spec: AgentSpec, id: Id, user_id: Id, created_by: Option<Id>, created_at: Timestamp) -> Agent {
    Agent {
        id,
        user_id,
        created_by,
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

pub(crate) fn dedup<T: std::hash::Hash + Eq + Copy>(items: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|i| seen.insert(*i)).collect()
}

pub(crate) fn parse_spec(body: Value) -> ApiResult<AgentSpec> {
    if body.get("model_parameters").and_then(|p| p.get("api_key_sealed")).is_some() {
        return Err(invalid("api_key_sealed is Lore's own; give api_key"));
    }
    serde_json::from_value(body).map_err(|e| error(Code::ValidationFailed, format!("invalid agent: {e}")))
}

/// The model's address must pass the outbound policy: a `base_url`, or the provider's default
/// (`llamacpp`'s 127.0.0.1:8080 is Lore's own port unless the operator allows it).
pub(crate) fn check_address(state: &AppState, spec: &AgentSpec) -> ApiResult<()> {
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
    let agent = agent_of(spec, lore_core::new_id(), principal.owner_id(), Some(principal.actor_id()), lore_core::now());
    state.store.insert_agent(&agent).await?;
    Ok(view(state, &agent))
}

pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<Value>> {
    principal.require(Scope::Read)?;
    let agents = state.store.list_agents(principal.owner_id()).await?;
    Ok(agents.iter().filter(|a| agent_within_binding(principal, a)).map(|a| view(state, a)).collect())
}

/// The caller's agent, within the key's binding; any other is not found.
pub(crate) async fn owned(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Agent> {
    state
        .store
        .get_agent(principal.owner_id(), id)
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
    // The audit log names what changed (a new provider key among it), never a value.
    let mut fields: Vec<String> = changes.keys().cloned().collect();
    if let Some(Value::Object(params)) = changes.get("model_parameters") {
        fields.extend(params.keys().map(|k| format!("model_parameters.{k}")));
    }
    let mut merged = serde_json::to_value(spec_of(&current)).map_err(Error::from)?;
    for (key, value) in changes {
        merged[key] = value;
    }
    let mut spec = parse_spec(merged)?;
    validate(&spec)?;
    check_address(state, &spec)?;
    check_links(state, principal, &spec).await?;
    seal_parameters(state, &mut spec.model_parameters, Some(&current.model_parameters))?;
    let agent = agent_of(spec, current.id, current.user_id, current.created_by, current.created_at);
    if !state.store.update_agent(&agent).await? {
        return Err(not_found("agent"));
    }
    let target = crate::audit::target("agent", id);
    crate::audit::record(state, principal, "agent.updated", target, json!({ "fields": fields })).await;
    Ok(view(state, &agent))
}

pub(crate) fn spec_of(agent: &Agent) -> AgentSpec {
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
    if !state.store.delete_agent(principal.owner_id(), id).await? {
        return Err(not_found("agent"));
    }
    crate::audit::record(state, principal, "agent.deleted", crate::audit::target("agent", id), json!({})).await;
    Ok(())
}
