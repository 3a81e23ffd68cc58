//! `lore bench crash`: kills the server with SIGKILL at random moments while documents are
//! uploaded and processed, restarts it each time, and then checks that nothing was lost: every
//! accepted upload completes, no document is left pending or processing, the knowledge base's
//! counts match its documents, no chunk is duplicated, and search (full text and vector) finds
//! each document. Runs on the embedded store, or on PostgreSQL with LORE_DATABASE_URL (a fresh
//! schema there), where `--nodes N` runs N servers on it and kills one of them at a time while
//! the others go on (uploaders fail over, as behind a load balancer). Each node has a data
//! directory of its own and shares nothing with the others but the database URL and the master
//! key, as on separate machines. Exits non-zero with the findings when an invariant breaks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

use crate::create_knowledge_base;

#[derive(Debug, Args)]
pub struct CrashArgs {
    /// Documents uploaded (each small, one chunk, with a unique marker word).
    #[arg(long, default_value_t = 2000)]
    docs: usize,
    /// Times the server is killed with SIGKILL and restarted during ingestion.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Concurrent uploaders.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Documents whose vector search is checked (their own text must find them first).
    #[arg(long, default_value_t = 100)]
    vector_checks: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// PostgreSQL to run on (a fresh schema is made there); default: the embedded store.
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Servers sharing the database; each kill takes one of them (more than one needs --database-url).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Make every fourth kill a crash of PostgreSQL itself: the Debian cluster (VERSION/NAME, e.g.
    /// 15/main) serving --database-url, stopped with `-m immediate` and started again (root).
    #[arg(long, requires = "database_url")]
    crash_database: Option<String>,
}

/// One `lore serve` process over a fixed data directory and port, killed and started again.
struct Server {
    child: Option<std::process::Child>,
    port: u16,
    data_dir: PathBuf,
    database_url: Option<String>,
    master_key: String,
}

impl Server {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--workers", "2"])
            .args(["--registration", "open", "--registrations-per-hour", "0"])
            .env("LORE_LOG", "error")
            .env("LORE_MASTER_KEY", &self.master_key)
            .env_remove("LORE_DATABASE_URL")
            .stdout(std::process::Stdio::null());
        if let Some(url) = &self.database_url {
            cmd.env("LORE_DATABASE_URL", url);
        }
        self.child = Some(cmd.spawn().context("cannot start `lore serve`")?);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !http.get(format!("{base}/readyz")).send().await.map(|r| r.status().is_success()).unwrap_or(false) {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server did not come back within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

fn text_of(i: usize) -> (String, String) {
    if i.is_multiple_of(2) {
        (
            format!("doc{i}.md"),
            format!(
                "# 崩溃测试 {i}\n\n标记 crashmarker{i}。第 {i} 号文档记录退款与配送的规则，服务器在处理时可能被强行终止。"
            ),
        )
    } else {
        (
            format!("doc{i}.txt"),
            format!("Crash test {i}. Marker crashmarker{i}. Document number {i} notes a rule on refunds and delivery."),
        )
    }
}

pub async fn crash(args: CrashArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let database_url = match &args.database_url {
        Some(url) => Some(lore_store::postgres::create_scratch_schema(url).await.map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(args.nodes == 1 || database_url.is_some(), "several nodes share a database: give --database-url");
    let backend = match (&database_url, args.nodes) {
        (None, _) => "embedded".to_string(),
        (Some(_), 1) => "postgres".to_string(),
        (Some(_), n) => format!("postgres, {n} nodes"),
    };
    let data_dir = std::env::temp_dir().join(format!("lore-crash-{}", std::process::id()));
    // The cluster's key, the same on every node (each would otherwise make its own).
    let master_key = lore_server::secrets::MasterKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?.to_base64();
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for node in 0..args.nodes {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Server {
            child: None,
            port,
            data_dir: data_dir.join(format!("node{node}")),
            database_url: database_url.clone(),
            master_key: master_key.clone(),
        };
        server.spawn()?;
        bases.push(format!("http://127.0.0.1:{port}"));
        wait_healthy(&http, &bases[bases.len() - 1]).await?;
        servers.push(server);
    }
    let base = bases[0].clone();
    let auth: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"username": "crash", "email": "crash@example.com", "password": "crash-password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = auth["token"].as_str().context("token")?.to_string();
    let kb = create_knowledge_base(&http, &base, &token, "crash").await?;

    // Uploaders: each document is sent until the server answers 202 (or 200, the same content
    // already accepted before a crash cut the answer off).
    let started = Instant::now();
    let next = Arc::new(Mutex::new(0usize));
    let accepted: Arc<Mutex<HashMap<usize, String>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut uploaders = Vec::new();
    for u in 0..args.concurrency.max(1) {
        let (http, bases, token, kb) = (http.clone(), bases.clone(), token.clone(), kb.clone());
        let (next, accepted, total) = (next.clone(), accepted.clone(), args.docs);
        let mut node = u % bases.len();
        uploaders.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut n = next.lock().expect("lock");
                    if *n >= total {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let (name, text) = text_of(i);
                loop {
                    let form = reqwest::multipart::Form::new().part(
                        "file",
                        reqwest::multipart::Part::bytes(text.clone().into_bytes()).file_name(name.clone()),
                    );
                    let sent = http
                        .post(format!("{}/v1/knowledge-bases/{kb}/documents", bases[node]))
                        .bearer_auth(&token)
                        .multipart(form)
                        .send()
                        .await;
                    if let Ok(resp) = sent
                        && resp.status().is_success()
                        && let Ok(v) = resp.json::<Value>().await
                        && let Some(id) = v["id"].as_str()
                    {
                        accepted.lock().expect("lock").insert(i, id.to_string());
                        break;
                    }
                    // That node is down (or refused): the next one, as a load balancer would.
                    node = (node + 1) % bases.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    // The killer: SIGKILL at random moments, spread over the ingestion, each followed by a restart.
    let mut rng = Rng(args.seed | 1);
    let mut restarts = Vec::with_capacity(args.kills);
    let database = args.crash_database.as_deref().map(crate::faults::DatabaseCrash::parse).transpose()?;
    let mut database_crashes = 0;
    for kill in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(2700) as u64)).await;
        if let Some(database) = &database
            && kill % 4 == 3
        {
            database.stop()?;
            database.start().await?;
            database_crashes += 1;
            for base in &bases {
                restarts.push(wait_healthy(&http, base).await?.as_secs_f64());
            }
            continue;
        }
        let victim = rng.below(servers.len());
        servers[victim].kill9();
        servers[victim].spawn()?;
        restarts.push(wait_healthy(&http, &bases[victim]).await?.as_secs_f64());
    }
    for u in uploaders {
        u.await?;
    }
    let uploaded_in = started.elapsed().as_secs_f64();
    let accepted = accepted.lock().expect("lock").clone();

    // Every accepted document reaches a final state; none stays pending or processing.
    let deadline = Instant::now() + Duration::from_secs(300);
    let docs = loop {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page: Value = http
                .get(format!("{base}/v1/knowledge-bases/{kb}/documents?limit=100&offset={offset}"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let batch = page["data"].as_array().cloned().unwrap_or_default();
            offset += batch.len();
            let done = batch.len() < 100;
            all.extend(batch);
            if done {
                break;
            }
        }
        let open = all.iter().filter(|d| d["status"] == "pending" || d["status"] == "processing").count();
        if open == 0 {
            break all;
        }
        if Instant::now() > deadline {
            bail!("{open} documents still pending or processing 300 s after the last restart");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let settled_in = started.elapsed().as_secs_f64();

    let mut findings = Vec::new();
    if accepted.len() != args.docs {
        findings.push(format!("{} of {} uploads accepted", accepted.len(), args.docs));
    }
    if docs.len() != args.docs {
        findings.push(format!("{} documents listed for {} uploads", docs.len(), args.docs));
    }
    let failed: Vec<String> = docs
        .iter()
        .filter(|d| d["status"] != "completed")
        .map(|d| format!("{} {}", d["filename"], d["error_code"]))
        .collect();
    if !failed.is_empty() {
        findings.push(format!("{} documents did not complete: {:?}", failed.len(), &failed[..failed.len().min(5)]));
    }
    let kb_now: Value =
        http.get(format!("{base}/v1/knowledge-bases/{kb}")).bearer_auth(&token).send().await?.json().await?;
    let listed_chunks: i64 = docs.iter().map(|d| d["chunk_count"].as_i64().unwrap_or(0)).sum();
    if kb_now["document_count"].as_i64() != Some(args.docs as i64)
        || kb_now["chunk_count"].as_i64() != Some(listed_chunks)
    {
        findings.push(format!(
            "knowledge base counts {} documents / {} chunks; its documents have {} / {listed_chunks}",
            kb_now["document_count"],
            kb_now["chunk_count"],
            docs.len()
        ));
    }
    // No chunk twice: each document's chunks have distinct positions and match its count.
    let mut duplicated = 0;
    for d in &docs {
        let id = d["id"].as_str().unwrap_or_default();
        let chunks: Value =
            http.get(format!("{base}/v1/documents/{id}/chunks")).bearer_auth(&token).send().await?.json().await?;
        let list = chunks["data"].as_array().cloned().unwrap_or_default();
        let mut positions: Vec<i64> = list.iter().filter_map(|c| c["chunk_index"].as_i64()).collect();
        positions.sort_unstable();
        positions.dedup();
        if positions.len() != list.len() || list.len() as i64 != d["chunk_count"].as_i64().unwrap_or(-1) {
            duplicated += 1;
        }
    }
    if duplicated > 0 {
        findings.push(format!("{duplicated} documents with duplicated or missing chunks"));
    }
    // Search agrees with the database: each marker finds its document first, in full text; the
    // vector index finds a sample of documents by their own text.
    let by_id: HashMap<String, usize> = accepted.iter().map(|(i, id)| (id.clone(), *i)).collect();
    let mut fulltext_misses = 0;
    let mut vector_misses = 0;
    for (i, id) in &accepted {
        let top = first_hit(&http, &base, &token, &kb, &format!("crashmarker{i}"), "fulltext").await?;
        if top.as_deref() != Some(id.as_str()) {
            fulltext_misses += 1;
        }
    }
    let mut sample: Vec<usize> = accepted.keys().copied().collect();
    sample.sort_unstable();
    for i in sample.into_iter().step_by((args.docs / args.vector_checks.max(1)).max(1)) {
        let top = first_hit(&http, &base, &token, &kb, &text_of(i).1, "vector").await?;
        if top.as_ref().and_then(|id| by_id.get(id)) != Some(&i) {
            vector_misses += 1;
        }
    }
    if fulltext_misses > 0 {
        findings.push(format!("{fulltext_misses} markers not found first by full text"));
    }
    if vector_misses > 0 {
        findings.push(format!("{vector_misses} documents not found first by their own text in the vector index"));
    }

    restarts.sort_by(f64::total_cmp);
    println!(
        "crash ({backend}): {} documents, {} kills during ingestion ({database_crashes} of the database); accepted {}/{}, completed {}/{}, \
         stuck 0, counts match: {}, duplicated chunks: {duplicated}, full-text misses {fulltext_misses}, \
         vector misses {vector_misses}/{}; restart to ready p50 {:.2} s, max {:.2} s; uploads done in {:.1} s, \
         all settled in {:.1} s; findings: {}",
        args.docs,
        args.kills,
        accepted.len(),
        args.docs,
        docs.iter().filter(|d| d["status"] == "completed").count(),
        args.docs,
        !findings.iter().any(|f| f.starts_with("knowledge base counts")),
        args.vector_checks.min(args.docs),
        crate::percentile(&restarts, 0.5),
        restarts.last().copied().unwrap_or(0.0),
        uploaded_in,
        settled_in,
        if findings.is_empty() { "none".to_string() } else { findings.join("; ") }
    );
    if !findings.is_empty() {
        bail!("the crash campaign found {} problems", findings.len());
    }
    Ok(())
}

async fn first_hit(
    http: &reqwest::Client, base: &str, token: &str, kb: &str, query: &str, mode: &str,
) -> anyhow::Result<Option<String>> {
    let v: Value = http
        .post(format!("{base}/v1/knowledge-bases/{kb}/search"))
        .bearer_auth(token)
        .json(&json!({"query": query, "mode": mode, "top_k": 3}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["results"][0]["document_id"].as_str().map(str::to_string))
}
