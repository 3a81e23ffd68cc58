//! Workspaces' SQL, one text for both backends (SQLite reads PostgreSQL's `$n` parameters); each
//! backend binds the values in its own types. A team workspace is a row of `users` of kind `team`
//! (its name in `full_name`, a password hash no password matches); a person's own account is
//! their personal workspace, where they are the implicit owner.

use lore_core::error::{Code, Error, Result};
use lore_core::model::*;

use crate::rows::{KB_COLS, RowExt};

/// A team account: `$1` id, `$2` name, `$3` time, `$4` the id in hex. Its username and email are derived from its id
/// (the `.invalid` domain receives no mail) and only keep the columns' uniqueness.
pub(crate) const CREATE_TEAM: &str = "INSERT INTO users
    (id, username, email, hashed_password, full_name, created_at, updated_at, kind)
    VALUES ($1, 'workspace-' || $4, $4 || '@workspaces.invalid', '!', $2, $3, $3, 'team')";

/// `$1` workspace, `$2` person, `$3` role, `$4` time, `$5` the membership's id.
pub(crate) const ADD_MEMBER: &str =
    "INSERT INTO workspace_members (id, workspace_id, user_id, role, created_at) VALUES ($5, $1, $2, $3, $4)";

/// `$1` the person: their own workspace, then their teams.
pub(crate) const WORKSPACES_OF: &str = "SELECT id, username AS name, kind, 'owner' AS role, created_at
      FROM users WHERE id = $1 AND kind = 'person'
    UNION ALL
    SELECT u.id, u.full_name, u.kind, m.role, u.created_at
      FROM workspace_members m JOIN users u ON u.id = m.workspace_id
     WHERE m.user_id = $1 AND u.kind = 'team'
    ORDER BY kind, name, id";

/// `$1` the workspace, `$2` the person.
pub(crate) const MEMBERSHIP: &str = "SELECT id, username AS name, kind, 'owner' AS role, created_at
      FROM users WHERE id = $1 AND id = $2 AND kind = 'person'
    UNION ALL
    SELECT u.id, u.full_name, u.kind, m.role, u.created_at
      FROM workspace_members m JOIN users u ON u.id = m.workspace_id
     WHERE m.workspace_id = $1 AND m.user_id = $2 AND u.kind = 'team'";

/// `$1` the workspace: its owners first, then by username (a personal workspace: the person).
pub(crate) const MEMBERS: &str = "SELECT * FROM (
    SELECT id AS user_id, username, email, full_name, 'owner' AS role, created_at AS added_at
      FROM users WHERE id = $1 AND kind = 'person'
    UNION ALL
    SELECT u.id, u.username, u.email, u.full_name, m.role, m.created_at
      FROM workspace_members m JOIN users u ON u.id = m.user_id
     WHERE m.workspace_id = $1
    ) members ORDER BY role <> 'owner', username";

/// `$1` workspace, `$2` person, `$3` role: never takes the last owner's ownership away.
pub(crate) const SET_ROLE: &str = "UPDATE workspace_members SET role = $3
     WHERE workspace_id = $1 AND user_id = $2
       AND (role <> 'owner' OR $3 = 'owner'
            OR (SELECT COUNT(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner') > 1)";

/// `$1` workspace, `$2` person: never the last owner.
pub(crate) const REMOVE: &str = "DELETE FROM workspace_members
     WHERE workspace_id = $1 AND user_id = $2
       AND (role <> 'owner'
            OR (SELECT COUNT(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner') > 1)";

/// `$1` workspace, `$2` person: their role, after a change that did nothing (to tell why).
pub(crate) const ROLE: &str = "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2";

pub(crate) const RENAME: &str = "UPDATE users SET full_name = $2, updated_at = $3 WHERE id = $1 AND kind = 'team'";

pub(crate) const DELETE: &str = "DELETE FROM users WHERE id = $1 AND kind = 'team'";

/// `$1` id, `$2` knowledge base, `$3` workspace, `$4` who, `$5` time.
pub(crate) const SHARE: &str =
    "INSERT INTO knowledge_base_shares (id, knowledge_base_id, workspace_id, created_by, created_at)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (knowledge_base_id, workspace_id) DO NOTHING";

pub(crate) const UNSHARE: &str = "DELETE FROM knowledge_base_shares WHERE knowledge_base_id = $1 AND workspace_id = $2";

pub(crate) const SHARES_OF: &str = "SELECT s.knowledge_base_id, s.workspace_id, s.created_by, s.created_at,
           CASE WHEN u.kind = 'team' THEN u.full_name ELSE u.username END AS workspace_name
      FROM knowledge_base_shares s JOIN users u ON u.id = s.workspace_id
     WHERE s.knowledge_base_id = $1 ORDER BY s.created_at, s.id";

/// `$1` the workspace shared into.
pub(crate) fn shared_with() -> String {
    format!(
        "SELECT {KB_COLS} FROM knowledge_bases
          WHERE id IN (SELECT knowledge_base_id FROM knowledge_base_shares WHERE workspace_id = $1)
          ORDER BY created_at DESC, id DESC"
    )
}

/// `$1` id, `$2` workspace, `$3` token hash, `$4` email, `$5` username, `$6` role, `$7` maker,
/// `$8` time, `$9` expiry.
pub(crate) const INVITE: &str = "INSERT INTO workspace_invitations
    (id, workspace_id, token_hash, email, username, role, created_by, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const INVITATION_COLS: &str =
    "id, workspace_id, email, username, role, created_by, created_at, expires_at, used_at, used_by";

pub(crate) fn invitations() -> String {
    format!(
        "SELECT {INVITATION_COLS} FROM workspace_invitations WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
    )
}

pub(crate) fn invitation_by_id() -> String {
    format!("SELECT {INVITATION_COLS} FROM workspace_invitations WHERE id = $1")
}

pub(crate) fn invitation_by_token() -> String {
    format!("SELECT {INVITATION_COLS} FROM workspace_invitations WHERE token_hash = $1")
}

pub(crate) const REVOKE_INVITATION: &str = "DELETE FROM workspace_invitations WHERE workspace_id = $1 AND id = $2";

/// `$1` id, `$2` time, `$3` the person: takes an unused, unexpired invitation.
pub(crate) const CLAIM_INVITATION: &str = "UPDATE workspace_invitations SET used_at = $2, used_by = $3
     WHERE id = $1 AND used_at IS NULL AND expires_at > $2";

pub(crate) fn invitation_from(row: &impl RowExt) -> Result<WorkspaceInvitation> {
    Ok(WorkspaceInvitation {
        id: row.id("id")?,
        workspace_id: row.id("workspace_id")?,
        email: row.opt_text("email")?,
        username: row.opt_text("username")?,
        role: role(&row.text("role")?)?,
        created_by: row.opt_id("created_by")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        used_by: row.opt_id("used_by")?,
    })
}

pub(crate) fn share_from(row: &impl RowExt) -> Result<Share> {
    Ok(Share {
        knowledge_base_id: row.id("knowledge_base_id")?,
        workspace_id: row.id("workspace_id")?,
        workspace_name: row.text("workspace_name")?,
        created_by: row.opt_id("created_by")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn workspace_from(row: &impl RowExt) -> Result<Workspace> {
    Ok(Workspace {
        id: row.id("id")?,
        name: row.text("name")?,
        personal: row.text("kind")? == "person",
        role: role(&row.text("role")?)?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn member_from(row: &impl RowExt) -> Result<Member> {
    Ok(Member {
        user_id: row.id("user_id")?,
        username: row.text("username")?,
        email: row.text("email")?,
        full_name: row.opt_text("full_name")?,
        role: role(&row.text("role")?)?,
        added_at: row.time("added_at")?,
    })
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).map_err(|_| Error::internal(format!("unknown role '{text}' in the database")))
}

/// Why a guarded change touched no row: no such member, or the last owner.
pub(crate) fn unchanged(role: Option<String>) -> MemberChange {
    match role {
        None => MemberChange::NotMember,
        Some(_) => MemberChange::LastOwner,
    }
}

pub(crate) fn already_member() -> Error {
    Error::new(Code::AlreadyMember, "this person is already a member of the workspace")
}
