//! A chat turn: retrieval, the prompt, the model's answer with citations, streaming.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use lore_core::agent::{Agent, AgentUsage, ChatMessage, Conversation, ConversationMode};
use lore_core::error::{Code, Error};
use lore_core::model::{ChunkHit, Id, KnowledgeBase, Scope, SearchFilters};
use lore_core::search::SearchMode;
use lore_llm::{ChatEvent, ChatModel, LlmError, Message, Role, Usage};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::query::{self, Queries};
use super::*;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, error};
use crate::service::{SearchQuery, not_found};
use crate::state::AppState;

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
    /// Where the passage stands in its file: `page`, `page_end`, `regions` (`{page, bbox}`, the
    /// box in PDF points or image pixels from the page's top-left corner), `slide`, `sheet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<serde_json::Value>,
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
    /// What was searched, and the model steps that found it (their tokens count in the turn's).
    queries: Queries,
}

/// What an agent said.
pub(crate) struct Said {
    text: String,
    usage: Usage,
    cost: Decimal,
}

/// The caller's agent named by its id or its name.
pub async fn by_id_or_name(state: &AppState, principal: &Principal, agent: &str) -> ApiResult<Agent> {
    let agents = state.store.list_agents(principal.owner_id()).await?;
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
                .get_conversation(principal.owner_id(), cid)
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
                .list_messages(principal.owner_id(), c.id, since)
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

pub(crate) fn check_message(message: &str) -> ApiResult<String> {
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
    state: &AppState, principal: &Principal, agent: Agent, question: String, history: Vec<Message>, started: Instant,
) -> ApiResult<Turn> {
    let model = chat_model(state, &agent).await?;
    let params = &agent.model_parameters;
    let price = match params.get("price").filter(|p| !p.is_null()) {
        Some(p) => Some(price_of(p).map_err(invalid)?),
        None => None,
    };
    // What to search for (super::query): a follow-up rewritten, paraphrases, a hypothetical answer.
    let understand = || query::understand(state, &agent, model.as_deref(), price, &question, &history);
    let (call, queries, passages) = if Queries::need_model(&agent, model.as_deref(), &history) {
        // The model is asked only once the call is counted against the agent's limits.
        let call = reserve_call(state, &agent, model.as_deref()).await;
        let queries = match &call {
            Ok(_) => understand().await,
            Err(_) => Queries::default(),
        };
        let passages = retrieve_all(state, principal, &agent, &queries.searched).await;
        (call, queries, passages)
    } else {
        // Retrieval runs while the call is counted; a refused call's passages are dropped.
        let queries = understand().await;
        let (call, passages) = tokio::join!(
            reserve_call(state, &agent, model.as_deref()),
            retrieve_all(state, principal, &agent, &queries.searched)
        );
        (call, queries, passages)
    };
    let call = call?;
    let prepared = async {
        let passages = passages?;
        let max_tokens = params["max_tokens"].as_u64().map(|n| n as u32);
        let request = lore_llm::ChatRequest {
            messages: assemble(&agent, &question, &passages, history, max_tokens.unwrap_or(DEFAULT_MAX_ANSWER_TOKENS)),
            max_tokens,
            temperature: params["temperature"].as_f64(),
            top_p: params["top_p"].as_f64(),
            json_output: false,
        };
        Ok::<_, ApiError>((passages, request))
    }
    .await;
    let (passages, request) = match prepared {
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
        queries,
    })
}

/// Retrieves for each query and fuses the lists (one query: its list as it is).
async fn retrieve_all(
    state: &AppState, principal: &Principal, agent: &Agent, queries: &[String],
) -> ApiResult<Vec<ChunkHit>> {
    let mut lists = Vec::with_capacity(queries.len());
    for text in queries {
        lists.push(retrieve(state, principal, agent, text).await?);
    }
    Ok(query::fuse(lists, agent.max_documents.clamp(1, 50) as usize))
}

/// The agent's chat model with its key and address, or `None` for the extractive answerer.
pub(crate) async fn chat_model(state: &AppState, agent: &Agent) -> ApiResult<Option<Arc<dyn ChatModel>>> {
    if agent.model_provider == "extractive" {
        return Ok(None);
    }
    let model = agent.model_name.as_deref().unwrap_or_default();
    provider_model(state, agent.user_id, &agent.model_provider, model, &agent.model_parameters).await.map(Some)
}

/// A user's chat model: `params` (an agent's `model_parameters`) may carry a sealed key, an
/// address and timeouts; otherwise the user's configuration gives key and address.
pub async fn provider_model(
    state: &AppState, user_id: Id, provider: &str, model: &str, params: &Value,
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
pub(crate) async fn reserve_call(
    state: &AppState, agent: &Agent, model: Option<&dyn ChatModel>,
) -> ApiResult<AgentUsage> {
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

pub(crate) async fn fail_call(state: &AppState, mut call: AgentUsage, started: Instant, e: &Error) {
    call.response_time = started.elapsed().as_secs_f64();
    call.request_data = json!({"status": "failed", "error": {"code": e.code.as_str(), "message": e.message}});
    crate::metrics::llm_call(call.model_provider.as_deref().unwrap_or_default(), "failed", 0, 0);
    if let Err(e) = state.store.update_agent_call(&call).await {
        tracing::warn!(error = %e, "could not record a failed agent call");
    }
}

/// Hybrid search over what the agent may read (and the caller's key may reach).
pub(crate) async fn retrieve(
    state: &AppState, principal: &Principal, agent: &Agent, question: &str,
) -> ApiResult<Vec<ChunkHit>> {
    let user = principal.owner_id();
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
    // The agent's own rerank stage (`model_parameters.rerank`), `false` for none, else its
    // knowledge base's.
    let rerank = match &agent.model_parameters["rerank"] {
        Value::Bool(false) => Some(None),
        config @ Value::Object(_) => Some(serde_json::from_value(config.clone()).ok()),
        _ => None,
    };
    let mut hits = Vec::new();
    for (_, group) in groups {
        let query = SearchQuery {
            text: question.chars().take(crate::service::MAX_QUERY_CHARS).collect(),
            mode: Some(SearchMode::Hybrid),
            top_k: Some(top_k as u32),
            similarity_threshold: agent.similarity_threshold,
            filters: filters.clone(),
            rerank: rerank.clone(),
            ..Default::default()
        };
        let found = crate::service::run_search(state, principal, group, query).await?;
        // Reranked passages are ordered, and cited, by the reranker's score.
        hits.extend(found.results.into_iter().map(|r| match r.rerank_score {
            Some(score) => ChunkHit { score, ..r.hit },
            None => r.hit,
        }));
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(top_k);
    Ok(hits)
}

/// Answers a turn, sending each piece of the answer to `pieces` as it comes.
pub(crate) async fn generate(
    state: &AppState, turn: &Turn, pieces: Option<&mpsc::Sender<String>>,
) -> Result<Said, ApiError> {
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

/// Answers a turn to the end: the answer, persisted with its citations when the turn belongs to a
/// conversation, and the call accounted. `pieces` receives the answer as it is produced.
pub async fn complete_turn(
    state: &AppState, mut turn: Turn, pieces: Option<&mpsc::Sender<String>>, persist: bool,
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
                metadata: {
                    let mut metadata = json!({
                        "model_provider": turn.agent.model_provider,
                        "model_name": turn.model.as_ref().map(|m| m.model().to_string()),
                        "extractive": extractive,
                        "prompt_tokens": said.usage.prompt_tokens,
                        "completion_tokens": said.usage.completion_tokens,
                    });
                    // What was searched for this answer, and the model steps that found it.
                    if !turn.queries.steps.is_empty() {
                        metadata["query"] = turn.queries.record();
                    }
                    metadata
                },
                citations: citations.clone(),
                created_at: now + ChronoDuration::milliseconds(1),
            },
        ];
        state.store.append_messages(turn.agent.user_id, conversation.id, &exchange).await?;
    }

    let mut call = turn.call.clone();
    call.conversation_id = conversation_id;
    let steps = &turn.queries;
    call.prompt_tokens = (said.usage.prompt_tokens + steps.usage.prompt_tokens) as i64;
    call.completion_tokens = (said.usage.completion_tokens + steps.usage.completion_tokens) as i64;
    call.tokens_used = call.prompt_tokens + call.completion_tokens;
    call.cost = (said.cost + steps.cost).normalize().to_string();
    call.response_time = elapsed;
    call.request_data = json!({
        "status": "ok",
        "message_chars": turn.question.chars().count(),
        "passages": turn.passages.len(),
        "overhead_ms": turn.overhead_ms,
        "estimated_tokens": said.usage.estimated || steps.usage.estimated,
        "stream": pieces.is_some(),
    });
    if !steps.steps.is_empty() || steps.searched.first().is_some_and(|q| *q != turn.question) {
        call.request_data["query"] = steps.record();
    }
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
                    location: c.location,
                })
                .collect(),
        },
        usage: UsageView {
            prompt_tokens: call.prompt_tokens as u64,
            completion_tokens: call.completion_tokens as u64,
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
