//! Chunking previews.

use lore_core::chunking::{self, ChunkingConfig, Strategy};
use lore_core::error::{Code, Error};
use lore_core::model::*;
use lore_ingest::detect::FileKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub text: String,
    pub chunking_config: Option<Value>,
    pub knowledge_base_id: Option<Id>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewChunk {
    pub chunk_index: usize,
    pub content: String,
    pub char_start: usize,
    pub char_end: usize,
    pub char_count: usize,
    /// The chunk's size in the configuration's unit (characters, or the model's tokens).
    pub size: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewResponse {
    pub strategy: Strategy,
    /// What the strategy's sizes count.
    pub size_unit: chunking::SizeUnit,
    pub chunk_count: usize,
    pub chunks: Vec<PreviewChunk>,
}

/// The longest text a semantic chunking preview embeds.
pub(crate) const SEMANTIC_PREVIEW_CHARS: usize = 20_000;

pub async fn preview_chunking(
    state: &AppState, principal: &Principal, req: PreviewRequest,
) -> ApiResult<PreviewResponse> {
    let defaults = state.store.user_defaults(principal.owner_id()).await?;
    let kb = match req.knowledge_base_id {
        Some(id) => Some(owned_kb(state, principal, id).await?),
        None => None,
    };
    let kb_config = kb.as_ref().and_then(|kb| kb.settings.chunking_config.clone());
    let doc_config = req.chunking_config.map(ChunkingConfig::from_value).transpose()?;
    let chosen = doc_config.as_ref().or(kb_config.as_ref());
    // A bad configuration is refused before any model is loaded.
    if let Some(config) = chosen {
        config.to_strategy(&defaults)?;
    }
    // Semantic chunking and sizes in tokens (the default's among them) need the knowledge base's
    // model, or the user's default.
    let needs_model =
        chosen.is_none_or(|c| c.strategy_type == "semantic" || c.size_unit() == chunking::SizeUnit::Tokens);
    let embedder = match needs_model {
        true => {
            let embedding = kb.as_ref().and_then(|kb| kb.settings.embedding_config.as_ref());
            crate::embedding::embedder_of(state, principal.owner_id(), embedding).await?
        }
        false => None,
    };
    let window = crate::embedding::window_of(embedder.as_ref());
    let (strategy, size_unit) = chunking::resolve(doc_config.as_ref(), kb_config.as_ref(), &defaults, window)?;
    let text = req.text;
    let text_chars = text.chars().count();
    // A text that must give more chunks than a document may have is refused before any work.
    match size_unit {
        chunking::SizeUnit::Characters => strategy.check_text_budget(text_chars)?,
        chunking::SizeUnit::Tokens => strategy.check_token_budget(&text)?,
    }
    // A semantic preview embeds every sentence while the caller waits: a bounded sample.
    if matches!(strategy, Strategy::Semantic { .. }) && text_chars > SEMANTIC_PREVIEW_CHARS {
        return Err(error(
            Code::ResourceLimitExceeded,
            format!(
                "a semantic chunking preview takes at most {SEMANTIC_PREVIEW_CHARS} characters; preview a part of the text"
            ),
        ));
    }
    let counter = (size_unit == chunking::SizeUnit::Tokens).then(|| crate::embedding::token_counter(embedder.as_ref()));
    let chunks = match (&strategy, &embedder) {
        (Strategy::Semantic { .. }, Some(embedder)) => {
            let measure = crate::embedding::measure_of(counter.as_ref());
            crate::embedding::chunk_with(embedder.as_ref(), &text, &strategy, measure).await?
        }
        _ => {
            let (chosen, counter) = (strategy.clone(), counter.clone());
            tokio::task::spawn_blocking(move || {
                lore_ingest::chunk::chunk_measured(&text, &chosen, crate::embedding::measure_of(counter.as_ref()))
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
        }
    };
    let size_of = |content: &str| match &counter {
        Some(count) => count(content),
        None => content.chars().count(),
    };
    chunking::check_chunk_count(chunks.len(), text_chars)?;
    let chunks: Vec<PreviewChunk> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| PreviewChunk {
            chunk_index: i,
            char_count: c.char_end - c.char_start,
            size: size_of(&c.content),
            char_start: c.char_start,
            char_end: c.char_end,
            content: c.content,
        })
        .collect();
    Ok(PreviewResponse { strategy, size_unit, chunk_count: chunks.len(), chunks })
}

/// The parser for a stored document: its type's own, else the first parser its registry entry names.
pub fn kind_of(document: &Document, types: &[FileType]) -> FileKind {
    FileKind::from_name(&document.file_type, &document.filename)
        .or_else(|| {
            let entry = types.iter().find(|t| Some(t.id) == document.file_type_id || t.name == document.file_type)?;
            entry.parsers.iter().find_map(|p| FileKind::from_name(p, &document.filename))
        })
        .unwrap_or(FileKind::Binary("unknown"))
}
