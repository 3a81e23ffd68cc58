//! Chunks curated by hand: `PATCH /v1/chunks/{id}` changes a chunk's text, metadata or whether
//! search returns it; `POST /v1/documents/{id}/chunks` adds one. New text is indexed as
//! processing indexes it: its terms (with the document's title, as the worker adds it) and its
//! embedding in the knowledge base's search space. Writing takes the `upload` scope and the key's
//! binding; another owner's chunk is not found.

use lore_core::error::Code;
use lore_core::model::{Chunk, ChunkEdit, ChunkText, Document, KbStatus, KnowledgeBase, NewChunk, Scope};
use lore_ingest::segment;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::error::{ApiResult, error};
use crate::service::{not_found, owned_document, owned_kb};
use crate::state::AppState;

/// The longest text a chunk may be given by hand, in characters.
pub const MAX_CHUNK_CHARS: usize = 20_000;
/// The longest question of a Q&A entry, in characters (imported or written by hand).
pub const MAX_QUESTION_CHARS: usize = 2_000;
/// The largest metadata object, serialized.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `PATCH /v1/chunks/{id}`: a field left out stays as it is.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkUpdate {
    /// New text: re-indexed for full text and re-embedded.
    pub content: Option<String>,
    /// Replaces the chunk's metadata.
    pub metadata: Option<Map<String, Value>>,
    /// `false`: search never returns the chunk (it is kept); `true`: it returns.
    pub enabled: Option<bool>,
}

/// `POST /v1/documents/{id}/chunks`: a chunk written by hand, after the document's last: its
/// `content`, or a `question` and its `answer` (a Q&A entry, found by its question, and by its
/// answer too with `match_answer`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChunkRequest {
    /// The text, unless a question and answer are given. (Checked after the document is found,
    /// so that another owner's document answers 404 whatever the body.)
    #[serde(default)]
    pub content: String,
    pub metadata: Option<Map<String, Value>>,
    pub question: Option<String>,
    pub answer: Option<String>,
    #[serde(default)]
    pub match_answer: bool,
}

pub async fn get_chunk(state: &AppState, principal: &Principal, id: lore_core::model::Id) -> ApiResult<Chunk> {
    principal.require(Scope::Read)?;
    let chunk = state.store.get_chunk(principal.owner_id(), id).await?.ok_or_else(|| not_found("chunk"))?;
    principal.require_knowledge_base(chunk.knowledge_base_id)?;
    Ok(chunk)
}

pub async fn update_chunk(
    state: &AppState, principal: &Principal, id: lore_core::model::Id, req: ChunkUpdate,
) -> ApiResult<Chunk> {
    principal.require(Scope::Upload)?;
    let chunk = state.store.get_chunk(principal.owner_id(), id).await?.ok_or_else(|| not_found("chunk"))?;
    principal.require_knowledge_base(chunk.knowledge_base_id)?;
    let (document, kb) = writable(state, principal, chunk.document_id).await?;
    if let Some(metadata) = &req.metadata {
        check_metadata(metadata)?;
    }
    let metadata = req.metadata.map(Value::Object);
    // What the chunk is found by besides its text (a Q&A entry's question, questions and summaries
    // generated or written by hand) is read from its metadata: changing it re-embeds the chunk as a new text does.
    let after = metadata.as_ref().unwrap_or(&chunk.metadata);
    let matched = crate::embedding::qa_embed_text(after);
    let targets_changed = crate::questions::of(after) != crate::questions::of(&chunk.metadata)
        || crate::summaries::of(after) != crate::summaries::of(&chunk.metadata)
        || matched != crate::embedding::qa_embed_text(&chunk.metadata);
    let content = req.content.as_deref().unwrap_or(&chunk.content);
    let text = match content != chunk.content || targets_changed {
        true => Some(indexed_text(state, &kb, &document, content, matched.clone(), after).await?),
        false => None,
    };
    let content = text.as_ref().map_or(chunk.content.as_str(), |t| t.content.as_str());
    let terms = match &matched {
        Some(m) => segment::terms(m).join(" "),
        None => terms_of(&document, content),
    };
    let edit = ChunkEdit {
        fts_terms: crate::questions::with_terms(terms, after),
        text,
        metadata,
        enabled: req.enabled,
        at: lore_core::now(),
    };
    state.store.update_chunk(principal.owner_id(), id, edit).await?.ok_or_else(|| not_found("chunk"))
}

pub async fn add_chunk(
    state: &AppState, principal: &Principal, document_id: lore_core::model::Id, req: NewChunkRequest,
) -> ApiResult<Chunk> {
    principal.require(Scope::Upload)?;
    let (document, kb) = writable(state, principal, document_id).await?;
    // Chunks added by hand count against the same budget as processing's.
    let max = lore_core::budget::budgets().max_chunks_per_document;
    if document.chunk_count >= max as i64 {
        return Err(lore_core::budget::exceeded(
            Code::TooManyChunks,
            format!("this document has {} chunks; one document may have at most {max}", document.chunk_count),
            "max-chunks-per-document",
        )
        .into());
    }
    let mut metadata = req.metadata.unwrap_or_default();
    check_metadata(&metadata)?;
    // A Q&A entry is stored and matched as the `qa` chunking strategy stores a table's rows.
    let (content, matched) = match (&req.question, &req.answer) {
        (None, None) => (req.content.clone(), None),
        (Some(q), _) if q.trim().chars().count() > MAX_QUESTION_CHARS => {
            return Err(error(
                Code::ValidationFailed,
                format!("a question must have at most {MAX_QUESTION_CHARS} characters"),
            ));
        }
        (Some(q), Some(a)) if !q.trim().is_empty() && !a.trim().is_empty() && req.content.is_empty() => {
            let (q, a) = (q.trim(), a.trim());
            metadata.insert("strategy".into(), json!("qa"));
            let mut qa = json!({"question": q, "answer": a});
            if req.match_answer {
                qa["match_answer"] = json!(true);
            }
            metadata.insert("qa".into(), qa);
            let content = format!("{q}\n{a}");
            let matched = if req.match_answer { content.clone() } else { q.to_string() };
            (content, Some(matched))
        }
        _ => {
            return Err(error(
                Code::ValidationFailed,
                "give a chunk's content, or a question and its answer (not both)",
            ));
        }
    };
    let metadata = Value::Object(metadata);
    let text = indexed_text(state, &kb, &document, &content, matched.clone(), &metadata).await?;
    let terms = match &matched {
        Some(m) => segment::terms(m).join(" "),
        None => terms_of(&document, &text.content),
    };
    let chunk = NewChunk {
        fts_terms: crate::questions::with_terms(terms, &metadata),
        embed_text: matched,
        content: text.content,
        content_hash: text.content_hash,
        chunk_index: 0,
        metadata,
        parent_index: None,
        searchable: true,
        embedding: text.embedding,
        summary_embedding: text.summary_embedding,
    };
    state
        .store
        .add_chunk(principal.owner_id(), document_id, chunk, text.embedding_model, lore_core::now())
        .await?
        .ok_or_else(|| error(Code::ValidationFailed, "chunks can be added to a processed document only"))
}

/// The chunk's document and knowledge base, which must take writes.
async fn writable(
    state: &AppState, principal: &Principal, document_id: lore_core::model::Id,
) -> ApiResult<(Document, KnowledgeBase)> {
    let document = owned_document(state, principal, document_id).await?;
    let kb = owned_kb(state, principal, document.knowledge_base_id).await?;
    if kb.status == KbStatus::Archived {
        return Err(error(
            Code::KnowledgeBaseArchived,
            "this knowledge base is archived; reactivate it to edit chunks",
        ));
    }
    if document.soft_deleted_at.is_some() {
        return Err(not_found("document"));
    }
    Ok((document, kb))
}

fn check_metadata(metadata: &Map<String, Value>) -> ApiResult<()> {
    let size = serde_json::to_vec(metadata).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(error(Code::ValidationFailed, format!("metadata must be at most {MAX_METADATA_BYTES} bytes")));
    }
    Ok(())
}

/// New text with its hash and embeddings, in the knowledge base's search space (a change of
/// model under way re-embeds it with the rest).
async fn indexed_text(
    state: &AppState, kb: &KnowledgeBase, document: &Document, content: &str, embed_text: Option<String>,
    metadata: &Value,
) -> ApiResult<ChunkText> {
    let content = content.trim();
    let chars = content.chars().count();
    if chars == 0 || chars > MAX_CHUNK_CHARS {
        return Err(error(
            Code::ValidationFailed,
            format!("a chunk's content must have 1 to {MAX_CHUNK_CHARS} characters"),
        ));
    }
    // A Q&A entry's embedding is of its question (and answer): kept apart from the same text
    // embedded whole, as processing keeps it.
    let hash = match &embed_text {
        Some(matched) => crate::embedding::qa_hash(content, matched == content),
        None => lore_ingest::sha256_hex(content.as_bytes()),
    };
    let mut chunk = NewChunk {
        content: content.to_string(),
        content_hash: hash,
        chunk_index: 0,
        metadata: metadata.clone(),
        fts_terms: String::new(),
        parent_index: None,
        searchable: true,
        embedding: None,
        summary_embedding: None,
        embed_text,
    };
    let mut embedding_model = None;
    if let Some(embedder) = crate::embedding::search_embedder(state, kb).await? {
        let chunks = std::slice::from_mut(&mut chunk);
        crate::embedding::embed_chunks(
            state,
            kb.user_id,
            embedder.as_ref(),
            chunks,
            std::slice::from_ref(&document.title),
        )
        .await?;
        embedding_model = Some(embedder.space().to_string());
    }
    Ok(ChunkText {
        content: chunk.content,
        content_hash: chunk.content_hash,
        embedding: chunk.embedding,
        summary_embedding: chunk.summary_embedding,
        embedding_model,
    })
}

/// A chunk's full-text terms, as processing indexes them (with its document's title).
fn terms_of(document: &Document, content: &str) -> String {
    let title = document.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let title_terms = title.map(|t| segment::terms(t).join(" ")).unwrap_or_default();
    crate::worker::chunk_terms(title.map(|t| (t, title_terms.as_str())), content)
}
