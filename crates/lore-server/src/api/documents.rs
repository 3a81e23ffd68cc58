//! Documents: streamed uploads, listing, content, chunks.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use lore_core::error::{Code, Error};
use lore_core::model::Id;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Json, Path, Query, error};
use crate::service;
use crate::state::AppState;

pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return error(Code::PayloadTooLarge, "the upload is too large");
    }
    error(Code::InvalidMultipart, format!("invalid multipart body: {}", e.body_text()))
}

/// A staged file that is removed unless it was handed over to the blob store.
pub(crate) struct StagedFile(std::path::PathBuf);

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) async fn read_small_field(mut field: Field<'_>, name: &str) -> ApiResult<Value> {
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

pub(crate) async fn upload(
    State(state): State<AppState>, principal: Principal, Path(kb_id): Path<Id>,
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
        principal.owner_id(),
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

pub(crate) async fn list_documents(
    State(state): State<AppState>, principal: Principal, Path(kb_id): Path<Id>,
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

pub(crate) async fn get_document(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, Query(params): Query<GetDocumentParams>,
) -> ApiResult<Json<service::DocumentView>> {
    Ok(Json(service::get_document(&state, &principal, id, params.include_content).await?))
}

pub(crate) async fn document_file(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>, headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    crate::files::download(&state, &principal, id, &headers).await
}

pub(crate) async fn document_page(
    State(state): State<AppState>, principal: Principal, Path((id, page)): Path<(Id, u32)>,
) -> ApiResult<axum::response::Response> {
    crate::files::page_image(&state, &principal, id, page).await
}

pub(crate) async fn delete_document(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Document>> {
    Ok(Json(service::delete_document(&state, &principal, id).await?))
}

pub(crate) async fn restore_document(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Document>> {
    Ok(Json(service::restore_document(&state, &principal, id).await?))
}

pub(crate) async fn get_chunk(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<lore_core::model::Chunk>> {
    Ok(Json(crate::chunks::get_chunk(&state, &principal, id).await?))
}

pub(crate) async fn update_chunk(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
    Json(req): Json<crate::chunks::ChunkUpdate>,
) -> ApiResult<Json<lore_core::model::Chunk>> {
    Ok(Json(crate::chunks::update_chunk(&state, &principal, id, req).await?))
}

pub(crate) async fn add_chunk(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
    Json(req): Json<crate::chunks::NewChunkRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(crate::chunks::add_chunk(&state, &principal, id, req).await?)))
}

pub(crate) async fn document_chunks(
    State(state): State<AppState>, principal: Principal, Path(id): Path<Id>,
) -> ApiResult<Json<Value>> {
    let chunks = service::document_chunks(&state, &principal, id).await?;
    Ok(Json(json!({ "data": chunks })))
}
