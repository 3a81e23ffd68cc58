//! Workspaces, their members and their audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lore_core::model::{Id, Member, Share, Workspace};
use serde_json::{Value, json};

use crate::audit::AuditParams;
use crate::auth::Principal;
use lore_core::error::Code;

use crate::error::{ApiResult, Json, Path, Query, error};
use crate::service;
use crate::state::AppState;

pub(crate) async fn create_workspace(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::WorkspaceRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(service::create_workspace(&state, &principal, req).await?)))
}

pub(crate) async fn list_workspaces(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": service::list_workspaces(&state, &principal).await? })))
}

pub(crate) async fn get_workspace(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(service::get_workspace(&state, &principal, id).await?))
}

pub(crate) async fn rename_workspace(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(body): Json<Value>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(service::rename_workspace(&state, &principal, id, body).await?))
}

pub(crate) async fn delete_workspace(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    service::delete_workspace(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_members(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": service::list_members(&state, &principal, id).await? })))
}

pub(crate) async fn add_member(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(service::add_member(&state, &principal, id, body).await?)))
}

/// The member's id is read after the body (as every route reads bodies before looking anything up).
pub(crate) async fn update_member(
    State(state): State<AppState>, principal: Principal, Path((id, user)): Path<(Id, String)>, Json(body): Json<Value>,
) -> ApiResult<Json<Member>> {
    let user = user.parse::<Id>().map_err(|_| error(Code::NotFound, "no such member"))?;
    Ok(Json(service::set_member_role(&state, &principal, id, user, body).await?))
}

pub(crate) async fn remove_member(
    State(state): State<AppState>, principal: Principal, Path((id, user)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    service::remove_member(&state, &principal, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn workspace_audit(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Query(params): Query<AuditParams>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": service::audit_log(&state, &principal, id, params).await? })))
}

pub(crate) async fn share_kb(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json::<Share>(service::share_knowledge_base(&state, &principal, id, body).await?)))
}

pub(crate) async fn list_kb_shares(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": service::list_shares(&state, &principal, id).await? })))
}

pub(crate) async fn unshare_kb(
    State(state): State<AppState>, principal: Principal, Path((id, workspace)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    service::unshare_knowledge_base(&state, &principal, id, workspace).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn invite(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(service::invite(&state, &principal, id, body).await?)))
}

pub(crate) async fn list_invitations_of(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": service::list_invitations(&state, &principal, id).await? })))
}

pub(crate) async fn revoke_invitation_of(
    State(state): State<AppState>, principal: Principal, Path((id, invitation)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    service::revoke_invitation(&state, &principal, id, invitation).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn join_workspace(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::JoinRequest>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(service::join(&state, &principal, req).await?))
}
