//! Users, invitations and the registration policy, and per-user configuration and defaults.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub settings: Value,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    pub storage_used: i64,
    pub api_calls_count: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Who may create an account. On an installation without accounts the first registration is
/// always allowed, whatever the policy, and makes that account the administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone.
    Open,
    /// Whoever holds an unused, unexpired invitation from an administrator.
    Invite,
    /// Nobody.
    Closed,
}

impl RegistrationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationPolicy::Open => "open",
            RegistrationPolicy::Invite => "invite",
            RegistrationPolicy::Closed => "closed",
        }
    }

    /// The refusal of a registration that this policy does not admit (no invitation presented).
    pub fn refusal(self) -> crate::error::Error {
        use crate::error::{Code, Error};
        match self {
            RegistrationPolicy::Invite => Error::new(
                Code::RegistrationClosed,
                "registration on this server needs an invitation: ask an administrator for one",
            ),
            _ => Error::new(Code::RegistrationClosed, "registration is closed on this server"),
        }
    }
}

impl Invitation {
    /// The one refusal for an unknown, used, expired or other address's invitation: it tells
    /// nothing about which.
    pub fn invalid() -> crate::error::Error {
        crate::error::Error::new(
            crate::error::Code::InvitationInvalid,
            "this invitation is not valid: it may be unknown, used, expired or meant for another address",
        )
    }
}

/// An invitation to register, made by an administrator. Its token is shown once, at creation,
/// and stored only as a SHA-256 hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Id,
    /// When set, only this address may register with the invitation.
    pub email: Option<String>,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was used, and by whom: an invitation admits one account.
    pub used_at: Option<Timestamp>,
    pub used_by: Option<Id>,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub token_hash: String,
    pub email: Option<String>,
    pub created_by: Option<Id>,
    pub expires_at: Timestamp,
}

/// What the store needs to decide whether an account may be created.
#[derive(Debug, Clone)]
pub struct Admission {
    pub policy: RegistrationPolicy,
    /// The SHA-256 hash of the invitation token the registrant presented, if any.
    pub invitation_hash: Option<String>,
    pub now: Timestamp,
}

/// The user's defaults (seed 000's KnowledgeBaseConfig), the layer between a knowledge base's
/// settings and the system defaults. Provider secrets are not part of this view.
#[derive(Debug, Clone, Default)]
pub struct UserDefaults {
    pub default_chunk_size: Option<i64>,
    pub default_chunk_overlap: Option<i64>,
    pub default_similarity_threshold: Option<f64>,
    pub max_search_results: Option<i64>,
}

/// The user's KnowledgeBaseConfig as stored. Secret fields hold ciphertext: the store never sees
/// a provider key in clear.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserConfig {
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

impl UserConfig {
    /// A new user's configuration: every default unset, notifications on.
    pub fn initial() -> Self {
        UserConfig { sync_notifications: true, error_notifications: true, ..Default::default() }
    }

    pub fn defaults(&self) -> UserDefaults {
        UserDefaults {
            default_chunk_size: self.default_chunk_size,
            default_chunk_overlap: self.default_chunk_overlap,
            default_similarity_threshold: self.default_similarity_threshold,
            max_search_results: self.max_search_results,
        }
    }
}

/// What one maintenance pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurgeReport {
    pub documents_expired: u64,
    pub documents_purged: u64,
    pub blobs_deleted: u64,
    pub conversations_purged: u64,
    pub usage_logs_purged: u64,
    pub sessions_purged: u64,
    pub audit_entries_purged: u64,
}
