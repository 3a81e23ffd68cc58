//! The audit log: every security-relevant change, with who made it, from which address, in which
//! request and when. Sign-ins (and failed ones), API keys created, edited and revoked, passwords
//! and sessions, configuration and provider keys, knowledge-base settings, data deleted and
//! restored, and administrators' actions.
//!
//! Services record; nothing in the API changes or deletes an entry (the retention purge removes
//! the old ones). An entry names what changed, never a secret's value. A person reads the entries
//! that concern them at `GET /v1/audit`, an administrator everyone's at `GET /v1/admin/audit`.
//!
//! The request's id and client address come from the request itself: the middleware in
//! [`crate::client_addr`] runs every request inside [`within`], so a service records them without
//! passing them along.

use std::future::Future;
use std::net::IpAddr;

use lore_core::model::{AuditEntry, AuditQuery, Id, Timestamp, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Credential, Principal};
use crate::error::{ApiResult, error};
use crate::state::AppState;

/// The request an entry is recorded in.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: String,
    pub ip: Option<IpAddr>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Runs `future` as the request `context`: what is recorded in it carries its id and address.
pub async fn within<F: Future>(context: RequestContext, future: F) -> F::Output {
    REQUEST.scope(context, future).await
}

/// A new request id: 16 hex digits, enough to find one request in a day's logs. (The random
/// half of a new id: its first half is the time, alike for requests of the same millisecond.)
pub fn new_request_id() -> String {
    lore_core::new_id().simple().to_string()[16..].to_string()
}

/// What an entry is about: a kind of object and its id.
pub fn target(kind: &'static str, id: impl ToString) -> Option<(&'static str, String)> {
    Some((kind, id.to_string()))
}

/// Who acted, as a person reads it: the username, and the key's prefix when a key was used.
fn actor_name(principal: &Principal) -> String {
    match &principal.credential {
        Credential::ApiKey(key) => format!("{} (API key {}…)", principal.user.username, key.key_prefix),
        Credential::Session { .. } => principal.user.username.clone(),
    }
}

async fn append(
    state: &AppState, actor: (Option<Id>, Option<String>), owner_id: Option<Id>, action: &'static str,
    target: Option<(&'static str, String)>, details: Value,
) {
    let (request_id, ip_address) =
        REQUEST.try_with(|r| (Some(r.id.clone()), r.ip.map(|ip| ip.to_string()))).unwrap_or((None, None));
    let (target_type, target_id) = match target {
        Some((kind, id)) => (Some(kind.to_string()), Some(id)),
        None => (None, None),
    };
    let entry = AuditEntry {
        id: lore_core::new_id(),
        at: lore_core::now(),
        actor_id: actor.0,
        actor: actor.1,
        owner_id,
        action: action.to_string(),
        target_type,
        target_id,
        ip_address,
        request_id,
        details,
    };
    // The change it records is made: a store that cannot take the entry is logged loudly, and
    // the request answers as it would have.
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(action, error = %e, "the audit log could not record an entry");
    }
}

/// Records what a person did to their own sign-in (password, sessions): their log lists it,
/// whichever workspace the request named.
pub async fn record_personal(state: &AppState, principal: &Principal, action: &'static str, details: Value) {
    let actor = (Some(principal.actor_id()), Some(actor_name(principal)));
    append(state, actor, Some(principal.actor_id()), action, None, details).await;
}

/// Records what a caller did to their workspace's data: the workspace's log lists it.
pub async fn record(
    state: &AppState, principal: &Principal, action: &'static str, target: Option<(&'static str, String)>,
    details: Value,
) {
    let actor = (Some(principal.actor_id()), Some(actor_name(principal)));
    append(state, actor, Some(principal.owner_id()), action, target, details).await;
}

/// Records what an administrator did to another account, or a member to a workspace (`owner`,
/// whose log lists it too), or an administrator to the installation (`None`).
pub async fn record_admin(
    state: &AppState, principal: &Principal, action: &'static str, owner: Option<Id>,
    target: Option<(&'static str, String)>, details: Value,
) {
    let actor = (Some(principal.actor_id()), Some(actor_name(principal)));
    append(state, actor, owner, action, target, details).await;
}

/// Records a sign-in or registration attempt, made before anyone is signed in: `user` when the
/// account is known, `tried` the name given (kept short), `failure` why it was refused.
pub async fn record_sign_in(
    state: &AppState, action: &'static str, user: Option<&User>, tried: &str, failure: Option<&str>,
) {
    let tried: String = tried.chars().take(100).collect();
    let actor = (user.map(|u| u.id), Some(user.map_or(tried, |u| u.username.clone())));
    let details = match failure {
        Some(reason) => json!({"method": "password", "outcome": "refused", "reason": reason}),
        None => json!({"method": "password", "outcome": "ok"}),
    };
    append(state, actor, user.map(|u| u.id), action, None, details).await;
}

/// `GET /v1/audit` and `GET /v1/admin/audit`: `?action=auth.&since=&before=&limit=`, and for
/// administrators `user_id` (entries concerning that user).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Actions starting with this (`auth.`, `api_key.revoked` ...).
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    /// Entries before this time: the `at` of the last entry of the page before.
    pub before: Option<Timestamp>,
    /// At most this many entries, newest first (default 100, at most 1,000).
    pub limit: Option<i64>,
    /// Administrators only: the entries concerning this user.
    pub user_id: Option<Id>,
}

fn query(params: AuditParams, owner: Option<Id>) -> ApiResult<AuditQuery> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(error(lore_core::error::Code::ValidationFailed, "limit must be 1 to 1000"));
    }
    if params.action.as_deref().is_some_and(|a| a.len() > 100) {
        return Err(error(lore_core::error::Code::ValidationFailed, "action is too long"));
    }
    Ok(AuditQuery {
        owner_id: owner,
        actor_id: None,
        action_prefix: params.action,
        since: params.since,
        before: params.before,
        limit,
    })
}

/// The entries that concern the caller.
pub async fn own(state: &AppState, principal: &Principal, params: AuditParams) -> ApiResult<Vec<AuditEntry>> {
    principal.require_session()?;
    if params.user_id.is_some_and(|id| id != principal.owner_id()) {
        return Err(error(lore_core::error::Code::ValidationFailed, "user_id is for administrators (/v1/admin/audit)"));
    }
    let query = query(params, Some(principal.owner_id()))?;
    Ok(state.store.list_audit(&query).await?)
}

/// A workspace's entries (its owners and admins are checked by the caller).
pub async fn of_workspace(state: &AppState, workspace: Id, params: AuditParams) -> ApiResult<Vec<AuditEntry>> {
    if params.user_id.is_some() {
        return Err(error(lore_core::error::Code::ValidationFailed, "user_id is for administrators (/v1/admin/audit)"));
    }
    let query = query(params, Some(workspace))?;
    Ok(state.store.list_audit(&query).await?)
}

/// Everyone's entries, for administrators.
pub async fn all(state: &AppState, principal: &Principal, params: AuditParams) -> ApiResult<Vec<AuditEntry>> {
    principal.require_superuser()?;
    let owner = params.user_id;
    let query = query(params, owner)?;
    Ok(state.store.list_audit(&query).await?)
}
