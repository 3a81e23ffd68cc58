//! The HTTP surface: handlers extract, call service functions, and shape the answer. The upload
//! handler alone does more, because it streams the multipart body to a staging file itself.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Router, middleware};
use lore_core::error::Code;
use serde_json::{Value, json};

use crate::auth::client_ip;
use crate::chat;
use crate::error::{ApiError, ApiResult, Json, error};
use crate::metrics;
use crate::service::ClientInfo;
use crate::state::AppState;
use crate::usage;

mod accounts;
mod agents;
mod documents;
mod governance;
mod keys;
mod knowledge_bases;
mod search;
mod sources;
mod workspaces;

pub(crate) use accounts::*;
pub(crate) use agents::*;
pub(crate) use documents::*;
pub(crate) use governance::*;
pub(crate) use keys::*;
pub(crate) use knowledge_bases::*;
pub(crate) use search::*;
pub(crate) use sources::*;
pub(crate) use workspaces::*;

/// Largest non-file multipart field (chunking_config, metadata).
pub(crate) const MAX_FIELD_BYTES: usize = 1024 * 1024;
pub(crate) const HEAD_BYTES: usize = 8192;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/api-keys", post(create_key).get(list_keys))
        .route("/api-keys/{id}", patch(update_key).delete(revoke_key))
        .route("/knowledge-bases", post(create_kb).get(list_kbs))
        .route("/knowledge-bases/{id}", get(get_kb).patch(update_kb).delete(delete_kb))
        .route(
            "/knowledge-bases/{id}/documents",
            // Uploads are limited by `max_upload_bytes` while streaming, not by the body limit.
            post(upload).layer(DefaultBodyLimit::disable()).get(list_documents),
        )
        .route("/knowledge-bases/{id}/search", post(search))
        .route("/knowledge-bases/{id}/evaluations", post(create_evaluation).get(list_evaluations))
        .route("/knowledge-bases/{id}/evaluations/draft", post(draft_evaluation))
        .route("/evaluations/{id}", get(get_evaluation))
        .route("/search", post(search_all))
        .route("/documents/{id}", get(get_document).delete(delete_document))
        .route("/documents/{id}/chunks", get(document_chunks).post(add_chunk))
        .route("/chunks/{id}", get(get_chunk).patch(update_chunk))
        .route("/documents/{id}/file", get(document_file))
        .route("/documents/{id}/pages/{page}", get(document_page))
        .route("/documents/{id}/restore", post(restore_document))
        .route("/chunking/preview", post(preview_chunking))
        .route("/chunking/from-description", post(chunking_from_description))
        .route("/auth/password", post(change_password))
        .route("/auth/sessions", delete(revoke_sessions))
        .route("/config", get(get_config).put(put_config))
        .route("/usage/api", get(api_usage))
        .route("/usage/agents", get(agent_usage))
        .route("/agents", post(create_agent).get(list_agents))
        .route("/agents/route", post(route_question))
        .route("/agents/{id}", get(get_agent).patch(update_agent).delete(delete_agent))
        .route("/agents/{id}/chat", post(chat::agent_chat))
        .route("/conversations", get(list_conversations))
        .route("/conversations/{id}", get(get_conversation).delete(delete_conversation))
        .route("/conversations/{id}/messages", get(conversation_messages))
        .route("/chat/completions", post(chat::completions))
        .route("/notifications", get(list_notifications))
        .route("/data-sources", post(create_source).get(list_sources))
        .route("/data-sources/{id}", get(get_source).patch(update_source).delete(delete_source))
        .route("/data-sources/{id}/sync", post(sync_source))
        .route("/data-sources/{id}/syncs", get(source_syncs))
        .route("/file-types", get(list_file_types).post(create_file_type))
        .route("/file-types/{id}", patch(update_file_type))
        .route("/admin/users", get(list_users))
        .route("/admin/users/{id}", patch(update_user))
        .route("/admin/invitations", post(create_invitation).get(list_invitations))
        .route("/admin/invitations/{id}", delete(revoke_invitation))
        .route("/admin/nodes", get(list_nodes))
        .route("/admin/server", get(server_overview))
        .route("/admin/audit", get(admin_audit_log))
        .route("/audit", get(audit_log))
        .route("/workspaces", post(create_workspace).get(list_workspaces))
        .route("/workspaces/{id}", get(get_workspace).patch(rename_workspace).delete(delete_workspace))
        .route("/workspaces/{id}/members", get(list_members).post(add_member))
        .route("/workspaces/{id}/members/{user_id}", patch(update_member).delete(remove_member))
        .route("/workspaces/{id}/audit", get(workspace_audit))
        .route("/workspaces/{id}/invitations", post(invite).get(list_invitations_of))
        .route("/workspaces/{id}/invitations/{invitation_id}", delete(revoke_invitation_of))
        .route("/workspaces/join", post(join_workspace))
        .route("/knowledge-bases/{id}/shares", post(share_kb).get(list_kb_shares))
        .route("/knowledge-bases/{id}/shares/{workspace_id}", delete(unshare_kb))
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::authz::enforce))
        .route_layer(middleware::from_fn_with_state(state.clone(), usage::track))
        .route_layer(middleware::from_fn(metrics::track));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::endpoint))
        .route("/mcp", post(mcp_http))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(api_docs))
        .merge(crate::console::router())
        .route_layer(middleware::from_fn(metrics::track))
        .nest("/v1", v1)
        .fallback(route_not_found)
        .layer(middleware::map_response(method_not_allowed))
        .layer(middleware::from_fn_with_state(state.clone(), crate::client_addr::track))
        .with_state(state)
}

pub(crate) async fn route_not_found() -> ApiError {
    error(Code::RouteNotFound, "no such endpoint")
}

/// axum answers an unsupported method with an empty 405; give it the contract's body.
pub(crate) async fn method_not_allowed(response: axum::response::Response) -> axum::response::Response {
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && response.headers().get(header::CONTENT_TYPE).is_none() {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut replaced = error(Code::MethodNotAllowed, "this endpoint does not support that method").into_response();
        if let Some(allow) = allow {
            replaced.headers_mut().insert(header::ALLOW, allow);
        }
        return replaced;
    }
    response
}

pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::json())
}

pub(crate) async fn api_docs() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page's own script and style only; it fetches nothing but /openapi.json.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        crate::openapi::DOCS_HTML,
    )
}

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    crate::health::check(&state).await?;
    let queued = state.store.pending_jobs().await?;
    Ok(Json(json!({"status": "ready", "queued_jobs": queued})))
}

pub(crate) fn client(headers: &HeaderMap, parts_ip: Option<String>) -> ClientInfo {
    ClientInfo {
        ip: parts_ip,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

/// The peer address, when the server was started with connect info.
pub(crate) struct PeerIp(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(client_ip(parts)))
    }
}
