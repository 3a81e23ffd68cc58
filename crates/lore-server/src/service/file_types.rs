//! The file-type registry.

use lore_core::error::Code;
use lore_core::model::*;
use serde::Deserialize;

use super::*;
use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTypeRequest {
    pub name: Option<String>,
    pub category: Option<String>,
    pub mime_types: Option<Vec<String>>,
    pub extensions: Option<Vec<String>>,
    pub parsers: Option<Vec<String>>,
    pub embedding_models: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

pub(crate) fn check_parsers(parsers: &Option<Vec<String>>) -> ApiResult<()> {
    if let Some(list) = parsers {
        if list.is_empty() {
            return Err(error(Code::ValidationFailed, "parsers must name at least one parser"));
        }
        if let Some(bad) = list.iter().find(|p| !lore_ingest::detect::is_parser(p)) {
            return Err(error(Code::ValidationFailed, format!("there is no parser named '{bad}'")));
        }
    }
    Ok(())
}

pub(crate) fn lower(list: Option<Vec<String>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase()).collect())
}

pub async fn list_file_types(state: &AppState, _principal: &Principal) -> ApiResult<Vec<FileType>> {
    Ok(state.store.list_file_types().await?)
}

pub async fn create_file_type(state: &AppState, principal: &Principal, req: FileTypeRequest) -> ApiResult<FileType> {
    principal.require_superuser()?;
    let name = req.name.unwrap_or_default().trim().to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(error(Code::ValidationFailed, "name must be letters, digits, '_' or '-'"));
    }
    if req.parsers.is_none() {
        return Err(error(Code::ValidationFailed, "parsers is required, e.g. [\"text\"]"));
    }
    check_parsers(&req.parsers)?;
    let created = state
        .store
        .create_file_type(NewFileType {
            name,
            category: req.category.unwrap_or_else(|| "other".into()),
            mime_types: req.mime_types.unwrap_or_default(),
            extensions: lower(req.extensions).unwrap_or_default(),
            parsers: req.parsers.unwrap_or_default(),
            embedding_models: req.embedding_models.unwrap_or_default(),
            is_active: req.is_active.unwrap_or(true),
        })
        .await?;
    let details = serde_json::json!({"name": created.name, "extensions": created.extensions});
    let target = crate::audit::target("file_type", created.id);
    crate::audit::record_admin(state, principal, "admin.file_type_created", None, target, details).await;
    Ok(created)
}

pub async fn update_file_type(
    state: &AppState, principal: &Principal, id: i64, req: FileTypeRequest,
) -> ApiResult<FileType> {
    principal.require_superuser()?;
    if req.name.is_some() {
        return Err(error(Code::ValidationFailed, "a file type's name cannot change"));
    }
    check_parsers(&req.parsers)?;
    let patch = FileTypePatch {
        category: req.category,
        mime_types: req.mime_types,
        extensions: lower(req.extensions),
        parsers: req.parsers,
        embedding_models: req.embedding_models,
        is_active: req.is_active,
    };
    let updated = state.store.update_file_type(id, patch).await?.ok_or_else(|| not_found("file type"))?;
    let details =
        serde_json::json!({"name": updated.name, "extensions": updated.extensions, "is_active": updated.is_active});
    let target = crate::audit::target("file_type", id);
    crate::audit::record_admin(state, principal, "admin.file_type_updated", None, target, details).await;
    Ok(updated)
}
