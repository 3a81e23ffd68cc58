//! `lore bench ingest` and `lore bench api`: ingestion throughput and search latency over HTTP,
//! and what authentication, limits and usage logging add to a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use crate::common::*;
use crate::{ApiArgs, IngestArgs};

pub(crate) async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let lore = BenchServer::start(args.data_dir.clone(), args.workers, &http).await?;
    let (base, token) = (lore.base.clone(), lore.token.clone());
    let kb_id = create_knowledge_base(&http, &base, &token, "bench").await?;

    let mut rng = Rng(0x2545F4914F6CDD1D);
    let (en, zh) = (Vocabulary::english(VOCABULARY), Vocabulary::chinese(VOCABULARY));
    let corpus: Vec<String> = (0..args.docs).map(|i| document(i, args.size, &en, &zh, &mut rng)).collect();
    let total_bytes: usize = corpus.iter().map(String::len).sum();
    let corpus = Arc::new(corpus);
    let next = Arc::new(AtomicUsize::new(0));

    println!(
        "lore bench ingest --docs {} --size {} --concurrency {}: {} Markdown documents (half Chinese, half English, \
         Zipf vocabularies of {VOCABULARY} words), {:.1} MB, server workers: {}",
        args.docs,
        args.size,
        args.concurrency,
        args.docs,
        total_bytes as f64 / 1e6,
        args.workers.map(|w| w.to_string()).unwrap_or_else(|| "default".into())
    );
    let t0 = Instant::now();
    let mut uploaders = Vec::new();
    for _ in 0..args.concurrency {
        let (http, corpus, next, base, token, kb_id) =
            (http.clone(), corpus.clone(), next.clone(), base.clone(), token.clone(), kb_id.clone());
        uploaders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(doc) = corpus.get(i) else { return Ok::<(), anyhow::Error>(()) };
                let part = reqwest::multipart::Part::text(doc.clone()).file_name(format!("doc-{i}.md"));
                let form = reqwest::multipart::Form::new().part("file", part);
                let resp = http
                    .post(format!("{base}/v1/knowledge-bases/{kb_id}/documents"))
                    .bearer_auth(&token)
                    .multipart(form)
                    .send()
                    .await?;
                if resp.status().as_u16() != 202 {
                    bail!("upload {i} answered {}: {}", resp.status(), resp.text().await.unwrap_or_default());
                }
            }
        }));
    }
    for u in uploaders {
        u.await??;
    }
    let uploaded = t0.elapsed();
    loop {
        let ready: Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
        if ready["queued_jobs"].as_i64() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let completed = t0.elapsed();
    let failed: Value = http
        .get(format!("{base}/v1/knowledge-bases/{kb_id}/documents?status=failed&limit=10"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let failed = failed["data"].as_array().map(Vec::len).unwrap_or(0);
    let kb: Value =
        http.get(format!("{base}/v1/knowledge-bases/{kb_id}")).bearer_auth(&token).send().await?.json().await?;
    let secs = completed.as_secs_f64();
    println!(
        "ingest: {} docs accepted in {:.2} s, all completed in {:.2} s: {:.0} docs/s, {:.2} MB/s; {} chunks; failed: {}",
        args.docs,
        uploaded.as_secs_f64(),
        secs,
        args.docs as f64 / secs,
        total_bytes as f64 / 1e6 / secs,
        kb["chunk_count"],
        failed
    );

    let queries: Vec<String> = (0..args.queries + 100).map(|_| query(&en, &zh, &mut rng)).collect();
    let (client, server) = time_queries(&http, &base, &token, &kb_id, &queries, 100).await?;
    println!(
        "search (fulltext, top_k 10, {} queries of 1-3 content words, 1 client): p50 {:.2} ms, p99 {:.2} ms over HTTP; \
         server-side p50 {:.2} ms, p99 {:.2} ms",
        client.len(),
        percentile(&client, 0.5),
        percentile(&client, 0.99),
        percentile(&server, 0.5),
        percentile(&server, 0.99)
    );
    // The worst case, reported rather than hidden: each of the 10 most common words alone.
    let common: Vec<String> =
        (0..200).map(|i| if i % 2 == 0 { &zh } else { &en }.words[(i / 2) % 10].clone()).collect();
    let (client, _) = time_queries(&http, &base, &token, &kb_id, &common, 0).await?;
    println!(
        "search worst case (single most common words, matching most chunks): p50 {:.2} ms, p99 {:.2} ms over HTTP",
        percentile(&client, 0.5),
        percentile(&client, 0.99)
    );
    println!("server peak RSS: {}", lore.peak_rss());
    Ok(())
}

/// Runs `concurrency` clients against one endpoint for `seconds`; returns the sorted latencies
/// (ms) of successful requests and the count of failures.
async fn load(
    http: &reqwest::Client, url: &str, bearer: Option<&str>, concurrency: usize, seconds: f64,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, bearer) = (http.clone(), url.to_string(), bearer.map(str::to_string));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = http.get(&url);
                if let Some(b) = &bearer {
                    req = req.bearer_auth(b);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await?;
        all.extend(l);
        failures += f;
    }
    all.sort_by(f64::total_cmp);
    Ok((all, failures))
}

pub(crate) async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let server = BenchServer::start(None, Some(1), &http).await?;
    let created: Value = http
        .post(format!("{}/v1/api-keys", server.base))
        .bearer_auth(&server.token)
        .json(&json!({"name": "bench", "scopes": ["read"], "rate_limit": 100_000_000u64,
                      "daily_quota": 1_000_000_000u64, "monthly_quota": 2_000_000_000u64}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = created["key"].as_str().context("no key")?.to_string();
    let plain = format!("{}/healthz", server.base);
    let authed = format!("{}/v1/me", server.base);
    println!(
        "lore bench api --duration {} --concurrency {}: GET /healthz (no auth) vs GET /v1/me with an API key \
         (lookup, rate limit and quotas counted atomically, usage row logged), alternating rounds",
        args.duration, args.concurrency
    );
    load(&http, &plain, None, args.concurrency, 2.0).await?;
    load(&http, &authed, Some(&key), args.concurrency, 2.0).await?;
    let rounds = 3;
    let slice = args.duration as f64 / rounds as f64;
    let (mut base_ms, mut auth_ms, mut failures) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        let (l, f) = load(&http, &plain, None, args.concurrency, slice).await?;
        base_ms.extend(l);
        failures += f;
        let (l, f) = load(&http, &authed, Some(&key), args.concurrency, slice).await?;
        auth_ms.extend(l);
        failures += f;
    }
    base_ms.sort_by(f64::total_cmp);
    auth_ms.sort_by(f64::total_cmp);
    let seconds = slice * rounds as f64;
    for (name, l) in [("GET /healthz", &base_ms), ("GET /v1/me + key", &auth_ms)] {
        println!(
            "{name}: {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms",
            l.len() as f64 / seconds,
            percentile(l, 0.5),
            percentile(l, 0.99)
        );
    }
    println!(
        "added by auth + limits + usage log: p50 {:.3} ms, p99 {:.3} ms; failures: {failures}; server peak RSS {}",
        percentile(&auth_ms, 0.5) - percentile(&base_ms, 0.5),
        percentile(&auth_ms, 0.99) - percentile(&base_ms, 0.99),
        server.peak_rss()
    );
    Ok(())
}
