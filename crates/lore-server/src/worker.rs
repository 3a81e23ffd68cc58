//! The ingestion workers: claim a job from the queue in the database, parse, chunk and index the
//! document, store the result in one transaction. A bad file, or a panic while handling it,
//! fails that one document; the worker goes on.

use std::sync::Arc;
use std::time::Duration;

use lore_core::chunking;
use lore_core::error::{Code, Error};

use lore_core::model::{Document, Job, LogEntry, NewChunk, ProcessedDocument};
use lore_ingest::parse::ParseOptions;
use lore_ingest::{chunk, parse, segment};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::service::kind_of;
use crate::state::AppState;

/// How long a claimed job stays a worker's without news from it. The worker renews it every
/// quarter of that while it works, so a long document keeps its job, and a crashed node's jobs
/// (on a shared database) go back to the queue within a minute.
pub const LEASE: Duration = Duration::from_secs(60);
/// A job claimed this many times without finishing is failed, not retried forever.
pub const MAX_ATTEMPTS: i64 = 3;
/// The longest one document may take to parse and chunk.
const PROCESSING_TIMEOUT: Duration = Duration::from_secs(300);
/// Documents at least this large report intermediate progress.
const PROGRESS_THRESHOLD: usize = 256 * 1024;
/// Chunks embedded between two progress reports; a document with more reports each batch.
const PROGRESS_BATCH: usize = 64;
/// How long a job waits after the machine failed it (disk full, database down), and how long its
/// worker pauses before claiming another.
const MACHINE_RETRY: Duration = Duration::from_secs(5);

/// The jobs this node's workers pass over: their file is not in this node's blob store, and
/// another node may have it. Forgotten after a while, in case the file turns up (a volume that
/// was not mounted yet).
#[derive(Default)]
pub struct PassedOn(std::sync::Mutex<std::collections::HashMap<lore_core::model::Id, std::time::Instant>>);

impl PassedOn {
    const FORGET_AFTER: Duration = Duration::from_secs(600);
    const MOST: usize = 1_000;

    pub fn add(&self, job: lore_core::model::Id) {
        if let Ok(mut jobs) = self.0.lock() {
            if jobs.len() >= Self::MOST {
                jobs.clear();
            }
            jobs.insert(job, std::time::Instant::now());
        }
    }

    pub fn ids(&self) -> Vec<lore_core::model::Id> {
        let Ok(mut jobs) = self.0.lock() else { return Vec::new() };
        jobs.retain(|_, at| at.elapsed() < Self::FORGET_AFTER);
        jobs.keys().copied().collect()
    }
}

/// Starts `count` workers named `<node>/worker-<i>`: the node's name tells, in a document's log and
/// in a job's lease, which of several nodes on one database took the job.
pub fn spawn(
    state: AppState, node: &str, count: usize, shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|i| {
            let state = state.clone();
            let shutdown = shutdown.clone();
            let name = format!("{node}/worker-{i}");
            tokio::spawn(async move { run(state, name, shutdown).await })
        })
        .collect()
}

async fn run(state: AppState, name: String, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match state.store.claim_job_except(&name, LEASE, &state.passed_on.ids()).await {
            Ok(Some(job)) => {
                let heartbeat = tokio::spawn(keep_leased(state.clone(), job.id, name.clone()));
                let machine_failed = handle(&state, job, &name).await;
                heartbeat.abort();
                if machine_failed {
                    tokio::time::sleep(MACHINE_RETRY).await;
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = state.jobs_queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(worker = %name, error = %e, "could not claim a job; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(worker = %name, error = %e, "could not claim a job");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Renews a job's lease until aborted, or until the job turns out to be someone else's.
async fn keep_leased(state: AppState, job_id: lore_core::model::Id, worker: String) {
    loop {
        tokio::time::sleep(LEASE / 4).await;
        match state.store.extend_lease(job_id, &worker, LEASE).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %job_id, %worker, "lost the lease of a job (it ran out); another worker may take it");
                return;
            }
            Err(e) => tracing::warn!(job = %job_id, error = %e, "could not renew a job's lease"),
        }
    }
}

/// Handles one job; `true` when the machine (not the document) failed it and the job went back
/// to the queue.
async fn handle(state: &AppState, job: Job, worker: &str) -> bool {
    if job.kind == "reembed" {
        handle_reembed(state, job).await;
        return false;
    }
    let Some(document_id) = job.document_id else {
        tracing::warn!(job = %job.id, kind = %job.kind, "job without a document; dropping it");
        return false;
    };
    let started = std::time::Instant::now();
    let outcome = match process(state, &job, document_id).await {
        Err(err) if err.code == Code::FileUnavailable => {
            match unreadable_here(state, &job, worker, document_id, &err).await {
                Ok(()) => return true,
                Err(last) => Err(last),
            }
        }
        outcome => outcome,
    };
    let stored = match outcome {
        Ok(Some(result)) => {
            let chunks = result.chunks.len();
            let store_started = std::time::Instant::now();
            let stored = state.store.complete_document(&job, document_id, result).await;
            crate::metrics::stage("store", store_started.elapsed().as_secs_f64());
            if stored.is_ok() {
                crate::metrics::document_processed("completed");
                tracing::info!(document = %document_id, chunks, ms = started.elapsed().as_millis() as u64, "document completed");
            }
            stored
        }
        Ok(None) => Ok(()),
        Err(err) if err.is_transient() => Err(err),
        Err(err) => {
            let message = if err.code == Code::Internal {
                tracing::error!(document = %document_id, error = %err, "document processing failed");
                "an internal error occurred while processing this document".to_string()
            } else {
                tracing::info!(document = %document_id, code = err.code.as_str(), "document failed");
                err.message.clone()
            };
            crate::metrics::document_processed("failed");
            let log = vec![LogEntry::new("failed", message.clone())];
            let stored = state.store.fail_document(&job, document_id, err.code.as_str(), &message, log).await;
            if stored.is_ok()
                && let Ok(Some(doc)) = state.store.document_for_job(document_id).await
            {
                let data = json!({"document_id": doc.id, "knowledge_base_id": doc.knowledge_base_id,
                                  "filename": doc.filename, "error_code": err.code.as_str()});
                let title = format!("'{}' could not be processed", doc.filename);
                crate::notify::notify(
                    state,
                    doc.user_id,
                    crate::notify::Kind::DocumentFailed,
                    title,
                    Some(message),
                    data,
                )
                .await;
            }
            stored
        }
    };
    match stored {
        Ok(()) => false,
        Err(e) if e.is_transient() => {
            // Nothing is the document's fault: it waits in the queue until the machine recovers
            // (if even that cannot be written, its lease runs out and it is retried all the same).
            tracing::warn!(document = %document_id, error = %e, "the machine failed this document; it will be retried");
            // Requeuing is a write too: keep trying while the lease lasts (it then runs out and
            // the job returns all the same).
            for _ in 0..LEASE.as_secs() / MACHINE_RETRY.as_secs() {
                match state.store.retry_later(&job, worker, MACHINE_RETRY).await {
                    Ok(()) => return true,
                    Err(e) => tracing::debug!(document = %document_id, error = %e, "could not requeue yet"),
                }
                tokio::time::sleep(MACHINE_RETRY).await;
            }
            tracing::warn!(document = %document_id, "could not requeue; the lease will run out");
            true
        }
        Err(e) => {
            // The job keeps its lease and is retried once the lease runs out.
            tracing::error!(document = %document_id, error = %e, "could not store the processing result");
            false
        }
    }
}

/// This node cannot read the document's file. Another node may (each keeps uploads where it was
/// configured to): the job goes back to the queue without counting an attempt, and the document's
/// log says which node tried. `Err` when every live node has tried (or a single node alone): the
/// document fails, with a message naming the configuration to fix.
async fn unreadable_here(
    state: &AppState, job: &Job, worker: &str, document_id: lore_core::model::Id, err: &Error,
) -> Result<(), Error> {
    const STAGE: &str = "unreadable";
    let entry = LogEntry::new(STAGE, format!("{} could not read the file: {}", state.node, err.message));
    state.store.set_progress(document_id, 5, Some(entry)).await?;
    let tries: Vec<String> = match state.store.document_for_job(document_id).await? {
        Some(doc) => doc
            .processing_log
            .iter()
            .filter(|e| e.stage == STAGE)
            .filter_map(|e| e.message.split_whitespace().next().map(str::to_string))
            .collect(),
        None => Vec::new(),
    };
    let tried: std::collections::HashSet<String> = tries.iter().cloned().collect();
    // Nodes that take jobs; an API-only node (no workers) never will.
    let alive: Vec<_> =
        crate::nodes::alive(state.store.as_ref()).await?.into_iter().filter(|n| n.workers > 0).collect();
    let untried = alive.iter().filter(|n| !tried.contains(&n.id)).count();
    if untried > 0 {
        tracing::info!(document = %document_id, untried, "another node may read this file; back to the queue");
        // This node's workers pass over it from now on, leaving it to the others.
        state.passed_on.add(job.id);
        state.store.retry_later(job, worker, Duration::ZERO).await?;
        return Ok(());
    }
    let message = if alive.len() <= 1 {
        format!("{}; the file could not be read back from storage: upload it again", err.message)
    } else {
        let mut nodes: Vec<&str> = tried.iter().map(String::as_str).collect();
        nodes.sort_unstable();
        format!(
            "no node could read the uploaded file ({} tried: {}). Nodes that keep uploads in their own data \
             directories cannot read each other's: run every node with --database-url and no --blob-url (uploads \
             in the database), or with a --blob-url every node reaches",
            nodes.len(),
            nodes.join(", ")
        )
    };
    Err(Error::new(Code::FileUnavailable, message))
}

async fn handle_reembed(state: &AppState, job: Job) {
    let kb = match job.knowledge_base_id {
        Some(id) => state.store.knowledge_base_for_job(id).await,
        None => Ok(None),
    };
    let outcome = match kb {
        Ok(Some(kb)) => crate::embedding::reembed(state, &job, &kb).await.map(|n| (kb.id, n)),
        Ok(None) => {
            let _ = state.store.drop_job(&job).await;
            return;
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((kb, chunks)) => tracing::info!(knowledge_base = %kb, chunks, "re-embedding complete"),
        Err(e) if job.attempts >= MAX_ATTEMPTS => {
            tracing::error!(job = %job.id, error = %e, "re-embedding failed; search stays on the previous model");
            let _ = state.store.drop_job(&job).await;
        }
        // The lease runs out and another attempt resumes from the embeddings already kept.
        Err(e) => tracing::warn!(job = %job.id, error = %e, "re-embedding interrupted; it will resume"),
    }
}

/// Runs the pipeline for one document. `Ok(None)` means there is nothing to do (the document is gone).
async fn process(
    state: &AppState, job: &Job, document_id: lore_core::model::Id,
) -> Result<Option<ProcessedDocument>, Error> {
    let Some(document) = state.store.document_for_job(document_id).await? else {
        return Ok(None);
    };
    if job.attempts > MAX_ATTEMPTS {
        return Err(Error::new(
            Code::ProcessingInterrupted,
            format!("processing was interrupted {} times; the file may be too large or malformed", job.attempts - 1),
        ));
    }
    let kb = state.store.get_knowledge_base(document.user_id, document.knowledge_base_id).await?;
    let defaults = state.store.user_defaults(document.user_id).await?;
    let embedder = match &kb {
        Some(kb) => crate::embedding::embedder_for(state, kb).await?,
        None => None,
    };
    let kb_config = kb.as_ref().and_then(|kb| kb.settings.chunking_config.as_ref());
    let window = crate::embedding::window_of(embedder.as_ref());
    let (strategy, unit) = chunking::resolve(document.chunking_config.as_ref(), kb_config, &defaults, window)?;
    let bytes = state.blobs.get(&document.file_path).await.map_err(|e| {
        if e.is_transient() {
            return e;
        }
        tracing::warn!(document = %document_id, error = %e, blobs = %state.blobs.describe(), "this node cannot read the file");
        Error::new(Code::FileUnavailable, format!("the uploaded file is not in {}", state.blobs.describe()))
    })?;
    let big = bytes.len() >= PROGRESS_THRESHOLD;
    if big {
        let _ = state.store.set_progress(document_id, 10, Some(LogEntry::new("parse", "parsing started"))).await;
    }
    let types = state.store.list_file_types().await?;
    let kind = kind_of(&document, &types);
    let doc = document.clone();
    // Semantic chunking embeds sentences from inside the pipeline, through the runtime.
    let sentences = match (&strategy, &embedder) {
        (chunking::Strategy::Semantic { .. }, Some(e)) => Some((e.clone(), tokio::runtime::Handle::current())),
        _ => None,
    };
    let counter = (unit == chunking::SizeUnit::Tokens).then(|| crate::embedding::token_counter(embedder.as_ref()));
    let reader = Reader {
        parsers: state.parsers.clone(),
        options: ParseOptions { ocr: kb.as_ref().and_then(|kb| kb.settings.ocr).unwrap_or_default() },
    };
    // CPU-bound work off the async runtime; a panic in it becomes a JoinError, not a dead worker.
    let work = tokio::task::spawn_blocking(move || pipeline(&doc, kind, &bytes, &strategy, sentences, counter, reader));
    // A parser that hangs fails its document; its thread is left to finish on its own.
    let result = match tokio::time::timeout(PROCESSING_TIMEOUT, work).await {
        Ok(joined) => joined.map_err(|e| Error::internal(format!("processing panicked: {e}")))??,
        Err(_) => {
            return Err(Error::new(
                Code::ProcessingTimeout,
                format!(
                    "reading this document took longer than {} s; it may be malformed",
                    PROCESSING_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let mut result = result;
    // Progress by stage, and by batch of chunks embedded, wherever there is time to see it.
    let total = result.chunks.len();
    let report = big || total > PROGRESS_BATCH;
    if report {
        let chunked = LogEntry::new("chunk", format!("{total} chunks"));
        let _ = state.store.set_progress(document_id, 40, Some(chunked)).await;
    }
    let title = result.title.clone().or_else(|| document.title.clone());
    if let Some(config) = kb.as_ref().and_then(|kb| kb.settings.question_generation.as_ref()) {
        let started = std::time::Instant::now();
        crate::questions::generate(
            state,
            document.user_id,
            config,
            title.as_deref(),
            &mut result.chunks,
            &mut result.log,
        )
        .await;
        crate::metrics::stage("questions", started.elapsed().as_secs_f64());
    }
    if let Some(config) = kb.as_ref().and_then(|kb| kb.settings.summary_config.as_ref()) {
        let started = std::time::Instant::now();
        let chunks = &mut result.chunks;
        crate::summaries::generate(state, document.user_id, config, title.as_deref(), chunks, &mut result.log).await;
        crate::metrics::stage("summaries", started.elapsed().as_secs_f64());
    }
    if let Some(embedder) = embedder {
        let started = std::time::Instant::now();
        let titles = vec![title; total];
        let mut done = 0;
        while done < total {
            let end = (done + PROGRESS_BATCH).min(total);
            let batch = &mut result.chunks[done..end];
            crate::embedding::embed_chunks(state, document.user_id, embedder.as_ref(), batch, &titles[done..end])
                .await?;
            done = end;
            if report && done < total {
                let _ = state.store.set_progress(document_id, 40 + (50 * done / total) as i64, None).await;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        crate::metrics::stage("embed", seconds);
        crate::metrics::embedding_duration(embedder.space(), seconds);
        let embedded = result.chunks.iter().filter(|c| c.embedding.is_some()).count();
        result.log.push(LogEntry::new(
            "embed",
            format!("{embedded} chunks embedded with {} in {:.0} ms", embedder.space(), seconds * 1000.0),
        ));
        result.embedding_model = Some(embedder.space().to_string());
    }
    if report {
        let _ = state.store.set_progress(document_id, 90, None).await;
    }
    Ok(Some(result))
}

/// How a document's bytes are read: in a parser process when the server has them (a file that
/// exhausts the parser's memory or CPU fails alone, `resource_limit_exceeded`, never retried),
/// with its knowledge base's options.
struct Reader {
    parsers: Option<Arc<lore_ingest::isolate::ParserPool>>,
    options: ParseOptions,
}

impl Reader {
    fn parse(&self, kind: lore_ingest::detect::FileKind, bytes: &[u8]) -> Result<parse::Parsed, Error> {
        match &self.parsers {
            Some(pool) => pool.parse_with(kind, bytes, self.options),
            None => parse::parse_with(kind, bytes, self.options),
        }
    }

    fn tables(&self, kind: lore_ingest::detect::FileKind, bytes: &[u8]) -> Result<Vec<Vec<Vec<String>>>, Error> {
        match &self.parsers {
            Some(pool) => pool.tables(kind, bytes),
            None => parse::tables(kind, bytes),
        }
    }
}

/// Where a chunk (`[start, end)` of the text) stands in its file: the page (slide, sheet, ...) it
/// starts on, `page_end` when it ends on another, and for recognised text the boxes its lines
/// cover on each page (`regions`, merged per page, with the page's size in the same units) and
/// the words read with low confidence.
fn place(metadata: &mut serde_json::Map<String, Value>, parsed: &parse::Parsed, start: usize, end: usize) {
    let Some(first) = parsed.location_at(start) else { return };
    metadata.insert(first.key.to_string(), first.value.clone());
    if let Some(last) = parsed.location_at(end.saturating_sub(1).max(start))
        && last.key == first.key
        && last.value != first.value
    {
        metadata.insert(format!("{}_end", first.key), last.value.clone());
    }
    let (boxes, unsure) = parsed.boxes_in(start, end);
    if !boxes.is_empty() {
        metadata.insert("regions".into(), json!(boxes));
    }
    if !unsure.is_empty() {
        metadata.insert("ocr_low_confidence".into(), serde_json::json!(unsure));
    }
}

/// A chunk's full-text terms: its words, after its document's title's (`(title, its terms)`)
/// when it does not begin with the title. Chunks edited or added by hand are indexed the same way.
pub(crate) fn chunk_terms(title: Option<(&str, &str)>, content: &str) -> String {
    let words = segment::terms(content).join(" ");
    match title {
        Some((title, terms)) if !content.trim_start().starts_with(title) => format!("{terms} {words}"),
        _ => words,
    }
}

fn pipeline(
    document: &Document, kind: lore_ingest::detect::FileKind, bytes: &[u8], strategy: &chunking::Strategy,
    sentences: Option<(Arc<dyn lore_embed::Embedder>, tokio::runtime::Handle)>,
    tokens: Option<crate::embedding::TokenCounter>, reader: Reader,
) -> Result<ProcessedDocument, Error> {
    if let chunking::Strategy::Qa { question_column, answer_column, match_answer } = strategy {
        let columns = (question_column.as_deref(), answer_column.as_deref());
        return qa_pairs(kind, bytes, columns, *match_answer, &reader);
    }
    let measure = crate::embedding::measure_of(tokens.as_ref());
    let mut log = Vec::new();
    let started = std::time::Instant::now();
    let parsed = reader.parse(kind, bytes)?;
    crate::metrics::stage("parse", started.elapsed().as_secs_f64());
    let started = std::time::Instant::now();
    let encoding = parsed.metadata.get("encoding").and_then(Value::as_str).unwrap_or("n/a");
    log.push(LogEntry::new(
        "parse",
        format!("read as {} ({encoding}), {} characters", document.file_type, parsed.text.chars().count()),
    ));
    match tokens {
        None => strategy.check_text_budget(parsed.text.chars().count())?,
        Some(_) => strategy.check_token_budget(&parsed.text)?,
    }
    let pieces = match sentences {
        Some((embedder, runtime)) => {
            runtime.block_on(crate::embedding::chunk_with(embedder.as_ref(), &parsed.text, strategy, measure))?
        }
        None => chunk::chunk_measured(&parsed.text, strategy, measure),
    };
    chunking::check_chunk_count(pieces.len(), parsed.text.chars().count())?;
    log.push(LogEntry::new("chunk", format!("{} chunks", pieces.len())));
    // A chunk that does not begin with the document's title is indexed with the title's words
    // too, as it is embedded with them: a passage deep in a document still matches what the
    // document is about (contextual BM25).
    let title = parsed.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let title_terms = title.map(|t| segment::terms(t).join(" ")).unwrap_or_default();
    let starts: Vec<usize> = pieces.iter().map(|piece| piece.char_start).collect();
    let mut sections = lore_ingest::summary::section_paths(&parsed.text, &starts).into_iter();
    let chunks: Vec<NewChunk> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| NewChunk {
            content_hash: lore_ingest::sha256_hex(piece.content.as_bytes()),
            chunk_index: i as i64,
            metadata: {
                let mut m = piece.metadata(strategy);
                if let Some(obj) = m.as_object_mut() {
                    place(obj, &parsed, piece.char_start, piece.char_end);
                    let section = sections.next().unwrap_or_default();
                    if !section.is_empty() {
                        obj.insert("section_path".into(), json!(section));
                    }
                }
                m
            },
            fts_terms: chunk_terms(title.map(|t| (t, title_terms.as_str())), &piece.content),
            parent_index: piece.parent,
            // In a hierarchy the children are matched; parents come along as their context.
            searchable: piece.parent.is_some() || !matches!(strategy, chunking::Strategy::Hierarchical { .. }),
            content: piece.content.clone(),
            embedding: None,
            summary_embedding: None,
            embed_text: None,
        })
        .collect();
    crate::metrics::stage("chunk_and_segment", started.elapsed().as_secs_f64());
    log.push(LogEntry::new("index", format!("{} chunks indexed for full-text search", chunks.len())));
    Ok(ProcessedDocument {
        title: parsed.title,
        processed_content: parsed.text,
        raw_content: parsed.raw,
        source_metadata: Value::Object(parsed.metadata),
        chunks,
        embedding_model: None,
        log,
    })
}

/// Headers that name a question column, and an answer column, when the configuration names none.
/// (A row past the sizes of a chunk written by hand is skipped and counted in the log.)
const QUESTION_HEADERS: &[&str] = &["question", "questions", "q", "问题", "问", "提问", "問題"];
const ANSWER_HEADERS: &[&str] = &["answer", "answers", "a", "答案", "答", "回答", "解答"];

/// A table's rows as question-and-answer chunks (the `qa` strategy): the table is read in a
/// parser process like any file; each sheet's first row names its columns. A row without both a
/// question and an answer is skipped; a table without the two columns fails the document with a
/// message saying how to name them.
fn qa_pairs(
    kind: lore_ingest::detect::FileKind, bytes: &[u8], (question_column, answer_column): (Option<&str>, Option<&str>),
    match_answer: bool, reader: &Reader,
) -> Result<ProcessedDocument, Error> {
    let started = std::time::Instant::now();
    let sheets = reader.tables(kind, bytes)?;
    crate::metrics::stage("parse", started.elapsed().as_secs_f64());
    let find = |headers: &[String], named: Option<&str>, usual: &[&str]| {
        let is = |h: &String, name: &str| h.trim().eq_ignore_ascii_case(name.trim());
        match named {
            Some(name) => headers.iter().position(|h| is(h, name)),
            None => usual.iter().find_map(|name| headers.iter().position(|h| is(h, name))),
        }
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut too_long = 0;
    let mut tables_with_columns = 0;
    for rows in &sheets {
        let mut rows = rows.iter().filter(|r| r.iter().any(|c| !c.trim().is_empty()));
        let Some(headers) = rows.next() else { continue };
        let (Some(q), Some(a)) =
            (find(headers, question_column, QUESTION_HEADERS), find(headers, answer_column, ANSWER_HEADERS))
        else {
            continue;
        };
        tables_with_columns += 1;
        for row in rows {
            let cell = |i: usize| row.get(i).map(|c| c.trim().to_string()).unwrap_or_default();
            let (question, answer) = (cell(q), cell(a));
            if question.chars().count() > crate::chunks::MAX_QUESTION_CHARS
                || answer.chars().count() > crate::chunks::MAX_CHUNK_CHARS
            {
                too_long += 1;
            } else if !question.is_empty() && !answer.is_empty() {
                pairs.push((question, answer));
            }
        }
    }
    if tables_with_columns == 0 {
        let wanted = match (question_column, answer_column) {
            (Some(q), Some(a)) => format!("the columns '{q}' and '{a}'"),
            _ => "a question column and an answer column (headed question/问题 and answer/答案, or named by \
                  question_column and answer_column)"
                .to_string(),
        };
        return Err(Error::new(Code::NoTextContent, format!("no table in this file has {wanted}")));
    }
    if pairs.is_empty() {
        return Err(Error::new(Code::NoTextContent, "the table has no row with both a question and an answer"));
    }
    let text: String = pairs.iter().map(|(q, a)| format!("{q}\n{a}\n\n")).collect();
    chunking::check_chunk_count(pairs.len(), text.chars().count())?;
    let chunks: Vec<NewChunk> = pairs
        .iter()
        .enumerate()
        .map(|(i, (question, answer))| {
            let content = format!("{question}\n{answer}");
            let matched = if match_answer { content.clone() } else { question.clone() };
            NewChunk {
                // The embedding is of the question alone: kept apart from the same text chunked.
                content_hash: crate::embedding::qa_hash(&content, match_answer),
                chunk_index: i as i64,
                metadata: {
                    let mut qa = json!({"question": question, "answer": answer});
                    if match_answer {
                        qa["match_answer"] = json!(true);
                    }
                    json!({"strategy": "qa", "qa": qa, "row": i + 1})
                },
                fts_terms: segment::terms(&matched).join(" "),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: Some(matched),
                content,
            }
        })
        .collect();
    let log = vec![
        LogEntry::new("parse", format!("read {} table(s) of {kind:?}", sheets.len())),
        LogEntry::new(
            "chunk",
            format!(
                "{} question-and-answer pairs, matched by their question{}{}",
                chunks.len(),
                if match_answer { " and answer" } else { "" },
                if too_long > 0 {
                    format!(
                        "; {too_long} rows skipped (a question over {} or an answer over {} characters)",
                        crate::chunks::MAX_QUESTION_CHARS,
                        crate::chunks::MAX_CHUNK_CHARS
                    )
                } else {
                    String::new()
                }
            ),
        ),
    ];
    Ok(ProcessedDocument {
        title: None,
        raw_content: text.clone(),
        processed_content: text,
        source_metadata: json!({"qa_pairs": chunks.len()}),
        chunks,
        embedding_model: None,
        log,
    })
}
