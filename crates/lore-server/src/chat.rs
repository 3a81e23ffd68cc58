//! Chat over HTTP: an agent's answer whole or as server-sent events, and the OpenAI-compatible
//! `POST /v1/chat/completions` so that existing OpenAI clients and SDKs talk to an agent unchanged.

use std::convert::Infallible;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use lore_core::error::Code;
use lore_core::model::{Id, Scope};
use lore_llm::{Message, Role};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::agents::{self, ChatAnswer, Turn};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Json, Path, error};
use crate::state::AppState;

fn stream_of(rx: mpsc::Receiver<Event>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}

fn error_body(e: &ApiError) -> Value {
    json!({"error": {"code": e.error.code.as_str(), "message": e.error.message, "type": e.error.kind().as_str()}})
}

/// Runs a turn in the background, handing each piece of the answer to `on_piece` and the outcome
/// to `on_end`; their events go out as server-sent events.
fn stream_turn(
    state: AppState, turn: Turn, persist: bool, on_piece: impl Fn(String) -> Option<Event> + Send + 'static,
    on_end: impl FnOnce(Result<ChatAnswer, ApiError>) -> Vec<Event> + Send + 'static,
) -> Response {
    let (events, rx) = mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let (pieces, mut piece_rx) = mpsc::channel::<String>(64);
        let forward = {
            let events = events.clone();
            tokio::spawn(async move {
                while let Some(piece) = piece_rx.recv().await {
                    if let Some(event) = on_piece(piece) {
                        let _ = events.send(event).await;
                    }
                }
            })
        };
        let result = agents::complete_turn(&state, turn, Some(&pieces), persist).await;
        drop(pieces);
        let _ = forward.await;
        for event in on_end(result) {
            let _ = events.send(event).await;
        }
    });
    Sse::new(stream_of(rx)).keep_alive(KeepAlive::default()).into_response()
}

fn json_event(name: Option<&str>, data: &impl serde::Serialize) -> Event {
    let event = Event::default().json_data(data).unwrap_or_else(|_| Event::default().data("{}"));
    match name {
        Some(name) => event.event(name),
        None => event,
    }
}

/// `POST /v1/agents/{id}/chat`: `{message, conversation_id?, stream?}`. Streamed, the answer comes
/// as `token` events (`{"content": "..."}`), then one `done` event with the whole answer, its
/// citations and usage, or one `error` event.
pub async fn agent_chat(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(req): Json<agents::ChatRequest>,
) -> ApiResult<Response> {
    let turn = agents::begin_chat(&state, &principal, id, &req).await?;
    if !req.stream {
        return Ok(axum::Json(agents::complete_turn(&state, turn, None, true).await?).into_response());
    }
    Ok(stream_turn(
        state,
        turn,
        true,
        |piece| Some(json_event(Some("token"), &json!({"content": piece}))),
        |result| match result {
            Ok(answer) => vec![json_event(Some("done"), &answer)],
            Err(e) => vec![json_event(Some("error"), &error_body(&e))],
        },
    ))
}

/// The text of an OpenAI message's `content`: a string, or an array of parts of which the text ones count.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// `POST /v1/chat/completions`, OpenAI-compatible. `model` is an agent's id or name; the last
/// message must be the user's question, and earlier user/assistant messages are the history
/// (for multi-turn agents). The client's system messages are ignored: the agent's prompt rules.
/// Answers carry the agent's citations in an extra `citations` field.
pub async fn completions(
    State(state): State<AppState>, principal: Principal, Json(body): Json<Value>,
) -> ApiResult<Response> {
    let started = Instant::now();
    principal.require(Scope::Search)?;
    let model = body["model"].as_str().unwrap_or_default().trim().to_string();
    if model.is_empty() {
        return Err(error(Code::ValidationFailed, "model must name one of your agents (its id or name)"));
    }
    let found = agents::by_id_or_name(&state, &principal, &model).await?;
    let agent = agents::chat_agent(&state, &principal, found.id).await?;
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(error(Code::ValidationFailed, "messages must be a non-empty array"));
    };
    let mut conversation: Vec<Message> = Vec::new();
    for m in messages {
        let role = match m["role"].as_str() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system" | "developer" | "tool") => continue,
            _ => return Err(error(Code::ValidationFailed, "every message needs a role: system, user or assistant")),
        };
        conversation.push(Message::new(role, content_text(&m["content"])));
    }
    let Some(last) = conversation.pop().filter(|m| m.role == Role::User) else {
        return Err(error(Code::ValidationFailed, "the last message must be the user's"));
    };
    if agent.conversation_mode == lore_core::agent::ConversationMode::SingleTurn {
        conversation.clear();
    }
    let question = last.content.trim().to_string();
    if question.is_empty() {
        return Err(error(Code::ValidationFailed, "the question must not be empty"));
    }
    let turn = agents::prepare(&state, &principal, agent, question, conversation, started).await?;
    let name = turn.agent().name.clone();
    let id = format!("chatcmpl-{}", lore_core::new_id().simple());
    let created = chrono::Utc::now().timestamp();
    let citations = |a: &ChatAnswer| serde_json::to_value(&a.message.citations).unwrap_or(Value::Null);
    let usage = |a: &ChatAnswer| {
        json!({
            "prompt_tokens": a.usage.prompt_tokens,
            "completion_tokens": a.usage.completion_tokens,
            "total_tokens": a.usage.prompt_tokens + a.usage.completion_tokens,
        })
    };
    if body["stream"].as_bool() != Some(true) {
        let answer = agents::complete_turn(&state, turn, None, false).await?;
        return Ok(axum::Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.message.content}, "finish_reason": "stop"}],
            "usage": usage(&answer),
            "citations": citations(&answer),
        }))
        .into_response());
    }
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunk = {
        let (id, name) = (id.clone(), name.clone());
        move |delta: Value, finish: Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": name,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        }
    };
    let first = chunk.clone();
    let last = chunk.clone();
    Ok(stream_turn(
        state,
        turn,
        false,
        move |piece| Some(json_event(None, &first(json!({"role": "assistant", "content": piece}), Value::Null))),
        move |result| match result {
            Ok(answer) => {
                let mut done = last(json!({}), json!("stop"));
                done["citations"] = citations(&answer);
                let mut events = vec![json_event(None, &done)];
                if include_usage {
                    let mut tail = last(json!({}), Value::Null);
                    tail["choices"] = json!([]);
                    tail["usage"] = usage(&answer);
                    events.push(json_event(None, &tail));
                }
                events.push(Event::default().data("[DONE]"));
                events
            }
            Err(e) => vec![json_event(None, &error_body(&e)), Event::default().data("[DONE]")],
        },
    ))
}
