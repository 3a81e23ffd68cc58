//! `lore bench sync`: a folder data source of many files, imported in full, then re-synced after
//! a small share of its files changed. Prints both wall times (to every document processed) and
//! how many chunks each run embedded, read from the server's own metrics.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use crate::{Vocabulary, create_knowledge_base};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Files in the folder.
    #[arg(long, default_value_t = 5000)]
    files: usize,
    /// Share of the files changed before the second sync.
    #[arg(long, default_value_t = 0.01)]
    changed: f64,
}

fn text(i: usize, version: u32, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
    let vocab = if i.is_multiple_of(2) { zh } else { en };
    let mut out = format!("# {} {i} v{version}\n\n", vocab.sample(rng));
    for _ in 0..40 {
        out.push_str(vocab.sample(rng));
        out.push(if i.is_multiple_of(2) { '，' } else { ' ' });
    }
    out.push('\n');
    out
}

/// Chunks embedded by the model so far, from `/metrics`.
async fn embedded(http: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("lore_embedding_chunks_total") && l.contains("source=\"model\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

async fn sync_and_wait(http: &reqwest::Client, base: &str, token: &str, source: &str) -> anyhow::Result<Value> {
    let started: Value =
        http.post(format!("{base}/v1/data-sources/{source}/sync")).bearer_auth(token).send().await?.json().await?;
    let run_id = started["id"].as_str().context("run id")?.to_string();
    let run = loop {
        let runs: Value =
            http.get(format!("{base}/v1/data-sources/{source}/syncs")).bearer_auth(token).send().await?.json().await?;
        if let Some(run) = runs["data"].as_array().and_then(|r| r.iter().find(|r| r["id"] == run_id.as_str()))
            && run["status"] != "running"
        {
            break run.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let ready: Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
        if ready["queued_jobs"].as_i64() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(run)
}

pub async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("lore-bench-sync-{}", lore_core::new_id()));
    let folder = dir.join("folder");
    std::fs::create_dir_all(&folder)?;
    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let mut rng = Rng(11);
    for i in 0..args.files {
        std::fs::write(folder.join(format!("doc-{i:05}.md")), text(i, 1, &en, &zh, &mut rng))?;
    }
    let mut config = lore_server::ServerConfig::new(dir.join("data"), "127.0.0.1:0".parse()?);
    config.source_roots = vec![dir.clone()];
    let server = lore_server::start(config).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let auth: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"username": "benchsync", "email": "benchsync@example.com", "password": "bench password 123"}))
        .send()
        .await?
        .json()
        .await?;
    let token = auth["token"].as_str().context("token")?.to_string();
    let kb = create_knowledge_base(&http, &base, &token, "synced").await?;
    let source: Value = http
        .post(format!("{base}/v1/data-sources"))
        .bearer_auth(&token)
        .json(&json!({"name": "folder", "knowledge_base_id": kb, "source_type": "local_folder", "config": {"path": folder}}))
        .send()
        .await?
        .json()
        .await?;
    let source = source["id"].as_str().with_context(|| format!("source: {source}"))?.to_string();

    let before = embedded(&http, &base).await?;
    let t = Instant::now();
    let full = sync_and_wait(&http, &base, &token, &source).await?;
    let full_secs = t.elapsed().as_secs_f64();
    let full_embedded = embedded(&http, &base).await? - before;

    let changed = ((args.files as f64 * args.changed).round() as usize).max(1);
    for k in 0..changed {
        let i = (k * args.files) / changed;
        std::fs::write(folder.join(format!("doc-{i:05}.md")), text(i, 2, &en, &zh, &mut rng))?;
    }
    let before = embedded(&http, &base).await?;
    let t = Instant::now();
    let incremental = sync_and_wait(&http, &base, &token, &source).await?;
    let incremental_secs = t.elapsed().as_secs_f64();
    let incremental_embedded = embedded(&http, &base).await? - before;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "sync of a {}-file folder: full import {full_secs:.1} s (added {}, {full_embedded:.0} chunks embedded); \
         after {changed} files changed: {incremental_secs:.2} s (updated {}, {incremental_embedded:.0} chunks embedded), \
         {:.0}x faster",
        args.files,
        full["added"],
        incremental["updated"],
        full_secs / incremental_secs.max(1e-9),
    );
    Ok(())
}
