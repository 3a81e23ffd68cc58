//! Workspaces and their members. Routes under `/v1/workspaces/{id}` name their workspace in the
//! path; the caller's role there decides, and a workspace they are not in answers 404 like any
//! other tenant's object. Owners and admins manage members; only an owner grants or takes away
//! ownership, and a workspace always keeps one.

use lore_core::error::Code;
use lore_core::model::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{check_len, owned_kb};
use crate::audit::{self, AuditParams};
use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::invitations;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRequest {
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// An existing account's username or email.
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRoleRequest {
    pub role: Role,
}

/// A body read after the workspace is reached: a stranger learns nothing from how it is refused.
fn parse<T: DeserializeOwned>(body: Value) -> ApiResult<T> {
    serde_json::from_value(body).map_err(|e| error(Code::ValidationFailed, format!("invalid request body: {e}")))
}

fn no_such_workspace() -> crate::error::ApiError {
    error(Code::NotFound, "no such workspace")
}

/// The workspace as the caller sees it, if they may act there with at least `least`.
async fn reach(state: &AppState, principal: &Principal, id: Id, least: Role) -> ApiResult<Workspace> {
    let workspace = state.store.membership(id, principal.actor_id()).await?.ok_or_else(no_such_workspace)?;
    workspace.role.at_least(least)?;
    Ok(workspace)
}

/// A team's, for changes to its members: a personal workspace has no others.
async fn reach_team(state: &AppState, principal: &Principal, id: Id, least: Role) -> ApiResult<Workspace> {
    let workspace = reach(state, principal, id, least).await?;
    if workspace.personal {
        return Err(error(
            Code::PersonalWorkspace,
            "a personal workspace has no other members: create a team workspace",
        ));
    }
    Ok(workspace)
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    check_len("name", name, 1, 100)?;
    Ok(name.to_string())
}

/// Team workspaces one person may own: each is an account row and a member list, so a tenant
/// gets a budget, as for knowledge bases.
pub const MAX_OWNED_TEAMS: usize = 100;
/// Open (unused, unexpired) invitations a workspace may hold at once.
pub const MAX_OPEN_INVITATIONS: usize = 200;

pub async fn create_workspace(state: &AppState, principal: &Principal, req: WorkspaceRequest) -> ApiResult<Workspace> {
    let name = check_name(&req.name)?;
    let owned = state.store.workspaces_of(principal.actor_id()).await?;
    if owned.iter().filter(|w| !w.personal && w.role == Role::Owner).count() >= MAX_OWNED_TEAMS {
        return Err(error(
            Code::ResourceLimitExceeded,
            format!("a person may own at most {MAX_OWNED_TEAMS} team workspaces: delete one or hand it over first"),
        ));
    }
    let workspace = state.store.create_workspace(principal.actor_id(), &name, lore_core::now()).await?;
    let target = audit::target("workspace", workspace.id);
    audit::record_admin(state, principal, "workspace.created", Some(workspace.id), target, json!({"name": name})).await;
    Ok(workspace)
}

pub async fn list_workspaces(state: &AppState, principal: &Principal) -> ApiResult<Vec<Workspace>> {
    Ok(state.store.workspaces_of(principal.actor_id()).await?)
}

pub async fn get_workspace(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Workspace> {
    reach(state, principal, id, Role::Viewer).await
}

pub async fn rename_workspace(state: &AppState, principal: &Principal, id: Id, body: Value) -> ApiResult<Workspace> {
    let mut workspace = reach_team(state, principal, id, Role::Admin).await?;
    let req: WorkspaceRequest = parse(body)?;
    let name = check_name(&req.name)?;
    state.store.rename_workspace(id, &name).await?;
    let details = json!({"from": workspace.name, "to": name});
    audit::record_admin(state, principal, "workspace.renamed", Some(id), audit::target("workspace", id), details).await;
    workspace.name = name;
    Ok(workspace)
}

/// Deletes a team workspace with its keys, agents and configuration. Its knowledge bases go first,
/// one by one (each takes its documents, files and vectors with it): a workspace that still has
/// any is refused, so nothing is lost by accident.
pub async fn delete_workspace(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    let workspace = reach_team(state, principal, id, Role::Owner).await?;
    if !state.store.list_knowledge_bases(id).await?.is_empty() {
        return Err(error(
            Code::WorkspaceNotEmpty,
            "this workspace still has knowledge bases: delete them first (DELETE /v1/knowledge-bases/{id})",
        ));
    }
    state.store.delete_workspace(id).await?;
    let details = json!({"name": workspace.name});
    audit::record_admin(state, principal, "workspace.deleted", Some(id), audit::target("workspace", id), details).await;
    Ok(())
}

pub async fn list_members(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<Member>> {
    reach(state, principal, id, Role::Viewer).await?;
    Ok(state.store.members(id).await?)
}

/// Only an owner makes or unmakes owners.
fn check_grant(caller: &Workspace, role: Role) -> ApiResult<()> {
    if role == Role::Owner && caller.role < Role::Owner {
        return Err(error(Code::InsufficientRole, "only an owner may make someone an owner"));
    }
    Ok(())
}

pub async fn add_member(state: &AppState, principal: &Principal, id: Id, body: Value) -> ApiResult<Member> {
    let workspace = reach_team(state, principal, id, Role::Admin).await?;
    let req: AddMemberRequest = parse(body)?;
    check_grant(&workspace, req.role)?;
    let who = req.username.trim();
    check_len("username", who, 1, 254)?;
    let no_user = || error(Code::NotFound, "no account has this username or email");
    let (user, _) = state.store.find_login(who).await?.ok_or_else(no_user)?;
    if !user.is_active {
        return Err(no_user());
    }
    state.store.add_member(id, user.id, req.role, lore_core::now()).await?;
    let details = json!({"username": user.username, "role": req.role});
    audit::record_admin(state, principal, "member.added", Some(id), audit::target("user", user.id), details).await;
    let members = state.store.members(id).await?;
    members.into_iter().find(|m| m.user_id == user.id).ok_or_else(|| error(Code::Internal, "member vanished"))
}

/// The member `user`, or 404.
async fn member(state: &AppState, workspace: Id, user: Id) -> ApiResult<Member> {
    let members = state.store.members(workspace).await?;
    members.into_iter().find(|m| m.user_id == user).ok_or_else(|| error(Code::NotFound, "no such member"))
}

fn changed(change: MemberChange) -> ApiResult<()> {
    match change {
        MemberChange::Done => Ok(()),
        MemberChange::NotMember => Err(error(Code::NotFound, "no such member")),
        MemberChange::LastOwner => {
            Err(error(Code::LastOwner, "a workspace keeps at least one owner: make someone else an owner first"))
        }
    }
}

pub async fn set_member_role(
    state: &AppState, principal: &Principal, id: Id, user: Id, body: Value,
) -> ApiResult<Member> {
    let workspace = reach_team(state, principal, id, Role::Admin).await?;
    let current = member(state, id, user).await?;
    let req: MemberRoleRequest = parse(body)?;
    check_grant(&workspace, req.role)?;
    check_grant(&workspace, current.role)?;
    changed(state.store.set_member_role(id, user, req.role).await?)?;
    let details = json!({"username": current.username, "from": current.role, "to": req.role});
    audit::record_admin(state, principal, "member.role_changed", Some(id), audit::target("user", user), details).await;
    member(state, id, user).await
}

/// Removes a member (an admin or owner), or leaves (anyone, themselves). Their sessions lose the
/// workspace at once, and their keys there stop working.
pub async fn remove_member(state: &AppState, principal: &Principal, id: Id, user: Id) -> ApiResult<()> {
    let leaving = user == principal.actor_id();
    let least = if leaving { Role::Viewer } else { Role::Admin };
    let workspace = reach_team(state, principal, id, least).await?;
    let current = member(state, id, user).await?;
    if !leaving {
        check_grant(&workspace, current.role)?;
    }
    changed(state.store.remove_member(id, user).await?)?;
    let action = if leaving { "member.left" } else { "member.removed" };
    let details = json!({"username": current.username, "role": current.role});
    audit::record_admin(state, principal, action, Some(id), audit::target("user", user), details).await;
    Ok(())
}

/// The workspace's audit log, for its owners and admins.
pub async fn audit_log(
    state: &AppState, principal: &Principal, id: Id, params: AuditParams,
) -> ApiResult<Vec<AuditEntry>> {
    reach(state, principal, id, Role::Admin).await?;
    audit::of_workspace(state, id, params).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// A workspace the caller is a member of (their own, or a team's).
    pub workspace_id: Id,
}

/// Shares one of the workspace's knowledge bases read-only into another workspace the caller is
/// in: its members list, read and search it there, and change nothing. Both logs record it.
pub async fn share_knowledge_base(state: &AppState, principal: &Principal, kb: Id, body: Value) -> ApiResult<Share> {
    let kb = owned_kb(state, principal, kb).await?;
    let req: ShareRequest = parse(body)?;
    if req.workspace_id == principal.owner_id() {
        return Err(error(Code::ValidationFailed, "the knowledge base already belongs to this workspace"));
    }
    state.store.membership(req.workspace_id, principal.actor_id()).await?.ok_or_else(no_such_workspace)?;
    state.store.share_knowledge_base(kb.id, req.workspace_id, principal.actor_id(), lore_core::now()).await?;
    let details = json!({"knowledge_base": kb.name, "workspace_id": req.workspace_id});
    let target = || audit::target("knowledge_base", kb.id);
    audit::record(state, principal, "knowledge_base.shared", target(), details.clone()).await;
    audit::record_admin(state, principal, "knowledge_base.shared", Some(req.workspace_id), target(), details).await;
    let shares = state.store.shares_of(kb.id).await?;
    shares
        .into_iter()
        .find(|s| s.workspace_id == req.workspace_id)
        .ok_or_else(|| error(Code::Internal, "share vanished"))
}

pub async fn list_shares(state: &AppState, principal: &Principal, kb: Id) -> ApiResult<Vec<Share>> {
    let kb = owned_kb(state, principal, kb).await?;
    Ok(state.store.shares_of(kb.id).await?)
}

pub async fn unshare_knowledge_base(state: &AppState, principal: &Principal, kb: Id, workspace: Id) -> ApiResult<()> {
    let kb = owned_kb(state, principal, kb).await?;
    if !state.store.unshare_knowledge_base(kb.id, workspace).await? {
        return Err(error(Code::NotFound, "this knowledge base is not shared into that workspace"));
    }
    let details = json!({"knowledge_base": kb.name, "workspace_id": workspace});
    let target = || audit::target("knowledge_base", kb.id);
    audit::record(state, principal, "knowledge_base.unshared", target(), details.clone()).await;
    audit::record_admin(state, principal, "knowledge_base.unshared", Some(workspace), target(), details).await;
    Ok(())
}

/// Every workspace invitation token starts so (registration invitations start `inv_`).
pub const WORKSPACE_INVITATION_PREFIX: &str = "wsi_";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Only the person with this email may join with it (or give `username`; neither: whoever
    /// holds the link).
    pub email: Option<String>,
    pub username: Option<String>,
    pub role: Role,
    /// Hours until it expires. Default: 168 (a week); at most 8784.
    #[schema(format = Int64, maximum = 4294967295_f64)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedWorkspaceInvitation {
    #[serde(flatten)]
    pub invitation: WorkspaceInvitation,
    /// The token to join with (`POST /v1/workspaces/join`). Shown here once and never again.
    pub token: String,
    /// The console's page that joins with it, relative to the server's address.
    pub link: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub token: String,
}

/// An invitation to a team, for someone who may not be known to the inviter by username: the
/// link is shown once; it admits one person, with the role it names.
pub async fn invite(
    state: &AppState, principal: &Principal, id: Id, body: Value,
) -> ApiResult<CreatedWorkspaceInvitation> {
    let workspace = reach_team(state, principal, id, Role::Admin).await?;
    let req: InviteRequest = parse(body)?;
    check_grant(&workspace, req.role)?;
    let email = invitations::invitee_email(req.email)?;
    let username = req.username.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    if email.is_some() && username.is_some() {
        return Err(error(Code::ValidationFailed, "name the invitee by email or by username, not both"));
    }
    if let Some(username) = &username {
        check_len("username", username, 1, 150)?;
    }
    let expires_at = invitations::expiry(req.expires_in_hours)?;
    let now = lore_core::now();
    let open = state.store.workspace_invitations(id).await?;
    if open.iter().filter(|i| i.used_at.is_none() && i.expires_at > now).count() >= MAX_OPEN_INVITATIONS {
        return Err(error(
            Code::ResourceLimitExceeded,
            format!("a workspace may have at most {MAX_OPEN_INVITATIONS} open invitations: revoke some first"),
        ));
    }
    let token = format!("{WORKSPACE_INVITATION_PREFIX}{}", crate::auth::random_token()?);
    let invitation = state
        .store
        .create_workspace_invitation(NewWorkspaceInvitation {
            workspace_id: id,
            token_hash: crate::auth::token_hash(&token),
            email,
            username,
            role: req.role,
            created_by: principal.actor_id(),
            created_at: now,
            expires_at,
        })
        .await?;
    let details = json!({"email": invitation.email, "username": invitation.username, "role": invitation.role});
    let target = audit::target("invitation", invitation.id);
    audit::record_admin(state, principal, "member.invited", Some(id), target, details).await;
    let link = format!("/#/join?token={token}");
    Ok(CreatedWorkspaceInvitation { invitation, token, link })
}

pub async fn list_invitations(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<WorkspaceInvitation>> {
    reach_team(state, principal, id, Role::Admin).await?;
    Ok(state.store.workspace_invitations(id).await?)
}

pub async fn revoke_invitation(state: &AppState, principal: &Principal, id: Id, invitation: Id) -> ApiResult<()> {
    reach_team(state, principal, id, Role::Admin).await?;
    if !state.store.delete_workspace_invitation(id, invitation).await? {
        return Err(error(Code::NotFound, "no such invitation"));
    }
    let target = audit::target("invitation", invitation);
    audit::record_admin(state, principal, "member.invitation_revoked", Some(id), target, json!({})).await;
    Ok(())
}

/// Joins a team with an invitation's token. An unknown, used, revoked or expired invitation, or
/// one meant for someone else, is refused alike (403 `invitation_invalid`): the refusal tells
/// nothing about which.
pub async fn join(state: &AppState, principal: &Principal, req: JoinRequest) -> ApiResult<Workspace> {
    let invalid = || crate::error::ApiError::from(Invitation::invalid());
    let token = req.token.trim();
    if !token.starts_with(WORKSPACE_INVITATION_PREFIX) || token.len() > 200 {
        return Err(invalid());
    }
    let now = lore_core::now();
    let found = state.store.find_workspace_invitation(&crate::auth::token_hash(token)).await?;
    let invitation = found.filter(|i| i.used_at.is_none() && i.expires_at > now).ok_or_else(invalid)?;
    let person = &principal.user;
    let meant = invitation.email.as_deref().is_none_or(|e| e.eq_ignore_ascii_case(&person.email))
        && invitation.username.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(&person.username));
    if !meant {
        return Err(invalid());
    }
    if !state.store.accept_workspace_invitation(&invitation, person.id, now).await? {
        return Err(invalid());
    }
    let workspace = invitation.workspace_id;
    let details = json!({"username": person.username, "role": invitation.role});
    let target = audit::target("invitation", invitation.id);
    audit::record_admin(state, principal, "member.joined", Some(workspace), target, details).await;
    state.store.membership(workspace, person.id).await?.ok_or_else(no_such_workspace)
}
