//! Agents' usage: calls, tokens and cost.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::Duration as ChronoDuration;
use lore_core::error::Code;
use lore_core::model::{Id, Scope, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUsageParams {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub agent_id: Option<Id>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct AgentDay {
    pub day: String,
    pub agent_id: Id,
    pub agent_name: Option<String>,
    pub calls: i64,
    pub failed: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub tokens: i64,
    pub cost: String,
    pub avg_response_ms: f64,
    pub max_response_ms: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentUsageResponse {
    pub from: Timestamp,
    pub to: Timestamp,
    pub days: Vec<AgentDay>,
    pub total_calls: i64,
    pub total_tokens: i64,
    pub total_cost: String,
}

/// `GET /v1/usage/agents`: tokens, cost and latency by agent and day (UTC), 30 days by default.
pub async fn usage(state: &AppState, principal: &Principal, params: AgentUsageParams) -> ApiResult<AgentUsageResponse> {
    principal.require(Scope::Read)?;
    let to = params.to.unwrap_or_else(|| lore_core::now() + ChronoDuration::seconds(1));
    let from = params.from.unwrap_or(to - ChronoDuration::days(30));
    if from >= to || to - from > ChronoDuration::days(366) {
        return Err(error(Code::ValidationFailed, "from must be before to, at most 366 days apart"));
    }
    let names: HashMap<Id, String> =
        state.store.list_agents(principal.owner_id()).await?.into_iter().map(|a| (a.id, a.name)).collect();
    let calls = state.store.list_agent_calls(principal.owner_id(), from, to, params.agent_id).await?;
    let mut days: Vec<(AgentDay, Decimal, f64)> = Vec::new();
    let mut index: HashMap<(String, Id), usize> = HashMap::new();
    let (mut total_tokens, mut total_cost) = (0i64, Decimal::ZERO);
    for call in &calls {
        let day = call.created_at.format("%Y-%m-%d").to_string();
        let i = *index.entry((day.clone(), call.agent_id)).or_insert_with(|| {
            days.push((
                AgentDay {
                    day,
                    agent_id: call.agent_id,
                    agent_name: names.get(&call.agent_id).cloned(),
                    ..Default::default()
                },
                Decimal::ZERO,
                0.0,
            ));
            days.len() - 1
        });
        let (entry, cost, time) = &mut days[i];
        let cost_of_call = Decimal::from_str(&call.cost).unwrap_or(Decimal::ZERO);
        entry.calls += 1;
        if call.request_data["status"] == "failed" {
            entry.failed += 1;
        }
        entry.prompt_tokens += call.prompt_tokens;
        entry.completion_tokens += call.completion_tokens;
        entry.tokens += call.tokens_used;
        entry.max_response_ms = entry.max_response_ms.max(call.response_time * 1000.0);
        *cost += cost_of_call;
        *time += call.response_time;
        total_tokens += call.tokens_used;
        total_cost += cost_of_call;
    }
    let days = days
        .into_iter()
        .map(|(mut entry, cost, time)| {
            entry.cost = cost.normalize().to_string();
            entry.avg_response_ms = time * 1000.0 / entry.calls.max(1) as f64;
            entry
        })
        .collect();
    Ok(AgentUsageResponse {
        from,
        to,
        days,
        total_calls: calls.len() as i64,
        total_tokens,
        total_cost: total_cost.normalize().to_string(),
    })
}
