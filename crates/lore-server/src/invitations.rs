//! Invitations to register (`--registration invite`, the default): an administrator makes one,
//! hands its token to a person, and that person registers with it, once. The token is shown at
//! creation only and stored as its SHA-256 hash.

use chrono::Duration as ChronoDuration;
use lore_core::error::Code;
use lore_core::model::{Id, Invitation, NewInvitation, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Principal};
use crate::error::{ApiResult, error};
use crate::state::AppState;

/// Every invitation token starts so, to be told apart from session tokens and API keys.
pub const INVITATION_PREFIX: &str = "inv_";
/// An invitation's life when the request names none: a week.
pub const DEFAULT_HOURS: u32 = 168;
/// The longest life an invitation may be given: a year.
pub const MAX_HOURS: u32 = 24 * 366;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// Only this address may register with the invitation. None: whoever holds the token.
    pub email: Option<String>,
    /// Hours until it expires. Default: 168 (a week); at most 8784.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    pub id: Id,
    /// The token to register with (`"invitation"` of `POST /v1/auth/register`). Shown here once
    /// and never again.
    pub token: String,
    pub email: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// The address an invitation is meant for, trimmed; none when blank.
pub(crate) fn invitee_email(email: Option<String>) -> ApiResult<Option<String>> {
    let email = email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
    if let Some(email) = &email
        && (!crate::service::valid_email(email) || email.len() > 254)
    {
        return Err(error(Code::ValidationFailed, "email is not a valid address"));
    }
    Ok(email)
}

/// When an invitation asked to live `hours` (default a week) expires.
pub(crate) fn expiry(hours: Option<u32>) -> ApiResult<Timestamp> {
    let hours = hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(error(Code::ValidationFailed, format!("expires_in_hours must be between 1 and {MAX_HOURS}")));
    }
    Ok(lore_core::now() + ChronoDuration::hours(i64::from(hours)))
}

pub async fn create(state: &AppState, principal: &Principal, req: CreateInvitation) -> ApiResult<CreatedInvitation> {
    principal.require_superuser()?;
    let email = invitee_email(req.email)?;
    let expires_at = expiry(req.expires_in_hours)?;
    let token = format!("{INVITATION_PREFIX}{}", auth::random_token()?);
    let invitation = state
        .store
        .create_invitation(NewInvitation {
            token_hash: auth::token_hash(&token),
            email,
            created_by: Some(principal.actor_id()),
            expires_at,
        })
        .await?;
    let details = serde_json::json!({"email": invitation.email, "expires_at": invitation.expires_at});
    let target = crate::audit::target("invitation", invitation.id);
    crate::audit::record_admin(state, principal, "admin.invitation_created", None, target, details).await;
    Ok(CreatedInvitation {
        id: invitation.id,
        token,
        email: invitation.email,
        expires_at: invitation.expires_at,
        created_at: invitation.created_at,
    })
}

pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<Invitation>> {
    principal.require_superuser()?;
    Ok(state.store.list_invitations().await?)
}

/// Revokes an invitation: its token admits nobody any more.
pub async fn revoke(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require_superuser()?;
    if !state.store.delete_invitation(id).await? {
        return Err(crate::service::not_found("invitation"));
    }
    let target = crate::audit::target("invitation", id);
    crate::audit::record_admin(state, principal, "admin.invitation_revoked", None, target, serde_json::json!({})).await;
    Ok(())
}
