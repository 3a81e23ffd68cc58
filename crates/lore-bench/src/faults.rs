//! `lore bench faults`: the machine fails under a running server while documents it has
//! acknowledged are still being processed, then recovers:
//! - disk full: the data directory is a small tmpfs, filled to the last byte;
//! - read-only: the data directory's mount is swapped for a read-only one (files the server
//!   already holds open stay writable, as when an operator remounts a volume);
//! - database down (with `--database-url`): the server reaches PostgreSQL through a proxy in this
//!   process, which is cut: every connection dropped, new ones refused;
//! - database crash (with `--crash-database 15/main` too): the PostgreSQL server itself is stopped
//!   the way a crash stops it (`pg_ctlcluster ... stop -m immediate`: no checkpoint, recovery from
//!   the WAL on start). Every client of that server notices, so the test suite does not do this.
//!
//! Each fault must turn readiness false with its own error code, refuse new uploads with that code
//! (never a 500, never a 202 that is later lost), and, once it clears, the server must become ready
//! again by itself and complete every document it acknowledged. Linux only; needs root to mount.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::{BenchServer, create_knowledge_base, upload_text};

#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// Documents uploaded just before each fault strikes (in flight while it lasts).
    #[arg(long, default_value_t = 40)]
    documents: usize,
    /// Seconds each fault lasts.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Also take PostgreSQL away from a server running on it (a fresh schema is made there).
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Also crash that PostgreSQL server itself: the Debian cluster (`VERSION/NAME`, e.g. 15/main)
    /// that serves --database-url.
    #[arg(long, requires = "database_url")]
    crash_database: Option<String>,
}

/// What one fault did to the server.
struct Outcome {
    fault: &'static str,
    /// Seconds from the fault until readiness said so, and the code it gave.
    not_ready_after: f64,
    ready_code: String,
    /// The status and code of an upload during the fault.
    upload: String,
    /// Seconds from the fault clearing until readiness came back.
    ready_again_after: f64,
    /// Seconds from the fault clearing until every acknowledged document completed.
    settled_after: f64,
    acknowledged: usize,
    completed: usize,
    findings: Vec<String>,
}

impl Outcome {
    fn summary(&self) -> String {
        format!(
            "{}: not ready in {:.1} s ({}), upload {}, ready again in {:.1} s, {}/{} acknowledged completed in {:.1} s",
            self.fault,
            self.not_ready_after,
            self.ready_code,
            self.upload,
            self.ready_again_after,
            self.completed,
            self.acknowledged,
            self.settled_after
        )
    }
}

/// The fault a scenario injects and clears.
#[async_trait::async_trait]
trait Fault: Send + Sync {
    fn name(&self) -> &'static str;
    /// The error code readiness and uploads must give while it lasts.
    fn code(&self) -> &'static str;
    async fn inject(&self) -> anyhow::Result<()>;
    async fn clear(&self) -> anyhow::Result<()>;
}

pub async fn faults(args: FaultsArgs) -> anyhow::Result<()> {
    ensure!(cfg!(target_os = "linux"), "the fault campaign mounts file systems: Linux only");
    ensure!(is_root(), "the fault campaign mounts a small tmpfs for the data directory: run it as root");
    let started = Instant::now();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let work = tempdir("lore-faults")?;
    let mut outcomes = Vec::new();

    // The disk faults: a 192 MiB tmpfs (`store`) bind-mounted as the data directory (`data`), so
    // the read-only fault can swap the mount while the server holds files open.
    let store = work.path.join("store");
    let data = work.path.join("data");
    std::fs::create_dir_all(&store)?;
    std::fs::create_dir_all(&data)?;
    let _tmpfs = Mount::new(&store, &["-t", "tmpfs", "-o", "size=192m", "tmpfs"])?;
    let bind = Arc::new(BindMount { source: store.clone(), target: data.clone() });
    bind.mount(false)?;
    let model_dir =
        std::env::var("LORE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir().join("lore-models"));
    let env = [("LORE_MODEL_DIR", model_dir.display().to_string())];
    let flags = ["--workers", "2", "--min-free-disk-mb", "32"].map(String::from);
    {
        let server = BenchServer::launch(&data, &flags, &env, &http).await?;
        let kb = create_knowledge_base(&http, &server.base, &server.token, "faults").await?;
        let full = DiskFull { ballast: store.join("ballast") };
        outcomes.push(scenario(&http, &server, &kb, &full, &args).await?);
        let read_only = ReadOnly(bind.clone());
        outcomes.push(scenario(&http, &server, &kb, &read_only, &args).await?);
    }

    if let Some(url) = &args.database_url {
        let schema_url = lore_store::postgres::create_scratch_schema(url).await?;
        let mut upstream = reqwest::Url::parse(&schema_url).context("the database URL")?;
        let target = format!(
            "{}:{}",
            upstream.host_str().context("the database URL names no host")?,
            upstream.port().unwrap_or(5432)
        );
        let proxy = Proxy::start(target).await?;
        upstream.set_host(Some("127.0.0.1"))?;
        upstream.set_port(Some(proxy.port)).map_err(|()| anyhow::anyhow!("cannot set the proxy's port"))?;
        let pg_data = work.path.join("pg-data");
        let env = [env[0].clone(), ("LORE_DATABASE_URL", upstream.to_string())];
        let server = BenchServer::launch(&pg_data, &flags[..2], &env, &http).await?;
        let kb = create_knowledge_base(&http, &server.base, &server.token, "faults").await?;
        outcomes.push(scenario(&http, &server, &kb, &DatabaseDown(proxy), &args).await?);
        if let Some(cluster) = &args.crash_database {
            let crash = DatabaseCrash::parse(cluster)?;
            outcomes.push(scenario(&http, &server, &kb, &crash, &args).await?);
        }
    }

    for o in &outcomes {
        eprintln!("{}", o.summary());
    }
    let findings: Vec<String> =
        outcomes.iter().flat_map(|o| o.findings.iter().map(move |f| format!("{}: {f}", o.fault))).collect();
    let parts: Vec<String> = outcomes.iter().map(Outcome::summary).collect();
    println!(
        "faults in {:.0} s: {}; findings: {}",
        started.elapsed().as_secs_f64(),
        parts.join("; "),
        if findings.is_empty() { "none".to_string() } else { findings.join("; ") }
    );
    if !findings.is_empty() {
        bail!("the fault campaign found {} problems", findings.len());
    }
    Ok(())
}

/// Uploads documents, injects the fault while they are processed, checks how the server answers
/// during it, clears it and checks that the server recovers and loses nothing.
async fn scenario(
    http: &reqwest::Client, server: &BenchServer, kb: &str, fault: &dyn Fault, args: &FaultsArgs,
) -> anyhow::Result<Outcome> {
    let name = fault.name();
    let mut findings = Vec::new();
    let mut acknowledged = Vec::new();
    for i in 0..args.documents {
        let (status, body) = upload(http, server, kb, &format!("{name}-{i}.md"), &document(name, i)).await?;
        ensure!(status == StatusCode::ACCEPTED, "upload before the fault: {status} {body}");
        acknowledged.push(body["id"].as_str().context("document id")?.to_string());
    }

    fault.inject().await?;
    let struck = Instant::now();
    let (not_ready_after, ready_code) = loop {
        let (status, code) = readiness(http, server).await;
        if status != StatusCode::OK {
            if code != fault.code() {
                findings.push(format!("readiness answered {status} {code}, expected {}", fault.code()));
            }
            break (struck.elapsed().as_secs_f64(), format!("{} {code}", status.as_u16()));
        }
        if struck.elapsed() > Duration::from_secs(15) {
            findings.push("readiness stayed true".into());
            break (f64::NAN, "200".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, body) = upload(http, server, kb, &format!("{name}-during.md"), &document(name, 9999)).await?;
    let upload_code = body["error"]["code"].as_str().unwrap_or_default().to_string();
    if status.is_success() {
        // Accepted during the fault: it must complete like every other acknowledged upload.
        acknowledged.push(body["id"].as_str().context("document id")?.to_string());
    } else if upload_code != fault.code() || !status.is_server_error() {
        findings.push(format!("an upload during the fault answered {status} {body}"));
    }
    let upload_during =
        format!("{} {}", status.as_u16(), if upload_code.is_empty() { "accepted" } else { &upload_code });
    // The server keeps answering (whatever it can) while the fault lasts; a 500 is a finding.
    let hold_until = Instant::now() + Duration::from_secs(args.hold);
    while Instant::now() < hold_until {
        let search = http
            .post(format!("{}/v1/knowledge-bases/{kb}/search", server.base))
            .bearer_auth(&server.token)
            .json(&json!({"query": "fault tolerance 容错", "mode": "fulltext"}))
            .send()
            .await?;
        if search.status() == StatusCode::INTERNAL_SERVER_ERROR {
            findings.push(format!("a search during the fault answered 500: {}", search.text().await?));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    fault.clear().await?;
    let cleared = Instant::now();
    let ready_again_after = loop {
        if readiness(http, server).await.0 == StatusCode::OK {
            break cleared.elapsed().as_secs_f64();
        }
        if cleared.elapsed() > Duration::from_secs(60) {
            findings.push("readiness did not come back within 60 s".into());
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every acknowledged document completes; within a lease (60 s) and a little more.
    let deadline = cleared + Duration::from_secs(120);
    let (completed, settled_after) = loop {
        let mut done = 0;
        let mut open = 0;
        for id in &acknowledged {
            let doc: Value = http
                .get(format!("{}/v1/documents/{id}", server.base))
                .bearer_auth(&server.token)
                .send()
                .await?
                .json()
                .await?;
            match doc["status"].as_str() {
                Some("completed") => done += 1,
                Some("pending") | Some("processing") => open += 1,
                _ => findings.push(format!("document {id} ended {} ({})", doc["status"], doc["error_message"])),
            }
        }
        if open == 0 {
            break (done, cleared.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            findings.push(format!("{open} acknowledged documents still open 120 s after the fault cleared"));
            break (done, f64::NAN);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (status, body) = upload(http, server, kb, &format!("{name}-after.md"), &document(name, 10_000)).await?;
    if status != StatusCode::ACCEPTED {
        findings.push(format!("an upload after recovery answered {status} {body}"));
    }
    Ok(Outcome {
        fault: name,
        not_ready_after,
        ready_code,
        upload: upload_during,
        ready_again_after,
        settled_after,
        acknowledged: acknowledged.len(),
        completed,
        findings,
    })
}

/// Fills the data directory's tmpfs to the last byte with a ballast file.
struct DiskFull {
    ballast: PathBuf,
}

#[async_trait::async_trait]
impl Fault for DiskFull {
    fn name(&self) -> &'static str {
        "disk full"
    }
    fn code(&self) -> &'static str {
        "storage_full"
    }
    async fn inject(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&self.ballast)?;
        let block = vec![0u8; 1 << 20];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(e.into()),
            }
        }
        // The last partial block too.
        let byte = [0u8; 4096];
        while file.write(&byte).map(|n| n > 0).unwrap_or(false) {}
        Ok(())
    }
    async fn clear(&self) -> anyhow::Result<()> {
        std::fs::remove_file(&self.ballast)?;
        Ok(())
    }
}

/// The data directory as a bind mount of the tmpfs, writable or read-only.
struct BindMount {
    source: PathBuf,
    target: PathBuf,
}

impl BindMount {
    fn mount(&self, read_only: bool) -> anyhow::Result<()> {
        let options = if read_only { "bind,ro" } else { "bind" };
        run("mount", &["-o", options, &self.source.display().to_string(), &self.target.display().to_string()])
    }

    /// Detaches the mount; files already open through it stay usable.
    fn unmount(&self) {
        let _ = run("umount", &["-l", &self.target.display().to_string()]);
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Swaps the data directory's mount for a read-only one: new files cannot be made there.
struct ReadOnly(Arc<BindMount>);

#[async_trait::async_trait]
impl Fault for ReadOnly {
    fn name(&self) -> &'static str {
        "read-only"
    }
    fn code(&self) -> &'static str {
        "storage_unavailable"
    }
    async fn inject(&self) -> anyhow::Result<()> {
        self.0.unmount();
        self.0.mount(true)
    }
    async fn clear(&self) -> anyhow::Result<()> {
        self.0.unmount();
        self.0.mount(false)
    }
}

/// Cuts the proxy between the server and PostgreSQL.
struct DatabaseDown(Proxy);

#[async_trait::async_trait]
impl Fault for DatabaseDown {
    fn name(&self) -> &'static str {
        "database down"
    }
    fn code(&self) -> &'static str {
        "database_unavailable"
    }
    async fn inject(&self) -> anyhow::Result<()> {
        self.0.cut.store(true, Ordering::SeqCst);
        self.0.dropped.notify_waiters();
        Ok(())
    }
    async fn clear(&self) -> anyhow::Result<()> {
        self.0.cut.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// A Debian PostgreSQL cluster, stopped as a crash would stop it (`-m immediate`: no checkpoint,
/// recovery from the WAL on start) and started again. Also used by `lore bench crash`.
pub(crate) struct DatabaseCrash {
    version: String,
    name: String,
}

impl DatabaseCrash {
    /// From `VERSION/NAME`, e.g. `15/main`.
    pub(crate) fn parse(cluster: &str) -> anyhow::Result<DatabaseCrash> {
        let (version, name) = cluster.split_once('/').context("a cluster is VERSION/NAME, e.g. 15/main")?;
        Ok(DatabaseCrash { version: version.to_string(), name: name.to_string() })
    }

    pub(crate) fn stop(&self) -> anyhow::Result<()> {
        run("pg_ctlcluster", &["--skip-systemctl-redirect", &self.version, &self.name, "stop", "-m", "immediate"])
    }

    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        let args = ["--skip-systemctl-redirect", &self.version, &self.name, "start"];
        // The stopped server's socket lock may linger a moment.
        for _ in 0..10 {
            if run("pg_ctlcluster", &args).is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        run("pg_ctlcluster", &args)
    }
}

#[async_trait::async_trait]
impl Fault for DatabaseCrash {
    fn name(&self) -> &'static str {
        "database crash"
    }
    fn code(&self) -> &'static str {
        "database_unavailable"
    }
    async fn inject(&self) -> anyhow::Result<()> {
        self.stop()
    }
    async fn clear(&self) -> anyhow::Result<()> {
        self.start().await
    }
}

/// A TCP proxy on 127.0.0.1 to the database. While cut, it drops every connection and refuses new
/// ones, as a database that went away does.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    dropped: Arc<Notify>,
}

impl Proxy {
    async fn start(target: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(Notify::new());
        let (cut2, dropped2) = (cut.clone(), dropped.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let (target, dropped) = (target.clone(), dropped2.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = dropped.notified() => {}
                    }
                });
            }
        });
        Ok(Proxy { port, cut, dropped })
    }
}

/// A small bilingual document, different for each fault and index.
fn document(fault: &str, i: usize) -> String {
    format!(
        "# {fault} {i}\n\n文档 {i} 在故障期间上传，必须在恢复后处理完成。服务器不能丢失任何已确认的上传。\n\n\
         Document {i} was uploaded while the machine was failing; it must be processed once it recovers."
    )
}

async fn upload(
    http: &reqwest::Client, server: &BenchServer, kb: &str, name: &str, text: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = upload_text(http, &server.base, &server.token, kb, name.to_string(), text.to_string()).await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Readiness' status and error code.
async fn readiness(http: &reqwest::Client, server: &BenchServer) -> (StatusCode, String) {
    match http.get(format!("{}/readyz", server.base)).send().await {
        Ok(r) => {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("no answer: {e}")),
    }
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out =
        std::process::Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    ensure!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A mount, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(target: &Path, args: &[&str]) -> anyhow::Result<Mount> {
        let target_arg = target.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.push(&target_arg);
        run("mount", &all)?;
        Ok(Mount(target.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.0.display().to_string()]);
    }
}

/// A temporary directory, removed when dropped (after the mounts inside it are gone).
struct TempDir {
    path: PathBuf,
}

fn tempdir(prefix: &str) -> anyhow::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir { path })
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
