//! Documents: uploads registered, listed, read, deleted and restored.

use std::path::Path;

use chrono::Duration as ChronoDuration;
use lore_core::blob::key_for_hash;
use lore_core::chunking::ChunkingConfig;
use lore_core::error::{Code, Error};
use lore_core::model::*;
use lore_core::store::Upload;
use lore_ingest::detect::FileKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::*;
use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::state::AppState;

/// An upload whose bytes are staged on disk, hashed and measured, waiting to be registered.
pub struct StagedUpload<'a> {
    pub path: &'a Path,
    pub filename: String,
    pub sha256: String,
    pub size: u64,
    /// The first bytes, for type detection.
    pub head: Vec<u8>,
    pub chunking_config: Option<Value>,
    pub metadata: Option<Value>,
    /// The data source it was pulled from, if any.
    pub data_source_id: Option<Id>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    #[serde(flatten)]
    pub document: Document,
    pub duplicate: bool,
}

/// Checks that the caller may upload into a knowledge base, before any byte is read.
pub async fn authorize_upload(state: &AppState, principal: &Principal, kb_id: Id) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Upload)?;
    let kb = owned_kb(state, principal, kb_id).await?;
    if kb.status == KbStatus::Archived {
        return Err(error(
            Code::KnowledgeBaseArchived,
            "this knowledge base is archived; reactivate it to add documents",
        ));
    }
    Ok(kb)
}

/// Registers staged bytes as a document of `user_id` (the caller was authorised already).
pub async fn register_upload(
    state: &AppState, user_id: Id, kb: &KnowledgeBase, upload: StagedUpload<'_>,
) -> ApiResult<UploadResponse> {
    let filename = sanitize_filename(&upload.filename);
    if upload.size == 0 {
        return Err(error(Code::EmptyFile, "the uploaded file is empty"));
    }
    // One read of the user's configuration serves both the chunking defaults and the retention.
    let user_config = state.store.get_user_config(user_id).await?.unwrap_or_else(UserConfig::initial);
    let chunking_config = match upload.chunking_config {
        Some(value) => {
            let config = ChunkingConfig::from_value(value)?;
            config.to_strategy(&user_config.defaults())?;
            Some(config)
        }
        None => None,
    };
    let metadata = match upload.metadata {
        Some(Value::Object(map)) => Value::Object(map),
        Some(_) => return Err(error(Code::ValidationFailed, "metadata must be a JSON object")),
        None => Value::Object(Map::new()),
    };
    let expires_at = user_config.document_retention_days.map(|days| lore_core::now() + ChronoDuration::days(days));
    let detected = lore_ingest::detect::detect(&filename, &upload.head);
    let file_type = registered_type(state, detected, &filename).await?;
    allowed_model(state, kb, &file_type).await?;
    let key = key_for_hash(&upload.sha256);
    state.blobs.put_file(&key, upload.path).await?;
    let size = i64::try_from(upload.size).map_err(|e| Error::internal(e.to_string()))?;
    let result = state
        .store
        .create_document(NewDocument {
            knowledge_base_id: kb.id,
            user_id,
            uploaded_by: Some(user_id),
            filename,
            file_type: file_type.name.clone(),
            file_type_id: Some(file_type.id),
            file_size: size,
            mime_type: file_type.mime_types.first().cloned().unwrap_or_else(|| detected.mime_type().to_string()),
            file_hash: upload.sha256,
            file_path: key,
            metadata,
            chunking_config,
            expires_at,
            data_source_id: upload.data_source_id,
        })
        .await?;
    Ok(match result {
        Upload::Created(document) => {
            state.jobs_queued.notify_one();
            UploadResponse { document, duplicate: false }
        }
        Upload::Duplicate(document) => UploadResponse { document, duplicate: true },
    })
}

/// The registry entry for an upload: its detected type, or for plain text an entry an
/// administrator registered for the file's extension. Unregistered or inactive: 415.
pub(crate) async fn registered_type(state: &AppState, detected: FileKind, filename: &str) -> ApiResult<FileType> {
    let types = state.store.list_file_types().await?;
    let ext = lore_ingest::detect::extension(filename);
    let by_name = types.iter().find(|t| t.name == detected.name());
    let by_extension =
        || types.iter().find(|t| !ext.is_empty() && t.extensions.iter().any(|e| e.eq_ignore_ascii_case(&ext)));
    let entry = match detected {
        FileKind::Text if !ext.is_empty() && by_name.is_none_or(|t| !t.extensions.contains(&ext)) => {
            by_extension().or(by_name)
        }
        _ => by_name,
    };
    match entry {
        Some(t) if t.is_active => Ok(t.clone()),
        Some(t) => Err(error(Code::UnsupportedFileType, format!("uploads of type '{}' are turned off here", t.name))),
        None if detected == FileKind::Binary("mislabelled") => Err(error(
            Code::UnsupportedFileType,
            format!("the file is named .{ext} but its content is not a .{ext} file"),
        )),
        None => Err(error(
            Code::UnsupportedFileType,
            format!("'{}' files are not supported; GET /v1/file-types lists what is", detected.name()),
        )),
    }
}

/// A file type that names its allowed embedding models (`FileType.embedding_models`; none: any)
/// refuses a knowledge base embedding with another, before anything is stored.
pub(crate) async fn allowed_model(state: &AppState, kb: &KnowledgeBase, file_type: &FileType) -> ApiResult<()> {
    if file_type.embedding_models.is_empty() {
        return Ok(());
    }
    let Some(config) = crate::embedding::config_for(state, kb).await? else { return Ok(()) };
    let space = lore_embed::Registry::space_of(&config).map_err(crate::embedding::to_error)?;
    let model = space.split_once('/').map_or(space.as_str(), |(_, model)| model);
    if file_type.embedding_models.iter().any(|m| m.trim() == space || m.trim() == model) {
        return Ok(());
    }
    Err(error(
        Code::EmbeddingModelNotAllowed,
        format!(
            "'{}' files may only be embedded with {}; this knowledge base embeds with {space}",
            file_type.name,
            file_type.embedding_models.join(", ")
        ),
    ))
}

/// The last path component, without control characters; never empty.
pub(crate) fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let clean = clean.trim();
    if clean.is_empty() { "upload".to_string() } else { clean.to_string() }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDocumentsParams {
    pub status: Option<DocStatus>,
    #[serde(default)]
    pub include_deleted: bool,
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub limit: Option<u32>,
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub offset: Option<u32>,
}

pub async fn list_documents(
    state: &AppState, principal: &Principal, kb_id: Id, params: ListDocumentsParams,
) -> ApiResult<(Vec<Document>, i64, i64)> {
    principal.require(Scope::Read)?;
    let kb = readable_kb(state, principal, kb_id).await?;
    let limit = i64::from(params.limit.unwrap_or(50).clamp(1, 1000));
    let offset = i64::from(params.offset.unwrap_or(0));
    let query = DocumentListQuery { status: params.status, include_deleted: params.include_deleted, limit, offset };
    let docs = state.store.list_documents(kb.user_id, kb_id, &query).await?;
    Ok((docs, limit, offset))
}

pub(crate) async fn owned_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    let doc = state.store.get_document(principal.owner_id(), id).await?.ok_or_else(|| not_found("document"))?;
    principal.require_knowledge_base(doc.knowledge_base_id)?;
    Ok(doc)
}

/// A document the caller may read: their workspace's own, or one in a knowledge base shared into
/// it (read-only: changes go through [`owned_document`]). Its `user_id` names where it lives.
pub(crate) async fn readable_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    if let Some(doc) = state.store.get_document(principal.owner_id(), id).await? {
        principal.require_knowledge_base(doc.knowledge_base_id)?;
        return Ok(doc);
    }
    if principal.bound_knowledge_base().is_none() {
        let shared = state.store.shared_with(principal.owner_id()).await?;
        let mut owners: Vec<Id> = shared.iter().map(|kb| kb.user_id).collect();
        owners.sort_unstable();
        owners.dedup();
        for owner in owners {
            if let Some(doc) = state.store.get_document(owner, id).await?
                && shared.iter().any(|kb| kb.id == doc.knowledge_base_id)
            {
                return Ok(doc);
            }
        }
    }
    Err(not_found("document"))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    #[serde(flatten)]
    pub document: Document,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub content: Option<DocumentContent>,
}

pub async fn get_document(
    state: &AppState, principal: &Principal, id: Id, include_content: bool,
) -> ApiResult<DocumentView> {
    principal.require(Scope::Read)?;
    let document = readable_document(state, principal, id).await?;
    let content = if include_content { state.store.document_content(document.user_id, id).await? } else { None };
    Ok(DocumentView { document, content })
}

pub async fn delete_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    principal.require(Scope::Delete)?;
    let doc = owned_document(state, principal, id).await?;
    if doc.soft_deleted_at.is_some() {
        return Err(not_found("document"));
    }
    let deleted = state
        .store
        .soft_delete_document(principal.owner_id(), id, lore_core::now())
        .await?
        .ok_or_else(|| not_found("document"))?;
    let details = serde_json::json!({"filename": deleted.filename, "knowledge_base_id": deleted.knowledge_base_id});
    crate::audit::record(state, principal, "document.deleted", crate::audit::target("document", id), details).await;
    Ok(deleted)
}

pub async fn restore_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    principal.require(Scope::Delete)?;
    owned_document(state, principal, id).await?;
    let restored =
        state.store.restore_document(principal.owner_id(), id).await?.ok_or_else(|| not_found("document"))?;
    let details = serde_json::json!({"filename": restored.filename, "knowledge_base_id": restored.knowledge_base_id});
    crate::audit::record(state, principal, "document.restored", crate::audit::target("document", id), details).await;
    Ok(restored)
}

pub async fn document_chunks(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<Chunk>> {
    principal.require(Scope::Read)?;
    let doc = readable_document(state, principal, id).await?;
    Ok(state.store.list_chunks(doc.user_id, id).await?)
}
