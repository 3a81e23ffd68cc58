//! Agents, conversations and chat.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lore_core::model::Id;
use serde_json::{Value, json};

use crate::agents;
use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path, Query};
use crate::state::AppState;

pub(crate) async fn create_agent(
    State(state): State<AppState>, principal: Principal, Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(agents::create(&state, &principal, body).await?)))
}

pub(crate) async fn list_agents(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::list(&state, &principal).await? })))
}

pub(crate) async fn get_agent(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(agents::get(&state, &principal, id).await?))
}

pub(crate) async fn update_agent(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(agents::update(&state, &principal, id, body).await?))
}

pub(crate) async fn delete_agent(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    agents::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn route_question(
    State(state): State<AppState>, principal: Principal, Json(req): Json<agents::RouteRequest>,
) -> ApiResult<Json<agents::RouteAnswer>> {
    Ok(Json(agents::route(&state, &principal, req).await?))
}

pub(crate) async fn list_conversations(
    State(state): State<AppState>, principal: Principal, Query(params): Query<agents::ConversationParams>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::list_conversations(&state, &principal, params).await? })))
}

pub(crate) async fn get_conversation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::agent::Conversation>> {
    Ok(Json(agents::get_conversation(&state, &principal, id).await?))
}

pub(crate) async fn delete_conversation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    agents::delete_conversation(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn conversation_messages(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::conversation_messages(&state, &principal, id).await? })))
}

pub(crate) async fn agent_usage(
    State(state): State<AppState>, principal: Principal, Query(params): Query<agents::AgentUsageParams>,
) -> ApiResult<Json<agents::AgentUsageResponse>> {
    Ok(Json(agents::usage(&state, &principal, params).await?))
}
