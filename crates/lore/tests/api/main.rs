//! The HTTP API end to end: each test starts a real server on a free port with a fresh data
//! directory and drives it over HTTP, as a user's application would.

mod agents;
mod attacks;
mod backup;
mod campaigns;
mod chunks;
mod cli;
mod connectors;
mod console;
mod formats;
mod governance;
mod hostile;
mod isolation;
mod mcp;
mod ocr;
mod postgres;
mod registration;
mod retrieval;
mod sources;
mod summaries;
mod workspaces;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

struct TestApp {
    base: String,
    http: reqwest::Client,
    server: Option<lore_server::RunningServer>,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

async fn spawn_app_with(configure: impl FnOnce(&mut lore_server::ServerConfig)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("tempdir"), configure).await
}

/// A server over `dir/data`; a second server can later be started over the same directory.
async fn spawn_app_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut lore_server::ServerConfig)) -> TestApp {
    let mut config = lore_server::ServerConfig::new(dir.path().join("data"), "127.0.0.1:0".parse().expect("addr"));
    config.workers = 2;
    config.database_url = test_database(dir.path()).await;
    // Tests register many accounts per server; those about the registration policy set their own.
    config.registration = lore_core::model::RegistrationPolicy::Open;
    config.registrations_per_hour = 0;
    // The tests' model providers and webhook receivers listen on 127.0.0.1.
    config.allow_outbound = vec!["127.0.0.1/32".parse().expect("cidr")];
    // Documents are parsed in child processes of the binary, as `lore serve` does.
    config.parser_exe = Some(env!("CARGO_BIN_EXE_lore").into());
    configure(&mut config);
    let server = lore_server::start(config).await.expect("server starts");
    TestApp { base: format!("http://{}", server.addr), http: http_client(), server: Some(server), _dir: dir }
}

/// With `LORE_TEST_BACKEND=postgres` (the test command's second pass), every test server keeps its
/// data in PostgreSQL: a fresh schema per test directory, so that a server started again over the
/// same directory finds the same database.
async fn test_database(dir: &std::path::Path) -> Option<String> {
    if std::env::var("LORE_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    let marker = dir.join("database_url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    let base = std::env::var("LORE_TEST_DATABASE_URL").expect("LORE_TEST_DATABASE_URL (scripts/pg-up prints one)");
    let url = lore_store::postgres::create_scratch_schema(&base).await.expect("scratch schema");
    std::fs::write(&marker, &url).expect("remember the schema");
    Some(url)
}

/// `LORE_DATABASE_URL` for a command run on a test server's data directory (`<dir>/data`), when
/// that server kept its data in PostgreSQL.
fn database_env(data_dir: &std::path::Path) -> Option<(&'static str, String)> {
    let marker = data_dir.parent()?.join("database_url");
    std::fs::read_to_string(marker).ok().map(|url| ("LORE_DATABASE_URL", url))
}

async fn body(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        body(self.http.get(self.url(path)).bearer_auth(token).send().await.expect("send")).await
    }

    async fn post(&self, token: &str, path: &str, json: Value) -> (StatusCode, Value) {
        body(self.http.post(self.url(path)).bearer_auth(token).json(&json).send().await.expect("send")).await
    }

    async fn put(&self, token: &str, path: &str, json: Value) -> (StatusCode, Value) {
        body(self.http.put(self.url(path)).bearer_auth(token).json(&json).send().await.expect("send")).await
    }

    async fn patch(&self, token: &str, path: &str, json: Value) -> (StatusCode, Value) {
        body(self.http.patch(self.url(path)).bearer_auth(token).json(&json).send().await.expect("send")).await
    }

    async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        body(self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("send")).await
    }

    async fn register(&self, name: &str) -> String {
        let (status, v) = self
            .post(
                "",
                "/v1/auth/register",
                json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["token"].as_str().expect("token").to_string()
    }

    async fn create_kb(&self, token: &str, name: &str) -> String {
        let (status, v) = self.post(token, "/v1/knowledge-bases", json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_string()
    }

    async fn upload_form(&self, token: &str, kb: &str, form: Form) -> (StatusCode, Value) {
        body(
            self.http
                .post(self.url(&format!("/v1/knowledge-bases/{kb}/documents")))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    async fn upload(&self, token: &str, kb: &str, filename: &str, bytes: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        let form = Form::new().part("file", Part::bytes(bytes.into()).file_name(filename.to_string()));
        self.upload_form(token, kb, form).await
    }

    /// Uploads and waits until the document is completed or failed.
    async fn ingest(&self, token: &str, kb: &str, filename: &str, bytes: impl Into<Vec<u8>>) -> Value {
        let (status, v) = self.upload(token, kb, filename, bytes).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        self.wait_done(token, v["id"].as_str().expect("id")).await
    }

    async fn wait_done(&self, token: &str, doc: &str) -> Value {
        for _ in 0..600 {
            let (status, v) = self.get(token, &format!("/v1/documents/{doc}")).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            if v["status"] == "completed" || v["status"] == "failed" {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("document {doc} was not processed in time");
    }

    async fn search(&self, token: &str, kb: &str, query: &str) -> (StatusCode, Value) {
        self.post(token, &format!("/v1/knowledge-bases/{kb}/search"), json!({"query": query, "mode": "fulltext"})).await
    }

    async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Stops the server and hands back its directory, to start another over the same data.
    async fn stop(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self._dir
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no code>")
}

const ZH_DOC: &str = "# 中文分词简介\n\n中文分词是中文信息处理的基础。搜索引擎需要把句子切分成词语，才能建立倒排索引。\n\n\
Lore 使用结巴分词处理中文文本，并按照 BM25 排序返回结果。\n";
const EN_DOC: &str = "Vector databases\n\nApproximate nearest neighbour search finds similar embeddings quickly.\n\n\
Hierarchical navigable small world graphs are a popular index structure.\n";

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let (status, v) = body(app.http.get(app.url("/healthz")).send().await.expect("send")).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, v) = body(app.http.get(app.url("/readyz")).send().await.expect("send")).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ready")));
    app.shutdown().await;
}

#[tokio::test]
async fn accounts_register_login_me_logout() {
    let app = spawn_app().await;
    let token = app.register("alice").await;
    let (status, v) = app.get(&token, "/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["username"], "alice");
    assert_eq!(v["auth"]["method"], "session");
    assert!(v.get("hashed_password").is_none() && !v.to_string().contains("argon2"));

    let (status, v) = app
        .post("", "/v1/auth/register", json!({"username": "ALICE", "email": "x@example.com", "password": "12345678"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "username_taken"));
    let (status, v) = app
        .post("", "/v1/auth/register", json!({"username": "bob", "email": "alice@example.com", "password": "12345678"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "email_taken"));
    let (status, v) =
        app.post("", "/v1/auth/register", json!({"username": "bob", "email": "nope", "password": "12345678"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (status, v) = app
        .post("", "/v1/auth/register", json!({"username": "bob", "email": "b@example.com", "password": "short"}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    // Chinese usernames are welcome.
    let (status, _) = app
        .post(
            "",
            "/v1/auth/register",
            json!({"username": "张三", "email": "zhang@example.com", "password": "密码很长很长很长"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = app.post("", "/v1/auth/login", json!({"username": "张三", "password": "密码很长很长很长"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let (status, v) = app
        .post("", "/v1/auth/login", json!({"username": "alice@example.com", "password": "correct horse battery"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let second = v["token"].as_str().expect("token").to_string();
    assert!(v["user"]["last_login_at"].is_string() || v["user"]["last_login_at"].is_null());
    let (status, v) = app.post("", "/v1/auth/login", json!({"username": "alice", "password": "wrong password"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let (status, v) = app.post("", "/v1/auth/login", json!({"username": "nobody", "password": "wrong password"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));

    let (status, _) = app.post(&second, "/v1/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = app.get(&second, "/v1/me").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    // The other session is untouched.
    assert_eq!(app.get(&token, "/v1/me").await.0, StatusCode::OK);
    let (status, v) = body(app.http.get(app.url("/v1/me")).send().await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "missing_token"));
    let (status, v) = app.get("lss_forged", "/v1/me").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    app.shutdown().await;
}

#[tokio::test]
async fn chinese_and_english_documents_are_processed_and_found() {
    let app = spawn_app().await;
    let token = app.register("reader").await;
    let kb = app.create_kb(&token, "知识库").await;

    let zh = app.ingest(&token, &kb, "中文.md", ZH_DOC).await;
    assert_eq!(zh["status"], "completed", "{zh}");
    assert_eq!(zh["progress"], 100);
    assert_eq!(zh["title"], "中文分词简介");
    assert_eq!(zh["file_type"], "markdown");
    assert!(zh["processing_log"].as_array().expect("log").len() >= 3, "{zh}");
    let en = app.ingest(&token, &kb, "vectors.txt", EN_DOC).await;
    assert_eq!(en["status"], "completed", "{en}");
    let html = app
        .ingest(&token, &kb, "page.html", "<html><head><title>检索增强</title></head><body><nav>菜单 导航</nav><p>检索增强生成结合了搜索与大模型。</p></body></html>")
        .await;
    assert_eq!(html["status"], "completed", "{html}");
    assert_eq!(html["title"], "检索增强");

    let (status, v) = app.search(&token, &kb, "中文分词").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let results = v["results"].as_array().expect("results");
    assert!(!results.is_empty(), "{v}");
    assert_eq!(results[0]["document_id"], zh["id"]);
    assert_eq!(results[0]["filename"], "中文.md");
    assert!(results[0]["highlight"].as_str().expect("highlight").contains("<mark>中文</mark>"), "{v}");
    assert!(results[0]["score"].as_f64().expect("score") > 0.0);
    assert!(v["took_ms"].as_f64().is_some());
    assert!(results.iter().all(|r| r["document_id"] != en["id"]), "English doc matched a Chinese query: {v}");

    let (_, v) = app.search(&token, &kb, "倒排索引怎么建立").await;
    assert_eq!(v["results"][0]["document_id"], zh["id"], "{v}");
    let (_, v) = app.search(&token, &kb, "NEIGHBOUR Search").await;
    assert_eq!(v["results"][0]["document_id"], en["id"], "{v}");
    assert!(v["results"][0]["highlight"].as_str().expect("hl").contains("<mark>neighbour</mark>"));
    let (_, v) = app.search(&token, &kb, "检索增强").await;
    assert_eq!(v["results"][0]["document_id"], html["id"], "{v}");
    // Navigation is not content.
    let (_, v) = app.search(&token, &kb, "菜单").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = app.search(&token, &kb, "quantum chromodynamics").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(0), "{v}");

    // Filters.
    let (_, v) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb}/search"),
            json!({"query": "检索 搜索", "filters": {"document_ids": [html["id"]]}}),
        )
        .await;
    assert!(v["results"].as_array().expect("r").iter().all(|r| r["document_id"] == html["id"]), "{v}");
    let (_, v) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb}/search"),
            json!({"query": "搜索", "filters": {"file_types": ["markdown"]}}),
        )
        .await;
    assert!(v["results"].as_array().expect("r").iter().all(|r| r["document_id"] == zh["id"]), "{v}");

    // Chunks: contiguous indexes from 0, hashed.
    let (status, v) = app.get(&token, &format!("/v1/documents/{}/chunks", zh["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::OK);
    let chunks = v["data"].as_array().expect("chunks");
    assert_eq!(chunks.len() as i64, zh["chunk_count"].as_i64().expect("count"));
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["chunk_index"], i);
        assert_eq!(c["content_hash"].as_str().expect("hash").len(), 64);
    }

    // Statistics kept by the database.
    let (_, kbv) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(kbv["document_count"], 3);
    let chunk_total: i64 = [&zh, &en, &html].iter().map(|d| d["chunk_count"].as_i64().expect("n")).sum();
    assert_eq!(kbv["chunk_count"], chunk_total);
    let bytes = (ZH_DOC.len() + EN_DOC.len()) as i64;
    assert!(kbv["total_size_bytes"].as_i64().expect("size") > bytes);
    assert!(kbv["last_updated_at"].is_string());
    let (_, me) = app.get(&token, "/v1/me").await;
    assert_eq!(me["storage_used"], kbv["total_size_bytes"]);

    // Content on request.
    let (_, v) =
        app.get(&token, &format!("/v1/documents/{}?include_content=true", zh["id"].as_str().expect("id"))).await;
    assert!(v["processed_content"].as_str().expect("content").contains("倒排索引"));
    app.shutdown().await;
}

#[tokio::test]
async fn legacy_encodings_are_decoded() {
    let app = spawn_app().await;
    let token = app.register("legacy").await;
    let kb = app.create_kb(&token, "encodings").await;
    let text = "知识库管理系统支持多种编码的文本文件，例如国标码和大五码。全文检索必须正确解码。";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let doc = app.ingest(&token, &kb, "gbk.txt", gbk.into_owned()).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let traditional = "知識庫管理系統支援多種編碼的文字檔案，例如大五碼。全文檢索必須正確解碼，繁體中文也一樣。";
    let (big5, _, _) = encoding_rs::BIG5.encode(traditional);
    let doc5 = app.ingest(&token, &kb, "big5.txt", big5.into_owned()).await;
    assert_eq!(doc5["status"], "completed", "{doc5}");
    let mut utf16 = vec![0xFF, 0xFE];
    for u in "UTF-16 文件：向量检索与全文检索。".encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let doc16 = app.ingest(&token, &kb, "utf16.txt", utf16).await;
    assert_eq!(doc16["status"], "completed", "{doc16}");

    let (_, v) = app.search(&token, &kb, "国标码").await;
    assert_eq!(v["results"][0]["document_id"], doc["id"], "{v}");
    let (_, v) = app.search(&token, &kb, "繁體中文").await;
    assert_eq!(v["results"][0]["document_id"], doc5["id"], "{v}");
    let (_, v) = app.search(&token, &kb, "向量检索").await;
    assert_eq!(v["results"][0]["document_id"], doc16["id"], "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn duplicates_are_detected_per_knowledge_base() {
    let app = spawn_app().await;
    let token = app.register("dup").await;
    let kb = app.create_kb(&token, "a").await;
    let other = app.create_kb(&token, "b").await;
    let (status, first) = app.upload(&token, &kb, "one.md", ZH_DOC).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["status"], "pending");
    let (status, again) = app.upload(&token, &kb, "renamed.md", ZH_DOC).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);
    let (status, elsewhere) = app.upload(&token, &other, "one.md", ZH_DOC).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(elsewhere["id"], first["id"]);
    assert_eq!(elsewhere["file_hash"], first["file_hash"]);
    let (_, docs) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/documents")).await;
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(1));
    app.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_scoped_bound_and_revocable() {
    let app = spawn_app().await;
    let token = app.register("owner").await;
    let kb = app.create_kb(&token, "docs").await;
    let other_kb = app.create_kb(&token, "other").await;
    app.ingest(&token, &kb, "zh.md", ZH_DOC).await;

    let (status, created) =
        app.post(&token, "/v1/api-keys", json!({"name": "search only", "scopes": ["search"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("lore_"));
    // An expiry past what the stores can hold is refused; the key list stays readable (a key
    // expiring in the year 61147 once made it answer 500: found by schemathesis).
    for expiry in [json!({"expires_in_days": 21_593_376}), json!({"expires_at": "9999-12-31T00:00:00Z"})] {
        let mut request = json!({"name": "forever", "scopes": ["search"]});
        request.as_object_mut().expect("object").extend(expiry.as_object().expect("object").clone());
        let (status, v) = app.post(&token, "/v1/api-keys", request).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
        );
    }
    assert_eq!(app.get(&token, "/v1/api-keys").await.0, StatusCode::OK);
    assert_eq!(created["api_key"]["key_prefix"].as_str(), Some(&key[..12]));
    assert_eq!(created["api_key"]["key_suffix"].as_str(), Some(&key[key.len() - 4..]));

    let (status, v) = app.search(&key, &kb, "中文分词").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(!v["results"].as_array().expect("results").is_empty());
    let (status, v) = app.upload(&key, &kb, "x.txt", "hello").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let (status, v) = app.get(&key, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let (status, v) = app.post(&key, "/v1/api-keys", json!({"name": "escalate", "scopes": ["delete"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "session_required"));

    // The list shows keys by prefix/suffix, never the key or its hash.
    let (status, list) = app.get(&token, "/v1/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains("key_hash"), "{text}");
    assert_eq!(list["data"][0]["key_prefix"], created["api_key"]["key_prefix"]);

    // Last use is recorded (written back within a second or so).
    let mut list = Value::Null;
    for _ in 0..60 {
        list = app.get(&token, "/v1/api-keys").await.1;
        if list["data"][0]["last_used_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(list["data"][0]["last_used_at"].is_string(), "{list}");
    assert_eq!(list["data"][0]["last_used_ip"], "127.0.0.1");

    // Bound to one knowledge base.
    let (_, bound) = app
        .post(
            &token,
            "/v1/api-keys",
            json!({"name": "bound", "scopes": ["search", "read", "upload"], "knowledge_base_id": kb}),
        )
        .await;
    let bound_key = bound["key"].as_str().expect("key").to_string();
    assert_eq!(app.search(&bound_key, &kb, "中文").await.0, StatusCode::OK);
    let (status, v) = app.search(&bound_key, &other_kb, "中文").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "knowledge_base_not_allowed"));
    let (_, v) = app.get(&bound_key, "/v1/knowledge-bases").await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1));
    let (status, v) = app.upload(&bound_key, &kb, "bound.txt", "written with a bound key").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (status, v) = app.post(&bound_key, "/v1/knowledge-bases", json!({"name": "nope"})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "knowledge_base_not_allowed"));

    // Revoked: 401 from then on.
    let id = created["api_key"]["id"].as_str().expect("id");
    let (status, _) = app.delete(&token, &format!("/v1/api-keys/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = app.search(&key, &kb, "中文分词").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "api_key_revoked"));
    let (status, v) = app.search("lore_not-a-real-key", &kb, "中文分词").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    // Expiry.
    let soon = (chrono_now_plus_ms(1500)).to_string();
    let (status, v) =
        app.post(&token, "/v1/api-keys", json!({"name": "short", "scopes": ["search"], "expires_at": soon})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let short = v["key"].as_str().expect("key").to_string();
    assert_eq!(app.search(&short, &kb, "中文").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, v) = app.search(&short, &kb, "中文").await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "api_key_expired"));

    // Bad key requests.
    let (status, v) = app.post(&token, "/v1/api-keys", json!({"name": "none", "scopes": []})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_scope"));
    let (status, v) = app.post(&token, "/v1/api-keys", json!({"name": "bad", "scopes": ["admin"]})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    app.shutdown().await;
}

fn chrono_now_plus_ms(ms: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    let t = now + Duration::from_millis(ms);
    // RFC 3339 in UTC without pulling a date library into the tests.
    let secs = t.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, t.subsec_millis())
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test]
async fn another_users_objects_are_not_found() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mallory = app.register("mallory").await;
    let kb = app.create_kb(&alice, "private").await;
    let doc = app.ingest(&alice, &kb, "secret.md", ZH_DOC).await;
    let doc = doc["id"].as_str().expect("id").to_string();
    let (_, key) = app.post(&alice, "/v1/api-keys", json!({"name": "k", "scopes": ["search"]})).await;
    let key_id = key["api_key"]["id"].as_str().expect("id").to_string();
    let (_, mkey) = app
        .post(&mallory, "/v1/api-keys", json!({"name": "m", "scopes": ["search", "upload", "read", "delete"]}))
        .await;
    let mkey = mkey["key"].as_str().expect("key").to_string();

    for token in [&mallory, &mkey] {
        let checks = vec![
            app.get(token, &format!("/v1/knowledge-bases/{kb}")).await,
            app.patch(token, &format!("/v1/knowledge-bases/{kb}"), json!({"name": "pwned"})).await,
            app.get(token, &format!("/v1/knowledge-bases/{kb}/documents")).await,
            app.upload(token, &kb, "x.txt", "intrusion").await,
            app.search(token, &kb, "中文分词").await,
            app.get(token, &format!("/v1/documents/{doc}")).await,
            app.get(token, &format!("/v1/documents/{doc}/chunks")).await,
            app.delete(token, &format!("/v1/documents/{doc}")).await,
            app.post(token, &format!("/v1/documents/{doc}/restore"), json!({})).await,
            app.delete(token, &format!("/v1/knowledge-bases/{kb}")).await,
            app.post(token, "/v1/chunking/preview", json!({"text": "x", "knowledge_base_id": kb})).await,
        ];
        for (i, (status, v)) in checks.into_iter().enumerate() {
            assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "check {i}: {v}");
        }
    }
    let (status, v) = app.delete(&mallory, &format!("/v1/api-keys/{key_id}")).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (_, list) = app.get(&mallory, "/v1/knowledge-bases").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    // Alice's things are intact.
    let (_, v) = app.get(&alice, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((v["name"].as_str(), v["document_count"].as_i64()), (Some("private"), Some(1)));
    app.shutdown().await;
}

#[tokio::test]
async fn bad_files_fail_alone_and_the_server_stays_up() {
    let app = spawn_app().await;
    let token = app.register("robust").await;
    let kb = app.create_kb(&token, "mixed").await;
    let pdf = app.ingest(&token, &kb, "report.pdf", b"this is not really a pdf".to_vec()).await;
    assert_eq!(pdf["status"], "failed");
    assert_eq!(pdf["error_code"], "corrupt_file");
    assert!(pdf["error_message"].as_str().expect("message").contains("PDF"), "{pdf}");
    let truncated = app.ingest(&token, &kb, "broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec()).await;
    assert_eq!(truncated["status"], "failed");
    assert!(truncated["error_message"].is_string());

    let mut noise = Vec::with_capacity(64 * 1024);
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push((x >> 24) as u8);
    }
    let random = app.ingest(&token, &kb, "notes.txt", noise).await;
    assert_eq!(random["status"], "failed");
    assert_eq!(random["error_code"], "binary_content");
    let log = random["processing_log"].as_array().expect("log");
    assert_eq!(log.last().expect("entry")["stage"], "failed");
    let (status, v) = app.upload(&token, &kb, "archive.txt", b"PK\x03\x04 rest of a zip".to_vec()).await;
    assert_eq!((status, code(&v)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type"), "{v}");

    // Good documents still go through, before and after.
    let ok = app.ingest(&token, &kb, "fine.md", ZH_DOC).await;
    assert_eq!(ok["status"], "completed");
    let (status, _) = body(app.http.get(app.url("/healthz")).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, v) = app.search(&token, &kb, "中文分词").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1), "failed documents must not be searchable: {v}");
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_coded_4xx() {
    let app = spawn_app_with(|c| c.max_upload_bytes = 1024).await;
    let token = app.register("strict").await;
    let kb = app.create_kb(&token, "kb").await;
    let raw = |body: &'static str| {
        app.http
            .post(app.url("/v1/knowledge-bases"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, v) = body(raw("{\"name\": ").await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "malformed_json"));
    assert_eq!(v["error"]["type"], "invalid_request");
    let (status, v) = body(raw("{\"name\": 42}").await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    let (status, v) = body(raw("{\"name\": \"x\", \"colour\": \"red\"}").await.expect("send")).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    let (status, v) = body(
        app.http.post(app.url("/v1/knowledge-bases")).bearer_auth(&token).body("name=x").send().await.expect("send"),
    )
    .await;
    assert_eq!((status, code(&v)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));

    // Uploads.
    let (status, v) = body(
        app.http
            .post(app.url(&format!("/v1/knowledge-bases/{kb}/documents")))
            .bearer_auth(&token)
            .json(&json!({"file": "x"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "invalid_multipart"));
    let (status, v) = app.upload_form(&token, &kb, Form::new().text("metadata", "{}")).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "missing_file"));
    let (status, v) = app.upload(&token, &kb, "big.txt", vec![b'a'; 4096]).await;
    assert_eq!((status, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let (status, v) = app.upload(&token, &kb, "empty.txt", Vec::new()).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "empty_file"));
    let bad_config = Form::new()
        .part("file", Part::bytes(b"hello".to_vec()).file_name("a.txt"))
        .text("chunking_config", r#"{"strategy_type": "fixed", "config": {"chunk_size": 10, "chunk_overlap": 20}}"#);
    let (status, v) = app.upload_form(&token, &kb, bad_config).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chunking_config"));
    let bad_meta = Form::new().part("file", Part::bytes(b"hello".to_vec()).file_name("a.txt")).text("metadata", "[1]");
    let (status, v) = app.upload_form(&token, &kb, bad_meta).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (_, docs) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/documents")).await;
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(0), "rejected uploads must leave nothing behind");

    // Paths, methods, modes.
    let (status, v) = app.get(&token, "/v1/knowledge-bases/not-a-uuid").await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, v) = app.get(&token, "/v1/nothing-here").await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "route_not_found"));
    let (status, v) = app.delete(&token, "/v1/me").await;
    assert_eq!((status, code(&v)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let search = format!("/v1/knowledge-bases/{kb}/search");
    let (status, v) = app.post(&token, &search, json!({"query": "x", "mode": "semantic"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (status, v) = app.post(&token, &search, json!({"query": "  "})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"));
    let (status, v) = app.post(&token, &search, json!({"query": "x", "top_k": 0})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let (status, v) = app.post(&token, &search, json!({"query": "x", "mode": "telepathy"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    // FTS syntax in a query is just text.
    let (status, v) = app.post(&token, &search, json!({"query": "\"unbalanced AND (OR NEAR *"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "x", "settings": {"chunking_config": {"strategy_type": "fixed", "config": {"chunk_size": -1}}}}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chunking_config"));
    app.shutdown().await;
}

#[tokio::test]
async fn soft_delete_hides_documents_and_restore_brings_them_back() {
    let app = spawn_app().await;
    let token = app.register("deleter").await;
    let kb = app.create_kb(&token, "kb").await;
    let doc = app.ingest(&token, &kb, "zh.md", ZH_DOC).await;
    let id = doc["id"].as_str().expect("id").to_string();
    let chunks = doc["chunk_count"].as_i64().expect("chunks");
    assert_eq!(app.search(&token, &kb, "中文分词").await.1["results"].as_array().map(Vec::len), Some(1));

    let (status, v) = app.delete(&token, &format!("/v1/documents/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["soft_deleted_at"].is_string());
    assert_eq!(app.search(&token, &kb, "中文分词").await.1["results"].as_array().map(Vec::len), Some(0));
    let (_, kbv) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((kbv["document_count"].as_i64(), kbv["chunk_count"].as_i64()), (Some(0), Some(0)));
    let (_, list) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/documents")).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    let (_, list) = app.get(&token, &format!("/v1/knowledge-bases/{kb}/documents?include_deleted=true")).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.delete(&token, &format!("/v1/documents/{id}")).await.0, StatusCode::NOT_FOUND);

    let (status, v) = app.post(&token, &format!("/v1/documents/{id}/restore"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["soft_deleted_at"].is_null());
    let (_, kbv) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((kbv["document_count"].as_i64(), kbv["chunk_count"].as_i64()), (Some(1), Some(chunks)));
    assert_eq!(app.search(&token, &kb, "中文分词").await.1["results"].as_array().map(Vec::len), Some(1));
    let (status, v) = app.post(&token, &format!("/v1/documents/{id}/restore"), json!({})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "not_deleted"));

    // Deleted, then the same content uploaded again: restoring the old copy would duplicate it.
    app.delete(&token, &format!("/v1/documents/{id}")).await;
    let (status, _) = app.upload(&token, &kb, "again.md", ZH_DOC).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, v) = app.post(&token, &format!("/v1/documents/{id}/restore"), json!({})).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "duplicate_document"));

    // Deleting the knowledge base removes everything in it.
    let (status, _) = app.delete(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&token, &format!("/v1/documents/{id}")).await.0, StatusCode::NOT_FOUND);
    let (_, me) = app.get(&token, "/v1/me").await;
    assert_eq!(me["storage_used"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn chunking_is_configured_per_document_knowledge_base_and_previewed() {
    let app = spawn_app().await;
    let token = app.register("chunker").await;
    let text = "第一段：知识库。\n\n第二段：文档被切成分块。\n\nThird paragraph in English.";
    let (status, v) = app
        .post(&token, "/v1/chunking/preview", json!({"text": text, "chunking_config": {"strategy_type": "paragraph", "config": {"max_chunk_size": 800, "merge_short_paragraphs": false}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["chunk_count"], 3);
    assert_eq!(v["chunks"][1]["content"], "第二段：文档被切成分块。");
    assert_eq!(v["chunks"][1]["char_count"], 12);
    let (_, v) = app
        .post(&token, "/v1/chunking/preview", json!({"text": "一二三四五六七八九十", "chunking_config": {"strategy_type": "sliding_window", "config": {"window_size": 4, "step": 3}}}))
        .await;
    let contents: Vec<&str> =
        v["chunks"].as_array().expect("chunks").iter().map(|c| c["content"].as_str().expect("c")).collect();
    assert_eq!(contents, vec!["一二三四", "四五六七", "七八九十"]);
    let (status, v) = app
        .post(&token, "/v1/chunking/preview", json!({"text": "x", "chunking_config": {"strategy_type": "semantic", "config": {"breakpoint_percentile": 120}}}))
        .await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chunking_config"));

    // Knowledge base settings apply to its documents; a document's own config wins.
    let (status, kbv) = app
        .post(&token, "/v1/knowledge-bases", json!({"name": "fixed", "settings": {"chunking_config": {"strategy_type": "fixed", "config": {"chunk_size": 20, "chunk_overlap": 0}}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kbv}");
    let kb = kbv["id"].as_str().expect("id");
    let long = "知识库".repeat(20);
    let doc = app.ingest(&token, kb, "long.txt", long.clone()).await;
    assert_eq!(doc["chunk_count"], 3, "{doc}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    assert_eq!(chunks["data"][0]["metadata"]["strategy"], "fixed");
    assert_eq!(chunks["data"][0]["content"].as_str().map(|s| s.chars().count()), Some(20));

    let form = Form::new()
        .part("file", Part::bytes(format!("{long}!").into_bytes()).file_name("own.txt"))
        .text("chunking_config", r#"{"strategy_type": "sliding_window", "config": {"window_size": 30, "step": 15}}"#)
        .text("metadata", r#"{"team": "研发", "year": 2026}"#);
    let (status, v) = app.upload_form(&token, kb, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["metadata"]["team"], "研发");
    assert_eq!(v["chunking_config"]["strategy_type"], "sliding_window");
    let own = app.wait_done(&token, v["id"].as_str().expect("id")).await;
    assert_eq!(own["chunk_count"], 4, "61 characters in windows of 30 every 15: {own}");
    let (_, r) = app
        .post(
            &token,
            &format!("/v1/knowledge-bases/{kb}/search"),
            json!({"query": "知识库", "filters": {"metadata": {"team": "研发"}}}),
        )
        .await;
    assert!(!r["results"].as_array().expect("r").is_empty());
    assert!(r["results"].as_array().expect("r").iter().all(|x| x["document_id"] == own["id"]), "{r}");

    // Settings updates are validated; archived knowledge bases take no uploads.
    let (status, v) = app
        .patch(&token, &format!("/v1/knowledge-bases/{kb}"), json!({"status": "archived", "description": "旧的"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["status"].as_str(), v["description"].as_str()), (Some("archived"), Some("旧的")));
    let (status, v) = app.upload(&token, kb, "late.txt", "too late").await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "knowledge_base_archived"));
    let (status, v) = app.patch(&token, &format!("/v1/knowledge-bases/{kb}"), json!({"description": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["description"].is_null());
    assert_eq!(v["settings"]["chunking_config"]["strategy_type"], "fixed");
    app.shutdown().await;
}

#[tokio::test]
async fn hierarchical_chunks_match_small_and_answer_with_their_section() {
    let app = spawn_app().await;
    let token = app.register("hierarchy").await;
    let config = json!({"strategy_type": "hierarchical", "config": {"parent_size": 400, "child_size": 40}});
    let (status, kb) =
        app.post(&token, "/v1/knowledge-bases", json!({"name": "h", "settings": {"chunking_config": config}})).await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let kb = kb["id"].as_str().expect("id").to_string();
    let text = "# 安装\n\n下载二进制文件。运行 lore serve 启动服务。默认监听八零八零端口，数据保存在当前目录。\n\n\
                # 检索\n\n全文检索使用结巴分词。混合检索结合向量与关键词，排序采用倒数排名融合。";
    let doc = app.ingest(&token, &kb, "guide.md", text).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let (_, chunks) = app.get(&token, &format!("/v1/documents/{}/chunks", doc["id"].as_str().expect("id"))).await;
    let chunks = chunks["data"].as_array().expect("chunks");
    let parents: Vec<_> = chunks.iter().filter(|c| c["parent_chunk_id"].is_null()).collect();
    assert_eq!(parents.len(), 2, "one parent per section: {chunks:?}");
    assert!(
        chunks
            .iter()
            .all(|c| c["parent_chunk_id"].is_null() || parents.iter().any(|p| p["id"] == c["parent_chunk_id"]))
    );
    let (_, v) = app.search(&token, &kb, "倒数排名融合").await;
    let hit = &v["results"][0];
    assert_eq!(hit["metadata"]["level"], "child", "{v}");
    assert!(hit["content"].as_str().expect("child").chars().count() <= 40);
    let parent = hit["parent"]["content"].as_str().expect("the parent comes along");
    assert!(parent.starts_with("# 检索") && parent.contains("结巴分词"), "{parent}");
    // Parents are context, not matches: every result is a child.
    let (_, v) = app.search(&token, &kb, "检索 服务").await;
    assert!(v["results"].as_array().expect("r").iter().all(|r| r["metadata"]["level"] == "child"), "{v}");
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_describe_traffic_without_tenant_data() {
    let app = spawn_app().await;
    let token = app.register("metered").await;
    let kb = app.create_kb(&token, "私密的知识库名称").await;
    app.ingest(&token, &kb, "m.md", ZH_DOC).await;
    app.search(&token, &kb, "秘密查询词").await;
    let resp = app.http.get(app.url("/metrics")).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("text");
    for expected in [
        "lore_http_requests_total{",
        r#"route="/v1/knowledge-bases/{id}/search""#,
        "lore_http_request_duration_seconds_bucket",
        "lore_search_duration_seconds_bucket",
        r#"lore_documents{status="completed"}"#,
        "lore_ingest_queue_depth",
        "lore_ingest_stage_duration_seconds_bucket",
        r#"lore_ingest_documents_total{outcome="completed"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    for secret in [kb.as_str(), "私密", "秘密查询词", "metered"] {
        assert!(!text.contains(secret), "tenant data {secret:?} in metrics");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn chunking_configured_from_a_description() {
    let app = spawn_app().await;
    let token = app.register("describer").await;
    let (status, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": "按照段落分块，每个分块最多包含3个段落"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["chunking_config"]["strategy_type"], "paragraph");
    assert_eq!(v["chunking_config"]["config"]["max_paragraphs_per_chunk"], 3);
    assert_eq!(v["chunking_config"]["nl_description"], "按照段落分块，每个分块最多包含3个段落");
    assert_eq!(v["strategy"]["max_paragraphs_per_chunk"], 3);
    // The configuration is usable as it stands.
    let config = v["chunking_config"].clone();
    let (status, kb) =
        app.post(&token, "/v1/knowledge-bases", json!({"name": "nl", "settings": {"chunking_config": config}})).await;
    assert_eq!(status, StatusCode::CREATED, "{kb}");
    let (status, v) = app
        .post(&token, "/v1/chunking/from-description", json!({"description": "500-character chunks with 50 overlap"}))
        .await;
    assert_eq!((status, v["chunking_config"]["config"]["chunk_overlap"].as_i64()), (StatusCode::OK, Some(50)));
    let (status, v) = app.post(&token, "/v1/chunking/from-description", json!({"description": "make it nice"})).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "description_not_understood"));
    app.shutdown().await;
}

/// Starts the real binary: the crash test needs a process it can kill -9.
fn start_binary(data_dir: &std::path::Path, port: u16, workers: usize) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_lore"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", &workers.to_string()])
        .args(["--registration", "open", "--registrations-per-hour", "0"])
        .env("LORE_LOG", "warn")
        .spawn()
        .expect("start lore")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

#[tokio::test]
async fn accepted_uploads_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let http = http_client();
    // No workers: every accepted upload is still queued when the process dies.
    let mut child = start_binary(dir.path(), port, 0);
    wait_healthy(&http, &base).await;
    let app = TestApp { base: base.clone(), http: http.clone(), server: None, _dir: tempfile::tempdir().expect("t") };
    let token = app.register("survivor").await;
    let kb = app.create_kb(&token, "crash").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, v) =
            app.upload(&token, &kb, &format!("doc{i}.md"), format!("# 文档 {i}\n\n崩溃恢复测试 number{i}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");

    let mut child = start_binary(dir.path(), port, 2);
    wait_healthy(&http, &base).await;
    for id in &ids {
        let doc = app.wait_done(&token, id).await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }
    let (_, v) = app.search(&token, &kb, "number7").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1), "{v}");
    let (_, v) = app.search(&token, &kb, "崩溃恢复").await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(10), "{v}");
    let (_, kbv) = app.get(&token, &format!("/v1/knowledge-bases/{kb}")).await;
    assert_eq!((kbv["document_count"].as_i64(), kbv["chunk_count"].as_i64()), (Some(20), Some(20)));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn the_api_describes_itself_offline() {
    let app = spawn_app_with(|c| c.embedding_model = None).await;
    let (status, doc) = body(app.http.get(app.url("/openapi.json")).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/knowledge-bases/{id}/search"]["post"]["requestBody"].is_object(), "{doc}");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let search = &doc["components"]["schemas"]["SearchRequest"]["properties"];
    assert!(search["query"].is_object() && search["mode"].is_object(), "{search}");
    let resp = app.http.get(app.url("/docs")).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-security-policy"].to_str().expect("csp").contains("default-src 'none'"));
    let html = resp.text().await.expect("html");
    assert!(html.contains("/openapi.json") && !html.contains("https://"), "served offline, no CDN");
    app.shutdown().await;
}

/// A client for the tests' requests (HTTPS needs the process's TLS provider first).
pub fn http_client() -> reqwest::Client {
    lore_core::tls::ensure_provider();
    reqwest::Client::new()
}
