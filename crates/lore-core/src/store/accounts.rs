//! Users, invitations, sessions and per-user configuration.

use async_trait::async_trait;

use super::SessionRecord;
use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Every chat and embedding provider configured anywhere (users' configurations, agents,
    /// knowledge bases), as (provider, base URL, or `None` for the provider's default address),
    /// without duplicates: what `lore doctor` checks it can reach.
    async fn provider_addresses(&self) -> Result<Vec<(String, Option<String>)>>;

    /// Fails with `username_taken` / `email_taken` on conflicts.
    async fn create_user(&self, user: NewUser) -> Result<User>;

    /// Creates an account under a registration policy, atomically (one transaction, serialised
    /// with every other registration): on an installation without accounts the new one becomes
    /// the superuser, so of concurrent first registrations exactly one does, and the others are
    /// judged by the policy. Otherwise `open` admits anyone; `closed` refuses with
    /// `registration_closed`; `invite` needs the hash of an invitation that is unused, unexpired
    /// at `now` and, if it names an email, names this one — it is consumed in the same
    /// transaction (one account per invitation), or `invitation_invalid` (or `registration_closed`
    /// without one). Conflicts fail with `username_taken` / `email_taken` and consume nothing.
    async fn register_user(&self, user: NewUser, admission: Admission) -> Result<User>;

    /// An invitation by its token's hash, whatever its state (callers check use and expiry).
    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;

    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation>;

    /// Every invitation, newest first.
    async fn list_invitations(&self) -> Result<Vec<Invitation>>;

    /// Revokes (deletes) an invitation; `false` if there is no such invitation.
    async fn delete_invitation(&self, id: Id) -> Result<bool>;

    /// Looks a user up by username or email; returns the password hash beside it.
    async fn find_login(&self, username_or_email: &str) -> Result<Option<(User, String)>>;

    async fn get_user(&self, id: Id) -> Result<Option<User>>;

    async fn record_login(&self, user_id: Id, at: Timestamp) -> Result<()>;

    async fn create_session(
        &self, user_id: Id, token_hash: &str, expires_at: Timestamp, ip: Option<&str>, user_agent: Option<&str>,
    ) -> Result<Id>;

    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>>;

    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    async fn user_defaults(&self, user_id: Id) -> Result<UserDefaults>;

    /// Revokes every session of a user except the one with `keep` (its token hash).
    async fn revoke_sessions(&self, user_id: Id, keep: Option<&str>) -> Result<u64>;

    async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()>;

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>>;

    /// Activates or deactivates an account; `None` if there is no such user.
    async fn set_user_active(&self, user_id: Id, active: bool) -> Result<Option<User>>;

    /// Makes a user a superuser (the first account, or an operator's choice).
    async fn set_superuser(&self, user_id: Id, superuser: bool) -> Result<()>;

    async fn count_users(&self) -> Result<i64>;

    async fn get_user_config(&self, user_id: Id) -> Result<Option<UserConfig>>;

    async fn put_user_config(&self, user_id: Id, config: &UserConfig) -> Result<UserConfig>;

    /// Rewrites every encrypted value (provider keys, webhook secrets, data-source credentials)
    /// through `f`, in one transaction: how the master key is rotated. Returns how many changed.
    async fn reencrypt_secrets(&self, f: &(dyn for<'s> Fn(&'s str) -> Result<String> + Send + Sync)) -> Result<u64>;
}
