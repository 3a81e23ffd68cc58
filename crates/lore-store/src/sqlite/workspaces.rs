//! Workspaces and members on SQLite (statements shared with PostgreSQL in `crate::workspaces`).
//! The one writer connection serialises membership changes, so the last-owner guard holds.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::WorkspaceStore;

use super::{SqliteStore, is_unique_violation, ts};
use crate::fetch::Fetch;
use crate::rows::{db_err, kb_from};
use crate::workspaces as sql;
use sqlx::AssertSqlSafe;

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn create_workspace(&self, owner: Id, name: &str, at: Timestamp) -> Result<Workspace> {
        let id = lore_core::new_id();
        let mut tx = self.tx().await?;
        sqlx::query(sql::CREATE_TEAM)
            .bind(id.to_string())
            .bind(name)
            .bind(ts(at))
            .bind(id.simple().to_string())
            .run(&mut *tx)
            .await?;
        let role = Role::Owner.as_str();
        sqlx::query(sql::ADD_MEMBER)
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(role)
            .bind(ts(at))
            .bind(lore_core::new_id().to_string())
            .run(&mut *tx)
            .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Workspace { id, name: name.to_string(), personal: false, role: Role::Owner, created_at: at })
    }

    async fn workspaces_of(&self, user: Id) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(sql::WORKSPACES_OF).bind(user.to_string()).all(&self.reader).await?;
        rows.iter().map(sql::workspace_from).collect()
    }

    async fn membership(&self, workspace: Id, user: Id) -> Result<Option<Workspace>> {
        // A reader (every team request asks): in WAL mode a read begun after a removal's commit
        // sees it, so a removal still answers at once, and the one writer stays free for writes.
        let row = sqlx::query(sql::MEMBERSHIP)
            .bind(workspace.to_string())
            .bind(user.to_string())
            .optional(&self.reader)
            .await?;
        row.as_ref().map(sql::workspace_from).transpose()
    }

    async fn members(&self, workspace: Id) -> Result<Vec<Member>> {
        let rows = sqlx::query(sql::MEMBERS).bind(workspace.to_string()).all(&self.reader).await?;
        rows.iter().map(sql::member_from).collect()
    }

    async fn add_member(&self, workspace: Id, user: Id, role: Role, at: Timestamp) -> Result<()> {
        let added = sqlx::query(sql::ADD_MEMBER)
            .bind(workspace.to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .bind(ts(at))
            .bind(lore_core::new_id().to_string())
            .execute(&self.writer)
            .await;
        match added {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e, "workspace_members") => Err(sql::already_member()),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn set_member_role(&self, workspace: Id, user: Id, role: Role) -> Result<MemberChange> {
        let (workspace, user) = (workspace.to_string(), user.to_string());
        let done =
            sqlx::query(sql::SET_ROLE).bind(&workspace).bind(&user).bind(role.as_str()).run(&self.writer).await?;
        if done.rows_affected() > 0 {
            return Ok(MemberChange::Done);
        }
        let role: Option<String> =
            sqlx::query_scalar(sql::ROLE).bind(&workspace).bind(&user).optional(&self.writer).await?;
        Ok(sql::unchanged(role))
    }

    async fn remove_member(&self, workspace: Id, user: Id) -> Result<MemberChange> {
        let (workspace, user) = (workspace.to_string(), user.to_string());
        let done = sqlx::query(sql::REMOVE).bind(&workspace).bind(&user).run(&self.writer).await?;
        if done.rows_affected() > 0 {
            return Ok(MemberChange::Done);
        }
        let role: Option<String> =
            sqlx::query_scalar(sql::ROLE).bind(&workspace).bind(&user).optional(&self.writer).await?;
        Ok(sql::unchanged(role))
    }

    async fn rename_workspace(&self, workspace: Id, name: &str) -> Result<bool> {
        let now = ts(lore_core::now());
        let done = sqlx::query(sql::RENAME).bind(workspace.to_string()).bind(name).bind(now).run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_workspace(&self, workspace: Id) -> Result<bool> {
        let done = sqlx::query(sql::DELETE).bind(workspace.to_string()).run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn share_knowledge_base(&self, kb: Id, workspace: Id, by: Id, at: Timestamp) -> Result<()> {
        let id = lore_core::new_id().to_string();
        let query = sqlx::query(sql::SHARE).bind(id).bind(kb.to_string()).bind(workspace.to_string());
        query.bind(by.to_string()).bind(ts(at)).run(&self.writer).await?;
        Ok(())
    }

    async fn unshare_knowledge_base(&self, kb: Id, workspace: Id) -> Result<bool> {
        let done = sqlx::query(sql::UNSHARE).bind(kb.to_string()).bind(workspace.to_string()).run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn shares_of(&self, kb: Id) -> Result<Vec<Share>> {
        let rows = sqlx::query(sql::SHARES_OF).bind(kb.to_string()).all(&self.reader).await?;
        rows.iter().map(sql::share_from).collect()
    }

    async fn create_workspace_invitation(&self, i: NewWorkspaceInvitation) -> Result<WorkspaceInvitation> {
        let id = lore_core::new_id().to_string();
        sqlx::query(sql::INVITE)
            .bind(&id)
            .bind(i.workspace_id.to_string())
            .bind(&i.token_hash)
            .bind(&i.email)
            .bind(&i.username)
            .bind(i.role.as_str())
            .bind(i.created_by.to_string())
            .bind(ts(i.created_at))
            .bind(ts(i.expires_at))
            .run(&self.writer)
            .await?;
        let row = sqlx::query(AssertSqlSafe(sql::invitation_by_id())).bind(id).one(&self.writer).await?;
        sql::invitation_from(&row)
    }

    async fn workspace_invitations(&self, workspace: Id) -> Result<Vec<WorkspaceInvitation>> {
        let rows = sqlx::query(AssertSqlSafe(sql::invitations())).bind(workspace.to_string()).all(&self.reader).await?;
        rows.iter().map(sql::invitation_from).collect()
    }

    async fn delete_workspace_invitation(&self, workspace: Id, id: Id) -> Result<bool> {
        let query = sqlx::query(sql::REVOKE_INVITATION).bind(workspace.to_string()).bind(id.to_string());
        Ok(query.run(&self.writer).await?.rows_affected() > 0)
    }

    async fn find_workspace_invitation(&self, token_hash: &str) -> Result<Option<WorkspaceInvitation>> {
        let row =
            sqlx::query(AssertSqlSafe(sql::invitation_by_token())).bind(token_hash).optional(&self.writer).await?;
        row.as_ref().map(sql::invitation_from).transpose()
    }

    async fn accept_workspace_invitation(&self, i: &WorkspaceInvitation, user: Id, at: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let claim = sqlx::query(sql::CLAIM_INVITATION).bind(i.id.to_string()).bind(ts(at)).bind(user.to_string());
        if claim.run(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        let added = sqlx::query(sql::ADD_MEMBER)
            .bind(i.workspace_id.to_string())
            .bind(user.to_string())
            .bind(i.role.as_str())
            .bind(ts(at))
            .bind(lore_core::new_id().to_string())
            .execute(&mut *tx)
            .await;
        match added {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "workspace_members") => return Err(sql::already_member()),
            Err(e) => return Err(db_err(e)),
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn shared_with(&self, workspace: Id) -> Result<Vec<KnowledgeBase>> {
        let rows = sqlx::query(AssertSqlSafe(sql::shared_with())).bind(workspace.to_string()).all(&self.reader).await?;
        rows.iter().map(kb_from).collect()
    }
}
