//! Knowledge bases and their settings.

use lore_core::error::{Code, Error};
use lore_core::model::*;
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;

use super::*;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, error};
use crate::state::AppState;

pub(crate) fn not_found(what: &str) -> ApiError {
    ApiError::from(Error::not_found(what))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKbRequest {
    pub name: String,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    #[serde(default)]
    pub settings: Option<Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKbRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub icon_url: Option<Option<String>>,
    pub status: Option<KbStatus>,
    pub settings: Option<Value>,
}

/// Parses and checks settings: a chunking configuration must be usable as it stands.
/// Where a knowledge base's embeddings are computed decides where its text, and the owner's
/// provider key, are sent: only a signed-in person may choose it, never an API key.
pub(crate) fn check_embedding_change(
    principal: &Principal, before: Option<&Value>, after: Option<&Value>,
) -> ApiResult<()> {
    if before != after && principal.api_key().is_some() {
        return Err(error(
            Code::SessionRequired,
            "changing settings.embedding_config needs a login session, not an API key (send the current one unchanged to change other settings)",
        ));
    }
    Ok(())
}

pub(crate) fn parse_settings(state: &AppState, value: Value, user: &UserDefaults) -> ApiResult<KbSettings> {
    if !value.is_object() {
        return Err(error(Code::ValidationFailed, "settings must be a JSON object"));
    }
    let settings: KbSettings =
        serde_json::from_value(value).map_err(|e| error(Code::ValidationFailed, format!("invalid settings: {e}")))?;
    if let Some(config) = &settings.chunking_config {
        config.to_strategy(user)?;
    }
    if let Some(config) = &settings.embedding_config {
        crate::embedding::check_config(state, config)?;
    }
    if let Some(config) = settings.search_config.as_ref().and_then(|s| s.rerank.as_ref()) {
        super::rerank::check_available(state, config)?;
    }
    if let Some(config) = &settings.question_generation {
        crate::questions::check(config)?;
    }
    if let Some(config) = &settings.summary_config {
        crate::summaries::check(config)?;
    }
    if let Some(mode) = settings.search_config.as_ref().and_then(|s| s.default_mode.as_deref())
        && !matches!(mode, "fulltext" | "vector" | "hybrid")
    {
        return Err(error(Code::ValidationFailed, "search_config.default_mode must be fulltext, vector or hybrid"));
    }
    Ok(settings)
}

pub async fn create_knowledge_base(
    state: &AppState, principal: &Principal, req: CreateKbRequest,
) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Upload)?;
    if principal.bound_knowledge_base().is_some() {
        return Err(error(
            Code::KnowledgeBaseNotAllowed,
            "an API key bound to one knowledge base cannot create others",
        ));
    }
    let name = req.name.trim().to_string();
    check_len("name", &name, 1, 200)?;
    let defaults = state.store.user_defaults(principal.owner_id()).await?;
    let settings = match req.settings {
        Some(v) => parse_settings(state, v, &defaults)?,
        None => KbSettings::default(),
    };
    check_embedding_change(principal, None, settings.embedding_config.as_ref())?;
    Ok(state
        .store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: principal.owner_id(),
            created_by: Some(principal.actor_id()),
            name,
            description: req.description,
            icon_url: req.icon_url,
            settings,
        })
        .await?)
}

/// The workspace's knowledge bases, then those other workspaces share into it (their
/// `workspace_id` names where they live). A key bound to one knowledge base sees that one.
pub async fn list_knowledge_bases(state: &AppState, principal: &Principal) -> ApiResult<Vec<KnowledgeBase>> {
    principal.require(Scope::Read)?;
    let mut all = state.store.list_knowledge_bases(principal.owner_id()).await?;
    match principal.bound_knowledge_base() {
        Some(bound) => all.retain(|kb| kb.id == bound),
        None => all.extend(state.store.shared_with(principal.owner_id()).await?),
    }
    Ok(all)
}

/// A knowledge base the caller may read and search: their workspace's own, or one shared into it
/// (read-only: every change goes through [`owned_kb`], where a shared one is not found).
pub(crate) async fn readable_kb(state: &AppState, principal: &Principal, id: Id) -> ApiResult<KnowledgeBase> {
    if let Some(kb) = state.store.get_knowledge_base(principal.owner_id(), id).await? {
        principal.require_knowledge_base(id)?;
        return Ok(kb);
    }
    if principal.bound_knowledge_base().is_none() {
        let shared = state.store.shared_with(principal.owner_id()).await?;
        if let Some(kb) = shared.into_iter().find(|kb| kb.id == id) {
            return Ok(kb);
        }
    }
    Err(not_found("knowledge base"))
}

/// The caller's knowledge base, after the key-binding check; another owner's is not found.
pub(crate) async fn owned_kb(state: &AppState, principal: &Principal, id: Id) -> ApiResult<KnowledgeBase> {
    let kb =
        state.store.get_knowledge_base(principal.owner_id(), id).await?.ok_or_else(|| not_found("knowledge base"))?;
    principal.require_knowledge_base(id)?;
    Ok(kb)
}

pub async fn get_knowledge_base(state: &AppState, principal: &Principal, id: Id) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Read)?;
    readable_kb(state, principal, id).await
}

pub async fn update_knowledge_base(
    state: &AppState, principal: &Principal, id: Id, req: UpdateKbRequest,
) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Upload)?;
    let before = owned_kb(state, principal, id).await?;
    if let Some(name) = &req.name {
        check_len("name", name.trim(), 1, 200)?;
    }
    let defaults = state.store.user_defaults(principal.owner_id()).await?;
    // What the audit log says changed: the fields sent, and the settings' top-level keys.
    let changed = json!({
        "name": req.name.is_some(),
        "status": req.status.map(|s| s.as_str()),
        "settings": req.settings.as_ref().and_then(|s| s.as_object()).map(|m| m.keys().cloned().collect::<Vec<_>>()),
    });
    let settings = req.settings.map(|v| parse_settings(state, v, &defaults)).transpose()?;
    if let Some(settings) = &settings {
        check_embedding_change(
            principal,
            before.settings.embedding_config.as_ref(),
            settings.embedding_config.as_ref(),
        )?;
    }
    let patch = KbPatch {
        name: req.name.map(|n| n.trim().to_string()),
        description: req.description,
        icon_url: req.icon_url,
        status: req.status,
        settings,
    };
    let after = state
        .store
        .update_knowledge_base(principal.owner_id(), id, patch)
        .await?
        .ok_or_else(|| not_found("knowledge base"))?;
    let kb_target = crate::audit::target("knowledge_base", id);
    crate::audit::record(state, principal, "knowledge_base.updated", kb_target, changed).await;
    // A new embedding model re-embeds what is there, in the background; search stays on the old
    // space until that completes.
    let target = match crate::embedding::config_for(state, &after).await? {
        Some(config) => Some(lore_embed::Registry::space_of(&config).map_err(crate::embedding::to_error)?),
        None => None,
    };
    if let (Some(current), Some(target)) = (&before.embedding_space, target)
        && *current != target
    {
        state.store.queue_reembedding(id).await?;
        state.jobs_queued.notify_one();
    }
    Ok(after)
}

pub async fn delete_knowledge_base(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require(Scope::Delete)?;
    owned_kb(state, principal, id).await?;
    let paths = state
        .store
        .delete_knowledge_base(principal.owner_id(), id)
        .await?
        .ok_or_else(|| not_found("knowledge base"))?;
    let details = json!({"files": paths.len()});
    crate::audit::record(
        state,
        principal,
        "knowledge_base.deleted",
        crate::audit::target("knowledge_base", id),
        details,
    )
    .await;
    release_blobs(state, paths).await;
    Ok(())
}

/// Deletes blobs no document refers to any more. Failures only leave garbage, so they are logged.
pub(crate) async fn release_blobs(state: &AppState, paths: Vec<String>) {
    for path in paths {
        match state.store.blob_in_use(&path).await {
            Ok(false) => {
                if let Err(e) = state.blobs.delete(&path).await {
                    tracing::warn!(error = %e, "could not delete blob");
                }
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "could not check blob use"),
        }
    }
}
