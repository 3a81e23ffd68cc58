//! `lore bench chat`: the time to first token that Lore adds to a chat-model provider (rate-limit
//! bookkeeping, query embedding, hybrid retrieval, prompt assembly), measured against a local
//! OpenAI-compatible provider on 127.0.0.1 that answers instantly, over a knowledge base of many
//! chunks on the embedded default (SQLite, in-process HNSW, the built-in embedding model).
//!
//! The corpus is written through the storage layer, not the ingestion pipeline, so that 100k
//! chunks take a minute rather than the hours the built-in model needs to embed them: chunk texts
//! are generated Chinese and English (Zipf vocabularies), and their vectors lie around real
//! embeddings of a few hundred such texts (clustered, as real corpora are). The search work per
//! query is what a real corpus of that size costs; queries are embedded by the real model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use clap::Args;
use lore_core::model::*;
use lore_core::store::Upload;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use crate::{Vocabulary, percentile, query};
use lore_core::store::{DocumentStore, QueueStore};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Chunks in the knowledge base.
    #[arg(long, default_value_t = 100_000)]
    chunks: usize,
    /// Timed chat requests (after 10 untimed ones).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Keep the corpus here; a later run with the same --chunks reuses it.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

const CHUNKS_PER_DOCUMENT: usize = 50;
const ANCHORS: usize = 256;
const MARKER: &str = "bench-chat.json";

/// An OpenAI-compatible provider on 127.0.0.1 that streams a short answer at once; its base URL.
pub(crate) async fn instant_provider() -> anyhow::Result<String> {
    let answer = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"OK [1]\"},\"finish_reason\":null}]}\n\n\
                  data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                  data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move { ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], answer) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}/v1"))
}

fn chunk_text(chinese: bool, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
    let vocab = if chinese { zh } else { en };
    let words = 25 + rng.below(40);
    let mut text = String::new();
    for w in 0..words {
        text.push_str(vocab.sample(rng));
        if chinese {
            if w % 8 == 7 {
                text.push('，');
            }
        } else {
            text.push(' ');
        }
    }
    text.push_str(if chinese { "。" } else { "." });
    text
}

/// Writes the corpus; returns the bench user's password.
async fn build_corpus(dir: &std::path::Path, chunks: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = lore_store::SqliteStore::open(&dir.join("lore.db")).await?;
    let password_hash = lore_server::auth::hash_password(PASSWORD)?;
    let (user, kb) = crate::common::account_with_kb(&store, USER, password_hash, "bench").await?;
    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let mut rng = Rng(7);

    // Anchors: real embeddings of generated texts.
    let models = lore_embed::ModelStore::new(
        std::env::var_os("LORE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| dir.join("models")),
    );
    let registry = lore_embed::Registry::new(models, lore_core::outbound::Policy::default());
    let embedder = registry
        .get(&lore_embed::EmbeddingConfig::from_shorthand(lore_embed::DEFAULT_MODEL), &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let anchor_texts: Vec<String> = (0..ANCHORS).map(|i| chunk_text(i % 2 == 0, &en, &zh, &mut rng)).collect();
    let anchors =
        embedder.embed(&anchor_texts, lore_embed::InputKind::Passage).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let space = embedder.space().to_string();
    eprintln!("embedded {ANCHORS} anchors in {:.1} s; writing {chunks} chunks", started.elapsed().as_secs_f64());

    let documents = chunks.div_ceil(CHUNKS_PER_DOCUMENT);
    for d in 0..documents {
        let chinese = d % 2 == 0;
        let n = CHUNKS_PER_DOCUMENT.min(chunks - d * CHUNKS_PER_DOCUMENT);
        let mut new_chunks = Vec::with_capacity(n);
        for i in 0..n {
            let content = chunk_text(chinese, &en, &zh, &mut rng);
            let anchor = &anchors[rng.below(ANCHORS / 2) * 2 + usize::from(!chinese)];
            let mut vector: Vec<f32> = anchor.iter().map(|a| a + 0.04 * (rng.unit() as f32 - 0.5)).collect();
            lore_embed::normalize(&mut vector);
            new_chunks.push(NewChunk {
                fts_terms: lore_ingest::segment::terms(&content).join(" "),
                content_hash: format!("bench-{d}-{i}"),
                content,
                chunk_index: i as i64,
                metadata: json!({}),
                parent_index: None,
                searchable: true,
                embedding: Some(vector),
                summary_embedding: None,
                embed_text: None,
            });
        }
        let doc = match store
            .create_document(NewDocument {
                knowledge_base_id: kb.id,
                user_id: user.id,
                uploaded_by: Some(user.id),
                filename: format!("doc-{d}.md"),
                file_type: "markdown".into(),
                file_type_id: None,
                file_size: 1000,
                mime_type: "text/markdown".into(),
                file_hash: format!("bench-{d}"),
                file_path: format!("bench/{d}"),
                metadata: json!({}),
                chunking_config: None,
                expires_at: None,
                data_source_id: None,
            })
            .await?
        {
            Upload::Created(doc) | Upload::Duplicate(doc) => doc,
        };
        let job = store.claim_job("bench", Duration::from_secs(600)).await?.context("the document's job")?;
        store
            .complete_document(
                &job,
                doc.id,
                ProcessedDocument {
                    title: Some(format!("doc {d}")),
                    raw_content: String::new(),
                    processed_content: String::new(),
                    source_metadata: json!({}),
                    chunks: new_chunks,
                    embedding_model: Some(space.clone()),
                    log: Vec::new(),
                },
            )
            .await?;
    }
    std::fs::write(dir.join(MARKER), json!({"chunks": chunks}).to_string())?;
    eprintln!("corpus of {chunks} chunks written in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

const USER: &str = "benchchat";
const PASSWORD: &str = "bench password 123";

pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("lore-bench-chat-{}", lore_core::new_id()));
    let dir = args.data_dir.clone().unwrap_or_else(|| temp.clone());
    std::fs::create_dir_all(&dir)?;
    let marker: Option<Value> =
        std::fs::read_to_string(dir.join(MARKER)).ok().and_then(|t| serde_json::from_str(&t).ok());
    if marker.as_ref().and_then(|m| m["chunks"].as_u64()) != Some(args.chunks as u64) {
        anyhow::ensure!(
            !dir.join("lore.db").exists(),
            "{} holds another corpus; use an empty directory",
            dir.display()
        );
        build_corpus(&dir, args.chunks).await?;
    }

    let provider = instant_provider().await?;
    let mut config = lore_server::ServerConfig::new(dir.clone(), "127.0.0.1:0".parse()?);
    config.workers = 1;
    let server = lore_server::start(config).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": USER, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("login")?.to_string();
    let agent: Value = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": format!("bench-{}", lore_core::new_id()), "model_provider": "openai",
                      "model_name": "instant", "model_parameters": {"base_url": provider}, "max_documents": 5}))
        .send()
        .await?
        .json()
        .await?;
    let agent_id = agent["id"].as_str().with_context(|| format!("agent: {agent}"))?.to_string();

    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let mut rng = Rng(99);
    let mut ttft = Vec::new();
    let mut total = Vec::new();
    for i in 0..args.queries + 10 {
        let question = query(&en, &zh, &mut rng);
        let started = Instant::now();
        let mut response = http
            .post(format!("{base}/v1/agents/{agent_id}/chat"))
            .bearer_auth(&token)
            .json(&json!({"message": question, "stream": true}))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "chat failed: {}", response.text().await?);
        let mut first = None;
        let mut seen = String::new();
        while let Some(bytes) = response.chunk().await? {
            seen.push_str(&String::from_utf8_lossy(&bytes));
            if first.is_none() && seen.contains("event: token") {
                first = Some(started.elapsed());
            }
        }
        anyhow::ensure!(seen.contains("event: done"), "the answer did not complete: {seen}");
        if i >= 10 {
            ttft.push(first.context("no token arrived")?.as_secs_f64() * 1000.0);
            total.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ttft.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    server.shutdown().await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    println!(
        "chat over {} chunks, {} questions, instant local provider: time to first token p50 {:.1} ms, p99 {:.1} ms; \
         whole answer p50 {:.1} ms (Lore's share: limits, query embedding, hybrid retrieval, prompt)",
        args.chunks,
        args.queries,
        percentile(&ttft, 0.5),
        percentile(&ttft, 0.99),
        percentile(&total, 0.5),
    );
    Ok(())
}
