//! Usage, configuration, users and retention: account-wide governance.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use lore_core::error::Code;
use lore_core::model::Id;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, Json, Path, Query, error};
use crate::governance;
use crate::invitations;
use crate::service;
use crate::state::AppState;

pub(crate) async fn change_password(
    State(state): State<AppState>, principal: Principal, Json(req): Json<governance::PasswordChange>,
) -> ApiResult<StatusCode> {
    governance::change_password(&state, &principal, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn revoke_sessions(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let revoked = governance::revoke_all_sessions(&state, &principal).await?;
    Ok(Json(json!({ "revoked": revoked })))
}

pub(crate) async fn get_config(
    State(state): State<AppState>, principal: Principal,
) -> ApiResult<Json<governance::ConfigView>> {
    Ok(Json(governance::get_config(&state, &principal).await?))
}

pub(crate) async fn put_config(
    State(state): State<AppState>, principal: Principal, Json(req): Json<governance::ConfigUpdate>,
) -> ApiResult<Json<governance::ConfigView>> {
    Ok(Json(governance::put_config(&state, &principal, req).await?))
}

pub(crate) async fn api_usage(
    State(state): State<AppState>, principal: Principal, Query(params): Query<governance::UsageParams>,
) -> ApiResult<Json<governance::UsageResponse>> {
    Ok(Json(governance::api_usage(&state, &principal, params).await?))
}

pub(crate) async fn list_users(
    State(state): State<AppState>, principal: Principal, Query(params): Query<governance::UserListParams>,
) -> ApiResult<Json<Value>> {
    let users = governance::list_users(&state, &principal, params).await?;
    Ok(Json(json!({ "data": users })))
}

pub(crate) async fn update_user(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Json(req): Json<governance::UserUpdate>,
) -> ApiResult<Json<lore_core::model::User>> {
    Ok(Json(governance::set_user_active(&state, &principal, id, req).await?))
}

pub(crate) async fn create_invitation(
    State(state): State<AppState>, principal: Principal, Json(req): Json<invitations::CreateInvitation>,
) -> ApiResult<impl IntoResponse> {
    let created = invitations::create(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn list_invitations(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let invitations = invitations::list(&state, &principal).await?;
    Ok(Json(json!({ "data": invitations })))
}

pub(crate) async fn list_nodes(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_superuser()?;
    Ok(Json(json!({ "data": crate::nodes::alive(state.store.as_ref()).await? })))
}

pub(crate) async fn server_overview(
    State(state): State<AppState>, principal: Principal,
) -> ApiResult<Json<crate::health::ServerOverview>> {
    principal.require_superuser()?;
    Ok(Json(crate::health::overview(&state).await?))
}

pub(crate) async fn revoke_invitation(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    invitations::revoke(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_file_types(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let types = service::list_file_types(&state, &principal).await?;
    Ok(Json(json!({ "data": types })))
}

pub(crate) async fn create_file_type(
    State(state): State<AppState>, principal: Principal, Json(req): Json<service::FileTypeRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::create_file_type(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn update_file_type(
    State(state): State<AppState>, principal: Principal, Path(id): Path<i64>, Json(req): Json<service::FileTypeRequest>,
) -> ApiResult<Json<lore_core::model::FileType>> {
    Ok(Json(service::update_file_type(&state, &principal, id, req).await?))
}

pub(crate) async fn chunking_from_description(
    State(state): State<AppState>, principal: Principal, Json(req): Json<crate::describe::DescriptionRequest>,
) -> ApiResult<Json<crate::describe::DescriptionResponse>> {
    Ok(Json(crate::describe::from_description(&state, &principal, req).await?))
}

/// The largest MCP message taken over HTTP, as for Lore's other JSON bodies.
pub(crate) const MCP_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// MCP over streamable HTTP: Lore authenticates the caller, rmcp answers the JSON-RPC.
pub(crate) async fn mcp_http(
    State(state): State<AppState>, principal: Principal, request: axum::extract::Request,
) -> axum::response::Response {
    use tower::ServiceExt;
    // The transport would read a body of any size; JSON-RPC messages are small. A body that is
    // not JSON gets Lore's own code (both found by the hostile-body campaign).
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MCP_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let message = format!("an MCP message may be at most {MCP_BODY_LIMIT} bytes");
            return error(Code::PayloadTooLarge, message).into_response();
        }
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return error(Code::MalformedJson, format!("the body is not valid JSON: {e}")).into_response();
    }
    let mut request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    request.extensions_mut().insert(principal);
    let response = match crate::mcp::http_service(state).oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    };
    // The transport refuses malformed requests in plain text; Lore's clients get its JSON errors
    // with stable codes (found by the schemathesis campaign).
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::NOT_ACCEPTABLE => Code::NotAcceptable,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        _ => Code::InvalidBody,
    };
    let message = if detail.is_empty() { format!("the MCP request was refused ({status})") } else { detail };
    error(code, message).into_response()
}

pub(crate) async fn audit_log(
    State(state): State<AppState>, principal: Principal, Query(params): Query<crate::audit::AuditParams>,
) -> ApiResult<Json<Value>> {
    let entries = crate::audit::own(&state, &principal, params).await?;
    Ok(Json(json!({ "data": entries })))
}

pub(crate) async fn admin_audit_log(
    State(state): State<AppState>, principal: Principal, Query(params): Query<crate::audit::AuditParams>,
) -> ApiResult<Json<Value>> {
    let entries = crate::audit::all(&state, &principal, params).await?;
    Ok(Json(json!({ "data": entries })))
}
