//! `lore bench load`: a mixed workload against `lore serve` child processes (one on the embedded
//! default, or several nodes on one PostgreSQL): hybrid search 70%, uploads 20%, agent chat 10%
//! (against a local provider that answers at once), from many concurrent clients for a fixed
//! time, spread over the nodes. Prints requests/s, p50/p99 per operation, the count of 5xx
//! answers, and each node's resident memory over time. Any 5xx, or memory that keeps growing
//! after the warm-up (a leak), fails the campaign.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::chat::instant_provider;
use crate::{BenchServer, Vocabulary, create_knowledge_base, percentile, query, upload_text};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Documents in the knowledge base before the load starts.
    #[arg(long, default_value_t = 200)]
    documents: usize,
    /// Run on PostgreSQL (a fresh schema is made there) instead of the embedded store.
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// `lore serve` nodes sharing the database (more than one needs --database-url).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

#[derive(Default)]
struct Tally {
    search: Vec<f64>,
    upload: Vec<f64>,
    chat: Vec<f64>,
    server_errors: u64,
    other_errors: u64,
}

fn document(i: usize, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
    let vocab = if i.is_multiple_of(2) { zh } else { en };
    let mut text = format!("# {} {i}\n\n", vocab.sample(rng));
    for _ in 0..60 {
        text.push_str(vocab.sample(rng));
        text.push(if i.is_multiple_of(2) { '，' } else { ' ' });
    }
    text
}

pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(
        args.nodes == 1 || args.database_url.is_some(),
        "several nodes share a database: give --database-url"
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.clients * 2).build()?;
    let data_dir = std::env::temp_dir().join(format!("lore-load-{}", std::process::id()));
    let _cleanup = RemoveDir(data_dir.clone());
    let mut env = Vec::new();
    if let Some(url) = &args.database_url {
        env.push(("LORE_DATABASE_URL", lore_store::postgres::create_scratch_schema(url).await?));
    }
    let mut servers = Vec::new();
    for _ in 0..args.nodes {
        // The nodes share the data directory (uploads, master key) as they would a volume.
        servers.push(BenchServer::launch(&data_dir, &[], &env, &http).await?);
    }
    let (base, token) = (servers[0].base.clone(), servers[0].token.clone());
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let provider = instant_provider().await?;
    let kb = create_knowledge_base(&http, &base, &token, "load").await?;
    let (en, zh) = (Arc::new(Vocabulary::english(20_000)), Arc::new(Vocabulary::chinese(20_000)));
    let mut rng = Rng(5);
    for i in 0..args.documents {
        upload_text(&http, &base, &token, &kb, format!("seed-{i}.md"), document(i, &en, &zh, &mut rng)).await?;
    }
    loop {
        let ready: Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
        if ready["queued_jobs"].as_i64() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let agent: Value = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "load", "model_provider": "openai", "model_name": "instant",
                      "model_parameters": {"base_url": provider}, "knowledge_base_ids": [kb]}))
        .send()
        .await?
        .json()
        .await?;
    let agent = agent["id"].as_str().with_context(|| format!("agent: {agent}"))?.to_string();
    eprintln!("{} documents ready; {} clients for {} s", args.documents, args.clients, args.seconds);

    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let base = bases[c % bases.len()].clone();
        let (http, token, kb, agent) = (http.clone(), token.clone(), kb.clone(), agent.clone());
        let (en, zh, tally) = (en.clone(), zh.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(1000 + c as u64);
            let mut n = 0usize;
            while Instant::now() < deadline {
                n += 1;
                let roll = rng.below(10);
                let t = Instant::now();
                let status = if roll < 7 {
                    let q = query(&en, &zh, &mut rng);
                    http.post(format!("{base}/v1/knowledge-bases/{kb}/search"))
                        .bearer_auth(&token)
                        .json(&json!({"query": q, "top_k": 10}))
                        .send()
                        .await
                        .map(|r| r.status())
                } else if roll < 9 {
                    let name = format!("load-{c}-{n}.md");
                    let text = document(c * 1_000_000 + n, &en, &zh, &mut rng);
                    upload_text(&http, &base, &token, &kb, name, text).await.map(|r| r.status())
                } else {
                    let q = query(&en, &zh, &mut rng);
                    http.post(format!("{base}/v1/agents/{agent}/chat"))
                        .bearer_auth(&token)
                        .json(&json!({"message": q}))
                        .send()
                        .await
                        .map(|r| r.status())
                };
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let mut tally = tally.lock().await;
                match status {
                    Ok(s) if s.is_success() => match roll {
                        0..=6 => tally.search.push(ms),
                        7 | 8 => tally.upload.push(ms),
                        _ => tally.chat.push(ms),
                    },
                    Ok(s) if s.is_server_error() => tally.server_errors += 1,
                    _ => tally.other_errors += 1,
                }
            }
        }));
    }
    // Each node's memory, once a second.
    let mut rss = vec![Vec::new(); servers.len()];
    while Instant::now() < deadline {
        for (series, server) in rss.iter_mut().zip(&servers) {
            if let Some(kib) = server.rss_kib() {
                series.push((started.elapsed().as_secs_f64(), kib as f64 / 1024.0));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for c in clients {
        let _ = c.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut guard = tally.lock().await;
    let tally = &mut *guard;
    for v in [&mut tally.search, &mut tally.upload, &mut tally.chat] {
        v.sort_by(f64::total_cmp);
    }
    let total = tally.search.len() + tally.upload.len() + tally.chat.len();
    // Memory after the first fifth (warm-up) against the end of the run, per node.
    let mut memory = Vec::new();
    let mut leaks = 0;
    for (node, series) in rss.iter().enumerate() {
        let warm = series.iter().find(|(t, _)| *t >= elapsed / 5.0).map(|(_, m)| *m).unwrap_or(0.0);
        let last = series.last().map(|(_, m)| *m).unwrap_or(0.0);
        let peak = series.iter().map(|(_, m)| *m).fold(0.0, f64::max);
        let leak = last > warm * 1.25 + 64.0;
        leaks += usize::from(leak);
        let points: Vec<String> =
            series.iter().step_by((series.len() / 8).max(1)).map(|(t, m)| format!("{t:.0}s:{m:.0}")).collect();
        eprintln!("node {node} RSS MiB over time: {}", points.join(" "));
        memory.push(format!(
            "RSS warm {warm:.0} MiB, end {last:.0} MiB, peak {peak:.0} MiB{}",
            if leak { " — SUSPECTED LEAK: memory kept growing after the warm-up" } else { "" }
        ));
    }
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "embedded" };
    println!(
        "load {} s, {} clients, {} {backend} node(s): {:.1} req/s ({} ok); search p50 {:.1} / p99 {:.1} ms ({}), \
         upload p50 {:.1} / p99 {:.1} ms ({}), chat p50 {:.1} / p99 {:.1} ms ({}); 5xx {}, other errors {}; {}",
        args.seconds,
        args.clients,
        servers.len(),
        total as f64 / elapsed,
        total,
        percentile(&tally.search, 0.5),
        percentile(&tally.search, 0.99),
        tally.search.len(),
        percentile(&tally.upload, 0.5),
        percentile(&tally.upload, 0.99),
        tally.upload.len(),
        percentile(&tally.chat, 0.5),
        percentile(&tally.chat, 0.99),
        tally.chat.len(),
        tally.server_errors,
        tally.other_errors,
        memory.join("; "),
    );
    anyhow::ensure!(leaks == 0, "memory kept growing after the warm-up");
    anyhow::ensure!(tally.server_errors == 0, "the server answered 5xx");
    Ok(())
}

/// Removes the shared data directory when the campaign ends (after the nodes are gone).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
