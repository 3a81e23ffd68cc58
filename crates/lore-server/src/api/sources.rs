//! Data sources, their syncs, and notifications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lore_core::model::Id;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path};
use crate::state::AppState;

pub(crate) async fn create_source(
    State(state): State<AppState>, principal: Principal, Json(req): Json<crate::sources::SourceRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(crate::sources::create(&state, &principal, req).await?)))
}

pub(crate) async fn list_sources(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::sources::list(&state, &principal).await? })))
}

pub(crate) async fn get_source(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::source::DataSource>> {
    Ok(Json(crate::sources::get(&state, &principal, id).await?))
}

pub(crate) async fn update_source(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
    Json(req): Json<crate::sources::SourceRequest>,
) -> ApiResult<Json<lore_core::source::DataSource>> {
    Ok(Json(crate::sources::update(&state, &principal, id, req).await?))
}

pub(crate) async fn delete_source(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    crate::sources::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn sync_source(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, Json(crate::sources::sync_now(&state, &principal, id).await?)))
}

pub(crate) async fn source_syncs(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::sources::syncs(&state, &principal, id).await? })))
}

pub(crate) async fn list_notifications(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::notify::list(&state, &principal).await? })))
}
