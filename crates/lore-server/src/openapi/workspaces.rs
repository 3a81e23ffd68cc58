//! The workspaces' part of the OpenAPI document.

use utoipa::openapi::path::HttpMethod::{Delete, Get, Patch, Post};

use super::Doc;
use crate::service;
use lore_core::model::{AuditEntry, Member, Share, Workspace, WorkspaceInvitation};

pub(super) fn document(d: &mut Doc) {
    d.op(Post, "/v1/workspaces", "workspaces", "Create a team workspace; the caller becomes its owner")
        .body::<service::WorkspaceRequest>()
        .ok::<Workspace>(201)
        .add();
    d.op(Get, "/v1/workspaces", "workspaces", "The caller's workspaces: their own first, then their teams")
        .list::<Workspace>()
        .add();
    d.op(Get, "/v1/workspaces/{id}", "workspaces", "A workspace with the caller's role in it")
        .ok::<Workspace>(200)
        .add();
    d.op(Patch, "/v1/workspaces/{id}", "workspaces", "Rename a team workspace (owners and admins)")
        .body::<service::WorkspaceRequest>()
        .ok::<Workspace>(200)
        .add();
    d.op(Delete, "/v1/workspaces/{id}", "workspaces", "Delete a team workspace with no knowledge bases left (owners)")
        .no_content()
        .add();
    d.op(Get, "/v1/workspaces/{id}/members", "workspaces", "The members and their roles").list::<Member>().add();
    d.op(Post, "/v1/workspaces/{id}/members", "workspaces", "Add an existing account (owners and admins)")
        .body::<service::AddMemberRequest>()
        .ok::<Member>(201)
        .add();
    d.op(Patch, "/v1/workspaces/{id}/members/{user_id}", "workspaces", "Change a member's role (owners and admins)")
        .body::<service::MemberRoleRequest>()
        .ok::<Member>(200)
        .add();
    d.op(
        Delete,
        "/v1/workspaces/{id}/members/{user_id}",
        "workspaces",
        "Remove a member (owners and admins), or leave (anyone, themselves)",
    )
    .no_content()
    .add();
    d.op(Get, "/v1/workspaces/{id}/audit", "workspaces", "The workspace's audit log, newest first (owners and admins)")
        .query::<crate::audit::AuditParams>()
        .list::<AuditEntry>()
        .add();
    d.op(
        Post,
        "/v1/knowledge-bases/{id}/shares",
        "knowledge bases",
        "Share read-only into another workspace you are in (admins)",
    )
    .body::<service::ShareRequest>()
    .ok::<Share>(201)
    .add();
    d.op(Get, "/v1/knowledge-bases/{id}/shares", "knowledge bases", "The workspaces it is shared into")
        .list::<Share>()
        .add();
    d.op(Delete, "/v1/knowledge-bases/{id}/shares/{workspace_id}", "knowledge bases", "End a share (admins)")
        .no_content()
        .add();
    d.op(
        Post,
        "/v1/workspaces/{id}/invitations",
        "workspaces",
        "Invite by link; the token is shown once (owners and admins)",
    )
    .body::<service::InviteRequest>()
    .ok::<service::CreatedWorkspaceInvitation>(201)
    .add();
    d.op(Get, "/v1/workspaces/{id}/invitations", "workspaces", "The invitations, without tokens (owners and admins)")
        .list::<WorkspaceInvitation>()
        .add();
    d.op(Delete, "/v1/workspaces/{id}/invitations/{invitation_id}", "workspaces", "Revoke an invitation")
        .no_content()
        .add();
    d.op(Post, "/v1/workspaces/join", "workspaces", "Join a team with an invitation's token")
        .body::<service::JoinRequest>()
        .ok::<Workspace>(200)
        .add();
}
