//! Search, evaluations of it, and chunking previews.

use axum::extract::State;
use lore_core::error::Code;
use lore_core::model::Id;

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path, error};
use crate::service;
use crate::state::AppState;

pub(crate) async fn search(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    let (query, knowledge_base_ids) = req.into_query()?;
    if knowledge_base_ids.is_some() {
        return Err(error(Code::ValidationFailed, "knowledge_base_ids belongs to POST /v1/search"));
    }
    Ok(Json(service::search(&state, &principal, id, query).await?))
}

pub(crate) async fn search_all(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    let (query, knowledge_base_ids) = req.into_query()?;
    Ok(Json(service::search_all(&state, &principal, knowledge_base_ids, query).await?))
}

pub(crate) async fn preview_chunking(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::PreviewRequest>,
) -> ApiResult<Json<service::PreviewResponse>> {
    Ok(Json(service::preview_chunking(&state, &principal, req).await?))
}

pub(crate) async fn create_evaluation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
    Json(req): Json<crate::evaluations::EvaluationRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<lore_core::model::Evaluation>)> {
    let run = crate::evaluations::create(&state, &principal, id, req).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(run)))
}

pub(crate) async fn draft_evaluation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
    Json(req): Json<crate::evaluations::DraftRequest>,
) -> ApiResult<Json<crate::evaluations::Draft>> {
    Ok(Json(crate::evaluations::draft(&state, &principal, id, req).await?))
}

pub(crate) async fn list_evaluations(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<serde_json::Value>> {
    let runs = crate::evaluations::list(&state, &principal, id).await?;
    Ok(Json(serde_json::json!({ "data": runs })))
}

pub(crate) async fn get_evaluation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Evaluation>> {
    Ok(Json(crate::evaluations::get(&state, &principal, id).await?))
}
