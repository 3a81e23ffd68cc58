//! The audit log: who changed what that matters for security, from where, and when.

use serde::Serialize;
use serde_json::Value;

use super::*;

/// One entry of the audit log. Entries are appended, never changed; secrets never appear in
/// them (a changed provider key is named, not shown).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Id,
    pub at: Timestamp,
    /// The user who acted, when one is known (a failed sign-in has none).
    pub actor_id: Option<Id>,
    /// Who acted, as a person reads it: a username, with the API key's prefix when one was used,
    /// or the account name a failed sign-in tried.
    pub actor: Option<String>,
    /// Whose account or data the entry concerns: their audit log lists it.
    pub owner_id: Option<Id>,
    /// What happened, `area.verb` (`auth.sign_in`, `api_key.revoked`, `admin.user_deactivated` ...).
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    /// The request's id, as its `X-Request-Id` response header gave it.
    pub request_id: Option<String>,
    /// What changed: field names, outcomes and reasons, never secret values.
    pub details: Value,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries concerning this user only (an administrator may list everyone's).
    pub owner_id: Option<Id>,
    pub actor_id: Option<Id>,
    /// Actions starting with this (`auth.` for every sign-in event).
    pub action_prefix: Option<String>,
    pub since: Option<Timestamp>,
    /// Entries strictly before this time: the next page after the last entry seen.
    pub before: Option<Timestamp>,
    pub limit: i64,
}
