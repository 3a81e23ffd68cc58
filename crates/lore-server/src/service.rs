//! The service functions behind the API: validation, authorisation decisions and orchestration.
//! Handlers translate HTTP to these calls and back.

use std::path::Path;

use chrono::Duration as ChronoDuration;
use lore_core::blob::key_for_hash;
use lore_core::chunking::{self, ChunkingConfig, Strategy};
use lore_core::error::{Code, Error};
use lore_core::model::*;
use lore_core::store::Upload;
use lore_ingest::detect::FileKind;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::auth::{self, API_KEY_PREFIX, Principal, SESSION_PREFIX};
use crate::error::{ApiError, ApiResult, error};
use crate::state::AppState;

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(error(Code::ValidationFailed, format!("{field} must be {min} to {max} characters long")));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ accounts

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// An invitation token from an administrator: needed under `--registration invite` (the
    /// default) once the installation has its first account.
    pub invitation: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email.
    #[serde(alias = "email", alias = "login")]
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthResponse {
    pub token: String,
    pub token_type: &'static str,
    pub expires_at: Timestamp,
    pub user: User,
}

/// Where a request came from, recorded with sessions and key use.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn valid_username(name: &str) -> bool {
    name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(crate) fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

pub async fn register(state: &AppState, req: RegisterRequest, client: ClientInfo) -> ApiResult<AuthResponse> {
    let username = req.username.trim().to_string();
    check_len("username", &username, 2, 64)?;
    if !valid_username(&username) {
        return Err(error(Code::ValidationFailed, "username may contain letters, digits, '_', '-' and '.' only"));
    }
    let email = req.email.trim().to_string();
    if !valid_email(&email) || email.len() > 254 {
        return Err(error(Code::ValidationFailed, "email is not a valid address"));
    }
    check_len("password", &req.password, 8, 1024)?;
    // Who may register is settled before any costly work: first the policy (a registrant it
    // refuses learns nothing else, not even whether the name is taken), then the address's
    // allowance, and only then the password hash.
    let policy = state.config.registration;
    let invitation_hash = req.invitation.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(auth::token_hash);
    admissible(state, policy, invitation_hash.as_deref(), &email).await?;
    if let Err(wait) = state.registration_throttle.admit(client.ip.as_deref()) {
        return Err(error(
            Code::TooManyRegistrations,
            "too many accounts were created from this address; try again later",
        )
        .retry_after(wait));
    }
    let password = req.password;
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    // The store decides again, atomically with the account's creation: the first account of an
    // empty installation becomes its administrator, and an invitation admits one account only.
    let user = state
        .store
        .register_user(
            NewUser {
                username,
                email,
                password_hash,
                full_name: req.full_name,
                first_name: req.first_name,
                last_name: req.last_name,
            },
            Admission { policy, invitation_hash, now: lore_core::now() },
        )
        .await?;
    new_session(state, user, client).await
}

/// Whether the policy would admit this registration now (the store checks again when it
/// creates the account): an empty installation admits its first account whatever the policy.
async fn admissible(
    state: &AppState,
    policy: RegistrationPolicy,
    invitation_hash: Option<&str>,
    email: &str,
) -> ApiResult<()> {
    if policy == RegistrationPolicy::Open || state.store.count_users().await? == 0 {
        return Ok(());
    }
    let hash = match (policy, invitation_hash) {
        (RegistrationPolicy::Invite, Some(hash)) => hash,
        _ => return Err(policy.refusal().into()),
    };
    let now = lore_core::now();
    let usable = state.store.find_invitation(hash).await?.is_some_and(|inv| {
        inv.used_at.is_none()
            && inv.expires_at > now
            && inv.email.as_deref().is_none_or(|only| only.to_lowercase() == email.to_lowercase())
    });
    if !usable {
        return Err(Invitation::invalid().into());
    }
    Ok(())
}

pub async fn login(state: &AppState, req: LoginRequest, client: ClientInfo) -> ApiResult<AuthResponse> {
    let invalid = || error(Code::InvalidCredentials, "wrong username/email or password");
    let account = req.username.trim().to_string();
    let ip = client.ip.as_deref();
    if let Some(wait) = state.login_throttle.check(&account, ip) {
        return Err(
            error(Code::TooManyLoginAttempts, "too many failed logins; wait before trying again").retry_after(wait)
        );
    }
    let found = state.store.find_login(&account).await?;
    let Some((user, hash)) = found else {
        // Spend the same effort as a real check, so timing does not reveal which accounts exist.
        let _ = tokio::task::spawn_blocking(|| auth::verify_password("x", DUMMY_HASH)).await;
        state.login_throttle.record_failure(&account, ip);
        return Err(invalid());
    };
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    if !ok {
        state.login_throttle.record_failure(&account, ip);
        return Err(invalid());
    }
    state.login_throttle.record_success(&account, ip);
    if !user.is_active {
        return Err(error(Code::UserInactive, "this account is deactivated"));
    }
    state.store.record_login(user.id, lore_core::now()).await?;
    new_session(state, user, client).await
}

const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Zx1yq4dYwLzHn7y1Jm6kS8rT3r0m1pTq9l0tFQ0b7Y";

async fn new_session(state: &AppState, user: User, client: ClientInfo) -> ApiResult<AuthResponse> {
    let token = format!("{SESSION_PREFIX}{}", auth::random_token()?);
    let ttl = ChronoDuration::from_std(state.config.session_ttl).map_err(|e| Error::internal(e.to_string()))?;
    let expires_at = lore_core::now() + ttl;
    state
        .store
        .create_session(
            user.id,
            &auth::token_hash(&token),
            expires_at,
            client.ip.as_deref(),
            client.user_agent.as_deref(),
        )
        .await?;
    Ok(AuthResponse { token, token_type: "Bearer", expires_at, user })
}

pub async fn logout(state: &AppState, principal: &Principal) -> ApiResult<()> {
    principal.require_session()?;
    if let auth::Credential::Session { token_hash } = &principal.credential {
        state.store.delete_session(token_hash).await?;
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub user: User,
    pub auth: AuthInfo,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthInfo {
    /// `session` or `api_key`.
    pub method: &'static str,
    pub scopes: Vec<Scope>,
    pub api_key_id: Option<Id>,
    pub knowledge_base_id: Option<Id>,
}

pub fn me(principal: &Principal) -> MeResponse {
    MeResponse {
        user: principal.user.clone(),
        auth: AuthInfo {
            method: if principal.api_key().is_some() { "api_key" } else { "session" },
            scopes: principal.scopes(),
            api_key_id: principal.api_key().map(|k| k.id),
            knowledge_base_id: principal.bound_knowledge_base(),
        },
    }
}

// ------------------------------------------------------------------------------------ API keys

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
const MAX_KEY_DAYS: u32 = 36_500;

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
        state.store.get_knowledge_base(principal.user_id(), kb).await?.ok_or_else(|| not_found("knowledge base"))?;
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
            user_id: principal.user_id(),
            knowledge_base_id: req.knowledge_base_id,
            name,
            description: req.description,
            key_hash: auth::token_hash(&key),
            key_prefix: key.chars().take(12).collect(),
            key_suffix: key.chars().skip(key.chars().count() - 4).collect(),
            scopes,
            rate_limit: req.rate_limit.map(i64::from),
            daily_quota: req.daily_quota.map(i64::from),
            monthly_quota: req.monthly_quota.map(i64::from),
            expires_at,
            security,
        })
        .await?;
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
    state: &AppState,
    principal: &Principal,
    id: Id,
    req: UpdateKeyRequest,
) -> ApiResult<ApiKey> {
    principal.require_session()?;
    let mut key = state
        .store
        .list_api_keys(principal.user_id())
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| not_found("API key"))?;
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
    if let Some(limit) = req.rate_limit {
        key.rate_limit = limit.map(i64::from);
    }
    if let Some(quota) = req.daily_quota {
        key.daily_quota = quota.map(i64::from);
    }
    if let Some(quota) = req.monthly_quota {
        key.monthly_quota = quota.map(i64::from);
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
    let mut key = state
        .store
        .list_api_keys(principal.user_id())
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| not_found("API key"))?;
    state.limiter.overlay(&mut key, lore_core::now());
    Ok(key)
}

pub async fn list_api_keys(state: &AppState, principal: &Principal) -> ApiResult<Vec<ApiKey>> {
    principal.require_session()?;
    let mut keys = state.store.list_api_keys(principal.user_id()).await?;
    let now = lore_core::now();
    keys.iter_mut().for_each(|k| state.limiter.overlay(k, now));
    Ok(keys)
}

pub async fn revoke_api_key(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require_session()?;
    if !state.store.revoke_api_key(principal.user_id(), id, lore_core::now()).await? {
        return Err(not_found("API key"));
    }
    state.key_cache.forget_key(id);
    Ok(())
}

// ------------------------------------------------------------------------------------ knowledge bases

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
fn check_embedding_change(principal: &Principal, before: Option<&Value>, after: Option<&Value>) -> ApiResult<()> {
    if before != after && principal.api_key().is_some() {
        return Err(error(
            Code::SessionRequired,
            "changing settings.embedding_config needs a login session, not an API key (send the current one unchanged to change other settings)",
        ));
    }
    Ok(())
}

fn parse_settings(state: &AppState, value: Value, user: &UserDefaults) -> ApiResult<KbSettings> {
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
    if let Some(mode) = settings.search_config.as_ref().and_then(|s| s.default_mode.as_deref())
        && !matches!(mode, "fulltext" | "vector" | "hybrid")
    {
        return Err(error(Code::ValidationFailed, "search_config.default_mode must be fulltext, vector or hybrid"));
    }
    Ok(settings)
}

pub async fn create_knowledge_base(
    state: &AppState,
    principal: &Principal,
    req: CreateKbRequest,
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
    let defaults = state.store.user_defaults(principal.user_id()).await?;
    let settings = match req.settings {
        Some(v) => parse_settings(state, v, &defaults)?,
        None => KbSettings::default(),
    };
    check_embedding_change(principal, None, settings.embedding_config.as_ref())?;
    Ok(state
        .store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: principal.user_id(),
            name,
            description: req.description,
            icon_url: req.icon_url,
            settings,
        })
        .await?)
}

pub async fn list_knowledge_bases(state: &AppState, principal: &Principal) -> ApiResult<Vec<KnowledgeBase>> {
    principal.require(Scope::Read)?;
    let mut all = state.store.list_knowledge_bases(principal.user_id()).await?;
    if let Some(bound) = principal.bound_knowledge_base() {
        all.retain(|kb| kb.id == bound);
    }
    Ok(all)
}

/// The caller's knowledge base, after the key-binding check; another owner's is not found.
pub(crate) async fn owned_kb(state: &AppState, principal: &Principal, id: Id) -> ApiResult<KnowledgeBase> {
    let kb =
        state.store.get_knowledge_base(principal.user_id(), id).await?.ok_or_else(|| not_found("knowledge base"))?;
    principal.require_knowledge_base(id)?;
    Ok(kb)
}

pub async fn get_knowledge_base(state: &AppState, principal: &Principal, id: Id) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Read)?;
    owned_kb(state, principal, id).await
}

pub async fn update_knowledge_base(
    state: &AppState,
    principal: &Principal,
    id: Id,
    req: UpdateKbRequest,
) -> ApiResult<KnowledgeBase> {
    principal.require(Scope::Upload)?;
    let before = owned_kb(state, principal, id).await?;
    if let Some(name) = &req.name {
        check_len("name", name.trim(), 1, 200)?;
    }
    let defaults = state.store.user_defaults(principal.user_id()).await?;
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
        .update_knowledge_base(principal.user_id(), id, patch)
        .await?
        .ok_or_else(|| not_found("knowledge base"))?;
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
    let paths =
        state.store.delete_knowledge_base(principal.user_id(), id).await?.ok_or_else(|| not_found("knowledge base"))?;
    release_blobs(state, paths).await;
    Ok(())
}

/// Deletes blobs no document refers to any more. Failures only leave garbage, so they are logged.
async fn release_blobs(state: &AppState, paths: Vec<String>) {
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

// ------------------------------------------------------------------------------------ documents

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
    state: &AppState,
    user_id: Id,
    kb: &KnowledgeBase,
    upload: StagedUpload<'_>,
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
async fn registered_type(state: &AppState, detected: FileKind, filename: &str) -> ApiResult<FileType> {
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
async fn allowed_model(state: &AppState, kb: &KnowledgeBase, file_type: &FileType) -> ApiResult<()> {
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
fn sanitize_filename(name: &str) -> String {
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
    state: &AppState,
    principal: &Principal,
    kb_id: Id,
    params: ListDocumentsParams,
) -> ApiResult<(Vec<Document>, i64, i64)> {
    principal.require(Scope::Read)?;
    owned_kb(state, principal, kb_id).await?;
    let limit = i64::from(params.limit.unwrap_or(50).clamp(1, 1000));
    let offset = i64::from(params.offset.unwrap_or(0));
    let query = DocumentListQuery { status: params.status, include_deleted: params.include_deleted, limit, offset };
    let docs = state.store.list_documents(principal.user_id(), kb_id, &query).await?;
    Ok((docs, limit, offset))
}

pub(crate) async fn owned_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    let doc = state.store.get_document(principal.user_id(), id).await?.ok_or_else(|| not_found("document"))?;
    principal.require_knowledge_base(doc.knowledge_base_id)?;
    Ok(doc)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    #[serde(flatten)]
    pub document: Document,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub content: Option<DocumentContent>,
}

pub async fn get_document(
    state: &AppState,
    principal: &Principal,
    id: Id,
    include_content: bool,
) -> ApiResult<DocumentView> {
    principal.require(Scope::Read)?;
    let document = owned_document(state, principal, id).await?;
    let content = if include_content { state.store.document_content(principal.user_id(), id).await? } else { None };
    Ok(DocumentView { document, content })
}

pub async fn delete_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    principal.require(Scope::Delete)?;
    let doc = owned_document(state, principal, id).await?;
    if doc.soft_deleted_at.is_some() {
        return Err(not_found("document"));
    }
    state
        .store
        .soft_delete_document(principal.user_id(), id, lore_core::now())
        .await?
        .ok_or_else(|| not_found("document"))
}

pub async fn restore_document(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Document> {
    principal.require(Scope::Delete)?;
    owned_document(state, principal, id).await?;
    state.store.restore_document(principal.user_id(), id).await?.ok_or_else(|| not_found("document"))
}

pub async fn document_chunks(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<Chunk>> {
    principal.require(Scope::Read)?;
    owned_document(state, principal, id).await?;
    Ok(state.store.list_chunks(principal.user_id(), id).await?)
}

// ------------------------------------------------------------------------------------ search

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    pub mode: Option<String>,
    pub top_k: Option<u32>,
    /// Minimum cosine similarity of vector matches (0..1).
    pub similarity_threshold: Option<f64>,
    #[serde(default)]
    pub filters: SearchFilters,
    /// Which embedding vector matches compare against: content (default), summary or both.
    pub search_target: Option<SearchTarget>,
    /// Hybrid fusion weights.
    pub weights: Option<HybridWeights>,
    /// Hybrid fusion: `rrf` (reciprocal rank fusion, the default) or `weighted` (each list's
    /// scores scaled to 0..1 and summed by weight).
    pub fusion: Option<String>,
    /// For `POST /v1/search`: the knowledge bases to search (all of the caller's when absent).
    #[serde(default)]
    pub knowledge_base_ids: Option<Vec<Id>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridWeights {
    #[serde(default = "one")]
    pub vector: f64,
    #[serde(default = "one")]
    pub fulltext: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    #[serde(flatten)]
    pub hit: ChunkHit,
    /// An excerpt with the matched terms in `<mark>`, HTML-escaped.
    pub highlight: String,
    /// In hybrid mode: the cosine similarity and the BM25 score behind the fused `score`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulltext_score: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub query: String,
    pub mode: &'static str,
    pub results: Vec<SearchResult>,
    pub took_ms: f64,
    /// The embedding space the query was embedded in, for vector and hybrid search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Set when the search could not run as asked (hybrid without a usable model runs full text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

pub const MAX_TOP_K: u32 = 100;
pub(crate) const MAX_QUERY_CHARS: usize = 2000;

/// `POST /v1/knowledge-bases/{id}/search`.
pub async fn search(
    state: &AppState,
    principal: &Principal,
    kb_id: Id,
    req: SearchRequest,
) -> ApiResult<SearchResponse> {
    principal.require(Scope::Search)?;
    if req.knowledge_base_ids.is_some() {
        return Err(error(Code::ValidationFailed, "knowledge_base_ids belongs to POST /v1/search"));
    }
    let kb = owned_kb(state, principal, kb_id).await?;
    run_search(state, principal, vec![kb], req).await
}

/// `POST /v1/search`: several knowledge bases at once; vector and hybrid search need them to
/// share one embedding space.
pub async fn search_all(state: &AppState, principal: &Principal, mut req: SearchRequest) -> ApiResult<SearchResponse> {
    principal.require(Scope::Search)?;
    let max = lore_core::budget::budgets().max_search_knowledge_bases;
    let too_many = |n: usize| {
        lore_core::budget::exceeded(
            Code::TooManyKnowledgeBases,
            format!("a search may span at most {max} knowledge bases, not {n}; name fewer in knowledge_base_ids"),
            "max-search-knowledge-bases",
        )
    };
    let kbs = match req.knowledge_base_ids.take() {
        Some(mut ids) => {
            // Refused before any lookup; a repeated id counts once.
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(*id));
            if ids.len() > max {
                return Err(too_many(ids.len()).into());
            }
            let mut kbs = Vec::with_capacity(ids.len());
            for id in ids {
                kbs.push(owned_kb(state, principal, id).await?);
            }
            kbs
        }
        None => {
            let kbs: Vec<KnowledgeBase> = state
                .store
                .list_knowledge_bases(principal.user_id())
                .await?
                .into_iter()
                .filter(|kb| principal.require_knowledge_base(kb.id).is_ok())
                .collect();
            if kbs.len() > max {
                return Err(too_many(kbs.len()).into());
            }
            kbs
        }
    };
    run_search(state, principal, kbs, req).await
}

pub(crate) async fn run_search(
    state: &AppState,
    principal: &Principal,
    kbs: Vec<KnowledgeBase>,
    req: SearchRequest,
) -> ApiResult<SearchResponse> {
    let started = std::time::Instant::now();
    let query = req.query.trim().to_string();
    if query.is_empty() {
        return Err(error(Code::InvalidQuery, "query must not be empty"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(error(Code::InvalidQuery, format!("query must be at most {MAX_QUERY_CHARS} characters")));
    }
    // One knowledge base's search settings apply to a search of it alone.
    let search_config = match kbs.as_slice() {
        [kb] => kb.settings.search_config.clone().unwrap_or_default(),
        _ => SearchConfig::default(),
    };
    let requested = req.mode.as_deref().or(search_config.default_mode.as_deref()).unwrap_or("hybrid");
    let mut mode: &'static str = match requested {
        "fulltext" => "fulltext",
        "vector" => "vector",
        "hybrid" => "hybrid",
        other => {
            return Err(error(
                Code::ValidationFailed,
                format!("unknown mode '{other}'; expected fulltext, vector or hybrid"),
            ));
        }
    };
    // The request's settings, else the knowledge base's, else the caller's own defaults
    // (`PUT /v1/config`), else Lore's. Agents search through here, so theirs apply to them too.
    let defaults = state.store.get_user_config(principal.user_id()).await?;
    let default_top_k =
        defaults.as_ref().and_then(|c| c.max_search_results).map(|n| n.clamp(1, i64::from(MAX_TOP_K)) as u32);
    let top_k = req.top_k.or(search_config.top_k).or(default_top_k).unwrap_or(10);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(error(Code::ValidationFailed, format!("top_k must be between 1 and {MAX_TOP_K}")));
    }
    let threshold = req
        .similarity_threshold
        .or(search_config.similarity_threshold)
        .or(defaults.as_ref().and_then(|c| c.default_similarity_threshold));
    if let Some(t) = threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(error(Code::ValidationFailed, "similarity_threshold must be between 0 and 1"));
    }
    let weighted = match req.fusion.as_deref().or(search_config.fusion.as_deref()).unwrap_or("rrf") {
        "rrf" => false,
        "weighted" => true,
        other => {
            return Err(error(Code::ValidationFailed, format!("unknown fusion '{other}'; expected rrf or weighted")));
        }
    };
    let weights = req.weights.unwrap_or(HybridWeights { vector: 1.0, fulltext: 1.0 });
    if !(weights.vector >= 0.0 && weights.fulltext >= 0.0 && weights.vector + weights.fulltext > 0.0) {
        return Err(error(Code::ValidationFailed, "weights must be non-negative and not both zero"));
    }
    if kbs.is_empty() {
        return Ok(SearchResponse {
            query,
            mode,
            results: Vec::new(),
            took_ms: 0.0,
            embedding_model: None,
            warning: None,
        });
    }

    // Fusion sees deeper lists than it returns, so agreement below the top k still counts.
    let depth = if mode == "hybrid" { (top_k * 3).clamp(30, MAX_TOP_K * 3) } else { top_k };
    let kb_ids: Vec<Id> = kbs.iter().map(|kb| kb.id).collect();
    let terms = lore_ingest::segment::query_terms(&query);

    // The query's embedding and the vector search run while the full-text search does.
    let vector = async {
        if mode == "fulltext" {
            return Ok((None, Vec::new(), None));
        }
        let (space, vector) = match query_embedding(state, &kbs, &query).await {
            Ok(embedded) => embedded,
            Err(e)
                if mode == "hybrid"
                    && matches!(
                        e.code,
                        Code::ModelUnavailable | Code::EmbeddingNotConfigured | Code::EmbeddingFailed
                    ) =>
            {
                tracing::warn!(error = %e.message, "hybrid search runs on full text alone");
                let warning = format!("{}: {}; results are full-text only", e.code.as_str(), e.message);
                return Ok((None, Vec::new(), Some(warning)));
            }
            Err(e) => return Err(e),
        };
        let hits = state
            .store
            .search_vector(&VectorQuery {
                user_id: principal.user_id(),
                knowledge_base_ids: kb_ids.clone(),
                embedding_model: space.clone(),
                vector,
                top_k: depth,
                filters: req.filters.clone(),
                target: req.search_target.unwrap_or_default(),
                min_score: threshold,
            })
            .await?;
        Ok::<_, Error>((Some(space), hits, None))
    };
    let fulltext = async {
        let mut hits = Vec::new();
        if mode == "vector" {
            return Ok(hits);
        }
        for kb in &kb_ids {
            hits.extend(
                state
                    .store
                    .search_fulltext(&FulltextQuery {
                        user_id: principal.user_id(),
                        knowledge_base_id: *kb,
                        terms: terms.clone(),
                        top_k: depth,
                        filters: req.filters.clone(),
                    })
                    .await?,
            );
        }
        if kb_ids.len() > 1 {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(depth as usize);
        }
        Ok::<_, Error>(hits)
    };
    let (vector, fulltext) = tokio::join!(vector, fulltext);
    let (embedded_space, vector_hits, warning) = vector?;
    let fulltext_hits = fulltext?;
    if warning.is_some() {
        mode = "fulltext";
    }

    let with_highlight = |hit: ChunkHit, vector_score, fulltext_score| {
        let highlight = lore_ingest::highlight::highlight(&hit.content, &terms, 240);
        SearchResult { hit, highlight, vector_score, fulltext_score }
    };
    let results: Vec<SearchResult> = match mode {
        "vector" => vector_hits.into_iter().take(top_k as usize).map(|h| with_highlight(h, None, None)).collect(),
        "fulltext" => fulltext_hits.into_iter().take(top_k as usize).map(|h| with_highlight(h, None, None)).collect(),
        _ => (if weighted { lore_core::fusion::fuse_scores } else { lore_core::fusion::fuse })(
            vec![(weights.vector, vector_hits), (weights.fulltext, fulltext_hits)],
            top_k as usize,
        )
        .into_iter()
        .map(|f| {
            let hit = ChunkHit { score: f.score, ..f.hit };
            with_highlight(hit, f.scores[0], f.scores[1])
        })
        .collect(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    crate::metrics::search(mode, elapsed);
    Ok(SearchResponse { query, mode, results, took_ms: elapsed * 1000.0, embedding_model: embedded_space, warning })
}

/// Embeds the query in the knowledge bases' shared embedding space.
async fn query_embedding(state: &AppState, kbs: &[KnowledgeBase], query: &str) -> Result<(String, Vec<f32>), Error> {
    let off =
        || Error::new(Code::EmbeddingNotConfigured, "embeddings are turned off on this server; use mode 'fulltext'");
    let [first, rest @ ..] = kbs else {
        return Err(Error::new(Code::EmbeddingNotConfigured, "no knowledge base to search"));
    };
    let embedder = crate::embedding::search_embedder(state, first).await?.ok_or_else(off)?;
    for kb in rest {
        let space = crate::embedding::search_space(state, kb).await?.ok_or_else(off)?;
        if space != embedder.space() {
            return Err(Error::new(
                Code::ValidationFailed,
                format!(
                    "these knowledge bases use different embedding models ({}, {space}); search them separately \
                     or pass knowledge_base_ids of one model",
                    embedder.space()
                ),
            ));
        }
    }
    let started = std::time::Instant::now();
    let mut vectors =
        embedder.embed(&[query.to_string()], lore_embed::InputKind::Query).await.map_err(crate::embedding::to_error)?;
    crate::metrics::embedding_duration(embedder.space(), started.elapsed().as_secs_f64());
    let vector = vectors.pop().ok_or_else(|| Error::internal("the embedder returned no vector"))?;
    Ok((embedder.space().to_string(), vector))
}

// ------------------------------------------------------------------------------------ chunking

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub text: String,
    pub chunking_config: Option<Value>,
    pub knowledge_base_id: Option<Id>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewChunk {
    pub chunk_index: usize,
    pub content: String,
    pub char_start: usize,
    pub char_end: usize,
    pub char_count: usize,
    /// The chunk's size in the configuration's unit (characters, or the model's tokens).
    pub size: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewResponse {
    pub strategy: Strategy,
    /// What the strategy's sizes count.
    pub size_unit: chunking::SizeUnit,
    pub chunk_count: usize,
    pub chunks: Vec<PreviewChunk>,
}

/// The longest text a semantic chunking preview embeds.
const SEMANTIC_PREVIEW_CHARS: usize = 20_000;

pub async fn preview_chunking(
    state: &AppState,
    principal: &Principal,
    req: PreviewRequest,
) -> ApiResult<PreviewResponse> {
    let defaults = state.store.user_defaults(principal.user_id()).await?;
    let kb = match req.knowledge_base_id {
        Some(id) => Some(owned_kb(state, principal, id).await?),
        None => None,
    };
    let kb_config = kb.as_ref().and_then(|kb| kb.settings.chunking_config.clone());
    let doc_config = req.chunking_config.map(ChunkingConfig::from_value).transpose()?;
    let strategy = chunking::resolve(doc_config.as_ref(), kb_config.as_ref(), &defaults)?;
    let size_unit = chunking::resolve_unit(doc_config.as_ref(), kb_config.as_ref());
    let text = req.text;
    let text_chars = text.chars().count();
    // A text that must give more chunks than a document may have is refused before any work.
    if size_unit == chunking::SizeUnit::Characters {
        strategy.check_text_budget(text_chars)?;
    }
    // A semantic preview embeds every sentence while the caller waits: a bounded sample.
    if matches!(strategy, Strategy::Semantic { .. }) && text_chars > SEMANTIC_PREVIEW_CHARS {
        return Err(error(
            Code::ResourceLimitExceeded,
            format!(
                "a semantic chunking preview takes at most {SEMANTIC_PREVIEW_CHARS} characters; preview a part of the text"
            ),
        ));
    }
    // Semantic chunking and sizes in tokens need the knowledge base's model (or the user's default).
    let embedder = if matches!(strategy, Strategy::Semantic { .. }) || size_unit == chunking::SizeUnit::Tokens {
        let embedding = kb.as_ref().and_then(|kb| kb.settings.embedding_config.as_ref());
        crate::embedding::embedder_of(state, principal.user_id(), embedding).await?
    } else {
        None
    };
    let counter = (size_unit == chunking::SizeUnit::Tokens).then(|| crate::embedding::token_counter(embedder.as_ref()));
    let chunks = match (&strategy, &embedder) {
        (Strategy::Semantic { .. }, Some(embedder)) => {
            let measure = crate::embedding::measure_of(counter.as_ref());
            crate::embedding::chunk_with(embedder.as_ref(), &text, &strategy, measure).await?
        }
        _ => {
            let (chosen, counter) = (strategy.clone(), counter.clone());
            tokio::task::spawn_blocking(move || {
                lore_ingest::chunk::chunk_measured(&text, &chosen, crate::embedding::measure_of(counter.as_ref()))
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
        }
    };
    let size_of = |content: &str| match &counter {
        Some(count) => count(content),
        None => content.chars().count(),
    };
    chunking::check_chunk_count(chunks.len(), text_chars)?;
    let chunks: Vec<PreviewChunk> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| PreviewChunk {
            chunk_index: i,
            char_count: c.char_end - c.char_start,
            size: size_of(&c.content),
            char_start: c.char_start,
            char_end: c.char_end,
            content: c.content,
        })
        .collect();
    Ok(PreviewResponse { strategy, size_unit, chunk_count: chunks.len(), chunks })
}

/// The parser for a stored document: its type's own, else the first parser its registry entry names.
pub fn kind_of(document: &Document, types: &[FileType]) -> FileKind {
    FileKind::from_name(&document.file_type, &document.filename)
        .or_else(|| {
            let entry = types.iter().find(|t| Some(t.id) == document.file_type_id || t.name == document.file_type)?;
            entry.parsers.iter().find_map(|p| FileKind::from_name(p, &document.filename))
        })
        .unwrap_or(FileKind::Binary("unknown"))
}

// ------------------------------------------------------------------------------------ file types

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

fn check_parsers(parsers: &Option<Vec<String>>) -> ApiResult<()> {
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

fn lower(list: Option<Vec<String>>) -> Option<Vec<String>> {
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
    Ok(state
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
        .await?)
}

pub async fn update_file_type(
    state: &AppState,
    principal: &Principal,
    id: i64,
    req: FileTypeRequest,
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
    state.store.update_file_type(id, patch).await?.ok_or_else(|| not_found("file type"))
}
