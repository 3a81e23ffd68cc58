//! `lore` as a client of a running server: import files and folders, search, and the basics of
//! knowledge bases, documents and keys. Exit codes: 0 ok, 1 partial failure, 2 usage error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct Connection {
    /// The Lore server.
    #[arg(long, env = "LORE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// An API key or a session token.
    #[arg(long, env = "LORE_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// With a session token: the team workspace to act in (sent as `X-Lore-Workspace`). An API
    /// key acts in its own.
    #[arg(long, env = "LORE_WORKSPACE", global = true)]
    pub workspace: Option<String>,
}

/// The outcome of a client command, as an exit code.
pub enum Outcome {
    Ok,
    PartialFailure,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    workspace: Option<String>,
}

impl Client {
    fn new(c: &Connection) -> anyhow::Result<Client> {
        let token = c.api_key.clone().context("no credentials: pass --api-key or set LORE_API_KEY")?;
        let base = c.server.trim_end_matches('/').to_string();
        Ok(Client { http: reqwest::Client::new(), base, token, workspace: c.workspace.clone() })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let req = match &self.workspace {
            Some(workspace) => req.header("X-Lore-Workspace", workspace),
            None => req,
        };
        let resp = req.bearer_auth(&self.token).send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let code = body["error"]["code"].as_str().unwrap_or("error");
            let message = body["error"]["message"].as_str().unwrap_or("");
            bail!("{status}: {code}: {message}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base))).await
    }
}

// ------------------------------------------------------------------------------------ import

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files and folders to upload (folders are walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The knowledge base to upload into.
    #[arg(long)]
    kb: String,
    /// Only files matching one of these globs (e.g. "**/*.md"); default: all.
    #[arg(long = "glob")]
    globs: Vec<String>,
    /// Skip files matching these globs (e.g. "**/node_modules/**").
    #[arg(long = "ignore")]
    ignores: Vec<String>,
    /// Return once uploaded, without waiting for processing.
    #[arg(long)]
    no_wait: bool,
}

fn glob_set(patterns: &[String]) -> anyhow::Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        b.add(globset::Glob::new(p).with_context(|| format!("bad glob {p:?}"))?);
    }
    Ok(Some(b.build()?))
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            if e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue; // hidden files and folders (.git, .DS_Store)
            }
            walk(&e, out)?;
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::default_bar().template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

pub async fn import(c: &Connection, args: ImportArgs) -> anyhow::Result<Outcome> {
    let client = Client::new(c)?;
    let (only, skip) = (glob_set(&args.globs)?, glob_set(&args.ignores)?);
    let mut files = Vec::new();
    for p in &args.paths {
        if !p.exists() {
            bail!("{} does not exist", p.display());
        }
        walk(p, &mut files)?;
    }
    files.retain(|f| only.as_ref().is_none_or(|g| g.is_match(f)) && !skip.as_ref().is_some_and(|g| g.is_match(f)));
    let total_bytes: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    let upload = bar(total_bytes, "uploading {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}");
    let mut accepted: Vec<(PathBuf, String)> = Vec::new();
    let (mut duplicates, mut failures) = (0usize, Vec::new());
    for (i, path) in files.iter().enumerate() {
        upload.set_message(format!("{}/{} files", i + 1, files.len()));
        let bytes = std::fs::read(path)?;
        let len = bytes.len() as u64;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "upload".into());
        let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
        let req = client.http.post(format!("{}/v1/knowledge-bases/{}/documents", client.base, args.kb)).multipart(form);
        match client.send(req).await {
            // Already there (a re-run after an interruption): nothing to do.
            Ok(doc) if doc["duplicate"] == true => {
                duplicates += 1;
                if doc["status"] == "failed" {
                    failures.push((path.clone(), doc["error_message"].as_str().unwrap_or("failed").to_string()));
                }
            }
            Ok(doc) => accepted.push((path.clone(), doc["id"].as_str().unwrap_or_default().to_string())),
            Err(e) => failures.push((path.clone(), e.to_string())),
        }
        upload.inc(len);
    }
    upload.finish_with_message(format!("{} files", files.len()));
    let mut completed = 0usize;
    if !args.no_wait && !accepted.is_empty() {
        let wait = bar(accepted.len() as u64, "processing {bar:30} {pos}/{len} documents {msg}");
        let mut pending = accepted.clone();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (path, id) in pending {
                match client.get(&format!("/v1/documents/{id}")).await {
                    Ok(doc) if doc["status"] == "completed" => {
                        completed += 1;
                        wait.inc(1);
                    }
                    Ok(doc) if doc["status"] == "failed" => {
                        failures.push((path, doc["error_message"].as_str().unwrap_or("failed").to_string()));
                        wait.inc(1);
                    }
                    Ok(_) => still.push((path, id)),
                    Err(e) => {
                        failures.push((path, e.to_string()));
                        wait.inc(1);
                    }
                }
            }
            pending = still;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        wait.finish();
    }
    println!(
        "{} files: {} uploaded{}, {} already there, {} failed",
        files.len(),
        accepted.len(),
        if args.no_wait { String::new() } else { format!(" ({completed} processed)") },
        duplicates,
        failures.len()
    );
    for (path, reason) in &failures {
        println!("  failed: {}: {reason}", path.display());
    }
    Ok(if failures.is_empty() { Outcome::Ok } else { Outcome::PartialFailure })
}

// ------------------------------------------------------------------------------------ search

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for.
    query: String,
    #[arg(long)]
    kb: String,
    #[arg(long, default_value_t = 10)]
    top_k: u32,
    #[arg(long, default_value = "fulltext")]
    mode: String,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
}

pub async fn search(c: &Connection, args: SearchArgs) -> anyhow::Result<Outcome> {
    let client = Client::new(c)?;
    let body = json!({"query": args.query, "top_k": args.top_k, "mode": args.mode});
    let v = client.post(&format!("/v1/knowledge-bases/{}/search", args.kb), body).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Outcome::Ok);
    }
    let results = v["results"].as_array().cloned().unwrap_or_default();
    if results.is_empty() {
        println!("no results ({:.1} ms)", v["took_ms"].as_f64().unwrap_or(0.0));
    }
    for (i, r) in results.iter().enumerate() {
        let snippet: String =
            r["content"].as_str().unwrap_or("").chars().take(160).collect::<String>().replace('\n', " ");
        println!(
            "{:>2}. {:.3}  {} #{}\n    {snippet}",
            i + 1,
            r["score"].as_f64().unwrap_or(0.0),
            r["filename"].as_str().unwrap_or("?"),
            r["chunk_index"]
        );
    }
    Ok(Outcome::Ok)
}

// ------------------------------------------------------------------------------------ basics

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// List knowledge bases.
    List,
    /// Create a knowledge base.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a knowledge base and everything in it.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// List the documents of a knowledge base.
    List {
        #[arg(long)]
        kb: String,
        #[arg(long)]
        status: Option<String>,
    },
    /// Show a document.
    Get { id: String },
    /// Move a document to the trash.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List API keys (needs a session token).
    List,
    /// Create an API key; it is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// search, upload, read, delete (repeat or comma-separate).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        kb: Option<String>,
    },
    /// Revoke an API key.
    Revoke { id: String },
}

fn print_rows(rows: &Value, columns: &[&str]) {
    for row in rows["data"].as_array().into_iter().flatten() {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match &row[*c] {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            })
            .collect();
        println!("{}", cells.join("  "));
    }
}

pub async fn kb(c: &Connection, cmd: KbCommand) -> anyhow::Result<Outcome> {
    let client = Client::new(c)?;
    match cmd {
        KbCommand::List => print_rows(
            &client.get("/v1/knowledge-bases").await?,
            &["id", "name", "status", "document_count", "chunk_count"],
        ),
        KbCommand::Create { name, description } => {
            let kb = client.post("/v1/knowledge-bases", json!({"name": name, "description": description})).await?;
            println!("{}", kb["id"].as_str().unwrap_or_default());
        }
        KbCommand::Delete { id } => {
            client.delete(&format!("/v1/knowledge-bases/{id}")).await?;
        }
    }
    Ok(Outcome::Ok)
}

pub async fn doc(c: &Connection, cmd: DocCommand) -> anyhow::Result<Outcome> {
    let client = Client::new(c)?;
    match cmd {
        DocCommand::List { kb, status } => {
            let query = status.map(|s| format!("?status={s}")).unwrap_or_default();
            print_rows(
                &client.get(&format!("/v1/knowledge-bases/{kb}/documents{query}")).await?,
                &["id", "filename", "status", "chunk_count", "error_code"],
            );
        }
        DocCommand::Get { id } => {
            println!("{}", serde_json::to_string_pretty(&client.get(&format!("/v1/documents/{id}")).await?)?)
        }
        DocCommand::Delete { id } => {
            client.delete(&format!("/v1/documents/{id}")).await?;
        }
    }
    Ok(Outcome::Ok)
}

pub async fn key(c: &Connection, cmd: KeyCommand) -> anyhow::Result<Outcome> {
    let client = Client::new(c)?;
    match cmd {
        KeyCommand::List => print_rows(
            &client.get("/v1/api-keys").await?,
            &["id", "name", "key_prefix", "key_suffix", "scopes", "is_active"],
        ),
        KeyCommand::Create { name, scopes, kb } => {
            let created =
                client.post("/v1/api-keys", json!({"name": name, "scopes": scopes, "knowledge_base_id": kb})).await?;
            println!("{}", created["key"].as_str().unwrap_or_default());
        }
        KeyCommand::Revoke { id } => {
            client.delete(&format!("/v1/api-keys/{id}")).await?;
        }
    }
    Ok(Outcome::Ok)
}

// ------------------------------------------------------------------------------------ MCP over stdio

/// The MCP tools, served by a Lore server over HTTP.
struct HttpBackend(Client);

fn message(e: anyhow::Error) -> String {
    format!("{e:#}")
}

#[async_trait::async_trait]
impl lore_server::mcp::Backend for HttpBackend {
    async fn list_knowledge_bases(&self) -> Result<Value, String> {
        let v = self.0.get("/v1/knowledge-bases").await.map_err(message)?;
        Ok(json!(v["data"].as_array().into_iter().flatten().map(|kb| json!({"id": kb["id"], "name": kb["name"], "description": kb["description"], "document_count": kb["document_count"]})).collect::<Vec<_>>()))
    }

    async fn search(&self, kb: &str, query: &str, mode: Option<&str>, top_k: u32) -> Result<Value, String> {
        let mut body = json!({"query": query, "top_k": top_k});
        if let Some(mode) = mode {
            body["mode"] = json!(mode);
        }
        self.0.post(&format!("/v1/knowledge-bases/{kb}/search"), body).await.map_err(message)
    }

    async fn list_agents(&self) -> Result<Value, String> {
        let v = self.0.get("/v1/agents").await.map_err(message)?;
        Ok(json!(v["data"].as_array().into_iter().flatten().map(lore_server::mcp::agent_summary).collect::<Vec<_>>()))
    }

    async fn ask_agent(&self, agent: &str, question: &str, conversation_id: Option<&str>) -> Result<Value, String> {
        let v = self.0.get("/v1/agents").await.map_err(message)?;
        let id = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"].as_str() == Some(agent) || a["name"].as_str() == Some(agent))
            .and_then(|a| a["id"].as_str())
            .ok_or_else(|| format!("no agent '{agent}'; list_agents names them"))?
            .to_string();
        let mut body = json!({"message": question});
        if let Some(c) = conversation_id {
            body["conversation_id"] = json!(c);
        }
        self.0.post(&format!("/v1/agents/{id}/chat"), body).await.map_err(message)
    }

    async fn list_documents(&self, kb: &str) -> Result<Value, String> {
        let v = self.0.get(&format!("/v1/knowledge-bases/{kb}/documents?limit=200")).await.map_err(message)?;
        Ok(json!(v["data"].as_array().into_iter().flatten().map(|d| json!({"id": d["id"], "filename": d["filename"], "title": d["title"], "status": d["status"], "chunk_count": d["chunk_count"]})).collect::<Vec<_>>()))
    }

    async fn get_document(&self, id: &str) -> Result<Value, String> {
        self.0.get(&format!("/v1/documents/{id}?include_content=true")).await.map_err(message)
    }
}

/// `lore mcp`: the Model Context Protocol on stdin/stdout, its tools served by a Lore server.
pub async fn mcp_stdio(c: &Connection) -> anyhow::Result<Outcome> {
    lore_server::mcp::serve_stdio(std::sync::Arc::new(HttpBackend(Client::new(c)?))).await?;
    Ok(Outcome::Ok)
}
