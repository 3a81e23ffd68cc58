//! The HTTP surface: handlers extract, call service functions, and shape the answer. The upload
//! handler alone does more, because it streams the multipart body to a staging file itself.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Router, middleware};
use lore_core::error::{Code, Error};
use lore_core::model::Id;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::agents;
use crate::auth::{Principal, client_ip};
use crate::chat;
use crate::error::{ApiError, ApiResult, Json, Path, Query, error};
use crate::governance;
use crate::invitations;
use crate::metrics;
use crate::service::{self, ClientInfo};
use crate::state::AppState;
use crate::usage;

/// Largest non-file multipart field (chunking_config, metadata).
const MAX_FIELD_BYTES: usize = 1024 * 1024;
const HEAD_BYTES: usize = 8192;

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
        .route("/search", post(search_all))
        .route("/documents/{id}", get(get_document).delete(delete_document))
        .route("/documents/{id}/chunks", get(document_chunks).post(add_chunk))
        .route("/chunks/{id}", get(get_chunk).patch(update_chunk))
        .route("/documents/{id}/file", get(document_file))
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

async fn route_not_found() -> ApiError {
    error(Code::RouteNotFound, "no such endpoint")
}

/// axum answers an unsupported method with an empty 405; give it the contract's body.
async fn method_not_allowed(response: axum::response::Response) -> axum::response::Response {
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

async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::json())
}

async fn api_docs() -> impl IntoResponse {
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

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
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

// ------------------------------------------------------------------------------------ accounts

async fn register(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    Json(req): Json<service::RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::register(&state, req, client(&headers, ip)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn login(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    Json(req): Json<service::LoginRequest>,
) -> ApiResult<Json<service::AuthResponse>> {
    Ok(Json(service::login(&state, req, client(&headers, ip)).await?))
}

async fn logout(State(state): State<AppState>, principal: Principal) -> ApiResult<StatusCode> {
    service::logout(&state, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(principal: Principal) -> ApiResult<Json<service::MeResponse>> {
    principal.require(lore_core::model::Scope::Read)?;
    Ok(Json(service::me(&principal)))
}

// ------------------------------------------------------------------------------------ API keys

async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::CreateKeyRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::create_api_key(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list_keys(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let keys = service::list_api_keys(&state, &principal).await?;
    Ok(Json(json!({ "data": keys })))
}

async fn update_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<service::UpdateKeyRequest>,
) -> ApiResult<Json<lore_core::model::ApiKey>> {
    Ok(Json(service::update_api_key(&state, &principal, id, req).await?))
}

async fn revoke_key(State(state): State<AppState>, principal: Principal, Path(id): Path<Id>) -> ApiResult<StatusCode> {
    service::revoke_api_key(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------ knowledge bases

async fn create_kb(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::CreateKbRequest>,
) -> ApiResult<impl IntoResponse> {
    let kb = service::create_knowledge_base(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(kb)))
}

async fn list_kbs(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let kbs = service::list_knowledge_bases(&state, &principal).await?;
    Ok(Json(json!({ "data": kbs })))
}

async fn get_kb(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::KnowledgeBase>> {
    Ok(Json(service::get_knowledge_base(&state, &principal, id).await?))
}

async fn update_kb(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<service::UpdateKbRequest>,
) -> ApiResult<Json<lore_core::model::KnowledgeBase>> {
    Ok(Json(service::update_knowledge_base(&state, &principal, id, req).await?))
}

async fn delete_kb(State(state): State<AppState>, principal: Principal, Path(id): Path<Id>) -> ApiResult<StatusCode> {
    service::delete_knowledge_base(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------ documents

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return error(Code::PayloadTooLarge, "the upload is too large");
    }
    error(Code::InvalidMultipart, format!("invalid multipart body: {}", e.body_text()))
}

/// A staged file that is removed unless it was handed over to the blob store.
struct StagedFile(std::path::PathBuf);

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn read_small_field(mut field: Field<'_>, name: &str) -> ApiResult<Value> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FIELD_BYTES {
            return Err(error(Code::PayloadTooLarge, format!("the '{name}' field is larger than 1 MiB")));
        }
    }
    serde_json::from_slice(&buf).map_err(|e| {
        let code = if name == "chunking_config" { Code::InvalidChunkingConfig } else { Code::ValidationFailed };
        error(code, format!("the '{name}' field is not valid JSON: {e}"))
    })
}

async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    Path(kb_id): Path<Id>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<impl IntoResponse> {
    let kb = service::authorize_upload(&state, &principal, kb_id).await?;
    crate::health::ensure_room(&state)?;
    let mut multipart = multipart.map_err(|e| {
        error(
            Code::InvalidMultipart,
            format!("expected a multipart/form-data body with a 'file' field: {}", e.body_text()),
        )
    })?;
    let limit = state.config.max_upload_bytes;
    let mut staged: Option<(StagedFile, String, String, u64, Vec<u8>)> = None;
    let mut chunking_config = None;
    let mut metadata = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                if staged.is_some() {
                    return Err(error(Code::InvalidMultipart, "send one 'file' field per upload"));
                }
                let filename = field.file_name().unwrap_or("upload").to_string();
                let path = state.blobs.staging_dir().join(format!("{}.part", uuid::Uuid::new_v4()));
                let guard = StagedFile(path.clone());
                let mut file = tokio::fs::File::create(&path).await.map_err(Error::from)?;
                let mut hasher = Sha256::new();
                let mut size: u64 = 0;
                let mut head = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(error(
                            Code::PayloadTooLarge,
                            format!("the file is larger than the limit of {} bytes", limit),
                        ));
                    }
                    if head.len() < HEAD_BYTES {
                        head.extend_from_slice(&chunk[..chunk.len().min(HEAD_BYTES - head.len())]);
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(Error::from)?;
                }
                file.flush().await.map_err(Error::from)?;
                staged = Some((guard, filename, hex::encode(hasher.finalize()), size, head));
            }
            "chunking_config" => chunking_config = Some(read_small_field(field, "chunking_config").await?),
            "metadata" => metadata = Some(read_small_field(field, "metadata").await?),
            other => {
                return Err(error(
                    Code::InvalidMultipart,
                    format!("unknown field '{other}'; expected 'file', 'chunking_config' or 'metadata'"),
                ));
            }
        }
    }
    let Some((guard, filename, sha256, size, head)) = staged else {
        return Err(error(Code::MissingFile, "the multipart body has no 'file' field"));
    };
    let response = service::register_upload(
        &state,
        principal.user_id(),
        &kb,
        service::StagedUpload {
            path: &guard.0,
            filename,
            sha256,
            size,
            head,
            chunking_config,
            metadata,
            data_source_id: None,
        },
    )
    .await?;
    let status = if response.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(response)))
}

async fn list_documents(
    State(state): State<AppState>,
    principal: Principal,
    Path(kb_id): Path<Id>,
    Query(params): Query<service::ListDocumentsParams>,
) -> ApiResult<Json<Value>> {
    let (docs, limit, offset) = service::list_documents(&state, &principal, kb_id, params).await?;
    Ok(Json(json!({ "data": docs, "limit": limit, "offset": offset })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetDocumentParams {
    /// Include the extracted text (`raw_content`, `processed_content`).
    #[serde(default)]
    include_content: bool,
}

async fn get_document(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Query(params): Query<GetDocumentParams>,
) -> ApiResult<Json<service::DocumentView>> {
    Ok(Json(service::get_document(&state, &principal, id, params.include_content).await?))
}

async fn document_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    crate::files::download(&state, &principal, id, &headers).await
}

async fn delete_document(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Document>> {
    Ok(Json(service::delete_document(&state, &principal, id).await?))
}

async fn restore_document(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Document>> {
    Ok(Json(service::restore_document(&state, &principal, id).await?))
}

async fn get_chunk(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Chunk>> {
    Ok(Json(crate::chunks::get_chunk(&state, &principal, id).await?))
}

async fn update_chunk(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<crate::chunks::ChunkUpdate>,
) -> ApiResult<Json<lore_core::model::Chunk>> {
    Ok(Json(crate::chunks::update_chunk(&state, &principal, id, req).await?))
}

async fn add_chunk(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<crate::chunks::NewChunkRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(crate::chunks::add_chunk(&state, &principal, id, req).await?)))
}

async fn document_chunks(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    let chunks = service::document_chunks(&state, &principal, id).await?;
    Ok(Json(json!({ "data": chunks })))
}

// ------------------------------------------------------------------------------------ search & chunking

async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    Ok(Json(service::search(&state, &principal, id, req).await?))
}

async fn search_all(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::SearchRequest>,
) -> ApiResult<Json<service::SearchResponse>> {
    Ok(Json(service::search_all(&state, &principal, req).await?))
}

async fn preview_chunking(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::PreviewRequest>,
) -> ApiResult<Json<service::PreviewResponse>> {
    Ok(Json(service::preview_chunking(&state, &principal, req).await?))
}

// ------------------------------------------------------------------------------------ governance

async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<governance::PasswordChange>,
) -> ApiResult<StatusCode> {
    governance::change_password(&state, &principal, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_sessions(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let revoked = governance::revoke_all_sessions(&state, &principal).await?;
    Ok(Json(json!({ "revoked": revoked })))
}

async fn get_config(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<governance::ConfigView>> {
    Ok(Json(governance::get_config(&state, &principal).await?))
}

async fn put_config(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<governance::ConfigUpdate>,
) -> ApiResult<Json<governance::ConfigView>> {
    Ok(Json(governance::put_config(&state, &principal, req).await?))
}

async fn api_usage(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<governance::UsageParams>,
) -> ApiResult<Json<governance::UsageResponse>> {
    Ok(Json(governance::api_usage(&state, &principal, params).await?))
}

async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<governance::UserListParams>,
) -> ApiResult<Json<Value>> {
    let users = governance::list_users(&state, &principal, params).await?;
    Ok(Json(json!({ "data": users })))
}

async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<governance::UserUpdate>,
) -> ApiResult<Json<lore_core::model::User>> {
    Ok(Json(governance::set_user_active(&state, &principal, id, req).await?))
}

async fn create_invitation(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<invitations::CreateInvitation>,
) -> ApiResult<impl IntoResponse> {
    let created = invitations::create(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list_invitations(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let invitations = invitations::list(&state, &principal).await?;
    Ok(Json(json!({ "data": invitations })))
}

async fn list_nodes(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_superuser()?;
    Ok(Json(json!({ "data": crate::nodes::alive(state.store.as_ref()).await? })))
}

async fn server_overview(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<crate::health::ServerOverview>> {
    principal.require_superuser()?;
    Ok(Json(crate::health::overview(&state).await?))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    invitations::revoke(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_file_types(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let types = service::list_file_types(&state, &principal).await?;
    Ok(Json(json!({ "data": types })))
}

async fn create_file_type(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<service::FileTypeRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = service::create_file_type(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn update_file_type(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    Json(req): Json<service::FileTypeRequest>,
) -> ApiResult<Json<lore_core::model::FileType>> {
    Ok(Json(service::update_file_type(&state, &principal, id, req).await?))
}

async fn chunking_from_description(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<crate::describe::DescriptionRequest>,
) -> ApiResult<Json<crate::describe::DescriptionResponse>> {
    Ok(Json(crate::describe::from_description(&state, &principal, req).await?))
}

/// The largest MCP message taken over HTTP, as for Lore's other JSON bodies.
const MCP_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// MCP over streamable HTTP: Lore authenticates the caller, rmcp answers the JSON-RPC.
async fn mcp_http(
    State(state): State<AppState>,
    principal: Principal,
    request: axum::extract::Request,
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

// ------------------------------------------------------------------------------------ agents

async fn create_agent(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<Value>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(agents::create(&state, &principal, body).await?)))
}

async fn list_agents(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::list(&state, &principal).await? })))
}

async fn get_agent(State(state): State<AppState>, principal: Principal, Path(id): Path<Id>) -> ApiResult<Json<Value>> {
    Ok(Json(agents::get(&state, &principal, id).await?))
}

async fn update_agent(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(agents::update(&state, &principal, id, body).await?))
}

async fn delete_agent(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    agents::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn route_question(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<agents::RouteRequest>,
) -> ApiResult<Json<agents::RouteAnswer>> {
    Ok(Json(agents::route(&state, &principal, req).await?))
}

async fn list_conversations(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<agents::ConversationParams>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::list_conversations(&state, &principal, params).await? })))
}

async fn get_conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::agent::Conversation>> {
    Ok(Json(agents::get_conversation(&state, &principal, id).await?))
}

async fn delete_conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    agents::delete_conversation(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn conversation_messages(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": agents::conversation_messages(&state, &principal, id).await? })))
}

async fn agent_usage(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<agents::AgentUsageParams>,
) -> ApiResult<Json<agents::AgentUsageResponse>> {
    Ok(Json(agents::usage(&state, &principal, params).await?))
}

// ------------------------------------------------------------------------------------ data sources

async fn create_source(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<crate::sources::SourceRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(crate::sources::create(&state, &principal, req).await?)))
}

async fn list_sources(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::sources::list(&state, &principal).await? })))
}

async fn get_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::source::DataSource>> {
    Ok(Json(crate::sources::get(&state, &principal, id).await?))
}

async fn update_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
    Json(req): Json<crate::sources::SourceRequest>,
) -> ApiResult<Json<lore_core::source::DataSource>> {
    Ok(Json(crate::sources::update(&state, &principal, id, req).await?))
}

async fn delete_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    crate::sources::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sync_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, Json(crate::sources::sync_now(&state, &principal, id).await?)))
}

async fn source_syncs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::sources::syncs(&state, &principal, id).await? })))
}

async fn list_notifications(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "data": crate::notify::list(&state, &principal).await? })))
}
