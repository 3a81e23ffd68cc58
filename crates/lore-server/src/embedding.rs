//! Which embedder a knowledge base uses, and embedding chunks with the cache in front.
//!
//! The knowledge base's `settings.embedding_config` wins; then the owner's
//! `default_embedding_model` (`provider/model` shorthand); then the server's default (the built-in
//! multilingual-e5-small), unless the server runs with embeddings off.

use std::sync::Arc;

use lore_core::error::{Code, Error};
use lore_core::model::{Id, KnowledgeBase, NewChunk};
use lore_embed::{EmbedError, Embedder, EmbeddingConfig, InputKind, ProviderSecrets};
use lore_ingest::chunk::Measure;

/// Counts tokens for chunk sizes: the embedding model's own tokenizer when it is local, an
/// estimate otherwise (remote models, or embeddings off).
pub type TokenCounter = Arc<dyn Fn(&str) -> usize + Send + Sync>;

pub fn token_counter(embedder: Option<&Arc<dyn Embedder>>) -> TokenCounter {
    match embedder {
        Some(e) if e.count_tokens("").is_some() => {
            let e = e.clone();
            Arc::new(move |text: &str| e.count_tokens(text).unwrap_or_else(|| lore_core::tokens::estimate(text)))
        }
        _ => Arc::new(lore_core::tokens::estimate),
    }
}

/// The default chunking's window: the tokens the model reads at once, less room for the title
/// and prefix embedded in front of a chunk; 512 when the model does not say.
pub fn window_of(embedder: Option<&Arc<dyn Embedder>>) -> usize {
    match embedder.and_then(|e| e.window()) {
        Some(window) => window - window / 8,
        None => lore_core::chunking::DEFAULT_WINDOW_TOKENS,
    }
}

/// The measure of a size unit, with `counter` for tokens.
pub fn measure_of(counter: Option<&TokenCounter>) -> Measure<'_> {
    match counter {
        Some(c) => Measure::Tokens(c.as_ref()),
        None => Measure::Chars,
    }
}

use crate::state::AppState;

/// Chunks embedded per call: bounds memory and lets a large document report progress.
const BATCH: usize = 32;
/// Extractive summaries keep a chunk's most central sentences, up to about this many tokens
/// (some 250 characters of English, 64 of Chinese).
const SUMMARY_TOKENS: usize = 64;

pub fn to_error(e: EmbedError) -> Error {
    match e {
        EmbedError::ModelUnavailable(m) => Error::new(Code::ModelUnavailable, m),
        EmbedError::Provider(m) => Error::new(Code::EmbeddingFailed, format!("embedding provider failed: {m}")),
        EmbedError::Rejected(m) => {
            Error::new(Code::EmbeddingProviderRejected, format!("embedding provider rejected the request: {m}"))
        }
        EmbedError::InvalidConfig(m) => Error::new(Code::InvalidEmbeddingConfig, m),
        EmbedError::Refused(m) => Error::new(Code::OutboundNotAllowed, m),
        EmbedError::UnknownModel(m) => Error::new(Code::UnknownModel, m),
    }
}

/// Parses a knowledge base's embedding configuration as given over the API.
pub fn parse_config(value: &serde_json::Value) -> Result<EmbeddingConfig, Error> {
    let config: EmbeddingConfig = serde_json::from_value(value.clone())
        .map_err(|e| Error::new(Code::InvalidEmbeddingConfig, format!("invalid embedding_config: {e}")))?;
    lore_embed::Registry::space_of(&config).map_err(to_error)?;
    Ok(config)
}

/// Checks a configuration a user saves: a local model must be a model name the server has (never
/// a path), and a remote address must pass the outbound policy.
pub fn check_config(state: &AppState, value: &serde_json::Value) -> Result<EmbeddingConfig, Error> {
    let config = parse_config(value)?;
    if config.provider() == "local" {
        state.embedders.check_local(config.model.as_deref().unwrap_or(lore_embed::DEFAULT_MODEL)).map_err(to_error)?;
    }
    if let Some(base) = &config.base_url {
        state.config.outbound().check_url(base)?;
    }
    Ok(config)
}

/// The configuration in force for a knowledge base, or `None` when embeddings are off.
pub async fn config_for(state: &AppState, kb: &KnowledgeBase) -> Result<Option<EmbeddingConfig>, Error> {
    config_of(state, kb.user_id, kb.settings.embedding_config.as_ref()).await
}

async fn config_of(
    state: &AppState, user_id: Id, kb_config: Option<&serde_json::Value>,
) -> Result<Option<EmbeddingConfig>, Error> {
    if let Some(value) = kb_config {
        return parse_config(value).map(Some);
    }
    let user = state.store.get_user_config(user_id).await?;
    if let Some(default) = user.and_then(|c| c.default_embedding_model).filter(|m| !m.trim().is_empty()) {
        return Ok(Some(EmbeddingConfig::from_shorthand(&default)));
    }
    Ok(state.config.embedding_model.as_deref().map(EmbeddingConfig::from_shorthand))
}

/// The embedder for a knowledge base, loading or provisioning the model on first use.
pub async fn embedder_for(state: &AppState, kb: &KnowledgeBase) -> Result<Option<Arc<dyn Embedder>>, Error> {
    embedder_of(state, kb.user_id, kb.settings.embedding_config.as_ref()).await
}

/// The embedder of a knowledge base's settings, or of the user's and server's defaults without one.
pub async fn embedder_of(
    state: &AppState, user_id: Id, kb_config: Option<&serde_json::Value>,
) -> Result<Option<Arc<dyn Embedder>>, Error> {
    let Some(config) = config_of(state, user_id, kb_config).await? else { return Ok(None) };
    build(state, user_id, &config).await.map(Some)
}

/// The embedder of a configuration, with the owner's provider secrets for remote ones.
async fn build(state: &AppState, user_id: Id, config: &EmbeddingConfig) -> Result<Arc<dyn Embedder>, Error> {
    let secrets =
        if config.provider() == "local" { ProviderSecrets::default() } else { secrets(state, user_id).await? };
    state.embedders.get(config, &secrets).await.map_err(to_error)
}

/// The embedding space a knowledge base's search uses: the one its chunks are in (the configured
/// one, unless a change of model is still being re-embedded), or the configured one while it is empty.
pub async fn search_space(state: &AppState, kb: &KnowledgeBase) -> Result<Option<String>, Error> {
    if let Some(space) = &kb.embedding_space {
        return Ok(Some(space.clone()));
    }
    let Some(config) = config_for(state, kb).await? else { return Ok(None) };
    lore_embed::Registry::space_of(&config).map(Some).map_err(to_error)
}

/// The embedder for queries to a knowledge base: in its search space (its `space()` is what
/// [`search_space`] names).
pub async fn search_embedder(state: &AppState, kb: &KnowledgeBase) -> Result<Option<Arc<dyn Embedder>>, Error> {
    let Some(config) = config_for(state, kb).await? else { return Ok(None) };
    let configured = lore_embed::Registry::space_of(&config).map_err(to_error)?;
    let config = match &kb.embedding_space {
        Some(active) if *active != configured => {
            // Mid-change: keep the configured address for the same provider.
            let mut old = EmbeddingConfig::from_space(active);
            if old.provider == config.provider {
                old.base_url = config.base_url.clone();
            }
            old
        }
        _ => config,
    };
    build(state, kb.user_id, &config).await.map(Some)
}

/// Re-embeds a knowledge base in its configured model, in batches kept aside, then switches it
/// over in one transaction. Resumes where it stopped after a crash.
pub async fn reembed(state: &AppState, job: &lore_core::model::Job, kb: &KnowledgeBase) -> Result<u64, Error> {
    let Some(embedder) = embedder_for(state, kb).await? else {
        state.store.drop_job(job).await?;
        return Ok(0);
    };
    let space = embedder.space().to_string();
    loop {
        let batch = state.store.chunks_to_reembed(kb.id, &space, 64).await?;
        if batch.is_empty() {
            break;
        }
        let mut chunks: Vec<NewChunk> = batch
            .iter()
            .map(|c| NewChunk {
                content: c.content.clone(),
                content_hash: c.content_hash.clone(),
                chunk_index: 0,
                fts_terms: String::new(),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: qa_embed_text(&c.metadata),
                metadata: c.metadata.clone(),
            })
            .collect();
        let titles: Vec<Option<String>> = batch.iter().map(|c| c.title.clone()).collect();
        embed_chunks(state, kb.user_id, embedder.as_ref(), &mut chunks, &titles).await?;
        let rows: Vec<lore_core::model::Reembedded> = batch
            .iter()
            .zip(chunks)
            .filter_map(|(c, n)| {
                Some(lore_core::model::Reembedded {
                    seq: c.seq,
                    embedding: n.embedding?,
                    summary_embedding: n.summary_embedding,
                })
            })
            .collect();
        state.store.save_reembedded(kb.id, &space, &rows).await?;
    }
    state.store.finish_reembedding(job, kb.id, &space).await
}

pub(crate) async fn secrets(state: &AppState, user_id: Id) -> Result<ProviderSecrets, Error> {
    let Some(c) = state.store.get_user_config(user_id).await? else { return Ok(ProviderSecrets::default()) };
    let open = |s: &Option<String>| s.as_deref().map(|s| state.master_key.open(s)).transpose();
    Ok(ProviderSecrets {
        openai_api_key: open(&c.openai_api_key)?,
        openai_base_url: c.openai_base_url.clone(),
        cohere_api_key: open(&c.cohere_api_key)?,
        cohere_base_url: c.cohere_base_url.clone(),
    })
}

/// Fills in the embeddings of searchable chunks: from the cache where the same text was embedded
/// in this space before, from the embedder otherwise; and of their summaries ([`summary_text`]).
///
/// A chunk is embedded with its document's title in front when it does not begin with it, so that
/// a passage deep in a document still carries what the document is about ("contextual" chunk
/// embeddings). `titles[i]` belongs to `chunks[i]`.
pub async fn embed_chunks(
    state: &AppState, owner: Id, embedder: &dyn Embedder, chunks: &mut [NewChunk], titles: &[Option<String>],
) -> Result<(), Error> {
    let wanted: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].searchable).collect();
    let hashes: Vec<String> = wanted.iter().map(|&i| chunks[i].content_hash.clone()).collect();
    let cached = state.store.cached_embeddings(owner, embedder.space(), &hashes).await?;
    let mut missing = Vec::new();
    for &i in &wanted {
        match cached.get(&chunks[i].content_hash) {
            Some(v) => chunks[i].embedding = Some(v.clone()),
            None => missing.push(i),
        }
    }
    let texts: Vec<String> = missing
        .iter()
        .map(|&i| {
            if let Some(text) = &chunks[i].embed_text {
                return text.clone();
            }
            let content = &chunks[i].content;
            match titles.get(i).and_then(|t| t.as_deref()).map(str::trim).filter(|t| !t.is_empty()) {
                Some(title) if !content.trim_start().starts_with(title) => format!("{title}\n{content}"),
                _ => content.clone(),
            }
        })
        .collect();
    // Summary texts. A chunk its summary would only repeat shares its content vector, so the
    // encoder does not do the same work twice.
    let (mut summarized, mut summaries, mut shared) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &wanted {
        match summary_text(&chunks[i], titles.get(i).and_then(|t| t.as_deref())) {
            Some(text) => {
                summarized.push(i);
                summaries.push(text);
            }
            None => shared.push(i),
        }
    }
    // Contents and summaries in one pass over the encoder: a one-chunk document is one call.
    let embedded = texts.len();
    let mut vectors = embed_all(embedder, &[texts, summaries].concat()).await?.into_iter();
    for (&i, v) in missing.iter().zip(vectors.by_ref()) {
        chunks[i].embedding = Some(v);
    }
    for (&i, v) in summarized.iter().zip(vectors) {
        chunks[i].summary_embedding = Some(v);
    }
    for i in shared {
        chunks[i].summary_embedding = chunks[i].embedding.clone();
    }
    crate::metrics::embedded(embedder.space(), embedded, cached.len());
    Ok(())
}

/// What a chunk's summary vector embeds: the summary a model or a person wrote and the questions
/// it answers, where it has them; else its extractive summary (title, section and most central
/// sentences). `None` when that would only repeat the chunk, or for a Q&A entry, which is found
/// by its question.
pub fn summary_text(chunk: &NewChunk, title: Option<&str>) -> Option<String> {
    let metadata = &chunk.metadata;
    let written: Vec<String> = [crate::summaries::of(metadata).map(str::to_string), crate::questions::of(metadata)]
        .into_iter()
        .flatten()
        .collect();
    if !written.is_empty() {
        return Some(written.join("\n"));
    }
    if chunk.embed_text.is_some() {
        return None;
    }
    let section = crate::summaries::section_path(metadata);
    lore_ingest::summary::extractive(title, &section, &chunk.content, SUMMARY_TOKENS)
}

/// The content hash of a Q&A entry, which names its embedding in the cache: not that of the same
/// text embedded whole.
pub fn qa_hash(content: &str, match_answer: bool) -> String {
    lore_ingest::sha256_hex(format!("qa:{match_answer}:{content}").as_bytes())
}

/// What a Q&A chunk is embedded by, read back from its metadata: its question, and its answer too
/// when the import matched answers.
pub fn qa_embed_text(metadata: &serde_json::Value) -> Option<String> {
    let qa = metadata.get("qa")?;
    let question = qa["question"].as_str()?;
    match (qa["match_answer"].as_bool(), qa["answer"].as_str()) {
        (Some(true), Some(answer)) => Some(format!("{question}\n{answer}")),
        _ => Some(question.to_string()),
    }
}

/// Semantic chunking: the text's sentences, embedded, grouped where consecutive sentences drift
/// apart. Other strategies need no embedder and are chunked as usual.
pub async fn chunk_with(
    embedder: &dyn Embedder, text: &str, strategy: &lore_core::chunking::Strategy, measure: Measure<'_>,
) -> Result<Vec<lore_ingest::chunk::TextChunk>, Error> {
    use lore_ingest::chunk::{Stretch, moved, stretches};
    let lore_core::chunking::Strategy::Semantic { breakpoint_percentile, min_chunk_size, max_chunk_size } = strategy
    else {
        return Ok(lore_ingest::chunk::chunk_measured(text, strategy, measure));
    };
    let bounds = (*min_chunk_size, *max_chunk_size);
    // Tables stay tables; the prose between them is grouped by meaning.
    let mut out = Vec::new();
    for stretch in stretches(text, *max_chunk_size, measure) {
        match stretch {
            Stretch::Text { start, text } => {
                out.extend(moved(semantic(embedder, text, *breakpoint_percentile, bounds, measure).await?, start));
            }
            Stretch::Table(chunks) => out.extend(chunks),
        }
    }
    Ok(out)
}

/// Prose grouped by meaning: sentences embedded, cut where consecutive ones differ most.
async fn semantic(
    embedder: &dyn Embedder, text: &str, breakpoint_percentile: f64, (min_chunk_size, max_chunk_size): (usize, usize),
    measure: Measure<'_>,
) -> Result<Vec<lore_ingest::chunk::TextChunk>, Error> {
    let sentences = lore_ingest::chunk::sentences_measured(text, max_chunk_size, measure);
    let texts: Vec<String> = sentences.iter().map(|s| s.content.clone()).collect();
    let vectors = embed_all(embedder, &texts).await?;
    let similarities: Vec<f32> =
        vectors.windows(2).map(|w| w[0].iter().zip(&w[1]).map(|(a, b)| a * b).sum::<f32>()).collect();
    Ok(lore_ingest::chunk::group_semantic(
        text,
        &sentences,
        &similarities,
        breakpoint_percentile,
        (min_chunk_size, max_chunk_size),
        measure,
    ))
}

async fn embed_all(embedder: &dyn Embedder, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH) {
        out.extend(embedder.embed(batch, InputKind::Passage).await.map_err(to_error)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_re_embedded_qa_entry_is_found_by_what_its_import_matched() {
        let entry = json!({"qa": {"question": "退货要多久？", "answer": "七天内。"}});
        assert_eq!(super::qa_embed_text(&entry).as_deref(), Some("退货要多久？"));
        let both = json!({"qa": {"question": "How long?", "answer": "Seven days.", "match_answer": true}});
        assert_eq!(super::qa_embed_text(&both).as_deref(), Some("How long?\nSeven days."));
        assert_eq!(super::qa_embed_text(&json!({"strategy": "paragraph"})), None);
    }
}
