//! Agents, their conversations and their usage.

use async_trait::async_trait;

use crate::agent::{Agent, AgentUsage, ChatMessage, Conversation};
use crate::error::Result;
use crate::model::*;

/// Agents, their conversations and their usage. Part of every [`Store`].
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Inserts with its links; fails with `agent_name_taken` when the owner has one of that name.
    /// The links must name the owner's own knowledge bases and data sources (the caller checks).
    async fn insert_agent(&self, agent: &Agent) -> Result<()>;
    /// Replaces every field and link; false when the owner has no such agent.
    async fn update_agent(&self, agent: &Agent) -> Result<bool>;
    async fn list_agents(&self, user_id: Id) -> Result<Vec<Agent>>;
    async fn get_agent(&self, user_id: Id, id: Id) -> Result<Option<Agent>>;
    async fn delete_agent(&self, user_id: Id, id: Id) -> Result<bool>;
    /// The first of these data sources that is not the owner's, or file types that do not exist,
    /// described for an error message; `None` when all are fine.
    async fn missing_agent_links(
        &self, user_id: Id, data_source_ids: &[Id], file_type_ids: &[i64],
    ) -> Result<Option<String>>;

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()>;
    async fn get_conversation(&self, user_id: Id, id: Id) -> Result<Option<Conversation>>;
    /// Most recently active first.
    async fn list_conversations(&self, user_id: Id, agent_id: Option<Id>) -> Result<Vec<Conversation>>;
    async fn delete_conversation(&self, user_id: Id, id: Id) -> Result<bool>;
    /// Oldest first, with citations (file name and snippet filled in); only those created at or
    /// after `since` when given.
    async fn list_messages(
        &self, user_id: Id, conversation_id: Id, since: Option<Timestamp>,
    ) -> Result<Vec<ChatMessage>>;
    /// Appends messages and their citations in one transaction and marks the conversation active.
    async fn append_messages(&self, user_id: Id, conversation_id: Id, messages: &[ChatMessage]) -> Result<()>;

    /// Records a call as it starts (so that concurrent calls on any node count it at once).
    async fn insert_agent_call(&self, usage: &AgentUsage) -> Result<()>;
    /// Calls of an agent since a moment: how many, and when the oldest of them started.
    async fn agent_calls_since(&self, agent_id: Id, since: Timestamp) -> Result<(i64, Option<Timestamp>)>;
    /// Writes a call's outcome: tokens, cost, time, status.
    async fn update_agent_call(&self, usage: &AgentUsage) -> Result<()>;
    async fn delete_agent_call(&self, id: Id) -> Result<()>;
    /// The owner's calls in `[from, to)`, optionally of one agent, oldest first.
    async fn list_agent_calls(
        &self, user_id: Id, from: Timestamp, to: Timestamp, agent_id: Option<Id>,
    ) -> Result<Vec<AgentUsage>>;
}
