//! Agents, conversations, messages with citations, and agent usage on PostgreSQL.

use std::collections::HashMap;

use async_trait::async_trait;
use lore_core::agent::{Agent, AgentUsage, ChatMessage, Conversation};
use lore_core::error::{Code, Error, Result};
use lore_core::model::{Id, Timestamp};
use lore_core::store::AgentStore;
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::{AsTenant, PgStore, is_unique_violation};
use crate::fetch::Fetch;
use crate::rows::*;

impl PgStore {
    /// Fills in the links of agents, all read in three queries.
    async fn with_links(&self, mut agents: Vec<Agent>) -> Result<Vec<Agent>> {
        let Some(user_id) = agents.first().map(|a| a.user_id) else { return Ok(agents) };
        for (table, column) in AGENT_LINKS {
            let sql = format!(
                "SELECT l.aiagent_id, l.{column} AS target FROM {table} l JOIN ai_agents a ON a.id = l.aiagent_id
                 WHERE a.user_id = $1 ORDER BY l.id"
            );
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id).tenant_all(self, user_id).await?;
            attach_agent_links(&mut agents, column, &rows)?;
        }
        Ok(agents)
    }

    async fn write_agent(&self, agent: &Agent, insert: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let sql = if insert {
            "INSERT INTO ai_agents (name, description, agent_type, model_provider, model_name, model_parameters,
                conversation_mode, context_window, memory_retention_days, system_prompt, user_prompt_template,
                max_documents, similarity_threshold, rate_limit_per_hour, rate_limit_per_day, domain_keywords,
                expertise_areas, is_active, updated_at, id, user_id, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        } else {
            "UPDATE ai_agents SET name = $1, description = $2, agent_type = $3, model_provider = $4, model_name = $5,
                model_parameters = $6, conversation_mode = $7, context_window = $8, memory_retention_days = $9,
                system_prompt = $10, user_prompt_template = $11, max_documents = $12, similarity_threshold = $13,
                rate_limit_per_hour = $14, rate_limit_per_day = $15, domain_keywords = $16, expertise_areas = $17,
                is_active = $18, updated_at = $19, created_by = COALESCE(created_by, $23)
             WHERE id = $20 AND user_id = $21 AND $22 IS NOT NULL"
        };
        let done = sqlx::query(sql)
            .bind(&agent.name)
            .bind(&agent.description)
            .bind(&agent.agent_type)
            .bind(&agent.model_provider)
            .bind(&agent.model_name)
            .bind(Json(&agent.model_parameters))
            .bind(agent.conversation_mode.as_str())
            .bind(agent.context_window)
            .bind(agent.memory_retention_days)
            .bind(&agent.system_prompt)
            .bind(&agent.user_prompt_template)
            .bind(agent.max_documents)
            .bind(agent.similarity_threshold)
            .bind(agent.rate_limit_per_hour)
            .bind(agent.rate_limit_per_day)
            .bind(Json(&agent.domain_keywords))
            .bind(Json(&agent.expertise_areas))
            .bind(agent.is_active)
            .bind(agent.updated_at)
            .bind(agent.id)
            .bind(agent.user_id)
            .bind(agent.created_at)
            .bind(agent.created_by)
            .execute(&mut *tx)
            .await;
        let done = match done {
            Err(e) if is_unique_violation(&e, "ai_agents_") => {
                return Err(Error::new(
                    Code::AgentNameTaken,
                    format!("you already have an agent named '{}'", agent.name),
                ));
            }
            other => other.map_err(db_err)?,
        };
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for (table, _) in AGENT_LINKS {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE aiagent_id = $1")))
                .bind(agent.id)
                .run(&mut *tx)
                .await?;
        }
        // Each kind of link in one statement.
        for (table, column, ids) in [
            ("ai_agent_knowledge_bases", "knowledge_base_id", &agent.knowledge_base_ids),
            ("ai_agent_data_sources", "datasource_id", &agent.data_source_ids),
        ] {
            let sql = format!(
                "INSERT INTO {table} (aiagent_id, {column}) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"
            );
            sqlx::query(AssertSqlSafe(sql)).bind(agent.id).bind(ids).run(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO ai_agent_file_types (aiagent_id, filetype_id) SELECT $1, unnest($2::int8[]) ON CONFLICT DO NOTHING",
        )
        .bind(agent.id)
        .bind(&agent.file_type_ids)
        .run(&mut *tx).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait]
impl AgentStore for PgStore {
    async fn insert_agent(&self, agent: &Agent) -> Result<()> {
        self.write_agent(agent, true).await.map(|_| ())
    }

    async fn update_agent(&self, agent: &Agent) -> Result<bool> {
        self.write_agent(agent, false).await
    }

    async fn list_agents(&self, user_id: Id) -> Result<Vec<Agent>> {
        let sql = format!("SELECT {AGENT_COLS} FROM ai_agents WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id).tenant_all(self, user_id).await?;
        let agents = rows.iter().map(agent_from).collect::<Result<Vec<_>>>()?;
        self.with_links(agents).await
    }

    async fn get_agent(&self, user_id: Id, id: Id) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLS} FROM ai_agents WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(user_id).tenant_one(self, user_id).await?;
        let Some(row) = row else { return Ok(None) };
        let agent = agent_from(&row)?;
        // Links are read for the owner's agents; keep just this one.
        let mut agents = self.with_links(vec![agent]).await?;
        Ok(agents.pop())
    }

    async fn delete_agent(&self, user_id: Id, id: Id) -> Result<bool> {
        self.delete_owned("ai_agents", user_id, id).await
    }

    async fn missing_agent_links(
        &self, user_id: Id, data_source_ids: &[Id], file_type_ids: &[i64],
    ) -> Result<Option<String>> {
        for id in data_source_ids {
            // Read as the tenant: row-level security shows no one's rows to a query without one.
            let query =
                sqlx::query("SELECT id FROM data_sources WHERE id = $1 AND user_id = $2").bind(id).bind(user_id);
            if self.tenant_one(user_id, query).await?.is_none() {
                return Ok(Some(format!("data source {id}")));
            }
        }
        for id in file_type_ids {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM file_types WHERE id = $1").bind(id).optional(&self.pool).await?;
            if found.is_none() {
                return Ok(Some(format!("file type {id}")));
            }
        }
        Ok(None)
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<()> {
        sqlx::query(
            "INSERT INTO conversations (id, user_id, agent_id, title, context, created_at, updated_at)
             SELECT $1, $2, id, $3, $4, $5, $6 FROM ai_agents WHERE id = $7 AND user_id = $8",
        )
        .bind(c.id)
        .bind(c.user_id)
        .bind(&c.title)
        .bind(Json(&c.context))
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.agent_id)
        .bind(c.user_id)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_conversation(&self, user_id: Id, id: Id) -> Result<Option<Conversation>> {
        let row = sqlx::query(
            "SELECT id, user_id, agent_id, title, context, created_at, updated_at FROM conversations
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .tenant_one(self, user_id)
        .await?;
        row.as_ref().map(conversation_from).transpose()
    }

    async fn list_conversations(&self, user_id: Id, agent_id: Option<Id>) -> Result<Vec<Conversation>> {
        let rows = sqlx::query(
            "SELECT id, user_id, agent_id, title, context, created_at, updated_at FROM conversations
             WHERE user_id = $1 AND ($2::uuid IS NULL OR agent_id = $2) ORDER BY updated_at DESC, id DESC",
        )
        .bind(user_id)
        .bind(agent_id)
        .tenant_all(self, user_id)
        .await?;
        rows.iter().map(conversation_from).collect()
    }

    async fn delete_conversation(&self, user_id: Id, id: Id) -> Result<bool> {
        self.delete_owned("conversations", user_id, id).await
    }

    async fn list_messages(
        &self, user_id: Id, conversation_id: Id, since: Option<Timestamp>,
    ) -> Result<Vec<ChatMessage>> {
        let rows = sqlx::query(
            "SELECT m.id, m.conversation_id, m.role, m.content, m.metadata, m.created_at
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.conversation_id = $1 AND c.user_id = $2 AND ($3::timestamptz IS NULL OR m.created_at >= $3)
             ORDER BY m.created_at, m.seq",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(since)
        .tenant_all(self, user_id)
        .await?;
        let mut messages = rows.iter().map(message_from).collect::<Result<Vec<_>>>()?;
        let position: HashMap<Id, usize> = messages.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        let cited = sqlx::query(
            "SELECT cd.message_id, cd.citation_index, cd.document_id, cd.chunk_id, cd.score, d.filename,
                    left(ch.content, 240) AS snippet, ch.metadata AS chunk_metadata
             FROM message_cited_documents cd
             JOIN messages m ON m.id = cd.message_id
             LEFT JOIN documents d ON d.id = cd.document_id
             LEFT JOIN document_chunks ch ON ch.id = cd.chunk_id
             WHERE m.conversation_id = $1 ORDER BY cd.citation_index, cd.id",
        )
        .bind(conversation_id)
        .tenant_all(self, user_id)
        .await?;
        for row in cited {
            let Some(&i) = position.get(&row.id("message_id")?) else { continue };
            messages[i].citations.push(citation_from(&row)?);
        }
        Ok(messages)
    }

    async fn append_messages(&self, user_id: Id, conversation_id: Id, messages: &[ChatMessage]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let owned = sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2 AND user_id = $3")
            .bind(lore_core::now())
            .bind(conversation_id)
            .bind(user_id)
            .run(&mut *tx)
            .await?;
        if owned.rows_affected() == 0 {
            return Err(Error::new(Code::NotFound, "no such conversation"));
        }
        for m in messages {
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, role, content, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(m.id)
            .bind(conversation_id)
            .bind(&m.role)
            .bind(&m.content)
            .bind(Json(&m.metadata))
            .bind(m.created_at)
            .run(&mut *tx).await?;
            for c in &m.citations {
                // A chunk deleted meanwhile still leaves its document cited.
                sqlx::query(
                    "INSERT INTO message_cited_documents (message_id, document_id, chunk_id, citation_index, score)
                     SELECT $1, d.id, (SELECT id FROM document_chunks WHERE id = $3), $4, $5
                     FROM documents d WHERE d.id = $2 AND d.user_id = $6",
                )
                .bind(m.id)
                .bind(c.document_id)
                .bind(c.chunk_id)
                .bind(c.index)
                .bind(c.score)
                .bind(user_id)
                .run(&mut *tx)
                .await?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn insert_agent_call(&self, u: &AgentUsage) -> Result<()> {
        let sql = format!(
            "INSERT INTO agent_usage ({USAGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12, $13)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(u.id)
            .bind(u.user_id)
            .bind(u.agent_id)
            .bind(u.conversation_id)
            .bind(&u.model_provider)
            .bind(&u.model_name)
            .bind(u.prompt_tokens)
            .bind(u.completion_tokens)
            .bind(u.tokens_used)
            .bind(&u.cost)
            .bind(u.response_time)
            .bind(Json(&u.request_data))
            .bind(u.created_at)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn agent_calls_since(&self, agent_id: Id, since: Timestamp) -> Result<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS calls, MIN(created_at) AS oldest FROM agent_usage WHERE agent_id = $1 AND created_at >= $2",
        )
        .bind(agent_id)
        .bind(since)
        .one(&self.pool).await?;
        Ok((row.int("calls")?, row.opt_time("oldest")?))
    }

    async fn update_agent_call(&self, u: &AgentUsage) -> Result<()> {
        sqlx::query(
            "UPDATE agent_usage SET conversation_id = $1, model_provider = $2, model_name = $3, prompt_tokens = $4,
                completion_tokens = $5, tokens_used = $6, cost = $7::numeric, response_time = $8, request_data = $9
             WHERE id = $10 AND user_id = $11",
        )
        .bind(u.conversation_id)
        .bind(&u.model_provider)
        .bind(&u.model_name)
        .bind(u.prompt_tokens)
        .bind(u.completion_tokens)
        .bind(u.tokens_used)
        .bind(&u.cost)
        .bind(u.response_time)
        .bind(Json(&u.request_data))
        .bind(u.id)
        .bind(u.user_id)
        .run(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_agent_call(&self, id: Id) -> Result<()> {
        sqlx::query("DELETE FROM agent_usage WHERE id = $1").bind(id).run(&self.pool).await?;
        Ok(())
    }

    async fn list_agent_calls(
        &self, user_id: Id, from: Timestamp, to: Timestamp, agent_id: Option<Id>,
    ) -> Result<Vec<AgentUsage>> {
        let sql = format!(
            "SELECT {} FROM agent_usage
             WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 AND ($4::uuid IS NULL OR agent_id = $4)
             ORDER BY created_at, id",
            USAGE_COLS.replace(" cost,", " cost::text AS cost,")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(from)
            .bind(to)
            .bind(agent_id)
            .tenant_all(self, user_id)
            .await?;
        rows.iter().map(usage_from).collect()
    }
}
