//! What the benchmarks share: generated text with natural word frequencies, percentiles, a
//! `lore serve` child process with a registered user, and a few API calls.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lore_ingest::samples::Rng;
use serde_json::{Value, json};

/// Words per language in the generated corpus.
pub(crate) const VOCABULARY: usize = 20_000;

/// A vocabulary whose words occur with Zipf's law (exponent 1), as words of natural text do:
/// a few very common words, a long tail of rare ones.
pub(crate) struct Vocabulary {
    pub(crate) words: Vec<String>,
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
pub(crate) fn document(i: usize, size: usize, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) -> String {
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
pub(crate) async fn time_queries(
    http: &reqwest::Client, base: &str, token: &str, kb_id: &str, queries: &[String], warm_up: usize,
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

pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
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
    http: &reqwest::Client, base: &str, token: &str, name: &str,
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
    http: &reqwest::Client, base: &str, token: &str, kb: &str, name: String, text: String,
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
    pub(crate) data_dir: PathBuf,
    remove_dir: bool,
}

impl BenchServer {
    pub(crate) async fn start(
        data_dir: Option<PathBuf>, workers: Option<usize>, http: &reqwest::Client,
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
        data_dir: &std::path::Path, args: &[String], env: &[(&str, String)], http: &reqwest::Client,
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

    pub(crate) fn peak_rss(&self) -> String {
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

/// An account and one knowledge base of its own, written straight into an embedded store (for
/// benches that fill a store without the API).
pub(crate) async fn account_with_kb(
    store: &lore_store::SqliteStore, username: &str, password_hash: String, kb_name: &str,
) -> anyhow::Result<(lore_core::model::User, lore_core::model::KnowledgeBase)> {
    use lore_core::model::{KbSettings, NewKnowledgeBase, NewUser};
    use lore_core::store::{AccountStore, KnowledgeBaseStore};
    let user = store
        .create_user(NewUser {
            username: username.into(),
            email: format!("{username}@example.com"),
            password_hash,
            full_name: None,
            first_name: None,
            last_name: None,
        })
        .await?;
    let kb = store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: user.id,
            created_by: None,
            name: kb_name.into(),
            description: None,
            icon_url: None,
            settings: KbSettings::default(),
        })
        .await?;
    Ok((user, kb))
}
