//! `lore bench retrieval`: nDCG@10, recall@100 and latency on a BEIR-format dataset.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::RetrievalArgs;
use crate::common::*;

async fn get_json(http: &reqwest::Client, url: String, token: &str) -> anyhow::Result<Value> {
    Ok(http.get(url).bearer_auth(token).send().await?.error_for_status()?.json().await?)
}

fn dcg(ranked: &[String], relevant: &std::collections::HashMap<String, i64>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| *relevant.get(id).unwrap_or(&0) as f64 / (i as f64 + 2.0).log2())
        .sum()
}

pub(crate) async fn retrieval(args: RetrievalArgs) -> anyhow::Result<()> {
    use std::collections::HashMap;
    let read_jsonl = |name: &str| -> anyhow::Result<Vec<Value>> {
        let text = std::fs::read_to_string(args.dataset.join(name))
            .with_context(|| format!("{name} in {}", args.dataset.display()))?;
        Ok(text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?)
    };
    let mut corpus = read_jsonl("corpus.jsonl")?;
    corpus.truncate(args.max_docs.unwrap_or(usize::MAX));
    let indexed: std::collections::HashSet<&str> = corpus.iter().filter_map(|d| d["_id"].as_str()).collect();
    let queries = read_jsonl("queries.jsonl")?;
    let mut qrels: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for line in std::fs::read_to_string(args.dataset.join("qrels/test.tsv"))?.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if let [q, c, score] = f[..] {
            qrels.entry(q.to_string()).or_default().insert(c.to_string(), score.trim().parse().unwrap_or(0));
        }
    }
    // With part of the corpus, the queries it answers whole.
    qrels.retain(|_, relevant| relevant.keys().all(|c| indexed.contains(c.as_str())));
    let http = reqwest::Client::builder().pool_max_idle_per_host(16).build()?;
    let lore = BenchServer::start(args.data_dir.clone(), None, &http).await?;
    let (base, token) = (lore.base.clone(), lore.token.clone());
    let chunking: Option<Value> =
        args.chunking.as_deref().map(serde_json::from_str).transpose().context("--chunking is not valid JSON")?;
    let kb_name = format!(
        "retrieval {}{}{}",
        args.dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        args.max_docs.map(|n| format!(" first {n}")).unwrap_or_default(),
        chunking.as_ref().map(|c| format!(" chunking {c}")).unwrap_or_default()
    );
    let existing = get_json(&http, format!("{base}/v1/knowledge-bases"), &token).await?;
    let reuse = existing["data"].as_array().into_iter().flatten().find(|kb| {
        kb["name"].as_str() == Some(kb_name.as_str()) && kb["document_count"].as_u64() == Some(corpus.len() as u64)
    });
    let mut doc_ids: HashMap<String, String> = HashMap::new();
    let kb_id = match reuse {
        Some(kb) => {
            let kb_id = kb["id"].as_str().context("kb id")?.to_string();
            let mut offset = 0;
            loop {
                let url = format!("{base}/v1/knowledge-bases/{kb_id}/documents?limit=100&offset={offset}");
                let page = get_json(&http, url, &token).await?;
                let docs = page["data"].as_array().cloned().unwrap_or_default();
                for d in &docs {
                    let name = d["filename"].as_str().unwrap_or_default();
                    doc_ids.insert(
                        d["id"].as_str().unwrap_or_default().to_string(),
                        name.strip_suffix(".txt").unwrap_or(name).to_string(),
                    );
                }
                if docs.len() < 100 {
                    break;
                }
                offset += 100;
            }
            println!(
                "lore bench retrieval: reusing {} ingested documents in {}",
                doc_ids.len(),
                lore.data_dir.display()
            );
            kb_id
        }
        None => {
            let kb_id = create_knowledge_base(&http, &base, &token, &kb_name).await?;
            if let Some(chunking) = &chunking {
                let resp = http
                    .patch(format!("{base}/v1/knowledge-bases/{kb_id}"))
                    .bearer_auth(&token)
                    .json(&json!({"settings": {"chunking_config": chunking}}))
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "--chunking refused: {}", resp.text().await?);
            }
            let t0 = Instant::now();
            for chunk in corpus.chunks(8) {
                let uploads = chunk.iter().map(|d| {
                    let text = format!("{}\n\n{}", d["title"].as_str().unwrap_or(""), d["text"].as_str().unwrap_or(""));
                    let name = format!("{}.txt", d["_id"].as_str().unwrap_or("doc"));
                    upload_text(&http, &base, &token, &kb_id, name, text)
                });
                for (d, resp) in chunk.iter().zip(futures_util::future::join_all(uploads).await) {
                    let v: Value = resp?.json().await?;
                    doc_ids.insert(
                        v["id"].as_str().unwrap_or_default().to_string(),
                        d["_id"].as_str().unwrap_or_default().to_string(),
                    );
                }
            }
            loop {
                let ready: Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
                if ready["queued_jobs"].as_i64() == Some(0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let ingest_secs = t0.elapsed().as_secs_f64();
            let kbv: Value =
                http.get(format!("{base}/v1/knowledge-bases/{kb_id}")).bearer_auth(&token).send().await?.json().await?;
            println!(
                "lore bench retrieval --dataset {}: {} documents ({} chunks) ingested in {:.1} s ({:.1} chunks/s)",
                args.dataset.display(),
                corpus.len(),
                kbv["chunk_count"],
                ingest_secs,
                kbv["chunk_count"].as_f64().unwrap_or(0.0) / ingest_secs
            );
            encoder_alone(&corpus, &lore.data_dir, corpus.len() as f64 / ingest_secs)?;
            kb_id
        }
    };
    let judged: Vec<&Value> = queries
        .iter()
        .filter(|q| q["_id"].as_str().is_some_and(|id| qrels.contains_key(id)))
        .take(args.max_queries.unwrap_or(usize::MAX))
        .collect();
    let rerank: Option<Value> =
        args.rerank.as_deref().map(serde_json::from_str).transpose().context("--rerank is not valid JSON")?;
    // Each mode as the knowledge base searches, then again through the rerank stage if asked.
    let mut runs: Vec<(String, Value)> = Vec::new();
    let each = |list: &[String]| -> Vec<Option<String>> {
        if list.is_empty() { vec![None] } else { list.iter().cloned().map(Some).collect() }
    };
    for mode in &args.modes {
        let (targets, fusions) = match mode.as_str() {
            "vector" => (each(&args.targets), vec![None]),
            "hybrid" => (each(&args.targets), each(&args.fusions)),
            _ => (vec![None], vec![None]),
        };
        for target in &targets {
            for fusion in &fusions {
                let named: Vec<&str> = [target.as_deref(), fusion.as_deref()].into_iter().flatten().collect();
                let label = if named.is_empty() { mode.clone() } else { format!("{mode} ({})", named.join(", ")) };
                let request =
                    json!({"mode": mode, "top_k": 100, "search_target": target, "fusion": fusion, "rerank": false});
                runs.push((label.clone(), request.clone()));
                if let Some(rerank) = &rerank {
                    let mut with = request;
                    with["rerank"] = rerank.clone();
                    runs.push((format!("{label}+rerank"), with));
                }
            }
        }
    }
    for (label, request) in &runs {
        let (mut ndcg, mut recall, mut latencies) = (0.0, 0.0, Vec::new());
        for q in &judged {
            let relevant = &qrels[q["_id"].as_str().unwrap_or_default()];
            let t = Instant::now();
            let v: Value = http
                .post(format!("{base}/v1/knowledge-bases/{kb_id}/search"))
                .bearer_auth(&token)
                .json(&{
                    let mut body = request.clone();
                    body["query"] = q["text"].clone();
                    body
                })
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if let Some(warning) = v["warning"].as_str() {
                anyhow::bail!("{label}: {warning}");
            }
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            let mut ranked: Vec<String> = Vec::new();
            for hit in v["results"].as_array().into_iter().flatten() {
                let id = doc_ids.get(hit["document_id"].as_str().unwrap_or_default()).cloned().unwrap_or_default();
                if !ranked.contains(&id) {
                    ranked.push(id);
                }
            }
            let mut ideal: Vec<i64> = relevant.values().copied().collect();
            ideal.sort_unstable_by(|a, b| b.cmp(a));
            let idcg: f64 = ideal.iter().take(10).enumerate().map(|(i, r)| *r as f64 / (i as f64 + 2.0).log2()).sum();
            if idcg > 0.0 {
                ndcg += dcg(&ranked, relevant, 10) / idcg;
            }
            let positives = relevant.values().filter(|r| **r > 0).count().max(1);
            recall += ranked.iter().take(100).filter(|id| relevant.get(*id).is_some_and(|r| *r > 0)).count() as f64
                / positives as f64;
        }
        latencies.sort_by(f64::total_cmp);
        let n = judged.len().max(1) as f64;
        println!(
            "{label}: nDCG@10 {:.3}, recall@100 {:.3} over {} queries; latency p50 {:.2} ms, p99 {:.2} ms (top_k 100, HTTP)",
            ndcg / n,
            recall / n,
            judged.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    Ok(())
}

/// The built-in encoder alone over the same documents (a sample of at most 500), in batches of
/// 32: the speed ingestion is measured against. Skipped when the server runs without embeddings.
fn encoder_alone(corpus: &[Value], data_dir: &std::path::Path, ingested_per_sec: f64) -> anyhow::Result<()> {
    if std::env::var("LORE_EMBEDDING_MODEL").is_ok_and(|m| m == "none") {
        return Ok(());
    }
    let model_dir = std::env::var_os("LORE_MODEL_DIR").map_or_else(|| data_dir.join("models"), Into::into);
    let texts: Vec<String> = corpus
        .iter()
        .take(500)
        .map(|d| format!("{}\n\n{}", d["title"].as_str().unwrap_or(""), d["text"].as_str().unwrap_or("")))
        .collect();
    let encoder = crate::vectors::default_encoder(&model_dir)?;
    let (secs, tokens) = crate::vectors::encode_passages(&encoder, &texts, 32);
    let alone = texts.len() as f64 / secs;
    println!(
        "encoder alone, the same texts: {} documents ({tokens} tokens) in {secs:.1} s, {alone:.2} documents/s; \
         ingestion {ingested_per_sec:.2} documents/s, {:.0}% of it",
        texts.len(),
        100.0 * ingested_per_sec / alone
    );
    Ok(())
}
