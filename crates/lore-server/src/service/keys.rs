//! API keys: created with scopes and a binding, edited, revoked.

use chrono::Duration as ChronoDuration;
use lore_core::error::Code;
use lore_core::model::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::*;
use crate::auth::{self, API_KEY_PREFIX, Principal};
use crate::error::{ApiResult, error};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<Scope>,
    pub knowledge_base_id: Option<Id>,
    pub expires_at: Option<Timestamp>,
    pub expires_in_days: Option<u32>,
    pub rate_limit: Option<u32>,
    pub daily_quota: Option<u32>,
    pub monthly_quota: Option<u32>,
    pub security: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key itself. It is shown here once and never again.
    pub key: String,
    pub api_key: ApiKey,
}

/// The longest life an API key may be given: a hundred years.
pub(crate) const MAX_KEY_DAYS: u32 = 36_500;

pub async fn create_api_key(state: &AppState, principal: &Principal, req: CreateKeyRequest) -> ApiResult<CreatedKey> {
    principal.require_session()?;
    let name = req.name.trim().to_string();
    check_len("name", &name, 1, 100)?;
    if req.scopes.is_empty() {
        return Err(error(Code::InvalidScope, "give the key at least one scope: search, upload, read, delete"));
    }
    let mut scopes = req.scopes.clone();
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    if let Some(kb) = req.knowledge_base_id {
        state.store.get_knowledge_base(principal.owner_id(), kb).await?.ok_or_else(|| not_found("knowledge base"))?;
    }
    let now = lore_core::now();
    let expires_at = match (req.expires_at, req.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(error(Code::ValidationFailed, "give either expires_at or expires_in_days, not both"));
        }
        (Some(at), None) => Some(at),
        (None, Some(days)) if days <= MAX_KEY_DAYS => Some(now + ChronoDuration::days(i64::from(days))),
        (None, Some(_)) => {
            return Err(error(Code::ValidationFailed, format!("expires_in_days must be at most {MAX_KEY_DAYS}")));
        }
        (None, None) => None,
    };
    if expires_at.is_some_and(|at| at <= now) {
        return Err(error(Code::ValidationFailed, "expires_at must be in the future"));
    }
    // Far beyond any key's life, and beyond what every store's time format holds (a key that
    // expired in the year 61147 once broke its owner's key list: found by schemathesis).
    if expires_at.is_some_and(|at| at > now + ChronoDuration::days(i64::from(MAX_KEY_DAYS))) {
        return Err(error(Code::ValidationFailed, format!("expires_at must be within {MAX_KEY_DAYS} days")));
    }
    let security = Value::Object(req.security.unwrap_or_default());
    auth::KeySecurity::parse(&security)?;
    let key = format!("{API_KEY_PREFIX}{}", auth::random_token()?);
    let created = state
        .store
        .create_api_key(NewApiKey {
            user_id: principal.owner_id(),
            created_by: Some(principal.actor_id()),
            knowledge_base_id: req.knowledge_base_id,
            name,
            description: req.description,
            key_hash: auth::token_hash(&key),
            key_prefix: key.chars().take(12).collect(),
            key_suffix: key.chars().skip(key.chars().count() - 4).collect(),
            scopes,
            rate_limit: limit("rate_limit", req.rate_limit)?,
            daily_quota: limit("daily_quota", req.daily_quota)?,
            monthly_quota: limit("monthly_quota", req.monthly_quota)?,
            expires_at,
            security,
        })
        .await?;
    let details =
        json!({"name": created.name, "scopes": created.scopes, "knowledge_base_id": created.knowledge_base_id});
    crate::audit::record(state, principal, "api_key.created", crate::audit::target("api_key", created.id), details)
        .await;
    Ok(CreatedKey { key, api_key: created })
}

/// `PATCH /v1/api-keys/{id}`: a field left out stays as it is; `null` clears a limit, the
/// description or the expiry. Scopes can only be narrowed and the knowledge base a key is bound
/// to cannot change: a wider key is a new key.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    /// A subset of the key's scopes.
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub daily_quota: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub monthly_quota: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<Timestamp>>,
    /// `allowed_ips` and `allowed_origins`, replacing the key's.
    pub security: Option<Map<String, Value>>,
}

pub async fn update_api_key(
    state: &AppState, principal: &Principal, id: Id, req: UpdateKeyRequest,
) -> ApiResult<ApiKey> {
    principal.require_session()?;
    // What the audit log says changed: the fields sent, with the limits and scopes they set.
    let changed = json!({
        "name": req.name.is_some(),
        "description": req.description.is_some(),
        "scopes": req.scopes,
        "rate_limit": req.rate_limit,
        "daily_quota": req.daily_quota,
        "monthly_quota": req.monthly_quota,
        "expires_at": req.expires_at,
        "security": req.security.is_some(),
    });
    let mut key = owned_key(state, principal, id).await?;
    if key.revoked_at.is_some() {
        return Err(error(Code::ValidationFailed, "this API key has been revoked and cannot change; create a new one"));
    }
    if let Some(name) = req.name {
        let name = name.trim().to_string();
        check_len("name", &name, 1, 100)?;
        key.name = name;
    }
    if let Some(description) = req.description {
        if let Some(d) = &description {
            check_len("description", d, 0, 1000)?;
        }
        key.description = description;
    }
    if let Some(mut scopes) = req.scopes {
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        if scopes.is_empty() {
            return Err(error(Code::InvalidScope, "a key keeps at least one scope; revoke it instead"));
        }
        if let Some(wider) = scopes.iter().find(|s| !key.scopes.contains(s)) {
            return Err(error(
                Code::InvalidScope,
                format!("scopes can only be narrowed; this key lacks '{}' (create a new key for it)", wider.as_str()),
            ));
        }
        key.scopes = scopes;
    }
    if let Some(rate_limit) = req.rate_limit {
        key.rate_limit = limit("rate_limit", rate_limit)?;
    }
    if let Some(quota) = req.daily_quota {
        key.daily_quota = limit("daily_quota", quota)?;
    }
    if let Some(quota) = req.monthly_quota {
        key.monthly_quota = limit("monthly_quota", quota)?;
    }
    if let Some(expires_at) = req.expires_at {
        let now = lore_core::now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(error(
                Code::ValidationFailed,
                "expires_at must be in the future (revoke the key to end it now)",
            ));
        }
        if expires_at.is_some_and(|at| at > now + ChronoDuration::days(i64::from(MAX_KEY_DAYS))) {
            return Err(error(Code::ValidationFailed, format!("expires_at must be within {MAX_KEY_DAYS} days")));
        }
        key.expires_at = expires_at;
    }
    if let Some(security) = req.security {
        let security = Value::Object(security);
        auth::KeySecurity::parse(&security)?;
        key.security = security;
    }
    if !state.store.update_api_key(&key).await? {
        return Err(not_found("API key"));
    }
    // This node applies the change at once; the others within the key cache's time to live.
    state.key_cache.forget_key(id);
    crate::audit::record(state, principal, "api_key.updated", crate::audit::target("api_key", id), changed).await;
    let mut key = owned_key(state, principal, id).await?;
    state.limiter.overlay(&mut key, lore_core::now());
    Ok(key)
}

pub async fn list_api_keys(state: &AppState, principal: &Principal) -> ApiResult<Vec<ApiKey>> {
    principal.require_session()?;
    let mut keys = state.store.list_api_keys(principal.owner_id()).await?;
    let now = lore_core::now();
    keys.iter_mut().for_each(|k| state.limiter.overlay(k, now));
    Ok(keys)
}

pub async fn revoke_api_key(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require_session()?;
    if !state.store.revoke_api_key(principal.owner_id(), id, lore_core::now()).await? {
        return Err(not_found("API key"));
    }
    state.key_cache.forget_key(id);
    crate::audit::record(state, principal, "api_key.revoked", crate::audit::target("api_key", id), json!({})).await;
    Ok(())
}

/// A key's rate limit or quota, held to the 32-bit integer the API contract declares (a larger
/// one was accepted on edits: found by schemathesis).
fn limit(field: &str, value: Option<u32>) -> ApiResult<Option<i64>> {
    match value {
        Some(n) if n > i32::MAX as u32 => {
            Err(error(Code::ValidationFailed, format!("{field} must be at most {}", i32::MAX)))
        }
        other => Ok(other.map(i64::from)),
    }
}

/// The principal's key `id` (404 for anyone else's).
async fn owned_key(state: &AppState, principal: &Principal, id: Id) -> ApiResult<ApiKey> {
    let keys = state.store.list_api_keys(principal.owner_id()).await?;
    keys.into_iter().find(|k| k.id == id).ok_or_else(|| not_found("API key"))
}
