//! Users, invitations, sessions and per-user configuration, on SQLite.

use async_trait::async_trait;
use lore_core::error::{Code, Error, Result};
use lore_core::model::*;
use lore_core::store::{AccountStore, SessionRecord};
use sqlx::AssertSqlSafe;

use super::{SqliteStore, is_unique_violation, ts, user_conflict};
use crate::fetch::Fetch;
use crate::rows::*;
use crate::sql;

#[async_trait]
impl AccountStore for SqliteStore {
    async fn provider_addresses(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT 'openai' AS provider, openai_base_url AS base_url FROM knowledge_base_configs
               WHERE openai_api_key IS NOT NULL OR openai_base_url IS NOT NULL
             UNION SELECT 'anthropic', anthropic_base_url FROM knowledge_base_configs
               WHERE anthropic_api_key IS NOT NULL OR anthropic_base_url IS NOT NULL
             UNION SELECT 'cohere', cohere_base_url FROM knowledge_base_configs
               WHERE cohere_api_key IS NOT NULL OR cohere_base_url IS NOT NULL
             UNION SELECT model_provider, json_extract(model_parameters, '$.base_url') FROM ai_agents
               WHERE model_provider <> 'extractive'
             UNION SELECT json_extract(settings, '$.embedding_config.provider'),
                          json_extract(settings, '$.embedding_config.base_url') FROM knowledge_bases
               WHERE json_extract(settings, '$.embedding_config.provider') IS NOT NULL
                 AND json_extract(settings, '$.embedding_config.provider') <> 'local'
             ORDER BY 1, 2",
        )
        .all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok((r.text("provider")?, r.opt_text("base_url")?))).collect()
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let id = lore_core::new_id();
        let now = ts(lore_core::now());
        let result = sql::bind_new_user(sqlx::query(sql::CREATE_USER).bind(id.to_string()), &user)
            .bind(&now)
            .execute(&self.writer)
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e, "users.username") => {
                return Err(Error::new(Code::UsernameTaken, "this username is already taken"));
            }
            Err(e) if is_unique_violation(&e, "users.email") => {
                return Err(Error::new(Code::EmailTaken, "an account with this email already exists"));
            }
            Err(e) => return Err(db_err(e)),
        }
        self.user_by_id(&self.writer, id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn register_user(&self, user: NewUser, admission: Admission) -> Result<User> {
        let id = lore_core::new_id();
        let now = ts(admission.now);
        // One writer connection: this transaction runs alone, and its first statement takes the
        // write lock, so whether the account is the first is decided by the insert itself.
        let mut tx = self.tx().await?;
        let inserted = sql::bind_new_user(sqlx::query(sql::REGISTER_USER).bind(id.to_string()), &user)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await;
        let first = match inserted {
            Ok(row) => row.flag("is_superuser")?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(user_conflict(e));
            }
        };
        if !first {
            let refusal = match (admission.policy, &admission.invitation_hash) {
                (RegistrationPolicy::Open, _) => None,
                (RegistrationPolicy::Closed, _) | (RegistrationPolicy::Invite, None) => {
                    Some(admission.policy.refusal())
                }
                (RegistrationPolicy::Invite, Some(hash)) => {
                    let used = sqlx::query(
                        "UPDATE invitations SET used_at = ?1, used_by = ?2
                         WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?1
                           AND (email IS NULL OR lower(email) = lower(?4))",
                    )
                    .bind(&now)
                    .bind(id.to_string())
                    .bind(hash)
                    .bind(&user.email)
                    .run(&mut *tx)
                    .await?;
                    (used.rows_affected() == 0).then(Invitation::invalid)
                }
            };
            if let Some(refusal) = refusal {
                let _ = tx.rollback().await;
                return Err(refusal);
            }
        }
        tx.commit().await.map_err(db_err)?;
        self.user_by_id(&self.writer, id).await?.ok_or_else(|| Error::internal("user vanished after insert"))
    }

    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE token_hash = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(token_hash).optional(&self.reader).await?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO invitations (id, token_hash, email, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&invitation.token_hash)
        .bind(&invitation.email)
        .bind(invitation.created_by.map(|u| u.to_string()))
        .bind(ts(lore_core::now()))
        .bind(ts(invitation.expires_at))
        .run(&self.writer).await?;
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.to_string()).one(&self.writer).await?;
        invitation_from(&row)
    }

    async fn list_invitations(&self) -> Result<Vec<Invitation>> {
        let sql = format!("SELECT {INVITATION_COLS} FROM invitations ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).all(&self.reader).await?;
        rows.iter().map(invitation_from).collect()
    }

    async fn delete_invitation(&self, id: Id) -> Result<bool> {
        let done = sqlx::query("DELETE FROM invitations WHERE id = ?").bind(id.to_string()).run(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_login(&self, username_or_email: &str) -> Result<Option<(User, String)>> {
        let sql = format!(
            "SELECT {USER_COLS}, u.hashed_password FROM users u WHERE (u.username = ?1 OR u.email = ?1) AND u.kind = 'person'"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(username_or_email).optional(&self.reader).await?;
        row.map(|r| Ok((user_from(&r)?, r.text("hashed_password")?))).transpose()
    }

    async fn get_user(&self, id: Id) -> Result<Option<User>> {
        self.user_by_id(&self.reader, id).await
    }

    async fn record_login(&self, user_id: Id, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
            .bind(ts(at))
            .bind(user_id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn create_session(
        &self, user_id: Id, token_hash: &str, expires_at: Timestamp, ip: Option<&str>, user_agent: Option<&str>,
    ) -> Result<Id> {
        let id = lore_core::new_id();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, ip_address, user_agent)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(user_id.to_string())
        .bind(token_hash)
        .bind(ts(lore_core::now()))
        .bind(ts(expires_at))
        .bind(ip)
        .bind(user_agent)
        .run(&self.writer)
        .await?;
        Ok(id)
    }

    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let sql = format!(
            "SELECT {USER_COLS}, s.id AS session_id, s.expires_at AS session_expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(token_hash).optional(&self.reader).await?;
        row.as_ref().map(session_from).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).run(&self.writer).await?;
        Ok(())
    }

    async fn user_defaults(&self, user_id: Id) -> Result<UserDefaults> {
        Ok(self.get_user_config(user_id).await?.map(|c| c.defaults()).unwrap_or_default())
    }

    async fn revoke_sessions(&self, user_id: Id, keep: Option<&str>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND (? IS NULL OR token_hash <> ?)")
            .bind(user_id.to_string())
            .bind(keep)
            .bind(keep)
            .run(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET hashed_password = ?, updated_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users u WHERE u.kind = 'person' ORDER BY u.created_at, u.id LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(limit).bind(offset).all(&self.reader).await?;
        rows.iter().map(user_from).collect()
    }

    async fn set_user_active(&self, user_id: Id, active: bool) -> Result<Option<User>> {
        let mut tx = self.tx().await?;
        let done = sqlx::query("UPDATE users SET is_active = ?, updated_at = ? WHERE id = ? AND kind = 'person'")
            .bind(active)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .run(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if !active {
            // Locked out at once: sessions end; keys stop working through the owner check.
            sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user_id.to_string()).run(&mut *tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        self.user_by_id(&self.writer, user_id).await
    }

    async fn set_superuser(&self, user_id: Id, superuser: bool) -> Result<()> {
        sqlx::query("UPDATE users SET is_superuser = ?, is_staff = ?, updated_at = ? WHERE id = ?")
            .bind(superuser)
            .bind(superuser)
            .bind(ts(lore_core::now()))
            .bind(user_id.to_string())
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE kind = 'person'").one(&self.writer).await
    }

    async fn get_user_config(&self, user_id: Id) -> Result<Option<UserConfig>> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {CONFIG_COLS} FROM knowledge_base_configs WHERE user_id = ?")))
                .bind(user_id.to_string())
                .optional(&self.reader)
                .await?;
        row.as_ref().map(config_from).transpose()
    }

    async fn put_user_config(&self, user_id: Id, c: &UserConfig) -> Result<UserConfig> {
        let now = ts(lore_core::now());
        let query = sqlx::query(sql::PUT_USER_CONFIG).bind(lore_core::new_id().to_string()).bind(user_id.to_string());
        sql::bind_config(query, c).bind(&now).run(&self.writer).await?;
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {CONFIG_COLS} FROM knowledge_base_configs WHERE user_id = ?")))
                .bind(user_id.to_string())
                .one(&self.writer)
                .await?;
        config_from(&row)
    }

    async fn reencrypt_secrets(&self, f: &(dyn for<'s> Fn(&'s str) -> Result<String> + Send + Sync)) -> Result<u64> {
        let mut tx = self.tx().await?;
        let mut changed = 0;
        for (table, columns) in sql::SECRET_COLUMNS {
            for column in *columns {
                let select = format!("SELECT id, {column} AS secret FROM {table} WHERE {column} IS NOT NULL");
                let rows = sqlx::query(AssertSqlSafe(select)).all(&mut *tx).await?;
                for row in rows {
                    let id = row.text("id")?;
                    let updated = f(&row.text("secret")?)?;
                    let update = format!("UPDATE {table} SET {column} = ? WHERE id = ?");
                    sqlx::query(AssertSqlSafe(update)).bind(updated).bind(id).run(&mut *tx).await?;
                    changed += 1;
                }
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(changed)
    }
}
