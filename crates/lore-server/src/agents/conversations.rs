//! Conversations and their messages.

use lore_core::agent::{Agent, ChatMessage, Conversation};
use lore_core::model::{Id, Scope};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::service::not_found;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationParams {
    pub agent_id: Option<Id>,
}

/// Whether a key bound to one knowledge base may see this agent: it must reach that knowledge
/// base (all of the owner's when it names none); its answers are then drawn from it alone.
pub(crate) fn agent_within_binding(principal: &Principal, agent: &Agent) -> bool {
    principal
        .bound_knowledge_base()
        .is_none_or(|bound| agent.knowledge_base_ids.is_empty() || agent.knowledge_base_ids.contains(&bound))
}

/// Whether a key bound to one knowledge base may see this conversation: only those held through
/// a key bound to the same knowledge base, whose citations all come from it.
pub(crate) fn conversation_within_binding(principal: &Principal, conversation: &Conversation) -> bool {
    principal.bound_knowledge_base().is_none_or(|bound| {
        conversation.context.get(BOUND_KNOWLEDGE_BASE).and_then(Value::as_str) == Some(bound.to_string().as_str())
    })
}

/// The conversation context key naming the knowledge base a bound key held it through.
pub(crate) const BOUND_KNOWLEDGE_BASE: &str = "bound_knowledge_base_id";

pub async fn list_conversations(
    state: &AppState, principal: &Principal, params: ConversationParams,
) -> ApiResult<Vec<Conversation>> {
    principal.require(Scope::Read)?;
    let mut all = state.store.list_conversations(principal.owner_id(), params.agent_id).await?;
    all.retain(|c| conversation_within_binding(principal, c));
    Ok(all)
}

pub async fn get_conversation(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Conversation> {
    principal.require(Scope::Read)?;
    get_conversation_unscoped(state, principal, id).await
}

/// The conversation, checked against the key's binding but not its scopes.
pub(crate) async fn get_conversation_unscoped(
    state: &AppState, principal: &Principal, id: Id,
) -> ApiResult<Conversation> {
    state
        .store
        .get_conversation(principal.owner_id(), id)
        .await?
        .filter(|c| conversation_within_binding(principal, c))
        .ok_or_else(|| not_found("conversation"))
}

pub async fn conversation_messages(state: &AppState, principal: &Principal, id: Id) -> ApiResult<Vec<ChatMessage>> {
    get_conversation(state, principal, id).await?;
    Ok(state.store.list_messages(principal.owner_id(), id, None).await?)
}

pub async fn delete_conversation(state: &AppState, principal: &Principal, id: Id) -> ApiResult<()> {
    principal.require(Scope::Delete)?;
    get_conversation_unscoped(state, principal, id).await?;
    if !state.store.delete_conversation(principal.owner_id(), id).await? {
        return Err(not_found("conversation"));
    }
    Ok(())
}
