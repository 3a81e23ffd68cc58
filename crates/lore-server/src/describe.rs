//! `POST /v1/chunking/from-description`: a chunking configuration from plain language. With a
//! chat provider (named in the request, or the first the user has a key for: OpenAI, Anthropic,
//! Cohere) the language model is asked for the configuration as JSON, which is validated like any
//! other; without one, or when its answer cannot be used, the deterministic reader of
//! `lore_ingest::describe` reads the description.

use std::time::Duration;

use lore_core::chunking::{ChunkingConfig, Strategy};
use lore_core::error::Code;
use lore_core::model::Id;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DescriptionRequest {
    pub description: String,
    /// A chat provider to ask (`openai`, `anthropic`, `cohere`, or an OpenAI-compatible name), or
    /// `none` for the built-in rules. Default: the first provider the user has a key for.
    pub llm_provider: Option<String>,
    /// The provider's model; each provider has a small default.
    pub model: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DescriptionResponse {
    pub chunking_config: ChunkingConfig,
    pub strategy: Strategy,
    pub understood: Vec<String>,
    /// Set when a language model was asked but its answer could not be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

fn default_model(provider: &str) -> &'static str {
    match provider {
        "anthropic" => "claude-3-5-haiku-latest",
        "cohere" => "command-r",
        "deepseek" => "deepseek-chat",
        "qwen" => "qwen-plus",
        _ => "gpt-4o-mini",
    }
}

const INSTRUCTIONS: &str = r#"You turn a plain-language description of how documents should be split into chunks into a chunking configuration for a search engine. Reply with one JSON object and nothing else:
{"chunking_config": {"strategy_type": "...", "config": {...}}, "reasoning": "one or two sentences, in the language of the description"}
Strategies and their config keys (sizes count characters; one Chinese character counts as one):
- fixed: chunk_size (1-20000), chunk_overlap (0 up to half of chunk_size)
- paragraph: max_chunk_size, min_chunk_size, merge_short_paragraphs (true/false), max_paragraphs_per_chunk
- sliding_window: window_size, step (1 up to window_size)
- custom: max_chunk_size, separators (list of strings), regex, split_on_headings (true/false)
- hierarchical: parent_size, child_size, child_overlap
- semantic: max_chunk_size, min_chunk_size, breakpoint_percentile (50-99)
Use only these keys, and leave out those the description does not determine."#;

/// Which provider to ask, if any.
async fn provider_for(state: &AppState, user_id: Id, named: Option<&str>) -> ApiResult<Option<String>> {
    match named.map(str::trim) {
        Some("none" | "rules" | "") => return Ok(None),
        Some(p) if lore_llm::protocol_of(p).is_some() => return Ok(Some(p.to_string())),
        Some(p) => {
            return Err(error(
                Code::ValidationFailed,
                format!("unknown llm_provider '{p}'; expected one of {} or none", lore_llm::PROVIDERS[1..].join(", ")),
            ));
        }
        None => {}
    }
    let Some(config) = state.store.get_user_config(user_id).await? else { return Ok(None) };
    Ok([
        ("openai", &config.openai_api_key),
        ("anthropic", &config.anthropic_api_key),
        ("cohere", &config.cohere_api_key),
    ]
    .into_iter()
    .find(|(_, key)| key.is_some())
    .map(|(p, _)| p.to_string()))
}

/// Asks the model; `Err` says why its answer cannot be used.
async fn ask(
    state: &AppState, principal: &Principal, provider: &str, model: &str, description: &str,
) -> Result<(ChunkingConfig, Strategy, String), String> {
    let params = json!({"timeout_seconds": 30});
    let chat = crate::agents::provider_model(state, principal.owner_id(), provider, model, &params)
        .await
        .map_err(|e| e.error.message)?;
    let request = lore_llm::ChatRequest {
        messages: vec![
            lore_llm::Message::new(lore_llm::Role::System, INSTRUCTIONS),
            lore_llm::Message::new(lore_llm::Role::User, description),
        ],
        max_tokens: Some(400),
        temperature: Some(0.0),
        top_p: None,
        json_output: true,
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), lore_llm::complete(chat.as_ref(), request))
        .await
        .map_err(|_| "the model took too long".to_string())?
        .map_err(|e| e.to_string())?;
    crate::metrics::llm_call(provider, "ok", answer.usage.prompt_tokens, answer.usage.completion_tokens);
    let reply = lore_llm::json_object(&answer.text).ok_or("the model's answer is not JSON")?;
    let mut config = ChunkingConfig::from_value(reply["chunking_config"].clone())
        .map_err(|e| format!("the model's configuration is invalid: {}", e.message))?;
    let defaults = state.store.user_defaults(principal.owner_id()).await.map_err(|e| e.message)?;
    let strategy =
        config.to_strategy(&defaults).map_err(|e| format!("the model's configuration is invalid: {}", e.message))?;
    let reasoning = reply["reasoning"].as_str().unwrap_or_default().trim().to_string();
    config.llm_provider = Some(format!("{provider}/{model}"));
    config.generation_reasoning = (!reasoning.is_empty()).then(|| reasoning.clone());
    Ok((config, strategy, reasoning))
}

pub async fn from_description(
    state: &AppState, principal: &Principal, req: DescriptionRequest,
) -> ApiResult<DescriptionResponse> {
    let description = req.description.trim();
    if description.is_empty() || description.chars().count() > 2000 {
        return Err(error(Code::ValidationFailed, "description must be 1 to 2000 characters"));
    }
    let mut warning = None;
    // Only the owner, signed in, spends their model credits; a key gets the built-in rules.
    let named = if principal.api_key().is_some() { Some("rules") } else { req.llm_provider.as_deref() };
    if let Some(provider) = provider_for(state, principal.owner_id(), named).await? {
        let model = req.model.clone().unwrap_or_else(|| default_model(&provider).to_string());
        match ask(state, principal, &provider, &model, description).await {
            Ok((mut config, strategy, reasoning)) => {
                config.nl_description = Some(description.to_string());
                let understood = vec![format!("{provider}/{model}: {reasoning}")];
                return Ok(DescriptionResponse { chunking_config: config, strategy, understood, warning: None });
            }
            Err(why) => {
                tracing::warn!(provider = %provider, reason = %why, "chunking from a description falls back to the rules");
                warning = Some(format!(
                    "{provider}/{model} could not be used ({why}); the built-in rules read the description"
                ));
            }
        }
    }
    let reading = lore_ingest::describe::read(description);
    let Some(mut config) = reading.config else {
        let understood =
            if reading.understood.is_empty() { "nothing".to_string() } else { reading.understood.join("; ") };
        return Err(error(
            Code::DescriptionNotUnderstood,
            format!(
                "the description does not say how to chunk; understood: {understood}. Try e.g. \"按段落分块，每块最多800字\" or \"500-character chunks with 50 overlap\""
            ),
        ));
    };
    config.nl_description.get_or_insert_with(|| description.to_string());
    let defaults = state.store.user_defaults(principal.owner_id()).await?;
    let strategy = config.to_strategy(&defaults)?;
    Ok(DescriptionResponse { chunking_config: config, strategy, understood: reading.understood, warning })
}
