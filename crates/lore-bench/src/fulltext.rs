//! `lore bench fulltext`: full-text search latency of the embedded store alone, without HTTP: a
//! knowledge base of a few thousand chunks (half Chinese, half English, with the Zipf vocabularies
//! of `lore bench ingest`) beside another tenant's, queried with one to three content words.
//! Run it on a release build for figures to quote.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lore_core::model::*;
use lore_core::store::{DocumentStore, QueueStore, SearchStore, Upload};
use lore_ingest::samples::Rng;
use lore_store::SqliteStore;
use serde_json::json;

use crate::{Vocabulary, percentile};

#[derive(Debug, Args)]
pub struct FulltextArgs {
    /// Documents per knowledge base (the measured one and its neighbour).
    #[arg(long, default_value_t = 100)]
    documents: usize,
    /// Chunks per document.
    #[arg(long, default_value_t = 40)]
    chunks: usize,
    /// Queries measured (after 100 to warm up).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
}

/// Chunks of 60 to 200 terms, in one language per document.
fn chunks(rng: &mut Rng, vocab: &Vocabulary, n: usize) -> Vec<NewChunk> {
    (0..n)
        .map(|i| {
            let len = 60 + (rng.next_u64() % 140) as usize;
            let terms: Vec<&str> = (0..len).map(|_| vocab.sample(rng)).collect();
            NewChunk {
                content: terms.join(" "),
                content_hash: format!("h{i}"),
                chunk_index: i as i64,
                metadata: json!({}),
                fts_terms: terms.join(" "),
                parent_index: None,
                searchable: true,
                embedding: None,
                summary_embedding: None,
                embed_text: None,
            }
        })
        .collect()
}

/// A user and a knowledge base named `name`, filled with processed documents.
async fn tenant(
    store: &SqliteStore, name: &str, args: &FulltextArgs, vocabularies: (&Vocabulary, &Vocabulary), rng: &mut Rng,
) -> anyhow::Result<(Id, Id)> {
    let (owner, kb) = crate::common::account_with_kb(store, name, "x".into(), name).await?;
    for d in 0..args.documents {
        let upload = store
            .create_document(NewDocument {
                knowledge_base_id: kb.id,
                user_id: owner.id,
                uploaded_by: Some(owner.id),
                filename: format!("doc-{d}.md"),
                file_type: "markdown".into(),
                file_type_id: None,
                file_size: 1,
                mime_type: "text/markdown".into(),
                file_hash: format!("{}-{d}", kb.id),
                file_path: format!("blobs/{}-{d}", kb.id),
                metadata: json!({}),
                chunking_config: None,
                expires_at: None,
                data_source_id: None,
            })
            .await?;
        let Upload::Created(doc) = upload else { anyhow::bail!("document {d} was taken for a duplicate") };
        let job = store.claim_job("bench", Duration::from_secs(60)).await?.context("no job queued")?;
        let vocab = if d.is_multiple_of(2) { vocabularies.1 } else { vocabularies.0 };
        let processed = ProcessedDocument {
            title: None,
            raw_content: String::new(),
            processed_content: String::new(),
            source_metadata: json!({}),
            chunks: chunks(rng, vocab, args.chunks),
            embedding_model: None,
            log: Vec::new(),
        };
        store.complete_document(&job, doc.id, processed).await?;
    }
    Ok((owner.id, kb.id))
}

/// Milliseconds per search of `terms`, sorted.
async fn timed(
    store: &SqliteStore, (owner, kb): (Id, Id), queries: &[Vec<String>],
) -> anyhow::Result<(Vec<f64>, usize)> {
    let (mut ms, mut hits) = (Vec::new(), 0);
    for terms in queries {
        let started = Instant::now();
        let found = store
            .search_fulltext(&FulltextQuery {
                user_id: owner,
                knowledge_base_id: kb,
                terms: terms.clone(),
                top_k: 10,
                filters: SearchFilters::default(),
            })
            .await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        hits += found.len();
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms, hits))
}

pub(crate) async fn fulltext(args: FulltextArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("lore.db")).await?;
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let started = Instant::now();
    let measured = tenant(&store, "measured", &args, (&en, &zh), &mut rng).await?;
    tenant(&store, "neighbour", &args, (&en, &zh), &mut rng).await?;
    let per_kb = args.documents * args.chunks;
    println!("filled 2 x {per_kb} chunks in {:.1} s", started.elapsed().as_secs_f64());

    // Content words: past the 50 commonest, within the 5,000 commonest.
    let queries: Vec<Vec<String>> = (0..100 + args.queries)
        .map(|_| {
            let vocab = if rng.next_u64().is_multiple_of(2) { &zh } else { &en };
            let n = 1 + (rng.next_u64() % 3) as usize;
            (0..n).map(|_| vocab.words[50 + (rng.next_u64() % 4950) as usize].clone()).collect()
        })
        .collect();
    timed(&store, measured, &queries[..100]).await?;
    let (ms, hits) = timed(&store, measured, &queries[100..]).await?;
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    println!(
        "fulltext, top_k 10, {} queries of 1-3 content words over {per_kb} chunks ({} in the index): \
         p50 {:.3} ms, p99 {:.3} ms, mean {mean:.3} ms, {:.1} hits per query",
        ms.len(),
        2 * per_kb,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        hits as f64 / ms.len().max(1) as f64
    );
    // A query of only common words scores most of the knowledge base.
    let common = vec![vec![zh.words[0].clone(), zh.words[1].clone()]; 50];
    let (ms, _) = timed(&store, measured, &common).await?;
    println!(
        "the two commonest Chinese words: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99)
    );
    println!(
        "command: lore bench fulltext --documents {} --chunks {} --queries {}",
        args.documents, args.chunks, args.queries
    );
    Ok(())
}
