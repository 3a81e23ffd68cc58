//! API keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lore_core::model::Id;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path};
use crate::service;
use crate::state::AppState;

pub(crate) async fn create_key(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::CreateKeyRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::create_api_key(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn list_keys(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let keys = service::list_api_keys(&state, &principal).await?;
    Ok(Json(json!({ "data": keys })))
}

pub(crate) async fn update_key(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(req): Json<service::UpdateKeyRequest>,
) -> ApiResult<Json<lore_core::model::ApiKey>> {
    Ok(Json(service::update_api_key(&state, &principal, id, req).await?))
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    service::revoke_api_key(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
