//! Workspaces and their members. A person's own account is their personal workspace; a team
//! workspace is an account nobody signs in as, which its members reach with a role. Everything a
//! workspace owns (knowledge bases, agents, data sources, API keys, provider configuration, usage)
//! names it as its owner, so every store query scoped by owner is scoped by workspace.

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{Code, Error};

/// A member's role, from least to most: each includes what the ones below it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Searches, chats and reads.
    Viewer,
    /// Also manages knowledge bases, documents, agents and data sources.
    Editor,
    /// Also manages members, API keys and settings.
    Admin,
    /// Also grants ownership and deletes the workspace. A workspace keeps at least one.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether the role includes what a key's `scope` allows: viewers search and read, editors
    /// also upload and delete.
    pub fn allows(self, scope: Scope) -> bool {
        match scope {
            Scope::Search | Scope::Read => true,
            Scope::Upload | Scope::Delete => self >= Role::Editor,
        }
    }

    /// `Ok` when this role includes `least`; the refusal names both.
    pub fn at_least(self, least: Role) -> Result<(), Error> {
        if self < least {
            return Err(Error::new(
                Code::InsufficientRole,
                format!("this needs the '{}' role in the workspace; you have '{}'", least.as_str(), self.as_str()),
            ));
        }
        Ok(())
    }

    pub fn parse(text: &str) -> Result<Role, Error> {
        Role::ALL.into_iter().find(|r| r.as_str() == text).ok_or_else(|| {
            Error::new(Code::ValidationFailed, format!("'{text}' is not a role: use owner, admin, editor or viewer"))
        })
    }
}

/// A workspace as one of its members sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: Id,
    pub name: String,
    /// A person's own workspace: its id is theirs, and it has no other members.
    pub personal: bool,
    /// The caller's role in it.
    pub role: Role,
    pub created_at: Timestamp,
}

/// A person in a workspace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Id,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: Role,
    /// When they joined (for the personal workspace's owner, when the account was made).
    pub added_at: Timestamp,
}

/// What a change to a membership came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// The person is not a member.
    NotMember,
    /// It would leave the workspace without an owner.
    LastOwner,
}

/// A knowledge base shared read-only into another workspace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Share {
    pub knowledge_base_id: Id,
    pub workspace_id: Id,
    /// The workspace's name (a person's username for a personal workspace).
    pub workspace_name: String,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
}

/// An invitation to a team, by link. Its token is shown once, at creation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkspaceInvitation {
    pub id: Id,
    pub workspace_id: Id,
    /// When set, only the person with this email (or username) may use it.
    pub email: Option<String>,
    pub username: Option<String>,
    pub role: Role,
    pub created_by: Option<Id>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was used, and by whom: it admits one person.
    pub used_at: Option<Timestamp>,
    pub used_by: Option<Id>,
}

#[derive(Debug, Clone)]
pub struct NewWorkspaceInvitation {
    pub workspace_id: Id,
    pub token_hash: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub role: Role,
    pub created_by: Id,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
