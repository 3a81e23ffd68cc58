//! Knowledge bases.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lore_core::model::Id;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path};
use crate::service;
use crate::state::AppState;

pub(crate) async fn create_kb(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::CreateKbRequest>,
) -> ApiResult<impl IntoResponse> {
    let kb = service::create_knowledge_base(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(kb)))
}

pub(crate) async fn list_kbs(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let kbs = service::list_knowledge_bases(&state, &principal).await?;
    Ok(Json(json!({ "data": kbs })))
}

pub(crate) async fn get_kb(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::KnowledgeBase>> {
    Ok(Json(service::get_knowledge_base(&state, &principal, id).await?))
}

pub(crate) async fn update_kb(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(req): Json<service::UpdateKbRequest>,
) -> ApiResult<Json<lore_core::model::KnowledgeBase>> {
    Ok(Json(service::update_knowledge_base(&state, &principal, id, req).await?))
}

pub(crate) async fn delete_kb(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    service::delete_knowledge_base(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
