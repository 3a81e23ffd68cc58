//! Service functions for the governance surface: the user's configuration (with secrets sealed
//! at rest), usage logs, password and session management, and administrators' user controls.
//! The retention purges themselves run in `maintenance`.

use lore_core::error::{Code, Error};
use lore_core::model::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{self, Credential, Principal};
use crate::error::{ApiError, ApiResult, error};
use crate::secrets::mask;
use crate::service::{double_option, not_found};
use crate::state::AppState;

// ------------------------------------------------------------------------------------ configuration

/// `GET /v1/config`: the user's defaults; secrets only as masks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigView {
    pub default_embedding_model: Option<String>,
    pub default_chunk_size: Option<i64>,
    pub default_chunk_overlap: Option<i64>,
    pub document_retention_days: Option<i64>,
    pub conversation_retention_days: Option<i64>,
    pub default_similarity_threshold: Option<f64>,
    pub max_search_results: Option<i64>,
    pub sync_notifications: bool,
    pub error_notifications: bool,
    pub openai_api_key: Option<String>,
    pub anthropic_api_key: Option<String>,
    pub cohere_api_key: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub cohere_base_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub updated_at: Option<Timestamp>,
}

/// `PUT /v1/config`: a field left out stays as it is; `null` clears it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    #[serde(default, deserialize_with = "double_option")]
    pub default_embedding_model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub default_chunk_size: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub default_chunk_overlap: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub document_retention_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub conversation_retention_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub default_similarity_threshold: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_search_results: Option<Option<i64>>,
    pub sync_notifications: Option<bool>,
    pub error_notifications: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub openai_api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub anthropic_api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub cohere_api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub openai_base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub anthropic_base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub cohere_base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub webhook_secret: Option<Option<String>>,
}

fn masked(state: &AppState, sealed: &Option<String>) -> ApiResult<Option<String>> {
    sealed.as_deref().map(|s| state.master_key.open(s).map(|plain| mask(&plain))).transpose().map_err(ApiError::from)
}

fn view(state: &AppState, c: UserConfig) -> ApiResult<ConfigView> {
    Ok(ConfigView {
        openai_api_key: masked(state, &c.openai_api_key)?,
        anthropic_api_key: masked(state, &c.anthropic_api_key)?,
        cohere_api_key: masked(state, &c.cohere_api_key)?,
        webhook_secret: masked(state, &c.webhook_secret)?,
        default_embedding_model: c.default_embedding_model,
        default_chunk_size: c.default_chunk_size,
        default_chunk_overlap: c.default_chunk_overlap,
        document_retention_days: c.document_retention_days,
        conversation_retention_days: c.conversation_retention_days,
        default_similarity_threshold: c.default_similarity_threshold,
        max_search_results: c.max_search_results,
        sync_notifications: c.sync_notifications,
        error_notifications: c.error_notifications,
        openai_base_url: c.openai_base_url,
        anthropic_base_url: c.anthropic_base_url,
        cohere_base_url: c.cohere_base_url,
        webhook_url: c.webhook_url,
        updated_at: c.updated_at,
    })
}

pub async fn get_config(state: &AppState, principal: &Principal) -> ApiResult<ConfigView> {
    principal.require_session()?;
    let config = state.store.get_user_config(principal.owner_id()).await?.unwrap_or_else(UserConfig::initial);
    view(state, config)
}

fn range(field: &str, value: Option<i64>, min: i64, max: i64) -> ApiResult<()> {
    match value {
        Some(v) if v < min || v > max => {
            Err(error(Code::ValidationFailed, format!("{field} must be between {min} and {max}")))
        }
        _ => Ok(()),
    }
}

fn url(field: &str, value: &Option<String>) -> ApiResult<()> {
    match value {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 2048 => {
            Err(error(Code::ValidationFailed, format!("{field} must be an http(s) URL")))
        }
        _ => Ok(()),
    }
}

impl ConfigUpdate {
    /// The names of the fields this update sets: what the audit log records, never the values.
    fn fields(&self) -> Vec<&'static str> {
        [
            ("default_embedding_model", self.default_embedding_model.is_some()),
            ("default_chunk_size", self.default_chunk_size.is_some()),
            ("default_chunk_overlap", self.default_chunk_overlap.is_some()),
            ("document_retention_days", self.document_retention_days.is_some()),
            ("conversation_retention_days", self.conversation_retention_days.is_some()),
            ("default_similarity_threshold", self.default_similarity_threshold.is_some()),
            ("max_search_results", self.max_search_results.is_some()),
            ("sync_notifications", self.sync_notifications.is_some()),
            ("error_notifications", self.error_notifications.is_some()),
            ("openai_api_key", self.openai_api_key.is_some()),
            ("anthropic_api_key", self.anthropic_api_key.is_some()),
            ("cohere_api_key", self.cohere_api_key.is_some()),
            ("openai_base_url", self.openai_base_url.is_some()),
            ("anthropic_base_url", self.anthropic_base_url.is_some()),
            ("cohere_base_url", self.cohere_base_url.is_some()),
            ("webhook_url", self.webhook_url.is_some()),
            ("webhook_secret", self.webhook_secret.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

pub async fn put_config(state: &AppState, principal: &Principal, update: ConfigUpdate) -> ApiResult<ConfigView> {
    principal.require_session()?;
    let fields = update.fields();
    let mut c = state.store.get_user_config(principal.owner_id()).await?.unwrap_or_else(UserConfig::initial);
    // A default model this server cannot use is refused now, not by every later upload.
    if let Some(Some(model)) = &update.default_embedding_model
        && !model.trim().is_empty()
    {
        let config = lore_embed::EmbeddingConfig::from_shorthand(model.trim());
        let value = serde_json::to_value(&config).map_err(|e| lore_core::error::Error::internal(e.to_string()))?;
        crate::embedding::check_config(state, &value)?;
    }
    let seal = |secret: Option<Option<String>>, current: Option<String>| -> ApiResult<Option<String>> {
        match secret {
            None => Ok(current),
            Some(None) => Ok(None),
            Some(Some(plain)) if plain.trim().is_empty() => Ok(None),
            Some(Some(plain)) => Ok(Some(state.master_key.seal(plain.trim())?)),
        }
    };
    macro_rules! apply {
        ($($field:ident),*) => { $( if let Some(v) = update.$field { c.$field = v; } )* };
    }
    apply!(
        default_embedding_model,
        default_chunk_size,
        default_chunk_overlap,
        document_retention_days,
        conversation_retention_days,
        default_similarity_threshold,
        max_search_results,
        openai_base_url,
        anthropic_base_url,
        cohere_base_url,
        webhook_url
    );
    if let Some(v) = update.sync_notifications {
        c.sync_notifications = v;
    }
    if let Some(v) = update.error_notifications {
        c.error_notifications = v;
    }
    c.openai_api_key = seal(update.openai_api_key, c.openai_api_key.take())?;
    c.anthropic_api_key = seal(update.anthropic_api_key, c.anthropic_api_key.take())?;
    c.cohere_api_key = seal(update.cohere_api_key, c.cohere_api_key.take())?;
    c.webhook_secret = seal(update.webhook_secret, c.webhook_secret.take())?;

    range("default_chunk_size", c.default_chunk_size, 1, lore_core::chunking::MAX_CHUNK_SIZE as i64)?;
    range("default_chunk_overlap", c.default_chunk_overlap, 0, lore_core::chunking::MAX_CHUNK_SIZE as i64)?;
    if let (Some(size), Some(overlap)) = (c.default_chunk_size, c.default_chunk_overlap)
        && overlap >= size
    {
        return Err(error(Code::ValidationFailed, "default_chunk_overlap must be smaller than default_chunk_size"));
    }
    range("document_retention_days", c.document_retention_days, 1, 36500)?;
    range("conversation_retention_days", c.conversation_retention_days, 1, 36500)?;
    range("max_search_results", c.max_search_results, 1, i64::from(crate::service::MAX_TOP_K))?;
    if c.default_similarity_threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(error(Code::ValidationFailed, "default_similarity_threshold must be between 0 and 1"));
    }
    url("openai_base_url", &c.openai_base_url)?;
    url("anthropic_base_url", &c.anthropic_base_url)?;
    url("cohere_base_url", &c.cohere_base_url)?;
    url("webhook_url", &c.webhook_url)?;
    // Every address a user names passes the outbound policy when it is saved, and again at
    // every connection (after DNS).
    let policy = state.config.outbound();
    for (name, value) in [
        ("openai_base_url", &c.openai_base_url),
        ("anthropic_base_url", &c.anthropic_base_url),
        ("cohere_base_url", &c.cohere_base_url),
        ("webhook_url", &c.webhook_url),
    ] {
        if let Some(address) = value.as_deref().filter(|a| !a.trim().is_empty()) {
            policy.check_url(address).map_err(|e| error(e.code, format!("{name}: {}", e.message)))?;
        }
    }
    let stored = state.store.put_user_config(principal.owner_id(), &c).await?;
    crate::audit::record(state, principal, "config.updated", None, json!({ "fields": fields })).await;
    view(state, stored)
}

// ------------------------------------------------------------------------------------ usage

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    pub api_key_id: Option<Id>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// `success` or `error`.
    pub status: Option<String>,
    pub endpoint: Option<String>,
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub limit: Option<u32>,
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub offset: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    pub data: Vec<UsageLog>,
    pub daily: Vec<DailyUsage>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn api_usage(state: &AppState, principal: &Principal, params: UsageParams) -> ApiResult<UsageResponse> {
    principal.require(Scope::Read)?;
    let errors = match params.status.as_deref() {
        None => None,
        Some("success") => Some(false),
        Some("error") => Some(true),
        Some(other) => {
            return Err(error(Code::ValidationFailed, format!("status must be 'success' or 'error', not '{other}'")));
        }
    };
    // A key sees its own usage only.
    let api_key_id = match principal.api_key() {
        Some(key) => Some(key.id),
        None => params.api_key_id,
    };
    let limit = i64::from(params.limit.unwrap_or(100).clamp(1, 1000));
    let offset = i64::from(params.offset.unwrap_or(0));
    let query =
        UsageQuery { api_key_id, from: params.from, to: params.to, errors, endpoint: params.endpoint, limit, offset };
    let data = state.store.list_usage_logs(principal.owner_id(), &query).await?;
    let daily = state.store.daily_usage(principal.owner_id(), &query).await?;
    Ok(UsageResponse { data, daily, limit, offset })
}

// ------------------------------------------------------------------------------------ accounts

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the password and ends every other session of the account.
pub async fn change_password(state: &AppState, principal: &Principal, req: PasswordChange) -> ApiResult<()> {
    principal.require_session()?;
    let Some((_, hash)) = state.store.find_login(&principal.user.username).await? else {
        return Err(not_found("user"));
    };
    let current = req.current_password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&current, &hash))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    if !ok {
        return Err(error(Code::InvalidCredentials, "the current password is wrong"));
    }
    let n = req.new_password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(error(Code::ValidationFailed, "new_password must be 8 to 1024 characters long"));
    }
    let new = req.new_password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&new))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    state.store.set_password(principal.actor_id(), &hash).await?;
    let keep = match &principal.credential {
        Credential::Session { token_hash } => Some(token_hash.as_str()),
        Credential::ApiKey(_) => None,
    };
    let ended = state.store.revoke_sessions(principal.actor_id(), keep).await?;
    crate::audit::record_personal(state, principal, "auth.password_changed", json!({"other_sessions_ended": ended}))
        .await;
    Ok(())
}

/// Ends every session of the account, this one included.
pub async fn revoke_all_sessions(state: &AppState, principal: &Principal) -> ApiResult<u64> {
    principal.require_session()?;
    let ended = state.store.revoke_sessions(principal.actor_id(), None).await?;
    crate::audit::record_personal(state, principal, "auth.sessions_revoked", json!({"sessions": ended})).await;
    Ok(ended)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserListParams {
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub limit: Option<u32>,
    // A u32: without this the schema would say int32 and refuse half its range.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub offset: Option<u32>,
}

pub async fn list_users(state: &AppState, principal: &Principal, params: UserListParams) -> ApiResult<Vec<User>> {
    principal.require_superuser()?;
    let limit = i64::from(params.limit.unwrap_or(100).clamp(1, 1000));
    Ok(state.store.list_users(limit, i64::from(params.offset.unwrap_or(0))).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub is_active: bool,
}

/// Activates or deactivates an account. A deactivated account is locked out at once: its
/// sessions end and its keys stop working.
pub async fn set_user_active(state: &AppState, principal: &Principal, id: Id, req: UserUpdate) -> ApiResult<User> {
    principal.require_superuser()?;
    if id == principal.actor_id() && !req.is_active {
        return Err(error(Code::ValidationFailed, "administrators cannot deactivate themselves"));
    }
    let user = state.store.set_user_active(id, req.is_active).await?.ok_or_else(|| not_found("user"))?;
    state.key_cache.forget_user(id);
    let action = if req.is_active { "admin.user_reactivated" } else { "admin.user_deactivated" };
    let target = crate::audit::target("user", id);
    crate::audit::record_admin(state, principal, action, Some(id), target, json!({"username": user.username})).await;
    Ok(user)
}
