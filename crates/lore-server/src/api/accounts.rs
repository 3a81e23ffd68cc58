//! Accounts, sessions and the caller's profile.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::*;
use crate::auth::Principal;
use crate::error::{ApiResult, Json};
use crate::service;
use crate::state::AppState;

pub(crate) async fn register(
    State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, Json(req): Json<service::RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::register(&state, req, client(&headers, ip)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn login(
    State(state): State<AppState>, PeerIp(ip): PeerIp, headers: HeaderMap, Json(req): Json<service::LoginRequest>,
) -> ApiResult<Json<service::AuthResponse>> {
    Ok(Json(service::login(&state, req, client(&headers, ip)).await?))
}

pub(crate) async fn logout(State(state): State<AppState>, principal: Principal) -> ApiResult<StatusCode> {
    service::logout(&state, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn me(principal: Principal) -> ApiResult<Json<service::MeResponse>> {
    principal.require(lore_core::model::Scope::Read)?;
    Ok(Json(service::me(&principal)))
}
