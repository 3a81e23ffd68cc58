//! Search and chunking previews.

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path};
use crate::service;
use crate::state::AppState;
use axum::extract::State;
use lore_core::model::Id;

pub(crate) async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    Ok(Json(service::search(&state, &principal, id, req).await?))
}

pub(crate) async fn search_all(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    Ok(Json(service::search_all(&state, &principal, req).await?))
}

pub(crate) async fn preview_chunking(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::PreviewRequest>,
) -> ApiResult<Json<service::PreviewResponse>> {
    Ok(Json(service::preview_chunking(&state, &principal, req).await?))
}
