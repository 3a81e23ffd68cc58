//! Workspaces and their members. A team workspace is an account of kind `team`; a person's own
//! account is their personal workspace, whose one member (its owner) is implicit.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// A team workspace named `name`, with `owner` as its first member (role `owner`).
    async fn create_workspace(&self, owner: Id, name: &str, at: Timestamp) -> Result<Workspace>;

    /// The workspaces `user` may act in: their personal one first, then their teams by name.
    async fn workspaces_of(&self, user: Id) -> Result<Vec<Workspace>>;

    /// `workspace` as `user` sees it, with their role; `None` when they are not a member (or there
    /// is no such workspace). A person is the owner of their personal workspace.
    async fn membership(&self, workspace: Id, user: Id) -> Result<Option<Workspace>>;

    /// The members of a workspace, owners first, then by username.
    async fn members(&self, workspace: Id) -> Result<Vec<Member>>;

    /// Adds a person to a team workspace; `already_member` if they are one.
    async fn add_member(&self, workspace: Id, user: Id, role: Role, at: Timestamp) -> Result<()>;

    /// Changes a member's role; never leaves a workspace without an owner.
    async fn set_member_role(&self, workspace: Id, user: Id, role: Role) -> Result<MemberChange>;

    /// Removes a member; never the last owner.
    async fn remove_member(&self, workspace: Id, user: Id) -> Result<MemberChange>;

    /// Renames a team workspace; `false` if there is no such team.
    async fn rename_workspace(&self, workspace: Id, name: &str) -> Result<bool>;

    /// Deletes a team workspace and everything it owns; `false` if there is no such team.
    async fn delete_workspace(&self, workspace: Id) -> Result<bool>;

    /// Shares a knowledge base read-only into `workspace` (again: nothing changes).
    async fn share_knowledge_base(&self, kb: Id, workspace: Id, by: Id, at: Timestamp) -> Result<()>;

    /// Ends a share; `false` if there was none.
    async fn unshare_knowledge_base(&self, kb: Id, workspace: Id) -> Result<bool>;

    /// The workspaces a knowledge base is shared into, oldest share first.
    async fn shares_of(&self, kb: Id) -> Result<Vec<Share>>;

    /// The knowledge bases other workspaces share into `workspace`, newest first.
    async fn shared_with(&self, workspace: Id) -> Result<Vec<KnowledgeBase>>;

    async fn create_workspace_invitation(&self, invitation: NewWorkspaceInvitation) -> Result<WorkspaceInvitation>;

    /// A workspace's invitations, newest first.
    async fn workspace_invitations(&self, workspace: Id) -> Result<Vec<WorkspaceInvitation>>;

    /// Revokes (deletes) one; `false` if the workspace has no such invitation.
    async fn delete_workspace_invitation(&self, workspace: Id, id: Id) -> Result<bool>;

    /// An invitation by its token's hash, whatever its state.
    async fn find_workspace_invitation(&self, token_hash: &str) -> Result<Option<WorkspaceInvitation>>;

    /// Uses an invitation for `user`, in one transaction: marks it used if it is unused and
    /// unexpired at `at`, and adds them with its role. `false` when it could not be used
    /// (used meanwhile, or expired); `already_member` (and nothing used) when they are one.
    async fn accept_workspace_invitation(
        &self, invitation: &WorkspaceInvitation, user: Id, at: Timestamp,
    ) -> Result<bool>;
}
