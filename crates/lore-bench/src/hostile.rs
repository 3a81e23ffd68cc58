//! `lore bench hostile`: a hostile-tenant campaign against one `lore serve` child process (the
//! embedded store, or PostgreSQL in a fresh scratch schema). A victim tenant keeps a provider key
//! and documents, agents, conversations and a data source marked with unique canary strings; an
//! attacker tenant (a session and API keys of every scope, bound and unbound) and an outside caller
//! (no token, garbage tokens) then play rounds of randomised attacks until the time is up:
//!
//! 1. chunking configurations at the edges (0, 1, size-1, size, the maximum, huge, negative,
//!    strings; every strategy) for a preview of ~200 KB of Chinese and English text, for a
//!    knowledge base's settings and for an upload;
//! 2. bombs and malformed files: a sparse workbook, zip-bomb DOCX and EPUB (sometimes with lying
//!    sizes), a PDF with a huge Flate stream, an email with a huge base64 body, deep nesting;
//! 3. every address a user can name pointed at a recording listener on 127.0.0.2 (outside the
//!    policy), at the metadata service, at [::1], at 0.0.0.0, through a redirect from an allowed
//!    address, and at Lore itself; then what would call out (uploads, chats, syncs, webhooks);
//! 4. the key matrix: every operation of /openapi.json with a path parameter, called with each of
//!    the attacker's keys and its session on the victim's objects, and with the attacker's bound
//!    key on its own other knowledge base; every operation by the outside caller;
//! 5. a search over more knowledge bases than allowed.
//!
//! Every answer must be 2xx or 4xx with a code, never 5xx, never a timeout; no answer to the
//! attacker or the outside caller may hold a byte of the victim's canary or key; the recorder
//! must receive nothing; the server's resident memory must stay under `--max-rss-mb`, and it must
//! still answer at the end. Prints one summary line; exits non-zero with the findings.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lore_ingest::samples::Rng;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::{BenchServer, Vocabulary};

#[derive(Debug, Args)]
pub struct HostileArgs {
    /// Seconds of attack rounds (the setup and the final checks come on top; a round under way
    /// is finished).
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Run on PostgreSQL (a fresh schema is made there) instead of the embedded store.
    #[arg(long, env = "LORE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The server's resident memory (MiB) must stay under this at every sample.
    #[arg(long, default_value_t = 2048)]
    max_rss_mb: u64,
    /// Random seed (default: from the clock); printed in the summary, a run repeats with it.
    #[arg(long)]
    seed: Option<u64>,
    /// Only write one hostile file of each kind into this folder and exit (to replay a finding,
    /// e.g. with `lore bench parse --isolated --dir FOLDER`).
    #[arg(long)]
    write_files: Option<PathBuf>,
}

/// No answer within this is a finding.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A document must be completed or failed within this (an upload of a few KB that keeps the
/// server busy for minutes is a finding, whatever it ends with).
const DOCUMENT_DEADLINE: Duration = Duration::from_secs(120);
/// A document must leave the queue within this (its owner's own backlog included).
const QUEUE_DEADLINE: Duration = Duration::from_secs(900);
/// What a zip or PDF bomb expands to: past the default budget of 256 MiB.
const BOMB_BYTES: usize = 280 << 20;

// ------------------------------------------------------------------------------------ tallies

#[derive(Default)]
struct Tally {
    requests: u64,
    server_errors: u64,
    /// 502/504 from a provider the campaign broke on purpose (counted, not a finding).
    gateway: u64,
    /// 4xx answers by code.
    refusals: BTreeMap<String, u64>,
    /// Findings, each counted once per distinct message.
    findings: BTreeMap<String, u64>,
    /// Hostile files by kind and outcome.
    files: BTreeMap<String, u64>,
    /// Addresses the policy let through because the operator allowed 127.0.0.1/32.
    allowed_loopback: BTreeMap<String, u64>,
    slowest_ms: f64,
    slowest: String,
    /// What the amplification probe cost.
    amplification: String,
    /// The document the server took longest over (seconds, what).
    slowest_document: (f64, String),
    /// The longest the victim's upload waited for the attacker's files (seconds, upload to done).
    victim_wait: f64,
}

/// What a call may answer.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// 2xx, or 4xx with a code.
    Answer,
    /// Like `Answer`, and 502/504 with a provider's code too (the campaign broke the provider).
    Upstream,
    /// Only these statuses (a refusal).
    Only(&'static [u16]),
    /// 2xx (setup).
    Success,
}

struct Ctx {
    http: reqwest::Client,
    base: String,
    /// The victim's secrets: no byte of them may reach the attacker or the outside caller.
    secrets: Vec<String>,
    tally: Mutex<Tally>,
    probe: Mutex<Option<Probe>>,
}

impl Ctx {
    fn finding(&self, message: String) {
        eprintln!("FINDING: {message}");
        *self.tally.lock().expect("tally").findings.entry(message).or_default() += 1;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and judges its answer; `hostile` calls (the attacker's, the outside
    /// caller's) are searched for the victim's secrets. The status and body, or `None` when no
    /// answer came.
    async fn call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        expect: Expect,
        hostile: bool,
    ) -> Option<(u16, Value)> {
        let started = Instant::now();
        let result = request.timeout(CLIENT_TIMEOUT).send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.tally.lock().expect("tally").requests += 1;
                let why = if e.is_timeout() {
                    format!("no answer within {} s", CLIENT_TIMEOUT.as_secs())
                } else {
                    format!("{e}")
                };
                self.finding(format!("{what}: {why}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                self.finding(format!("{what}: the answer's body broke off: {e}"));
                String::new()
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
        if hostile {
            for secret in &self.secrets {
                if text.contains(secret.as_str()) {
                    self.finding(format!("{what}: the answer holds the victim's secret: {}", shorten(&text)));
                }
            }
        }
        let mut tally = self.tally.lock().expect("tally");
        tally.requests += 1;
        if ms > tally.slowest_ms {
            tally.slowest_ms = ms;
            tally.slowest = what.to_string();
        }
        let gateway_code = matches!(
            code.as_str(),
            "llm_unavailable" | "llm_bad_response" | "llm_timeout" | "embedding_failed" | "model_unavailable"
        );
        let problem = if status >= 500 {
            if expect == Expect::Upstream && matches!(status, 502..=504) && gateway_code {
                tally.gateway += 1;
                None
            } else {
                tally.server_errors += 1;
                Some(format!("{status} {}", shorten(&text)))
            }
        } else if (400..500).contains(&status) {
            if code.is_empty() {
                Some(format!("{status} without an error code: {}", shorten(&text)))
            } else {
                *tally.refusals.entry(code.clone()).or_default() += 1;
                match expect {
                    Expect::Success => Some(format!("{status} {}", shorten(&text))),
                    Expect::Only(allowed) if !allowed.contains(&status) && status != 429 => {
                        Some(format!("{status} (expected one of {allowed:?}) {}", shorten(&text)))
                    }
                    _ => None,
                }
            }
        } else {
            match expect {
                Expect::Only(allowed) if !allowed.contains(&status) => {
                    Some(format!("{status}, accepted (expected one of {allowed:?}) {}", shorten(&text)))
                }
                _ if status >= 300 => Some(format!("{status} {}", shorten(&text))),
                _ => None,
            }
        };
        drop(tally);
        if let Some(problem) = problem {
            self.finding(format!("{what}: {problem}"));
        }
        Some((status, body))
    }

    fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    fn post(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(token).json(&body)
    }

    fn patch(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path)).bearer_auth(token).json(&body)
    }

    fn put(&self, path: &str, token: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.put(self.url(path)).bearer_auth(token).json(&body)
    }

    /// A setup call that must succeed; its body.
    async fn must(&self, what: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        match self.call(what, request, Expect::Success, false).await {
            Some((status, body)) if (200..300).contains(&status) => Ok(body),
            other => anyhow::bail!("setup: {what} failed: {other:?}"),
        }
    }

    fn upload(
        &self,
        kb: &str,
        token: &str,
        name: &str,
        bytes: Vec<u8>,
        chunking: Option<String>,
    ) -> reqwest::RequestBuilder {
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        if let Some(config) = chunking {
            form = form.text("chunking_config", config);
        }
        self.http.post(self.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(token).multipart(form)
    }

    /// Waits until each document is completed or failed; its final view (`None`: it never ended).
    async fn settle(&self, token: &str, doc: &str) -> Option<Value> {
        self.settle_since(token, doc, Instant::now()).await
    }

    /// Like `settle`, for a document uploaded at `since`. The deadline counts the document's own
    /// processing: while it waits its turn in the queue (`pending`) the clock restarts, since a
    /// queue one tenant filled is that tenant's wait, not the cost of this document. Waiting in
    /// the queue has its own, longer bound.
    async fn settle_since(&self, token: &str, doc: &str, since: Instant) -> Option<Value> {
        let queue_deadline = Instant::now() + QUEUE_DEADLINE;
        let mut processing_since = since;
        loop {
            let response = self
                .http
                .get(self.url(&format!("/v1/documents/{doc}")))
                .bearer_auth(token)
                .timeout(CLIENT_TIMEOUT)
                .send()
                .await;
            if let Ok(r) = response
                && let Ok(v) = r.json::<Value>().await
            {
                match v["status"].as_str() {
                    Some("completed" | "failed") => return Some(v),
                    Some("pending") => processing_since = Instant::now(),
                    _ => {}
                }
            }
            if processing_since.elapsed() >= DOCUMENT_DEADLINE || Instant::now() >= queue_deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long the server took over a document: from its last claim by a worker (its time waiting
/// in the queue left out) to its last change.
fn processing_seconds(v: &Value) -> Option<f64> {
    let at = |t: &Value| t.as_str().and_then(|t| t.parse::<lore_core::model::Timestamp>().ok());
    let claimed = v["processing_log"]
        .as_array()
        .and_then(|log| log.iter().rev().find(|e| e["stage"] == "claim"))
        .and_then(|e| at(&e["at"]))
        .or_else(|| at(&v["created_at"]))?;
    Some((at(&v["updated_at"])? - claimed).num_milliseconds() as f64 / 1000.0)
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(240).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('\n', " ")
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"].as_str().map(str::to_string).with_context(|| format!("no id in {}", shorten(&v.to_string())))
}

// ------------------------------------------------------------------------------------ listeners

/// Everything that reached a listener: one entry per request or connection.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<String>>>);

impl Records {
    fn push(&self, entry: String) {
        self.0.lock().expect("records").push(entry);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("records").clone()
    }
}

/// The recorder on 127.0.0.2, an address the policy refuses: every TCP connection is recorded
/// with whatever it sent (HTTP, TLS, anything), then answered `200 ok`.
async fn recorder() -> anyhow::Result<(u16, Records)> {
    let socket = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .context("bind 127.0.0.2 (Linux routes 127/8 to loopback)")?;
    let port = socket.local_addr()?.port();
    let records = Records::default();
    let seen = records.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, peer)) = socket.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                seen.push(format!("connection from {peer}: {}", String::from_utf8_lossy(&buf[..n])));
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    Ok((port, records))
}

/// An OpenAI-compatible provider on 127.0.0.1 (allowed: the operator's own model server) that
/// answers chats and embeddings at once, redirects `/redirect/...` to the recorder, serves a
/// page for anything else, and records every request with its headers.
async fn provider(recorder_port: u16) -> anyhow::Result<(u16, Records)> {
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let records = Records::default();
    let seen = records.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let text = String::from_utf8_lossy(&body[..body.len().min(1 << 20)]).to_string();
            seen.push(format!("{method} {uri}\n{headers:?}\n{text}"));
            let path = uri.path();
            if let Some(rest) = path.strip_prefix("/redirect") {
                let to = format!("http://127.0.0.2:{recorder_port}{rest}");
                return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response();
            }
            if path.ends_with("/chat/completions") {
                let answer = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"OK\"},\"finish_reason\":null}]}\n\n\
                              data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                              data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
                return ([(header::CONTENT_TYPE, "text/event-stream")], answer).into_response();
            }
            if path.ends_with("/embeddings") {
                let request: Value = serde_json::from_str(&text).unwrap_or_default();
                let dims = request["dimensions"].as_u64().unwrap_or(8).clamp(1, 4096) as usize;
                let inputs: Vec<String> = match &request["input"] {
                    Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or_default().to_string()).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                };
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let mut v = vec![0.1f32; dims];
                        for (j, c) in t.chars().enumerate() {
                            v[(c as usize + j) % dims] += 1.0;
                        }
                        json!({"index": i, "embedding": v})
                    })
                    .collect();
                return axum::Json(json!({"data": data, "usage": {"prompt_tokens": 1, "total_tokens": 1}})).into_response();
            }
            ([(header::CONTENT_TYPE, "text/html")], "<html><head><title>provider</title></head><body><p>A page of the provider.</p></body></html>")
                .into_response()
        }
    });
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    tokio::spawn(async move { axum::serve(socket, app).await });
    Ok((port, records))
}

// ------------------------------------------------------------------------------------ memory

fn vm_rss_kib(pid: u32) -> Option<u64> {
    crate::proc_memory_kib(pid, "VmRSS")
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The direct children of a process (the parse workers), from every thread's `children` list.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Default)]
struct Memory {
    /// Peak of the server process alone, sampled (KiB).
    server: u64,
    /// Peak of the server and its parse workers together, sampled (KiB).
    with_children: u64,
    /// Peak of any one child (KiB).
    child: u64,
    samples: u64,
}

/// Samples the server's memory (and its children's) every second until `stop`.
fn watch_memory(pid: u32, stop: Arc<AtomicBool>) -> (Arc<Mutex<Memory>>, std::thread::JoinHandle<()>) {
    let memory = Arc::new(Mutex::new(Memory::default()));
    let m = memory.clone();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(server) = vm_rss_kib(pid) {
                let children: Vec<u64> = children_of(pid).into_iter().filter_map(vm_rss_kib).collect();
                let mut m = m.lock().expect("memory");
                m.server = m.server.max(server);
                m.with_children = m.with_children.max(server + children.iter().sum::<u64>());
                m.child = m.child.max(children.iter().copied().max().unwrap_or(0));
                m.samples += 1;
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    });
    (memory, handle)
}

// ------------------------------------------------------------------------------------ files

/// One zip entry, its data already compressed (`method` 8) or stored (0).
#[derive(Clone)]
struct ZipEntry {
    name: String,
    data: Arc<Vec<u8>>,
    method: u16,
    crc: u32,
    size: u64,
}

impl ZipEntry {
    fn stored(name: &str, bytes: &[u8]) -> Self {
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        ZipEntry {
            name: name.into(),
            data: Arc::new(bytes.to_vec()),
            method: 0,
            crc: crc.sum(),
            size: bytes.len() as u64,
        }
    }

    /// A deflated entry of `parts`, each repeated the given number of times.
    fn deflated(name: &str, parts: &[(&[u8], usize)]) -> Self {
        let mut crc = flate2::Crc::new();
        let mut size = 0u64;
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        for (bytes, times) in parts {
            for _ in 0..*times {
                crc.update(bytes);
                encoder.write_all(bytes).expect("deflate");
                size += bytes.len() as u64;
            }
        }
        let data = encoder.finish().expect("deflate");
        ZipEntry { name: name.into(), data: Arc::new(data), method: 8, crc: crc.sum(), size }
    }

    fn text(name: &str, text: &str) -> Self {
        Self::deflated(name, &[(text.as_bytes(), 1)])
    }
}

/// A zip archive of the entries; `lie` writes a small uncompressed size into the headers in
/// place of each large entry's real one.
fn zip_of(entries: &[ZipEntry], lie: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, n: u16| v.extend_from_slice(&n.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, n: u32| v.extend_from_slice(&n.to_le_bytes());
    for e in entries {
        let offset = out.len() as u32;
        let size = if lie && e.size > 1 << 20 { 4096 } else { e.size as u32 };
        let header = |v: &mut Vec<u8>, central: bool| {
            u32le(v, if central { 0x0201_4b50 } else { 0x0403_4b50 });
            if central {
                u16le(v, 20);
            }
            u16le(v, 20);
            u16le(v, 0);
            u16le(v, e.method);
            u16le(v, 0);
            u16le(v, 0x21);
            u32le(v, e.crc);
            u32le(v, e.data.len() as u32);
            u32le(v, size);
            u16le(v, e.name.len() as u16);
            u16le(v, 0);
            if central {
                u16le(v, 0);
                u16le(v, 0);
                u16le(v, 0);
                u32le(v, 0);
                u32le(v, offset);
            }
            v.extend_from_slice(e.name.as_bytes());
        };
        header(&mut out, false);
        out.extend_from_slice(&e.data);
        header(&mut central, true);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, central.len() as u32);
    u32le(&mut out, central_offset);
    u16le(&mut out, 0);
    out
}

const DOCX_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const DOCX_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
const XLSX_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
const XLSX_ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const XLSX_WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const XLSX_WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

/// The big parts of the bombs, compressed once (the slow part) and reused every round.
struct Bombs {
    docx_body: ZipEntry,
    epub_chapter: ZipEntry,
    pdf_stream: Arc<Vec<u8>>,
    xlsx_strings: ZipEntry,
    /// ~48 M characters of text, base64 (64 MB): past the chunk budget once decoded.
    eml_body: Arc<String>,
}

impl Bombs {
    fn build() -> Self {
        let mib = vec![b'0'; 1 << 20];
        let reps = BOMB_BYTES >> 20;
        let docx_body = ZipEntry::deflated(
            "word/document.xml",
            &[
                (br#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>"#, 1),
                (&mib, reps),
                (b"</w:t></w:r></w:p></w:body></w:document>", 1),
            ],
        );
        let epub_chapter = ZipEntry::deflated(
            "OEBPS/one.xhtml",
            &[
                (b"<html><body><h1>\xe7\xac\xac\xe4\xb8\x80\xe5\x9b\x9e</h1><p>", 1),
                (&mib, reps),
                (b"</p></body></html>", 1),
            ],
        );
        let xlsx_strings = ZipEntry::deflated(
            "xl/sharedStrings.xml",
            &[(br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>"#, 1), (&mib, reps), (b"</t></si></sst>", 1)],
        );
        let pdf_stream = {
            let spaces = vec![b' '; 1 << 20];
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(b"BT /F1 12 Tf 72 720 Td (Hostile stream) Tj ET\n").expect("zlib");
            for _ in 0..reps {
                z.write_all(&spaces).expect("zlib");
            }
            Arc::new(z.finish().expect("zlib"))
        };
        let eml_body = {
            use base64::Engine as _;
            let sentence = b"The quick brown fox jumps over the lazy dog again and again. ";
            let text: Vec<u8> = sentence.iter().copied().cycle().take(48_000_000).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
            let lines: Vec<&str> =
                encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
            Arc::new(lines.join("\r\n"))
        };
        Bombs { docx_body, epub_chapter, pdf_stream, xlsx_strings, eml_body }
    }

    /// The hostile file of `kind` (name and bytes), made unique by `tag`.
    fn file(&self, kind: &str, tag: &str, rng: &mut Rng) -> (String, Vec<u8>) {
        let lie = rng.below(2) == 0;
        let marker = ZipEntry::text("docProps/custom.xml", &format!("<x>{tag}</x>"));
        match kind {
            "sparse-xlsx" => {
                let sheet = format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>起点 {tag}</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#
                );
                let entries = [
                    ZipEntry::text("[Content_Types].xml", XLSX_TYPES),
                    ZipEntry::text("_rels/.rels", XLSX_ROOT_RELS),
                    ZipEntry::text("xl/workbook.xml", XLSX_WORKBOOK),
                    ZipEntry::text("xl/_rels/workbook.xml.rels", XLSX_WORKBOOK_RELS),
                    ZipEntry::text("xl/worksheets/sheet1.xml", &sheet),
                ];
                (format!("sparse-{tag}.xlsx"), zip_of(&entries, false))
            }
            "xlsx-strings-bomb" => {
                let sheet = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#;
                let entries = [
                    ZipEntry::text("[Content_Types].xml", XLSX_TYPES),
                    ZipEntry::text("_rels/.rels", XLSX_ROOT_RELS),
                    ZipEntry::text("xl/workbook.xml", XLSX_WORKBOOK),
                    ZipEntry::text("xl/_rels/workbook.xml.rels", XLSX_WORKBOOK_RELS),
                    ZipEntry::text("xl/worksheets/sheet1.xml", sheet),
                    self.xlsx_strings.clone(),
                    marker,
                ];
                (format!("strings-{tag}.xlsx"), zip_of(&entries, lie))
            }
            "docx-bomb" => {
                let entries = [
                    ZipEntry::text("[Content_Types].xml", DOCX_TYPES),
                    ZipEntry::text("_rels/.rels", DOCX_RELS),
                    self.docx_body.clone(),
                    marker,
                ];
                (format!("bomb-{tag}.docx"), zip_of(&entries, lie))
            }
            "epub-bomb" => {
                let container =
                    r#"<container><rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>"#;
                let opf = r#"<package xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>炸弹</dc:title></metadata><manifest><item id="c1" href="one.xhtml"/></manifest><spine><itemref idref="c1"/></spine></package>"#;
                let entries = [
                    ZipEntry::stored("mimetype", b"application/epub+zip"),
                    ZipEntry::text("META-INF/container.xml", container),
                    ZipEntry::text("OEBPS/book.opf", opf),
                    self.epub_chapter.clone(),
                    marker,
                ];
                (format!("bomb-{tag}.epub"), zip_of(&entries, lie))
            }
            "pdf-flate-bomb" => (format!("bomb-{tag}.pdf"), pdf_with_stream(&self.pdf_stream, tag)),
            "eml-base64-bomb" => {
                let mut eml = format!(
                    "From: mallory@example.com\r\nTo: victim@example.com\r\nSubject: {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\
                     MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                );
                eml.push_str(&self.eml_body);
                eml.push_str("\r\n");
                (format!("bomb-{tag}.eml"), eml.into_bytes())
            }
            "eml-nested" => {
                let depth = 20_000;
                let mut eml = format!(
                    "From: m@example.com\r\nSubject: nested {tag}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n"
                );
                for i in 0..depth {
                    eml.push_str(&format!("--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n", i + 1));
                }
                eml.push_str(&format!("--b{depth}\r\nContent-Type: text/plain\r\n\r\n深处 deep\r\n"));
                (format!("nested-{tag}.eml"), eml.into_bytes())
            }
            "json-nested" => {
                let mut s = "[".repeat(1_000_000);
                s.push_str(&format!("\"{tag}\""));
                (format!("nested-{tag}.json"), s.into_bytes())
            }
            "html-nested" => {
                let mut s = format!("<html><head><title>{tag}</title></head><body>");
                s.push_str(&"<div><span>".repeat(30_000));
                s.push_str("深 deep");
                (format!("nested-{tag}.html"), s.into_bytes())
            }
            "markdown-nested" => {
                // Deep nesting of every kind Markdown has, with little text (so that what is
                // measured is the parser, not the embedding of a long text).
                let mut s = format!("# {tag}\n\n");
                s.push_str(&"> ".repeat(200_000));
                s.push_str("深 deep\n\n");
                s.push_str(&"*".repeat(20_000));
                s.push('a');
                s.push_str(&"*".repeat(20_000));
                s.push_str("\n\n");
                s.push_str(&"[".repeat(2_000));
                s.push('x');
                s.push_str(&"](".repeat(1_000));
                s.push_str("\n\n");
                for i in 0..500 {
                    s.push_str(&"  ".repeat(i));
                    s.push_str("- a\n");
                }
                (format!("nested-{tag}.md"), s.into_bytes())
            }
            "truncated-docx" => {
                let whole = lore_ingest::samples::docx();
                let cut = 20 + rng.below(whole.len() - 20);
                let mut bytes = whole[..cut].to_vec();
                bytes.extend_from_slice(tag.as_bytes());
                (format!("truncated-{tag}.docx"), bytes)
            }
            _ => {
                // Random bytes under a name that promises a format.
                let ext = ["pdf", "docx", "xlsx", "epub", "pptx", "eml", "html", "csv"][rng.below(8)];
                let mut bytes: Vec<u8> = (0..4096 + rng.below(60_000)).map(|_| rng.next_u64() as u8).collect();
                bytes.extend_from_slice(tag.as_bytes());
                (format!("noise-{tag}.{ext}"), bytes)
            }
        }
    }
}

const FILE_KINDS: &[&str] = &[
    "sparse-xlsx",
    "xlsx-strings-bomb",
    "docx-bomb",
    "epub-bomb",
    "pdf-flate-bomb",
    "eml-base64-bomb",
    "eml-nested",
    "json-nested",
    "html-nested",
    "markdown-nested",
    "truncated-docx",
    "noise",
];

/// A one-page PDF whose content stream is `stream` (zlib, FlateDecode).
fn pdf_with_stream(stream: &[u8], tag: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        format!("<< /Type /Catalog /Pages 2 0 R /Lang ({tag}) >>").into_bytes(),
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>"
            .to_vec(),
        {
            let mut o = format!("<< /Length {} /Filter /FlateDecode >>\nstream\n", stream.len()).into_bytes();
            o.extend_from_slice(stream);
            o.extend_from_slice(b"\nendstream");
            o
        },
    ];
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).into_bytes(),
    );
    out
}

// ------------------------------------------------------------------------------------ chunking

/// A value at the edge for a size parameter, relative to `size`.
fn edge(rng: &mut Rng, size: u64) -> Value {
    match rng.below(16) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(size.saturating_sub(1)),
        3 => json!(size),
        4 => json!(size + 1),
        5 => json!(100_000),
        6 => json!(100_001),
        7 => json!(u64::MAX),
        8 => json!(-1),
        9 => json!(i64::MIN),
        10 => json!(1e308),
        11 => json!(0.5),
        12 => json!(size.to_string()),
        13 => Value::Null,
        14 => json!(size / 2),
        _ => json!(rng.below(200_000)),
    }
}

fn random_size(rng: &mut Rng) -> u64 {
    [1, 2, 3, 10, 100, 800, 4096, 50_000, 99_999, 100_000][rng.below(10)]
}

/// A valid chunking configuration at the edges of what validation allows (half of those
/// generated), or one at the edges of validation itself.
fn chunking_config(rng: &mut Rng) -> Value {
    if rng.below(2) == 0 { valid_edge_config(rng) } else { edge_config(rng) }
}

fn valid_edge_config(rng: &mut Rng) -> Value {
    let s = [1u64, 2, 5, 10, 100, 800, 5_000, 100_000][rng.below(8)];
    let pick = |rng: &mut Rng, options: &[u64]| options[rng.below(options.len())];
    let (strategy, config) = match rng.below(6) {
        0 => ("fixed", json!({"chunk_size": s, "chunk_overlap": pick(rng, &[0, s / 2, s - s.div_ceil(10), s - 1])})),
        1 => (
            "paragraph",
            json!({"max_chunk_size": s, "min_chunk_size": pick(rng, &[0, s]), "max_paragraphs_per_chunk": pick(rng, &[1, 1000])}),
        ),
        2 => ("sliding_window", json!({"window_size": s, "step": pick(rng, &[1, s.div_ceil(10), s / 2 + 1, s])})),
        3 => (
            "custom",
            [
                json!({"max_chunk_size": s, "separators": ["。", ".", "\n"]}),
                json!({"max_chunk_size": s, "regex": "[。.!?]"}),
                json!({"max_chunk_size": s, "split_on_headings": true}),
            ][rng.below(3)]
            .clone(),
        ),
        4 => {
            let parent = pick(rng, &[s, 100_000]);
            let child = pick(rng, &[1, s.div_ceil(2), s]).min(parent);
            (
                "hierarchical",
                json!({"parent_size": parent, "child_size": child, "child_overlap": pick(rng, &[0, child / 2, child - child.div_ceil(10)])}),
            )
        }
        _ => (
            "semantic",
            json!({"max_chunk_size": s, "min_chunk_size": pick(rng, &[0, s / 2, s]), "breakpoint_percentile": pick(rng, &[1, 50, 99])}),
        ),
    };
    let mut config = config;
    if rng.below(4) == 0 {
        config["size_unit"] = json!("tokens");
    }
    json!({"strategy_type": strategy, "config": config})
}

/// A configuration at the edges of validation: zero, one, size-1, size, the maximum, huge,
/// negative, fractional, strings, unknown strategies and keys.
fn edge_config(rng: &mut Rng) -> Value {
    const STRATEGIES: &[&str] =
        &["fixed", "paragraph", "sliding_window", "custom", "hierarchical", "semantic", "magic", "", "FIXED"];
    let strategy = STRATEGIES[rng.below(STRATEGIES.len())];
    let size = random_size(rng);
    let size_value = if rng.below(4) == 0 { edge(rng, size) } else { json!(size) };
    let mut config = serde_json::Map::new();
    match strategy {
        "fixed" => {
            config.insert("chunk_size".into(), size_value);
            config.insert("chunk_overlap".into(), edge(rng, size));
        }
        "paragraph" => {
            config.insert("max_chunk_size".into(), size_value);
            config.insert("min_chunk_size".into(), edge(rng, size));
            if rng.below(2) == 0 {
                config.insert("max_paragraphs_per_chunk".into(), edge(rng, 3));
            }
            if rng.below(3) == 0 {
                config.insert(
                    "merge_short_paragraphs".into(),
                    [json!(false), json!("yes"), json!(1)][rng.below(3)].clone(),
                );
            }
        }
        "sliding_window" => {
            config.insert("window_size".into(), size_value);
            config.insert("step".into(), edge(rng, size));
        }
        "custom" => {
            config.insert("max_chunk_size".into(), size_value);
            match rng.below(4) {
                0 => {
                    let seps = [json!(["。", "\n"]), json!([""]), json!(vec!["a"; 1000]), json!("。"), json!([1, 2])];
                    config.insert("separators".into(), seps[rng.below(seps.len())].clone());
                }
                1 => {
                    let regexes = [
                        "(a+)+$",
                        "(?:.*){1000}",
                        "[\\s\\S]*?",
                        "a{100000}",
                        "(",
                        ".",
                        "",
                        "\\b",
                        "(?s).*",
                        "(\\w{1,1000}){1,1000}",
                        "[\\p{Han}]",
                        "(x|x|x|x|x|x|x|x)*y",
                    ];
                    config.insert("regex".into(), json!(regexes[rng.below(regexes.len())]));
                }
                2 => {
                    config.insert("split_on_headings".into(), json!(true));
                }
                _ => {}
            }
        }
        "hierarchical" => {
            config.insert("parent_size".into(), size_value);
            config.insert("child_size".into(), edge(rng, size));
            config.insert("child_overlap".into(), edge(rng, size / 2));
        }
        "semantic" => {
            config.insert("max_chunk_size".into(), size_value);
            config.insert("min_chunk_size".into(), edge(rng, size));
            config.insert(
                "breakpoint_percentile".into(),
                [json!(0), json!(1), json!(50), json!(99), json!(100), json!(f64::MAX), json!("90")][rng.below(7)]
                    .clone(),
            );
        }
        _ => {
            config.insert("chunk_size".into(), size_value);
        }
    }
    match rng.below(8) {
        0 => {
            config.insert("size_unit".into(), json!("tokens"));
        }
        1 => {
            config.insert("size_unit".into(), json!("characters"));
        }
        2 => {
            config.insert("size_unit".into(), [json!("bytes"), json!(7), json!(null)][rng.below(3)].clone());
        }
        3 => {
            config.insert("unknown_knob".into(), json!(1));
        }
        _ => {}
    }
    match rng.below(20) {
        0 => json!({"strategy_type": strategy, "config": "not an object"}),
        1 => json!({"strategy": strategy, "config": config}),
        2 => json!([strategy]),
        _ => json!({"strategy_type": strategy, "config": config}),
    }
}

// ------------------------------------------------------------------------------------ the campaign

/// The victim's objects.
struct Victim {
    token: String,
    user_id: String,
    kbs: Vec<String>,
    docs: Vec<String>,
    agent: String,
    conversation: String,
    source: String,
    key_id: String,
}

/// The attacker's session, keys and objects.
struct Attacker {
    session: String,
    /// (name, key): each scope unbound and bound to `kb_bound`, and every scope bound.
    keys: Vec<(String, String)>,
    upload_bound: String,
    upload_unbound: String,
    search_unbound: String,
    all_bound: String,
    kb_bound: String,
    kb_other: String,
    other_doc: String,
    other_agent: String,
    other_conversation: String,
    other_source: String,
    own_key_id: String,
}

pub async fn hostile(args: HostileArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut rng = Rng(seed | 1);
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "embedded" };

    let t0 = Instant::now();
    let bombs = Arc::new(tokio::task::spawn_blocking(Bombs::build).await?);
    eprintln!("hostile files built in {:.1} s", t0.elapsed().as_secs_f64());
    if let Some(dir) = &args.write_files {
        std::fs::create_dir_all(dir)?;
        for kind in FILE_KINDS {
            let (name, bytes) = bombs.file(kind, "replay", &mut rng);
            std::fs::write(dir.join(&name), &bytes)?;
            println!("{kind}: {} ({} bytes)", dir.join(&name).display(), bytes.len());
        }
        return Ok(());
    }

    let (recorder_port, recorded) = recorder().await?;
    let (provider_port, provided) = provider(recorder_port).await?;

    let data_dir = std::env::temp_dir().join(format!("lore-hostile-{}", std::process::id()));
    let _cleanup = RemoveDir(data_dir.clone());
    let source_root = data_dir.join("sources");
    for who in ["a", "b"] {
        std::fs::create_dir_all(source_root.join(who))?;
    }
    std::fs::write(source_root.join("a/notes.md"), "# 说明\n\n共享文件夹里的文件。Files in a shared folder.\n")?;
    std::fs::write(source_root.join("b/notes.md"), "# B\n\nB 的文件。B's file.\n")?;
    let mut env = Vec::new();
    if let Some(url) = &args.database_url {
        env.push(("LORE_DATABASE_URL", lore_store::postgres::create_scratch_schema(url).await?));
    }
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(CLIENT_TIMEOUT).build()?;
    // `launch` gives every campaign server `--registration open` and `--allow-outbound
    // 127.0.0.1/32` (the operator's own model server); 127.0.0.2, the recorder's, stays refused.
    let flags: Vec<String> = vec!["--source-root".into(), source_root.display().to_string()];
    let server = BenchServer::launch(&data_dir.join("data"), &flags, &env, &http).await?;
    let port: u16 = server.base.rsplit(':').next().and_then(|p| p.parse().ok()).context("port")?;
    let stop = Arc::new(AtomicBool::new(false));
    let (memory, watcher) = watch_memory(server.pid(), stop.clone());

    // The victim's secrets.
    let canary = format!("lorecanary{:016x}", rng.next_u64());
    let canary_zh = format!("金丝雀{}", &canary[10..]);
    let victim_key = format!("sk-victim-{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    let ctx = Arc::new(Ctx {
        http: http.clone(),
        base: server.base.clone(),
        secrets: vec![canary[10..].to_string(), victim_key["sk-victim-".len()..].to_string()],
        tally: Mutex::new(Tally::default()),
        probe: Mutex::new(None),
    });
    let victim = setup_victim(&ctx, &server.token, &canary, &canary_zh, &victim_key, &source_root).await?;
    let attacker = setup_attacker(&ctx, &mut rng, &source_root, provider_port).await?;
    let redirect = format!("http://127.0.0.1:{provider_port}/redirect");
    let triggers = setup_triggers(&ctx, &attacker, &redirect, port).await?;
    let (en, zh) = (Vocabulary::english(20_000), Vocabulary::chinese(20_000));
    let preview_text = mixed_text(&en, &zh, &mut rng, 200_000);
    let (openapi_status, openapi) = ctx
        .call("GET /openapi.json", http.get(ctx.url("/openapi.json")), Expect::Success, false)
        .await
        .context("openapi")?;
    anyhow::ensure!(openapi_status == 200, "no /openapi.json");
    eprintln!("setup done in {:.1} s; rounds for {} s (seed {seed})", t0.elapsed().as_secs_f64(), args.seconds);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut rounds = 0usize;
    let mut phases = 0usize;
    while rounds == 0 || Instant::now() < deadline {
        rounds += 1;
        let mut rng = Rng((seed ^ (rounds as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        let first = rounds == 1;
        let phase_list: [usize; 5] = [1, 2, 3, 4, 5];
        for phase in phase_list {
            if !first && Instant::now() >= deadline {
                break;
            }
            phases += 1;
            let t = Instant::now();
            match phase {
                1 => chunking_round(&ctx, &attacker, &preview_text, &en, &zh, &mut rng, rounds).await,
                2 => files_round(&ctx, &victim, &attacker, &bombs, &en, &zh, &mut rng, rounds, first).await,
                3 => {
                    outbound_round(&ctx, &attacker, &triggers, recorder_port, provider_port, port, rounds, &mut rng)
                        .await
                }
                4 => matrix_round(&ctx, &victim, &attacker, &openapi, &mut rng, first).await,
                _ => fan_out_round(&ctx, &victim, &attacker).await,
            }
            eprintln!("round {rounds} phase {phase}: {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    let attack_secs = started.elapsed().as_secs_f64();
    judge_probe(&ctx, &attacker).await;
    // Last, since a server that loops on itself is no use for anything after.
    if let Some(self_agent) = &triggers.self_agent {
        self_loop(&ctx, self_agent, server.pid()).await;
    }

    // Deliveries still under way (webhook retries, syncs) have a few seconds to go wrong.
    settle_syncs(&ctx, &attacker.session, &triggers.sources).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The end: the server answers, the victim's data is intact (so the leak check could see it).
    match http.get(ctx.url("/healthz")).timeout(CLIENT_TIMEOUT).send().await {
        Ok(r) if r.status().is_success() => {}
        other => ctx.finding(format!("the server no longer answers /healthz: {other:?}")),
    }
    if let Some((_, v)) = ctx
        .call(
            "victim reads its knowledge base",
            ctx.get(&format!("/v1/knowledge-bases/{}", victim.kbs[0]), &victim.token),
            Expect::Success,
            false,
        )
        .await
        && !v.to_string().contains(&canary)
    {
        ctx.finding("the victim's knowledge base lost its canary".into());
    }
    if let Some((_, v)) = ctx
        .call(
            "victim reads its documents",
            ctx.get(&format!("/v1/knowledge-bases/{}/documents", victim.kbs[0]), &victim.token),
            Expect::Success,
            false,
        )
        .await
        && v["data"].as_array().map(Vec::len).unwrap_or(0) != victim.docs.len()
    {
        ctx.finding(format!("the victim's documents changed: {}", shorten(&v.to_string())));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let hwm = vm_hwm_kib(server.pid()).unwrap_or(0);
    let (server_peak, with_children, child_peak, samples) = {
        let m = memory.lock().expect("memory");
        (m.server.max(hwm), m.with_children, m.child, m.samples)
    };
    if server_peak > args.max_rss_mb * 1024 {
        ctx.finding(format!(
            "the server's resident memory reached {} MiB (limit {} MiB)",
            server_peak / 1024,
            args.max_rss_mb
        ));
    }
    let reached = recorded.all();
    for r in reached.iter().take(5) {
        ctx.finding(format!("the recorder on 127.0.0.2 was reached: {}", shorten(r)));
    }
    for r in provided.all() {
        for secret in &ctx.secrets {
            if r.contains(secret.as_str()) {
                ctx.finding(format!("the victim's secret reached the provider on 127.0.0.1: {}", shorten(&r)));
            }
        }
    }
    drop(server);

    let tally = ctx.tally.lock().expect("tally");
    let refusals: Vec<String> = tally.refusals.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let files: Vec<String> = tally.files.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let loopback: Vec<String> = tally.allowed_loopback.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let findings: usize = tally.findings.len();
    eprintln!("hostile files: {}", files.join(", "));
    eprintln!("accepted because --allow-outbound 127.0.0.1/32: {}", loopback.join(", "));
    eprintln!("slowest answer: {:.0} ms ({})", tally.slowest_ms, tally.slowest);
    eprintln!("slowest document: {:.1} s ({})", tally.slowest_document.0, tally.slowest_document.1);
    println!(
        "hostile {:.0} s ({build} build, {backend}, seed {seed}): {rounds} rounds, {phases} phases, {} requests, 5xx {}, \
         gateway 502/504 {}; refusals: {}; files {}; recorder {} requests, provider {} requests; slowest answer {:.1} s, slowest document {:.0} s, victim's upload behind the attacker's {:.0} s; amplification probe: {}; \
         peak RSS server {:.0} MiB (limit {}), with parse workers {:.0} MiB, largest worker {:.0} MiB ({samples} samples); findings: {}",
        attack_secs,
        tally.requests,
        tally.server_errors,
        tally.gateway,
        refusals.join(", "),
        tally.files.values().sum::<u64>(),
        reached.len(),
        provided.all().len(),
        tally.slowest_ms / 1000.0,
        tally.slowest_document.0,
        tally.victim_wait,
        tally.amplification,
        server_peak as f64 / 1024.0,
        args.max_rss_mb,
        with_children as f64 / 1024.0,
        child_peak as f64 / 1024.0,
        if findings == 0 { "none".to_string() } else { findings.to_string() },
    );
    for (finding, n) in &tally.findings {
        println!("finding ({n}×): {finding}");
    }
    anyhow::ensure!(findings == 0, "{findings} finding(s)");
    Ok(())
}

/// Mixed Chinese and English paragraphs of about `bytes` bytes.
fn mixed_text(en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::from("# 混合文本 Mixed text\n\n");
    let mut i = 0;
    while out.len() < bytes {
        let chinese = i % 2 == 0;
        let vocab = if chinese { zh } else { en };
        for w in 0..30 + rng.below(40) {
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
        if i % 7 == 6 {
            out.push_str(&format!("## {} {}\n\n", zh.sample(rng), en.sample(rng)));
        }
        i += 1;
    }
    out
}

async fn setup_victim(
    ctx: &Ctx,
    token: &str,
    canary: &str,
    canary_zh: &str,
    key: &str,
    source_root: &std::path::Path,
) -> anyhow::Result<Victim> {
    let me = ctx.must("victim /v1/me", ctx.get("/v1/me", token)).await?;
    let user_id = me["id"].as_str().or(me["user"]["id"].as_str()).unwrap_or_default().to_string();
    // A provider key for OpenAI's own address.
    ctx.must("victim saves its OpenAI key", ctx.put("/v1/config", token, json!({"openai_api_key": key}))).await?;
    let mut kbs = Vec::new();
    for name in [format!("{canary_zh} 知识库"), format!("{canary} knowledge")] {
        let kb = ctx
            .must(
                "victim creates a knowledge base",
                ctx.post(
                    "/v1/knowledge-bases",
                    token,
                    json!({"name": name, "description": format!("{canary} {canary_zh}")}),
                ),
            )
            .await?;
        kbs.push(id_of(&kb)?);
    }
    let texts = [
        (
            format!("{canary_zh}.md"),
            format!(
                "# {canary_zh} 机密\n\n这是受害者的机密文件，含有{canary_zh}。退款在七天内完成。\n\n## 细节\n\n{canary} 只属于受害者。"
            ),
        ),
        (
            format!("{canary}.txt"),
            format!(
                "{canary} confidential\n\nThe victim's secret document mentions {canary} and {canary_zh}. Refunds take seven days."
            ),
        ),
    ];
    let mut docs = Vec::new();
    for (name, text) in texts {
        let v = ctx.must("victim uploads", ctx.upload(&kbs[0], token, &name, text.into_bytes(), None)).await?;
        docs.push(id_of(&v)?);
    }
    for doc in &docs {
        match ctx.settle(token, doc).await {
            Some(v) if v["status"] == "completed" => {}
            other => anyhow::bail!("setup: the victim's document did not complete: {other:?}"),
        }
    }
    let agent = ctx
        .must(
            "victim creates an agent",
            ctx.post(
                "/v1/agents",
                token,
                json!({"name": format!("{canary} agent"), "description": canary_zh, "knowledge_base_ids": [kbs[0]]}),
            ),
        )
        .await?;
    let agent = id_of(&agent)?;
    let answer = ctx
        .must(
            "victim chats",
            ctx.post(
                &format!("/v1/agents/{agent}/chat"),
                token,
                json!({"message": format!("{canary_zh} 退款多久？ {canary}")}),
            ),
        )
        .await?;
    let conversation = answer["conversation_id"].as_str().context("no conversation")?.to_string();
    let source = ctx
        .must(
            "victim adds a data source",
            ctx.post(
                "/v1/data-sources",
                token,
                json!({"name": format!("{canary} source"), "knowledge_base_id": kbs[1], "source_type": "local_folder",
                       "config": {"path": source_root.join("a")}}),
            ),
        )
        .await?;
    let source = id_of(&source)?;
    let key = ctx
        .must(
            "victim makes a key",
            ctx.post("/v1/api-keys", token, json!({"name": format!("{canary} key"), "scopes": ["search", "read"]})),
        )
        .await?;
    let key_id = key["api_key"]["id"].as_str().context("key id")?.to_string();
    Ok(Victim { token: token.to_string(), user_id, kbs, docs, agent, conversation, source, key_id })
}

async fn setup_attacker(
    ctx: &Ctx,
    rng: &mut Rng,
    source_root: &std::path::Path,
    provider_port: u16,
) -> anyhow::Result<Attacker> {
    let name = format!("mallory{:08x}", rng.next_u64() as u32);
    let auth = ctx
        .must(
            "attacker registers",
            ctx.http.post(ctx.url("/v1/auth/register")).json(
                &json!({"username": name, "email": format!("{name}@example.com"), "password": "mallory-password"}),
            ),
        )
        .await?;
    let session = auth["token"].as_str().context("no token")?.to_string();
    let kb_bound = id_of(
        &ctx.must("attacker kb", ctx.post("/v1/knowledge-bases", &session, json!({"name": "mallory bound"}))).await?,
    )?;
    let kb_other = id_of(
        &ctx.must("attacker kb", ctx.post("/v1/knowledge-bases", &session, json!({"name": "mallory other"}))).await?,
    )?;
    let mut keys = Vec::new();
    for scope in ["search", "upload", "read", "delete"] {
        keys.push((format!("{scope} key"), api_key(ctx, &session, scope, json!([scope]), None).await?.0));
        keys.push((
            format!("{scope} key bound"),
            api_key(ctx, &session, scope, json!([scope]), Some(&kb_bound)).await?.0,
        ));
    }
    let all = json!(["search", "upload", "read", "delete"]);
    let (all_bound, _) = api_key(ctx, &session, "all bound", all.clone(), Some(&kb_bound)).await?;
    let (all_unbound, own_key_id) = api_key(ctx, &session, "all", all, None).await?;
    keys.push(("all-scope key bound".into(), all_bound.clone()));
    keys.push(("all-scope key".into(), all_unbound));
    let find = |label: &str| keys.iter().find(|(l, _)| l == label).map(|(_, k)| k.clone()).unwrap_or_default();
    let (upload_bound, upload_unbound, search_unbound) =
        (find("upload key bound"), find("upload key"), find("search key"));
    // Objects in the other knowledge base.
    let doc = ctx
        .must(
            "attacker uploads",
            ctx.upload(&kb_other, &session, "own.md", "# 自己的 own\n\n攻击者自己的文件。".as_bytes().to_vec(), None),
        )
        .await?;
    let other_doc = id_of(&doc)?;
    let agent = ctx
        .must(
            "attacker agent",
            ctx.post("/v1/agents", &session, json!({"name": "mallory other", "knowledge_base_ids": [kb_other]})),
        )
        .await?;
    let other_agent = id_of(&agent)?;
    ctx.settle(&session, &other_doc).await;
    let answer = ctx
        .must(
            "attacker chats",
            ctx.post(&format!("/v1/agents/{other_agent}/chat"), &session, json!({"message": "自己的？"})),
        )
        .await?;
    let other_conversation = answer["conversation_id"].as_str().context("conversation")?.to_string();
    let source = ctx
        .must(
            "attacker source",
            ctx.post("/v1/data-sources", &session, json!({"name": "mallory folder", "knowledge_base_id": kb_other, "source_type": "local_folder", "config": {"path": source_root.join("b")}})),
        )
        .await?;
    let other_source = id_of(&source)?;
    // The attacker's webhook: an allowed address that redirects to the recorder.
    ctx.must(
        "attacker webhook",
        ctx.put("/v1/config", &session, json!({"webhook_url": format!("http://127.0.0.1:{provider_port}/redirect/hook"), "error_notifications": true, "sync_notifications": true})),
    )
    .await?;
    Ok(Attacker {
        session,
        keys,
        upload_bound,
        upload_unbound,
        search_unbound,
        all_bound,
        kb_bound,
        kb_other,
        other_doc,
        other_agent,
        other_conversation,
        other_source,
        own_key_id,
    })
}

/// A new key of the session's user: the key and its id.
async fn api_key(
    ctx: &Ctx,
    session: &str,
    name: &str,
    scopes: Value,
    kb: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let v = ctx
        .must(
            "attacker key",
            ctx.post("/v1/api-keys", session, json!({"name": name, "scopes": scopes, "knowledge_base_id": kb})),
        )
        .await?;
    Ok((v["key"].as_str().context("key")?.to_string(), v["api_key"]["id"].as_str().unwrap_or_default().to_string()))
}

/// The agent that calls Lore itself, its name, and its owner's key and session.
struct SelfLoop {
    agent: String,
    name: String,
    key: String,
    session: String,
}

/// What the attacker leaves standing to make the server call out: objects pointing at allowed
/// addresses that redirect to the recorder, and an agent that calls Lore itself.
struct Triggers {
    redirect_agent: Option<String>,
    self_agent: Option<SelfLoop>,
    redirect_kb: Option<String>,
    sources: Vec<String>,
}

async fn setup_triggers(ctx: &Ctx, b: &Attacker, redirect: &str, lore_port: u16) -> anyhow::Result<Triggers> {
    let s = &b.session;
    let created = |v: Option<(u16, Value)>| {
        v.filter(|(st, _)| (200..300).contains(st)).and_then(|(_, v)| v["id"].as_str().map(str::to_string))
    };
    let redirect_agent = created(
        ctx.call(
            "attacker agent via a redirect",
            ctx.post("/v1/agents", s, json!({"name": "via redirect", "model_provider": "openai", "model_name": "m", "knowledge_base_ids": [b.kb_bound],
                                             "model_parameters": {"base_url": format!("{redirect}/v1"), "api_key": "sk-mallory", "max_attempts": 1, "timeout_seconds": 10}})),
            Expect::Answer,
            true,
        )
        .await,
    );
    // An agent whose model is Lore's own OpenAI-compatible endpoint, naming itself as the model,
    // with a key of its owner: the operator allowed 127.0.0.1 for its model server. Its owner is a
    // second account of the attacker's with no knowledge base, so that no retrieval slows a hop.
    let loop_user = format!("mallory-loop{lore_port}");
    let loop_session = ctx
        .must(
            "attacker registers a second account",
            ctx.http.post(ctx.url("/v1/auth/register")).json(
                &json!({"username": loop_user, "email": format!("{loop_user}@example.com"), "password": "mallory-password"}),
            ),
        )
        .await?["token"]
        .as_str()
        .context("no token")?
        .to_string();
    let (loop_key, _) = api_key(ctx, &loop_session, "loop", json!(["search"]), None).await?;
    let self_agent = created(
        ctx.call(
            "attacker agent calling Lore itself",
            ctx.post("/v1/agents", &loop_session, json!({"name": "ouroboros", "model_provider": "openai", "model_name": "ouroboros",
                                             "model_parameters": {"base_url": format!("http://127.0.0.1:{lore_port}/v1"), "api_key": loop_key, "max_attempts": 1}})),
            Expect::Answer,
            true,
        )
        .await,
    )
    .map(|id| SelfLoop { agent: id, name: "ouroboros".into(), key: loop_key.clone(), session: loop_session.clone() });
    let redirect_kb = created(
        ctx.call(
            "attacker knowledge base embedding via a redirect",
            ctx.post("/v1/knowledge-bases", s, json!({"name": "embed via redirect", "settings": {"embedding_config": {"provider": "openai", "model": "m", "dimensions": 8, "base_url": format!("{redirect}/v1")}}})),
            Expect::Answer,
            true,
        )
        .await,
    );
    let mut sources = Vec::new();
    for (kind, config) in [
        ("web", json!({"url": format!("{redirect}/page.html"), "max_pages": 3})),
        ("git", json!({"url": format!("{redirect}/repo.git")})),
        ("s3", json!({"bucket": "bucket", "endpoint": redirect})),
    ] {
        if let Some(id) = created(
            ctx.call(
                &format!("attacker {kind} source via a redirect"),
                ctx.post("/v1/data-sources", s, json!({"name": format!("{kind} via redirect"), "knowledge_base_id": b.kb_other, "source_type": kind, "config": config})),
                Expect::Answer,
                true,
            )
            .await,
        ) {
            sources.push(id);
        }
    }
    Ok(Triggers { redirect_agent, self_agent, redirect_kb, sources })
}

async fn chunking_round(
    ctx: &Ctx,
    b: &Attacker,
    text: &str,
    en: &Vocabulary,
    zh: &Vocabulary,
    rng: &mut Rng,
    round: usize,
) {
    let mut docs = Vec::new();
    for i in 0..6 {
        let config = chunking_config(rng);
        let shown = shorten(&config.to_string());
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.session };
        let body = if rng.below(3) == 0 {
            json!({"text": text, "chunking_config": config, "knowledge_base_id": b.kb_bound})
        } else {
            json!({"text": text, "chunking_config": config})
        };
        ctx.call(&format!("preview {shown}"), ctx.post("/v1/chunking/preview", token, body), Expect::Answer, true)
            .await;
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.session };
        ctx.call(
            &format!("PATCH settings {shown}"),
            ctx.patch(
                &format!("/v1/knowledge-bases/{}", b.kb_bound),
                token,
                json!({"settings": {"chunking_config": config}}),
            ),
            Expect::Answer,
            true,
        )
        .await;
        // A few KB, fewer where the sizes are tiny: the chunks (and their embeddings) a byte may
        // cost is the amplification probe's business, once a run, not every upload's.
        let smallest =
            config["config"].as_object().into_iter().flatten().filter_map(|(_, v)| v.as_u64()).filter(|n| *n > 0).min();
        let size = (smallest.unwrap_or(800).saturating_mul(100) as usize).clamp(600, 4_000 + rng.below(20_000));
        let small = mixed_text(en, zh, rng, size);
        if let Some((202, v)) = ctx
            .call(
                &format!("upload with chunking_config {shown}"),
                ctx.upload(
                    &b.kb_bound,
                    &b.upload_bound,
                    &format!("cfg-{round}-{i}.md"),
                    small.into_bytes(),
                    Some(config.to_string()),
                ),
                Expect::Answer,
                true,
            )
            .await
            && let Some(id) = v["id"].as_str()
        {
            docs.push((id.to_string(), shown));
        }
    }
    // The user's own defaults at the edges, then a preview that falls back on them.
    let defaults = json!({"default_chunk_size": edge(rng, 800), "default_chunk_overlap": edge(rng, 800)});
    let shown = shorten(&defaults.to_string());
    ctx.call(&format!("PUT defaults {shown}"), ctx.put("/v1/config", &b.session, defaults), Expect::Answer, true).await;
    ctx.call(
        &format!("preview with defaults {shown}"),
        ctx.post("/v1/chunking/preview", &b.session, json!({"text": text})),
        Expect::Answer,
        true,
    )
    .await;
    ctx.call(
        "PUT defaults back",
        ctx.put("/v1/config", &b.session, json!({"default_chunk_size": null, "default_chunk_overlap": null})),
        Expect::Success,
        true,
    )
    .await;
    ctx.call(
        "PATCH settings back",
        ctx.patch(
            &format!("/v1/knowledge-bases/{}", b.kb_bound),
            &b.session,
            json!({"settings": {"chunking_config": null}}),
        ),
        Expect::Answer,
        true,
    )
    .await;
    for (doc, shown) in docs {
        judge_document(ctx, &b.session, &doc, &format!("chunking {shown}"), "chunking-config upload").await;
    }
    if round == 1 {
        amplification_probe(ctx, b, en, zh, rng).await;
    }
}

/// The amplification probe's document, judged at the end of the run (the rounds go on meanwhile).
struct Probe {
    doc: String,
    what: String,
    chars: usize,
    since: Instant,
}

async fn judge_probe(ctx: &Ctx, b: &Attacker) {
    let Some(probe) = ctx.probe.lock().expect("probe").take() else { return };
    let done = judge_document_since(ctx, &b.session, &probe.doc, &probe.what, "amplification probe", probe.since).await;
    let chunks = done.as_ref().map(|d| d["chunk_count"].to_string()).unwrap_or_else(|| "?".into());
    let took = done
        .as_ref()
        .and_then(processing_seconds)
        .map(|s| format!("in {s:.0} s"))
        .unwrap_or_else(|| format!("not done in {} s", DOCUMENT_DEADLINE.as_secs()));
    ctx.tally.lock().expect("tally").amplification = format!("{} characters → {chunks} chunks {took}", probe.chars);
}

/// Once a run: the most chunks a small upload may cost within the budgets (a sliding window of
/// 10 characters moved by 1 repeats each character 10 times, the most allowed, and gives a chunk
/// per character, each embedded). It must be done within the document deadline.
async fn amplification_probe(ctx: &Ctx, b: &Attacker, en: &Vocabulary, zh: &Vocabulary, rng: &mut Rng) {
    let text = mixed_text(en, zh, rng, 16_000);
    let chars = text.chars().count();
    let config = json!({"strategy_type": "sliding_window", "config": {"window_size": 10, "step": 1}});
    let since = Instant::now();
    let what = format!("a {} KB upload chunked by {config}", text.len() / 1000);
    let Some((202, v)) = ctx
        .call(
            &what,
            ctx.upload(&b.kb_bound, &b.upload_bound, "amplification.md", text.into_bytes(), Some(config.to_string())),
            Expect::Answer,
            true,
        )
        .await
    else {
        ctx.tally.lock().expect("tally").amplification = format!("{what}: refused");
        return;
    };
    let Some(id) = v["id"].as_str() else { return };
    *ctx.probe.lock().expect("probe") = Some(Probe { doc: id.to_string(), what, chars, since });
}

/// A document must end completed, or failed with a code.
async fn judge_document(ctx: &Ctx, token: &str, doc: &str, what: &str, kind: &str) -> Option<Value> {
    judge_document_since(ctx, token, doc, what, kind, Instant::now()).await
}

async fn judge_document_since(
    ctx: &Ctx,
    token: &str,
    doc: &str,
    what: &str,
    kind: &str,
    since: Instant,
) -> Option<Value> {
    let outcome = ctx.settle_since(token, doc, since).await;
    let label = match &outcome {
        Some(v) if v["status"] == "completed" => "completed".to_string(),
        Some(v) if v["status"] == "failed" => match v["error_code"].as_str() {
            Some(code) if !code.is_empty() => format!("failed {code}"),
            _ => {
                ctx.finding(format!("{what}: failed without an error code: {}", shorten(&v.to_string())));
                "failed without a code".to_string()
            }
        },
        _ => {
            let now = ctx.http.get(ctx.url(&format!("/v1/documents/{doc}"))).bearer_auth(token).send().await;
            let view = match now {
                Ok(r) => r.json::<Value>().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            let last = view["processing_log"].as_array().and_then(|l| l.last()).cloned().unwrap_or_default();
            ctx.finding(format!(
                "{what}: not completed or failed within {} s of processing ({} s in the queue) (status {}, progress {}, last step: {} {})",
                DOCUMENT_DEADLINE.as_secs(),
                QUEUE_DEADLINE.as_secs(),
                view["status"],
                view["progress"],
                last["stage"],
                last["message"]
            ));
            "stuck".to_string()
        }
    };
    let took = outcome.as_ref().and_then(processing_seconds);
    if let Some(secs) = took {
        eprintln!("{kind}: {label} in {secs:.1} s ({what})");
    }
    let mut tally = ctx.tally.lock().expect("tally");
    *tally.files.entry(format!("{kind}: {label}")).or_default() += 1;
    if let Some(secs) = took
        && secs > tally.slowest_document.0
    {
        tally.slowest_document = (secs, format!("{kind} ({label})"));
    }
    drop(tally);
    outcome
}

/// The victim's small upload, made while the attacker's files are queued, must be done within
/// `DOCUMENT_DEADLINE` of its upload: its wait in the queue counts.
async fn victim_upload_behind(
    ctx: &Ctx,
    victim: &Victim,
    en: &Vocabulary,
    zh: &Vocabulary,
    rng: &mut Rng,
    round: usize,
) {
    let text = format!("# 受害者 victim {round}\n\n{}", mixed_text(en, zh, rng, 2_000));
    let since = Instant::now();
    let Some((202, v)) = ctx
        .call(
            "victim uploads behind the attacker's files",
            ctx.upload(&victim.kbs[1], &victim.token, &format!("behind-{round}.md"), text.into_bytes(), None),
            Expect::Success,
            false,
        )
        .await
    else {
        return;
    };
    let Some(id) = v["id"].as_str() else { return };
    let mut last = Value::Null;
    while since.elapsed() < DOCUMENT_DEADLINE {
        if let Some((_, v)) = ctx
            .call(
                "victim polls its upload",
                ctx.get(&format!("/v1/documents/{id}"), &victim.token),
                Expect::Success,
                false,
            )
            .await
        {
            if v["status"] == "completed" {
                let mut tally = ctx.tally.lock().expect("tally");
                tally.victim_wait = tally.victim_wait.max(since.elapsed().as_secs_f64());
                return;
            }
            if v["status"] == "failed" {
                ctx.finding(format!(
                    "the victim's upload behind the attacker's files failed: {}",
                    shorten(&v.to_string())
                ));
                return;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.finding(format!(
        "the victim's upload waited more than {} s behind the attacker's files (status {}, progress {})",
        DOCUMENT_DEADLINE.as_secs(),
        last["status"],
        last["progress"]
    ));
}

#[allow(clippy::too_many_arguments)]
async fn files_round(
    ctx: &Ctx,
    victim: &Victim,
    b: &Attacker,
    bombs: &Arc<Bombs>,
    en: &Vocabulary,
    zh: &Vocabulary,
    rng: &mut Rng,
    round: usize,
    first: bool,
) {
    let kinds: Vec<&str> = if first {
        FILE_KINDS.to_vec()
    } else {
        let mut picked: Vec<&str> = (0..3).map(|_| FILE_KINDS[rng.below(FILE_KINDS.len())]).collect();
        // The 64 MB email is the slow one to send: now and then.
        if !round.is_multiple_of(4) {
            picked.retain(|k| *k != "eml-base64-bomb");
        }
        picked
    };
    let mut uploaded = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let tag = format!("r{round}i{i}x{:08x}", rng.next_u64() as u32);
        let (name, bytes) = {
            let (bombs, kind, tag) = (bombs.clone(), kind.to_string(), tag.clone());
            let mut local = Rng(rng.next_u64() | 1);
            tokio::task::spawn_blocking(move || bombs.file(&kind, &tag, &mut local)).await.expect("build a file")
        };
        let size = bytes.len();
        let token = if i % 2 == 0 { &b.upload_bound } else { &b.upload_unbound };
        match ctx
            .call(
                &format!("upload {kind} ({size} bytes)"),
                ctx.upload(&b.kb_bound, token, &name, bytes, None),
                Expect::Answer,
                true,
            )
            .await
        {
            Some((202, v)) => {
                if let Some(id) = v["id"].as_str() {
                    uploaded.push((id.to_string(), kind.to_string()));
                }
            }
            Some((status, v)) => {
                let code = v["error"]["code"].as_str().unwrap_or("none").to_string();
                *ctx.tally
                    .lock()
                    .expect("tally")
                    .files
                    .entry(format!("{kind}: refused {status} {code}"))
                    .or_default() += 1;
            }
            None => {}
        }
    }
    // The victim uploads behind the attacker's files: owners take turns in the queue, so it is
    // done within the document deadline counted from its upload, whatever the attacker queued.
    victim_upload_behind(ctx, victim, en, zh, rng, round).await;
    for (doc, kind) in &uploaded {
        judge_document(ctx, &b.session, doc, &format!("hostile file {kind}"), kind).await;
    }
    // A normal upload right after completes.
    let text = format!("# 正常 normal {round}\n\n{}", mixed_text(en, zh, rng, 3_000));
    if let Some((202, v)) = ctx
        .call(
            "normal upload after the files",
            ctx.upload(&b.kb_bound, &b.upload_bound, &format!("normal-{round}.md"), text.into_bytes(), None),
            Expect::Success,
            true,
        )
        .await
        && let Some(id) = v["id"].as_str()
        && let Some(done) = judge_document(ctx, &b.session, id, "normal upload after the files", "normal").await
        && done["status"] != "completed"
    {
        ctx.finding(format!(
            "a normal upload after the hostile files did not complete: {}",
            shorten(&done.to_string())
        ));
    }
}

#[allow(clippy::too_many_arguments)]
async fn outbound_round(
    ctx: &Ctx,
    b: &Attacker,
    triggers: &Triggers,
    recorder_port: u16,
    provider_port: u16,
    lore_port: u16,
    round: usize,
    rng: &mut Rng,
) {
    let s = &b.session;
    let r = recorder_port;
    // Addresses the policy must refuse outright.
    let refused: Vec<String> = vec![
        format!("http://127.0.0.2:{r}/v1"),
        format!("http://2130706434:{r}/v1"),
        format!("http://0x7f000002:{r}/v1"),
        format!("http://127.2:{r}/v1"),
        format!("http://[::ffff:127.0.0.2]:{r}/v1"),
        "http://169.254.169.254/latest/meta-data/".into(),
        format!("http://[::1]:{lore_port}/"),
        format!("http://0.0.0.0:{lore_port}/"),
        format!("http://0.0.0.0:{r}/"),
        "http://10.0.0.1/v1".into(),
        "http://100.64.0.1/v1".into(),
        format!("gopher://127.0.0.2:{r}/_x"),
        "file:///etc/passwd".into(),
    ];
    // Allowed (127.0.0.1/32 is the operator's model server): Lore itself and a redirect.
    let allowed: Vec<(String, &str)> = vec![
        (format!("http://127.0.0.1:{lore_port}/v1"), "Lore's own port"),
        (format!("http://127.0.0.1:{provider_port}/redirect/v1"), "a redirect to the recorder"),
    ];
    let fields = ["openai_base_url", "anthropic_base_url", "cohere_base_url", "webhook_url"];
    // A random part each round (all of it in the first): the refusals are cheap, the point is coverage.
    let all_targets: Vec<(String, Option<&str>)> =
        refused.iter().map(|u| (u.clone(), None)).chain(allowed.iter().map(|(u, w)| (u.clone(), Some(*w)))).collect();
    let targets: Vec<&(String, Option<&str>)> =
        all_targets.iter().filter(|_| round == 1 || rng.below(2) == 0).collect();
    let mut n = 0;
    for (url, allowed_as) in targets {
        let expect = if allowed_as.is_some() { Expect::Answer } else { Expect::Only(&[400, 422]) };
        let note = |ctx: &Ctx, what: &str, status: u16| {
            if let Some(why) = allowed_as
                && (200..300).contains(&status)
            {
                *ctx.tally.lock().expect("tally").allowed_loopback.entry(format!("{what} → {why}")).or_default() += 1;
            }
        };
        for field in fields {
            if let Some((status, _)) = ctx
                .call(
                    &format!("PUT /v1/config {field}={url}"),
                    ctx.put("/v1/config", s, json!({ field: url })),
                    expect,
                    true,
                )
                .await
            {
                note(ctx, field, status);
            }
        }
        n += 1;
        let agent = json!({"name": format!("probe {round} {n}"), "model_provider": "openai", "model_name": "m", "model_parameters": {"base_url": url}});
        if let Some((status, v)) =
            ctx.call(&format!("POST /v1/agents base_url={url}"), ctx.post("/v1/agents", s, agent), expect, true).await
        {
            note(ctx, "agent base_url", status);
            if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                ctx.call(
                    "DELETE probe agent",
                    ctx.http.delete(ctx.url(&format!("/v1/agents/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
        let settings =
            json!({"embedding_config": {"provider": "openai", "model": "m", "dimensions": 8, "base_url": url}});
        if let Some((status, v)) = ctx
            .call(
                &format!("POST /v1/knowledge-bases embedding base_url={url}"),
                ctx.post("/v1/knowledge-bases", s, json!({"name": format!("probe {round} {n}"), "settings": settings})),
                expect,
                true,
            )
            .await
        {
            note(ctx, "knowledge base embedding base_url", status);
            if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                ctx.call(
                    "DELETE probe kb",
                    ctx.http.delete(ctx.url(&format!("/v1/knowledge-bases/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
        // A key may never change where embeddings go, whatever the address (sent before the
        // session's change below: sending the current config unchanged is allowed).
        for (label, key) in [("bound upload key", &b.upload_bound), ("upload key", &b.upload_unbound)] {
            ctx.call(
                &format!("{label} PATCH embedding base_url={url}"),
                ctx.patch(&format!("/v1/knowledge-bases/{}", b.kb_bound), key, json!({"settings": settings})),
                Expect::Only(&[403, 422]),
                true,
            )
            .await;
        }
        if let Some((status, _)) = ctx
            .call(
                &format!("PATCH kb embedding base_url={url}"),
                ctx.patch(&format!("/v1/knowledge-bases/{}", b.kb_other), s, json!({"settings": settings})),
                expect,
                true,
            )
            .await
        {
            note(ctx, "PATCH knowledge base embedding base_url", status);
        }
        // A key may never change where embeddings go, whatever the address.

        for (kind, config) in [
            ("web", json!({"url": url})),
            ("s3", json!({"bucket": "b", "endpoint": url})),
            ("git", json!({"url": format!("{url}/repo.git")})),
        ] {
            let body = json!({"name": format!("probe {kind} {round} {n}"), "knowledge_base_id": b.kb_other, "source_type": kind, "config": config});
            if let Some((status, v)) = ctx
                .call(
                    &format!("POST /v1/data-sources {kind} {url}"),
                    ctx.post("/v1/data-sources", s, body),
                    expect,
                    true,
                )
                .await
            {
                note(ctx, &format!("{kind} data source"), status);
                if let Some(id) = v["id"].as_str().filter(|_| (200..300).contains(&status)) {
                    ctx.call(
                        "DELETE probe source",
                        ctx.http.delete(ctx.url(&format!("/v1/data-sources/{id}"))).bearer_auth(s),
                        Expect::Success,
                        true,
                    )
                    .await;
                }
            }
        }
    }
    // Providers on their default local addresses (llamacpp: 127.0.0.1:8080, allowed here).
    for provider in ["llamacpp", "ollama", "vllm"] {
        let agent = json!({"name": format!("{provider} {round}"), "model_provider": provider, "model_name": "m"});
        if let Some((status, v)) = ctx
            .call(
                &format!("POST /v1/agents {provider} without base_url"),
                ctx.post("/v1/agents", s, agent),
                Expect::Answer,
                true,
            )
            .await
            && (200..300).contains(&status)
        {
            *ctx.tally
                .lock()
                .expect("tally")
                .allowed_loopback
                .entry(format!("{provider} agent → its default 127.0.0.1 address"))
                .or_default() += 1;
            if let Some(id) = v["id"].as_str() {
                ctx.call(
                    "DELETE local agent",
                    ctx.http.delete(ctx.url(&format!("/v1/agents/{id}"))).bearer_auth(s),
                    Expect::Success,
                    true,
                )
                .await;
            }
        }
    }
    // The attacker's own config back: its webhook on the redirect, no base URLs.
    ctx.call(
        "PUT config back",
        ctx.put(
            "/v1/config",
            s,
            json!({"openai_base_url": null, "anthropic_base_url": null, "cohere_base_url": null,
                   "webhook_url": format!("http://127.0.0.1:{provider_port}/redirect/hook")}),
        ),
        Expect::Success,
        true,
    )
    .await;

    // Now make the server call out.
    if let Some(agent) = &triggers.redirect_agent {
        ctx.call(
            "chat with the agent behind a redirect",
            ctx.post(&format!("/v1/agents/{agent}/chat"), s, json!({"message": "hello 你好"})),
            Expect::Upstream,
            true,
        )
        .await;
    }
    if let Some(kb) = &triggers.redirect_kb
        && let Some((202, v)) = ctx
            .call(
                "upload into the knowledge base embedding via a redirect",
                ctx.upload(
                    kb,
                    s,
                    &format!("redirect-{round}.md"),
                    format!("# 重定向 {round}\n\nEmbeddings go through a redirect.").into_bytes(),
                    None,
                ),
                Expect::Answer,
                true,
            )
            .await
        && let Some(id) = v["id"].as_str()
    {
        judge_document(ctx, s, id, "upload embedding via a redirect", "embedding via a redirect").await;
    }
    for source in &triggers.sources {
        ctx.call(
            "sync a source behind a redirect",
            ctx.post(&format!("/v1/data-sources/{source}/sync"), s, json!({})),
            Expect::Answer,
            true,
        )
        .await;
    }
    settle_syncs(ctx, s, &triggers.sources).await;
}

/// The agent whose model is Lore's own `/v1/chat/completions`, naming itself: one chat must end
/// (an answer or a refusal) within a few seconds, and nothing may go on once its caller has left.
async fn self_loop(ctx: &Ctx, l: &SelfLoop, pid: u32) {
    let (agent, name) = (&l.agent, &l.name);
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let rss = || vm_rss_kib(pid).unwrap_or(0) / 1024;
    let (fds_before, rss_before) = (fds(), rss());
    let t = Instant::now();
    let request = ctx
        .post(
            "/v1/chat/completions",
            &l.key,
            json!({"model": name, "messages": [{"role": "user", "content": "who are you 你是谁"}]}),
        )
        .timeout(Duration::from_secs(10));
    let answer = request.send().await;
    let secs = t.elapsed().as_secs_f64();
    let outcome = match answer {
        Ok(r) => format!("{} after {secs:.1} s", r.status()),
        Err(e) if e.is_timeout() => format!("no answer within {secs:.0} s"),
        Err(e) => format!("{e}"),
    };
    let (fds_left, rss_left) = (fds(), rss());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (fds_after, rss_after) = (fds(), rss());
    eprintln!(
        "agent calling Lore itself ({agent}): {outcome}; open files {fds_before} → {fds_left} when the caller left → {fds_after} 5 s later; RSS {rss_before} → {rss_left} → {rss_after} MiB"
    );
    let grew = fds_after > fds_left + 50 || rss_after > rss_left + 64;
    if !outcome.contains(" after ") || grew {
        ctx.finding(format!(
            "an agent whose model is Lore's own /v1/chat/completions (allowed by --allow-outbound 127.0.0.1/32) calls \
             itself without end: {outcome}; open files {fds_before} → {fds_left} → {fds_after} and RSS {rss_before} → \
             {rss_left} → {rss_after} MiB over the 5 s after its caller left"
        ));
    } else {
        ctx.call(
            "a chat after the loop",
            ctx.post(&format!("/v1/agents/{agent}/chat"), &l.session, json!({"message": "again"})),
            Expect::Upstream,
            true,
        )
        .await;
    }
}

/// Waits (a while) for the sources' syncs to end, and tallies how they ended.
async fn settle_syncs(ctx: &Ctx, token: &str, sources: &[String]) {
    for source in sources {
        let started = Instant::now();
        loop {
            let v = ctx.http.get(ctx.url(&format!("/v1/data-sources/{source}/syncs"))).bearer_auth(token).send().await;
            let Ok(v) = v else { break };
            let v: Value = v.json().await.unwrap_or_default();
            let last = v["data"].as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
            let status = last["status"].as_str().unwrap_or_default();
            if status != "running" || started.elapsed() > Duration::from_secs(60) {
                if status == "running" {
                    ctx.finding(format!(
                        "a sync of a source behind a redirect still runs after 60 s: {}",
                        shorten(&last.to_string())
                    ));
                } else if !status.is_empty() {
                    *ctx.tally
                        .lock()
                        .expect("tally")
                        .files
                        .entry(format!("sync behind a redirect: {status}"))
                        .or_default() += 1;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The body an operation gets in the matrix.
fn matrix_request(ctx: &Ctx, method: &str, path: &str) -> reqwest::RequestBuilder {
    let url = ctx.url(path);
    match method {
        "get" => ctx.http.get(url),
        "delete" => ctx.http.delete(url),
        "put" => ctx.http.put(url).json(&json!({})),
        // Each route's own fields: a body the route refuses would answer 422 before the object is looked up.
        "patch" if path.starts_with("/v1/chunks/") => ctx.http.patch(url).json(&json!({"enabled": false})),
        "patch" => ctx.http.patch(url).json(&json!({"name": "renamed by mallory"})),
        _ if path.ends_with("/documents") => ctx
            .http
            .post(url)
            .multipart(Form::new().part("file", Part::bytes(b"intruder text".to_vec()).file_name("intruder.txt"))),
        _ if path.ends_with("/chat") => ctx.http.post(url).json(&json!({"message": "hello"})),
        _ if path.ends_with("/search") => ctx.http.post(url).json(&json!({"query": "canary 金丝雀"})),
        _ => ctx.http.post(url).json(&json!({})),
    }
}

/// Replaces the path's parameters with the ids of the objects each prefix names.
fn fill(template: &str, ids: &[(&str, &str)], fallback: &str) -> String {
    let id = ids.iter().find(|(prefix, _)| template.starts_with(prefix)).map(|(_, id)| *id).unwrap_or(fallback);
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map(|c| open + c + 1).unwrap_or(rest.len());
        out.push_str(id);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

async fn matrix_round(ctx: &Ctx, a: &Victim, b: &Attacker, openapi: &Value, rng: &mut Rng, first: bool) {
    let nowhere = lore_core::new_id().to_string();
    let victim_ids: Vec<(&str, &str)> = vec![
        ("/v1/knowledge-bases/{id}", &a.kbs[rng.below(a.kbs.len())]),
        ("/v1/documents/{id}", &a.docs[rng.below(a.docs.len())]),
        ("/v1/agents/{id}", &a.agent),
        ("/v1/conversations/{id}", &a.conversation),
        ("/v1/data-sources/{id}", &a.source),
        ("/v1/api-keys/{id}", &a.key_id),
        ("/v1/admin/users/{id}", &a.user_id),
        ("/v1/file-types/{id}", "1"),
    ];
    let own_other: Vec<(&str, &str)> = vec![
        ("/v1/knowledge-bases/{id}", &b.kb_other),
        ("/v1/documents/{id}", &b.other_doc),
        ("/v1/agents/{id}", &b.other_agent),
        ("/v1/conversations/{id}", &b.other_conversation),
        ("/v1/data-sources/{id}", &b.other_source),
        ("/v1/api-keys/{id}", &b.own_key_id),
    ];
    let garbage = [
        "garbage".to_string(),
        format!("lore_{:032x}", rng.next_u64() as u128 * 3),
        format!("{}.{}.{}", "eyJhbGciOiJub25lIn0", "eyJzdWIiOiJhZG1pbiJ9", ""),
        a.kbs[0].clone(),
        "x".repeat(4096),
    ];
    let Some(paths) = openapi["paths"].as_object() else {
        ctx.finding("/openapi.json has no paths".into());
        return;
    };
    let mut hostile_calls = Vec::new();
    for (template, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() || !template.starts_with("/v1/") {
                continue;
            }
            if lore_server::authz::rule_for(method, template).map(|r| r.need) == Some(lore_server::authz::Need::Public)
            {
                continue;
            }
            let has_id = template.contains('{');
            // The outside caller: every operation, no token or garbage.
            let path = fill(template, &victim_ids, &nowhere);
            let token = garbage[rng.below(garbage.len())].clone();
            hostile_calls.push((
                format!("outside caller (no token) {method} {template}"),
                method,
                path.clone(),
                None,
                &[401u16][..],
            ));
            hostile_calls.push((
                format!("outside caller (garbage token) {method} {template}"),
                method,
                path.clone(),
                Some(token),
                &[401u16][..],
            ));
            if !has_id {
                continue;
            }
            // The attacker's session and keys on the victim's objects.
            let callers: Vec<(String, String)> = std::iter::once(("session".to_string(), b.session.clone()))
                .chain(b.keys.iter().cloned())
                .filter(|_| first || rng.below(3) == 0)
                .collect();
            for (label, token) in callers {
                hostile_calls.push((
                    format!("attacker {label} {method} {template} (victim's object)"),
                    method,
                    path.clone(),
                    Some(token),
                    &[403u16, 404][..],
                ));
            }
            // The attacker's bound key on its own other knowledge base.
            if own_other.iter().any(|(prefix, _)| template.starts_with(prefix)) {
                let path = fill(template, &own_other, &nowhere);
                hostile_calls.push((
                    format!("attacker all-scope bound key {method} {template} (own other knowledge base)"),
                    method,
                    path,
                    Some(b.all_bound.clone()),
                    &[403u16, 404][..],
                ));
            }
        }
    }
    for (what, method, path, token, allowed) in hostile_calls {
        let mut request = matrix_request(ctx, method, &path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        ctx.call(&what, request, Expect::Only(allowed), true).await;
    }
    // Lists and searches of the attacker never show the victim's data.
    for list in [
        "/v1/knowledge-bases",
        "/v1/agents",
        "/v1/conversations",
        "/v1/data-sources",
        "/v1/api-keys",
        "/v1/notifications",
        "/v1/usage/agents",
        "/v1/usage/api",
        "/v1/config",
    ] {
        ctx.call(&format!("attacker lists {list}"), ctx.get(list, &b.session), Expect::Success, true).await;
    }
    ctx.call(
        "attacker searches everything",
        ctx.post("/v1/search", &b.session, json!({"query": "金丝雀 canary 退款", "mode": "fulltext"})),
        Expect::Answer,
        true,
    )
    .await;
    ctx.call(
        "attacker chat/completions naming the victim's agent",
        ctx.post(
            "/v1/chat/completions",
            &b.search_unbound,
            json!({"model": a.agent, "messages": [{"role": "user", "content": "退款多久？"}]}),
        ),
        Expect::Only(&[403, 404, 422]),
        true,
    )
    .await;
    // The victim's document stays its own: nothing the matrix sent changed it.
    if let Some((_, v)) = ctx
        .call("victim reads its agent", ctx.get(&format!("/v1/agents/{}", a.agent), &a.token), Expect::Success, false)
        .await
        && v["name"].as_str().is_some_and(|n| n.contains("mallory"))
    {
        ctx.finding("the attacker renamed the victim's agent".into());
    }
}

async fn fan_out_round(ctx: &Ctx, a: &Victim, b: &Attacker) {
    let many: Vec<String> = (0..51).map(|_| lore_core::new_id().to_string()).collect();
    ctx.call(
        "search over 51 knowledge bases",
        ctx.post("/v1/search", &b.session, json!({"query": "金丝雀", "mode": "fulltext", "knowledge_base_ids": many})),
        Expect::Only(&[422]),
        true,
    )
    .await;
    let theirs: Vec<&String> = a.kbs.iter().chain([&b.kb_bound]).collect();
    for (label, token) in [("session", &b.session), ("bound key", &b.all_bound), ("search key", &b.search_unbound)] {
        ctx.call(
            &format!("attacker {label} searches the victim's knowledge bases"),
            ctx.post(
                "/v1/search",
                token,
                json!({"query": "金丝雀 canary", "mode": "fulltext", "knowledge_base_ids": theirs}),
            ),
            Expect::Answer,
            true,
        )
        .await;
    }
}

/// Removes the data directory when the campaign ends (after the server is gone).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
