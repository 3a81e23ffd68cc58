//! Accounts: registration under the policy, sign-in and sessions.

use chrono::Duration as ChronoDuration;
use lore_core::error::{Code, Error};
use lore_core::model::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::auth::{self, Principal, SESSION_PREFIX};
use crate::error::{ApiResult, error};
use crate::state::AppState;

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

pub(crate) fn valid_username(name: &str) -> bool {
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
    crate::audit::record_sign_in(state, "auth.registered", Some(&user), &user.username, None).await;
    new_session(state, user, client).await
}

/// Whether the policy would admit this registration now (the store checks again when it
/// creates the account): an empty installation admits its first account whatever the policy.
pub(crate) async fn admissible(
    state: &AppState, policy: RegistrationPolicy, invitation_hash: Option<&str>, email: &str,
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
    // A throttled attempt is not recorded: the failures that led to it are, and a flood of
    // refused attempts must not become a flood of rows.
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
        crate::audit::record_sign_in(state, "auth.sign_in_failed", None, &account, Some("unknown_account")).await;
        return Err(invalid());
    };
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    if !ok {
        state.login_throttle.record_failure(&account, ip);
        crate::audit::record_sign_in(state, "auth.sign_in_failed", Some(&user), &account, Some("wrong_password")).await;
        return Err(invalid());
    }
    state.login_throttle.record_success(&account, ip);
    if !user.is_active {
        crate::audit::record_sign_in(state, "auth.sign_in_failed", Some(&user), &account, Some("deactivated")).await;
        return Err(error(Code::UserInactive, "this account is deactivated"));
    }
    state.store.record_login(user.id, lore_core::now()).await?;
    crate::audit::record_sign_in(state, "auth.sign_in", Some(&user), &account, None).await;
    new_session(state, user, client).await
}

pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Zx1yq4dYwLzHn7y1Jm6kS8rT3r0m1pTq9l0tFQ0b7Y";

pub(crate) async fn new_session(state: &AppState, user: User, client: ClientInfo) -> ApiResult<AuthResponse> {
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
    /// The workspace the request acted in (the person's own unless `X-Lore-Workspace` named
    /// another, or the key's), and the caller's role there.
    pub workspace_id: Id,
    pub role: Role,
}

pub fn me(principal: &Principal) -> MeResponse {
    MeResponse {
        user: principal.user.clone(),
        auth: AuthInfo {
            method: if principal.api_key().is_some() { "api_key" } else { "session" },
            scopes: principal.scopes(),
            api_key_id: principal.api_key().map(|k| k.id),
            knowledge_base_id: principal.bound_knowledge_base(),
            workspace_id: principal.owner_id(),
            role: principal.role,
        },
    }
}
