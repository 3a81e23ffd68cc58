//! `lore bench load`: a mixed workload against a `lore serve` child process on the embedded
//! default: hybrid search 70%, uploads 20%, agent chat 10% (against a local provider that answers
//! at once), from many concurrent clients for a fixed time. Prints requests/s, p50/p99 per
//! operation, the count of 5xx answers, and the server's resident memory over time; memory that
//! keeps growing after the warm-up is reported as a suspected leak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::bench::{BenchServer, Vocabulary, percentile, query};
use crate::bench_chat::instant_provider;

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

async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    kb: &str,
    name: String,
    text: String,
) -> reqwest::Result<reqwest::StatusCode> {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text(text).file_name(name));
    Ok(http
        .post(format!("{base}/v1/knowledge-bases/{kb}/documents"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?
        .status())
}

pub async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.clients * 2).build()?;
    let server = BenchServer::start(None, None, &http).await?;
    let (base, token) = (server.base.clone(), server.token.clone());
    let provider = instant_provider().await?;
    let kb: Value = http
        .post(format!("{base}/v1/knowledge-bases"))
        .bearer_auth(&token)
        .json(&json!({"name": "load"}))
        .send()
        .await?
        .json()
        .await?;
    let kb = kb["id"].as_str().context("kb")?.to_string();
    let (en, zh) = (Arc::new(Vocabulary::english(20_000)), Arc::new(Vocabulary::chinese(20_000)));
    let mut rng = Rng(5);
    for i in 0..args.documents {
        upload(&http, &base, &token, &kb, format!("seed-{i}.md"), document(i, &en, &zh, &mut rng)).await?;
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
        let (http, base, token, kb, agent) = (http.clone(), base.clone(), token.clone(), kb.clone(), agent.clone());
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
                    upload(&http, &base, &token, &kb, name, text).await
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
    // Memory, once a second.
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        if let Some(kib) = server.rss_kib() {
            rss.push((started.elapsed().as_secs_f64(), kib as f64 / 1024.0));
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
    // Memory after the first fifth (warm-up) against the end of the run.
    let warm = rss.iter().find(|(t, _)| *t >= elapsed / 5.0).map(|(_, m)| *m).unwrap_or(0.0);
    let last = rss.last().map(|(_, m)| *m).unwrap_or(0.0);
    let peak = rss.iter().map(|(_, m)| *m).fold(0.0, f64::max);
    let leak = last > warm * 1.25 + 64.0;
    let series: Vec<String> =
        rss.iter().step_by((rss.len() / 8).max(1)).map(|(t, m)| format!("{t:.0}s:{m:.0}")).collect();
    eprintln!("RSS MiB over time: {}", series.join(" "));
    println!(
        "load {} s, {} clients: {:.1} req/s ({} ok); search p50 {:.1} / p99 {:.1} ms ({}), upload p50 {:.1} / p99 {:.1} ms ({}), \
         chat p50 {:.1} / p99 {:.1} ms ({}); 5xx {}, other errors {}; RSS warm {:.0} MiB, end {:.0} MiB, peak {:.0} MiB{}",
        args.seconds,
        args.clients,
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
        warm,
        last,
        peak,
        if leak { " — SUSPECTED LEAK: memory kept growing after the warm-up" } else { "" },
    );
    anyhow::ensure!(tally.server_errors == 0, "the server answered 5xx");
    Ok(())
}
