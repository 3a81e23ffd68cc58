//! Workspaces and members on PostgreSQL (statements shared with SQLite in `crate::workspaces`).
//! A membership change locks the workspace's row first, so two concurrent changes cannot both
//! pass the last-owner guard.

use async_trait::async_trait;
use lore_core::error::Result;
use lore_core::model::*;
use lore_core::store::WorkspaceStore;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::fetch::Fetch;
use crate::rows::{db_err, kb_from};
use crate::workspaces as sql;
use sqlx::AssertSqlSafe;

impl PgStore {
    async fn lock_workspace(&self, workspace: Id) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.tx().await?;
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE").bind(workspace).run(&mut *tx).await?;
        Ok(tx)
    }

    /// Runs a guarded membership change (`statement` binds workspace, person and maybe a role).
    async fn change_member(
        &self, workspace: Id, user: Id, statement: &'static str, role: Option<Role>,
    ) -> Result<MemberChange> {
        let mut tx = self.lock_workspace(workspace).await?;
        let mut query = sqlx::query(statement).bind(workspace).bind(user);
        if let Some(role) = role {
            query = query.bind(role.as_str());
        }
        let done = query.run(&mut *tx).await?;
        let change = if done.rows_affected() > 0 {
            MemberChange::Done
        } else {
            sql::unchanged(sqlx::query_scalar(sql::ROLE).bind(workspace).bind(user).optional(&mut *tx).await?)
        };
        tx.commit().await.map_err(db_err)?;
        Ok(change)
    }
}

#[async_trait]
impl WorkspaceStore for PgStore {
    async fn create_workspace(&self, owner: Id, name: &str, at: Timestamp) -> Result<Workspace> {
        let id = lore_core::new_id();
        let mut tx = self.tx().await?;
        sqlx::query(sql::CREATE_TEAM).bind(id).bind(name).bind(at).bind(id.simple().to_string()).run(&mut *tx).await?;
        sqlx::query(sql::ADD_MEMBER)
            .bind(id)
            .bind(owner)
            .bind(Role::Owner.as_str())
            .bind(at)
            .bind(lore_core::new_id())
            .run(&mut *tx)
            .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Workspace { id, name: name.to_string(), personal: false, role: Role::Owner, created_at: at })
    }

    async fn workspaces_of(&self, user: Id) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(sql::WORKSPACES_OF).bind(user).all(&self.pool).await?;
        rows.iter().map(sql::workspace_from).collect()
    }

    async fn membership(&self, workspace: Id, user: Id) -> Result<Option<Workspace>> {
        let row = sqlx::query(sql::MEMBERSHIP).bind(workspace).bind(user).optional(&self.pool).await?;
        row.as_ref().map(sql::workspace_from).transpose()
    }

    async fn members(&self, workspace: Id) -> Result<Vec<Member>> {
        let rows = sqlx::query(sql::MEMBERS).bind(workspace).all(&self.pool).await?;
        rows.iter().map(sql::member_from).collect()
    }

    async fn add_member(&self, workspace: Id, user: Id, role: Role, at: Timestamp) -> Result<()> {
        let added = sqlx::query(sql::ADD_MEMBER)
            .bind(workspace)
            .bind(user)
            .bind(role.as_str())
            .bind(at)
            .bind(lore_core::new_id())
            .execute(&self.pool)
            .await;
        match added {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(sql::already_member()),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn set_member_role(&self, workspace: Id, user: Id, role: Role) -> Result<MemberChange> {
        self.change_member(workspace, user, sql::SET_ROLE, Some(role)).await
    }

    async fn remove_member(&self, workspace: Id, user: Id) -> Result<MemberChange> {
        self.change_member(workspace, user, sql::REMOVE, None).await
    }

    async fn rename_workspace(&self, workspace: Id, name: &str) -> Result<bool> {
        let done = sqlx::query(sql::RENAME).bind(workspace).bind(name).bind(lore_core::now()).run(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_workspace(&self, workspace: Id) -> Result<bool> {
        let done = sqlx::query(sql::DELETE).bind(workspace).run(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn share_knowledge_base(&self, kb: Id, workspace: Id, by: Id, at: Timestamp) -> Result<()> {
        let query = sqlx::query(sql::SHARE).bind(lore_core::new_id()).bind(kb).bind(workspace);
        query.bind(by).bind(at).run(&self.pool).await?;
        Ok(())
    }

    async fn unshare_knowledge_base(&self, kb: Id, workspace: Id) -> Result<bool> {
        let done = sqlx::query(sql::UNSHARE).bind(kb).bind(workspace).run(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn shares_of(&self, kb: Id) -> Result<Vec<Share>> {
        let rows = sqlx::query(sql::SHARES_OF).bind(kb).all(&self.pool).await?;
        rows.iter().map(sql::share_from).collect()
    }

    async fn create_workspace_invitation(&self, i: NewWorkspaceInvitation) -> Result<WorkspaceInvitation> {
        let id = lore_core::new_id();
        sqlx::query(sql::INVITE)
            .bind(id)
            .bind(i.workspace_id)
            .bind(&i.token_hash)
            .bind(&i.email)
            .bind(&i.username)
            .bind(i.role.as_str())
            .bind(i.created_by)
            .bind(i.created_at)
            .bind(i.expires_at)
            .run(&self.pool)
            .await?;
        let row = sqlx::query(AssertSqlSafe(sql::invitation_by_id())).bind(id).one(&self.pool).await?;
        sql::invitation_from(&row)
    }

    async fn workspace_invitations(&self, workspace: Id) -> Result<Vec<WorkspaceInvitation>> {
        let rows = sqlx::query(AssertSqlSafe(sql::invitations())).bind(workspace).all(&self.pool).await?;
        rows.iter().map(sql::invitation_from).collect()
    }

    async fn delete_workspace_invitation(&self, workspace: Id, id: Id) -> Result<bool> {
        let done = sqlx::query(sql::REVOKE_INVITATION).bind(workspace).bind(id).run(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_workspace_invitation(&self, token_hash: &str) -> Result<Option<WorkspaceInvitation>> {
        let row = sqlx::query(AssertSqlSafe(sql::invitation_by_token())).bind(token_hash).optional(&self.pool).await?;
        row.as_ref().map(sql::invitation_from).transpose()
    }

    async fn accept_workspace_invitation(&self, i: &WorkspaceInvitation, user: Id, at: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let claimed = sqlx::query(sql::CLAIM_INVITATION).bind(i.id).bind(at).bind(user).run(&mut *tx).await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        let added = sqlx::query(sql::ADD_MEMBER)
            .bind(i.workspace_id)
            .bind(user)
            .bind(i.role.as_str())
            .bind(at)
            .bind(lore_core::new_id())
            .execute(&mut *tx)
            .await;
        match added {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Err(sql::already_member()),
            Err(e) => return Err(db_err(e)),
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    /// Read as the system: the knowledge bases belong to other tenants.
    async fn shared_with(&self, workspace: Id) -> Result<Vec<KnowledgeBase>> {
        let rows = sqlx::query(AssertSqlSafe(sql::shared_with())).bind(workspace).all(&self.pool).await?;
        rows.iter().map(kb_from).collect()
    }
}
