//! `lore bench ingest`: uploads a generated corpus of small Markdown files through the HTTP API
//! of a `lore serve` child process, waits until every document is `completed`, then measures
//! full-text search latency with queries drawn from the corpus's own word distribution. Prints
//! documents/s, MB/s, p50/p99 and the server's peak RSS.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingestion throughput and full-text search latency over HTTP.
    Ingest(IngestArgs),
    /// What authentication, rate limiting and usage logging add to a request, under load.
    Api(ApiArgs),
    /// Fuzz the parsers with mutated sample files of every format for a time budget.
    Fuzz(FuzzArgs),
    /// Parse, chunk and segment every file of a folder (no embedding): MB/s and files/s per format.
    Parse(ParseArgs),
    /// Retrieval quality on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv):
    /// nDCG@10, recall@100 and latency, through the HTTP API.
    Retrieval(RetrievalArgs),
    /// The vector index alone: build time, recall@10 against exact search, latency, QPS, memory.
    Ann(crate::bench_vectors::AnnArgs),
    /// Throughput of the built-in embedding model in tokens/s and chunks/s.
    Embed(crate::bench_vectors::EmbedArgs),
    /// The time to first token Lore adds to a chat provider (retrieval and prompt), over many chunks.
    Chat(crate::bench_chat::ChatArgs),
    /// A folder data source: full import vs an incremental sync after a few files changed.
    Sync(crate::bench_sync::SyncArgs),
    /// A mixed load (search 70%, upload 20%, chat 10%) from many clients: requests/s, p50/p99 per
    /// operation, 5xx count, and the server's memory over time.
    Load(crate::bench_load::LoadArgs),
    /// kill -9 during ingestion, many times: every accepted upload completes, counts match, no
    /// chunk is duplicated, search finds every document (embedded, or PostgreSQL with LORE_DATABASE_URL).
    Crash(crate::bench_crash::CrashArgs),
    /// The machine fails under a running server while documents are in flight: its disk fills,
    /// its data directory turns read-only, its PostgreSQL goes away. Clear errors, readiness
    /// false, nothing acknowledged lost, recovery by itself. Needs root (it mounts a small tmpfs).
    Faults(crate::bench_faults::FaultsArgs),
    /// A hostile tenant and an outside caller against a victim tenant: chunking configs at the
    /// edges, bombs and malformed files, every address field pointed at private addresses, every
    /// operation with the attacker's keys on the victim's objects. No 5xx, no leak, nothing
    /// reaches the recorder, memory bounded.
    Hostile(crate::bench_hostile::HostileArgs),
}

#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// The dataset folder.
    #[arg(long)]
    dataset: PathBuf,
    /// Search modes to measure (those this build supports).
    #[arg(long, value_delimiter = ',', default_value = "fulltext,vector,hybrid")]
    modes: Vec<String>,
    /// At most this many queries (all by default).
    #[arg(long)]
    max_queries: Option<usize>,
    /// Keep the server's data here; a later run over the same directory and dataset skips ingestion.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The knowledge base's chunking configuration (JSON, as in its settings); the default
    /// chunking otherwise. BEIR documents are already passages, so
    /// '{"strategy_type":"fixed","config":{"chunk_size":512,"chunk_overlap":0,"size_unit":"tokens"}}'
    /// indexes each as one chunk up to the model's 512-token window, as published evaluations do.
    #[arg(long)]
    chunking: Option<String>,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The folder to read (recursively).
    #[arg(long)]
    dir: PathBuf,
    /// First fill the folder with a generated mixed corpus of about this many MB
    /// (Markdown, HTML, text, CSV, JSON, DOCX, XLSX, PDF; Chinese and English).
    #[arg(long)]
    generate_mb: Option<u64>,
    /// Parse in a child process (`lore parse-worker`, reused from file to file) under the parser
    /// budgets, as `lore serve` does, instead of in this process.
    #[arg(long)]
    isolated: bool,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Random seed (runs with the same seed try the same inputs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write inputs that broke a parser.
    #[arg(long, default_value = "fuzz-findings")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Seconds of load per endpoint, split into alternating rounds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Number of Markdown documents to upload.
    #[arg(long, default_value_t = 10_000)]
    docs: usize,
    /// Approximate size of each document in bytes.
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Concurrent upload connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Search queries to time (after 100 warm-up queries).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Ingestion workers of the server (default: its own default, one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Data directory for the server (default: a fresh temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Words per language in the generated corpus.
const VOCABULARY: usize = 20_000;

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Api(args) => api(args).await,
        BenchCommand::Fuzz(args) => fuzz(args),
        BenchCommand::Parse(args) => parse_folder(args),
        BenchCommand::Retrieval(args) => retrieval(args).await,
        BenchCommand::Ann(args) => tokio::task::spawn_blocking(move || crate::bench_vectors::ann(args)).await?,
        BenchCommand::Embed(args) => tokio::task::spawn_blocking(move || crate::bench_vectors::embed(args)).await?,
        BenchCommand::Chat(args) => crate::bench_chat::chat(args).await,
        BenchCommand::Sync(args) => crate::bench_sync::sync(args).await,
        BenchCommand::Load(args) => crate::bench_load::load(args).await,
        BenchCommand::Crash(args) => crate::bench_crash::crash(args).await,
        BenchCommand::Faults(args) => crate::bench_faults::faults(args).await,
        BenchCommand::Hostile(args) => crate::bench_hostile::hostile(args).await,
    }
}

/// A vocabulary whose words occur with Zipf's law (exponent 1), as words of natural text do:
/// a few very common words, a long tail of rare ones.
pub(crate) struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn zipf(words: Vec<String>) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    /// Pseudo-English: distinct words made of two or three syllables.
    pub(crate) fn english(n: usize) -> Self {
        const ONSETS: &[&str] =
            &["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl", "gr"];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea"];
        let syllables: Vec<String> =
            ONSETS.iter().flat_map(|o| VOWELS.iter().map(move |v| format!("{o}{v}"))).collect();
        let k = syllables.len();
        let words = (0..n)
            .map(|i| {
                let mut w = format!("{}{}", syllables[i % k], syllables[(i / k) % k]);
                if i >= k * k / 2 {
                    w.push_str(&syllables[(i * 7) % k]);
                }
                w
            })
            .collect();
        Vocabulary::zipf(words)
    }

    /// Two-character Chinese words over 1,500 of the most basic CJK code points.
    pub(crate) fn chinese(n: usize) -> Self {
        const SPAN: usize = 1500;
        let ch = |i: usize| char::from_u32(0x4E00 + i as u32).unwrap_or('中');
        let words = (0..n)
            .map(|i| {
                let a = i % SPAN;
                let b = (i / SPAN + a * 7 + 1) % SPAN;
                format!("{}{}", ch(a), ch(b))
            })
            .collect();
        Vocabulary::zipf(words)
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = rng.unit() * total;
        let i = self.cumulative.partition_point(|c| *c < target).min(self.words.len() - 1);
        &self.words[i]
    }
}

/// Document `i`: a title and paragraphs in one language (even: Chinese, odd: English).
fn document(i: usize, size: usize, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
    let chinese = i.is_multiple_of(2);
    let vocab = if chinese { zh } else { en };
    let mut out = format!("# {} {} {i}\n\n", vocab.sample(rng), vocab.sample(rng));
    while out.len() < size {
        let words = 20 + (rng.next_u64() % 40) as usize;
        for w in 0..words {
            out.push_str(vocab.sample(rng));
            if chinese {
                if w % 8 == 7 {
                    out.push('，');
                }
            } else {
                out.push(' ');
            }
        }
        out.push_str(if chinese { "。\n\n" } else { ".\n\n" });
        if rng.next_u64().is_multiple_of(5) {
            out.push_str(&format!("## {}\n\n", vocab.sample(rng)));
        }
    }
    out
}

/// A query of one to three content words: ranks 50 to 5,000 of the vocabulary, uniformly (the
/// very common words are function words, which people rarely search for on their own).
pub(crate) fn query(en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
    let chinese = rng.next_u64().is_multiple_of(2);
    let vocab = if chinese { zh } else { en };
    let n = 1 + (rng.next_u64() % 3) as usize;
    let words: Vec<&str> = (0..n).map(|_| vocab.words[50 + (rng.next_u64() % 4950) as usize].as_str()).collect();
    words.join(if chinese { "" } else { " " })
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs the queries one after another; returns sorted client-side and server-side latencies (ms),
/// leaving out the first `warm_up`.
async fn time_queries(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    kb_id: &str,
    queries: &[String],
    warm_up: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut client_ms = Vec::new();
    let mut server_ms = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let resp: Value = http
            .post(format!("{base}/v1/knowledge-bases/{kb_id}/search"))
            .bearer_auth(token)
            .json(&json!({"query": q, "mode": "fulltext", "top_k": 10}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if i >= warm_up {
            client_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            server_ms.push(resp["took_ms"].as_f64().unwrap_or(0.0));
        }
    }
    client_ms.sort_by(f64::total_cmp);
    server_ms.sort_by(f64::total_cmp);
    Ok((client_ms, server_ms))
}

/// A memory figure of a process from /proc, in KiB: `VmRSS` (now) or `VmHWM` (peak).
pub(crate) fn proc_memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_memory_kib(pid, "VmHWM")
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Creates a knowledge base through the API; its id.
pub(crate) async fn create_knowledge_base(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> anyhow::Result<String> {
    let kb: Value = http
        .post(format!("{base}/v1/knowledge-bases"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(kb["id"].as_str().context("no knowledge base id")?.to_string())
}

/// Uploads `text` as a file named `name` into a knowledge base.
pub(crate) async fn upload_text(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    kb: &str,
    name: String,
    text: String,
) -> reqwest::Result<reqwest::Response> {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text(text).file_name(name));
    http.post(format!("{base}/v1/knowledge-bases/{kb}/documents")).bearer_auth(token).multipart(form).send().await
}

/// A `lore serve` child process on a free port over its own data directory, with a registered
/// user. Killed (and its temporary directory removed) when dropped.
pub(crate) struct BenchServer {
    child: Child,
    pub(crate) base: String,
    pub(crate) token: String,
    data_dir: PathBuf,
    remove_dir: bool,
}

impl BenchServer {
    pub(crate) async fn start(
        data_dir: Option<PathBuf>,
        workers: Option<usize>,
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let remove_dir = data_dir.is_none();
        let data_dir =
            data_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("lore-bench-{}", std::process::id())));
        let args: Vec<String> = workers.map(|w| vec!["--workers".to_string(), w.to_string()]).unwrap_or_default();
        // LORE_DATABASE_URL, when set, puts the measured server on PostgreSQL.
        let env: Vec<(&str, String)> =
            std::env::var("LORE_DATABASE_URL").ok().map(|url| ("LORE_DATABASE_URL", url)).into_iter().collect();
        let mut server = Self::launch(&data_dir, &args, &env, http).await?;
        server.remove_dir = remove_dir;
        Ok(server)
    }

    /// A server over `data_dir` (kept when dropped) with extra flags and environment; several may
    /// share one data directory and database (a cluster), the later ones signing in as the same user.
    /// It runs on the embedded store unless `env` names LORE_DATABASE_URL.
    pub(crate) async fn launch(
        data_dir: &std::path::Path,
        args: &[String],
        env: &[(&str, String)],
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // Every node of a cluster registers (or, finding the account, signs in).
            .args(["--registration", "open", "--registrations-per-hour", "0"])
            // The campaigns' model providers listen on 127.0.0.1, as an operator's own would.
            .args(["--allow-outbound", "127.0.0.1/32"])
            .args(args)
            .env("LORE_LOG", "warn")
            .env_remove("LORE_DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = Child(cmd.spawn().context("cannot start `lore serve`")?);
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the server did not come up within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let register = http
            .post(format!("{base}/v1/auth/register"))
            .json(&json!({"username": "bench", "email": "bench@example.com", "password": "bench-password"}))
            .send()
            .await?;
        // A data directory kept from an earlier run (or another node) already has the user.
        let auth: Value = if register.status() == reqwest::StatusCode::CONFLICT {
            http.post(format!("{base}/v1/auth/login"))
                .json(&json!({"username": "bench", "password": "bench-password"}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?
        } else {
            register.error_for_status()?.json().await?
        };
        let token = auth["token"].as_str().context("no token")?.to_string();
        Ok(BenchServer { child, base, token, data_dir: data_dir.to_path_buf(), remove_dir: false })
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The server's resident memory now, in KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        proc_memory_kib(self.child.0.id(), "VmRSS")
    }

    fn peak_rss(&self) -> String {
        peak_rss_kib(self.child.0.id()).map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
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
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    concurrency: usize,
    seconds: f64,
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

async fn api(args: ApiArgs) -> anyhow::Result<()> {
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

fn fuzz(args: FuzzArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "lore bench fuzz --seconds {} --seed {}: {threads} threads, mutated samples of every format",
        args.seconds, args.seed
    );
    let started = Instant::now();
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seed = args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(t as u64);
                scope.spawn(move || {
                    lore_ingest::fuzz::run(Duration::from_secs(args.seconds), u64::MAX, seed, Duration::from_secs(5))
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let executions: u64 = reports.iter().map(|r| r.executions).sum();
    let parsed: u64 = reports.iter().map(|r| r.parsed).sum();
    let rejected: u64 = reports.iter().map(|r| r.rejected).sum();
    let findings: Vec<_> = reports.into_iter().flat_map(|r| r.findings).collect();
    for (i, f) in findings.iter().enumerate() {
        std::fs::create_dir_all(&args.out)?;
        let path = args.out.join(format!("{i}-{}.bin", f.kind.name()));
        std::fs::write(&path, &f.input)?;
        println!("finding {i}: {:?} {} -> {}", f.kind, f.problem, path.display());
    }
    println!(
        "{executions} executions in {:.0} s ({:.0}/s): {parsed} parsed, {rejected} rejected with an error, {} findings",
        started.elapsed().as_secs_f64(),
        executions as f64 / started.elapsed().as_secs_f64(),
        findings.len()
    );
    anyhow::ensure!(
        findings.is_empty(),
        "the parsers broke on {} inputs (saved under {})",
        findings.len(),
        args.out.display()
    );
    Ok(())
}

/// Writes a mixed corpus of about `mb` MB into `dir`.
fn generate_corpus(dir: &std::path::Path, mb: u64) -> anyhow::Result<()> {
    use lore_ingest::samples;
    std::fs::create_dir_all(dir)?;
    let (en, zh) = (Vocabulary::english(VOCABULARY), Vocabulary::chinese(VOCABULARY));
    let mut rng = Rng(0xC0FFEE);
    let sentence = |rng: &mut Rng, chinese: bool, words: usize| -> String {
        let v = if chinese { &zh } else { &en };
        let w: Vec<&str> = (0..words).map(|_| v.sample(rng)).collect();
        if chinese { format!("{}。", w.join("")) } else { format!("{}.", w.join(" ")) }
    };
    let mut total = 0u64;
    let mut i = 0usize;
    while total < mb * 1_000_000 {
        let chinese = i.is_multiple_of(2);
        let paragraphs: Vec<String> = (0..40 + rng.next_u64() % 80).map(|_| sentence(&mut rng, chinese, 30)).collect();
        let (name, bytes): (String, Vec<u8>) = match i % 8 {
            0 => (format!("{i}.md"), format!("# Doc {i}\n\n{}", paragraphs.join("\n\n")).into_bytes()),
            1 => (
                format!("{i}.html"),
                format!(
                    "<html><head><title>Doc {i}</title></head><body><nav>menu</nav><main>{}</main><footer>f</footer></body></html>",
                    paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect::<String>()
                )
                .into_bytes(),
            ),
            2 => (format!("{i}.txt"), paragraphs.join("\n\n").into_bytes()),
            3 => (
                format!("{i}.csv"),
                std::iter::once("id,title,body".to_string())
                    .chain(paragraphs.iter().enumerate().map(|(r, p)| format!("{r},row {r},\"{p}\"")))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
            ),
            4 => (format!("{i}.json"), serde_json::to_vec(&json!({"id": i, "sections": paragraphs}))?),
            5 => {
                let blocks: Vec<(Option<usize>, String)> = paragraphs
                    .iter()
                    .enumerate()
                    .map(|(k, p)| if k % 10 == 0 { (Some(1), format!("Section {k}")) } else { (None, p.clone()) })
                    .collect();
                (format!("{i}.docx"), samples::docx_from(&blocks))
            }
            6 => {
                let rows: Vec<Vec<String>> = std::iter::once(vec!["id".to_string(), "text".to_string()])
                    .chain(paragraphs.iter().enumerate().map(|(r, p)| vec![r.to_string(), p.clone()]))
                    .collect();
                (format!("{i}.xlsx"), samples::xlsx_from(&rows))
            }
            _ => {
                // The standard PDF fonts are Latin only: English text.
                let lines: Vec<String> = (0..60).map(|_| sentence(&mut rng, false, 12)).collect();
                let pages: Vec<Vec<String>> = lines.chunks(30).map(|c| c.to_vec()).collect();
                (format!("{i}.pdf"), samples::pdf_lines(&pages))
            }
        };
        total += bytes.len() as u64;
        std::fs::write(dir.join(name), bytes)?;
        i += 1;
    }
    println!("generated {i} files, {:.1} MB, in {}", total as f64 / 1e6, dir.display());
    Ok(())
}

fn files_under(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn parse_folder(args: ParseArgs) -> anyhow::Result<()> {
    use lore_core::chunking;
    if let Some(mb) = args.generate_mb {
        generate_corpus(&args.dir, mb)?;
    }
    let mut paths = Vec::new();
    files_under(&args.dir, &mut paths)?;
    paths.sort();
    let strategy = chunking::resolve(None, None, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    lore_ingest::segment::warm_up();
    let pool = match args.isolated {
        true => Some(lore_ingest::isolate::ParserPool::new(std::env::current_exe()?, 1)),
        false => None,
    };
    // files, bytes, seconds in all, seconds parsing, chunks
    let mut per_kind: std::collections::BTreeMap<&'static str, (usize, u64, f64, f64, usize)> = Default::default();
    let mut failures = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let t = Instant::now();
        let kind = lore_ingest::detect::detect(&name, &bytes[..bytes.len().min(8192)]);
        let mut parse_secs = 0.0;
        let parsed = match &pool {
            Some(pool) => pool.parse(kind, &bytes),
            None => lore_ingest::parse::parse(kind, &bytes),
        };
        let outcome = parsed.map(|parsed| {
            parse_secs = t.elapsed().as_secs_f64();
            let chunks = lore_ingest::chunk::chunk(&parsed.text, &strategy);
            let terms: usize = chunks.iter().map(|c| lore_ingest::segment::terms(&c.content).len()).sum();
            (chunks.len(), terms)
        });
        let secs = t.elapsed().as_secs_f64();
        let entry = per_kind.entry(kind.name()).or_default();
        entry.0 += 1;
        entry.1 += bytes.len() as u64;
        entry.2 += secs;
        entry.3 += if parse_secs > 0.0 { parse_secs } else { secs };
        match outcome {
            Ok((chunks, _)) => entry.4 += chunks,
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    println!(
        "lore bench parse --dir {}{}: detect + parse{} + chunk (default) + segment, 1 thread, {} build",
        args.dir.display(),
        if args.isolated { " --isolated" } else { "" },
        if args.isolated { " (in one reused child process)" } else { "" },
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let (mut files, mut bytes, mut secs, mut parse) = (0, 0u64, 0.0, 0.0);
    for (kind, (n, b, s, p, chunks)) in &per_kind {
        println!(
            "{kind:>10}: {n:>5} files, {:>8.1} MB, parse {:>7.1} MB/s; with chunk + segment {:>7.1} MB/s, {:>7.0} files/s, {chunks} chunks",
            *b as f64 / 1e6,
            *b as f64 / 1e6 / p,
            *b as f64 / 1e6 / s,
            *n as f64 / s
        );
        files += n;
        bytes += b;
        secs += s;
        parse += p;
    }
    println!(
        "     total: {files:>5} files, {:>8.1} MB, parse {:>7.1} MB/s; with chunk + segment {:>7.1} MB/s, {:>7.0} files/s; failures: {}; peak RSS {}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / parse,
        bytes as f64 / 1e6 / secs,
        files as f64 / secs,
        failures.len(),
        peak_rss_kib(std::process::id()).map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_default()
    );
    for f in failures.iter().take(10) {
        println!("failed: {f}");
    }
    Ok(())
}

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

async fn retrieval(args: RetrievalArgs) -> anyhow::Result<()> {
    use std::collections::HashMap;
    let read_jsonl = |name: &str| -> anyhow::Result<Vec<Value>> {
        let text = std::fs::read_to_string(args.dataset.join(name))
            .with_context(|| format!("{name} in {}", args.dataset.display()))?;
        Ok(text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?)
    };
    let corpus = read_jsonl("corpus.jsonl")?;
    let queries = read_jsonl("queries.jsonl")?;
    let mut qrels: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for line in std::fs::read_to_string(args.dataset.join("qrels/test.tsv"))?.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if let [q, c, score] = f[..] {
            qrels.entry(q.to_string()).or_default().insert(c.to_string(), score.trim().parse().unwrap_or(0));
        }
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(16).build()?;
    let lore = BenchServer::start(args.data_dir.clone(), None, &http).await?;
    let (base, token) = (lore.base.clone(), lore.token.clone());
    let chunking: Option<Value> =
        args.chunking.as_deref().map(serde_json::from_str).transpose().context("--chunking is not valid JSON")?;
    let kb_name = format!(
        "retrieval {}{}",
        args.dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
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
            kb_id
        }
    };
    let judged: Vec<&Value> = queries
        .iter()
        .filter(|q| q["_id"].as_str().is_some_and(|id| qrels.contains_key(id)))
        .take(args.max_queries.unwrap_or(usize::MAX))
        .collect();
    for mode in &args.modes {
        let (mut ndcg, mut recall, mut latencies) = (0.0, 0.0, Vec::new());
        for q in &judged {
            let relevant = &qrels[q["_id"].as_str().unwrap_or_default()];
            let t = Instant::now();
            let v: Value = http
                .post(format!("{base}/v1/knowledge-bases/{kb_id}/search"))
                .bearer_auth(&token)
                .json(&json!({"query": q["text"], "mode": mode, "top_k": 100}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
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
            "{mode}: nDCG@10 {:.3}, recall@100 {:.3} over {} queries; latency p50 {:.2} ms, p99 {:.2} ms (top_k 100, HTTP)",
            ndcg / n,
            recall / n,
            judged.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    Ok(())
}
